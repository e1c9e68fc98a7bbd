"""The triad baseline that the harmonizer must beat: one chord per two quarter notes, the diatonic
triad of the key that covers most of the melody's time there.

Rules:
- Spans: from each bar line, one every two quarter notes (24 grid steps); a bar that is not a
  whole number of half notes ends with a shorter span (3/4: 24 + 12 steps; 6/8: 24 + 12).
- Candidates: the seven diatonic triads of the bar's key (``Melody.key_at``); in minor the
  natural minor's (i, ii°, III, iv, v, VI, VII) and also the major dominant V, whose third is
  the leading tone (G# in A minor).
- Choice: the candidate whose tones the melody sounds longest in the span (notes crossing the
  span's edges count for their part inside). Ties go to I, then V, then IV, then the rest (major:
  vi, ii, iii, vii°; minor: VI, III, VII, v, ii°), so a span holding only D in C major is G.
- A span where the melody rests keeps the chord before it (the tonic at the start).
All chords are in root position.
"""

from __future__ import annotations

from composer.harmony.chords import Chord
from composer.music.keys import Key
from composer.music.melody import STEPS_PER_QUARTER, Melody

SPAN_STEPS = 2 * STEPS_PER_QUARTER  # one chord per two quarter notes
# (degree above the tonic, quality), in tie-break order: I, V, IV, then the rest.
MAJOR_TRIADS = ((0, "maj"), (7, "maj"), (5, "maj"), (9, "min"), (2, "min"), (4, "min"), (11, "dim"))
MINOR_TRIADS = ((0, "min"), (7, "maj"), (5, "min"), (8, "maj"), (3, "maj"), (10, "maj"), (7, "min"), (2, "dim"))


def diatonic_triads(key: Key) -> list[Chord]:
    """The baseline's candidates for ``key``, in tie-break order (minor: with the major dominant)."""
    return [Chord((key.tonic + degree) % 12, quality) for degree, quality in (MINOR_TRIADS if key.minor else MAJOR_TRIADS)]


def baseline_spans(melody: Melody) -> list[tuple[int, int]]:
    """(start step, duration in steps) of the baseline's chords: every two quarters from each bar line."""
    starts = melody.bar_starts
    return [(at, min(SPAN_STEPS, hi - at)) for lo, hi in zip(starts, starts[1:]) for at in range(lo, hi, SPAN_STEPS)]


def triad_baseline(melody: Melody) -> list[tuple[int, int, Chord]]:
    """(start step, duration in steps, chord) for the whole melody, by the rules above."""
    out: list[tuple[int, int, Chord]] = []
    notes = melody.notes
    first = 0  # notes before this index end before the current span (spans go left to right)
    previous = None
    for start, length in baseline_spans(melody):
        end = start + length
        while first < len(notes) and notes[first].end <= start:
            first += 1
        time = [0] * 12
        for note in notes[first:]:
            if note.start >= end:
                break
            time[note.pitch % 12] += min(note.end, end) - max(note.start, start)
        candidates = diatonic_triads(melody.key_at(melody.bar_of(start)))
        if any(time):
            chord = max(candidates, key=lambda c: sum(time[t] for t in c.tones()))  # max keeps the first of equals
        else:
            chord = previous or candidates[0]
        out.append((start, length, chord))
        previous = chord
    return out
