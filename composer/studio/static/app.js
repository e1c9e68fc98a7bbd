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
    bars: Number(h("X-Bars")), tempo: Number(h("X-Tempo")), rank: Number(h("X-Rank") || 1), num: Number(h("X-Num") || 1),
    primeBars: Number(h("X-Prime-Bars") || 0)};
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
    state.keptBars = first.headers.primeBars;  // the prime's bars, as the server kept them
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
