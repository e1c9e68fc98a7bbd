"""`compose check DIR` through click's CliRunner, on real files and broken ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody, write_midi

FIXTURES = Path(__file__).parent / "fixtures"


def _run(*args: str):
    return CliRunner().invoke(main, ["check", *map(str, args)])


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    """Two tunes written by us, two real multi-track files, all the broken fixtures."""
    d = tmp_path / "in"
    (d / "set").mkdir(parents=True)
    write_midi(Melody((Note(30, 6, 67), Note(36, 36, 71), Note(72, 18, 69)), TimeSignature(6, 8), Key(7), 3),
               d / "jig.mid")
    write_midi(Melody((Note(0, 12, 57), Note(12, 132, 60)), TimeSignature(3, 4), Key(9, True), 4), d / "set" / "air.mid")
    for name in ("m21_test02.mid", "m21_test09.mid"):
        shutil.copy(FIXTURES / "real" / name, d / name)
    for p in (FIXTURES / "corrupted").glob("*.mid"):
        shutil.copy(p, d / "set" / p.name)
    return d


def test_reports_each_file_and_totals(mixed: Path):
    res = _run(mixed)
    assert res.exit_code == 0, res.output
    out = res.output.splitlines()
    jig = next(line for line in out if line.startswith("jig.mid:"))
    assert jig == "jig.mid: 3 notes, 3 bars, 6/8, key G, track 'Melody', 0 quantized, 0 dropped"
    assert any(line.startswith("set/air.mid: 2 notes, 4 bars, 3/4, key Am,") for line in out)
    t09 = next(line for line in out if line.startswith("m21_test09.mid:"))
    assert "6/8" in t09 and "'Right Hand'" in t09 and "745 dropped" in t09
    assert "set/zero_bytes.mid: skipped: empty file (0 bytes)" in out
    assert "set/drums_only.mid: skipped: only drum tracks, no melody" in out
    assert any(line.startswith("set/truncated_track.mid: skipped: corrupt or truncated MIDI") for line in out)
    n_bad = sum(1 for p in (FIXTURES / "corrupted").glob("*.mid") if "skipped" in
                next(line for line in out if line.startswith(f"set/{p.name}:")))
    total = next(line for line in out if line.startswith(f"{4 + 15} files:"))
    assert f"{19 - n_bad} usable, {n_bad} skipped" in total
    assert "  skipped, corrupt or truncated MIDI: 4" in out


def test_estimated_key_is_marked(tmp_path: Path):
    d = tmp_path / "k"
    d.mkdir()
    shutil.copy(FIXTURES / "real" / "m21_test18.mid", d / "t.mid")
    res = _run(d)
    assert res.exit_code == 0 and "key C (estimated)" in res.output


def test_quiet_lists_only_problems(mixed: Path):
    res = CliRunner().invoke(main, ["check", "-q", str(mixed)])
    assert res.exit_code == 0
    assert "jig.mid" not in res.output and "set/zero_bytes.mid: skipped" in res.output


def test_write_roundtrip(mixed: Path, tmp_path: Path):
    out = tmp_path / "out"
    res = _run(mixed, "--write-roundtrip", out)
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mid"))
    usable = [line.split(":")[0] for line in res.output.splitlines() if " notes, " in line and "skipped" not in line]
    assert written == sorted(usable) and "jig.mid" in written and "set/zero_bytes.mid" not in written
    assert read_melody(out / "jig.mid") == read_melody(mixed / "jig.mid")
    assert read_melody(out / "m21_test09.mid") == read_melody(mixed / "m21_test09.mid")
    before = (out / "jig.mid").read_bytes()
    (out / "jig.mid").write_bytes(b"user's own file")
    again = _run(mixed, "--write-roundtrip", out)
    assert again.exit_code == 1 and "--force" in again.output and "Traceback" not in again.output
    assert (out / "jig.mid").read_bytes() == b"user's own file"  # nothing overwritten, nothing half-written
    forced = _run(mixed, "--write-roundtrip", out, "--force")
    assert forced.exit_code == 0 and (out / "jig.mid").read_bytes() == before


def test_roundtrip_into_the_source_folder_is_refused(mixed: Path):
    res = _run(mixed, "--write-roundtrip", mixed, "--force")
    assert res.exit_code == 1 and "another folder" in res.output


@pytest.mark.parametrize("where", ["inside", "around"])
def test_roundtrip_overlapping_the_source_folder_is_refused(mixed: Path, where: str):
    """An output folder inside DIR (or DIR inside it) could replace the user's files even with --force."""
    out = mixed / "set" if where == "inside" else mixed.parent
    mine = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = _run(mixed / "set" if where == "around" else mixed, "--write-roundtrip", out, "--force")
    err = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert res.exit_code == 1 and len(err) == 1 and "another folder" in err[0], res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == mine


@pytest.mark.parametrize("which", ["DIR", "--write-roundtrip"])
def test_over_long_paths_are_one_line_usage_errors(mixed: Path, tmp_path: Path, which: str):
    long = tmp_path / ("x" * 300)
    res = _run(long, "--write-roundtrip", tmp_path / "out") if which == "DIR" else _run(mixed, "--write-roundtrip", long)
    err = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert res.exit_code == 2 and len(err) == 1 and which in err[0] and "too long" in err[0], res.output


def test_file_names_are_printed_without_terminal_escapes(tmp_path: Path):
    d = tmp_path / "d"
    write_midi(Melody((Note(0, 12, 60), Note(12, 12, 62)), TimeSignature(4, 4), Key(0), 1), d / "a\x1b]0;owned\x07b\nc.mid")
    (d / "bad\x1b[2J.mid").write_bytes(b"MThd garbage")
    res = _run(d)
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output
    lines = res.output.splitlines()
    assert any(line.startswith("a?]0;owned?b?c.mid: 2 notes") for line in lines), lines
    assert any(line.startswith("bad?[2J.mid: skipped: ") for line in lines), lines


def test_single_file(tmp_path: Path):
    res = _run(FIXTURES / "real" / "m21_test02.mid")
    assert res.exit_code == 0 and res.output.startswith("m21_test02.mid: 36 notes, 10 bars, 4/4, key F#m,")


@pytest.mark.parametrize("case", ["missing", "empty", "all-bad"])
def test_nothing_usable_is_a_one_line_error(tmp_path: Path, case: str):
    d = tmp_path / "d"
    if case != "missing":
        d.mkdir()
    if case == "all-bad":
        for name in ("zero_bytes.mid", "drums_only.mid", "not_midi_text.mid"):
            shutil.copy(FIXTURES / "corrupted" / name, d / name)
    res = _run(d)
    assert res.exit_code == 1 and "Traceback" not in res.output
    err = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(err) == 1 and str(d) in err[0]


def test_help_is_listed():
    res = CliRunner().invoke(main, ["--help"])
    assert "check" in res.output
