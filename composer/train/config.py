"""TrainConfig: every knob of a training run, with its reason, checked on creation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from composer.model.config import ModelConfig
from composer.errors import ComposerError


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ComposerError(msg)


@dataclass(frozen=True)
class TrainConfig:
    data: str = "midi_corpus"  # folder of MIDI files, searched recursively
    # Model: the defaults suit the 12-minute default run on a 2-core CPU (measured on midi_corpus/
    # on a busy machine: 2.14 validation bits/note with copy hints, 3.13 without, against 4.14
    # for the n-gram baseline).
    layers: int = 2  # stacked LSTM layers
    hidden: int = 256  # LSTM state width
    embed: int = 128  # token embedding width
    dropout: float = 0.1  # on the embedding, between layers and before the output layer (a short run underfits)
    tie: bool = True  # share embedding and output weights: fewer parameters, better on small corpora
    # Feed the LSTM the melody's own longest earlier match (composer.model.hints): tunes repeat whole
    # parts, and a plain LSTM's memory fades after a few bars.
    copy_hints: bool = True
    # Std of the initial token embedding (tied: the output matrix too); 0 keeps MelodyLSTM's 0.05,
    # which feeds the LSTM almost nothing at first: measured val loss 1.58 vs 0.96 nats/token after
    # 200 steps of a 2x256 model with 1.0.
    embed_init: float = 1.0
    # Optimization.
    batch_size: int = 32  # windows per step (per process under DDP)
    seq_len: int = 128  # tokens per window (~40 notes): backprop-through-time length
    lr: float = 1e-2  # AdamW peak learning rate (high, with warmup, cosine decay and clipping)
    weight_decay: float = 0.01  # AdamW decoupled weight decay on weight matrices (mild regularization)
    warmup_steps: int = 100  # linear warmup avoids early Adam steps blowing up the LSTM gates
    min_lr_ratio: float = 0.05  # cosine decay ends at this fraction of lr
    clip: float = 1.0  # max global gradient norm: LSTMs occasionally produce exploding gradients
    epochs: int = 100  # upper bound on passes over the training tokens
    max_minutes: float | None = 12.0  # wall-clock budget incl. validation; the LR schedule follows it
    patience: int = 5  # early stopping: epochs without a better validation loss
    # Data.
    val_fraction: float = 0.1  # share of files held out for validation (>= 5%)
    augment: bool = True  # random transposition per window, pitches kept in range, key token shifted
    max_transpose: int = 5  # largest transposition in semitones (either way)
    seed: int = 0  # file split, initialization, window order, dropout: same seed, same CPU run
    device: str = "auto"  # auto = cuda, then mps, then cpu
    workers: int | None = None  # processes tokenizing the corpus (None = CPU count)
    threads: int | None = None  # torch CPU threads (None = torch default)
    log_every: int = 10  # steps between progress callbacks (each reads the loss: a device sync)

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "embed", "batch_size", "seq_len", "epochs"):
            _check(getattr(self, name) > 0, f"{name.replace('_', ' ')} must be positive, got {getattr(self, name)}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _check(self.embed_init >= 0, f"embed init must be >= 0, got {self.embed_init}")
        _check(self.lr > 0, f"learning rate must be positive, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}")
        _check(self.clip > 0, f"gradient clip must be positive, got {self.clip}")
        _check(self.warmup_steps >= 0, f"warmup steps must be >= 0, got {self.warmup_steps}")
        _check(0.0 <= self.min_lr_ratio <= 1.0, f"min lr ratio must be in [0, 1], got {self.min_lr_ratio}")
        _check(self.max_minutes is None or self.max_minutes > 0, f"max minutes must be positive, got {self.max_minutes}")
        _check(self.patience > 0, f"patience must be positive, got {self.patience}")
        _check(0.0 < self.val_fraction < 1.0, f"validation fraction must be in (0, 1), got {self.val_fraction}")
        _check(0 <= self.max_transpose <= 12, f"max transpose must be in 0..12, got {self.max_transpose}")
        _check(self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
               f"unknown device {self.device!r}: use auto, cpu, cuda or mps")
        _check(self.workers is None or self.workers > 0, f"workers must be positive, got {self.workers}")
        _check(self.threads is None or self.threads > 0, f"threads must be positive, got {self.threads}")
        _check(self.log_every > 0, f"log every must be positive, got {self.log_every}")

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, embed_size=self.embed, hidden_size=self.hidden,
                           num_layers=self.layers, dropout=self.dropout, tie_weights=self.tie,
                           copy_hints=self.copy_hints)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        d = {"copy_hints": False, **d}  # runs from before copy hints had none
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})
