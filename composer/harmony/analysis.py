"""Harmonic labelling: the chord (root, quality, bass) of each beat of several voices, by
matching the beat's pitch classes against every chord of the vocabulary.

The rules, in order:

1. **Weights.** Each pitch class weighs the time it sounds in the beat, in voice-beats (a voice
   holding it the whole beat adds 1, an eighth in a quarter-note beat 0.5; doubled notes count
   for each voice). The **bass line** weighs double: at each moment the lowest sounding note
   adds its time again, as if a fifth voice doubled the bass.
2. **Score** of a chord = the weight on its tones - a penalty per chord tone that does not sound
   in the beat at all: 2 for the root, 1.5 for the third (or a sus4's fourth), 0.5 for the fifth.
   Incomplete chords thus win when nothing fuller fits: a triad without its fifth (C E C C is C),
   a seventh chord without its fifth (C E Bb C is C7), while a missing root or third costs more
   than one voice's evidence. Non-chord tones (passing and neighbour notes, suspensions) only
   fail to add weight, so the chord covering most of the weight wins.
3. **Sevenths must be real.** A seventh chord counts only when its seventh sounds at the beat's
   start or weighs more than half a beat, and sounds together with its root at some moment: a
   passing seventh on the second eighth (V 8-7) leaves the triad, and two triads in one beat
   (F#m, then D on the second eighth) do not merge into a seventh chord (Dmaj7). Likewise an
   **augmented** triad needs each of its tones at the start or for more than half a beat (else
   it is a triad with a chromatic passing note), and a **sus4** counts only when neither third
   sounds in the beat and all three of its tones do: a 4-3 suspension that resolves within the
   beat is labelled with its triad, and an open fifth C-G is C, not Gsus4 without its fifth.
4. **Ties** (equal scores) go to the chord whose root is in the bass (root position), then to
   the simpler quality (maj, min, 7, m7, dim, maj7, m7b5, dim7, sus4, aug), then to the root
   closest above the bass. Symmetric chords (augmented triads, diminished sevenths) therefore
   take the bass as their root: C# E G Bb over E is Edim7. Two chords in one beat are a tie or
   close to one: the one in root position over the beat's bass usually wins.
5. **Bass of the label** is the lowest note sounding at the beat's start (or, when nothing
   sounds then, the lowest of the first notes to start); when that note is not a tone of the
   chord (an accented passing note in the bass), the lowest chord tone in the beat.
   A beat where nothing sounds has no chord (None).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from composer.errors import MusicError
from composer.harmony.chords import QUALITIES, Chord

NoteSpan = tuple[int, int, int]  # (start step, duration in steps, MIDI pitch); label_spans also takes Notes

BASS_BONUS = 1.0
MISSING_PENALTY = {0: 2.0, 2: 1.5, 3: 1.5, 4: 0.5}  # by letter step above the root: root, third, fourth, fifth
_PREFERENCE = ("maj", "min", "7", "m7", "dim", "maj7", "m7b5", "dim7", "sus4", "aug")  # rule 4: simpler first
_TEMPLATES = [(root, quality, tuple((root + i) % 12 for i in intervals), steps)
              for quality, (intervals, steps) in QUALITIES.items() for root in range(12)]


def label_beats(parts: Sequence[Sequence[NoteSpan]], beat_steps: int, n_beats: int) -> list[Chord | None]:
    """One chord (or None for silence) per beat: beat b spans steps b*beat_steps..(b+1)*beat_steps."""
    if beat_steps < 1 or n_beats < 0:
        raise MusicError(f"bad beats for chord labelling: {n_beats} beats of {beat_steps} steps")
    return label_spans(parts, [b * beat_steps for b in range(n_beats + 1)])


def label_spans(parts: Sequence[Sequence[NoteSpan]], edges: Sequence[int]) -> list[Chord | None]:
    """One chord (or None) per span edges[i]..edges[i + 1] (beats, half bars or bars: the harmonic rhythm)."""
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise MusicError(f"span edges for chord labelling must increase, got {list(edges)[:8]}")
    inside: list[list[NoteSpan]] = [[] for _ in range(max(len(edges) - 1, 0))]
    for part in parts:
        for note in part:
            if not isinstance(note, tuple):  # a composer.music.melody.Note
                note = (note.start, note.duration, note.pitch)
            start, duration, _ = note
            first = max(bisect.bisect_right(edges, start) - 1, 0)
            for i in range(first, len(inside)):
                if edges[i] >= start + duration:
                    break
                if edges[i + 1] > start:
                    inside[i].append(note)
    return [label_span(notes, lo, hi) for notes, lo, hi in zip(inside, edges, edges[1:])]


def label_span(notes: Sequence[NoteSpan], lo: int, hi: int) -> Chord | None:
    """The chord of the notes sounding in steps lo..hi (rules in the module docstring)."""
    sounding = [(max(s, lo), min(s + d, hi), p) for s, d, p in notes if s < hi and s + d > lo]
    if not sounding:
        return None
    length = hi - lo
    weight = [0.0] * 12
    times: list[list[tuple[int, int]]] = [[] for _ in range(12)]
    for s, e, p in sounding:
        weight[p % 12] += (e - s) / length
        times[p % 12].append((s, e))
    heard = [w > 0 for w in weight]
    real = [any(s == lo for s, _ in times[pc]) or weight[pc] > 0.5 for pc in range(12)]  # rule 3
    first = min(s for s, _, _ in sounding)
    bass = min(p for s, _, p in sounding if s == first) % 12
    edges = sorted({t for s, e, _ in sounding for t in (s, e)})
    for a, b in zip(edges, edges[1:]):  # rule 1: the bass line, the lowest note at each moment
        low = min((p for s, e, p in sounding if s <= a and e >= b), default=None)
        if low is not None:
            weight[low % 12] += BASS_BONUS * (b - a) / length
    best, best_key = None, None
    for root, quality, tones, steps in _TEMPLATES:
        if steps[-1] == 6 and not (real[tones[-1]] and _together(times[root], times[tones[-1]])):
            continue  # rule 3: a passing seventh, or two chords in one span
        if quality == "aug" and not all(real[t] for t in tones):
            continue  # rule 3: a triad with a chromatic passing note
        if quality == "sus4" and (heard[(root + 3) % 12] or heard[(root + 4) % 12] or not all(heard[t] for t in tones)):
            continue  # rule 3: a suspension resolving within the span
        missing = sum(MISSING_PENALTY.get(step, 0.0) for t, step in zip(tones, steps) if not heard[t])
        score = sum(weight[t] for t in tones) - missing
        key = (round(score, 9), root == bass, -_PREFERENCE.index(quality), -((root - bass) % 12))
        if best_key is None or key > best_key:
            best, best_key = (root, quality, tones), key
    root, quality, tones = best
    if bass not in tones:  # rule 5: an accented passing note in the bass
        bass = min((p for _, _, p in sounding if p % 12 in tones), default=root) % 12
    return Chord(root, quality, bass)


def _together(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    """True when some interval of ``a`` overlaps some interval of ``b`` (two pitch classes sound at once)."""
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)
