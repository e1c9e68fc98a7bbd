"""`compose harmonize FILE|DIR` (issue 14) through click's CliRunner, on MIDI files written with
pretty_midi: three tracks out, the melody unchanged, folders with an unreadable file, --force,
the MusicXML lead sheet."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.harmony.baseline import triad_baseline
from composer.music.midi_io import read_melody

TUNE = [(0, 67), (1, 72), (2, 71), (3, 72), (4, 74), (5, 76), (6, 74), (7, 72), (8, 71), (9, 67), (10, 69), (11, 71),
        (12, 72)]  # (quarter, pitch): a G-major-ish line in C, ending on the tonic


def write_tune(path: Path, bpm: float = 100.0, program: int = 73, meter=(4, 4), name: str = "Flute", rest: int = 0) -> Path:
    """A one-track tune in quarter notes, as a user's file would come (pretty_midi, 220 ticks a
    quarter), after ``rest`` quarters of silence."""
    pm = pretty_midi.PrettyMIDI(resolution=220, initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*meter, 0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0))
    inst = pretty_midi.Instrument(program, name=name)
    q = 60.0 / bpm
    for i, p in TUNE:
        end = (i + 1) * q if i < 12 else 16 * q
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=(rest + i) * q, end=rest * q + end))
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


def run(*args):
    return CliRunner().invoke(main, ["harmonize", *map(str, args)])


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "tunes"
    write_tune(d / "reel.mid")
    write_tune(d / "waltz.mid", meter=(3, 4), program=40, name="")
    write_tune(d / "sub" / "jig.mid", meter=(6, 8), bpm=120.0)
    (d / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10\x00\x90")
    return d


def test_one_file_gets_melody_chords_and_bass(tmp_path: Path, monkeypatch):
    src = write_tune(tmp_path / "in" / "tune.mid")
    monkeypatch.chdir(tmp_path)
    res = run(src, "--model", "triads")
    assert res.exit_code == 0, res.output
    out = tmp_path / "outputs" / "tune_harmonized.mid"
    assert res.output.startswith("wrote outputs/tune_harmonized.mid: ")
    pm, before = pretty_midi.PrettyMIDI(str(out)), pretty_midi.PrettyMIDI(str(src))
    assert [i.name for i in pm.instruments] == ["Melody", "Chords", "Bass"]
    assert [i.program for i in pm.instruments] == [73, 0, 32]  # the input's flute kept
    assert [(round(n.start, 3), round(n.end, 3), n.pitch) for n in pm.instruments[0].notes] == \
        [(round(n.start, 3), round(n.end, 3), n.pitch) for n in before.instruments[0].notes]
    assert pm.get_tempo_changes()[1].tolist() == pytest.approx([100.0])
    assert pm.get_end_time() <= 16 * 0.6 + 1e-6
    chord_tones = {(n.start, n.pitch % 12) for n in pm.instruments[1].notes}
    melody = read_melody(src)
    for start, _, chord in triad_baseline(melody):  # block style: each baseline chord held from its start
        assert {pc for t, pc in chord_tones if abs(t - start * 0.05) < 1e-6} == set(chord.tones())


@pytest.mark.parametrize("rest", [3, 8, 11])  # a pickup, two empty bars, both
def test_the_melody_keeps_its_timing_after_silence(tmp_path: Path, rest: int):
    src = write_tune(tmp_path / "late.mid", rest=rest)
    res = run(src, "--model", "triads", "--out", tmp_path / "o.mid")
    assert res.exit_code == 0, res.output
    pm, before = pretty_midi.PrettyMIDI(str(tmp_path / "o.mid")), pretty_midi.PrettyMIDI(str(src))
    assert [(round(n.start, 3), n.pitch) for n in pm.instruments[0].notes] == \
        [(round(n.start, 3), n.pitch) for n in before.instruments[0].notes]
    bar = 4 * 0.6
    first_bar_line = -(-rest // 4) * bar
    assert min(n.start for i in pm.instruments[1:] for n in i.notes) == pytest.approx(first_bar_line)
    assert round(pm.get_end_time() / bar, 6) % 1 == 0  # ends on a bar line


def test_the_input_is_never_overwritten_and_force_is_needed(tmp_path: Path):
    src = write_tune(tmp_path / "tune.mid")
    original = src.read_bytes()
    res = run(src, "--model", "triads", "--out", src, "--force")
    assert res.exit_code == 1 and "is the input file" in res.output and src.read_bytes() == original
    out = tmp_path / "out" / "t.mid"
    assert run(src, "--model", "triads", "--out", out).exit_code == 0
    first = out.read_bytes()
    res = run(src, "--model", "triads", "--out", out, "--style", "arpeggio")
    assert res.exit_code == 1 and res.output.strip().endswith("already exists: use --force to overwrite")
    assert len(res.output.strip().splitlines()) == 1 and out.read_bytes() == first
    assert run(src, "--model", "triads", "--out", out, "--style", "arpeggio", "--force").exit_code == 0
    assert out.read_bytes() != first


def test_folder_keeps_names_and_skips_the_unreadable_file(folder: Path, tmp_path: Path):
    out = tmp_path / "harmonized"
    res = run(folder, "--out-dir", out, "--model", "triads", "--style", "oom-pah", "--bass-program", "acoustic bass",
              "--chords-program", "electric piano 1")
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mid")) == ["reel.mid", "sub/jig.mid", "waltz.mid"]
    assert any(line.startswith("broken.mid: skipped: corrupt or truncated MIDI") for line in res.output.splitlines())
    assert "wrote 3 files to" in res.output and "1 skipped" in res.output
    waltz = pretty_midi.PrettyMIDI(str(out / "waltz.mid"))
    assert [i.program for i in waltz.instruments] == [40, 4, 32]
    assert waltz.time_signature_changes[0].numerator == 3


def test_folder_of_unreadable_files_fails(tmp_path: Path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.mid").write_bytes(b"not midi")
    res = run(d, "--out-dir", tmp_path / "o", "--model", "triads")
    assert res.exit_code == 1 and "no readable MIDI file" in res.output
    assert not list(tmp_path.rglob("o/*.mid"))


@pytest.mark.parametrize("args, message", [
    (["--out-dir", "{tmp}/x"], None),  # a folder needs --out-dir: given, fine
    ([], "give --out-dir"),
    (["--out", "{tmp}/x.mid", "--out-dir", "{tmp}/x"], "use --out-dir"),
    (["--out-dir", "{tmp}/tunes/inside"], "overlaps"),
    (["--style", "waltz", "--out-dir", "{tmp}/x"], "'waltz' is not one of"),
    (["--chords-program", "kazoo", "--out-dir", "{tmp}/x"], "unknown program 'kazoo'"),
    (["--chord-rate", "quarter", "--out-dir", "{tmp}/x"], "'quarter' is not one of"),
])
def test_option_errors_are_one_line(folder: Path, tmp_path: Path, args, message):
    res = run(folder, "--model", "triads", *[a.format(tmp=tmp_path) for a in args])
    if message is None:
        assert res.exit_code == 0, res.output
        return
    assert res.exit_code in (1, 2) and message in res.output, res.output


def test_a_missing_model_is_a_one_line_error(tmp_path: Path):
    src = write_tune(tmp_path / "tune.mid")
    res = run(src, "--model", tmp_path / "none.pt", "--out", tmp_path / "o.mid")
    assert res.exit_code == 1 and "not found" in res.output and not (tmp_path / "o.mid").exists()


def test_musicxml_has_chord_symbols_above_the_melody(tmp_path: Path):
    from music21 import converter, harmony

    src = write_tune(tmp_path / "tune.mid")
    res = run(src, "--model", "triads", "--out", tmp_path / "o" / "tune.mid", "--musicxml")
    assert res.exit_code == 0, res.output
    xml = tmp_path / "o" / "tune.musicxml"
    assert xml.read_text().count("<harmony") >= 3
    score = converter.parse(str(xml))
    symbols = [(float(c.getOffsetInHierarchy(score)), c.figure) for c in score.recurse().getElementsByClass(harmony.ChordSymbol)]
    assert symbols[0] == (0.0, "C") and {f for _, f in symbols} <= {"C", "F", "G", "Am", "Dm", "Em", "Bdim"}
    assert len(score.parts) == 1 and len(score.parts[0].recurse().notes) - len(symbols) == len(TUNE)


def test_the_harmonizer_batches_a_folder_at_the_rate_asked(folder: Path, tmp_path: Path):
    pytest.importorskip("composer.harmony.harmonizer")
    import torch

    from composer.harmony.harmonizer import save_harmonizer
    from composer.harmony.network import HarmonizerConfig, HarmonizerNet

    torch.manual_seed(0)
    tiny = save_harmonizer(tmp_path / "tiny.pt", HarmonizerNet(HarmonizerConfig(embed=8, hidden=8, enc_layers=1, dec_hidden=8,
                                                                                chord_embed=4, bass_embed=4)))
    out = tmp_path / "h"
    res = run(folder, "--out-dir", out, "--model", tiny, "--chord-rate", "bar")
    assert res.exit_code == 0, res.output
    pm = pretty_midi.PrettyMIDI(str(out / "reel.mid"))
    bar = 4 * 0.6  # seconds per 4/4 bar at 100 quarters a minute
    assert {round(n.start / bar, 6) % 1 for n in pm.instruments[1].notes} == {0.0}  # chords change on bar lines only
    assert {round(n.start / bar, 6) % 1 for n in pm.instruments[2].notes} == {0.0}


def test_chord_symbols_sit_above_one_voice_in_musicxml():
    """Chord symbols go into the notated measures: inserted into the part, music21 split the melody
    into two voices (a whole-bar rest under every bar in MuseScore)."""
    from music21 import stream

    from composer.music.keys import Key
    from composer.music.melody import Melody, Note
    from composer.music.meter import TimeSignature
    from composer.music.render import to_music21

    notes = tuple(Note(24 + 12 * i, 12, 64 + (i % 3)) for i in range(20))  # a pickup, then 3/4 bars
    melody = Melody(notes, TimeSignature(3, 4), Key.parse("Em"), 8)
    chords = [(36, 96, "Em"), (132, 12, "B"), (144, 36, "Am/C"), (180, 72, "Bm"), (252, 24, "B7/F#")]
    score = to_music21(melody, chords=chords, credit="chords by composer")
    part = score.parts[0]
    assert not list(part.recurse().getElementsByClass(stream.Voice))
    from music21 import harmony

    symbols = [(float(c.getOffsetInHierarchy(part)), c.figure) for c in part.recurse().getElementsByClass(harmony.ChordSymbol)]
    assert symbols == [(3.0, "Em"), (11.0, "B"), (12.0, "Am/C"), (15.0, "Bm"), (21.0, "B7/F#")]
    assert score.metadata.composer == "chords by composer"
