"""Training: batching, whole-melody scoring, the loop (reproducible, resumable, crash-safe), the CLI."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from composer.train.batching import Transposer, WindowSampler
from composer.model.bundle import load_bundle
from composer.model.checkpoint import read_checkpoint
from composer.cli import main
from composer.model.config import ModelConfig
from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import write_midi
from composer.model.network import MelodyLSTM
from nll_reference import sequence_nll
from composer.train.runs import export_model
from composer.model.scoring import make_score, sequence_nlls, token_nlls
from composer.tokens.tokenizer import KEY, PITCH, Tokenizer

TOK = Tokenizer()
VOCAB = TOK.vocab
encode = TOK.encode
from composer.train.loop import TrainConfig, train

TINY = dict(layers=1, hidden=24, embed=16, batch_size=4, seq_len=24, epochs=2, max_minutes=None,
            warmup_steps=2, workers=1, threads=1, log_every=3)


def make_melody(rng: np.random.Generator, bars: int = 6, low: int = 55, high: int = 84) -> Melody:
    ts = TimeSignature(*[(4, 4), (6, 8), (3, 4)][int(rng.integers(3))])
    notes, t, p, end = [], 0, int(rng.integers(low, high)), bars * ts.bar_steps
    while True:
        d = int(rng.choice([6, 12, 18, 24]))
        if t + d > end:
            break
        p = int(np.clip(p + rng.integers(-4, 5), low, high))
        notes.append(Note(t, d, p))
        t += d + int(rng.choice([0, 0, 0, 6]))
    return Melody(tuple(notes), ts, Key(int(rng.integers(12)), bool(rng.integers(2))), bars)


def make_corpus(folder: Path, n: int = 14, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_midi(make_melody(rng), folder / f"set{i % 2}" / f"tune{i:02d}.mid")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def cfg(corpus: Path, **kw) -> TrainConfig:
    return TrainConfig(data=str(corpus), **{**TINY, **kw})


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- batching ------------------------------------------------------------------------------------------

def test_windows_tile_the_tokens_and_shard_by_rank() -> None:
    tokens = torch.arange(1000)
    shards = [WindowSampler(tokens, 9, 4, seed=3, world=2, rank=r) for r in (0, 1)]
    plan = shards[0].plan(0)
    assert torch.equal(plan.offsets, shards[1].plan(0).offsets)  # every rank draws the same plan
    assert not torch.equal(plan.offsets, shards[0].plan(1).offsets)
    starts = plan.offsets.flatten()
    assert len(set(starts.tolist())) == starts.numel() and bool(((starts - starts[0]) % 9 == 0).all())
    x0, y0, h0, c0, _, _ = shards[0].batch(plan, 2)
    x1, _, _, _, _, _ = shards[1].batch(plan, 2)
    assert h0 is None and c0 is None
    assert torch.equal(x0[:, 1:], y0[:, :-1]) and x0.shape == (4, 9)
    assert torch.equal(x0[:, 0], plan.offsets[2, 0]) and torch.equal(x1[:, 0], plan.offsets[2, 1])


def test_transposition_keeps_pitches_in_range_and_shifts_the_key() -> None:
    rng = np.random.default_rng(0)
    mels = [make_melody(rng, low=PITCH_MIN, high=PITCH_MIN + 6) for _ in range(8)]
    mels += [make_melody(rng, low=PITCH_MAX - 6, high=PITCH_MAX) for _ in range(8)]
    wins = [encode(m) for m in mels]
    width = min(len(w) for w in wins)
    win = torch.tensor([w[:width] for w in wins])
    out = Transposer(5, VOCAB)(win, torch.rand(len(wins), generator=torch.Generator().manual_seed(1)))
    kinds, values = torch.from_numpy(VOCAB.kinds), torch.from_numpy(VOCAB.values)
    assert torch.equal(kinds[out], kinds[win])  # only pitch and key ids change
    is_p = kinds[win] == PITCH
    shift = (values[out] - values[win])[is_p].view(-1)
    per_row = (values[out] - values[win]).masked_fill(~is_p, 0).sum(1) / is_p.sum(1)
    assert bool(((values[out][is_p] >= PITCH_MIN) & (values[out][is_p] <= PITCH_MAX)).all())
    assert shift.abs().max() <= 5 and per_row.abs().sum() > 0
    # Every allowed shift is reachable: a row near the bottom gets exactly max(-5, 21 - lowest) .. +5.
    row = win[:1].repeat(200, 1)
    low = int(values[row[0]][is_p[0]].min())
    moved = Transposer(5, VOCAB)(row, torch.linspace(0, 0.9999, 200))
    first_pitch = int(is_p[0].nonzero()[0])
    got = set((values[moved[:, first_pitch]] - values[row[0, first_pitch]]).tolist())
    assert got == set(range(max(-5, PITCH_MIN - low), 6))
    k = kinds[win] == KEY
    assert torch.equal((values[out][k] - values[win][k]) % 12, per_row.long() % 12)


# -- scoring ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("copy_hints", [False, True])
def test_batched_scores_equal_one_melody_at_a_time(copy_hints) -> None:
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(len(VOCAB), 16, 24, 2, 0.2, copy_hints=copy_hints)).eval()
    rng = np.random.default_rng(1)
    seqs = [np.array(encode(make_melody(rng, bars=int(b)))) for b in rng.integers(1, 12, 7)]
    s = make_score(sequence_nlls(model, TOK, seqs, batch_size=3), seqs, TOK)
    with torch.no_grad():
        singles = [float(sequence_nll(model, torch.from_numpy(x))) for x in seqs]
    np.testing.assert_allclose(s.per_sequence, singles, rtol=1e-5)
    chunked = [float(t.sum()) for t in token_nlls(model, TOK, seqs, batch_size=2, chunk=7)]  # state and hints carried
    np.testing.assert_allclose(chunked, singles, rtol=1e-5)
    assert s.tokens == sum(len(x) - 1 for x in seqs)
    assert s.bits_per_note == pytest.approx(sum(singles) / np.log(2) / s.notes, rel=1e-5)


# -- the loop ----------------------------------------------------------------------------------------------

def test_run_folder_and_checkpoint_contents(corpus, tmp_path) -> None:
    res = train(cfg(corpus), tmp_path / "run")
    assert res.stopped == "epochs" and res.epoch == 2 and len(res.history) == 2
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"best.pt", "last.pt", "metrics.csv", "loss.png", "config.json"}
    blob = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    data = blob["extra"]["data"]
    assert len(data["train_files"]) + len(data["val_files"]) == 14 and sum(data["meters"].values()) == len(data["train_files"])
    assert set(blob["extra"]) >= {"optimizer", "rng", "step", "best_val_loss", "elapsed_s", "schedule", "structure"}
    plans = blob["extra"]["structure"]  # one bar plan per training tune, for `compose generate`
    assert plans.dtype == torch.int16 and plans.shape == (len(data["train_files"]), 64) and (plans[:, 0] == -1).all()
    assert blob["metrics"]["ngram_bits_per_note"] > 0 and np.isfinite(blob["metrics"]["val_bits_per_note"])
    best = load_bundle(tmp_path / "run" / "best.pt")
    assert best.metrics["val_loss"] == pytest.approx(res.best_val_loss)
    assert best.record.hashes.keys() == set(data["train_files"]) | set(data["val_files"])  # found again by content
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,steps,train_loss,val_loss,val_bits_per_note") and len(lines) == 3
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_weights(corpus, tmp_path) -> None:
    a = train(cfg(corpus, epochs=1), tmp_path / "a").model.state_dict()
    b = train(cfg(corpus, epochs=1), tmp_path / "b").model.state_dict()
    c = train(cfg(corpus, epochs=1, seed=1), tmp_path / "c").model.state_dict()
    assert same(a, b) and not same(a, c)


@pytest.mark.parametrize("stop_after", ["epoch", 5])  # at the end of epoch 1, or mid-epoch
def test_resume_ends_where_a_straight_run_ends(corpus, tmp_path, stop_after) -> None:
    c = cfg(corpus, epochs=3, dropout=0.2)
    straight = train(c, tmp_path / "straight")
    if stop_after == "epoch":
        stop_after = straight.history[0]["steps_per_epoch"]
    calls = iter(range(10**6))
    first = train(c, tmp_path / "cut", should_stop=lambda: next(calls) >= stop_after - 1)
    assert first.stopped == "interrupted" and read_checkpoint(tmp_path / "cut" / "last.pt")["extra"]["step"] == stop_after
    resumed = train(c, tmp_path / "cut", resume=True)
    assert same(straight.model.state_dict(), resumed.model.state_dict())
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]


def test_full_disk_keeps_the_previous_checkpoint(corpus, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    train(cfg(corpus, epochs=1), run)
    before = weights(run / "last.pt")
    real = os.replace

    def full(src, dst):
        if str(dst).endswith(".pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ComposerError, match="No space left on device.*previous checkpoint is unchanged"):
        train(cfg(corpus, epochs=2), run, resume=True)
    monkeypatch.setattr(os, "replace", real)
    assert read_checkpoint(run / "last.pt")["epoch"] == 1 and same(weights(run / "last.pt"), before)
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())


def test_export_is_small_fp16_and_loads_as_float32(corpus, tmp_path) -> None:
    train(cfg(corpus, epochs=1), tmp_path / "run")
    out = export_model(tmp_path / "run" / "best.pt", tmp_path / "default.pt")
    blob = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    assert "optimizer" not in blob["extra"] and blob["extra"]["data"]["train_files"]
    assert blob["extra"]["structure"].dtype == torch.int16  # the bar plans ship with the model
    model = load_bundle(out).model
    assert next(model.parameters()).dtype == torch.float32
    with pytest.raises(ComposerError, match="already exists"):
        export_model(tmp_path / "run" / "best.pt", out)


# -- the command line ---------------------------------------------------------------------------------------

CLI_TINY = ["--layers", "1", "--hidden", "24", "--embed", "16", "--batch-size", "4", "--seq-len", "24",
            "--workers", "1", "--threads", "1"]


@pytest.mark.parametrize("args, message", [
    (["--hidden", "-3"], "Invalid value for '--hidden'"),
    (["--dropout", "1"], "Invalid value for '--dropout'"),
    (["--val-fraction", "0.01"], "Invalid value for '--val-fraction'"),
    (["--resume"], "--resume needs --name"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message) -> None:
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path), "--runs-dir", str(tmp_path / "runs"), *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_bad_data_leaves_nothing_behind(tmp_path, corpus) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.mid").write_bytes(b"not midi at all")
    (tmp_path / "afile").write_text("x")
    for i in range(2):  # one note each: 8 tokens, too few for any window
        write_midi(Melody((Note(0, 6, 60 + i),), TimeSignature(4, 4), Key(0), 1), tmp_path / "notes" / f"{i}.mid")
    runs = tmp_path / "runs"
    cases = [(["--data", str(tmp_path / "empty")], "no .mid"), (["--data", str(tmp_path / "junk")], "no usable"),
             (["--data", str(tmp_path / "notes")], "add MIDI files"),
             (["--data", str(corpus), "--runs-dir", str(tmp_path / "afile" / "runs")], "not a writable folder")]
    for args, message in cases:
        r = CliRunner().invoke(main, ["train", "--runs-dir", str(runs), "--name", "x", *CLI_TINY, *args])
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()[-1]) < 300, r.output
    assert not runs.exists()


def test_cli_train_skips_bad_files_refuses_an_existing_run_and_exports(tmp_path, corpus) -> None:
    import shutil

    data = tmp_path / "mixed"
    shutil.copytree(corpus, data)
    (data / "junk.mid").write_bytes(b"MThd garbage")
    base = ["train", "--data", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "r", *CLI_TINY]
    r = CliRunner().invoke(main, [*base, "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert "hint_token.weight" in weights(tmp_path / "runs" / "r" / "best.pt")  # copy hints are on by default
    assert "skipped junk.mid: " in r.output and "1 file skipped" in r.output
    assert "n-gram baseline" in r.output and "epoch 1: train loss" in r.output and "bits/note" in r.output
    assert "compose generate --checkpoint " in r.output and "best.pt --bars 16" in r.output
    r = CliRunner().invoke(main, [*base, "--epochs", "1"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = CliRunner().invoke(main, ["train", "--runs-dir", str(tmp_path / "runs"), "--name", "r", "--resume", "--hidden", "32"])
    assert r.exit_code == 2 and "drop --hidden" in r.output
    r = CliRunner().invoke(main, ["train", "--runs-dir", str(tmp_path / "runs"), "--name", "r",
                                  "--export", str(tmp_path / "m.pt")])
    assert r.exit_code == 0 and (tmp_path / "m.pt").exists(), r.output
    r = CliRunner().invoke(main, [*base[:-len(CLI_TINY) - 2], "--name", "plain", *CLI_TINY, "--epochs", "1", "--no-copy-hints"])
    assert r.exit_code == 0, r.output
    plain = load_bundle(tmp_path / "runs" / "plain" / "best.pt").model
    assert not plain.cfg.copy_hints and not hasattr(plain, "hint_token")


def test_sigterm_saves_last_exits_143_and_prints_the_resume_command(tmp_path, corpus) -> None:
    """While a run trains, a second run of its name refuses; SIGTERM saves last.pt and exits 143."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "composer", "train", "--data", str(corpus), "--runs-dir", str(runs), "--name", "s",
           *CLI_TINY, "--epochs", "100000", "--max-minutes", "0", "--patience", "100000"]
    env = {**os.environ, "COMPOSER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:  # wait until training runs
        lines.append(line)
        if line.startswith("epoch 2:"):
            break
    twin = CliRunner().invoke(main, ["train", "--data", str(corpus), "--runs-dir", str(runs), "--name", "s", "--force"])
    assert twin.exit_code == 1 and "in use by another training run" in twin.output, twin.output
    proc.send_signal(signal.SIGTERM)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, out
    assert f"compose train --resume --name s --runs-dir {runs}" in out
    blob = read_checkpoint(runs / "s" / "last.pt")
    assert blob["epoch"] >= 2
    r = CliRunner().invoke(main, ["train", "--resume", "--name", "s", "--runs-dir", str(runs), "--epochs", str(blob["epoch"] + 1)])
    assert r.exit_code == 0 and read_checkpoint(runs / "s" / "last.pt")["epoch"] == blob["epoch"] + 1, r.output
