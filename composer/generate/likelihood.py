"""The sampler's record of every step taken and each sequence's summed negative log-likelihood.

Each step keeps the logits that predicted it and the token each row took (or none, for rows
that had finished); the log-likelihoods are computed in blocks of steps (one ``log_softmax`` over
a stack of logits instead of one per step), at temperature 1 and without the grammar's mask, so
melodies can be ranked by bits per note.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

FLUSH = 128  # steps of logits kept before their log-likelihoods are summed


class Likelihood:
    """Tokens taken by a batch of ``batch`` sequences, step by step, and their summed NLL."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        # Per step taken: (tokens, rows that took them or None = all); tokens are a (B,) array,
        # or an int when B == 1. ``hist`` holds the logits that predicted the steps from ``hist_from`` on.
        self.toks: list[tuple[np.ndarray | int, np.ndarray | None]] = []
        self.hist: list[torch.Tensor] = []
        self.hist_from = 0
        self.nll = torch.zeros(batch, dtype=torch.float64)  # (B,) nats

    def given(self, tok: np.ndarray | int) -> None:
        """A step every row takes that nothing predicted (BOS)."""
        self.toks.append((tok, None))
        self.hist_from = len(self.toks)

    def record(self, logits: torch.Tensor, tok: np.ndarray | int, took: np.ndarray | None) -> None:
        """A step taken by the rows ``took`` (None = all), predicted by ``logits`` (B, V)."""
        self.hist.append(logits)
        self.toks.append((tok, took))
        if len(self.hist) >= FLUSH:
            self.flush()

    def shared(self, logits: torch.Tensor, seq: Sequence[int]) -> None:
        """A span every row took at once: ``logits`` (T, V), row t predicting ``seq[t]``."""
        self.flush()
        lp = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(list(seq))[:, None])
        self.nll -= lp.double().sum()
        self.toks.extend((t, None) for t in seq)
        self.hist_from = len(self.toks)

    def matrix(self, steps) -> tuple[np.ndarray, np.ndarray]:
        """(tokens (S, B), took (S, B) bool) of recorded steps."""
        toks = np.empty((len(steps), self.batch), dtype=np.int64)
        for i, (t, _) in enumerate(steps):
            toks[i] = t  # a (B,) array, or one id for every row
        took = np.ones(toks.shape, dtype=bool)
        for i, (_, m) in enumerate(steps):
            if m is not None:
                took[i] = m
        return toks, took

    def flush(self) -> None:
        """Add -log p(token) of the recorded steps to each sequence's total."""
        if not self.hist:
            return
        n = len(self.hist)
        toks, took = self.matrix(self.toks[self.hist_from : self.hist_from + n])
        logits = torch.stack(self.hist).float()  # (S, B, V)
        lp = torch.log_softmax(logits, dim=-1).gather(2, torch.from_numpy(toks)[..., None])[..., 0].double()
        self.nll -= (lp * torch.from_numpy(took)).sum(0)  # (B,)
        self.hist.clear()
        self.hist_from += n

    def reset(self) -> None:
        """Flush, then start the sums again from zero (the tokens taken are kept)."""
        self.flush()
        self.nll.zero_()

    def rows(self, first: int = 0) -> list[list[int]]:
        """Tokens taken by each sequence from step ``first`` on."""
        steps = self.toks[first:]
        if not steps:
            return [[] for _ in range(self.batch)]
        toks, took = self.matrix(steps)
        return [toks[took[:, r], r].tolist() for r in range(self.batch)]

    def repeat(self, k: int) -> Likelihood:
        """A record of ``batch * k`` sequences, each of these repeated ``k`` times in a row (flushed first)."""
        self.flush()
        out = Likelihood(self.batch * k)
        out.toks = [(t if isinstance(t, int) else np.repeat(t, k), None if m is None else np.repeat(m, k))
                    for t, m in self.toks]
        out.hist_from = len(out.toks)
        out.nll = self.nll.repeat_interleave(k)
        return out

