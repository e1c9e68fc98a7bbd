"""Per-bar analysis of a melody: the shape of each bar, and which bars repeat an earlier one.

Generation uses it to plan repeats (composer.generate.structure), evaluation to measure them
(composer.evaluate.stats)."""

from __future__ import annotations

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
