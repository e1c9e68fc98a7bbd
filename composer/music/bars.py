"""Per-bar analysis of a melody: the shape of each bar, and which bars repeat an earlier one.

Generation uses it to plan repeats (composer.generate.structure), evaluation to measure them
(composer.evaluate.stats)."""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from composer.music.melody import Melody


def bar_shapes(melody: Melody) -> dict[int, tuple[tuple, tuple, tuple]]:
    """Per bar holding an onset, in order: (rhythm, contour, pitches) of the notes starting in
    it; rhythm as (onset in the bar, duration), contour as the sign of each step."""
    bar = melody.bar_steps
    per_bar: dict[int, list] = {}
    for n in melody.notes:
        per_bar.setdefault(n.start // bar, []).append(n)
    return {b: (tuple((n.start - b * bar, n.duration) for n in notes),
                tuple(int(np.sign(y.pitch - x.pitch)) for x, y in zip(notes, notes[1:])),
                tuple(n.pitch for n in notes))
            for b, notes in sorted(per_bar.items())}


def repeated_bars(melody: Melody) -> tuple[int, int]:
    """(bars whose rhythm and contour repeat an earlier bar's, bars holding an onset)."""
    shapes = bar_shapes(melody)
    seen, repeats = set(), 0
    for rhythm, contour, _ in shapes.values():
        repeats += (rhythm, contour) in seen
        seen.add((rhythm, contour))
    return repeats, len(shapes)


def bar_repetition(melody: Melody) -> float:
    """Share of non-empty bars whose rhythm and contour repeat an earlier bar's."""
    repeats, filled = repeated_bars(melody)
    return repeats / filled if filled else 0.0


# --- degenerate loops -------------------------------------------------------------------
LOOP_BARS = 8  # a run of at least this many bars ...
LOOP_PERIODS = (1, 2)  # ... that is one pattern of this many bars repeated is a degenerate loop


def bar_contents(melody: Melody) -> list[tuple[tuple[int, int, int], ...]]:
    """Per bar (every bar, empty ones too): its notes as (onset from the bar line, duration,
    pitch), by the bar each note starts in; a note held over from the bar before adds nothing."""
    starts = melody.bar_starts
    out: list[list[tuple[int, int, int]]] = [[] for _ in range(melody.n_bars)]
    for n in melody.notes:
        b = melody.bar_of(n.start)
        out[b].append((n.start - starts[b], n.duration, n.pitch))
    return [tuple(x) for x in out]


def loop_run(contents: Sequence[Hashable], periods: Sequence[int] = LOOP_PERIODS) -> tuple[int, int, int]:
    """(first bar, length, period) of the longest run of consecutive items in which every item
    equals the one ``period`` before (the run counts its first period too) and the repeated
    pattern is not all empty (falsy) items; (0, 0, 0) for none."""
    best = (0, 0, 0)
    for p in periods:
        start = 0
        for i in range(p, len(contents) + 1):
            if i == len(contents) or contents[i] != contents[i - p]:
                length = i - start
                if length >= 2 * p and length > best[1] and any(contents[start:start + p]):
                    best = (start, length, p)
                start = i - p + 1 if i < len(contents) else start
    return best


def degenerate_loop(melody: Melody, min_bars: int = LOOP_BARS) -> tuple[int, int, int] | None:
    """(first bar, bars, period) of the melody's longest degenerate loop, or None.

    A degenerate loop is a run of ``min_bars`` (8) or more consecutive bars that is one 1- or
    2-bar pattern repeated: each bar equals the bar one (or two) before, compared by its notes'
    onsets from the bar line, durations and exact pitches (``bar_contents``). The pattern must
    hold a note: a run of empty bars is a rest (a chorale line waits 11 bars between phrases),
    not a loop. Transposed repeats do not count: a sequence (one figure a step lower each time)
    is a composer's device, while the copy-hint model's failure is the literal loop, and exact
    pitches keep the definition strict. Measured on midi_corpus/ (2,248 tunes read with the
    shipped tokenizer): no tune holds a loop by this definition; counting transposed repeats
    too, one does (an O'Neill's tune)."""
    start, length, period = loop_run(bar_contents(melody))
    return (start, length, period) if length >= min_bars else None


def is_pickup(notes: Sequence[tuple[int, int]], bar_steps: int) -> bool:
    """True for a bar that is mostly rest, as a tune's opening pickup (anacrusis) bar is: given
    its notes as (onset from the bar line, duration), the first starts in the bar's second half,
    or together they sound for less than half the bar (an empty bar too)."""
    half = bar_steps / 2
    if not notes or notes[0][0] >= half:
        return True
    return sum(min(d, bar_steps - s) for s, d in notes) < half
