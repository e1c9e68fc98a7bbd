// compose studio: the page. Plain JS, no library: options from /api/options, melodies from /api/generate
// (one MIDI file per request), an SVG piano roll, Web Audio playback, download / drag to a DAW, primes.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_PRIME_BYTES = 2 * 1024 * 1024;
const NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];

const state = {
  options: null,
  variations: [],   // [{rank, midi, bytes, url, name, headers}] of the last request
  current: null,    // the variation shown
  keptBars: 0,      // bars of the shown melody that came from a prime
  busy: false,
  player: null,     // {ctx, start, duration, raf}
};

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

// ---------------------------------------------------------------- piano roll

/** Beats per bar and their length in bar fractions: 6/8, 9/8, 12/8 count dotted quarters. */
function beatsOf(meter) {
  const compound = meter.den >= 8 && meter.num % 3 === 0 && meter.num > 3;
  return compound ? meter.num / 3 : meter.num;
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function noteName(p) { return NOTE_NAMES[p % 12] + (Math.floor(p / 12) - 1); }

/** Draw the roll: bars (with beats) and the notes of `midi`, or empty bars of `bars` x `meter`. */
function drawRoll({midi = null, bars, meter, kept = 0}) {
  const box = $("roll");
  box.textContent = "";
  const notes = midi ? midi.notes : [];
  let lo = 60, hi = 84;  // an empty roll: C4-C6
  if (notes.length) {
    lo = Math.min(...notes.map((n) => n.pitch)) - 2;
    hi = Math.max(...notes.map((n) => n.pitch)) + 2;
    if (hi - lo < 18) { const pad = Math.ceil((18 - (hi - lo)) / 2); lo -= pad; hi += pad; }
  }
  const keysW = 44, headH = 22;
  const height = Math.max(box.clientHeight, 240);
  const rowH = (height - headH) / (hi - lo + 1);
  const barW = Math.max((box.clientWidth - keysW - 2) / bars, 56);
  const width = keysW + bars * barW;
  const svg = el("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "roll-svg"}, box);
  const y = (p) => headH + (hi - p) * rowH;

  for (let p = lo; p <= hi; p++) {  // pitch rows: black keys darker
    const black = [1, 3, 6, 8, 10].includes(p % 12);
    el("rect", {x: keysW, y: y(p), width: bars * barW, height: rowH, class: black ? "lane black" : "lane"}, svg);
    el("rect", {x: 0, y: y(p), width: keysW, height: rowH, class: black ? "key black" : "key"}, svg);
    if (p % 12 === 0 && rowH >= 7) {
      const label = el("text", {x: keysW - 5, y: y(p) + rowH / 2, class: "key-label"}, svg);
      label.textContent = noteName(p);
    }
  }
  if (kept > 0) el("rect", {x: keysW, y: headH, width: kept * barW, height: height - headH, class: "kept"}, svg);
  const beats = beatsOf(meter);
  for (let b = 0; b < bars; b++) {
    const x = keysW + b * barW;
    for (let i = 1; i < beats; i++) el("line", {x1: x + i * barW / beats, x2: x + i * barW / beats, y1: headH, y2: height, class: "beat"}, svg);
    el("line", {x1: x, x2: x, y1: 0, y2: height, class: "bar"}, svg);
    const num = el("text", {x: x + 5, y: 15, class: "bar-number"}, svg);
    num.textContent = b + 1;
  }
  el("line", {x1: width - 0.5, x2: width - 0.5, y1: 0, y2: height, class: "bar"}, svg);
  if (midi) {
    const tickX = (t) => keysW + t / midi.barTicks * barW;
    for (const n of notes) {
      const r = el("rect", {x: tickX(n.startTick) + 0.5, y: y(n.pitch) + 0.5, width: Math.max(tickX(n.endTick) - tickX(n.startTick) - 1, 2),
        height: Math.max(rowH - 1, 2), rx: 2, class: "note", "fill-opacity": (0.55 + 0.45 * n.velocity / 127).toFixed(2)}, svg);
      el("title", {}, r).textContent = `${noteName(n.pitch)}  bar ${Math.floor(n.startTick / midi.barTicks) + 1}  velocity ${n.velocity}`;
    }
  }
  const head = el("line", {x1: keysW, x2: keysW, y1: 0, y2: height, class: "playhead", visibility: "hidden"}, svg);
  head.id = "playhead";
  box.dataset.keysW = keysW;
  box.dataset.barW = barW;
}

function redraw() {
  if (state.current) drawRoll({midi: state.current.midi, bars: state.current.midi.bars, meter: state.current.midi.meter, kept: state.keptBars});
  else drawRoll({bars: Number($("bars").value) || 16, meter: parseMeter($("time_signature").value) || {num: 4, den: 4}});
}

function parseMeter(text) {
  const m = /^(\d+)\/(\d+)$/.exec(text || "");
  return m ? {num: Number(m[1]), den: Number(m[2])} : null;
}

// ---------------------------------------------------------------- playback (Web Audio)

function stop() {
  const p = state.player;
  if (!p) return;
  cancelAnimationFrame(p.raf);
  p.ctx.close();
  state.player = null;
  $("play").innerHTML = "&#9654; Play";
  const head = $("playhead");
  if (head) head.setAttribute("visibility", "hidden");
}

function play() {
  if (state.player) { stop(); return; }
  const midi = state.current && state.current.midi;
  if (!midi) return;
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) { showError("this browser has no Web Audio"); return; }
  const ctx = new Ctx();
  ctx.resume();  // started by a click, so browsers allow the sound
  const master = ctx.createGain();
  master.gain.value = 0.18;
  master.connect(ctx.destination);
  const t0 = ctx.currentTime + 0.08;
  for (const n of midi.notes) {  // one oscillator and envelope per note
    const osc = ctx.createOscillator(), env = ctx.createGain();
    osc.type = "triangle";
    osc.frequency.value = 440 * 2 ** ((n.pitch - 69) / 12);
    const start = t0 + n.start, end = t0 + Math.max(n.end, n.start + 0.03), peak = 0.3 + 0.7 * n.velocity / 127;
    env.gain.setValueAtTime(0, start);
    env.gain.linearRampToValueAtTime(peak, start + 0.01);
    env.gain.exponentialRampToValueAtTime(peak * 0.6, Math.max(start + 0.02, Math.min(end, start + 0.25)));
    env.gain.setValueAtTime(peak * 0.6, end);
    env.gain.exponentialRampToValueAtTime(0.0001, end + 0.08);
    osc.connect(env).connect(master);
    osc.start(start);
    osc.stop(end + 0.1);
  }
  const player = {ctx, raf: 0};
  state.player = player;
  $("play").innerHTML = "&#9632; Stop";
  const head = $("playhead"), box = $("roll");
  const keysW = Number(box.dataset.keysW), barW = Number(box.dataset.barW);
  const totalTicks = midi.bars * midi.barTicks, totalSec = midi.seconds(totalTicks);
  const tick = () => {
    if (state.player !== player) return;
    const s = ctx.currentTime - t0;
    if (s > totalSec + 0.15) { stop(); return; }
    // seconds -> ticks: constant tempo between the map's points is all the server writes; scale linearly
    const x = keysW + Math.max(0, s) / totalSec * totalTicks / midi.barTicks * barW;
    if (head) {
      head.setAttribute("x1", x); head.setAttribute("x2", x); head.setAttribute("visibility", "visible");
      const left = x - box.scrollLeft;
      if (left > box.clientWidth - 40 || left < keysW) box.scrollLeft = x - keysW - 20;
    }
    player.raf = requestAnimationFrame(tick);
  };
  player.raf = requestAnimationFrame(tick);
}

// ---------------------------------------------------------------- requests

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setBusy(busy, message) {
  state.busy = busy;
  for (const id of ["generate", "regenerate"]) $(id).disabled = busy || (id === "regenerate" && !state.current);
  document.body.classList.toggle("busy", busy);
  if (message) $("info").textContent = message;
}

/** The request body from the controls: only fields set, as the Python API's keyword names. */
function requestFromControls() {
  const body = {};
  const num = (id) => $(id).value.trim() === "" ? undefined : Number($(id).value);
  const text = (id) => $(id).value.trim() || undefined;
  body.key = text("key");
  body.time_signature = text("time_signature");
  body.bars = num("bars");
  body.tempo = num("tempo");
  body.form = text("form");
  body.program = num("program");
  body.pitch_range = text("pitch_range");
  body.temperature = num("temperature");
  body.top_p = num("top_p");
  body.seed = num("seed");
  body.num = num("num");
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

function filenameOf(response, fallback) {
  const cd = response.headers.get("Content-Disposition") || "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return m ? decodeURIComponent(m[1]) : fallback;
}

async function fetchMelody(body) {
  const response = await fetch("/api/generate", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  if (!response.ok) {
    let message = `the server answered ${response.status}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  const bytes = await response.arrayBuffer();
  const h = (name) => response.headers.get(name);
  const headers = {bits: Number(h("X-Bits-Per-Note")), key: h("X-Key"), meter: h("X-Time-Signature"), seed: h("X-Seed"),
    bars: Number(h("X-Bars")), tempo: Number(h("X-Tempo")), rank: Number(h("X-Rank") || 1), num: Number(h("X-Num") || 1)};
  const name = filenameOf(response, `melody_seed${headers.seed}.mid`);
  const url = URL.createObjectURL(new Blob([bytes], {type: "audio/midi"}));
  const midi = parseMidi(bytes);
  if (headers.bars > 0) midi.bars = headers.bars;  // the server's count, not the file's last event
  return {rank: headers.rank, midi, bytes, url, name, headers};
}

/** Generate `body`; with num > 1 fetch every rank of the same batch (same seed) and list them. */
async function generate(body) {
  if (state.busy) return;
  stop();
  showError("");
  setBusy(true, "Generating…");
  try {
    const first = await fetchMelody({...body, rank: 1});
    for (const v of state.variations) URL.revokeObjectURL(v.url);
    state.variations = [first];
    // a prime's bars: all the melody's but the new ones
    state.keptBars = body.prime ? Math.max(0, first.headers.bars - (body.bars ?? defaultBars())) : 0;
    show(first);
    renderVariations(first.headers.num);
    const num = first.headers.num;
    if (num > 1) {
      const same = {...body, seed: Number(first.headers.seed)};
      let next = 2;
      const worker = async () => {
        while (next <= num) {
          const rank = next++;
          const v = await fetchMelody({...same, rank});
          state.variations.push(v);
          state.variations.sort((a, b) => a.rank - b.rank);
          renderVariations(num);
        }
      };
      await Promise.all([worker(), worker(), worker()]);
    }
  } catch (e) {
    showError(e.message);
  } finally {
    setBusy(false);
    if (state.current) $("info").textContent = describe(state.current);
  }
}

function describe(v) {
  const h = v.headers;
  const kept = state.keptBars ? ` (bars 1–${state.keptBars} kept)` : "";
  return `${h.key} · ${h.meter} · ${v.midi.bars} bars${kept} · ♩ = ${Math.round(h.tempo || v.midi.bpm)} · seed ${h.seed} · ${fmtBits(h.bits)} bits/note`;
}

function defaultBars() {
  const o = state.options || {};
  return (o.defaults && o.defaults.bars) || (o.limits && o.limits.DEFAULT_BARS) || 16;
}

function fmtBits(bits) { return Number.isFinite(bits) ? bits.toFixed(2) : "–"; }

function show(v) {
  stop();
  state.current = v;
  redraw();
  const a = $("download");
  a.href = v.url;
  a.download = v.name;
  a.title = `Download ${v.name}, or drag it onto a DAW track`;
  a.classList.remove("disabled");
  $("play").disabled = false;
  $("regenerate").disabled = state.busy;
  $("keep").max = Math.max(1, v.midi.bars - 1);
  if (Number($("keep").value) >= v.midi.bars) $("keep").value = Math.max(1, Math.floor(v.midi.bars / 2));
  $("seed").placeholder = `random (last: ${v.headers.seed})`;
  $("info").textContent = describe(v);
  for (const li of $("variations").children) li.classList.toggle("current", Number(li.dataset.rank) === v.rank);
}

function renderVariations(num) {
  const list = $("variations");
  list.textContent = "";
  for (let rank = 1; rank <= num; rank++) {
    const v = state.variations.find((x) => x.rank === rank);
    const li = document.createElement("li");
    li.dataset.rank = rank;
    li.className = (v ? "ready" : "pending") + (state.current && state.current.rank === rank ? " current" : "");
    li.innerHTML = `<span class="rank">${rank}</span><span class="bits">${v ? fmtBits(v.headers.bits) : "…"}</span><span class="unit">bits/note</span>`;
    li.tabIndex = v ? 0 : -1;
    if (v) {
      li.title = `${v.name}: ${v.midi.notes.length} notes`;
      li.addEventListener("click", () => show(v));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") show(v); });
    }
    list.appendChild(li);
  }
}

function toBase64(bytes) {
  const u8 = new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

/** A prime request: the prime's key, meter and tempo unless the player set them for this request. */
function primeRequest(bytes, extra) {
  const body = requestFromControls();
  delete body.key; delete body.time_signature; delete body.tempo; delete body.form;
  return {...body, prime: toBase64(bytes), ...extra};
}

function regenerateRest() {
  const v = state.current;
  if (!v) return;
  const k = Number($("keep").value), total = v.midi.bars;
  if (!(Number.isInteger(k) && k >= 1 && k < total)) { showError(`keep bars 1 to ${total - 1} of this ${total}-bar melody, got ${$("keep").value}`); return; }
  generate(primeRequest(v.bytes, {prime_bars: k, bars: total - k}));
}

function uploadPrime(file) {
  if (!file) return;
  if (file.size > MAX_PRIME_BYTES) { showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; a prime may be up to 2 MB`); return; }
  const reader = new FileReader();
  reader.onload = () => {
    try { parseMidi(reader.result); } catch (e) { showError(`${file.name}: ${e.message}`); return; }
    generate(primeRequest(reader.result, {}));
  };
  reader.onerror = () => showError(`could not read ${file.name}`);
  reader.readAsArrayBuffer(file);
  $("upload").value = "";
}

// ---------------------------------------------------------------- options

/** Fill a <select> from [value, label] pairs; a pair whose second item is a list is an <optgroup>. */
function fillSelect(select, items, chosen, parent = select) {
  if (parent === select) select.textContent = "";
  for (const [value, label] of items) {
    if (Array.isArray(label)) {
      if (!label.length) continue;
      const group = document.createElement("optgroup");
      group.label = value;
      parent.appendChild(group);
      fillSelect(select, label, chosen, group);
      continue;
    }
    const o = document.createElement("option");
    o.value = value; o.textContent = label;
    if (String(value) === String(chosen ?? "")) o.selected = true;
    parent.appendChild(o);
  }
}

function setNumber(id, value, limits = {}) {
  const input = $(id);
  if (value !== null && value !== undefined) input.value = value;
  if (limits.min !== undefined) input.min = limits.min;
  if (limits.max !== undefined) input.max = limits.max;
}

async function loadOptions() {
  const response = await fetch("/api/options");
  if (!response.ok) throw new Error(`/api/options answered ${response.status}`);
  const o = await response.json();
  state.options = o;
  const d = o.defaults || {};
  const limits = o.limits || {};
  const model = o.model || {};
  const known = new Set(model.keys || []), knownMeters = new Set(model.meters || []);
  // the model's well-known keys and meters first, then the rest
  const grouped = (all, set) => [["", "model's choice"], ["The model knows well", [...set].map((x) => [x, x])],
    ["Others", all.filter((x) => !set.has(x)).map((x) => [x, x])]];
  fillSelect($("key"), grouped(o.keys || [], known), d.key);
  fillSelect($("time_signature"), grouped(o.meters || [], knownMeters), d.time_signature);
  fillSelect($("program"), (o.instruments || []).map((name, i) => [i, `${i + 1}. ${name}`]), d.program ?? 0);
  setNumber("bars", d.bars ?? limits.DEFAULT_BARS ?? 16, {min: 1, max: limits.MAX_BARS});
  setNumber("num", d.num ?? 1, {min: 1, max: limits.MAX_NUM});
  setNumber("temperature", d.temperature ?? 1, {min: limits.MIN_TEMPERATURE});
  setNumber("top_p", d.top_p ?? 1, {max: 1});
  if (limits.TEMPO_RANGE) setNumber("tempo", d.tempo, {min: limits.TEMPO_RANGE[0], max: limits.TEMPO_RANGE[1]});
  if (limits.MAX_SEED !== undefined) $("seed").max = limits.MAX_SEED;
  if (d.seed !== null && d.seed !== undefined) $("seed").value = d.seed;
  if (d.pitch_range) $("pitch_range").value = d.pitch_range;
  $("form").placeholder = model.default_form ? model.default_form : "model's default";
  if (d.form) $("form").value = d.form;
}

// ---------------------------------------------------------------- wiring

function init() {
  $("generate").addEventListener("click", () => generate(requestFromControls()));
  $("play").addEventListener("click", play);
  $("regenerate").addEventListener("click", regenerateRest);
  $("upload").addEventListener("change", (e) => uploadPrime(e.target.files[0]));
  $("download").addEventListener("click", (e) => { if (!state.current) e.preventDefault(); });
  $("download").addEventListener("dragstart", (e) => {
    const v = state.current;
    if (!v) { e.preventDefault(); return; }
    // Chromium drops the file itself on a DAW or the desktop; others get the link
    e.dataTransfer.setData("DownloadURL", `audio/midi:${v.name}:${new URL(v.url, location.href).href}`);
    e.dataTransfer.setData("text/uri-list", v.url);
    e.dataTransfer.effectAllowed = "copy";
  });
  for (const id of ["bars", "time_signature"]) $(id).addEventListener("change", () => { if (!state.current) redraw(); });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); generate(requestFromControls()); }
    if (e.key === " " && !["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(e.target.tagName) && state.current) { e.preventDefault(); play(); }
  });
  let resize = 0;
  window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(redraw, 100); });
  redraw();
  loadOptions().then(redraw, (e) => showError(`could not load the options: ${e.message}`));
}

init();
