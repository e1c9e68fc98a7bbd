"""ModelConfig: the network's shape, each field with its why; the single home of the model defaults.

``Limit`` states a numeric field's allowed values once: the dataclasses check them in
``__post_init__`` and the CLI turns the same table into click ranges.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from composer.errors import ComposerError, ModelError


def _num(x: float | None) -> str:
    """A bound as people read it: 9223372036854775807, not 9.22337e+18; 0.05 as 0.05."""
    return str(int(x)) if isinstance(x, int) or (isinstance(x, float) and x.is_integer()) else f"{x:g}"


@dataclass(frozen=True)
class Limit:
    """Allowed values of a numeric field: ``lo`` to ``hi`` (None: unbounded), each end open or closed."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, x: float) -> bool:
        """Whether ``x`` is allowed."""
        above = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        below = self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)
        return above and below

    def describe(self) -> str:
        """The rule in words: 'positive', 'at least 1', 'in [0, 1)' (whole bounds written in full)."""
        lo, hi = _num(self.lo), _num(self.hi)
        if self.hi is None:
            if self.lo == 0:
                return "positive" if self.lo_open else "at least 0"
            return f"{'above' if self.lo_open else 'at least'} {lo}"
        if self.lo is None:
            return f"{'below' if self.hi_open else 'at most'} {hi}"
        return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"

    def check(self, name: str, value: float | None, error: type[ComposerError]) -> None:
        """Raise ``error`` naming the field and the bad value unless it is an allowed number (None passes)."""
        if value is None:
            return
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise error(f"{name.replace('_', ' ')} must be a number, got {_shown(value)}")
        if not self.holds(value):
            raise error(f"{name.replace('_', ' ')} must be {self.describe()}, got {value}")


def _shown(value: object) -> str:
    """A value of the wrong type as an error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


AT_LEAST_1 = Limit(1)
POSITIVE = Limit(0, lo_open=True)
FRACTION = Limit(0, 1, hi_open=True)  # [0, 1)


def check_limits(obj: object, error: type[ComposerError]) -> None:
    """Check every field of a dataclass that its class's ``LIMITS`` names."""
    for name, lim in type(obj).LIMITS.items():
        lim.check(name, getattr(obj, name), error)


@dataclass(frozen=True)
class ModelConfig:
    # The defaults are the 12-minute default training run on a 2-core CPU (composer.train.config
    # takes its model fields from here).
    vocab_size: int = 512  # number of token ids (len(Tokenizer()): tokenizer version 2; version 1 had 368)
    embed_size: int = 128  # token embedding width
    hidden_size: int = 256  # recurrent state width per layer
    num_layers: int = 2  # stacked recurrent layers
    dropout: float = 0.1  # between LSTM layers, on the embedding and before the output layer (a short run underfits)
    tie_weights: bool = True  # share the embedding and output matrices (a projection bridges sizes)
    # Also read a copy hint per step (composer.model.hints): the melody's own longest earlier
    # match. Tunes repeat whole parts, and a plain LSTM's memory fades after a few bars.
    copy_hints: bool = True
    # The recurrent cell (CELLS): "lstm" gates what it keeps; "gru" merges its gates into two;
    # "rnn" is the plain tanh cell whose memory fades fastest (the lesson `compose lab` measures).
    cell: str = "lstm"
    # Also read a length code per step (composer.model.lengths): bars left to the end and the
    # place in an 8-bar phrase, counted from the end, so the melody can cadence where it ends.
    # False here, as every config written before it existed means; training turns it on
    # (TrainConfig.length_aware). A length-aware model needs the total bars to sample.
    length_aware: bool = False
    # Also read a key code per step (composer.model.keycodes): the key in effect (the header's
    # Key token, or a later key change), transposed with each training window, so the network
    # knows the tonic to end on hundreds of tokens after the Key token. False here, as every
    # config written before it existed means; training turns it on (TrainConfig.key_aware).
    key_aware: bool = False
    # Also read a chord code per step (composer.model.chordcodes): the chord sounding, relative to
    # the key, or "no chords given", so one model writes melodies over chords and without them.
    # False here, as every config written before it existed means.
    chord_aware: bool = False

    # Generous but sane: a checkpoint's config is checked against these before anything is built,
    # so a crafted one cannot make the loader allocate or loop without end. Token ids are int16 in
    # the corpus cache; 16 layers of 8192 is far past what this task needs (the shipped model is 2x384).
    LIMITS: ClassVar[dict[str, Limit]] = {"vocab_size": Limit(1, 32767), "embed_size": Limit(1, 8192),
                                          "hidden_size": Limit(1, 8192), "num_layers": Limit(1, 16),
                                          "dropout": FRACTION}
    _INTS: ClassVar[tuple[str, ...]] = ("vocab_size", "embed_size", "hidden_size", "num_layers")
    _FLAGS: ClassVar[tuple[str, ...]] = ("tie_weights", "copy_hints", "length_aware", "key_aware", "chord_aware")
    CELLS: ClassVar[tuple[str, ...]] = ("lstm", "gru", "rnn")  # a Choice: the CLI's click.Choice reads it

    def __post_init__(self) -> None:
        for name in self._INTS:
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise ModelError(f"{name.replace('_', ' ')} must be a whole number, got {_shown(v)}")
        for name in self._FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ModelError(f"{name.replace('_', ' ')} must be true or false, got {_shown(getattr(self, name))}")
        if self.cell not in self.CELLS:
            raise ModelError(f"cell must be one of {', '.join(self.CELLS)}, got {_shown(self.cell)}")
        check_limits(self, ModelError)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """From a checkpoint's ``model_config``; one written before copy hints existed has none,
        one written before the cell option is an LSTM, one before length codes is not length-aware, one before key codes not key-aware, one before chord codes not chord-aware."""
        if not isinstance(d, dict):
            raise ModelError(f"the model config is a {type(d).__name__}, not a table of sizes")
        names = {f.name for f in fields(cls)}
        d = {"copy_hints": False, "cell": "lstm", "length_aware": False, "key_aware": False, "chord_aware": False, **d}
        return cls(**{k: v for k, v in d.items() if k in names})
