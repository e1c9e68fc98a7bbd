"""The Kneser-Ney n-gram baseline: against a plain-Python reference, normalization, order choice."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import ModelError
from composer.model.ngram import NGramModel, best_order
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()

V = 10  # small vocabulary: 0 = PAD, 1 = BOS, 2 = EOS, 3.. = symbols


def _seqs(rng: np.random.Generator, n: int, length: int, symbols: int = V - 3) -> list[np.ndarray]:
    return [np.array([1] + list(rng.integers(3, 3 + symbols, rng.integers(1, length))) + [2]) for _ in range(n)]


def _discounts(counts) -> list[float]:
    n = [sum(1 for c in counts if c == k) for k in (1, 2, 3, 4)]
    if min(n) == 0:
        return [0.0, 0.5, 1.0, 1.5]
    y = n[0] / (n[0] + 2 * n[1])
    d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
    return [0.0] + [min(max(x, 0.05), k + 1.0) for k, x in enumerate(d)]


def reference_logprobs(train, val, order: int) -> list[float]:
    """Interpolated modified Kneser-Ney written out with dictionaries."""
    pad = order - 1
    raw = [defaultdict(int) for _ in range(order)]
    for s in train:
        p = [0] * pad + list(s)
        for i in range(pad + 1, len(p)):
            for j in range(order):
                raw[j][(tuple(p[i - j : i]), p[i])] += 1
    counts = [dict(raw[order - 1])]
    for j in range(order - 2, -1, -1):
        cont = defaultdict(int)
        for (h, w) in raw[j + 1]:
            cont[(h[1:], w)] += 1
        counts.insert(0, dict(cont))
    stats = []
    for j in range(order):
        d = _discounts(counts[j].values())
        total, gamma = defaultdict(float), defaultdict(float)
        for (h, w), c in counts[j].items():
            total[h] += c
            gamma[h] += d[min(c, 3)]
        stats.append((d, total, gamma))
    out = []
    for s in val:
        p = [0] * pad + list(s)
        for i in range(pad + 1, len(p)):
            prob = 1.0 / V
            for j in range(order):
                h, w = tuple(p[i - j : i]), p[i]
                d, total, gamma = stats[j]
                if total.get(h, 0) > 0:
                    c = counts[j].get((h, w), 0)
                    prob = (max(c - d[min(c, 3)], 0.0) + gamma[h] * prob) / total[h]
            out.append(math.log(prob))
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.integers(1, 5), symbols=st.integers(1, V - 3))
def test_matches_reference(seed: int, order: int, symbols: int) -> None:
    rng = np.random.default_rng(seed)
    train, val = _seqs(rng, 30, 12, symbols), _seqs(rng, 6, 12, symbols)
    lm = NGramModel(order, vocab_size=V).fit(train)
    got, _ = lm.token_logprobs(val)
    np.testing.assert_allclose(got, reference_logprobs(train, val, order), rtol=1e-9, atol=1e-12)


def test_lower_orders_from_one_fit_equal_separate_fits() -> None:
    rng = np.random.default_rng(1)
    train, val = _seqs(rng, 40, 15), _seqs(rng, 8, 15)
    big = NGramModel(6, vocab_size=V).fit(train)
    for k in (1, 3, 6):
        alone = NGramModel(k, vocab_size=V).fit(train).score(val, TOK)
        assert big.score(val, TOK, k).nll_nats == pytest.approx(alone.nll_nats, rel=1e-9)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_distribution_sums_to_one(order: int) -> None:
    rng = np.random.default_rng(2)
    lm = NGramModel(order, vocab_size=V).fit(_seqs(rng, 20, 10))
    for ctx in ([1, 3, 4], [1, 9, 9, 9], [1]):  # seen and unseen contexts
        probe = [np.array(ctx + [w]) for w in range(V)]
        logp, seq_of = lm.token_logprobs(probe)
        last = [logp[seq_of == i][-1] for i in range(V)]
        assert np.exp(last).sum() == pytest.approx(1.0, abs=1e-9)


def test_score_totals_and_per_sequence() -> None:
    rng = np.random.default_rng(3)
    train, val = _seqs(rng, 30, 12), _seqs(rng, 5, 12)
    s = NGramModel(3, vocab_size=V).fit(train).score(val, TOK)
    assert s.tokens == sum(len(x) - 1 for x in val)
    assert s.nll_nats == pytest.approx(sum(s.per_sequence))
    assert len(s.per_sequence) == len(val) and all(x > 0 for x in s.per_sequence)


def test_higher_order_wins_on_a_repetitive_language() -> None:
    # Melodies cycling through a fixed pattern: long contexts predict them almost surely.
    pattern = [3, 4, 5, 3, 6, 7, 3, 8]
    seqs = [np.array([1] + pattern * 4 + [2]) for _ in range(20)]
    order, score, by_order = best_order(seqs[:16], seqs[16:], TOK, orders=range(1, 5))
    assert by_order[1] > by_order[2] > by_order[3]
    assert order >= 3 and score.bits_per_note == pytest.approx(min(by_order.values()))


def test_rejects_bad_orders() -> None:
    with pytest.raises(ModelError, match="order must be at least 1, got 0"):
        NGramModel(0, V)
    lm = NGramModel(2, vocab_size=V).fit([np.array([1, 3, 2])])
    with pytest.raises(ModelError, match="order 3 is outside 1..2"):
        lm.score([np.array([1, 3, 2])], TOK, order=3)
