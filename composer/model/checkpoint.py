"""Self-contained checkpoints: weights, configs, vocabulary, metrics, as plain data.

Saved atomically (temp file + ``os.replace``); loaded with ``weights_only=True`` so a
crafted file cannot run code. Before loading, the archive's member sizes are checked
(``MAX_CHECKPOINT_BYTES``, ``MAX_INFLATION``) so a small file cannot inflate to gigabytes;
before building, the model config is checked against ``ModelConfig.LIMITS`` and the number of
weights it needs against the number the file holds (nothing is allocated for a config far
larger than its weights), and non-finite weights are refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from composer import __version__
from composer.model.config import ModelConfig
from composer.errors import CheckpointError, ComposerError
from composer.files import atomic_write, os_reason, shown_path
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer

FORMAT = "composer-checkpoint"
FORMAT_VERSION = 1
DEFAULT_MODEL = Path(__file__).parents[1] / "models" / "default.pt"
# The most a checkpoint may hold, uncompressed: the shipped model is 5 MB and a 3x2048 float32
# model about 0.4 GB. torch.save stores its members uncompressed, so a real checkpoint is about
# as large as its file; one that inflates to more than MAX_INFLATION times its size is a zip bomb.
MAX_CHECKPOINT_BYTES = 2 * 2**30
MAX_INFLATION = 64


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
    path = Path(path)
    existed = path.is_file()
    try:
        return atomic_write(path, buf.getvalue(), force=True)
    except ComposerError as e:
        raise type(e)(f"{e}; the previous checkpoint is unchanged" if existed else f"{e}; no checkpoint was written") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's plain data, its format checked; raises CheckpointError. (Only this
    package's model modules read its keys: ``composer.model.bundle`` turns it into types.)"""
    path = Path(path)
    _check_archive(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable composer checkpoint (refused: {first[:160]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a composer checkpoint")
    if blob.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {str(blob.get('format_version'))[:40]}, expected {FORMAT_VERSION}")
    return blob


def _check_archive(path: Path) -> None:
    """Refuse, in one line, what is not a checkpoint file before torch reads it: a missing path, a
    folder, a file that is not a zip archive (as torch.save writes), or one whose members would
    inflate past ``MAX_CHECKPOINT_BYTES`` or ``MAX_INFLATION`` times the file's size."""
    try:
        kind = "folder" if path.is_dir() else "file" if path.is_file() else "other" if path.exists() else ""
    except OSError as e:  # a name too long, a loop of links
        raise CheckpointError(f"cannot read checkpoint {shown_path(path)}: {os_reason(e)}") from None
    if kind == "folder":
        raise CheckpointError(f"checkpoint {path} is a folder, not a file: pass the checkpoint file "
                              "(a run's best.pt or last.pt)")
    if not kind:
        raise CheckpointError(f"checkpoint {path} not found: train one with `compose train` or pass --checkpoint")
    if kind == "other":
        raise CheckpointError(f"checkpoint {path} is not a regular file: pass a .pt file written by `compose train`")
    try:
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable composer checkpoint: it is not a checkpoint file at all "
                                  "(not the zip archive that `compose train` writes)")
        with zipfile.ZipFile(path) as z:
            inflated = sum(max(0, i.file_size) for i in z.infolist())
    except CheckpointError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        why = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise CheckpointError(f"{path} is not a readable composer checkpoint ({why})") from None
    if inflated > MAX_CHECKPOINT_BYTES or inflated > MAX_INFLATION * max(size, 1):
        raise CheckpointError(f"{path} is not a readable composer checkpoint: it would inflate to {inflated:,} bytes "
                              f"from {size:,} (at most {MAX_CHECKPOINT_BYTES:,}, and {MAX_INFLATION}x the file)")


def model_from_blob(blob: dict[str, Any], path: str | Path, tokenizer: Tokenizer) -> MelodyLSTM:
    """The network of a checkpoint's data (float32, CPU). The config's types and limits, and the
    weights' names and shapes, are checked before the network is built; CheckpointError in one line
    when anything does not fit or a weight is NaN or infinite."""
    try:
        cfg = ModelConfig.from_dict(blob.get("model_config"))
    except ComposerError as e:
        raise CheckpointError(f"{path} has an unusable model config ({e})") from None
    if cfg.vocab_size != len(tokenizer):
        raise CheckpointError(f"{path}: weights do not match the model config (a model of {cfg.vocab_size} token ids "
                              f"for a vocabulary of {len(tokenizer)})")
    state = blob.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: its weights are not a table of named tensors")
    needed, held = parameters_needed(cfg), sum(v.numel() for v in state.values())
    if needed > held:  # a config far larger than its weights: refused before allocating it
        raise CheckpointError(f"{path}: weights do not match the model config (it needs {needed:,} weights, "
                              f"the file holds {held:,})")
    bad = next((k for k, v in state.items() if (v.is_floating_point() or v.is_complex()) and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(f"{path} holds weights that are not finite numbers (NaN or inf in {bad}): "
                              "the run diverged; use an earlier checkpoint or retrain")
    try:
        model = MelodyLSTM(cfg)
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != want:
            name = next((k for k in sorted(want.keys() | got.keys()) if want.get(k) != got.get(k)))
            raise CheckpointError(f"{name}: {_shape(got.get(name))} in the file, {_shape(want.get(name))} for the config")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (ComposerError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: weights do not match the model config ({str(e).splitlines()[0][:160]})") from None
    return model


def parameters_needed(cfg: ModelConfig) -> int:
    """How many weights ``MelodyLSTM(cfg)`` has (tied matrices once), from the config alone: a
    checkpoint holding fewer cannot match it, so its network is never built. (Pinned to
    ``MelodyLSTM.num_parameters`` by a test.)"""
    from composer.model import keycodes, lengths
    from composer.model.hints import BUCKETS

    v, e, h, n = cfg.vocab_size, cfg.embed_size, cfg.hidden_size, cfg.num_layers
    g = {"lstm": 4, "gru": 3, "rnn": 1}[cfg.cell]  # gates per layer
    lstm = sum(g * h * ((e if k == 0 else h) + h) + 2 * g * h for k in range(n))  # input and hidden matrices, two biases
    hints = (v + BUCKETS) * e if cfg.copy_hints else 0
    hints += (lengths.BUCKETS + lengths.PHRASES) * e if cfg.length_aware else 0  # the length and phrase embeddings
    hints += keycodes.CODES * e if cfg.key_aware else 0  # the key embedding
    out_width = e if cfg.tie_weights else h
    proj = h * e + e if cfg.tie_weights and h != e else 0
    head = (0 if cfg.tie_weights else out_width * v) + v
    return v * e + hints + lstm + proj + head


def _shape(shape: tuple[int, ...] | None) -> str:
    return "missing" if shape is None else "x".join(map(str, shape)) or "a scalar"
