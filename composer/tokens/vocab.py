"""The token vocabulary: each version's token strings, their kinds and values, and id lookups
(``Vocab.build(version)``; the tokens themselves are described in ``composer.tokens.tokenizer``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from composer.errors import TokenizerError
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, STEPS_PER_QUARTER
from composer.music.meter import MAX_BAR_STEPS, V1_DENOMINATORS, V1_MAX_BAR_STEPS, TimeSignature, supported_meters

TOKENIZER_VERSION = 2  # 2: meter/key changes after Bar, bars up to 16 quarters (4/1, 6/2), n/1 and n/32 meters
VERSIONS = (1, 2)  # versions this composer reads (1: the shipped models before meter changes)
MAX_DUR = 8 * STEPS_PER_QUARTER  # longest single Dur token; longer notes chain tokens

# Token kinds, as stored in ``Vocab.kinds``.
SPECIAL, TIMESIG, KEY, BAR, POS, PITCH, DUR = range(7)
KIND_NAMES = ("Special", "TimeSig", "Key", "Bar", "Pos", "Pitch", "Dur")


@dataclass(frozen=True)
class Vocab:
    """The token vocabulary: strings, their kinds and values, and id lookups."""

    tokens: tuple[str, ...]
    version: int = TOKENIZER_VERSION

    @classmethod
    def build(cls, version: int = TOKENIZER_VERSION) -> Vocab:
        if version not in VERSIONS:
            raise TokenizerError(f"tokenizer version {version} (this composer reads versions {', '.join(map(str, VERSIONS))})")
        longest, meters = (V1_MAX_BAR_STEPS, supported_meters(V1_MAX_BAR_STEPS, V1_DENOMINATORS)) if version == 1 \
            else (MAX_BAR_STEPS, supported_meters())
        toks = ["PAD", "BOS", "EOS"]
        toks += [f"TimeSig_{ts}" for ts in meters]
        toks += [f"Key_{Key.from_index(i).name}" for i in range(24)]
        toks += ["Bar"]
        toks += [f"Pos_{p}" for p in range(longest)]
        toks += [f"Pitch_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
        toks += [f"Dur_{d}" for d in range(1, MAX_DUR + 1)]
        return cls(tuple(toks), version)

    @property
    def max_bar_steps(self) -> int:
        """The longest bar this vocabulary holds (one Pos token per step)."""
        return int(np.count_nonzero(self.kinds == POS))

    @property
    def changes(self) -> bool:
        """Whether sequences may change meter or key after a Bar token (version 2 on)."""
        return self.version >= 2

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    @cached_property
    def kinds(self) -> np.ndarray:
        """Kind of each id (SPECIAL, TIMESIG, ...), shape (V,)."""
        kinds = np.empty(len(self), dtype=np.int64)
        for i, t in enumerate(self.tokens):
            head = t.split("_")[0]
            kinds[i] = KIND_NAMES.index(head) if head in KIND_NAMES else SPECIAL
        return kinds

    @cached_property
    def values(self) -> np.ndarray:
        """Numeric value of each id (position, pitch, duration, key index, bar steps), else -1."""
        vals = np.full(len(self), -1, dtype=np.int64)
        for i, t in enumerate(self.tokens):
            kind, _, v = t.partition("_")
            if kind in ("Pos", "Pitch", "Dur"):
                vals[i] = int(v)
            elif kind == "Key":
                vals[i] = Key.parse(v).index
            elif kind == "TimeSig":
                vals[i] = TimeSignature.parse(v).bar_steps
        return vals

    @cached_property
    def kind_list(self) -> list[int]:
        """``kinds`` as a Python list: per-token indexing of a list is several times faster."""
        return self.kinds.tolist()

    @cached_property
    def value_list(self) -> list[int]:
        return self.values.tolist()

    def id(self, token: str) -> int:
        try:
            return self.index[token]
        except KeyError:
            raise TokenizerError(f"token {token!r} is not in the vocabulary") from None

    pad = property(lambda self: self.index["PAD"])
    bos = property(lambda self: self.index["BOS"])
    eos = property(lambda self: self.index["EOS"])
    bar = property(lambda self: self.index["Bar"])

    def timesig_id(self, ts: TimeSignature) -> int:
        tok = f"TimeSig_{ts}"
        if tok not in self.index:
            raise TokenizerError(f"time signature {ts} is not in tokenizer version {self.version}'s vocabulary "
                                 f"(bars up to {self.max_bar_steps // STEPS_PER_QUARTER} quarters"
                                 + ("; retrain with `compose train` for bars up to 16 quarters)" if self.version < TOKENIZER_VERSION else ")"))
        return self.index[tok]

    def key_id(self, key: Key) -> int:
        return self.index[f"Key_{key.name}"]

    def pitch_id(self, pitch: int) -> int:
        if not PITCH_MIN <= pitch <= PITCH_MAX:
            raise TokenizerError(f"pitch {pitch} is outside the range {PITCH_MIN}-{PITCH_MAX}")
        return self.index[f"Pitch_{pitch}"]

    def first(self, kind: int) -> int:
        """Lowest id of a kind (ids of one kind are contiguous)."""
        return int(np.flatnonzero(self.kinds == kind)[0])

    def transpose_table(self, semitones: int) -> np.ndarray:
        """Id -> id map shifting pitch and key tokens; pitches pushed out of range map to -1."""
        table = np.arange(len(self))
        pitch0, key0 = self.first(PITCH), self.first(KEY)
        p = np.flatnonzero(self.kinds == PITCH)
        shifted = self.values[p] + semitones
        table[p] = np.where((shifted >= PITCH_MIN) & (shifted <= PITCH_MAX), pitch0 + shifted - PITCH_MIN, -1)
        k = np.flatnonzero(self.kinds == KEY)
        kv = self.values[k]
        table[k] = key0 + (kv % 12 + semitones) % 12 + 12 * (kv >= 12)
        return table

    def to_json(self) -> str:
        return json.dumps({"tokenizer_version": self.version, "tokens": list(self.tokens)})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            raise TokenizerError("vocabulary is not valid JSON") from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or len(set(tokens)) != len(tokens):
            raise TokenizerError("vocabulary JSON has no valid 'tokens' list")
        if data.get("tokenizer_version") not in VERSIONS:
            raise TokenizerError(
                f"vocabulary is from tokenizer version {data.get('tokenizer_version')}, "
                f"this composer reads versions {', '.join(map(str, VERSIONS))}"
            )
        return cls(tuple(tokens), data["tokenizer_version"])


@lru_cache(maxsize=None)
def vocab_of(version: int) -> Vocab:
    """The (cached) vocabulary of a tokenizer version."""
    return Vocab.build(version)
