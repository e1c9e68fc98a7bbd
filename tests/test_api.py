"""The public Python API: ``Composer.load().generate(...)``, its request and its results.

The API is the one generation path: for the same request and seed, ``Result.to_midi_bytes()``
is the file ``compose generate --out`` writes, byte for byte.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import tiny_checkpoint
from composer.cli import main
from composer.errors import ComposerError, OutputError, RequestError
from composer.generate.api import Composer, Result
from composer.generate.request import MAX_BARS, MAX_NUM, GenerateRequest
from composer.music.keys import Key
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody

REAL = Path(__file__).parent / "fixtures" / "real"
DATA = {"meters": {"6/8": 120, "4/4": 90, "3/4": 40, "5/4": 1}, "keys": {"G": 60, "D": 50, "Em": 30, "Am": 25, "Bbm": 1}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny random model that records the meters and keys of its (absent) training tunes."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), DATA)


@pytest.fixture(scope="module")
def shipped() -> Composer:
    return Composer.load()


# ---- the example -----------------------------------------------------------------------------

def test_the_readme_example_runs_on_the_shipped_model(shipped, tmp_path):
    results = shipped.generate(bars=16, key="Dm", time_signature="6/8", seed=1, num=4)
    assert isinstance(results, list) and len(results) == 4 and all(isinstance(r, Result) for r in results)
    assert [r.rank for r in results] == [1, 2, 3, 4]
    bits = [r.bits_per_note for r in results]
    assert bits == sorted(bits) and all(0 < b < 20 for b in bits)  # best (most likely) first
    for r in results:
        m = r.melody
        assert str(m.time_signature) == "6/8" and m.key == Key.parse("Dm") and m.n_bars == 16 and m.notes
        assert r.seed == 1 and r.program == 0 and "model default" in r.text and f"rank {r.rank} of 4" in r.text
    assert shipped.bundle.shipped and shipped.bundle.name == "default"

    path = results[0].save(tmp_path / "x.mid")
    assert path == tmp_path / "x.mid" and path.read_bytes() == results[0].to_midi_bytes()
    back = read_melody(path)
    assert (str(back.time_signature), back.key.name, back.n_bars) == ("6/8", "Dm", 16)
    assert back.notes == results[0].melody.notes


def test_save_refuses_to_overwrite_without_force(shipped, tmp_path):
    first, second = shipped.generate(bars=4, seed=3, num=2)
    path = first.save(tmp_path / "x.mid")
    with pytest.raises(OutputError, match="already exists"):
        second.save(path)
    assert path.read_bytes() == first.to_midi_bytes()  # unchanged
    second.save(path, force=True)
    assert path.read_bytes() == second.to_midi_bytes() != first.to_midi_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mid"]  # no temp files left


def test_results_are_always_a_list_and_num_defaults_to_1(tiny):
    c = Composer.load(tiny)
    (only,) = c.generate(seed=4)
    assert only.rank == 1 and only.seed == 4 and only.melody.n_bars == 16  # the request's default bars
    assert "rank 1 of 1" in only.text and "model tiny.pt" in only.text
    assert c.generate(GenerateRequest(seed=4))[0].to_midi_bytes() == only.to_midi_bytes()  # a request or its keywords
    with pytest.raises(RequestError, match="not both"):
        c.generate(GenerateRequest(seed=4), seed=5)


def test_a_random_seed_is_reported_and_reproduces(tiny):
    c = Composer.load(tiny)
    (r,) = c.generate(bars=2, max_copy=0)
    (again,) = c.generate(bars=2, max_copy=0, seed=r.seed)
    assert again.to_midi_bytes() == r.to_midi_bytes()


def test_what_the_model_knows(tiny):
    c = Composer.load(tiny)
    assert [str(m) for m in c.meters] == ["6/8", "4/4", "3/4"]  # 5/4 was seen once: not offered
    assert [k.name for k in c.keys] == ["G", "D", "Em", "Am"]
    assert c.default_form == "free"  # no bar plans, no copy hints


# ---- API bytes == CLI bytes ------------------------------------------------------------------------------

SAME = [  # compose generate options, the same request as keywords
    ([], {}),
    (["--num", "3"], {"num": 3}),
    (["--form", "AABB", "--section-bars", "2", "--vary", "--time-signature", "3/4"],
     {"form": "AABB", "section_bars": 2, "vary": True, "time_signature": "3/4"}),
    (["--prime", str(REAL / "m21_test02.mid"), "--bars", "4"], {"prime": REAL / "m21_test02.mid", "bars": 4}),
    (["--program", "flute", "--pitch-range", "C4-G5", "--tempo", "96", "--key", "Em", "--bars", "6"],
     {"program": "flute", "pitch_range": "C4-G5", "tempo": 96, "key": "Em", "bars": 6}),
    (["--temperature", "1.4", "--top-k", "20", "--top-p", "0.9", "--max-copy", "0", "--bars", "5"],
     {"temperature": 1.4, "top_k": 20, "top_p": 0.9, "max_copy": 0, "bars": 5}),
]


def cli_files(tmp_path: Path, args: list[str], num: int) -> list[bytes]:
    out = tmp_path / "cli.mid"
    res = CliRunner().invoke(main, ["generate", *args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    names = [out] if num == 1 else [out.with_name(f"cli_{i:02d}.mid") for i in range(1, num + 1)]
    return [p.read_bytes() for p in names]


@pytest.mark.parametrize("args, keywords", SAME, ids=["default", "num-3", "form-vary", "prime", "program-range-tempo", "sampling"])
def test_api_bytes_equal_cli_bytes(tiny, tmp_path, args, keywords):
    seed = 17
    results = Composer.load(tiny).generate(seed=seed, **keywords)
    files = cli_files(tmp_path, ["-c", str(tiny), "--seed", str(seed), *args], len(results))
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    assert [r.to_midi_bytes() for r in results] == files  # file _0k holds the rank-k melody


def test_api_bytes_equal_cli_bytes_with_the_shipped_model(shipped, tmp_path):
    """The shipped model reads copy hints and checks originality against its copy index."""
    results = shipped.generate(bars=6, key="Dm", time_signature="6/8", seed=9, num=2)
    assert all(r.longest_copy is not None for r in results)
    files = cli_files(tmp_path, ["--bars", "6", "--key", "Dm", "--time-signature", "6/8", "--seed", "9", "--num", "2"], 2)
    assert [r.to_midi_bytes() for r in results] == files


def test_every_generate_option_has_its_keyword():
    from composer.cli.generate import command

    files_only = {"checkpoint", "out", "outdir", "force", "musicxml", "wav", "wav_tail", "png"}  # where to write, not what
    assert {p.name for p in command.params} - files_only == set(GenerateRequest.keywords())


def test_a_prime_melody_is_continued_note_for_note(tiny):
    prime = read_melody(REAL / "m21_test02.mid")
    (r,) = Composer.load(tiny).generate(prime=prime, bars=3, seed=2, max_copy=0)
    assert r.melody.notes[: len(prime.notes)] == prime.notes and r.melody.n_bars == prime.n_bars + 3
    assert r.melody.key == prime.key and r.melody.tempo == prime.tempo and "continued" in r.melody.title


# ---- the request: validated once, where it enters ---------------------------------------------------------

BAD = [  # keywords -> words the RequestError must hold (the keyword, and what is wrong)
    ({"bars": 0}, "bars"), ({"bars": -3}, "bars"), ({"bars": MAX_BARS + 1}, "bars"), ({"bars": 2.5}, "bars"),
    ({"bars": True}, "bars"),  # a flag is not a count
    ({"num": 0}, "num"), ({"num": MAX_NUM + 1}, "num"), ({"num": True}, "num"), ({"temperature": True}, "temperature"),
    ({"seed": -1}, "seed"),
    ({"temperature": 0}, "temperature"), ({"temperature": float("nan")}, "temperature"), ({"temperature": "hot"}, "temperature"),
    ({"top_k": -1}, "top_k"), ({"top_p": 0}, "top_p"), ({"top_p": 1.5}, "top_p"),
    ({"tempo": 10}, "tempo"), ({"tempo": 1000}, "tempo"),
    ({"program": "kazoo"}, "program"), ({"program": 300}, "program"),
    ({"pitch_range": "G5-C4"}, "pitch range"), ({"pitch_range": (80, 70)}, "pitch range"),
    ({"pitch_range": "low-high"}, "pitch range"), ({"pitch_range": "C#4-C#4", "key": "C"}, "too narrow"),
    ({"key": "H"}, "key"),
    ({"time_signature": "5/5"}, "time signature"), ({"time_signature": "17/4"}, "time signature"),
    ({"form": "AB1"}, "form"), ({"form": "AAB", "bars": 16}, "form AAB"), ({"form": "AABB", "bars": 10}, "form AABB"),
    ({"section_bars": 4}, "section_bars"), ({"vary": True}, "vary"), ({"form": "free", "vary": True}, "form free"),
    ({"max_copy": -1}, "max_copy"),
]


@pytest.mark.parametrize("keywords, words", BAD, ids=[",".join(f"{k}={v}" for k, v in kw.items()) for kw, _ in BAD])
def test_bad_keywords_raise_a_request_error_naming_them(keywords, words):
    with pytest.raises(RequestError) as e:
        GenerateRequest(**keywords)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_numpy_numbers_are_accepted_like_python_numbers():
    """A notebook's numbers are often numpy scalars: they mean the same as Python's."""
    req = GenerateRequest(bars=np.int64(8), num=np.int64(3), seed=np.int64(5), top_k=np.int64(4),
                          temperature=np.float32(0.5), max_copy=np.int64(0))
    assert (req.bars, req.num, req.seed, req.top_k, req.temperature, req.max_copy) == (8, 3, 5, 4, 0.5, 0)


def test_a_request_is_normalized_and_frozen():
    req = GenerateRequest(key="Dm", time_signature="6/8", program="flute", pitch_range="C4-G5",
                          prime="tune.mid", form="AABB")
    assert req.key == Key.parse("Dm") and req.time_signature == TimeSignature(6, 8)
    assert req.program == 73 and req.pitch_range == (60, 79) and req.prime == Path("tune.mid")
    assert (req.bars, req.section_bars) == (16, 4)  # 4 sections of the default 16 bars
    assert GenerateRequest(form="ABC").bars == 12  # 16 does not split in 3: sections of 4 bars
    assert GenerateRequest(form=" Corpus ").form == "corpus"
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.bars = 4


def test_unknown_keywords_are_a_type_error_naming_them(tiny):
    with pytest.raises(TypeError, match="colour"):
        GenerateRequest(colour="red")
    with pytest.raises(TypeError, match="colour"):
        Composer.load(tiny).generate(colour="red")


def test_requests_the_model_or_prime_cannot_meet(tiny):
    c = Composer.load(tiny)
    with pytest.raises(RequestError, match="bar plans"):
        c.generate(form="corpus")  # this checkpoint holds none
    with pytest.raises(RequestError, match="prime is in 4/4"):
        c.generate(prime=REAL / "m21_test02.mid", time_signature="3/4")
    with pytest.raises(ComposerError, match="nowhere.mid"):
        c.generate(prime=REAL / "nowhere.mid")


# ---- remarks for the front end ----------------------------------------------------------------------------

def test_note_receives_the_rare_meter_and_skipped_originality_remarks(tiny):
    c = Composer.load(tiny)
    notes: list[str] = []
    (r,) = c.generate(time_signature="5/4", bars=2, seed=1, note=notes.append)
    assert str(r.melody.time_signature) == "5/4" and r.longest_copy is None
    assert any("few melodies in 5/4" in n for n in notes)
    assert any("originality check skipped" in n for n in notes)  # its training files are not at hand
    quiet: list[str] = []
    c.generate(time_signature="6/8", bars=2, seed=1, max_copy=0, note=quiet.append)
    assert quiet == []  # a well-known meter, no originality check asked for
    c.generate(time_signature="5/4", bars=2, seed=1)  # without a note callback the remark is dropped


# ---- imports -------------------------------------------------------------------------------------------

def test_public_names_import_from_the_package():
    import composer
    from composer import Composer as C, GenerateRequest as G, Result as R

    assert (C, G, R) == (Composer, GenerateRequest, Result)
    assert {"Composer", "GenerateRequest", "Result", "load_bundle", "Tokenizer"} <= set(composer.__all__)
    with pytest.raises(AttributeError):
        composer.NoSuchThing  # noqa: B018


def test_the_package_the_cli_and_a_request_do_not_import_torch():
    code = ("import sys, composer, composer.cli\n"
            "from composer import GenerateRequest\n"
            "GenerateRequest(bars=8, key='Dm', time_signature='6/8', program='flute', pitch_range='C4-G5')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "from composer import Composer\n"
            "assert 'torch' in sys.modules  # the control: the model does need it\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
