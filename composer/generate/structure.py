"""Bar-level structure borrowed from real tunes: which bars repeat an earlier bar.

A plain LSTM wanders; real tunes repeat (a reel's 16-bar opening is often its A part
twice, with a second ending). From each training melody we keep its *bar plan*: per
bar, fresh, an exact copy of an earlier bar, or an echo of one (same rhythm and
contour, new pitches: a sequence). ``compose generate`` draws the plan of a random
training tune for each variation and the sampler follows it, so the generated set
repeats bars as often, and in the same ways, as the corpus does; the notes
themselves are always the model's.

A plan is a list of ints, one per bar: ``FRESH`` (-1), or ``2 * j + kind`` where
``j`` is the earlier bar and ``kind`` is ``COPY`` (0) or ``ECHO`` (1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from composer.music.melody import Melody
from composer.evaluate.stats import bar_shapes

FRESH, COPY, ECHO = -1, 0, 1
MAX_PLAN_BARS = 64  # bars kept per tune
_PAD = -2  # past a tune's end in the stored table


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


def checkpoint_table(blob: dict) -> torch.Tensor | None:
    """The bar plans a checkpoint stores (None for checkpoints from before them)."""
    table = (blob.get("extra") or {}).get("structure")
    return table if isinstance(table, torch.Tensor) else None


def plan_table(melodies: Sequence[Melody], max_bars: int = MAX_PLAN_BARS) -> torch.Tensor:
    """(tunes, max_bars) int16 plans, padded past each tune's end: stored in the checkpoint."""
    table = torch.full((len(melodies), max_bars), _PAD, dtype=torch.int16)
    for i, m in enumerate(melodies):
        p = bar_plan(m, max_bars)
        table[i, : len(p)] = torch.tensor(p, dtype=torch.int16)
    return table


def table_from_ids(seqs: Sequence[Sequence[int]], max_bars: int = MAX_PLAN_BARS) -> torch.Tensor:
    """``plan_table`` of tokenized melodies (a training split)."""
    from composer.tokens.tokenizer import decode

    return plan_table([decode(ids) for ids in seqs], max_bars)


def draw_plans(table: torch.Tensor | None, rows: int, bars: int, generator: torch.Generator) -> tuple[tuple[int, ...], ...] | None:
    """One plan of ``bars`` bars per row, each from a random tune at least that long (else the
    longest tunes, fresh past their end); None without a table."""
    if table is None or table.numel() == 0:
        return None
    width = min(bars, table.shape[1])
    length = (table >= FRESH).sum(1)
    pool = torch.nonzero(length >= width).flatten()
    if pool.numel() == 0:
        pool = torch.nonzero(length == length.max()).flatten()
    pick = pool[torch.randint(0, pool.numel(), (rows,), generator=generator)]
    plans = []
    for i in pick.tolist():
        p = [int(v) if v >= FRESH else FRESH for v in table[i, :width].tolist()]
        plans.append(tuple(p + [FRESH] * (bars - width)))
    return tuple(plans)


def default_form(model, blob: dict) -> str:
    """What ``compose generate`` does without --form: 'corpus' (follow training tunes' bar plans)
    for a plain LSTM whose checkpoint holds them; 'free' for a model that reads copy hints,
    which makes its own repeats (on top of a plan it repeats far more than real tunes do:
    57% of bars against 41%, where alone it repeats 33%)."""
    if model.cfg.copy_hints or checkpoint_table(blob) is None:
        return "free"
    return "corpus"


def repeated_share(plan: Sequence[int]) -> float:
    """Share of bars that copy or echo an earlier one."""
    return sum(v != FRESH for v in plan) / max(len(plan), 1)


# What a following row must take next: a token id (>= 0), or one of these.
_FREE, _LOWER, _SAME, _HIGHER, _CLOSE = -1, -2, -3, -4, -5


class Follower:
    """Steers each row of a sampled span along its bar plan, through the grammar's mask.

    When a row opens a bar its plan copies, the tokens of the earlier bar are queued (an
    echo queues its positions and durations, and for each later note whether its pitch
    goes down, stays or goes up), followed by the bar line. ``constrain`` narrows the
    mask to the queued token; a token the grammar forbids (a note still sounding from
    the bar before, a span ending) drops the rest of the queue and the bar goes on
    freely. Rows keep their own bars, so every copy is of the model's own music.
    """

    def __init__(self, plans: Sequence[Sequence[int]], tables) -> None:
        self.plans = [list(p) for p in plans]
        self.t = tables
        rows = len(self.plans)
        self.bar = [0] * rows  # bar of the span each row is in (the span's first Bar is taken)
        self.bars: list[list[list[int]]] = [[[]] for _ in range(rows)]  # per row, per bar: tokens after its Bar
        self.queue: list[list[int] | None] = [None] * rows
        self.qi = [0] * rows
        self.last_pitch = [-1] * rows  # previous pitch id in the current bar (-1: none yet)

    def constrain(self, blocked: np.ndarray, close: int) -> None:
        """Narrow ``blocked`` (rows, V) in place for the rows following a queue."""
        t = self.t
        for row, q in enumerate(self.queue):
            if q is None:
                continue
            item, b = q[self.qi[row]], blocked[row]
            if item >= 0:
                if b[item]:
                    self.queue[row] = None  # the grammar forbids it here: go on freely
                    continue
                b.fill(True)
                b[item] = False
            elif item == _CLOSE:
                ok_bar, ok_close = not b[t.bar], not b[close]
                if not (ok_bar or ok_close):
                    self.queue[row] = None
                    continue
                b.fill(True)
                b[t.bar], b[close] = not ok_bar, not ok_close
            elif item != _FREE and self.last_pitch[row] >= 0:
                lp = self.last_pitch[row]
                lo, hi = (t.pitch0, lp) if item == _LOWER else (lp, lp + 1) if item == _SAME else (lp + 1, t.dur0)
                if not b[lo:hi].all():  # some pitch on that side is allowed
                    b[:lo] = True
                    b[hi:] = True

    def advance(self, tok: np.ndarray, took: np.ndarray | None = None) -> None:
        """Note the token each row took (rows where ``took`` is False took none)."""
        t = self.t
        for row, tk in enumerate(tok.tolist()):
            if took is not None and not took[row]:
                continue
            q = self.queue[row]
            if q is not None:
                self.qi[row] += 1
                if self.qi[row] == len(q):
                    self.queue[row] = None
            if tk == t.bar:
                self._open(row)
                continue
            self.bars[row][-1].append(tk)
            if t.pitch0 <= tk < t.dur0:
                self.last_pitch[row] = tk

    def _open(self, row: int) -> None:
        """A new bar: queue the bar it copies or echoes, if any."""
        self.bar[row] += 1
        self.bars[row].append([])
        self.last_pitch[row] = -1
        self.queue[row], self.qi[row] = None, 0
        b, plan = self.bar[row], self.plans[row]
        if b >= len(plan) or plan[b] == FRESH:
            return
        j, kind = divmod(plan[b], 2)
        src = self.bars[row][j] if j < b else []
        if not src:
            return
        if kind == COPY:
            q = list(src)
        else:
            t, q, prev = self.t, [], None
            for tk in src:
                if t.pitch0 <= tk < t.dur0:
                    q.append(_FREE if prev is None else (_LOWER if tk < prev else _SAME if tk == prev else _HIGHER))
                    prev = tk
                else:
                    q.append(tk)
        self.queue[row] = q + [_CLOSE]
