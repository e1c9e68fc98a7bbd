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
from composer.tokens.tokenizer import TOKENIZER_VERSION, VOCAB, Vocab

FORMAT = "composer-checkpoint"
FORMAT_VERSION = 1
DEFAULT_MODEL = Path(__file__).parents[1] / "models" / "default.pt"


def save_checkpoint(path: str | Path, model: MelodyLSTM, *, vocab: Vocab = VOCAB, train_config: dict | None = None,
                    epoch: int = 0, metrics: dict | None = None, extra: dict | None = None, half: bool = False) -> Path:
    """Write one self-contained checkpoint atomically. ``extra`` holds resume state
    (optimizer, schedule, RNG) and must itself be tensors and plain data."""
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
        raise ComposerError(f"{e}; the previous checkpoint is unchanged") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's data, validated; raises CheckpointError."""
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
    if blob.get("tokenizer_version") != TOKENIZER_VERSION or tuple(blob.get("vocab", ())) != VOCAB.tokens:
        raise CheckpointError(
            f"{path} was trained with tokenizer version {blob.get('tokenizer_version')}; this composer uses "
            f"version {TOKENIZER_VERSION}: retrain with `compose train`"
        )
    return blob


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[MelodyLSTM, dict[str, Any]]:
    """The model (eval mode, float32) and checkpoint data; ``None`` loads the shipped default."""
    blob = read_checkpoint(DEFAULT_MODEL if path is None else path)
    try:
        model = MelodyLSTM(ModelConfig.from_dict(blob["model_config"]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except (ComposerError, RuntimeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not match the model config ({str(e).splitlines()[0][:160]})") from None
    return model.to(device).eval(), blob
