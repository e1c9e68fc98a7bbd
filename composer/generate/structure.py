"""Bar-level structure for generation: plans drawn from the training tunes (``--form corpus``)
and the ``Follower`` that steers sampled rows along them.

``compose generate --form corpus`` draws the plan of a random training tune for each
variation (``composer.data.plans``) and the sampler follows it, so the generated set
repeats bars as often, and in the same ways, as the corpus does; the notes themselves
are always the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from composer.data.plans import COPY, FRESH
from composer.music.bars import is_pickup

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


# --- repeats of a --form section: rules for single bars, beside the ints of a bar plan ---------
@dataclass(frozen=True)
class Literal:
    """The bar exactly: these tokens after its Bar (an earlier section's bar, repeated)."""

    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Differ:
    """Any bar but this one (--vary's new last bar). While a row is still writing exactly these
    tokens, it may not take the last note's pitch, nor close the bar, that would complete them
    (a later token is refused instead where the grammar leaves no other choice), so the bar
    differs at least in how it ends, as a second ending does."""

    tokens: tuple[int, ...]


@dataclass(frozen=True)
class LeadIn:
    """A fresh bar in place of a pickup: notes from the first half of the bar on, ending by step
    ``at``, then ``tail`` (the pickup's own notes from ``at``: Pos, Pitch, Dur..., which lead
    into the section's second bar); without a tail, fresh notes fill the bar."""

    tail: tuple[int, ...]
    at: int  # onset of the tail in the bar (the bar's length when there is none)
    half: int  # the first note must start before this step


Rule = int | Literal | Differ | LeadIn  # one bar of a plan: FRESH, 2 * j + COPY/ECHO, or a rule


def bar_tokens(section: Sequence[int], bar: int) -> list[list[int]]:
    """A sampled span's tokens (each bar opened by ``bar``) split into its bars' tokens."""
    out: list[list[int]] = []
    for tk in section:
        if tk == bar:
            out.append([])
        elif out:
            out[-1].append(tk)
    return out


def bar_notes(tokens: Sequence[int], tables) -> list[tuple[int, int]]:
    """(onset in the bar, duration) of each note a bar's tokens start."""
    notes: list[list[int]] = []
    for tk in tokens:
        if tables.is_pos[tk]:
            notes.append([int(tables.pos_value[tk]), 0])
        elif tables.dur_value[tk] and notes:
            notes[-1][1] += int(tables.dur_value[tk])
    return [(a, b) for a, b in notes]


def repeat_plan(section: Sequence[int], tables, bar_steps: int, vary: bool) -> tuple[Rule, ...]:
    """The plan that repeats an earlier section (its tokens, each bar opened by Bar).

    Every bar is repeated exactly (``Literal``), with two exceptions. With ``vary`` the last
    bar is new (``Differ``): it must not come out as the original (when no note starts in it,
    the bar before may not either: its last note, held over the last bar, is the ending). And when the section opens
    with a pickup (``composer.music.bars.is_pickup``: mostly rest, as most tunes' first bar is),
    the repeat does not open with that rest in mid-tune: its first bar is a ``LeadIn``, fresh
    notes from the first half of the bar on (the model continues from the section before, as
    a tune's last bar runs on into the repeat) that make way for the pickup's notes from the
    middle of the bar on, which lead into bar 2 as they did the first time. This is how a real
    tune with an anacrusis comes round: the bar before the repeat holds the end of the phrase
    and the pickup notes, and the repeat goes on from the first full bar."""
    bars = bar_tokens(section, tables.bar)
    plan: list[Rule] = [Literal(tuple(b)) for b in bars]
    if vary:
        plan[-1] = Differ(tuple(bars[-1]))
        if not bar_notes(bars[-1], tables) and len(bars) > 1:  # a note held over the last bar: vary that note too
            plan[-2] = Differ(tuple(bars[-2]))
    first = bars[0]
    notes = bar_notes(first, tables)
    if is_pickup(notes, bar_steps) and not (vary and len(bars) == 1):  # (one bar: --vary's rule wins)
        half = (bar_steps + 1) // 2
        cut = [i for i, tk in enumerate(first) if tables.is_pos[tk] and tables.pos_value[tk] >= half]
        at = int(tables.pos_value[first[cut[0]]]) if cut else bar_steps
        plan[0] = LeadIn(tuple(first[cut[0]:]) if cut else (), at, half)
    return tuple(plan)


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
        self.differ: list[Differ | None] = [None] * rows  # the bar a row must not write
        self.differ_k = [0] * rows  # tokens of it written so far (-1: already different)
        self.differ_from = [0] * rows  # from this token on, completing it is refused
        self.lead: list[LeadIn | None] = [None] * rows
        self.lead_note = [[-1, 0] for _ in range(rows)]  # (onset, duration so far) of a lead-in's open note
        self._pos, self._dur = tables.is_pos & (tables.pos_value >= 0), tables.dur_value
        for row, plan in enumerate(self.plans):
            if plan and not isinstance(plan[0], int):
                self._rule(row, plan[0])  # the span's first bar is open already

    def constrain(self, blocked: np.ndarray, close: int) -> None:
        """Narrow ``blocked`` (rows, V) in place for the rows following a queue or a rule."""
        t = self.t
        for row in range(len(self.plans)):
            if self.differ[row] is not None:
                self._refuse_same(row, blocked[row], close)
            elif self.lead[row] is not None:
                self._lead_in(row, blocked[row], close)
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
            if self.differ[row] is not None:
                k, same = self.differ_k[row], self.differ[row].tokens
                self.differ_k[row] = k + 1 if 0 <= k < len(same) and same[k] == tk else -1
            elif self.lead[row] is not None:
                self._lead_took(row, tk)

    def _rule(self, row: int, rule: Rule) -> None:
        """Start following a bar rule in the row's open bar."""
        if isinstance(rule, Literal):
            self.queue[row], self.qi[row] = list(rule.tokens) + [_CLOSE], 0
        elif isinstance(rule, Differ):
            pitches = [i for i, tk in enumerate(rule.tokens) if self.t.pitch0 <= tk < self.t.dur0]
            self.differ[row], self.differ_k[row] = rule, 0
            self.differ_from[row] = pitches[-1] if pitches else len(rule.tokens)
        elif isinstance(rule, LeadIn):
            self.lead[row], self.lead_note[row] = rule, [-1, 0]

    def _refuse_same(self, row: int, b: np.ndarray, close: int) -> None:
        """While the row is still writing the Differ bar, refuse the token that would go on
        matching it (from its last pitch on), unless nothing else is allowed there."""
        k, same = self.differ_k[row], self.differ[row].tokens
        if k < 0 or k < self.differ_from[row]:
            return
        items = [same[k]] if k < len(same) else [self.t.bar, close]
        was = b[items].copy()
        b[items] = True
        if b.all():
            b[items] = was  # no other choice here: refuse a later token instead

    def _lead_in(self, row: int, b: np.ndarray, close: int) -> None:
        """A LeadIn's fill: first onset before ``half``, notes ending by ``at``, no closing the
        bar before the tail (or before any note); if nothing is left, the bar goes on freely."""
        r, t = self.lead[row], self.t
        onset, length = self.lead_note[row]
        was = b.copy()
        b |= self._pos & (t.pos_value > r.at)
        if onset < 0:
            b |= self._pos & (t.pos_value >= r.half)
        else:
            b |= (self._dur > 0) & (onset + length + self._dur > r.at)
        if r.tail or onset < 0:
            b[[t.bar, close]] = True
        if b.all():
            b[:] = was
            self.lead[row] = None

    def _lead_took(self, row: int, tk: int) -> None:
        """Follow a LeadIn's fill; its tail's first onset hands the row to a queue of the tail."""
        r, t = self.lead[row], self.t
        if t.is_pos[tk]:
            if r.tail and self.lead_note[row][0] >= 0 and t.pos_value[tk] == r.at:
                self.lead[row] = None
                self.queue[row], self.qi[row] = list(r.tail[1:]) + [_CLOSE], 0
                return
            self.lead_note[row] = [int(t.pos_value[tk]), 0]
        elif self._dur[tk]:
            self.lead_note[row][1] += int(self._dur[tk])

    def _open(self, row: int) -> None:
        """A new bar: queue the bar it copies or echoes, if any."""
        self.bar[row] += 1
        self.bars[row].append([])
        self.last_pitch[row] = -1
        self.queue[row], self.qi[row] = None, 0
        self.differ[row], self.lead[row] = None, None
        b, plan = self.bar[row], self.plans[row]
        if b >= len(plan) or plan[b] == FRESH:
            return
        if not isinstance(plan[b], int):
            self._rule(row, plan[b])
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
