"""An in-melody match model, mixed with a sequence model when scoring whole melodies.

Real tunes repeat themselves: the corpus expands repeat signs, so the second pass of a
reel's A part is, token for token, the first. An LSTM carries a few bars of memory,
not 200 tokens, so it pays again for notes it has already seen. The match model
predicts from the melody itself: at each position it finds the longest earlier
context equal to the current one (as a compressor's match model does) and predicts
what followed there. The two are mixed per token,

    p(x) = (1 - w[L]) * p_model(x) + w[L] * p_match(x),

with one weight per match-length bucket ``L``, fitted by maximum likelihood on
melodies the scores are not reported on. The mixture is a proper distribution, so its
bits per note are a real likelihood; reports always show the model alone beside it.
Generation does not use it. A model trained with copy hints (``composer.model.hints``) already
reads the longest match as an input, so for it the mixture adds little: the gap between
the two figures is what the model still leaves on the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

EDGES = (0, 4, 8, 16, 32)  # lower edges of the match-length buckets, in tokens
WINDOW = 4096  # earlier positions searched (a 4,096-bar piece stays fast)
_GRID = np.linspace(0.0, 0.99, 100)


def match_features(seq: Sequence[int], window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Per predicted token (``len(seq) - 1`` of them): the match-length bucket, and the share
    of the longest earlier matches (ending in the last ``window`` positions) whose next token
    is the actual next token. Linear in ``len(seq) * window``."""
    s = np.asarray(seq, dtype=np.int64)
    n = len(s) - 1
    bucket = np.zeros(max(n, 0), dtype=np.int64)
    p = np.zeros(max(n, 0), dtype=np.float64)
    # run[i]: length of the common suffix of s[..i] and s[..t] (exact inside the window)
    run, new = np.zeros(len(s) + 1, dtype=np.int64), np.zeros(len(s) + 1, dtype=np.int64)
    for t in range(1, n):
        lo = max(0, t - window)
        eq = s[lo:t] == s[t]
        prev = run[lo - 1 : t - 1] if lo > 0 else np.concatenate(([0], run[: t - 1]))
        cur = new[lo:t]
        np.multiply(prev + 1, eq, out=cur)
        longest = int(cur.max())
        if longest > 0:
            at = lo + np.flatnonzero(cur == longest)
            p[t] = float(np.mean(s[at + 1] == s[t + 1]))
            bucket[t] = np.searchsorted(EDGES, longest, side="right") - 1
        run, new = new, run
    return bucket, p


@dataclass(frozen=True)
class MatchMixer:
    """Mixture weights per match-length bucket (``EDGES``)."""

    weights: tuple[float, ...]

    def nll(self, token_nll: np.ndarray, features: tuple[np.ndarray, np.ndarray]) -> float:
        """Mixed NLL (nats) of one melody from its per-token model NLLs and match features."""
        bucket, p = features
        w = np.asarray(self.weights)[bucket]
        return float(-np.log((1 - w) * np.exp(-token_nll) + w * p).sum())

    def to_dict(self) -> dict:
        return {"edges": list(EDGES), "weights": [round(w, 4) for w in self.weights]}

    @classmethod
    def from_dict(cls, d: dict | None) -> MatchMixer | None:
        if not d or list(d.get("edges", ())) != list(EDGES):
            return None
        return cls(tuple(float(w) for w in d["weights"]))

    @classmethod
    def fit(cls, token_nlls: Sequence[np.ndarray], features: Sequence[tuple[np.ndarray, np.ndarray]]) -> MatchMixer:
        """Maximum-likelihood weight of each bucket (a grid search: the likelihood is concave)."""
        pm = np.exp(-np.concatenate(token_nlls)) if token_nlls else np.zeros(0)
        bucket = np.concatenate([f[0] for f in features]) if features else np.zeros(0, dtype=np.int64)
        pc = np.concatenate([f[1] for f in features]) if features else np.zeros(0)
        weights = []
        for k in range(len(EDGES)):
            sel = bucket == k
            if k == 0 or not sel.any():
                weights.append(0.0)  # no earlier match: nothing to mix in
                continue
            ll = np.log((1 - _GRID[:, None]) * pm[sel][None, :] + _GRID[:, None] * pc[sel][None, :]).sum(1)
            weights.append(float(_GRID[int(np.argmax(ll))]))
        return cls(tuple(weights))


def mixed_nlls(mixer: MatchMixer, token_nlls: Sequence[np.ndarray], features) -> list[float]:
    """Mixed NLL (nats) per melody."""
    return [mixer.nll(t, f) for t, f in zip(token_nlls, features)]
