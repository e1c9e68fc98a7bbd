// composer studio: reading the Standard MIDI Files the server writes (plain script; shares the page's globals with app.js)
"use strict";

// ---------------------------------------------------------------- MIDI reading (Standard MIDI File)

/** Parse a Standard MIDI File: notes (ticks and seconds), tempo, meter, length; throws on a broken file. */
function parseMidi(buffer) {
  const data = new DataView(buffer);
  let pos = 0;
  const u8 = () => data.getUint8(pos++);
  const u16 = () => { const v = data.getUint16(pos); pos += 2; return v; };
  const u32 = () => { const v = data.getUint32(pos); pos += 4; return v; };
  const tag = () => String.fromCharCode(u8(), u8(), u8(), u8());
  const vlq = () => { let v = 0, b; do { b = u8(); v = (v << 7) | (b & 0x7f); } while (b & 0x80); return v; };

  if (tag() !== "MThd") throw new Error("not a MIDI file (no MThd header)");
  const headerLength = u32();
  const headerEnd = pos + headerLength;
  u16(); // format
  const nTracks = u16();
  const division = u16();
  if (division & 0x8000) throw new Error("SMPTE time division is not supported");
  pos = headerEnd;

  const notes = [], tempos = [], meters = [];
  let endTick = 0, program = 0;
  for (let t = 0; t < nTracks && pos < data.byteLength; t++) {
    if (tag() !== "MTrk") throw new Error(`track ${t + 1}: no MTrk chunk`);
    const length = u32(), end = pos + length;
    let tick = 0, status = 0;
    const open = new Map(); // channel*128+pitch -> [{tick, velocity}]
    while (pos < end) {
      tick += vlq();
      let byte = data.getUint8(pos);
      if (byte & 0x80) { status = byte; pos++; } else if (!status) throw new Error("running status without a status byte");
      const type = status & 0xf0, channel = status & 0x0f;
      if (status === 0xff) {
        const meta = u8(), len = vlq(), at = pos;
        if (meta === 0x51 && len === 3) tempos.push({tick, usPerQuarter: (data.getUint8(at) << 16) | (data.getUint8(at + 1) << 8) | data.getUint8(at + 2)});
        if (meta === 0x58 && len >= 2) meters.push({tick, num: data.getUint8(at), den: 2 ** data.getUint8(at + 1)});
        pos = at + len;
        status = 0;
      } else if (status === 0xf0 || status === 0xf7) {
        pos += vlq();
        status = 0;
      } else if (type === 0x90 || type === 0x80) {
        const pitch = u8(), velocity = u8(), id = channel * 128 + pitch;
        if (type === 0x90 && velocity > 0) {
          if (!open.has(id)) open.set(id, []);
          open.get(id).push({tick, velocity});
        } else if (open.has(id) && open.get(id).length) {
          const on = open.get(id).shift();
          notes.push({pitch, velocity: on.velocity, startTick: on.tick, endTick: tick, channel});
        }
      } else if (type === 0xc0) {
        program = u8();
      } else if (type === 0xd0) {
        pos += 1;
      } else {
        pos += 2; // 0xa0 aftertouch, 0xb0 controller, 0xe0 pitch bend
      }
    }
    pos = end;
    endTick = Math.max(endTick, tick);
  }

  tempos.sort((a, b) => a.tick - b.tick);
  if (!tempos.length || tempos[0].tick > 0) tempos.unshift({tick: 0, usPerQuarter: 500000});
  const seconds = (tick) => {  // through the tempo map
    let s = 0;
    for (let i = 0; i < tempos.length; i++) {
      const from = tempos[i].tick, to = i + 1 < tempos.length ? Math.min(tempos[i + 1].tick, tick) : tick;
      if (to <= from) break;
      s += (to - from) / division * tempos[i].usPerQuarter / 1e6;
    }
    return s;
  };
  for (const n of notes) { n.start = seconds(n.startTick); n.end = seconds(n.endTick); }
  notes.sort((a, b) => a.startTick - b.startTick || a.pitch - b.pitch);
  const meter = meters.length ? meters[0] : {num: 4, den: 4};
  const barTicks = division * 4 * meter.num / meter.den;
  const lastNote = notes.reduce((m, n) => Math.max(m, n.endTick), 0);
  return {
    division, notes, meter, program, barTicks,
    bpm: 60e6 / tempos[0].usPerQuarter,
    bars: Math.max(1, Math.ceil(Math.max(endTick, lastNote) / barTicks - 1e-9)),
    duration: seconds(Math.max(endTick, lastNote)),
    seconds,
  };
}
