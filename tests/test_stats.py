"""Melody-set statistics: features, overlaps, JSON data, the picture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.bars import bar_repetition
from composer.evaluate.stats import FEATURES, compare, melody_scalars, openings, plot

TS = TimeSignature(4, 4)


def make(pitches, durs, key=Key(0), n_bars=None) -> Melody:
    notes, t = [], 0
    for p, d in zip(pitches, durs):
        notes.append(Note(t, d, p))
        t += d
    return Melody(tuple(notes), TS, key, n_bars or max(1, -(-t // 48)))


def folkish(seed: int) -> Melody:
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    deg = np.clip(7 + np.cumsum(rng.integers(-2, 3, 64)), 0, 20)
    pitches = (60 + 12 * (deg // 7) + scale[deg % 7]).tolist()
    return make(pitches, [6] * 64, n_bars=8)


def leaping(seed: int) -> Melody:
    # octave-plus leaps, long odd notes: nothing in common with folkish() but pitch classes
    pitches = [30 + seed % 5 + (65 if i % 2 else 0) + i // 2 for i in range(10)]
    return make(pitches, [37] * 10, key=Key(0))


def test_identical_sets_overlap_fully():
    real = [folkish(s) for s in range(10)]
    c = compare(real, list(real))
    assert set(c.features) == set(FEATURES)
    for f in c.features.values():
        assert f.overlap == pytest.approx(1.0, abs=1e-3), f.name
    assert c.mean_overlap == pytest.approx(1.0, abs=1e-3)


def test_disjoint_sets_do_not_overlap():
    c = compare([folkish(s) for s in range(10)], [leaping(s) for s in range(10)])
    for name in ("interval", "duration", "ioi", "pitch_range", "notes_per_bar"):
        assert c.features[name].overlap < 0.05, name
    assert c.mean_overlap < 0.4


def test_similar_sets_overlap_highly():
    c = compare([folkish(s) for s in range(20)], [folkish(100 + s) for s in range(20)])
    assert c.mean_overlap > 0.85


def test_scalar_features():
    m = make([60, 62, 64, 65, 60, 62, 64, 65, 61], [12] * 9, n_bars=3)
    s = melody_scalars(m)
    assert s["pitch_range"] == 5 and s["notes_per_bar"] == 3
    assert s["in_key_ratio"] == pytest.approx(8 / 9)
    assert s["bar_repetition"] == pytest.approx(1 / 3)  # bar 2 repeats bar 1; bar 3 is new
    assert melody_scalars(m.transpose(3))["in_key_ratio"] == pytest.approx(8 / 9)  # relative to the key
    # same rhythm, same contour at another pitch still repeats; another contour does not
    assert bar_repetition(make([60, 62, 64, 65, 67, 69, 71, 72], [12] * 8)) == pytest.approx(0.5)
    assert bar_repetition(make([60, 62, 64, 65, 67, 65, 71, 72], [12] * 8)) == 0.0


def test_openings_cut_equal_length():
    tunes = [folkish(1), make([60, 62], [12, 12], n_bars=1)]
    cut = openings(tunes, 4)
    assert len(cut) == 1 and cut[0].n_bars == 4 and cut[0].notes == tunes[0].notes[:32]


def test_json_and_png(tmp_path):
    c = compare([folkish(s) for s in range(6)], [folkish(50 + s) for s in range(6)])
    data = json.loads(json.dumps(c.to_dict()))
    assert data["sets"] == {"real": 6, "generated": 6}
    assert len(data["features"]["pitch_class"]["real"]) == 12 and "bins" in data["features"]["interval"]
    assert "grid" in data["features"]["pitch_range"]
    png = plot(c, tmp_path / "stats.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ComposerError, match="already exists"):
        plot(c, png)


def test_empty_set_is_an_error():
    with pytest.raises(ComposerError, match="both need melodies"):
        compare([], [folkish(0)])
