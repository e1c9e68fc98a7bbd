// composer studio: the SVG piano roll (plain script; shares the page's globals with app.js)
"use strict";

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
  if (kept > 0) {  // where the prime ends and the new bars begin
    el("line", {x1: keysW + kept * barW, x2: keysW + kept * barW, y1: 0, y2: height, class: "prime-end"}, svg);
    const label = el("text", {x: keysW + kept * barW - 5, y: headH + 12, class: "prime-end-label"}, svg);
    label.textContent = "prime ends";
  }
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
