"""The sampler's per-row conditioning inputs: each input token's length code
(``composer.model.lengths``: from the bars taken and the bars planned) and key code
(``composer.model.keycodes``: the last Key token a row took, the header's or a prime's key
change) and chord code (``composer.model.chordcodes``: the chord given at the time of the token,
tracked per row from its Bar, TimeSig and Pos tokens), exactly as training computes them from a
whole tune."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

from composer.model.chordcodes import NO_CHORDS
from composer.model.config import ModelConfig
from composer.model.keycodes import NO_KEY, codes_after, key_of_token
from composer.model.lengths import HEADER_CODE, code_table
from composer.tokens.tokenizer import BAR, POS, TIMESIG, Vocab


class Conditioning:
    """Length and key codes of the next inputs of ``batch`` rows (None for what the model does not read)."""

    def __init__(self, cfg: ModelConfig, vocab: Vocab, batch: int, total_bars: int | None,
                 chords: np.ndarray | None = None) -> None:
        """``chords``: the chord code at each grid step of the whole melody (a chord-aware model;
        None: no chords given, every input "no chords")."""
        self.vocab, self.batch = vocab, batch
        # table[b]: the length code of an input with b Bar tokens taken (it included)
        self.table = code_table(total_bars) if cfg.length_aware and total_bars is not None else None
        # key_of[id]: the key code a Key token sets (-1: other kinds); keys[r]: row r's key so far
        self.key_of = key_of_token(vocab) if cfg.key_aware else None
        self.keys = np.full(batch, NO_KEY, dtype=np.int64) if cfg.key_aware else None
        # chord_at[step]: the chord code there; per row: bars taken, bar start and length, time now
        self.chord_at = chords if cfg.chord_aware and chords is not None else None
        if self.chord_at is not None:
            self.kinds, self.values = vocab.kinds, vocab.values
            self.bars = np.zeros(batch, dtype=np.int64)
            self.start = np.zeros(batch, dtype=np.int64)
            self.bar_len = np.zeros(batch, dtype=np.int64)
            self.now = np.full(batch, -1, dtype=np.int64)

    def lengths(self, bars: np.ndarray | int | None, rows: np.ndarray | None) -> torch.Tensor | None:
        """Length codes (B',) of ``rows`` (None = all) after ``bars`` Bar tokens each (the grammar's
        count, already advanced; None: still in the header)."""
        if self.table is None:
            return None
        if bars is None:  # BOS, TimeSig, Key
            return torch.full((self.batch if rows is None else len(rows),), HEADER_CODE, dtype=torch.long)
        bars = np.atleast_1d(bars)  # (B,); an int for the batch-1 grammar
        bars = bars if rows is None else bars[rows]
        return torch.from_numpy(self.table[np.minimum(bars, len(self.table) - 1)])

    def key_codes(self, tok_np: np.ndarray, rows: np.ndarray | None) -> torch.Tensor | None:
        """Key codes (B',) of the inputs ``tok_np`` (B,) of ``rows`` (None = all): a Key token
        sets its row's key, itself included."""
        if self.keys is None:
            return None
        sel = slice(None) if rows is None else rows
        sets = self.key_of[tok_np[sel]]
        self.keys[sel] = np.where(sets >= 0, sets, self.keys[sel])
        return torch.from_numpy(self.keys[sel].copy())

    def chord_codes(self, tok_np: np.ndarray, rows: np.ndarray | None) -> torch.Tensor | None:
        """Chord codes (B',) of the inputs ``tok_np`` (B,) of ``rows`` (None = all), each row's time
        moved on by its token (None when no chords are given)."""
        if self.chord_at is None:
            return None
        sel = slice(None) if rows is None else rows
        tok = tok_np[sel]
        kind, value = self.kinds[tok], self.values[tok]
        bar, pos = kind == BAR, kind == POS
        start = np.where(bar & (self.bars[sel] > 0), self.start[sel] + self.bar_len[sel], self.start[sel])
        self.start[sel] = start
        self.bars[sel] += bar
        self.bar_len[sel] = np.where(kind == TIMESIG, value, self.bar_len[sel])
        now = np.where(bar, start, np.where(pos, start + value, self.now[sel]))
        self.now[sel] = now
        last = len(self.chord_at) - 1
        return torch.from_numpy(np.where(now < 0, NO_CHORDS, self.chord_at[np.clip(now, 0, last)]))

    def span(self, seq: Sequence[int], bars: Sequence[int]) -> tuple[list[int] | None, list[int] | None, list[int] | None]:
        """(length codes, key codes, chord codes) of a span every row takes (``bars[t]``: Bar tokens
        taken with ``seq[t]``); every row's key and time move on to the span's end."""
        lengths = None if self.table is None else self.table[np.minimum(bars, len(self.table) - 1)].tolist()
        chords = None
        if self.chord_at is not None and len(seq):
            row = np.empty(self.batch, dtype=np.int64)
            chords = [int(self.chord_codes(row, None)[0]) for row[:] in ([t] for t in seq)]
        if self.keys is None or not len(seq):
            return lengths, None, chords
        keys = codes_after(seq, self.vocab, int(self.keys[0]))
        self.keys[:] = keys[-1]
        return lengths, keys.tolist(), chords

    def repeat(self, k: int) -> Conditioning:
        """The codes' state with each row repeated ``k`` times in a row (a sampler's fork)."""
        out = copy.copy(self)
        out.batch = self.batch * k
        for name in ("keys", "bars", "start", "bar_len", "now"):
            value = getattr(self, name, None)
            if value is not None:
                setattr(out, name, np.repeat(value, k))
        return out

