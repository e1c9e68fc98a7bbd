"""The melody line of a polyphonic track: one note at a time, chosen by voice continuity.

A track may hold more than its tune: a piano's chords and inner voices under the melody, or
a fiddle's double stops and drones above it. ``melody_line`` keeps one continuous voice.

The musical principles it rests on:

1. **The melody is on top where notes start together** (a chord's lower tones accompany it),
   and a higher note starting while the melody sounds takes over (it cuts the sounding note).
   One exception: where the top note of a double stop rings on past the next onset, the tune
   may be its lower note (a fiddle's drone on the upper string).
2. **A lower note starting under a sounding melody note is a choice between two voices.**
   Either it is an inner or lower voice (a piano's melody note held over moving
   accompaniment: drop it), or the held note was a second voice above the tune (a double
   stop or drone: cut the held note, the tune goes on below). A lower note starting within a
   sixteenth of the held note's end and outlasting it is legato playing: it always cuts.
3. **The line that wins is the continuous, mostly stepwise one that keeps the most notes.**
   A Viterbi pass over the onsets weighs every reading of the whole track:
   - a leap costs by its size beyond a whole step, twice as much past an octave (melodies
     move by steps and small skips; a jump into the accompaniment and back is two rare events);
     leaving a held note is measured from the line before it too (a drone is a leap out of the
     line, not the line's last note);
   - a top note left out costs one unit, half where it tops a chord (chords under a held note
     accompany it), plus the step its own voice takes from the last note left out: the lower
     voice's own leaps are paid whichever voice is kept, so only continuity decides;
   - abandoning a sounding note, or a double stop's top, for a lower note costs ``CUT`` (three
     units): the melody is normally the top voice, so the lower line must earn it;
   - a kept note under a higher note still sounding that stops before the next onset costs
     ``REST`` (two units): a tune under a drone runs on, a broken chord breaks off.
   Hence a two-bar drone above a running reel (fifteen notes to lose, one cut, the line
   stepping on below) is cut, while a melody note held over an Alberti bass or chords an
   octave below (a leap down and back for every note kept), or over one or two inner notes
   (fewer notes to lose than a cut costs), keeps its held note: the old skyline's answer.
   Known limit: a long melody note over many accompaniment notes within an octave of it and
   moving smoothly (an Alberti figure in the melody's own register) reads as a drone.

Input: grid-step arrays in any order; already-monophonic input (the usual melody track)
returns at once. The pass is linear in the number of onsets, following at most
``MAX_VOICES`` held notes at a time.
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
LEAP = 7  # per semitone of a leap beyond a whole step (0.35 of a dropped note), twice beyond an octave
REST = 2 * _UNIT  # a line under a sounding higher note that falls silent while it sounds
MAX_VOICES = 8  # held notes followed at once (more nested holds are noise, not voices)
_LEAPS = [LEAP * (max(0, i - 2) + max(0, i - 12)) for i in range(128)]  # cost of an interval of i semitones


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
    # The second note of an onset is a candidate where the top one is held past the next onset
    # (a double stop whose upper note may be a drone): the tune may be the lower note.
    nxt = np.r_[s[first[1:]], np.iinfo(np.int64).max]
    second = first[(size > 1) & (e[first] > nxt)] + 1
    cand = np.sort(np.r_[first, second])  # candidate notes, by onset then pitch (top first)
    onset = np.cumsum(np.r_[True, s[cand[1:]] != s[cand[:-1]]]) - 1
    idx = order[cand]
    kept = _viterbi(start[idx].tolist(), end[idx].tolist(), pitch[idx].tolist(), onset.tolist(), (size > 1).tolist())
    idx = idx[kept]
    on = start[idx]
    off = np.minimum(end[idx], np.r_[on[1:], np.iinfo(np.int64).max])
    return idx, on, off


def _under(t: list[int], e: list[int], p: list[int], onset: list[int]) -> list[int]:
    """Per candidate, ``REST`` if it lies under a higher note sounding from before (or the top
    of its own double stop) and stops before the next onset while that note sounds on: a tune
    under a drone runs on, a broken chord under a held melody note breaks off."""
    out = [0] * len(t)
    above: list[int] = []  # tops of earlier onsets still sounding: pitch falls as the end grows
    n = len(t)
    for k in range(n):
        if k and onset[k] != onset[k - 1]:
            above = [j for j in above if e[j] - t[k] > LEGATO]
        over = above + [k - 1] if k and onset[k - 1] == onset[k] else above
        j = max(over, key=lambda j: p[j], default=-1)
        if j >= 0 and p[j] > p[k]:
            nxt = next((t[i] for i in range(k + 1, min(n, k + 3)) if onset[i] != onset[k]), e[k])
            out[k] = REST if e[k] < min(nxt, e[j]) else 0
        if k == 0 or onset[k] != onset[k - 1]:  # k is its onset's top: it may sound over later ones
            above = [j for j in above if p[j] > p[k] or e[j] > e[k]] + [k]
    return out


def _viterbi(t: list[int], e: list[int], p: list[int], onset: list[int], chord: list[bool]) -> np.ndarray:
    """Indices of the candidates kept: one per onset, the top note or (a double stop under a
    drone) the second. A state is the candidate sounding as the melody; at each onset the line
    takes a new candidate or, where the onset's top note starts below a held melody note, may
    keep holding that note and leave the new one out. Leaving a held note, or an onset's top,
    for a lower note is measured from the line before it too (a drone's onset is a leap out of
    the line, not the line's last note)."""
    leap, under, n = _LEAPS, _under(t, e, p, onset), len(t)
    # state: (melody note, cost, state before, pitch of the line before the note, last note left out under it)
    states: list[tuple[int, int, int, int, int]] = [(0, 0, -1, p[0], -1)]
    back: list[list[tuple[int, int]]] = []  # per onset: (melody note, index of the state before)
    if n > 1 and onset[1] == 0:
        states.append((1, CUT, -1, p[1], -1))
    back.append([(x[0], x[2]) for x in states])
    k = len(states)
    while k < n:
        top = k
        two = k + 1 < n and onset[k + 1] == onset[k]
        tk, pk, ek = t[k], p[k], e[k]
        drop = DROP_CHORD if chord[onset[k]] else DROP
        new: list[list] = [[None, -1, pk]] + ([[None, -1, pk]] if two else [])
        held: list[tuple[int, int, int, int, int]] = []
        for i, (j, cost, _, before, out) in enumerate(states):
            pj, ej = p[j], e[j]
            above = ej > tk and pj > pk and not (ej - tk <= LEGATO and ek > ej)
            if above:  # keep holding j: the new top note is left out (its own voice's step is paid either way)
                held.append((j, cost + drop + (leap[abs(pk - out)] if out >= 0 else 0), i, before, pk))
            for r, slot in enumerate(new):
                q = p[top + r]
                if above or r:  # leaving j, or the onset's top, for a lower note
                    c = cost + CUT + min(leap[abs(pj - q)], leap[abs(before - q)])
                else:
                    c = cost + leap[abs(q - pj)]
                if slot[0] is None or c < slot[0]:
                    slot[:] = [c, i, pj]
        states = [(top + r, c + under[top + r], i, ref) + (-1,) for r, (c, i, ref) in enumerate(new)] + held
        if len(states) > MAX_VOICES:
            states = sorted(states, key=lambda x: x[1])[:MAX_VOICES]
        back.append([(x[0], x[2]) for x in states])
        k += 2 if two else 1
    i = min(range(len(states)), key=lambda i: (states[i][1], states[i][0]))  # ties: the earliest note
    kept = []
    for col in reversed(back):
        j, i = col[i]
        if not kept or kept[-1] != j:
            kept.append(j)
    kept = [j for j in kept if j >= 0]
    return np.asarray(sorted(set(kept)), dtype=np.int64)
