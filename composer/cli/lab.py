"""`compose lab`: the RNN lesson, measured. Trains comparable models (rnn, gru, lstm at about the
same parameter count and time; an LSTM at three dropouts) and writes a report folder: a Markdown
table and PNG plots of validation bits per note, memory by distance, vanishing gradients and the
train/validation gap."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import click

from composer.cli._common import ComposerCommand
from composer.errors import ComposerError

CELLS = ("rnn", "gru", "lstm")
DROPOUTS = (0.0, 0.3, 0.5)


def _hidden_for(cell: str, target: int, base) -> int:
    """The hidden size (a multiple of 8) whose model has about ``target`` parameters."""
    from dataclasses import replace

    from composer.model.checkpoint import parameters_needed

    sizes = range(8, 4097, 8)
    return min(sizes, key=lambda h: abs(parameters_needed(replace(base, cell=cell, hidden_size=h)) - target))


def _subset(data: Path, files: int, out: Path) -> Path:
    """A folder holding ``files`` of the corpus (a fixed choice): a small training set makes a
    model memorise within minutes, which is what the dropout runs show."""
    import hashlib

    from composer.data.corpus import find_midi_files

    found = sorted(find_midi_files(data), key=lambda p: hashlib.sha256(p.name.encode()).digest())[:files]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for p in found:
        shutil.copyfile(p, out / p.name)
    return out


def _finite(x):
    """Plain data for JSON: non-finite numbers (a probe with no such notes) become null."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


class _Quiet:
    """Training progress shown as one line per finished epoch."""

    def __init__(self, label: str) -> None:
        self.label = label

    def loading(self, done: int, total: int) -> None: ...
    def data(self, info: dict) -> None: ...
    def epoch_start(self, epoch: int, steps: int, first_step: int) -> None: ...
    def step(self, *args) -> None: ...
    def message(self, text: str) -> None: ...

    def epoch_end(self, row: dict) -> None:
        click.echo(f"  {self.label}: epoch {row['epoch']}, train {row['train_loss']:.3f}, "
                   f"validation {row['val_loss']:.3f} nats/token, {row['val_bits_per_note']:.3f} bits/note", err=True)


def _run(name: str, cfg, out: Path):
    """Train one model of the lab; returns the TrainResult."""
    from composer.train.loop import train

    click.echo(f"{name}: {cfg.cell}, hidden {cfg.hidden}, copy hints {'on' if cfg.copy_hints else 'off'}, "
               f"dropout {cfg.dropout}, {cfg.max_minutes:g} min", err=True)
    return train(cfg, out / "runs" / name, force=True, progress=_Quiet(name))


@click.command("lab", cls=ComposerCommand)
@click.option("--minutes", type=click.FloatRange(0, 600, min_open=True), default=3.0, show_default=True,
              help="Training minutes per model: 9 models, so the lab takes about 9x this plus a few minutes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs/lab"), show_default=True,
              help="Report folder (report.md, results.json, PNG plots, the runs).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=Path("midi_corpus"), show_default=True,
              help="Folder of MIDI files to learn from.")
@click.option("--hidden", type=click.IntRange(8, 1024), default=256, show_default=True,
              help="LSTM hidden size; the GRU and RNN get the size with the same parameter count.")
@click.option("--dropout-files", type=click.IntRange(20), default=300, show_default=True,
              help="Training files for the dropout runs (a small set shows memorisation quickly).")
@click.option("--seed", type=click.IntRange(0, 2**31), default=0, show_default=True)
def command(minutes, out, data, hidden, dropout_files, seed) -> None:
    """Train rnn, gru and lstm models side by side and measure what the slides teach.

    \b
    compose lab --minutes 3            about 30 minutes on a laptop CPU
    """
    import torch

    from composer.evaluate import lab_probes as probes
    from composer.evaluate import lab_report as rep
    from composer.model.bundle import load_bundle
    from composer.model.checkpoint import parameters_needed
    from composer.tokens.tokenizer import Tokenizer
    from composer.train.config import TrainConfig

    if not data.is_dir():
        raise ComposerError(f"--data {data} is not a folder of MIDI files")
    t0 = time.perf_counter()
    # No length codes: the lesson is what each cell remembers of the melody itself (and the README's
    # table was measured without them).
    base = TrainConfig(data=str(data), hidden=hidden, max_minutes=minutes, patience=1000, epochs=1000, seed=seed,
                       log_every=50, length_aware=False, key_aware=False)
    lstm_cfg = base.model_config(len(Tokenizer()))
    target = parameters_needed(lstm_cfg)
    results: dict = {"command": f"compose lab --minutes {minutes:g} --hidden {hidden}", "minutes": minutes,
                     "cells": [], "memory": {}, "gradient": {}, "dropout": {}, "plots": {}}
    finals = {}
    for cell in CELLS:
        h = hidden if cell == "lstm" else _hidden_for(cell, target, lstm_cfg)
        for hints in (False, True):
            name = f"{cell}{'-hints' if hints else ''}"
            res = _run(name, base.replace(cell=cell, hidden=h, copy_hints=hints), out)
            bundle = load_bundle(res.run_dir / "best.pt")
            results["cells"].append({"cell": cell, "copy_hints": hints, "hidden": h,
                                     "parameters": bundle.model.num_parameters(), "minutes": minutes,
                                     "epochs": res.epoch, "val_bits_per_note": res.best_bits_per_note})
            if not hints:
                finals[cell] = bundle
    for cell, bundle in finals.items():  # the probes read the plain models: hints would answer for memory
        val = [f.ids for f in bundle.training_files("val")]
        with torch.no_grad():
            results["memory"][cell] = probes.memory_by_distance(bundle.model, bundle.tokenizer, val)
        seq_len = max(2, min(128, max(len(x) for x in val) - 1))  # windows of 128 tokens where the tunes allow
        results["gradient"][cell] = probes.gradient_by_distance(bundle.model, bundle.tokenizer, val, seq_len=seq_len,
                                                                max_back=min(64, seq_len - 1), seed=seed)
    small = _subset(data, dropout_files, out / "dropout_data")
    for d in DROPOUTS:
        res = _run(f"lstm-dropout{d:g}", base.replace(data=str(small), dropout=d, copy_hints=False), out)
        results["dropout"][f"dropout {d:g}"] = res.history
    reference = {f"{cell}, notes repeating nothing": by_k[0] for cell, by_k in results["memory"].items() if 0 in by_k}
    plots = {
        "memory.png": (rep.by_distance_series(results["memory"]), "Loss on notes that repeat a note k bars back",
                       "k (bars back)", "nats", {"log_x": True, "hlines": reference}),
        "gradient.png": (rep.by_distance_series(results["gradient"], skip=()), "|d loss_t / d input_(t-k)|",
                         "k (tokens back)", "gradient norm", {"log_y": True}),
        "dropout.png": (rep.dropout_curves(results["dropout"]), "Training (dashed) and validation loss",
                        "epoch", "nats per token", {}),
    }
    for file, (series, title, xl, yl, options) in plots.items():
        rep.plot_lines(series, title, xl, yl, out / file, **options)
        results["plots"][title] = file
    (out / "report.md").write_text(rep.report_markdown(results))
    (out / "results.json").write_text(json.dumps(_finite(results), indent=1, default=str, allow_nan=False))
    click.echo(f"wrote {out / 'report.md'} and {len(plots)} plots in {(time.perf_counter() - t0) / 60:.1f} minutes")
