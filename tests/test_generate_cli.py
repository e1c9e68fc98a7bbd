"""`compose generate` end to end: what a DAW sees in every file, options, and bad input."""

import subprocess
import sys
import threading
from pathlib import Path

import mido
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from composer.music.bars import is_pickup
from composer.model.checkpoint import DEFAULT_MODEL, save_checkpoint
from composer.cli import main
from composer.cli.generate import _claim
from composer.model.config import ModelConfig
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody, write_midi
from composer.music.midi_write import settings_text
from composer.model.network import MelodyLSTM
from composer.music.render import wav_available

DATA = {"meters": {"6/8": 120, "4/4": 90, "3/4": 40, "5/4": 1}, "keys": {"G": 60, "D": 50, "Em": 30, "Am": 25, "Bbm": 1}}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, MelodyLSTM]:
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.3, copy_hints=False))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, extra={"data": DATA})
    return path, model


def gen(tiny, tmp_path, *args, out="out"):
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--outdir", str(tmp_path / out), *args])
    return res


def files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


def assert_daw_clean(path: Path, bars: int, meter: str, key: str | None = None, tempo: float | None = None,
                     program: int = 0, pitch_range=(21, 108)) -> pretty_midi.PrettyMIDI:
    """What a DAW shows: N bars exactly, meter/key/tempo at 0, one 'Melody' track, clean notes."""
    mid = mido.MidiFile(path)
    num, den = (int(x) for x in meter.split("/"))
    bar_ticks = mid.ticks_per_beat * 4 * num // den
    assert mid.type == 1 and {sum(m.time for m in t) for t in mid.tracks} == {bars * bar_ticks}
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [(t.numerator, t.denominator, t.time) for t in pm.time_signature_changes] == [(num, den, 0.0)]
    ks = pm.key_signature_changes
    assert len(ks) == 1 and ks[0].time == 0
    if key:
        assert ks[0].key_number == Key.parse(key).index
    times, tempi = pm.get_tempo_changes()
    assert list(times) == [0.0] and (tempo is None or abs(tempi[0] - tempo) < 0.01)
    (inst,) = pm.instruments
    assert inst.name == "Melody" and inst.program == program and not inst.is_drum
    notes = sorted(inst.notes, key=lambda n: n.start)
    assert notes and all(n.end - n.start > 1e-6 for n in notes)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(notes, notes[1:]))
    assert all(1 <= n.velocity <= 127 for n in notes) and (len(notes) < 4 or len({n.velocity for n in notes}) > 1)
    assert all(pitch_range[0] <= n.pitch <= pitch_range[1] for n in notes)
    text = settings_text(path) or ""
    assert "seed" in text and "temperature" in text and f"meter {meter}" in text and "model tiny.pt" in text
    assert read_melody(path).n_bars == bars
    return pm


def test_generated_files_are_what_a_daw_expects(tiny, tmp_path):
    res = gen(tiny, tmp_path, "--bars", "6", "--num", "3", "--key", "Dm", "--time-signature", "6/8", "--tempo", "96",
              "--program", "flute", "--pitch-range", "C4-G5", "--seed", "42", "--temperature", "1.3")
    assert res.exit_code == 0, res.output
    mids = files(tmp_path / "out")
    assert [p.name for p in mids] == [f"melody_Dm_6-8_6bars_seed42_0{i}.mid" for i in (1, 2, 3)]
    for p in mids:
        assert_daw_clean(p, 6, "6/8", "Dm", 96.0, program=73, pitch_range=(60, 79))
        assert str(p) in res.output
    bpn = [float(line.split()[1]) for line in res.output.splitlines() if line.startswith(str(tmp_path))]
    assert len(bpn) == 3 and bpn == sorted(bpn)  # ranked by the model's likelihood


def test_defaults_come_from_the_corpus(tiny, tmp_path):
    res = gen(tiny, tmp_path, "--num", "6", "--seed", "3", "--bars", "2")
    assert res.exit_code == 0, res.output
    assert "pass --seed" not in res.output  # the seed is only echoed when it was random
    for p in files(tmp_path / "out"):
        m = read_melody(p)
        assert str(m.time_signature) in ("6/8", "4/4", "3/4") and m.key.name in ("G", "D", "Em", "Am")
        assert m.n_bars == 2 and m.tempo == (150.0 if str(m.time_signature) == "6/8" else 120.0)


def test_same_seed_same_bytes_and_never_overwrites(tiny, tmp_path):
    for out in ("a", "b"):
        assert gen(tiny, tmp_path, "--seed", "5", "--bars", "4", out=out).exit_code == 0
    (a,), (b,) = files(tmp_path / "a"), files(tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    before = a.read_bytes()
    assert gen(tiny, tmp_path, "--seed", "5", "--bars", "4", out="a").exit_code == 0
    assert sorted(p.name for p in files(tmp_path / "a")) == sorted([a.name, a.stem + "-2.mid"])
    assert a.read_bytes() == before


def test_random_seed_is_printed_and_reproduces(tiny, tmp_path):
    res = gen(tiny, tmp_path, "--bars", "3", "--max-copy", "0", out="r1")
    seed = res.output.split("pass --seed ")[1].split()[0].rstrip(")")
    assert gen(tiny, tmp_path, "--bars", "3", "--seed", seed, out="r2").exit_code == 0
    (a,), (b,) = files(tmp_path / "r1"), files(tmp_path / "r2")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_out_and_force(tiny, tmp_path):
    target = tmp_path / "mine.mid"
    assert CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--out", str(target), "--bars", "3"]).exit_code == 0
    first = target.read_bytes()
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--out", str(target), "--bars", "3"])
    assert res.exit_code == 1 and "--force" in res.output and target.read_bytes() == first
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--out", str(target), "--bars", "3", "--seed", "1", "--force"])
    assert res.exit_code == 0 and target.read_bytes() != first
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--out", str(tmp_path / "v.mid"), "--num", "2", "--bars", "2"])
    assert res.exit_code == 0 and (tmp_path / "v_01.mid").is_file() and (tmp_path / "v_02.mid").is_file()


def test_prime_is_kept_and_continued(tiny, tmp_path):
    meter = TimeSignature(3, 4)
    prime = Melody((Note(0, 12, 67), Note(12, 12, 69), Note(24, 6, 71), Note(30, 30, 72), Note(72, 36, 74)),
                   meter, Key.parse("G"), 3, tempo=88.0)
    path = write_midi(prime, tmp_path / "prime.mid")
    res = gen(tiny, tmp_path, "--prime", str(path), "--bars", "4", "--num", "2", "--pitch-range", "60-72")
    assert res.exit_code == 0, res.output
    for p in files(tmp_path / "out"):
        assert p.name.startswith("prime_continued_G_3-4_7bars")
        assert_daw_clean(p, 7, "3/4", "G", 88.0)
        m = read_melody(p)
        assert m.notes[:5] == prime.notes and all(60 <= n.pitch <= 72 for n in m.notes[5:])


def test_form_repeats_sections(tiny, tmp_path):
    res = gen(tiny, tmp_path, "--form", "AABB", "--section-bars", "2", "--time-signature", "4/4", "--temperature", "2",
              "--seed", "3")
    assert res.exit_code == 0, res.output
    (p,) = files(tmp_path / "out")
    m = assert_daw_clean(p, 8, "4/4")
    notes = [(round(n.start, 6), round(n.end - n.start, 6), n.pitch) for n in m.instruments[0].notes]
    sec = 2 * 2.0  # 2 bars of 4/4 at 120 bpm = 4 s

    def section(i):
        return [(round(s - i * sec, 6), d, pt) for s, d, pt in notes if i * sec <= s < (i + 1) * sec]

    def tail(i):  # a section opening with a pickup bar is repeated with a lead-in bar instead (issue 12)
        bar = sec / 2
        first = [n for n in section(i) if n[0] < bar]
        pickup = is_pickup([(round(s * 24), round(d * 24)) for s, d, _ in first], 48)  # 24 steps a second at 120 bpm
        return [n for n in section(i) if n[0] >= bar] if pickup else section(i)

    def opening(i):  # the piece's last section may close with a new last bar (a second-time ending)
        return [n for n in tail(i) if n[0] < sec / 2]

    assert tail(0) == tail(1) and opening(2) == opening(3) and section(0) != section(2)


def test_default_structure_comes_from_the_checkpoints_tunes(tmp_path):
    """Without --form each melody follows a training tune's bar plan (here: every bar copies
    bar 0, when the grammar lets it); --form free samples without one."""
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.3, copy_hints=False))
    plans = torch.full((3, 64), -2, dtype=torch.int16)
    plans[:, :8] = torch.tensor([-1] + [0] * 7, dtype=torch.int16)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model, extra={"data": DATA, "structure": plans})
    args = ["--bars", "8", "--time-signature", "4/4", "--num", "4", "--seed", "7", "--max-copy", "0"]
    res = gen((ckpt, model), tmp_path, *args)
    assert res.exit_code == 0, res.output
    free = gen((ckpt, model), tmp_path, *args, "--form", "free", out="free")
    assert free.exit_code == 0, free.output

    def repeats(folder):
        out = []
        for p in files(folder):
            pm = assert_daw_clean(p, 8, "4/4")
            out.append(int(settings_text(p).count("form from a training tune")))
        return out

    assert repeats(tmp_path / "out") == [1] * 4 and repeats(tmp_path / "free") == [0] * 4
    count = lambda text: sum(int(line.split(" repeated bars")[0].rsplit(" ", 1)[-1]) for line in text.splitlines() if "repeated bars" in line)  # noqa: E731
    assert count(res.output) > count(free.output) + 4

    # A model that reads copy hints makes its own repeats: free by default, plans with --form corpus.
    torch.manual_seed(0)
    hinted = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, copy_hints=True))
    ckpt2 = save_checkpoint(tmp_path / "hinted" / "tiny.pt", hinted, extra={"data": DATA, "structure": plans})
    assert gen((ckpt2, hinted), tmp_path, *args, out="h-default").exit_code == 0
    corpus = gen((ckpt2, hinted), tmp_path, *args, "--form", "corpus", out="h-corpus")
    assert corpus.exit_code == 0, corpus.output
    assert repeats(tmp_path / "h-default") == [0] * 4 and repeats(tmp_path / "h-corpus") == [1] * 4
    bare = save_checkpoint(tmp_path / "no-plans" / "tiny.pt", hinted, extra={"data": DATA})
    r = gen((bare, hinted), tmp_path, *args, "--form", "corpus", out="none")
    assert r.exit_code == 2 and "needs a checkpoint with bar plans" in r.output and not files(tmp_path / "none")  # asks what this model cannot do


def test_extra_renderings_and_missing_fluidsynth(tiny, tmp_path):
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--outdir", str(tmp_path / "x"), "--bars", "4",
                                    "--key", "Bb", "--musicxml", "--png", "--wav", "--seed", "2", "--program", "flute"],
                           env={"PATH": str(tmp_path)})
    assert res.exit_code == 0, res.output
    assert "fluidsynth" in res.output and "apt install fluidsynth fluid-soundfont-gm" in res.output
    names = {p.suffix for p in files(tmp_path / "x")}
    assert names == {".mid", ".musicxml", ".png"}
    (xml,) = (tmp_path / "x").glob("*.musicxml")
    assert b"<score-partwise" in xml.read_bytes() and b"<fifths>-2</fifths>" in xml.read_bytes()
    assert b"<midi-program>74</midi-program>" in xml.read_bytes()  # the flute, not a piano (MusicXML counts from 1)
    assert next((tmp_path / "x").glob("*.png")).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(wav_available() is not None, reason="fluidsynth or a GM soundfont is not installed")
def test_wav(tiny, tmp_path):
    assert gen(tiny, tmp_path, "--bars", "2", "--wav").exit_code == 0
    (wav,) = (tmp_path / "out").glob("*.wav")
    assert wav.read_bytes()[:4] == b"RIFF" and wav.stat().st_size > 10_000


def test_failure_midway_names_what_was_written(tiny, tmp_path):
    (tmp_path / "song.png").mkdir()  # the third file cannot be written
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny[0]), "--out", str(tmp_path / "song.mid"), "--bars", "2",
                                    "--musicxml", "--png", "--force", "--max-copy", "0"])
    assert res.exit_code == 1 and "already written" in res.output and "song.mid" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid", "song.musicxml", "song.png"]  # no temp files


def other_version(path: Path, tiny) -> Path:
    blob = torch.load(tiny[0], weights_only=True)
    blob["tokenizer_version"] = 99
    torch.save(blob, path)
    return path


BAD = [
    (["--key", "H"], "unknown key"),
    (["--time-signature", "5/5"], "time signature"),
    (["--time-signature", "17/4"], "not supported"),
    (["--bars", "0"], "--bars"),
    (["--bars", "100000"], "--bars"),
    (["--num", "0"], "--num"),
    (["--temperature", "0"], "temperature"),
    (["--top-p", "0"], "top-p"),
    (["--top-k", "-1"], "top-k"),
    (["--tempo", "0"], "--tempo"),
    (["--program", "kazoo"], "unknown program"),
    (["--program", "300"], "0-127"),
    (["--pitch-range", "G5-C4"], "empty"),
    (["--pitch-range", "A0-C9"], "model's range"),
    (["--pitch-range", "C#4-C#4", "--key", "C"], "too narrow"),
    (["--pitch-range", "low-high"], "LOW-HIGH"),
    (["--form", "AB1"], "letters"),
    (["--form", "AAB", "--bars", "16"], "sections"),
    (["--section-bars", "4"], "--section-bars needs a form of sections"),  # option names, not the API's keywords
    (["--vary"], "--vary needs a form of sections"),
    (["--form", "free", "--vary"], "not form free"),
    (["--out", "x.txt"], ".mid"),
]


@pytest.mark.parametrize("args,words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_options_are_usage_errors_and_write_nothing(tiny, tmp_path, args, words):
    """A malformed, out-of-range or conflicting value exits 2 (click's convention: its short
    usage block, then one line ``Error: ...`` that says what is wrong)."""
    res = gen(tiny, tmp_path, *args)
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and words in errors[0] and res.output.strip().endswith(errors[0]), res.output
    assert "Traceback" not in res.output
    assert files(tmp_path / "out") == [] and not (tmp_path / "x.txt").exists()


def test_bad_checkpoints_and_primes(tiny, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    text = tmp_path / "notes.mid"
    text.write_text("these are not MIDI bytes")
    waltz = write_midi(Melody((Note(0, 36, 60),), TimeSignature(3, 4), Key(0), 1), tmp_path / "waltz.mid")
    cases = [  # a missing or bad file: exit 1, one line
        (["-c", str(tmp_path / "missing.pt")], "not found"),
        (["-c", str(garbage)], "not a readable composer checkpoint"),
        (["-c", str(other_version(tmp_path / "v99.pt", tiny))], "tokenizer version"),
        (["-c", str(tiny[0]), "--prime", str(text)], "not a MIDI file"),
        (["-c", str(tiny[0]), "--prime", str(tmp_path / "nowhere.mid")], "nowhere.mid"),
    ]
    for args, words in cases:
        res = CliRunner().invoke(main, ["generate", "--outdir", str(tmp_path / "out"), *args])
        assert res.exit_code == 1 and words in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert res.output.startswith("Error: ")
    # a prime and an option that contradict each other: a usage error (exit 2)
    res = CliRunner().invoke(main, ["generate", "--outdir", str(tmp_path / "out"), "-c", str(tiny[0]),
                                    "--prime", str(waltz), "--time-signature", "4/4"])
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("Error: the prime is in 3/4"), res.output
    assert files(tmp_path / "out") == []


@pytest.mark.skipif(DEFAULT_MODEL.is_file(), reason="a default model ships")
def test_missing_default_model_says_what_to_do(tmp_path):
    res = CliRunner().invoke(main, ["generate", "--outdir", str(tmp_path / "out")])
    assert res.exit_code == 1 and "compose train" in res.output and "--checkpoint" in res.output


def test_originality_guard_resamples_copies(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    assert gen(tiny, tmp_path, "--seed", "4", "--bars", "8", "--time-signature", "4/4", out="train").exit_code == 0
    (copy,) = files(tmp_path / "train")
    ckpt = tmp_path / "with_data.pt"
    data = dict(DATA, folder=str(tmp_path / "train"), train_files=[copy.name])
    save_checkpoint(ckpt, tiny[1], extra={"data": data})
    res = CliRunner().invoke(main, ["generate", "-c", str(ckpt), "--outdir", str(tmp_path / "o"), "--seed", "4",
                                    "--bars", "8", "--time-signature", "4/4", "--max-copy", "3"])
    assert res.exit_code == 0, res.output
    assert "resampled 1 of 1" in res.output
    (new,) = files(tmp_path / "o")
    assert new.read_bytes() != copy.read_bytes()


def test_racing_writers_get_distinct_names(tmp_path):
    got, errors = [], []

    def claim(i):
        try:
            got.append(_claim(tmp_path, "melody", [".mid"], lambda p, force: write_midi(
                Melody((Note(0, 12, 60 + i),), TimeSignature(4, 4), Key(0), 1), p, force=force)))
        except Exception as e:  # noqa: BLE001 - any failure fails the test below
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 8 and len(files(tmp_path)) == 8


def test_help_does_not_import_torch():
    code = "import sys, composer.cli.generate; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
