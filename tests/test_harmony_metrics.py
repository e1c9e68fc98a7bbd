"""Harmony figures on hand-made cases, the folk dev set, and `compose train --harmonizer` then
`compose evaluate --harmony` on four-part files written into tmp_path."""

import json

import pretty_midi
import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.harmony.chords import Chord, parse_chord
from composer.harmony.metrics import (beat_accuracy, chord_at, chorale_figures, downbeat_chord_tones, folk_figures,
                                      parallels, quarter_root_accuracy)
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature

C, F, G, AM = Chord(0), Chord(5), Chord(7), Chord(9, "min")


def test_chord_at_finds_the_sounding_span():
    spans = [(0, 24, C), (24, 24, G)]
    assert [chord_at(spans, s) for s in (0, 23, 24, 47, 48)] == [C, C, G, G, None]


def test_a_parallel_fifth_and_octave_are_counted():
    upper = [(0, 12, 72), (12, 12, 74), (24, 12, 76), (36, 12, 76)]
    fifth = [(0, 12, 65), (12, 12, 67)]  # C over F, D over G: a parallel fifth
    assert parallels(upper[:2], fifth) == {"fifths": 1, "octaves": 0, "moves": 1}
    octave = [(0, 24, 60), (24, 24, 64)]  # E over E after D over C: not parallel (a ninth first)
    assert parallels(upper, octave) == {"fifths": 0, "octaves": 0, "moves": 2}
    assert parallels([(0, 12, 72), (12, 12, 74)], [(0, 12, 0), (12, 12, 2)])["octaves"] == 1  # pitch classes
    oblique = [(0, 24, 65)]  # the bass holds: the upper voice moving alone is no parallel
    assert parallels([(0, 12, 72), (12, 12, 72 + 12)], oblique) == {"fifths": 0, "octaves": 0, "moves": 1}


def test_accuracies_and_downbeat_tones():
    m = Melody((Note(0, 24, 72), Note(24, 24, 71), Note(48, 48, 69)), TimeSignature(4, 4), Key(0), 2)
    ours = [(0, 48, C), (48, 48, F)]
    human = [(0, 24, C), (24, 24, G), (48, 48, AM)]
    assert downbeat_chord_tones(m, ours) == {"tones": 2, "n": 2}  # C on C, A in F
    assert quarter_root_accuracy(ours, human, m.total_steps) == {"root": 2, "n": 8}
    labels = [(0, 12, C), (12, 12, None), (24, 12, parse_chord("G/B")), (36, 12, Chord(0, "maj", 4))]
    assert beat_accuracy(ours, labels) == {"root": 2, "bass": 1, "n": 3}
    f = folk_figures([m], [human], [ours])
    assert f["root_accuracy"] == 0.25 and f["downbeat_chord_tones"] == 1.0 and f["human_downbeat_chord_tones"] == 1.0
    c = chorale_figures([m], [labels], [ours], [[(0, 96, 48)]])
    assert c["root_accuracy"] == pytest.approx(2 / 3) and c["bach_parallels_per_100_moves"] == 0


def test_folk_dev_set_has_human_chords():
    from composer.harmony.folk import load_folk_dev

    tunes = load_folk_dev()
    assert len(tunes) == 4
    cuckoo = tunes[0]
    assert cuckoo.melody.key == Key(2) and cuckoo.chords[0] == (48, 48, Chord(2))  # "D" on bar 2 after the pickup
    assert all(s + d <= t.melody.total_steps for t in tunes for s, d, _ in t.chords)
    assert {t.melody.key for t in tunes[2:]} == {Key(5)}  # the lead sheets in F (no signature: analysed)


def _write_chorale(path, shift: int) -> None:
    """A four-part file (tracks Soprano, Alto, Tenor, Bass) of the toy I IV V I piece in C + shift."""
    from tests.test_harmonizer import toy_piece

    _, parts = toy_piece(shift)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(shift % 12, 0))
    step = 0.5 / 12
    for name, notes in zip(("Soprano", "Alto", "Tenor", "Bass"), parts):
        inst = pretty_midi.Instrument(52, name=name)
        inst.notes = [pretty_midi.Note(80, n.pitch, n.start * step, n.end * step) for n in notes]
        pm.instruments.append(inst)
    pm.write(str(path))


def test_train_then_evaluate_harmony_cli(tmp_path):
    data = tmp_path / "chorales"
    data.mkdir()
    for i in range(6):
        _write_chorale(data / f"bach_toy{i}.mid", i)
    out = tmp_path / "h.pt"
    runner = CliRunner()
    r = runner.invoke(main, ["train", "--harmonizer", "--data", str(data), "--epochs", "2", "--out", str(out),
                             "--val-fraction", "0.2"])
    assert r.exit_code == 0, r.output
    assert "6 four-part chorales" in r.output and out.is_file()
    r = runner.invoke(main, ["train", "--harmonizer", "--data", str(data), "--epochs", "1", "--out", str(out)])
    assert r.exit_code != 0 and "already exists" in r.output
    r = runner.invoke(main, ["evaluate", "--harmony", "--checkpoint", str(out), "--data", str(data), "--baseline", "triads"])
    assert r.exit_code == 0, r.output
    assert "held-out chorales" in r.output and "triads" in r.output and "folk dev set: 4 tunes" in r.output
    r = runner.invoke(main, ["evaluate", "--harmony", "--checkpoint", str(out), "--data", str(data), "--json"])
    found = json.loads(r.output)
    assert found["chorales"]["harmonizer"]["pieces"] >= 1 and 0 <= found["folk"]["harmonizer"]["root_accuracy"] <= 1
    (tmp_path / "bad.pt").write_bytes(b"junk")
    r = runner.invoke(main, ["evaluate", "--harmony", "--checkpoint", str(tmp_path / "bad.pt"), "--data", str(data)])
    assert r.exit_code == 1 and "not a readable harmonizer checkpoint" in r.output
