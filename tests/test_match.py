"""The in-melody match model: features against a brute-force reference, a proper mixture, the fit."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.evaluate.match import EDGES, MatchMixer, match_features, mixed_nlls


def brute(seq, window=10**9):
    """Longest earlier context equal to the current one, and the share of those matches followed
    by the actual next token, position by position."""
    out = []
    for t in range(len(seq) - 1):
        best, nxt = 0, []
        for i in range(max(0, t - window), t):
            n = 0
            while n <= i and seq[i - n] == seq[t - n]:
                n += 1
            if n > best:
                best, nxt = n, [seq[i + 1]]
            elif n == best and n > 0:
                nxt.append(seq[i + 1])
        p = float(np.mean([x == seq[t + 1] for x in nxt])) if best else 0.0
        out.append((best, p))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=0, max_size=60), st.sampled_from([3, 7, 4096]))
def test_features_match_brute_force(seq, window):
    bucket, p = match_features(seq, window)
    ref = brute(seq, window)
    assert len(bucket) == len(p) == max(len(seq) - 1, 0)
    for (longest, q), b, x in zip(ref, bucket, p):
        assert b == (np.searchsorted(EDGES, longest, side="right") - 1 if longest else 0)
        assert math.isclose(x, q)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
def test_match_prediction_is_a_distribution(prefix):
    """Over every possible next token the match model's probabilities sum to 1 (or 0: no match)."""
    total = sum(match_features(prefix + [w])[1][-1] for w in range(4))
    assert math.isclose(total, 1.0) or total == 0.0


def test_long_pieces_stay_fast():
    seq = np.random.default_rng(2).integers(10, 14, 20_000).tolist()  # far longer than any real melody
    bucket, p = match_features(seq, window=512)
    assert len(bucket) == len(seq) - 1 and (p >= 0).all() and (p <= 1).all()


def test_a_repeated_phrase_is_predicted_from_its_first_pass():
    rng = np.random.default_rng(0)
    phrase = rng.integers(10, 300, 60).tolist()
    seq = [1] + phrase + phrase + [2]
    bucket, p = match_features(seq)
    second = slice(len(phrase) + 8, 2 * len(phrase))  # well into the repeat
    assert (p[second] == 1.0).all() and (bucket[second] >= 2).all()
    assert (bucket[: len(phrase) // 2] == 0).all()  # random tokens: no long matches in the first pass


def test_fit_and_mix():
    rng = np.random.default_rng(1)
    phrase = rng.integers(10, 300, 80).tolist()
    seqs = [[1] + phrase + phrase + [2]]
    feats = [match_features(s) for s in seqs]
    tok = [np.full(len(s) - 1, math.log(300.0)) for s in seqs]  # a model that knows nothing: 1/300 each
    mixer = MatchMixer.fit(tok, feats)
    assert mixer.weights[0] == 0.0 and max(mixer.weights) > 0.9
    assert mixed_nlls(mixer, tok, feats)[0] < 0.7 * tok[0].sum()  # the repeat is nearly free
    off = MatchMixer((0.0,) * len(EDGES))
    assert math.isclose(mixed_nlls(off, tok, feats)[0], tok[0].sum())
    assert MatchMixer.from_dict(mixer.to_dict()).weights == tuple(round(w, 4) for w in mixer.weights)
    assert MatchMixer.from_dict({"edges": [0, 1], "weights": [0, 0]}) is None  # other buckets: refit
