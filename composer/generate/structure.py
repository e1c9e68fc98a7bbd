"""Bar-level structure for generation: plans drawn from the training tunes (``--form corpus``)
and the ``Follower`` that steers sampled rows along them.

``compose generate --form corpus`` draws the plan of a random training tune for each
variation (``composer.data.plans``) and the sampler follows it, so the generated set
repeats bars as often, and in the same ways, as the corpus does; the notes themselves
are always the model's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from composer.data.plans import COPY, FRESH

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


def default_form(copy_hints: bool, has_plans: bool) -> str:
    """What ``compose generate`` does without a form: 'corpus' (follow training tunes' bar plans)
    for a plain LSTM whose checkpoint holds them; 'free' for a model that reads copy hints,
    which makes its own repeats (on top of a plan it repeats far more than real tunes do:
    57% of bars against 41%, where alone it repeats 33%)."""
    return "corpus" if has_plans and not copy_hints else "free"


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
