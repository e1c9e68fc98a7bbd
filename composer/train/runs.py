"""A training run's folder: checkpoints, metrics.csv, loss.png, config.json; RNG state as plain data;
export of a small fp16 copy for shipping."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from composer.errors import OutputError, TrainingError
from composer.files import atomic_write

RUN_FILES = ("best.pt", "last.pt", "metrics.csv", "loss.png", "config.json")
METRIC_FIELDS = ("epoch", "steps", "train_loss", "val_loss", "val_bits_per_note", "val_bits_per_token",
                 "ngram_bits_per_note", "lr", "seconds", "elapsed_s", "tokens_per_s")


class RunFolder:
    """outputs/runs/<name>/: created only once training is about to start, removed again if the
    run fails before its first checkpoint (nothing half-written is left behind)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.created = False

    best = property(lambda self: self.path / "best.pt")
    last = property(lambda self: self.path / "last.pt")

    def check_new(self, force: bool) -> None:
        """Refuse an existing run unless ``force``; check the parent can be written, creating nothing."""
        if self.path.exists() and any(self.path.iterdir()) and not force:
            raise TrainingError(f"run folder {self.path} already exists: use --resume to continue it, "
                                f"--force to start over, or --name to pick another")
        parent = self.path
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write the run folder {self.path}: {parent} is not a writable folder")

    def create(self, force: bool) -> None:
        existed = self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the run folder {self.path}: {e.strerror or e}") from None
        self.created = not existed
        if force:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)

    def remove_stale_temp_files(self) -> list[Path]:
        """Temp files a killed save left behind (``.last.pt.XXXX.tmp``); the checkpoints
        themselves were never touched. Called when a run starts or resumes."""
        stale = [p for name in RUN_FILES for p in self.path.glob(f".{name}.*.tmp")] if self.path.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def discard_if_empty_run(self) -> None:
        """After a failure: remove the folder if this run created it and no checkpoint exists."""
        if self.created and not self.last.exists() and not self.best.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def write_json(self, name: str, data: dict) -> None:
        atomic_write(self.path / name, (json.dumps(data, indent=2) + "\n").encode(), force=True)

    def write_metrics(self, history: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write(self.path / "metrics.csv", buf.getvalue().encode(), force=True)

    def write_plot(self, history: list[dict], baseline_bpn: float | None) -> None:
        from composer.train.plots import loss_curve_png

        atomic_write(self.path / "loss.png", loss_curve_png(history, baseline_bpn), force=True)


def rng_state() -> dict:
    """torch / numpy / python RNG states as tensors and plain data (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_model(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """A shipping copy of a checkpoint: fp16 weights, configs, metrics and the training record
    (with the bar plans); no optimizer or resume state (``composer.model.bundle.export_checkpoint``)."""
    from composer.model.bundle import export_checkpoint

    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a folder: give a file name such as {out / 'model.pt'}")
    return export_checkpoint(checkpoint, out, force=force)
