"""Data-parallel training: two CPU processes (gloo) end with identical weights; only rank 0 writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import write_midi
from composer.train.loop import TrainConfig, train


def _corpus(folder: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(7)
    for i in range(n):
        ts = TimeSignature(4, 4)
        notes, t = [], 0
        while t + 12 <= 6 * ts.bar_steps:
            notes.append(Note(t, 12, int(rng.integers(60, 80))))
            t += 12
        write_midi(Melody(tuple(notes), ts, Key(2), 6), folder / f"t{i}.mid")
    return folder


def _worker(rank: int, world: int, tmp: str, data: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        cfg = TrainConfig(data=data, layers=1, hidden=24, embed=16, batch_size=2, seq_len=24, epochs=2,
                          max_minutes=None, warmup_steps=2, workers=1, threads=1, dropout=0.2, device="cpu")
        res = train(cfg, Path(tmp) / "run")
        torch.save({k: v.clone() for k, v in res.model.state_dict().items()}, Path(tmp) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_two_processes_end_with_identical_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    data = _corpus(tmp_path / "corpus")
    mp.spawn(_worker, args=(2, str(tmp_path), str(data)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(torch.equal(last["state_dict"][k], a[k]) for k in a)
    assert last["extra"]["history"][-1]["epoch"] == 2
    # Each step used both ranks' windows: a quarter of the windows per step with batch 2 on 2 ranks.
    steps = last["extra"]["history"][0]["steps_per_epoch"]
    assert steps == max(1, (last["extra"]["data"]["train_tokens"] - 1) // 24 // 4)
    assert last["extra"]["schedule"]["global_step"] == 2 * steps
