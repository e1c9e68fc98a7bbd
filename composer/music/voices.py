"""The melody line of a polyphonic track: one note at a time, chosen by voice continuity.

A track may hold more than its tune: a piano's chords and inner voices under the melody, or
a fiddle's double stops and drones above it. ``melody_line`` keeps one continuous voice.

What the choice rests on (the musical principles, in order of weight):

1. **The melody is on top where notes start together.** At each onset only the highest note
   starting there can be the melody (a chord's lower tones are accompaniment), and a higher
   note starting while the melody sounds always takes over (it cuts the sounding note).
2. **A lower note starting under a sounding melody note is a choice between two voices.**
   Either it belongs to an inner or lower voice (the piano's held melody note over moving
   accompaniment: drop it), or the held note was a second voice above the tune (a fiddle's
   double stop or drone: cut the held note, the tune goes on below). A lower note starting
   within a sixteenth of the held note's end and outlasting it is legato playing: it cuts.
3. **The choice is the one that keeps a continuous, mostly stepwise line with the most notes.**
   Every onset's top note is a candidate; a Viterbi pass over the onsets picks, at each onset
   where a held note covers a lower one, "keep holding" or "move to the lower note", by the
   cost of the whole line:
   - a leap costs by its size beyond a step (melodies move mostly by steps and small skips;
     a jump of a sixth down into the accompaniment and back up is two rare events);
   - each top note left out costs one unit (a melody is not silent while its instrument
     plays on), half a unit where it is the top of a chord (chords under a held note are
     accompaniment, not a tune);
   - abandoning a sounding note for a lower one costs ``CUT`` units: the melody is normally
     the top voice, so the lower line must earn it, by continuing the line before and after
     the held note in small intervals and by the notes it keeps.
   Hence a two-bar drone above a running reel (fifteen notes to lose, one cut to pay, the
   line stepping on below) is cut, while a melody note held over an Alberti bass or block
   chords (a leap of an octave or more down and back, per note kept) keeps its held note.
   A held note over a single inner note or two is kept: the old skyline's answer.

Input: grid-step arrays in any order; already-monophonic input (the usual melody track)
returns at once. The pass is linear in the number of onsets, with at most ``MAX_VOICES``
held notes followed at a time.
"""

from __future__ import annotations

import numpy as np

from composer.errors import MusicError
from composer.music.melody import STEPS_PER_QUARTER

LEGATO = STEPS_PER_QUARTER // 4  # a lower note starting this close to a held note's end cuts it
_UNIT = 20  # costs are integers (exact, deterministic ties): one dropped note = _UNIT
DROP = _UNIT  # a top note left out of the line
DROP_CHORD = _UNIT // 2  # ... where it is the top of several notes starting together
CUT = 3 * _UNIT  # moving from a sounding note to a lower one (leaving a held note)
_LEAP_STEP = 7  # per semitone beyond a whole step (0.35 of a dropped note)
QUANTILE = 0.75
MAX_VOICES = 8  # held notes followed at once (more nested holds are noise, not voices)


def _leap_costs(free: int) -> list[int]:
    """Cost of a melodic interval of 0..127 semitones: free up to ``free``, then linear,
    twice as steep beyond an octave (leaps past an octave are rare in melodies)."""
    return [_LEAP_STEP * (max(0, i - free) + max(0, i - max(12, free))) for i in range(128)]


def _usual_leap(t: np.ndarray, e: np.ndarray, p: np.ndarray) -> int:
    """The interval this track's line moves by without a doubt: the upper quartile of the
    intervals between consecutive top notes that do not overlap, at least a whole step."""
    mono = e[:-1] <= t[1:]
    if mono.sum() < 8:
        return 2
    return max(2, int(np.quantile(np.abs(np.diff(p))[mono], QUANTILE)))


def _check(start, end, pitch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays as 1-D int64 of one length, every note at least one step long; raises MusicError."""
    arrays = []
    for name, a in (("start", start), ("end", end), ("pitch", pitch)):
        a = np.asarray(a)
        if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
            raise MusicError(f"melody_line: {name} must be a 1-D integer array (got {a.dtype} with shape {a.shape})")
        arrays.append(a.astype(np.int64))
    s, e, p = arrays
    if not len(s) == len(e) == len(p):
        raise MusicError(f"melody_line: start, end and pitch differ in length ({len(s)}, {len(e)}, {len(p)})")
    if len(s) and (e <= s).any():
        i = int(np.argmax(e <= s))
        raise MusicError(f"melody_line: note {i} ends at {e[i]}, not after its start {s[i]}: give end > start")
    if len(p) and (p.min() < 0 or p.max() > 127):
        raise MusicError(f"melody_line: pitch {int(p.min() if p.min() < 0 else p.max())} is outside MIDI's 0-127")
    return s, e, p


def melody_line(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The track's melody as (index of each kept note in the input, its start, its end), sorted
    by start and monophonic: a kept note is cut where the next one starts. See the module
    docstring for how held notes above or below the line are told apart."""
    start, end, pitch = _check(start, end, pitch)
    # Onset, then highest first; equal pitches: the longest first (so input order never matters).
    order = np.lexsort((-end, -pitch, start))
    s, e = start[order], end[order]
    if len(s) < 2 or (np.all(s[1:] > s[:-1]) and np.all(e[:-1] <= s[1:])):
        return order, s, e  # already monophonic: the usual case for melody tracks
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # the top note of each onset
    size = np.diff(np.r_[first, len(s)])
    top = order[first]
    t, e, p = start[top], end[top], pitch[top]
    kept = _viterbi(t.tolist(), e.tolist(), p.tolist(), (size > 1).tolist(), _leap_costs(_usual_leap(t, e, p)))
    idx = top[kept]
    on = start[idx]
    off = np.minimum(end[idx], np.r_[on[1:], np.iinfo(np.int64).max])
    return idx, on, off


def _viterbi(t: list[int], e: list[int], p: list[int], chord: list[bool], leap: list[int]) -> np.ndarray:
    """Indices of the onsets whose top note is kept. A state is the onset index of the note
    sounding as the melody; at each onset the line takes the new top note or, where it starts
    below a held melody note, may keep holding that note and leave the new one out. Leaving a
    held note for a lower one is measured from the line before it too (a drone's onset is a
    leap out of the line, not the line's last note)."""
    # state: (melody note, cost, state before, pitch of the line before the note, last note left out under it)
    states: list[tuple[int, int, int, int, int]] = [(0, 0, -1, p[0], -1)]
    back: list[list[tuple[int, int]]] = [[(0, -1)]]  # per onset: (melody note, index of the state before)
    for k in range(1, len(t)):
        tk, pk, ek = t[k], p[k], e[k]
        drop = DROP_CHORD if chord[k] else DROP
        best, best_from, ref = None, -1, pk
        held: list[tuple[int, int, int, int, int]] = []
        for i, (j, cost, _, before, out) in enumerate(states):
            pj, ej = p[j], e[j]
            if ej > tk and pj > pk and not (ej - tk <= LEGATO and ek > ej):
                # keep holding j: the new top note is left out (its own voice's step is paid either way)
                held.append((j, cost + drop + (leap[abs(pk - out)] if out >= 0 else 0), i, before, pk))
                c = cost + CUT + min(leap[pj - pk], leap[abs(pk - before)])
            else:
                c = cost + leap[abs(pk - pj)]
            if best is None or c < best:
                best, best_from, ref = c, i, pj
        states = [(k, best, best_from, ref, -1)] + held
        if len(states) > MAX_VOICES:
            states = sorted(states, key=lambda x: x[1])[:MAX_VOICES]
        back.append([(s[0], s[2]) for s in states])
    i = min(range(len(states)), key=lambda i: (states[i][1], states[i][0]))  # ties: the held note
    kept = []
    for k in range(len(t) - 1, -1, -1):
        j, i = back[k][i]
        if j == k:
            kept.append(k)
    return np.asarray(kept[::-1], dtype=np.int64)
