"""Exit codes of `compose train`, `check` and `corpus build`: 2 for a usage error, 1 with one line
for a runtime error, 130 after Ctrl-C; also when a command object is invoked on its own."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.cli._common import ComposerCommand, ComposerGroup, option_range
from composer.cli.check import command as check_command
from composer.cli.train import command as train_command
from composer.errors import CorpusError, RequestError
from composer.train.config import TrainConfig


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def run(*args: str, cmd: click.Command = main):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def assert_usage_error(r, text: str) -> None:
    assert r.exit_code == 2, r.output
    assert text in r.output and "Traceback" not in r.output


def assert_one_line_error(r, text: str) -> None:
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], r.output


# -- usage errors: exit 2 -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, text", [
    (["train", "--epochs", "abc"], "'abc' is not a valid integer"),
    (["train", "--lr", "fast"], "'fast' is not a valid float"),
    (["train", "--device", "tpu"], "'tpu' is not one of"),
    (["train", "--val-fraction", "0.9"], "0.05<=x<=0.5"),
    (["train", "--max-transpose", "13"], "0<=x<=12"),
    (["train", "--lr", "0"], "x>0"),
    (["train", "--workers", "0"], "x>=1"),
    (["train", "--bogus"], "No such option '--bogus'"),
    (["check"], "Missing argument 'DIR'"),
    (["check", "x", "--bogus"], "No such option '--bogus'"),
    (["corpus", "build", "--jobs", "many"], "'many' is not a valid integer"),
    (["corpus", "build", "--limit", "0"], "x>=1"),
    (["corpus", "build", "--bogus"], "No such option '--bogus'"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_usage_errors_exit_2(args, text) -> None:
    assert_usage_error(run(*args), text)


def test_train_ranges_and_defaults_come_from_train_config() -> None:
    opts = {p.name: p for p in train_command.params}
    for name, limit in TrainConfig.LIMITS.items():
        if name in opts:
            t = opts[name].type
            assert (t.min, t.max, t.min_open, t.max_open) == (limit.lo, limit.hi, limit.lo_open, limit.hi_open), name
            assert opts[name].default == getattr(TrainConfig(), name), name
    assert tuple(opts["device"].type.choices) == TrainConfig.DEVICES
    assert isinstance(option_range(TrainConfig, "dropout"), click.FloatRange)
    assert isinstance(option_range(TrainConfig, "workers"), click.IntRange)


# -- runtime errors: exit 1, one line -------------------------------------------------------------------

def test_missing_inputs_are_one_line_errors(tmp_path) -> None:
    missing = tmp_path / "missing"
    runs = tmp_path / "runs"
    assert_one_line_error(run("train", "--data", missing, "--runs-dir", runs, "--name", "x"), "is not a folder")
    (tmp_path / "afile.mid").write_bytes(b"not a folder")
    assert_one_line_error(run("train", "--data", tmp_path / "afile.mid", "--runs-dir", runs, "--name", "x"), "is not a folder")
    assert_one_line_error(run("train", "--runs-dir", runs, "--name", "x", "--resume"), "nothing to resume")
    assert_one_line_error(run("train", "--runs-dir", runs, "--name", "x", "--export", tmp_path / "m.pt"), "not found")
    assert not runs.exists()
    assert_one_line_error(run("check", missing), "does not exist")
    assert_one_line_error(run("corpus", "build", "--out", tmp_path / "afile.mid"), "is a file")


def test_commands_invoked_on_their_own_keep_the_exit_codes(tmp_path) -> None:
    assert_one_line_error(run(tmp_path / "missing", cmd=check_command), "does not exist")
    assert_usage_error(run("--epochs", "0", cmd=train_command), "x>=1")
    assert_one_line_error(run("--data", tmp_path / "missing", "--runs-dir", tmp_path, "--name", "x", cmd=train_command),
                          "is not a folder")


# -- Ctrl-C: exit 130 ------------------------------------------------------------------------------------

def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_exits_130(tmp_path, monkeypatch) -> None:
    import composer.data.build
    import composer.music.midi_io
    import composer.train.loop

    monkeypatch.setattr(composer.train.loop, "train", _interrupt)
    monkeypatch.setattr(composer.music.midi_io, "read_report", _interrupt)
    monkeypatch.setattr(composer.data.build, "build_corpus", _interrupt)
    (tmp_path / "a.mid").write_bytes(b"MThd")
    for args in (["train", "--data", tmp_path, "--runs-dir", tmp_path / "runs"], ["check", tmp_path],
                 ["corpus", "build", "--out", tmp_path / "out"]):
        r = run(*args)
        assert r.exit_code == 130 and r.output.strip() == "Interrupted.", r.output
    r = run(tmp_path, cmd=check_command)
    assert r.exit_code == 130, r.output


# -- the mechanism, on a tiny command ------------------------------------------------------------------

@click.group(cls=ComposerGroup)
def tiny() -> None:
    """A group like `compose`."""


@tiny.command("fail")
@click.argument("kind")
def _fail(kind: str) -> None:
    if kind == "request":
        raise RequestError("--bars -3 must be positive")
    if kind == "corpus":
        raise CorpusError("two\nlines")
    raise KeyboardInterrupt


@pytest.mark.parametrize("kind, code, last_line", [
    ("request", 2, "Error: --bars -3 must be positive"),  # after click's usage block, like its own usage errors
    ("corpus", 1, "Error: two; lines"),  # exactly one line
    ("interrupt", 130, "Interrupted."),
])
def test_library_errors_map_to_exit_codes(kind, code, last_line) -> None:
    assert isinstance(_fail, ComposerCommand)  # a ComposerGroup's subcommands map errors on their own too
    for cmd, args in ((tiny, ["fail", kind]), (_fail, [kind])):
        r = run(*args, cmd=cmd)
        lines = r.output.strip().splitlines()
        assert r.exit_code == code and lines[-1] == last_line and "Traceback" not in r.output, r.output
        assert len(lines) == 1 or (kind == "request" and lines[0].startswith("Usage: "))


def test_error_lines_never_carry_terminal_escapes(tmp_path):
    """A file name with an escape sequence in it is shown with '?' in the one-line error."""
    from composer.cli import main

    bad = tmp_path / "evil\x1b[31mred.pt"
    r = CliRunner().invoke(main, ["generate", "-c", str(bad), "--outdir", str(tmp_path)])
    assert r.exit_code == 1 and "\x1b" not in r.output and "evil?[31mred.pt" in r.output
