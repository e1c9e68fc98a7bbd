"""Frozen configuration dataclasses, one per stage, each field with its why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from composer.errors import ComposerError


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ComposerError(msg)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 368  # number of token ids (from the tokenizer's Vocab)
    embed_size: int = 256  # token embedding width
    hidden_size: int = 512  # LSTM state width per layer
    num_layers: int = 3  # stacked LSTM layers
    dropout: float = 0.3  # between LSTM layers, on the embedding and before the output layer
    tie_weights: bool = True  # share the embedding and output matrices (a projection bridges sizes)
    copy_hints: bool = False  # also read a copy hint per step (composer.model.hints); off in older checkpoints

    def __post_init__(self) -> None:
        _check(self.vocab_size > 0, f"vocab_size must be positive, got {self.vocab_size}")
        _check(self.embed_size > 0, f"embedding size must be positive, got {self.embed_size}")
        _check(self.hidden_size > 0, f"hidden size must be positive, got {self.hidden_size}")
        _check(self.num_layers > 0, f"layers must be positive, got {self.num_layers}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
