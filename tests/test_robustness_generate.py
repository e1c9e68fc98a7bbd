"""Robustness of `compose generate`, `compose evaluate` and the music parsers (issue 17): each
test names what a careless user or an attacker tried, and what must happen instead."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.cli.generate import _claim
from composer.errors import MidiError, MusicError, RequestError
from composer.generate.api import Composer
from composer.generate.seeds import seeded_generator
from composer.generate.request import MAX_SEED, MIN_TEMPERATURE, GenerateRequest, keys_for_range, parse_program
from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music import render
from composer.music.keys import Key
from composer.music.melody import Melody, Note, parse_pitch
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody, write_midi

DATA = {"meters": {"6/8": 120, "4/4": 90, "3/4": 40}, "keys": {"G": 60, "D": 50, "Em": 30, "Am": 25, "Bbm": 1}}


def tiny_model(path: Path, keys: dict | None = None) -> Path:
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.0, copy_hints=False))
    return save_checkpoint(path, model, extra={"data": {**DATA, "keys": keys or DATA["keys"]}})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def composer(tiny) -> Composer:
    return Composer.load(tiny)


def invoke(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.startswith("Error:")]


def one_line_error(res, code: int, words: str) -> None:
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (ValueError, TypeError, AssertionError))
    errors = error_lines(res)
    assert len(errors) == 1 and words in errors[0], res.output


def notes_of(results) -> list:
    return [r.melody.notes for r in results]


# ---- 1. evaluate: a GPU that is not here, an output folder that cannot be written -----------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here")
def test_evaluate_device_cuda_without_a_gpu_is_one_line(tiny):
    one_line_error(invoke("evaluate", "--samples", 2, "-c", tiny, "--device", "cuda"), 1, "--device cuda")


def test_evaluate_device_mps_where_there_is_none_is_one_line(tiny):
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        pytest.skip("Apple's MPS is here")
    one_line_error(invoke("evaluate", "--samples", 2, "-c", tiny, "--device", "mps"), 1, "--device mps")


def test_evaluate_out_under_a_file_fails_before_any_work(tiny, tmp_path):
    (tmp_path / "ref").mkdir()  # no reference melodies: the work would fail on them, after the model is loaded
    (tmp_path / "file.txt").write_text("a file, not a folder")
    res = invoke("evaluate", "--samples", 2, "-c", tiny, "--reference", tmp_path / "ref", "--out", tmp_path / "file.txt" / "ev")
    one_line_error(res, 1, "--out")
    assert "cannot write" in res.output and "reference" not in res.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_evaluate_out_read_only_fails_before_any_work(tiny, tmp_path):
    (tmp_path / "ref").mkdir()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        res = invoke("evaluate", "--samples", 2, "-c", tiny, "--reference", tmp_path / "ref", "--out", ro)
    finally:
        ro.chmod(stat.S_IRWXU)
    one_line_error(res, 1, "--out")


# ---- 2. digits are ASCII digits -------------------------------------------------------------------

@pytest.mark.parametrize("parse,text", [
    (parse_program, "²"), (parse_program, "٣"), (parse_program, "9" * 5000),
    (parse_pitch, "²"), (parse_pitch, "C²"), (parse_pitch, "٦٠"), (parse_pitch, "C###4"),
    (TimeSignature.parse, "²/4"), (TimeSignature.parse, "４/４"), (TimeSignature.parse, "1_2/8"),
    (Key.parse, "Ｃ"),
], ids=lambda x: getattr(x, "__qualname__", None) or ascii(x)[:12])
def test_non_ascii_digits_are_refused_not_a_crash(parse, text):
    with pytest.raises((MusicError, RequestError)):
        parse(text)


@pytest.mark.parametrize("args", [["--program", "²"], ["--pitch-range", "C4-G²"], ["--time-signature", "６/８"]], ids=ascii)
def test_cli_unicode_digit_is_a_usage_error(tiny, tmp_path, args):
    res = invoke("generate", "-c", tiny, "--outdir", tmp_path, *args)
    one_line_error(res, 2, "")
    assert list(tmp_path.iterdir()) == []


# ---- 3. tiny temperatures are greedy ------------------------------------------------------------

@pytest.mark.parametrize("extra", [{}, {"top_k": 5}, {"top_p": 0.9}], ids=["plain", "top_k", "top_p"])
@pytest.mark.parametrize("num", [1, 3])
def test_a_tiny_temperature_gives_well_formed_greedy_melodies(composer, num, extra):
    results = composer.generate(bars=4, num=num, seed=1, temperature=1e-40, max_copy=0, time_signature="4/4", key="G", **extra)
    for r in results:
        assert r.melody.n_bars == 4 and r.melody.notes and str(r.melody.time_signature) == "4/4"
        assert all(21 <= n.pitch <= 108 for n in r.melody.notes)
        assert r.bits_per_note > 0 and f"temperature {MIN_TEMPERATURE:g}" in r.text
    floor = composer.generate(bars=4, num=num, seed=1, temperature=MIN_TEMPERATURE, max_copy=0, time_signature="4/4", key="G", **extra)
    assert notes_of(results) == notes_of(floor)
    other_seed = composer.generate(bars=4, num=num, seed=2, temperature=1e-40, max_copy=0, time_signature="4/4", key="G", **extra)
    assert notes_of(other_seed) == notes_of(results)  # greedy: the seed no longer matters


def test_the_cli_takes_a_tiny_temperature(tiny, tmp_path):
    res = invoke("generate", "-c", tiny, "--outdir", tmp_path, "--bars", 2, "--seed", 1, "--temperature", "1e-40", "--max-copy", 0)
    assert res.exit_code == 0, res.output
    (mid,) = tmp_path.glob("*.mid")
    assert read_melody(mid).n_bars == 2


# ---- 4. every seed its own melodies -------------------------------------------------------------

def test_seeds_2_to_the_32_apart_give_different_melodies(composer):
    a = composer.generate(bars=8, seed=5, max_copy=0, time_signature="4/4", key="G")
    b = composer.generate(bars=8, seed=5 + 2**32, max_copy=0, time_signature="4/4", key="G")
    assert a[0].melody.notes != b[0].melody.notes and b[0].seed == 5 + 2**32
    top = composer.generate(bars=2, seed=MAX_SEED, max_copy=0)
    assert top[0].melody.n_bars == 2 and f"seed {MAX_SEED}" in top[0].text


def test_seeded_generator_is_torchs_below_2_to_the_32_and_distinct_above():
    for seed in (0, 1, 7, 2**32 - 1):  # the golden files' seeds keep their streams
        assert torch.equal(torch.rand(8, generator=seeded_generator(seed)),
                           torch.rand(8, generator=torch.Generator().manual_seed(seed)))
    seeds = [0, 5, 2**31, 2**32 - 1, 2**32, 2**32 + 5, 2**33 + 5, 5 * 2**32 + 5, 2**62, MAX_SEED - 1, MAX_SEED]
    draws = {s: tuple(torch.rand(16, generator=seeded_generator(s)).tolist()) for s in seeds}
    assert len(set(draws.values())) == len(seeds)
    for s in seeds:  # not just different: unrelated (no shared draws past the first)
        if s >= 2**32:
            low = torch.rand(16, generator=torch.Generator().manual_seed(s & 0xFFFFFFFF)).tolist()
            assert not set(draws[s]) & set(low), s
            assert seeded_generator(s).initial_seed() == s


def test_cli_seeds_2_to_the_32_apart_write_different_files(tiny, tmp_path):
    for seed in (9, 9 + 2**32):
        assert invoke("generate", "-c", tiny, "--outdir", tmp_path, "--bars", 4, "--seed", seed, "--max-copy", 0,
                      "--key", "G", "--time-signature", "3/4").exit_code == 0
    a, b = sorted(tmp_path.glob("*.mid"))
    assert read_melody(a).notes != read_melody(b).notes


def test_evaluate_refuses_a_seed_whose_batches_pass_the_last_seed_up_front(tiny, tmp_path):
    (tmp_path / "ref").mkdir()  # no reference melodies: the work would fail on them first
    res = invoke("evaluate", "--samples", 2, "-c", tiny, "--reference", tmp_path / "ref", "--seed", MAX_SEED)
    one_line_error(res, 2, "--seed")


# ---- 5. output names --------------------------------------------------------------------------

def test_a_dangling_symlink_at_the_automatic_name_is_skipped(tiny, tmp_path):
    args = ["generate", "-c", tiny, "--bars", 2, "--seed", 3, "--max-copy", 0]
    assert invoke(*args, "--outdir", tmp_path / "first").exit_code == 0
    (first,) = (tmp_path / "first").iterdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / first.name).symlink_to(tmp_path / "nowhere.mid")  # dangling
    res = invoke(*args, "--outdir", out)
    assert res.exit_code == 0, res.output
    taken = out / f"{first.stem}-2.mid"
    assert taken.read_bytes() == first.read_bytes() and (out / first.name).is_symlink()
    assert not (tmp_path / "nowhere.mid").exists()  # nothing written through the link


def test_claim_takes_the_next_name_after_a_dangling_symlink(tmp_path):
    (tmp_path / "m.mid").symlink_to(tmp_path / "gone")
    (tmp_path / "m-2.png").symlink_to(tmp_path / "gone")  # an extra's name counts too

    def write(path: Path, force: bool) -> Path:
        from composer.files import atomic_write
        return atomic_write(path, b"MThd", force=force)

    assert _claim(tmp_path, "m", [".mid", ".png"], write) == tmp_path / "m-3.mid"


@pytest.mark.parametrize("make_dir", [False, True], ids=["trailing-slash", "existing-folder"])
def test_out_naming_a_folder_is_a_usage_error(tiny, tmp_path, monkeypatch, make_dir):
    monkeypatch.chdir(tmp_path)
    if make_dir:
        (tmp_path / "newdir").mkdir()
    res = invoke("generate", "-c", tiny, "--bars", 2, "--max-copy", 0, "--out", "newdir/" if not make_dir else "newdir")
    one_line_error(res, 2, "newdir")
    assert not (tmp_path / "newdir.mid").exists() and not list(tmp_path.glob("**/*.mid"))


FAKE_FLUIDSYNTH = f"""#!{sys.executable}
# records its arguments and writes a 2000-byte WAV of silence (16-bit stereo) where -F says
import os, sys, wave
open(os.environ["FLUID_ARGS"], "w").write("\\n".join(sys.argv[1:]) + "\\n")
with wave.open(sys.argv[sys.argv.index("-F") + 1], "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100); w.writeframes(bytes(1956))
"""


@pytest.fixture
def fake_fluidsynth(tmp_path, monkeypatch) -> Path:
    """A stand-in fluidsynth program on PATH that records its arguments (the real one may be absent)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    prog = bin_dir / "fluidsynth"
    prog.write_text(FAKE_FLUIDSYNTH)
    prog.chmod(0o755)
    (tmp_path / "gm.sf2").write_bytes(b"sf2")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("COMPOSER_SOUNDFONT", str(tmp_path / "gm.sf2"))
    monkeypatch.setenv("FLUID_ARGS", str(tmp_path / "args.txt"))
    return tmp_path / "args.txt"


def test_file_names_starting_with_a_dash_never_reach_fluidsynth_as_options(tmp_path, monkeypatch, fake_fluidsynth):
    monkeypatch.chdir(tmp_path)
    mel = Melody((Note(0, 48, 60),), TimeSignature(4, 4), Key(0), 1)
    write_midi(mel, Path("-x.mid"))
    wav = render.write_wav(Path("-x.mid"), Path("-x.wav"))
    assert wav.stat().st_size == 44 + 4 * round(2.0 * 44100)  # the bar's 2 s exactly, 16-bit stereo
    args = fake_fluidsynth.read_text().splitlines()
    files = [args[args.index("-F") + 1]] + args[-2:]  # the WAV written, the soundfont, the MIDI file
    assert all(Path(f).is_absolute() for f in files), args
    assert args[-1] == str(tmp_path / "-x.mid")


# ---- 6. messages that say what is wrong --------------------------------------------------------

@pytest.mark.parametrize("meter,words", [("1/64", "denominator 1, 2, 4, 8, 16 or 32"), ("33/8", "at most 32 beats"), ("3/32", "even number of 32nds"),
                                          ("9/2", "18 quarters is longer than 16"), ("17/4", "longer than 16")])
def test_unsupported_meters_say_why(tiny, tmp_path, meter, words):
    with pytest.raises(RequestError, match=words):
        GenerateRequest(time_signature=meter)
    one_line_error(invoke("generate", "-c", tiny, "--outdir", tmp_path, "--time-signature", meter), 2, words)


def test_a_fifo_prime_is_not_a_regular_file_and_never_blocks(tiny, tmp_path):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)  # nobody writes to it: opening it for reading the usual way would wait forever
    with pytest.raises(MidiError, match="not a regular file but a FIFO"):
        read_melody(fifo)
    one_line_error(invoke("generate", "-c", tiny, "--outdir", tmp_path / "o", "--prime", fifo), 1, "FIFO")


def test_a_device_or_folder_prime_is_not_a_regular_file():
    with pytest.raises(MidiError, match="not a regular file but a device"):
        read_melody("/dev/zero")
    with pytest.raises(MidiError, match="not a regular file but a folder"):
        read_melody(Path(__file__).parent)


@pytest.mark.parametrize("text", ["C#######", "Cbbb", "C#b", "\n", "", "   "], ids=ascii)
def test_keys_with_many_accidentals_or_blank_are_refused(tiny, tmp_path, text):
    with pytest.raises(MusicError):
        Key.parse(text)
    with pytest.raises(RequestError):
        GenerateRequest(key=text)
    one_line_error(invoke("generate", "-c", tiny, "--outdir", tmp_path, "--key", text), 2, "key")


def test_key_names_with_two_accidentals_and_lowercase_b():
    assert Key.parse("C##") == Key(2) and Key.parse("Ebb") == Key(2)
    assert Key.parse("bb") == Key(10, minor=True)  # B-flat minor: the letter b is no flat
    assert Key.parse("bbm") == Key(10, minor=True) and Key.parse("b") == Key(11, minor=True)


def test_form_letters_are_case_insensitive(composer, tiny, tmp_path):
    lower = composer.generate(form="aabb", section_bars=2, seed=4, max_copy=0)
    upper = composer.generate(form="AABB", section_bars=2, seed=4, max_copy=0)
    assert lower[0].melody.notes == upper[0].melody.notes and "form AABB" in lower[0].text
    assert GenerateRequest(form="abAC").form == "ABAC"
    with pytest.raises(RequestError, match="letters A-Z"):
        GenerateRequest(form="ßß")
    assert invoke("generate", "-c", tiny, "--outdir", tmp_path, "--form", "abab", "--section-bars", 1).exit_code == 0


def test_request_errors_name_keywords_in_the_api_and_options_in_the_cli(tiny, tmp_path):
    with pytest.raises(RequestError, match="^section_bars needs a form"):
        GenerateRequest(section_bars=4)
    with pytest.raises(RequestError, match="^vary needs a form"):
        GenerateRequest(vary=True)
    one_line_error(invoke("generate", "-c", tiny, "--outdir", tmp_path, "--section-bars", 4, "--vary"), 2,
                   "--section-bars and --vary need a form")
    res = invoke("generate", "-c", tiny, "--outdir", tmp_path, "--form", "AAB", "--bars", 16)
    one_line_error(res, 2, "give --section-bars")


# ---- 7. a narrow pitch range gets a key that has notes in it -----------------------------------

def test_a_narrow_pitch_range_without_a_key_gets_a_key_holding_it(composer):
    results = composer.generate(bars=2, num=8, seed=0, pitch_range="C#4-C#4", max_copy=0)
    results += composer.generate(bars=2, num=8, seed=1, pitch_range=(61, 61), max_copy=0)
    for r in results:
        assert r.melody.key.in_scale(61), r.melody.key  # D major here: the only well-known key with C#
        assert {n.pitch for n in r.melody.notes} == {61}


def test_a_range_of_a_few_notes_gets_the_keys_with_most_scale_notes_in_it(composer):
    for r in composer.generate(bars=2, num=8, seed=2, pitch_range="C#4-D4", max_copy=0):
        assert r.melody.key == Key.parse("D")  # the only well-known key holding both C# and D
    wide = GenerateRequest(pitch_range="C4-C5").pitch_range
    assert keys_for_range(wide, composer.keys) == composer.keys  # every key has 3 scale notes in an octave
    assert keys_for_range((61, 61), [Key(0)]) == []


def test_a_narrow_range_falls_back_to_rarer_keys_then_refuses(tmp_path):
    rare = Composer.load(tiny_model(tmp_path / "a.pt"))  # A#4 is in Bbm only (seen once)
    for r in rare.generate(bars=1, num=4, seed=0, pitch_range="A#4-A#4", max_copy=0):
        assert r.melody.key == Key.parse("Bbm")
    only_c = Composer.load(tiny_model(tmp_path / "c.pt", keys={"C": 100}))
    with pytest.raises(RequestError, match="C#4-C#4 holds too few notes of every key the model knows"):
        only_c.generate(bars=1, pitch_range="C#4-C#4", max_copy=0)
    res = invoke("generate", "-c", tmp_path / "c.pt", "--outdir", tmp_path / "o", "--pitch-range", "C#4-C#4")
    one_line_error(res, 2, "pitch range C#4-C#4")
    assert only_c.generate(bars=1, pitch_range="C#4-C#4", key="A", max_copy=0)[0].melody.key == Key.parse("A")


# ---- 8. the extras have limits on long pieces ---------------------------------------------------

def test_extras_of_a_long_piece_are_skipped_with_a_note(tiny, tmp_path, monkeypatch, fake_fluidsynth):
    bars = render.MAX_NOTATION_BARS + 8
    prime = Melody(tuple(Note(48 * b, 48, 60 + b % 12) for b in range(bars)), TimeSignature(4, 4), Key(0), bars, tempo=120)
    write_midi(prime, tmp_path / "long.mid")
    res = CliRunner().invoke(main, ["generate", "-c", str(tiny), "--prime", str(tmp_path / "long.mid"),
                                                    "--bars", "1", "--max-copy", "0", "--seed", "1", "--out",
                                                    str(tmp_path / "o" / "long.mid"), "--png", "--musicxml", "--wav"])
    assert res.exit_code == 0, res.output + res.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["long.mid"]
    assert f"{bars + 1} bars is over the {render.MAX_NOTATION_BARS}-bar limit for MusicXML" in res.stderr
    assert "limit for the piano roll" in res.stderr and "10-minute limit for WAV" in res.stderr
    assert "+png" not in res.stdout and "long.mid" in res.stdout
    assert not fake_fluidsynth.exists()  # fluidsynth never ran


def test_extras_of_a_short_piece_are_written(tiny, tmp_path, fake_fluidsynth):
    res = invoke("generate", "-c", tiny, "--bars", 2, "--max-copy", 0, "--out", tmp_path / "s.mid", "--png", "--wav")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.glob("s.*")) == ["s.mid", "s.png", "s.wav"] and "+wav +png" in res.output


def test_limits_of_the_extras():
    short = Melody((Note(0, 48, 60),), TimeSignature(4, 4), Key(0), 1)
    assert all(render.too_long(short, kind) is None for kind in ("musicxml", "png", "wav"))
    slow = Melody((Note(0, 48, 60),), TimeSignature(4, 4), Key(0), 200, tempo=20)  # 40 minutes
    assert render.too_long(slow, "png") is None and "40 minutes" in render.too_long(slow, "wav")


# ---- 9. never NaN in the output ------------------------------------------------------------------

def test_a_model_with_non_finite_outputs_is_one_line_never_nan_json(tmp_path):
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.0, copy_hints=False))
    with torch.no_grad():
        model.head.weight.fill_(3e38)  # finite weights whose logits overflow: every token +inf (or -inf), NaN probabilities
        model.head.bias.fill_(3e38)
        for k in range(2):  # every gate open and the cell input +1: h > 0 in every unit, so the logits overflow
            getattr(model.lstm, f"bias_ih_l{k}").fill_(100.0)
    ckpt = save_checkpoint(tmp_path / "overflow.pt", model, extra={"data": DATA})
    write_midi(Melody((Note(0, 24, 60), Note(24, 24, 62)), TimeSignature(4, 4), Key(0), 1), tmp_path / "d" / "a.mid")
    for extra in (["--json"], []):
        res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "d"), "-c", str(ckpt), *extra])
        assert res.exit_code == 1, res.stdout + res.stderr
        assert "nan" not in res.stdout.lower() and res.stderr.count("\n") == 1 and "not a number" in res.stderr


def test_evaluate_json_has_no_nan():
    from composer.cli.evaluate import _json

    text = _json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": {"d": None}}


def test_requests_past_the_memory_budget_are_refused_up_front(tmp_path):
    """Sampling memory grows with bars x num (~35 KB a melody-bar): a request past the budget is
    refused in one line before any work, naming how many it may ask for; a prime's bars count."""
    from click.testing import CliRunner

    from composer.cli import main
    from composer.errors import RequestError
    from composer.generate.request import MAX_MELODY_BARS, GenerateRequest

    assert GenerateRequest(bars=512, num=MAX_MELODY_BARS // 512).num == 32
    with pytest.raises(RequestError, match="num 32 at most for 512 bars"):
        GenerateRequest(bars=512, num=128)
    r = CliRunner().invoke(main, ["generate", "--bars", "512", "--num", "128", "--outdir", str(tmp_path)])
    assert r.exit_code == 2 and "melody-bars" in r.output and not list(tmp_path.iterdir())


def test_generate_checks_its_output_folder_before_sampling(tmp_path):
    """An --outdir under a file fails in one line before the model is even loaded."""
    from click.testing import CliRunner

    from composer.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = CliRunner().invoke(main, ["generate", "-c", str(tmp_path / "missing.pt"), "--outdir", str(blocker / "sub")])
    assert r.exit_code == 1 and "--outdir" in r.output and "cannot write to" in r.output
