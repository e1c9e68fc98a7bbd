// composer studio: playback with Web Audio and the playhead (plain script; shares the page's globals with app.js)
"use strict";

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
