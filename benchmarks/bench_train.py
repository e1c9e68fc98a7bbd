"""Training speed: the real training loop's tokens/s against a bare fused nn.LSTM
forward + backward + AdamW step of the same model on random tokens, measured in the
same run (interleaved rounds, best of each, so a shared machine hurts both alike).
The loop trains the default model, copy hints, length and key codes included; the bare step is
the plain embedding -> LSTM -> output of the same sizes, so their cost counts against the loop.
Each other cell (``--cell gru``, ``--cell rnn``) is measured the same way against its own
bare fused nn.GRU / nn.RNN step.

    python benchmarks/bench_train.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `compose train` does (before torch loads)

import numpy as np
import torch
import torch.nn.functional as F

from composer.data.corpus import TokenizedFile
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.train.runs import RunFolder
from composer.model.bundle import TrainingRecord
from composer.tokens.tokenizer import Tokenizer
from composer.train.loop import Progress, _Trainer
from composer.train.config import TrainConfig
from composer.train.data import DataSplit, resolve_device


TOK = Tokenizer()


def _files(n: int, seed: int = 0) -> list[TokenizedFile]:
    """Random but well-formed melodies (so transposition has pitches to move)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = TimeSignature(6, 8)
        notes, t, p = [], 0, 67
        while t + 12 <= 32 * ts.bar_steps:
            d = int(rng.choice([6, 12]))
            p = int(np.clip(p + rng.integers(-4, 5), 50, 90))
            notes.append(Note(t, d, p))
            t += d
        ids = np.asarray(TOK.encode(Melody(tuple(notes), ts, Key(2), 32)), dtype=np.int16)
        out.append(TokenizedFile(f"f{i}.mid", ids, TOK.count_notes(ids), "6/8", "D"))
    return out


def _trainer(cfg: TrainConfig, device: torch.device) -> _Trainer:
    files = _files(64)
    split = DataSplit(files[:60], files[60:], ())
    run = RunFolder(Path(tempfile.gettempdir()) / "bench-train-never-written")  # _steps writes nothing
    return _Trainer(cfg, run, split, TrainingRecord(), device, Progress(), None, 1, 0, TOK)


def _loop_rate(tr: _Trainer, steps: int) -> float:
    """Tokens/s of the training loop itself (_Trainer._steps) over ``steps`` steps."""
    plan = tr.sampler.plan(0)
    plan.offsets, plan.draws = plan.offsets[:steps], plan.draws[:steps]
    tr.step = 0
    _sync(tr.device)
    t = time.perf_counter()
    tr._steps(plan, time.perf_counter())
    _sync(tr.device)
    return steps * tr.cfg.batch_size * tr.cfg.seq_len / (time.perf_counter() - t)


def _bare_rate(model: MelodyLSTM, opt, x: torch.Tensor, steps: int, amp: bool) -> float:
    """Tokens/s of forward + backward + AdamW on pre-made random tokens (B, T+1)."""
    _sync(x.device)
    t = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(x.device)
    return steps * x.shape[0] * (x.shape[1] - 1) / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(cfg: TrainConfig, device: torch.device, steps: int, rounds: int) -> tuple[float, float]:
    """(loop tokens/s, bare tokens/s): best of ``rounds`` interleaved rounds."""
    tr = _trainer(cfg, device)
    torch.manual_seed(0)
    bare = MelodyLSTM(cfg.replace(copy_hints=False, length_aware=False, key_aware=False).model_config(len(TOK))).to(device).train()
    opt = torch.optim.AdamW(bare.parameters(), lr=1e-3, fused=device.type in ("cpu", "cuda"))
    x = torch.randint(3, len(TOK), (cfg.batch_size, cfg.seq_len + 1), device=device)
    amp = device.type == "cuda"
    _loop_rate(tr, 1)  # warm-up: allocator, kernels
    _bare_rate(bare, opt, x, 1, amp)
    loop, ref = [], []
    for _ in range(rounds):
        loop.append(_loop_rate(tr, steps))
        ref.append(_bare_rate(bare, opt, x, steps, amp))
    return max(loop), max(ref)


def run(quick: bool = False) -> list[dict]:
    """Figures as dicts: name, value, target, unit."""
    cfg = TrainConfig(max_minutes=None, log_every=10)  # the default model and batch
    if quick:  # a smaller model: the loop's own overhead weighs more, the run takes seconds
        cfg = cfg.replace(hidden=256, embed=128, seq_len=128)
    steps, rounds = (4, 2) if quick else (6, 3)
    size = f"{cfg.layers}x{cfg.hidden}, batch {cfg.batch_size}x{cfg.seq_len}"
    out = []
    for cell in ModelConfig.CELLS:  # each cell against its own bare fused step
        loop, bare = compare(cfg.replace(cell=cell), torch.device("cpu"), steps, rounds)
        name = cell.upper()
        if cell == "lstm":  # (the names the results table has always used)
            out += [{"name": f"train loop tokens/s (CPU, {size})", "value": round(loop), "target": None, "unit": "tok/s"},
                    {"name": "bare fused LSTM step tokens/s (CPU)", "value": round(bare), "target": None, "unit": "tok/s"}]
        else:
            out.append({"name": f"{name} train loop tokens/s (CPU)", "value": round(loop), "target": None, "unit": "tok/s"})
        out.append({"name": f"train loop / bare {name} step (CPU)", "value": round(loop / bare, 3), "target": 0.9,
                    "unit": "ratio"})
    if torch.cuda.is_available():
        gpu = resolve_device("cuda")
        for cell in ModelConfig.CELLS:
            loop, bare = compare(cfg.replace(batch_size=512, layers=3, cell=cell), gpu, 10 if quick else 30, rounds)
            name, tag = cell.upper(), "" if cell == "lstm" else f"{cell.upper()} "
            out += [
                {"name": f"{tag}train loop tokens/s (GPU, 3x512, batch 512, bf16)", "value": round(loop), "target": None,
                 "unit": "tok/s"},
                {"name": f"train loop / bare {name} step (GPU)", "value": round(loop / bare, 3), "target": 0.9, "unit": "ratio"},
            ]
    return out


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        target = f"  (target >= {r['target']})" if r["target"] is not None else ""
        print(f"{r['name']:<55} {r['value']:>12,} {r['unit']}{target}")
