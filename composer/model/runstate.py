"""What a run's ``last.pt`` holds besides the model, to continue a training run exactly where it
stopped: optimizer, schedule position, best scores, timing and RNG state. Read and written only
here and in ``composer.model.bundle`` (the training record); the trainer uses the types."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from composer.errors import CheckpointError
from composer.model.bundle import TrainingRecord
from composer.model.checkpoint import read_checkpoint

_RESUME_KEYS = ("epoch", "step", "schedule", "best_val_loss", "best_bits_per_note", "bad_epochs", "elapsed_s",
                "val_seconds", "partial", "optimizer", "rng")


@dataclass(frozen=True)
class Position:
    """Where a run stands (also written into best.pt, which holds no optimizer)."""

    epoch: int = 0
    step: int = 0  # steps done in the current epoch
    global_step: int = 0
    total_steps: int = 0
    best_val_loss: float = float("inf")
    best_bits_per_note: float = float("inf")
    bad_epochs: int = 0  # epochs without a better validation loss (early stopping)
    elapsed_s: float = 0.0
    val_seconds: float = 0.0
    partial: dict = field(default_factory=dict)  # the current epoch's loss sum, steps and seconds so far

    def to_extra(self) -> dict:
        d = asdict(self)
        return {**{k: d[k] for k in ("epoch", "step", "best_bits_per_note", "bad_epochs", "elapsed_s", "val_seconds")},
                "best_val_loss": self.best_val_loss, "partial": dict(self.partial),
                "schedule": {"global_step": self.global_step, "total_steps": self.total_steps}}


@dataclass(frozen=True)
class RunState:
    """A run's last checkpoint, typed: enough to resume bit for bit."""

    train_config: dict
    state_dict: dict
    record: TrainingRecord
    position: Position
    optimizer: dict
    rng: dict


def checkpoint_extra(record: TrainingRecord, position: Position, optimizer: dict | None = None,
                     rng: dict | None = None) -> dict:
    """A training checkpoint's ``extra`` data: the record, the position and (for last.pt) the resume state."""
    out = {**record.to_extra(), **position.to_extra()}
    if optimizer is not None:
        out["optimizer"], out["rng"] = optimizer, rng or {}
    return out


def read_train_config(path: str | Path) -> dict:
    """The training configuration a checkpoint records."""
    cfg = read_checkpoint(path).get("train_config")
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path} records no training configuration")
    return cfg


def read_run_state(path: str | Path) -> RunState:
    """The resume state of a run's last.pt; CheckpointError when it lacks any part."""
    blob = read_checkpoint(path)
    ex = blob.get("extra") if isinstance(blob.get("extra"), dict) else {}
    missing = [k for k in _RESUME_KEYS if k not in ex] + [k for k in ("train_config", "state_dict") if k not in blob]
    if missing:
        raise CheckpointError(f"{path} cannot be resumed: it holds no {missing[0].replace('_', ' ')} (a best.pt or an export?)")
    try:
        pos = Position(int(ex["epoch"]), int(ex["step"]), int(ex["schedule"]["global_step"]),
                       int(ex["schedule"].get("total_steps", 0)), float(ex["best_val_loss"]), float(ex["best_bits_per_note"]),
                       int(ex["bad_epochs"]), float(ex["elapsed_s"]), float(ex["val_seconds"]), dict(ex["partial"]))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise CheckpointError(f"{path} cannot be resumed: its position is malformed") from None
    for what, value in (("training configuration", blob["train_config"]), ("weights", blob["state_dict"]),
                        ("optimizer state", ex["optimizer"]), ("random state", ex["rng"])):
        if not isinstance(value, dict):
            raise CheckpointError(f"{path} cannot be resumed: its {what} is a {type(value).__name__}, not a table")
    return RunState(dict(blob["train_config"]), blob["state_dict"], TrainingRecord.from_extra(ex), pos,
                    ex["optimizer"], ex["rng"])
