"""The harmonizer: beat frames and chord segments, the network, a tiny model learning a toy
progression, decoding that covers the melody bar line to bar line, key-relative chords, and
the checkpoint file."""

import numpy as np
import pytest
import torch

from composer.errors import CheckpointError, MusicError
from composer.harmony.chords import Chord
from composer.harmony.features import N_FEATURES, beat_edges, beat_features, segment_edges, segment_of_beats
from composer.harmony.harmonizer import Harmonizer, load_network, save_harmonizer
from composer.harmony.network import N_BASS, N_CHORDS, HarmonizerConfig, HarmonizerNet
from composer.harmony.training import TrainSettings, collate, make_example, split_by_piece, train_harmonizer
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature

TINY = HarmonizerConfig(embed=16, hidden=16, enc_layers=1, dec_hidden=32, chord_embed=8, bass_embed=4, dropout=0.0)
# I IV V I: (chord tones above C, bass pitch) per bar, the soprano singing chord tones in quarters
PROGRESSION = (((0, 4, 7), 48), ((5, 9, 0), 41), ((7, 11, 2), 43), ((0, 4, 7), 48))


def toy_piece(shift: int = 0, bars: int = 8):
    """A four-part piece in C + shift: the melody and its four voices (one chord a bar)."""
    sop, alto, ten, bass = [], [], [], []
    for b in range(bars):
        tones, low = PROGRESSION[b % 4]
        s = 48 * b
        sop += [Note(s + 12 * k, 12, 72 + shift + tones[k % 3]) for k in range(4)]
        alto.append(Note(s, 48, 60 + shift + tones[1]))
        ten.append(Note(s, 48, 48 + shift + tones[2]))
        bass.append(Note(s, 48, low + shift))
    return Melody(tuple(sop), TimeSignature(4, 4), Key(shift % 12), bars), [sop, alto, ten, bass]


@pytest.fixture(scope="module")
def tiny():
    """A tiny harmonizer trained for a few seconds on the toy progression in five keys."""
    torch.manual_seed(0)
    examples = [make_example(f"piece{i}", *toy_piece(i % 5)) for i in range(12)]
    settings = TrainSettings(minutes=0, epochs=25, batch_size=6, lr=1e-2, patience=100, val_fraction=0.2)
    return train_harmonizer(examples, settings, TINY)


def melody_in(meter: TimeSignature, bars: int, pickup: bool = False) -> Melody:
    """A scale-wise melody filling ``bars`` bars (the first bar holding only a pickup note when asked)."""
    bar = meter.bar_steps
    notes, s = [], bar - 12 if pickup else 0
    while s < bars * bar:
        notes.append(Note(s, 12, 60 + (s // 12) % 8))
        s += 12
    return Melody(tuple(notes), meter, Key(0), bars)


@pytest.mark.parametrize("meter, beat, half, bar", [
    ("4/4", [0, 12, 24, 36, 48], [0, 24, 48], [0, 48]),
    ("3/4", [0, 12, 24, 36], [0, 24, 36], [0, 36]),
    ("6/8", [0, 18, 36], [0, 18, 36], [0, 36]),
    ("2/2", [0, 24, 48], [0, 24, 48], [0, 48]),
])
def test_segments_of_each_rate(meter, beat, half, bar):
    m = melody_in(TimeSignature.parse(meter), 1)
    assert beat_edges(m) == segment_edges(m, "beat") == beat
    assert segment_edges(m, "half") == half
    assert segment_edges(m, "bar") == bar


def test_segments_follow_meter_changes_and_pickups():
    m = Melody((Note(36, 12, 67),), TimeSignature(4, 4), Key(0), 3, meter_changes=((1, TimeSignature(3, 4)),))
    assert segment_edges(m, "bar") == [0, 48, 84, 120]
    assert segment_edges(m, "half") == [0, 24, 48, 72, 84, 108, 120]
    beats = beat_edges(m)
    assert segment_of_beats(beats, segment_edges(m, "bar")).tolist() == [0] * 4 + [1] * 3 + [2] * 3
    with pytest.raises(MusicError, match="chord rate 'fast'"):
        segment_edges(m, "fast")


def test_features_are_key_relative():
    m = melody_in(TimeSignature(3, 4), 4)
    x = beat_features(m)
    assert x.shape == (12, N_FEATURES) and x.dtype == np.float32
    assert np.array_equal(x, beat_features(m.transpose(5)))
    assert x[0, :12].sum() == pytest.approx(1.0)  # a quarter note fills the beat


def test_network_shapes():
    net = HarmonizerNet(TINY)
    batch = collate([make_example("a", *toy_piece(0, 4)), make_example("b", *toy_piece(2, 8))], ["beat", "bar"])
    chords, bass = net(batch["frames"], batch["lengths"], batch["seg"], batch["rate"],
                       batch["chords"].clamp(min=0), batch["bass"].clamp(min=0))
    assert chords.shape == (2, 16, N_CHORDS) and bass.shape == (2, 16, N_BASS)  # 4 bars of 4 beats
    assert batch["chords"][1, 8:].eq(-100).all()  # 8 bars at bar rate: 8 labels, then padding


def test_toy_labels_are_the_progression():
    ex = make_example("x", *toy_piece(0, 4))
    seg, ids, bass = ex.segments["bar"]
    from composer.harmony.vocab import chord_id

    assert ids.tolist() == [chord_id(Chord(r)) for r in (0, 5, 7, 0)]
    assert bass.tolist() == [0, 5, 7, 0]


def test_split_is_by_piece_and_stable():
    names = [f"bach_{i}.mid" for i in range(40)]
    train, val = split_by_piece(names, 0.1, seed=0)
    assert len(val) == 4 and sorted(train + val) == list(range(40))
    assert split_by_piece(names[:30], 0.1)[1] != [] and split_by_piece(names, 0.1, seed=0) == (train, val)


def test_tiny_model_learns_the_progression(tiny):
    assert tiny.best["root_accuracy"] >= 0.9
    h = Harmonizer(tiny.model)
    m, _ = toy_piece(3)
    spans = h.harmonize(m, "bar")
    assert [c.root for _, _, c in spans] == [(r + 3) % 12 for r in (0, 5, 7, 0, 0, 5, 7, 0)]


@pytest.mark.parametrize("rate", ["beat", "half", "bar", None])
@pytest.mark.parametrize("meter, pickup", [("4/4", False), ("3/4", True), ("6/8", False), ("4/4", True)])
def test_decode_covers_the_melody_bar_line_to_bar_line(tiny, rate, meter, pickup):
    m = melody_in(TimeSignature.parse(meter), 5, pickup)
    spans = Harmonizer(tiny.model).harmonize(m, rate)
    assert spans[0][0] == 0 and sum(d for _, d, _ in spans) == m.total_steps
    assert all(a + d == b for (a, d, _), (b, _, _) in zip(spans, spans[1:]))
    allowed = set(segment_edges(m, rate or "half"))
    assert {s for s, _, _ in spans} <= allowed
    assert all(isinstance(c, Chord) and c.bass in c.tones() for _, _, c in spans)


def test_transposed_melody_gets_transposed_chords(tiny):
    h = Harmonizer(tiny.model)
    m = melody_in(TimeSignature(4, 4), 6)
    for k in (1, 5, -3):
        assert h.harmonize(m.transpose(k), "half") == [(s, d, c.transpose(k)) for s, d, c in h.harmonize(m, "half")]


def test_harmonize_many_matches_one_by_one(tiny):
    h = Harmonizer(tiny.model)
    tunes = [melody_in(TimeSignature(4, 4), 3), toy_piece(2)[0], melody_in(TimeSignature(6, 8), 4, True)]
    assert h.harmonize_many(tunes) == [h.harmonize(t) for t in tunes]


def test_checkpoint_round_trip_and_errors(tiny, tmp_path):
    path = save_harmonizer(tmp_path / "h.pt", tiny.model, {"val_names": ["a"]})
    h = Harmonizer.load(path)
    assert h.meta == {"val_names": ["a"]}
    m = toy_piece(1)[0]
    assert h.harmonize(m) == Harmonizer(load_network(path)[0]).harmonize(m)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt is not a readable harmonizer checkpoint"):
        Harmonizer.load(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        Harmonizer.load(tmp_path / "missing.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a harmonizer checkpoint"):
        Harmonizer.load(tmp_path / "other.pt")


def test_automatic_rate_splits_a_bar_only_where_the_middle_note_needs_it():
    from composer.harmony.harmonizer import _mix

    # bar 1: C E | G C under C (one chord fits); bar 2: C E | D B (the middle D is not in C)
    notes = [Note(0, 24, 72), Note(24, 24, 79), Note(48, 24, 72), Note(72, 24, 74)]
    m = Melody(tuple(notes), TimeSignature(4, 4), Key(0), 2)
    bars = [(0, 48, Chord(0)), (48, 48, Chord(0))]
    halves = [(0, 24, Chord(0)), (24, 24, Chord(7)), (48, 24, Chord(0)), (72, 24, Chord(7))]
    assert _mix(m, bars, halves) == [(0, 48, Chord(0)), (48, 24, Chord(0)), (72, 24, Chord(7))]


def test_bass_moves_off_a_parallel_fifth():
    from composer.harmony.harmonizer import _avoid_parallels

    m = Melody((Note(0, 24, 72), Note(24, 24, 74)), TimeSignature(4, 4), Key(0), 1)
    before = (0, 24, Chord(5))  # C over F: a fifth
    assert _avoid_parallels(m, before, 24, Chord(7)) == Chord(7, "maj", 11)  # D over G would be another: G/B
    assert _avoid_parallels(m, (0, 24, Chord(0)), 24, Chord(7)) == Chord(7)  # C over C, D over G: no parallel


def test_the_final_chord_stands_in_root_position():
    """A cadence ends on the chord's root in the bass, even where that makes an octave with the
    melody (bass moved off a parallel elsewhere; seen in MuseScore: an Em/B 6/4 chord at the end)."""
    import numpy as np

    from composer.harmony.harmonizer import _spans
    from composer.harmony.vocab import chord_id

    m = Melody((Note(0, 48, 71), Note(48, 48, 64)), TimeSignature(4, 4), Key(4, True), 2)  # B | E in E minor
    prep = {"edges": [0, 48, 96], "tonics": [4, 4]}
    chords = np.array([chord_id(Chord(7, "maj")), chord_id(Chord(0, "min"))])  # key-relative V, i
    out = _spans(m, prep, chords, np.array([7, 7]))  # the decoder asked for i with its fifth in the bass
    assert out[-1][2] == Chord(4, "min") and out[-1][2].bass == 4
