"""TrainConfig: every knob of a training run, with its reason, checked on creation.

Its model fields take their defaults from ModelConfig and its ``LIMITS`` hold every numeric
field's allowed values: ``__post_init__`` checks them and ``compose train`` turns them into
click ranges, so the library, the model and the command line cannot disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from composer.errors import TrainingError
from composer.model.config import AT_LEAST_1, POSITIVE, Limit, ModelConfig, check_limits

_M = ModelConfig.LIMITS


@dataclass(frozen=True)
class TrainConfig:
    data: str = "midi_corpus"  # folder of MIDI files, searched recursively
    track: str | None = None  # the melody track of every file, by name or number (None: the reader's choice per file)
    # Model: ModelConfig's defaults suit the 12-minute default run on a 2-core CPU (measured on
    # midi_corpus/ on a busy machine: 2.14 validation bits/note with copy hints, 3.13 without,
    # against 4.14 for the n-gram baseline).
    layers: int = ModelConfig.num_layers  # stacked LSTM layers
    hidden: int = ModelConfig.hidden_size  # LSTM state width
    embed: int = ModelConfig.embed_size  # token embedding width
    dropout: float = ModelConfig.dropout  # on the embedding, between layers and before the output layer
    tie: bool = ModelConfig.tie_weights  # share embedding and output weights: fewer parameters, better on small corpora
    # Feed the LSTM the melody's own longest earlier match (composer.model.hints).
    copy_hints: bool = ModelConfig.copy_hints
    cell: str = ModelConfig.cell  # the recurrent cell: one of ModelConfig.CELLS (lstm, gru, rnn)
    # Feed the network the bars left to the end (composer.model.lengths), so it learns to end a
    # piece. On for new runs (ModelConfig's False is what configs without the field mean).
    length_aware: bool = True
    # Feed the network the key in effect at every token (composer.model.keycodes), shifted with
    # each window's transposition, so it can end on the tonic. On for new runs, like length_aware.
    key_aware: bool = True
    # Feed the network the chord sounding at every token (composer.model.chordcodes): a four-part
    # file's own harmony, else the shipped harmonizer's chords (composer.train.chords), so the model
    # also writes melodies over chords (`compose generate --chords`). A window sees its chords
    # with probability 1 - chord_dropout, else none, so the same model serves plain generation.
    chord_aware: bool = False
    chord_dropout: float = 0.5
    # A checkpoint to start from instead of random weights ('shipped': the shipped model): the same
    # network shape; token rows matched by name, new inputs start silent (composer.train.warmstart).
    init: str | None = None
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
    max_minutes: float | None = 12.0  # wall-clock budget incl. validation, the LR schedule follows it; 0 or None: none
    patience: int = 5  # early stopping: epochs without a better validation loss
    # Data.
    val_fraction: float = 0.1  # share of files held out for validation (5% to 50%, at least one file)
    augment: bool = True  # random transposition per window, pitches kept in range, key token shifted
    max_transpose: int = 5  # largest transposition in semitones (either way)
    seed: int = 0  # file split, initialization, window order, dropout: same seed, same CPU run (0 .. 2**63 - 1)
    device: str = "auto"  # one of DEVICES (auto = cuda, then mps, then cpu) or cuda:N
    workers: int | None = None  # processes tokenizing the corpus (None = CPU count)
    threads: int | None = None  # torch CPU threads (None = torch default)
    log_every: int = 10  # steps between progress callbacks (each reads the loss: a device sync)

    DEVICES: ClassVar[tuple[str, ...]] = ("auto", "cpu", "cuda", "mps")
    LIMITS: ClassVar[dict[str, Limit]] = {
        "layers": _M["num_layers"], "hidden": _M["hidden_size"], "embed": _M["embed_size"], "dropout": _M["dropout"],
        "embed_init": Limit(0), "batch_size": AT_LEAST_1, "seq_len": AT_LEAST_1, "lr": POSITIVE,
        "weight_decay": Limit(0), "warmup_steps": Limit(0), "min_lr_ratio": Limit(0, 1), "clip": POSITIVE,
        "epochs": AT_LEAST_1, "max_minutes": Limit(0), "patience": AT_LEAST_1, "val_fraction": Limit(0.05, 0.5),
        "max_transpose": Limit(0, 12), "workers": AT_LEAST_1, "threads": AT_LEAST_1, "log_every": AT_LEAST_1,
        "chord_dropout": Limit(0, 1),
        "seed": Limit(0, 2**63 - 1),  # torch's seeds: sub-seeds are derived modulo 2**63 (batching.sub_seed)
    }

    def __post_init__(self) -> None:
        check_limits(self, TrainingError)
        if self.max_minutes == 0:
            object.__setattr__(self, "max_minutes", None)  # 0 = no budget, stored as None
        if self.cell not in ModelConfig.CELLS:
            raise TrainingError(f"unknown cell {self.cell!r}: use {', '.join(ModelConfig.CELLS)}")
        for name in ("data", "device"):
            if not isinstance(getattr(self, name), str):
                raise TrainingError(f"{name} must be text, got {getattr(self, name)!r}")
        for name in ("init", "track"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise TrainingError(f"{name} must be text, got {getattr(self, name)!r}")
        if not (self.device in self.DEVICES or self.device.startswith("cuda:")):
            raise TrainingError(f"unknown device {self.device!r}: use {', '.join(self.DEVICES)} or cuda:N")

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, embed_size=self.embed, hidden_size=self.hidden,
                           num_layers=self.layers, dropout=self.dropout, tie_weights=self.tie,
                           copy_hints=self.copy_hints, cell=self.cell, length_aware=self.length_aware,
                           key_aware=self.key_aware, chord_aware=self.chord_aware)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        # runs from before copy hints (or cells, or length or key codes) had none
        d = {"copy_hints": False, "cell": "lstm", "length_aware": False, "key_aware": False, **d}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})
