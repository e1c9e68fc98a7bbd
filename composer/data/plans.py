"""Bar plans of real tunes: which bars repeat an earlier bar, exactly or as an echo.

A plain LSTM wanders; real tunes repeat (a reel's 16-bar opening is often its A part
twice, with a second ending). From each training melody we keep its *bar plan*: per
bar, fresh, an exact copy of an earlier bar, or an echo of one (same rhythm and
contour, new pitches: a sequence). Checkpoints store the plans of their training tunes;
``composer.generate.structure`` draws them for generation.

A plan is a list of ints, one per bar: ``FRESH`` (-1), or ``2 * j + kind`` where
``j`` is the earlier bar and ``kind`` is ``COPY`` (0) or ``ECHO`` (1).
"""

from __future__ import annotations

from typing import Sequence

import torch

from composer.music.bars import bar_shapes
from composer.music.melody import Melody
from composer.tokens.tokenizer import Tokenizer

FRESH, COPY, ECHO = -1, 0, 1
MAX_PLAN_BARS = 64  # bars kept per tune
PAD = -2  # past a tune's end in the stored table


def bar_plan(melody: Melody, max_bars: int = MAX_PLAN_BARS) -> list[int]:
    """The plan of a melody's first ``max_bars`` bars (notes by onset bar; empty bars are fresh)."""
    shapes = bar_shapes(melody)
    exact: dict[tuple, int] = {}
    shape: dict[tuple, int] = {}
    plan = []
    for b in range(min(melody.n_bars, max_bars)):
        if b not in shapes:
            plan.append(FRESH)
            continue
        rhythm, contour, pitches = shapes[b]
        if (rhythm, pitches) in exact:
            plan.append(2 * exact[(rhythm, pitches)] + COPY)
        elif (rhythm, contour) in shape:
            plan.append(2 * shape[(rhythm, contour)] + ECHO)
        else:
            plan.append(FRESH)
        exact.setdefault((rhythm, pitches), b)
        shape.setdefault((rhythm, contour), b)
    return plan


def plan_table(melodies: Sequence[Melody], max_bars: int = MAX_PLAN_BARS) -> torch.Tensor:
    """(tunes, max_bars) int16 plans, padded past each tune's end: stored in the checkpoint."""
    table = torch.full((len(melodies), max_bars), PAD, dtype=torch.int16)
    for i, m in enumerate(melodies):
        p = bar_plan(m, max_bars)
        table[i, : len(p)] = torch.tensor(p, dtype=torch.int16)
    return table


def table_from_ids(seqs: Sequence[Sequence[int]], tokenizer: Tokenizer, max_bars: int = MAX_PLAN_BARS) -> torch.Tensor:
    """``plan_table`` of tokenized melodies (a training split)."""
    return plan_table([tokenizer.decode(ids) for ids in seqs], max_bars)
