"""`compose train` as a careless user or an attacker would run it: run names that leave the runs
folder, over-long paths, two runs of one name at once, runs killed before their first checkpoint,
corpora smaller than two windows, signals while reading, huge seeds, time-limit resumes, resumes
from the wrong checkpoint, and what the commands print (shell-quoted, no terminal escapes)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import composer.train.loop as loop
import composer.train.trainer as trainer
from composer.cli import main
from composer.errors import TrainingError
from composer.model.checkpoint import read_checkpoint
from composer.music.midi_io import write_midi
from composer.train.batching import WindowSampler
from composer.train.config import TrainConfig
from composer.train.loop import load_data, train
from composer.train.runs import RunFolder
from test_train import make_corpus, make_melody

TINY = ["--layers", "1", "--hidden", "16", "--embed", "8", "--batch-size", "4", "--seq-len", "24",
        "--workers", "1", "--threads", "1", "--max-minutes", "0", "--epochs", "1"]
LIB_TINY = dict(layers=1, hidden=16, embed=8, batch_size=4, seq_len=24, epochs=1, max_minutes=None,
                warmup_steps=2, workers=1, threads=1, log_every=3)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), n=6)


def compose(*args) -> SimpleNamespace:
    """`compose ARGS` in this process: exit code, output, and the error lines."""
    r = CliRunner().invoke(main, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception  # a traceback, not a one-line error
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    return SimpleNamespace(code=r.exit_code, out=r.output, errors=errors)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


# ---- 1. run names and paths ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a/b", "../escaped", "..", ".", "/tmp/abs", "back\\slash", "new\nline",
                                  "esc\x1b[31m", "tab\t", "", "n" * 101])
def test_run_names_that_could_leave_the_runs_folder_are_usage_errors(tmp_path, corpus, name) -> None:
    before = files_under(tmp_path)
    r = compose("train", "--data", corpus, "--runs-dir", tmp_path / "runs", "--name", name, *TINY)
    assert r.code == 2 and len(r.errors) == 1 and "--name" in r.errors[0], r.out
    assert files_under(tmp_path) == before  # nothing written, inside or outside the runs folder


def test_an_absolute_name_with_force_leaves_that_folder_alone(tmp_path, corpus) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text("mine")
    r = compose("train", "--data", corpus, "--runs-dir", tmp_path / "runs", "--name", victim, "--force", *TINY)
    assert r.code == 2 and (victim / "config.json").read_text() == "mine" and files_under(victim) == {"config.json"}


def test_a_linked_run_folder_is_not_followed(tmp_path, corpus) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "link").symlink_to(outside)
    r = compose("train", "--data", corpus, "--runs-dir", tmp_path / "runs", "--name", "link", "--force", *TINY)
    assert r.code == 1 and len(r.errors) == 1 and "link" in r.errors[0], r.out
    assert files_under(outside) == set()


@pytest.mark.parametrize("option", ["--runs-dir", "--data", "--export"])
@pytest.mark.parametrize("shape", ["long-name", "deep"])
def test_over_long_paths_are_one_line_errors(tmp_path, corpus, option, shape) -> None:
    long = tmp_path / ("x" * 300) if shape == "long-name" else tmp_path.joinpath(*["d" * 200] * 22)
    args = {"--runs-dir": tmp_path / "runs", "--data": corpus, "--export": None}
    args[option] = long
    extra = ["--export", args.pop("--export")] if option == "--export" else []
    r = compose("train", *[x for kv in args.items() for x in kv], "--name", "r", *TINY, *extra)
    assert r.code == 2 and len(r.errors) == 1 and option in r.errors[0] and "too long" in r.errors[0], r.out


def test_a_name_over_the_path_limit_under_a_long_runs_dir_is_one_line(tmp_path, corpus) -> None:
    runs = tmp_path
    while len(str(runs)) + 201 < 4000:
        runs /= "d" * 200
    runs /= "e" * (3999 - len(str(runs)))  # 4,000 characters fit; the run folder and its files do not
    r = compose("train", "--data", corpus, "--runs-dir", runs, "--name", "r" * 100, *TINY)
    assert r.code in (1, 2) and len(r.errors) == 1 and "too long" in r.errors[0], r.out
    assert not (tmp_path / ("d" * 200)).exists()


# ---- 2. one run per folder at a time -------------------------------------------------------------

def test_a_second_run_of_the_same_name_refuses_before_reading(tmp_path, corpus) -> None:
    runs = tmp_path / "runs"
    assert compose("train", "--data", corpus, "--runs-dir", runs, "--name", "same", *TINY).code == 0
    other = RunFolder(runs / "same")  # another `compose train` holding the folder
    other.claim(resume=True)
    try:
        for args in (["--data", corpus, *TINY, "--force"], ["--resume", "--epochs", "2"]):
            r = compose("train", "--runs-dir", runs, "--name", "same", *args)
            assert r.code == 1 and len(r.errors) == 1 and "in use" in r.errors[0], r.out
            assert "reading MIDI files" not in r.out  # refused before the data is read
        assert read_checkpoint(runs / "same" / "last.pt")["epoch"] == 1
    finally:
        other.release()
    assert compose("train", "--runs-dir", runs, "--name", "same", "--resume", "--epochs", "2").code == 0
    assert sorted(p.name for p in runs.iterdir()) == ["same"]  # the lock is gone with its run
    assert sorted(p.name for p in (runs / "same").iterdir()) == ["best.pt", "config.json", "last.pt", "loss.png", "metrics.csv"]


def test_a_run_killed_before_its_first_checkpoint_can_start_again(tmp_path, corpus) -> None:
    run = tmp_path / "runs" / "k"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train_config": {}}))  # what a SIGKILL in epoch 1 leaves
    (run.parent / ".k.lock").write_text("12345")  # and its lock file, no longer held by anyone
    r = compose("train", "--runs-dir", run.parent, "--name", "k", "--resume")
    assert r.code == 1 and len(r.errors) == 1 and "before its first checkpoint" in r.errors[0], r.out
    assert "start it again without --resume" in r.errors[0]  # says what to do
    r = compose("train", "--data", corpus, "--runs-dir", run.parent, "--name", "k", *TINY)
    assert r.code == 0, r.out
    assert read_checkpoint(run / "last.pt")["epoch"] == 1 and not (run.parent / ".k.lock").exists()
    (run / "last.pt").unlink()  # a best.pt without last.pt: a fresh start would replace it
    r = compose("train", "--runs-dir", run.parent, "--name", "k", "--resume")
    assert r.code == 1 and len(r.errors) == 1 and "--force" in r.errors[0], r.out


def test_a_failed_start_leaves_no_folder_but_keeps_a_stopped_one(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    runs = tmp_path / "runs"
    r = compose("train", "--data", empty, "--runs-dir", runs / "nested", "--name", "x", *TINY)
    assert r.code == 1 and not runs.exists(), r.out
    (runs / "k").mkdir(parents=True)
    (runs / "k" / "config.json").write_text("{}")
    assert compose("train", "--data", empty, "--runs-dir", runs, "--name", "k", *TINY).code == 1
    assert files_under(runs) == {"k", "k/config.json"}


# ---- 3. small corpora ----------------------------------------------------------------------------

def test_windows_fit_any_corpus_longer_than_one_window() -> None:
    n = 50
    for seq_len in range(1, n - 1):
        s = WindowSampler(torch.arange(n), seq_len, 4, seed=5)
        for epoch in range(6):
            plan = s.plan(epoch)
            assert int(plan.offsets.min()) >= 0 and int(plan.offsets.max()) <= n - seq_len - 1
            x, y, *_ = s.batch(plan, 0)
            assert x.shape == (4, seq_len) and torch.equal(x[:, 1:], y[:, :-1])


def training_tokens(corpus: Path) -> int:
    split = load_data(TrainConfig(data=str(corpus), **{**LIB_TINY, "seq_len": 1}))
    return sum(len(f.ids) for f in split.train)


@pytest.mark.parametrize("size", ["under-two-windows", "under-one-window"])
def test_a_small_corpus_trains_and_resumes(tmp_path, size) -> None:
    data = make_corpus(tmp_path / "small", n=3)
    n = training_tokens(data)
    seq_len = n * 2 // 3 if size == "under-two-windows" else n + 40
    runs = tmp_path / "runs"
    args = ["train", "--data", data, "--runs-dir", runs, "--name", "s", *TINY, "--seq-len", seq_len]
    r = compose(*args)
    assert r.code == 0, r.out
    if size == "under-one-window":
        assert f"only {n} tokens" in r.out and f"windows of {n - 2} tokens" in r.out
    r = compose("train", "--runs-dir", runs, "--name", "s", "--resume", "--epochs", "2")
    assert r.code == 0 and read_checkpoint(runs / "s" / "last.pt")["epoch"] == 2, r.out


def test_a_corpus_too_small_for_any_window_is_refused_in_one_line(tmp_path) -> None:
    from composer.music.keys import Key
    from composer.music.melody import Melody, Note
    from composer.music.meter import TimeSignature

    for i in range(2):
        write_midi(Melody((Note(0, 6, 60 + i),), TimeSignature(4, 4), Key(0), 1), tmp_path / "one" / f"{i}.mid")
    r = compose("train", "--data", tmp_path / "one", "--runs-dir", tmp_path / "runs", "--name", "x", *TINY)
    assert r.code == 1 and len(r.errors) == 1 and "too few" in r.errors[0] and "add MIDI files" in r.errors[0], r.out
    assert not (tmp_path / "runs").exists()


# ---- 4. signals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_reading_stops_at_once_and_leaves_no_run(tmp_path, corpus, monkeypatch, signum, code) -> None:
    real = loop.load_data
    reached = []

    def load_data(cfg, loading=None):
        def reading(done, total):
            if done == 0:
                os.kill(os.getpid(), signum)  # Ctrl-C or kill while the first files are read
            reached.append(done)
            loading(done, total)
        return real(cfg, reading)

    monkeypatch.setattr(loop, "load_data", load_data)
    r = compose("train", "--data", corpus, "--runs-dir", tmp_path / "runs", "--name", "x", *TINY)
    assert r.code == code, r.out
    assert reached == [] and not (tmp_path / "runs").exists()  # not one more file read, nothing left


def test_ctrl_c_during_training_saves_and_exits_130_with_a_quoted_resume_command(tmp_path, corpus, monkeypatch) -> None:
    real = trainer.Trainer._validate

    def validate(self):
        os.kill(os.getpid(), signal.SIGINT)  # during epoch 1's validation: the loop stops in epoch 2
        return real(self)

    monkeypatch.setattr(trainer.Trainer, "_validate", validate)
    runs = tmp_path / "my runs"
    r = compose("train", "--data", corpus, "--runs-dir", runs, "--name", "my run; ls", *TINY, "--epochs", "3")
    assert r.code == 130, r.out
    assert read_checkpoint(runs / "my run; ls" / "last.pt")["epoch"] == 1
    cmd = next(line.strip() for line in r.out.splitlines() if "--resume" in line)
    assert shlex.split(cmd) == ["compose", "train", "--resume", "--name", "my run; ls", "--runs-dir", str(runs)]


# ---- 5. seeds ---------------------------------------------------------------------------------------

def test_huge_seeds_train_and_seeds_out_of_range_are_usage_errors(tmp_path, corpus) -> None:
    res = train(TrainConfig(data=str(corpus), **{**LIB_TINY, "seed": 2**63 - 1}), tmp_path / "run")
    assert res.epoch == 1
    resumed = train(TrainConfig(data=str(corpus), **{**LIB_TINY, "seed": 2**63 - 1, "epochs": 2}), tmp_path / "run", resume=True)
    assert resumed.epoch == 2
    with pytest.raises(TrainingError, match="seed"):
        TrainConfig(seed=2**63)
    for seed in (2**63, -1):
        r = compose("train", "--data", corpus, "--runs-dir", tmp_path / "runs", "--seed", seed, *TINY)
        assert r.code == 2 and "--seed" in r.out and not (tmp_path / "runs").exists(), r.out


# ---- 6. partial epochs after a time limit -------------------------------------------------------------

def test_a_partial_epoch_appears_once_and_patience_counts_real_epochs(tmp_path, corpus, monkeypatch) -> None:
    # lr 1e-30 leaves the weights as they are: epoch 1 sets the best loss, no later epoch beats it.
    c = TrainConfig(data=str(corpus), **{**LIB_TINY, "epochs": 10, "patience": 2, "lr": 1e-30, "dropout": 0.0,
                                         "batch_size": 1, "max_minutes": 0.1})
    with monkeypatch.context() as m:
        clock = iter(np.arange(0.0, 1e6, 0.25))  # every reading of the clock: a quarter second later
        m.setattr(trainer, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
        first = train(c, tmp_path / "run")
    assert first.stopped == "time" and first.history[-1]["steps"] < first.history[-1]["steps_per_epoch"]
    assert [r["epoch"] for r in first.history] == [1, 2]  # a partial epoch 2 ended by the time limit
    rest = train(c.replace(max_minutes=0), tmp_path / "run", resume=True)
    assert rest.stopped == "early-stop" and rest.epoch == 3  # epochs 2 and 3 without improvement
    assert [r["epoch"] for r in rest.history] == [1, 2, 3]
    assert all(r["steps"] == r["steps_per_epoch"] for r in rest.history)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == [1, 2, 3]


# ---- 8. what is printed ---------------------------------------------------------------------------

def test_printed_paths_are_quoted_and_file_names_cleaned(tmp_path, corpus) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    (data / "bad\x1b[2Jname\nforged line.mid").write_bytes(b"MThd garbage")
    runs = tmp_path / "r uns"
    r = compose("train", "--data", data, "--runs-dir", runs, "--name", "it's", *TINY)
    assert r.code == 0, r.out
    assert "\x1b" not in r.out and not any(line.startswith("forged line") for line in r.out.splitlines())
    assert "skipped bad?[2Jname?forged line.mid: " in r.out
    gen = next(line.strip() for line in r.out.splitlines() if line.strip().startswith("compose generate"))
    assert shlex.split(gen)[:3] == ["compose", "generate", "--checkpoint"]
    assert shlex.split(gen)[3] == str(runs / "it's" / "best.pt")


# ---- 9. resuming from the wrong kind of checkpoint ------------------------------------------------------

def test_resume_from_a_best_or_exported_checkpoint_is_one_line(tmp_path, corpus) -> None:
    runs = tmp_path / "runs"
    assert compose("train", "--data", corpus, "--runs-dir", runs, "--name", "r", *TINY).code == 0
    assert compose("train", "--runs-dir", runs, "--name", "r", "--export", tmp_path / "export.pt").code == 0
    for source in (runs / "r" / "best.pt", tmp_path / "export.pt"):
        shutil.copy(source, runs / "r" / "last.pt")
        r = compose("train", "--runs-dir", runs, "--name", "r", "--resume", "--epochs", "2")
        assert r.code == 1 and len(r.errors) == 1 and "cannot be resumed" in r.errors[0], r.out
        assert not (runs / ".r.lock").exists()


def test_a_crafted_config_with_text_fields_of_the_wrong_type_is_one_error():
    from composer.errors import TrainingError
    from composer.train.config import TrainConfig

    for bad in ({"device": 5}, {"data": ["x"]}):
        with pytest.raises(TrainingError, match="must be text"):
            TrainConfig.from_dict(bad)
