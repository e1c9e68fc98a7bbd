"""A smoothed n-gram baseline over the same token ids: interpolated modified Kneser-Ney.

Counting is exact and vectorized: a context of length j gets an integer id by
``np.unique`` over (id of its last j-1 tokens, the token before them), so every
table is a sorted int64 array searched with ``np.searchsorted``. Fitting once at
the highest order gives every lower order too (they share all tables except the
top one, which uses raw counts instead of continuation counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from composer.errors import ModelError
from composer.model.scoring import SequenceScore, make_score
from composer.tokens.tokenizer import Tokenizer

PAD = 0  # id written before each melody so that every context has full length


@dataclass
class _Level:
    """Counts of n-grams whose context has ``j`` tokens."""

    ctx_keys: np.ndarray  # sorted unique (parent context id * V + token) of contexts of length j
    ng_keys: np.ndarray  # sorted unique (context id * V + next token)
    raw: np.ndarray  # occurrences of each n-gram
    cont: np.ndarray | None  # distinct left extensions of each n-gram (None at the top level)


def _pad(seqs: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat tokens with ``width`` PADs before each melody, and the indices of predicted tokens."""
    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    flat = np.full(int(lens.sum() + width * len(seqs)), PAD, dtype=np.int64)
    starts = np.cumsum(lens + width) - lens  # index of each BOS
    for s, st in zip(seqs, starts):
        flat[st : st + len(s)] = s
    # Every token after a BOS is predicted.
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.repeat(starts + 1, np.maximum(lens - 1, 0)) + _ranges(np.maximum(lens - 1, 0))] = True
    return flat, np.flatnonzero(mask)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..c0), [0..c1), ..."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Index of each key in ``sorted_keys``, -1 where absent."""
    if sorted_keys.size == 0:
        return np.full(keys.shape, -1, dtype=np.int64)
    i = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return np.where(sorted_keys[i] == keys, i, -1)


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Modified Kneser-Ney discounts D1, D2, D3+ (Chen & Goodman) from counts of counts."""
    n = [np.count_nonzero(counts == k) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        return np.array([0.0, 0.5, 1.0, 1.5])  # too little data for the estimate: fixed values
    y = n[0] / (n[0] + 2 * n[1])
    d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
    return np.array([0.0] + [min(max(x, 0.05), k + 1.0) for k, x in enumerate(d)])


class NGramModel:
    """Interpolated modified Kneser-Ney over token ids, orders 1..``order``."""

    def __init__(self, order: int, vocab_size: int) -> None:
        if order < 1:
            raise ModelError(f"n-gram order must be at least 1, got {order}")
        self.order, self.vocab_size = order, vocab_size
        self.levels: list[_Level] = []

    def fit(self, seqs: Sequence[np.ndarray]) -> NGramModel:
        """Count every n-gram of length 1..order in ``seqs`` (each BOS ... EOS)."""
        v, n = self.vocab_size, self.order
        flat, pos = _pad(seqs, n - 1)
        target = flat[pos]
        ctx = np.zeros(pos.size, dtype=np.int64)  # context id of length j at each predicted position
        self.levels = []
        for j in range(n):
            if j > 0:
                ckeys, ctx = np.unique(ctx * v + flat[pos - j], return_inverse=True)
                ctx = ctx.reshape(-1)
            else:
                ckeys = np.zeros(1, dtype=np.int64)
            ng_keys, raw = np.unique(ctx * v + target, return_counts=True)
            self.levels.append(_Level(ckeys, ng_keys, raw, None))
        # Continuation count of (h, w) at level j: distinct level-(j+1) n-grams (a h, w).
        for j in range(n - 1):
            up = self.levels[j + 1]
            parent = up.ctx_keys[up.ng_keys // v] // v  # level-j context of each level-(j+1) n-gram
            keys, cont = np.unique(parent * v + up.ng_keys % v, return_counts=True)
            assert np.array_equal(keys, self.levels[j].ng_keys)
            self.levels[j].cont = cont
        return self

    def _stats(self, j: int, top: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(counts per n-gram, discount per n-gram, context totals, context backoff mass)."""
        lev = self.levels[j]
        counts = lev.raw if top or lev.cont is None else lev.cont
        d = _discounts(counts)
        disc = d[np.minimum(counts, 3)]
        h = lev.ng_keys // self.vocab_size
        n_ctx = max(len(lev.ctx_keys), 1)
        total = np.bincount(h, weights=counts, minlength=n_ctx)
        gamma = np.bincount(h, weights=disc, minlength=n_ctx)
        return counts, disc, total, gamma

    def token_logprobs(self, seqs: Sequence[np.ndarray], order: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probability of every predicted token and the melody index of each."""
        n = self.order if order is None else order
        if not 1 <= n <= self.order:
            raise ModelError(f"n-gram order {n} is outside 1..{self.order}")
        v = self.vocab_size
        flat, pos = _pad(seqs, self.order - 1)
        target = flat[pos]
        seq_of = np.repeat(np.arange(len(seqs)), [max(len(s) - 1, 0) for s in seqs])
        p = np.full(pos.size, 1.0 / v)
        ctx = np.zeros(pos.size, dtype=np.int64)
        for j in range(n):
            lev = self.levels[j]
            if j > 0:
                ctx = np.where(ctx >= 0, _lookup(lev.ctx_keys, np.maximum(ctx, 0) * v + flat[pos - j]), -1)
            counts, disc, total, gamma = self._stats(j, top=(j == n - 1))
            seen = ctx >= 0
            c = np.maximum(ctx, 0)
            g = np.where(seen, _lookup(lev.ng_keys, c * v + target), -1)
            num = np.where(g >= 0, np.maximum(counts[np.maximum(g, 0)] - disc[np.maximum(g, 0)], 0.0), 0.0)
            tot = total[c]
            p = np.where(seen & (tot > 0), (num + gamma[c] * p) / np.maximum(tot, 1e-300), p)
        return np.log(p), seq_of

    def score(self, seqs: Sequence[np.ndarray], tokenizer: Tokenizer, order: int | None = None) -> SequenceScore:
        """Whole-melody NLL of ``seqs`` under the model of the given order (default: its own)."""
        logp, seq_of = self.token_logprobs(seqs, order)
        per = np.bincount(seq_of, weights=-logp, minlength=len(seqs))
        return make_score(per.tolist(), seqs, tokenizer)


def best_order(train: Sequence[np.ndarray], val: Sequence[np.ndarray], tokenizer: Tokenizer, orders=range(3, 11)
               ) -> tuple[int, SequenceScore, dict[int, float]]:
    """Fit once at the highest order; the order with the lowest validation bits per note,
    its score, and bits per note of every order tried."""
    orders = sorted(orders)
    model = NGramModel(orders[-1], len(tokenizer)).fit(train)
    scores = {k: model.score(val, tokenizer, k) for k in orders}
    best = min(orders, key=lambda k: scores[k].bits_per_note)
    return best, scores[best], {k: s.bits_per_note for k, s in scores.items()}
