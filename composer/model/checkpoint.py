"""Self-contained checkpoints: weights, configs, vocabulary, metrics, as plain data.

Saved atomically (temp file + ``os.replace``); loaded with ``weights_only=True`` so a
crafted file cannot run code.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from composer import __version__
from composer.model.config import ModelConfig
from composer.errors import CheckpointError, ComposerError
from composer.files import atomic_write
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer

FORMAT = "composer-checkpoint"
FORMAT_VERSION = 1
DEFAULT_MODEL = Path(__file__).parents[1] / "models" / "default.pt"


def save_checkpoint(path: str | Path, model: MelodyLSTM, *, tokenizer: Tokenizer | None = None,
                    train_config: dict | None = None, epoch: int = 0, metrics: dict | None = None,
                    extra: dict | None = None, half: bool = False) -> Path:
    """Write one self-contained checkpoint atomically. ``extra`` holds the training record
    (``TrainingRecord.to_extra``) and resume state (optimizer, schedule, RNG), all tensors and plain data."""
    vocab = (tokenizer or Tokenizer()).vocab
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "composer_version": __version__,
        "tokenizer_version": vocab.version,
        "vocab": list(vocab.tokens),
        "model_config": model.cfg.to_dict(),
        "train_config": dict(train_config or {}),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        "state_dict": state,
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    try:
        return atomic_write(Path(path), buf.getvalue(), force=True)
    except ComposerError as e:
        raise type(e)(f"{e}; the previous checkpoint is unchanged") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's plain data, its format checked; raises CheckpointError. (Only this
    package's model modules read its keys: ``composer.model.bundle`` turns it into types.)"""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found: train one with `compose train` or pass --checkpoint")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable composer checkpoint (refused: {first[:160]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a composer checkpoint")
    if blob.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {blob.get('format_version')}, expected {FORMAT_VERSION}")
    return blob


def model_from_blob(blob: dict[str, Any], path: str | Path, tokenizer: Tokenizer) -> MelodyLSTM:
    """The network of a checkpoint's data (float32, CPU); CheckpointError when the weights do not fit."""
    try:
        cfg = ModelConfig.from_dict(blob["model_config"])
        if cfg.vocab_size != len(tokenizer):
            raise CheckpointError(f"a model of {cfg.vocab_size} token ids for a vocabulary of {len(tokenizer)}")
        model = MelodyLSTM(cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except (ComposerError, RuntimeError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise CheckpointError(f"{path}: weights do not match the model config ({str(e).splitlines()[0][:160]})") from None
    return model
