"""The recurrent cell option (``--cell lstm|gru|rnn``): each cell's fused one-step path matches
its whole-sequence forward, and each trains, saves, resumes, generates and evaluates end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.errors import ModelError, TrainingError
from composer.generate.api import Composer
from composer.model.bundle import load_bundle
from composer.model.checkpoint import parameters_needed, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.hints import BUCKETS
from composer.model.network import MelodyLSTM, expand_state, put_state, select_state
from composer.train.config import TrainConfig

REAL = Path(__file__).parent / "fixtures" / "real"
CELLS = ModelConfig.CELLS
V = 40


def tiny(cell: str, copy_hints: bool, layers: int = 3) -> MelodyLSTM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, embed_size=8, hidden_size=12, num_layers=layers, dropout=0.2,
                      copy_hints=copy_hints, cell=cell)
    return MelodyLSTM(cfg).eval()


@pytest.mark.parametrize("copy_hints", [False, True], ids=["plain", "hints"])
@pytest.mark.parametrize("cell", CELLS)
def test_step_matches_forward_token_by_token(cell, copy_hints):
    model = tiny(cell, copy_hints)
    ids = torch.randint(0, V, (3, 17), generator=torch.Generator().manual_seed(1))
    hints = torch.randint(0, V * BUCKETS, (3, 17), generator=torch.Generator().manual_seed(2)) if copy_hints else None
    with torch.no_grad():
        whole, last = model(ids, hints=hints)  # (B, T, V)
    state, steps = model.init_state(3), []
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state, None if hints is None else hints[:, t])
        steps.append(logits)
    assert len(state) == (2 if cell == "lstm" else 1)  # (h, c) or (h,)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, last):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_state_helpers_slice_and_put_back_every_cell(cell):
    model = tiny(cell, False, layers=2)
    state = tuple(torch.randn_like(s) for s in model.init_state(4))
    idx = torch.tensor([1, 3])
    part = select_state(state, idx)
    assert all(p.shape == (2, 2, 12) for p in part)
    back = put_state(tuple(torch.zeros_like(s) for s in state), idx, part)
    assert all(torch.equal(b[:, [1, 3]], s[:, [1, 3]]) and not b[:, [0, 2]].any() for b, s in zip(back, state))
    wide = expand_state(select_state(state, torch.tensor([2])), 5)
    assert all(w.shape == (2, 5, 12) and torch.equal(w[:, 4], s[:, 2]) for w, s in zip(wide, state))


@pytest.mark.parametrize("cell", CELLS)
def test_parameter_count_from_the_config_alone(cell):
    for hints in (False, True):
        cfg = ModelConfig(vocab_size=V, embed_size=8, hidden_size=12, num_layers=2, copy_hints=hints, cell=cell)
        assert parameters_needed(cfg) == MelodyLSTM(cfg).num_parameters()


def test_a_bad_cell_is_refused_naming_it():
    with pytest.raises(ModelError, match="cell must be one of lstm, gru, rnn, got 'transformer'"):
        ModelConfig(cell="transformer")
    with pytest.raises(TrainingError, match="unknown cell 'lstm2'"):
        TrainConfig(cell="lstm2")
    res = CliRunner().invoke(main, ["train", "--cell", "tanh"])
    assert res.exit_code == 2 and "'tanh' is not one of 'lstm', 'gru', 'rnn'" in res.output


def test_an_old_checkpoint_without_a_cell_loads_as_an_lstm(tmp_path):
    model = MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1, dropout=0.0, copy_hints=False))
    save_checkpoint(tmp_path / "old.pt", model)
    blob = torch.load(tmp_path / "old.pt", weights_only=True)
    del blob["model_config"]["cell"]
    torch.save(blob, tmp_path / "old.pt")
    assert ModelConfig.from_dict({"vocab_size": 5}).cell == "lstm"
    loaded = load_bundle(tmp_path / "old.pt").model
    assert loaded.cfg.cell == "lstm" and isinstance(loaded.lstm, torch.nn.LSTM)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def run(*args) -> str:
    res = CliRunner().invoke(main, [*map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


TRAIN = ["--data", "corpus", "--runs-dir", "runs", "--name", "t", "--layers", "2", "--hidden", "16", "--embed", "8",
         "--seq-len", "32", "--batch-size", "4", "--max-minutes", "0", "--threads", "1", "--workers", "1"]


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_trains_resumes_generates_and_evaluates(cell, tmp_path, monkeypatch):
    shutil.copytree(REAL, tmp_path / "corpus", ignore=shutil.ignore_patterns("*.md"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    run("train", *TRAIN, "--cell", cell, "--epochs", "1")
    best, last = tmp_path / "runs" / "t" / "best.pt", tmp_path / "runs" / "t" / "last.pt"
    blob = torch.load(last, weights_only=True)
    assert blob["model_config"]["cell"] == cell and blob["train_config"]["cell"] == cell
    refused = CliRunner().invoke(main, ["train", "--resume", "--name", "t", "--runs-dir", "runs", "--cell", cell])
    assert refused.exit_code == 2 and "drop --cell" in refused.output
    run("train", "--resume", "--name", "t", "--runs-dir", "runs", "--epochs", "2")  # the cell comes from the run
    blob = torch.load(last, weights_only=True)
    assert blob["model_config"]["cell"] == cell and blob["extra"]["epoch"] == 2
    model = load_bundle(best).model
    assert model.cfg.cell == cell and type(model.lstm).__name__ == cell.upper()

    run("generate", "-c", best, "--seed", 5, "--bars", 3, "--num", 3, "--out", tmp_path / "cli.mid")
    results = Composer.load(best).generate(seed=5, bars=3, num=3)  # batched: rows that finish early keep their state
    files = [tmp_path / f"cli_{i:02d}.mid" for i in (1, 2, 3)]
    assert [r.to_midi_bytes() for r in results] == [f.read_bytes() for f in files]
    assert all(r.melody.n_bars == 3 and r.melody.notes for r in results)
    (primed,) = Composer.load(best).generate(prime=REAL / "m21_test02.mid", bars=2, seed=1)  # a prime: one forward pass
    assert primed.melody.notes

    scored = json.loads(run("evaluate", REAL, "--checkpoint", best, "--json"))
    assert scored["files"] >= 1 and 0 < scored["bits_per_note"] < 100
