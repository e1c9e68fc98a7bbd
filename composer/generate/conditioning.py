"""The sampler's per-row conditioning inputs: each input token's length code
(``composer.model.lengths``: from the bars taken and the bars planned) and key code
(``composer.model.keycodes``: the last Key token a row took, the header's or a prime's key
change), exactly as training computes them from a whole tune."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from composer.model.config import ModelConfig
from composer.model.keycodes import NO_KEY, codes_after, key_of_token
from composer.model.lengths import HEADER_CODE, code_table
from composer.tokens.tokenizer import Vocab


class Conditioning:
    """Length and key codes of the next inputs of ``batch`` rows (None for what the model does not read)."""

    def __init__(self, cfg: ModelConfig, vocab: Vocab, batch: int, total_bars: int | None) -> None:
        self.vocab, self.batch = vocab, batch
        # table[b]: the length code of an input with b Bar tokens taken (it included)
        self.table = code_table(total_bars) if cfg.length_aware and total_bars is not None else None
        # key_of[id]: the key code a Key token sets (-1: other kinds); keys[r]: row r's key so far
        self.key_of = key_of_token(vocab) if cfg.key_aware else None
        self.keys = np.full(batch, NO_KEY, dtype=np.int64) if cfg.key_aware else None

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

    def span(self, seq: Sequence[int], bars: Sequence[int]) -> tuple[list[int] | None, list[int] | None]:
        """(length codes, key codes) of a span every row takes (``bars[t]``: Bar tokens taken
        with ``seq[t]``); every row's key moves on to the span's last."""
        lengths = None if self.table is None else self.table[np.minimum(bars, len(self.table) - 1)].tolist()
        if self.keys is None or not len(seq):
            return lengths, None
        keys = codes_after(seq, self.vocab, int(self.keys[0]))
        self.keys[:] = keys[-1]
        return lengths, keys.tolist()
