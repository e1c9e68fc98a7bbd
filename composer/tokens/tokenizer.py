"""Melody <-> token ids: a REMI-like, bar- and meter-aware event vocabulary.

A melody becomes::

    BOS TimeSig_6/8 Key_Am  Bar Pos_0 Pitch_69 Dur_6 Pos_6 Pitch_72 Dur_12 ...  Bar ...  EOS

One ``Bar`` token opens every bar (empty bars too), so the number of bars is
exact. Each note is ``Pos_p`` (onset within its bar, in grid steps),
``Pitch_n`` and one or more ``Dur_d`` tokens whose values add up to its
length: a note longer than ``MAX_DUR`` steps is ``Dur_96 Dur_96 ... Dur_r``.
Rests are the gaps between one note's end and the next onset. Tempo is not a
token: it is kept in the MIDI file, not learnt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from composer.errors import TokenizerError
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, STEPS_PER_QUARTER, Melody, notes_from_arrays
from composer.music.meter import MAX_BAR_STEPS, TimeSignature, supported_meters

TOKENIZER_VERSION = 1
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
    def build(cls) -> Vocab:
        toks = ["PAD", "BOS", "EOS"]
        toks += [f"TimeSig_{ts}" for ts in supported_meters()]
        toks += [f"Key_{Key.from_index(i).name}" for i in range(24)]
        toks += ["Bar"]
        toks += [f"Pos_{p}" for p in range(MAX_BAR_STEPS)]
        toks += [f"Pitch_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
        toks += [f"Dur_{d}" for d in range(1, MAX_DUR + 1)]
        return cls(tuple(toks))

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
            raise TokenizerError(f"time signature {ts} is not supported (bars longer than {MAX_BAR_STEPS // STEPS_PER_QUARTER} quarters)")
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
        if data.get("tokenizer_version") != TOKENIZER_VERSION:
            raise TokenizerError(
                f"vocabulary is from tokenizer version {data.get('tokenizer_version')}, "
                f"this composer uses version {TOKENIZER_VERSION}"
            )
        return cls(tuple(tokens), data["tokenizer_version"])


class Tokenizer:
    """The vocabulary with Melody <-> token ids: the object passed to every part that reads or
    writes tokens (a model's own comes from its checkpoint; ``Tokenizer()`` is this version's)."""

    def __init__(self, vocab: Vocab | None = None) -> None:
        self.vocab = vocab if vocab is not None else _default_vocab()

    @property
    def version(self) -> int:
        return self.vocab.version

    def __len__(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and other.vocab == self.vocab

    def __hash__(self) -> int:
        return hash(self.vocab)

    @classmethod
    def from_tokens(cls, tokens, version: object) -> Tokenizer:
        """The tokenizer a checkpoint was trained with; TokenizerError when this composer cannot read it."""
        ours = _default_vocab()
        if version != TOKENIZER_VERSION:
            raise TokenizerError(f"tokenizer version {version} (this composer reads version {TOKENIZER_VERSION})")
        if tuple(tokens) != ours.tokens:
            raise TokenizerError(f"a different vocabulary under tokenizer version {version} "
                                 f"({len(tuple(tokens))} tokens; this composer's has {len(ours.tokens)})")
        return cls(ours)

    def encode(self, melody: Melody) -> list[int]:
        """Token ids of a melody (BOS ... EOS)."""
        return _encode(melody, self.vocab)

    def decode(self, ids, tempo: float = 120.0, title: str = "") -> Melody:
        """Melody from token ids; TokenizerError when they break the grammar."""
        return _decode(ids, self.vocab, tempo, title)

    def count_notes(self, ids) -> int:
        """Number of notes in a token sequence (its Pitch tokens)."""
        return int(np.count_nonzero(self.vocab.kinds[_checked(ids, self.vocab)] == PITCH))

    def note_arrays(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, durations, pitches) of a well-formed sequence as int64 arrays, in numpy
        (no Melody objects: indexing thousands of training tunes stays fast)."""
        v = self.vocab
        ids = np.asarray(ids, dtype=np.int64)
        kinds, values = v.kinds[ids], v.values[ids]
        ts = np.flatnonzero(kinds == TIMESIG)
        if len(ts) == 0:
            raise TokenizerError("token sequence has no TimeSig token")
        bar_steps = int(values[ts[0]])
        bar_no = np.cumsum(kinds == BAR) - 1  # bar of each token
        pos = kinds == POS
        starts = bar_no[pos] * bar_steps + values[pos]
        pitches = values[kinds == PITCH]
        note_no = np.cumsum(kinds == PITCH) - 1  # note that each Dur token belongs to
        dur = kinds == DUR
        durations = np.bincount(note_no[dur], weights=values[dur], minlength=len(pitches)).astype(np.int64)
        n = min(len(starts), len(pitches), len(durations))
        return starts[:n], durations[:n], pitches[:n]


@lru_cache(maxsize=1)
def _default_vocab() -> Vocab:
    return Vocab.build()


def _encode(melody: Melody, v: Vocab) -> list[int]:
    """Token ids of a melody (BOS ... EOS), built with numpy: no per-token Python work."""
    bar_len, n_bars = melody.bar_steps, melody.n_bars
    head = [v.bos, v.timesig_id(melody.time_signature), v.key_id(melody.key)]
    if not melody.notes:
        return head + [v.bar] * n_bars + [v.eos]
    start, dur, pitch = np.array([(n.start, n.duration, n.pitch) for n in melody.notes], dtype=np.int64).T
    off_range = (pitch < PITCH_MIN) | (pitch > PITCH_MAX)
    if off_range.any():
        v.pitch_id(int(pitch[off_range][0]))  # raises the error naming the pitch
    bar = start // bar_len
    n_dur = (dur + MAX_DUR - 1) // MAX_DUR  # Dur tokens per note: Dur_96 ... Dur_rest
    size = 2 + n_dur  # Pos Pitch Dur+
    before = np.concatenate(([0], np.cumsum(size)))  # note tokens before each note
    note_at = 3 + (bar + 1) + before[:-1]  # header, Bar tokens up to its own bar, earlier notes
    out = np.empty(3 + n_bars + int(before[-1]) + 1, dtype=np.int64)
    out[:3] = head
    out[-1] = v.eos
    out[3 + np.arange(n_bars) + before[np.searchsorted(bar, np.arange(n_bars))]] = v.bar
    pos0, pitch0, dur0 = v.index["Pos_0"], v.index[f"Pitch_{PITCH_MIN}"], v.index["Dur_1"]
    out[note_at] = pos0 + start - bar * bar_len
    out[note_at + 1] = pitch0 + pitch - PITCH_MIN
    out[note_at + 1 + n_dur] = dur0 + dur - (n_dur - 1) * MAX_DUR - 1
    for i in np.flatnonzero(n_dur > 1).tolist():  # notes longer than MAX_DUR: rare
        out[note_at[i] + 2: note_at[i] + 1 + n_dur[i]] = dur0 + MAX_DUR - 1
    return out.tolist()


def _decode(ids, v: Vocab, tempo: float = 120.0, title: str = "") -> Melody:
    """Melody from token ids; raises TokenizerError when they break the grammar.

    A missing EOS is accepted (a truncated sequence decodes to its complete bars)."""
    kinds, values = v.kind_list, v.value_list
    seq = _checked(ids, v)
    if len(seq) < 3 or seq[0] != v.bos or kinds[seq[1]] != TIMESIG or kinds[seq[2]] != KEY:
        raise TokenizerError("token sequence must start with BOS, a TimeSig and a Key token")
    ts = TimeSignature.parse(v.tokens[seq[1]].split("_", 1)[1])
    key = Key.from_index(values[seq[2]])
    bar_len = ts.bar_steps
    starts: list[int] = []
    durs: list[int] = []
    pitches: list[int] = []
    n_bars, i, end, eos = 0, 3, 0, v.eos
    while i < len(seq):
        t = seq[i]
        kind = kinds[t]
        if t == eos:
            break
        if kind == BAR:
            n_bars += 1
            i += 1
        elif kind == POS and n_bars > 0:
            pos = values[t]
            if pos >= bar_len or i + 2 >= len(seq) or kinds[seq[i + 1]] != PITCH or kinds[seq[i + 2]] != DUR:
                raise TokenizerError(f"bad note at token {i}: expected Pos<{bar_len} Pitch Dur")
            pitch = values[seq[i + 1]]
            i += 2
            dur = 0
            while i < len(seq) and kinds[seq[i]] == DUR:
                last = values[seq[i]]
                dur += last
                i += 1
                if last != MAX_DUR:
                    break
            start = (n_bars - 1) * bar_len + pos
            if start < end:
                raise TokenizerError(f"note at step {start} starts before the previous note ends ({end})")
            starts.append(start)
            durs.append(dur)
            pitches.append(pitch)
            end = start + dur
        else:
            raise TokenizerError(f"unexpected token {v.tokens[t]} at position {i}")
    n_bars = max(n_bars, 1, -(-end // bar_len))
    return Melody(notes_from_arrays(starts, durs, pitches), ts, key, n_bars, tempo=tempo, title=title)


def _checked(ids, vocab: Vocab) -> list[int]:
    """The ids as ints, refusing any outside the vocabulary (numpy would wrap negative ones)."""
    try:
        seq = np.asarray(ids, dtype=np.int64).reshape(-1).tolist()
    except (TypeError, ValueError, OverflowError):
        raise TokenizerError("token ids must be integers") from None
    if seq and not 0 <= min(seq) <= max(seq) < len(vocab):
        bad = next(t for t in seq if not 0 <= t < len(vocab))
        raise TokenizerError(f"token id {bad} is outside the vocabulary (0-{len(vocab) - 1})")
    return seq
