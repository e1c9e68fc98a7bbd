"""The token grammar as vectorized masks: which ids may come next, for a batch of sequences.

A body is ``(Bar TimeSig? Key? (Pos Pitch Dur+)*)*`` followed by a closing token, and must
hold exactly ``target`` bars. Per sequence the state is a phase, the bars opened ``b``, the
current bar's start and length, and a cursor (the end of the last note, or the onset of the
note being written). A meter or key change (``TimeSig``/``Key`` after ``Bar``, vocabulary
version 2) is accepted in forced tokens (a prime) and changes the bar length from there;
sampling never draws one, so a generated melody keeps the meter and key it is in. Because each kind's ids are contiguous, every allowed set is a
union of at most two id ranges plus the single ``Bar`` and closing ids, so a mask
for the whole batch costs a handful of numpy comparisons, never a Python loop.

Rules (``t`` = cursor, ``s`` = start of the current bar):
  in a bar      ``Pos_p`` for ``max(t - s, 0) <= p < bar_len`` (monophonic: no onset
                before the previous note ends); ``Bar`` while ``b < target`` (when
                sampling, not before the first note: a melody never opens with an
                empty bar, which MIDI readers would drop); the
                closing id once ``b == target`` and a note sounds in the last bar.
  after Pos     ``Pitch`` inside the pitch range.
  after Pitch   ``Dur_d`` with the note ending by the last bar line ``s + (target - b + 1) * bar_len``.
  after Dur_96  a further ``Dur`` (the values add up) or any in-bar option.
The closing id is ``EOS`` at the end of a melody, or ``Bar`` when another section
follows (that ``Bar`` then opens the next section and is not consumed here).
"""

from __future__ import annotations

import numpy as np

from composer.errors import TokenizerError
from composer.music.melody import PITCH_MAX, PITCH_MIN
from functools import lru_cache

from composer.tokens.tokenizer import BAR, DUR, KEY, MAX_DUR, PITCH, POS, TIMESIG, Vocab

IN_BAR, AFTER_POS, AFTER_PITCH, AFTER_LONG_DUR, DONE, INVALID, AFTER_BAR, AFTER_TS = range(8)
_OPEN = (IN_BAR, AFTER_LONG_DUR, AFTER_BAR, AFTER_TS)  # phases where a note, Bar or close may come


class Tables:
    """Per-id lookup arrays derived from the vocabulary, built once."""

    def __init__(self, vocab: Vocab) -> None:
        kinds, values = vocab.kinds, vocab.values
        self.size = len(vocab)
        self.pos0, self.pitch0, self.dur0 = vocab.first(POS), vocab.first(PITCH), vocab.first(DUR)
        self.bar, self.eos, self.pad = vocab.bar, vocab.eos, vocab.pad
        self.ids = np.arange(self.size, dtype=np.int64)[None, :]  # (1, V) for broadcasting
        nxt = np.full(self.size, INVALID, dtype=np.int64)
        nxt[kinds == BAR] = AFTER_BAR if vocab.changes else IN_BAR
        nxt[kinds == TIMESIG] = AFTER_TS
        nxt[kinds == KEY] = IN_BAR
        nxt[kinds == POS] = AFTER_POS
        nxt[kinds == PITCH] = AFTER_PITCH
        nxt[kinds == DUR] = IN_BAR
        nxt[self.dur0 + MAX_DUR - 1] = AFTER_LONG_DUR
        nxt[self.eos] = DONE
        self.next_phase = nxt  # phase after each id
        self.is_bar = (kinds == BAR).astype(np.int64)
        self.is_pos = kinds == POS
        self.pos_value = np.where(kinds == POS, values, 0)
        self.dur_value = np.where(kinds == DUR, values, 0)
        self.ts_value = np.where(kinds == TIMESIG, values, 0)  # a meter change's bar length
        self.is_ts, self.is_key = kinds == TIMESIG, kinds == KEY


@lru_cache(maxsize=4)
def tables_for(vocab: Vocab) -> Tables:
    """The (cached) tables of a vocabulary."""
    return Tables(vocab)


class Grammar:
    """Grammar state of ``batch`` sequences after their header (BOS TimeSig Key)."""

    def __init__(self, bar_steps: np.ndarray, tables: Tables,
                 pitch_range: tuple[int, int] = (PITCH_MIN, PITCH_MAX)) -> None:
        lo, hi = pitch_range
        if not PITCH_MIN <= lo <= hi <= PITCH_MAX:
            raise TokenizerError(f"pitch range {lo}-{hi} is empty or outside {PITCH_MIN}-{PITCH_MAX}")
        self.t = tables
        self.bar_len = np.asarray(bar_steps, dtype=np.int64).copy()  # (B,)
        batch = len(self.bar_len)
        self.phase = np.full(batch, IN_BAR, dtype=np.int64)
        self.bars = np.zeros(batch, dtype=np.int64)  # Bar tokens seen
        self.cursor = np.zeros(batch, dtype=np.int64)  # end of last note / onset of the open note
        self.start = np.zeros(batch, dtype=np.int64)  # step where the current bar starts
        self.target = np.ones(batch, dtype=np.int64)  # bars the current span must reach
        self.close = tables.eos
        self.pitch_ids = (tables.pitch0 + lo - PITCH_MIN, tables.pitch0 + hi - PITCH_MIN + 1)
        self._allowed = np.empty((batch, tables.size), dtype=bool)
        self._tmp = np.empty((batch, tables.size), dtype=bool)
        self.blocked = np.empty((batch, tables.size), dtype=bool)  # reused output of mask()

    @property
    def batch(self) -> int:
        return len(self.phase)

    def set_span(self, target: np.ndarray | int, final: bool) -> None:
        """Bars each sequence must reach (absolute count), and whether EOS or Bar closes the span."""
        self.target = np.broadcast_to(np.asarray(target, dtype=np.int64), self.phase.shape).copy()
        self.close = self.t.eos if final else self.t.bar

    def _ranges(self, forced: bool = False):
        """Per sequence: Pos range, Pitch/Dur range, Bar allowed, close allowed."""
        t, ph, b, n, bl, cur, start = self.t, self.phase, self.bars, self.target, self.bar_len, self.cursor, self.start
        in_bar = np.isin(ph, _OPEN)
        pos_lo = t.pos0 + np.maximum(cur - start, 0)
        pos_hi = np.where(in_bar & (b > 0), t.pos0 + bl, 0)
        durs = np.minimum(start + (n - b + 1) * bl - cur, MAX_DUR)
        is_pitch = ph == AFTER_POS
        d_lo = np.where(is_pitch, self.pitch_ids[0], t.dur0)
        d_hi = np.where(is_pitch, self.pitch_ids[1], np.where((ph == AFTER_PITCH) | (ph == AFTER_LONG_DUR), t.dur0 + durs, 0))
        bar_ok = in_bar & (b < n)
        if not forced:
            bar_ok &= (b == 0) | (cur > 0)
        close_ok = in_bar & (b == n) & (cur > start)
        return pos_lo, pos_hi, d_lo, d_hi, bar_ok, close_ok

    def mask(self) -> np.ndarray:
        """(B, V) bool: True where an id is NOT allowed next (a reused buffer)."""
        pos_lo, pos_hi, d_lo, d_hi, bar_ok, close_ok = self._ranges()
        ids, a, tmp = self.t.ids, self._allowed, self._tmp
        np.greater_equal(ids, pos_lo[:, None], out=a)
        a &= np.less(ids, pos_hi[:, None], out=tmp)
        np.greater_equal(ids, d_lo[:, None], out=tmp)
        tmp &= ids < d_hi[:, None]
        a |= tmp
        a[:, self.t.bar] = bar_ok
        a[:, self.close] |= close_ok
        return np.logical_not(a, out=self.blocked)

    def allows(self, tok: np.ndarray) -> np.ndarray:
        """(B,) bool: whether each sequence may take ``tok`` (B,) next, any pitch (forced tokens)."""
        pos_lo, pos_hi, d_lo, d_hi, bar_ok, close_ok = self._ranges(forced=True)
        is_pitch = self.phase == AFTER_POS
        d_lo = np.where(is_pitch, self.t.pitch0, d_lo)
        d_hi = np.where(is_pitch, self.t.pitch0 + PITCH_MAX - PITCH_MIN + 1, d_hi)
        change = (self.bars > 1) & ((self.t.is_ts[tok] & (self.phase == AFTER_BAR))
                                    | (self.t.is_key[tok] & np.isin(self.phase, (AFTER_BAR, AFTER_TS))))
        return (((tok >= pos_lo) & (tok < pos_hi)) | ((tok >= d_lo) & (tok < d_hi)) | change
                | ((tok == self.t.bar) & bar_ok) | ((tok == self.close) & close_ok))

    def closing(self, tok: np.ndarray) -> np.ndarray:
        """(B,) bool: ``tok`` closes the span (EOS, or the Bar after the last bar)."""
        return (tok == self.close) & (self.bars == self.target) if self.close == self.t.bar else tok == self.close

    def advance(self, tok: np.ndarray, active: np.ndarray | None = None) -> None:
        """Take one token per sequence; rows where ``active`` is False keep their state."""
        t = self.t
        if active is not None:
            tok = np.where(active, tok, t.pad)  # PAD changes neither bars nor cursor
        bar = t.is_bar[tok]
        self.start = self.start + bar * (self.bars > 0) * self.bar_len
        self.bars += bar
        self.bar_len = np.where(t.is_ts[tok], t.ts_value[tok], self.bar_len)
        self.cursor = np.where(t.is_pos[tok], self.start + t.pos_value[tok], self.cursor + t.dur_value[tok])
        nxt = t.next_phase[tok]
        self.phase = nxt if active is None else np.where(active, nxt, self.phase)

    def done(self) -> np.ndarray:
        return self.phase == DONE


class Grammar1:
    """The same rules for one sequence, on Python ints: a batch-1 step costs a few
    microseconds instead of a dozen numpy calls. Offers Grammar's array interface too."""

    def __init__(self, bar_steps: int, tables: Tables,
                 pitch_range: tuple[int, int] = (PITCH_MIN, PITCH_MAX)) -> None:
        lo, hi = pitch_range
        if not PITCH_MIN <= lo <= hi <= PITCH_MAX:
            raise TokenizerError(f"pitch range {lo}-{hi} is empty or outside {PITCH_MIN}-{PITCH_MAX}")
        self.t = tables
        self.bar_len = int(bar_steps)
        self.phase, self.bars, self.cursor, self.target, self.start = IN_BAR, 0, 0, 1, 0
        self.close = tables.eos
        self.pitch_ids = (tables.pitch0 + lo - PITCH_MIN, tables.pitch0 + hi - PITCH_MIN + 1)
        self.blocked = np.ones((1, tables.size), dtype=bool)
        self._row = self.blocked[0]
        self._long = tables.dur0 + MAX_DUR - 1

    batch = 1

    def set_span(self, target, final: bool) -> None:
        self.target = int(np.asarray(target).reshape(-1)[0])
        self.close = self.t.eos if final else self.t.bar

    def _ranges(self, forced: bool = False) -> tuple[int, int, int, int, bool, bool]:
        t, ph, b, n, bl, cur, start = self.t, self.phase, self.bars, self.target, self.bar_len, self.cursor, self.start
        in_bar = ph in _OPEN
        pos_lo, pos_hi = t.pos0 + max(cur - start, 0), (t.pos0 + bl if in_bar and b > 0 else 0)
        if ph == AFTER_POS:
            d_lo, d_hi = (t.pitch0, t.pitch0 + PITCH_MAX - PITCH_MIN + 1) if forced else self.pitch_ids
        elif ph == AFTER_PITCH or ph == AFTER_LONG_DUR:
            d_lo, d_hi = t.dur0, t.dur0 + min(start + (n - b + 1) * bl - cur, MAX_DUR)
        else:
            d_lo, d_hi = 0, 0
        bar_ok = in_bar and b < n and (forced or b == 0 or cur > 0)
        return pos_lo, pos_hi, d_lo, d_hi, bar_ok, in_bar and b == n and cur > start

    def mask(self) -> np.ndarray:
        """(1, V) bool: True where an id is NOT allowed next (a reused buffer)."""
        pos_lo, pos_hi, d_lo, d_hi, bar_ok, close_ok = self._ranges()
        row = self._row
        row[:] = True
        if pos_hi > pos_lo:
            row[pos_lo:pos_hi] = False
        if d_hi > d_lo:
            row[d_lo:d_hi] = False
        if bar_ok:
            row[self.t.bar] = False
        if close_ok:
            row[self.close] = False
        return self.blocked

    def allows1(self, tok: int) -> bool:
        pos_lo, pos_hi, d_lo, d_hi, bar_ok, close_ok = self._ranges(forced=True)
        if self.t.is_ts[tok] or self.t.is_key[tok]:
            return self.bars > 1 and (self.phase == AFTER_BAR or (self.phase == AFTER_TS and bool(self.t.is_key[tok])))
        return (pos_lo <= tok < pos_hi or d_lo <= tok < d_hi or (tok == self.t.bar and bar_ok)
                or (tok == self.close and close_ok))

    def closes(self, tok: int) -> bool:
        """``tok`` closes the span (EOS, or the Bar after the last bar)."""
        return tok == self.close and (self.close != self.t.bar or self.bars == self.target)

    def step(self, tok: int) -> None:
        """Take one token."""
        t = self.t
        if tok == t.bar:
            if self.bars:
                self.start += self.bar_len
            self.bars += 1
            self.phase = int(t.next_phase[tok])
        elif t.is_pos[tok]:
            self.cursor = self.start + int(t.pos_value[tok])
            self.phase = AFTER_POS
        elif t.is_ts[tok]:
            self.bar_len = int(t.ts_value[tok])
            self.phase = AFTER_TS
        else:
            self.cursor += int(t.dur_value[tok])
            self.phase = int(t.next_phase[tok])

    # Grammar's array interface, for code shared with batches.
    def allows(self, tok: np.ndarray) -> np.ndarray:
        return np.array([self.allows1(int(tok[0]))])

    def closing(self, tok: np.ndarray) -> np.ndarray:
        return np.array([self.closes(int(tok[0]))])

    def advance(self, tok: np.ndarray, active: np.ndarray | None = None) -> None:
        if active is None or active[0]:
            self.step(int(tok[0]))

    def done(self) -> np.ndarray:
        return np.array([self.phase == DONE])


def make_grammar(bar_steps: np.ndarray, tables: Tables,
                 pitch_range: tuple[int, int] = (PITCH_MIN, PITCH_MAX)) -> Grammar | Grammar1:
    """Grammar state for sequences with these bar lengths: the scalar kind for one sequence."""
    bar_steps = np.asarray(bar_steps).reshape(-1)
    if len(bar_steps) == 1:
        return Grammar1(int(bar_steps[0]), tables, pitch_range)
    return Grammar(bar_steps, tables, pitch_range)


def repeat_grammar(g: Grammar | Grammar1, k: int) -> Grammar:
    """A batch grammar with each sequence of ``g`` repeated ``k`` times in a row (a sampler's fork)."""
    rows = lambda a: np.repeat(np.atleast_1d(np.asarray(a, dtype=np.int64)), k)  # noqa: E731
    out = Grammar(rows(g.bar_len), g.t)
    out.pitch_ids = g.pitch_ids
    for name in ("phase", "bars", "cursor", "start", "target"):
        setattr(out, name, rows(getattr(g, name)))
    out.close = g.close
    return out
