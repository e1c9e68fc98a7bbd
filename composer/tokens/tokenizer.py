"""Melody <-> token ids: a REMI-like, bar- and meter-aware event vocabulary.

A melody becomes::

    BOS TimeSig_6/8 Key_Am  Bar Pos_0 Pitch_69 Dur_6 Pos_6 Pitch_72 Dur_12 ...  Bar ...  EOS

One ``Bar`` token opens every bar (empty bars too), so the number of bars is
exact. From version 2 a ``TimeSig`` and/or ``Key`` token may follow a ``Bar`` to change the
meter or key from that bar on (as REMI+ does): ``Bar TimeSig_1/8 Pos_0 ... Bar TimeSig_6/8``
keeps a short bar before a repeat with its real length. Generation never emits one. Each note is ``Pos_p`` (onset within its bar, in grid steps),
``Pitch_n`` and one or more ``Dur_d`` tokens whose values add up to its
length: a note longer than ``MAX_DUR`` steps is ``Dur_96 Dur_96 ... Dur_r``.
Rests are the gaps between one note's end and the next onset. Tempo is not a
token: it is kept in the MIDI file, not learnt.
"""

from __future__ import annotations

import numpy as np

from composer.errors import TokenizerError
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, notes_from_arrays
from composer.music.meter import TimeSignature
from composer.tokens.vocab import (BAR, DUR, KEY, KIND_NAMES, MAX_DUR, PITCH, POS, SPECIAL, TIMESIG,  # noqa: F401 (re-exported)
                                   TOKENIZER_VERSION, VERSIONS, Vocab, vocab_of)

class Tokenizer:
    """The vocabulary with Melody <-> token ids: the object passed to every part that reads or
    writes tokens (a model's own comes from its checkpoint; ``Tokenizer()`` is this version's)."""

    def __init__(self, vocab: Vocab | None = None) -> None:
        self.vocab = vocab if vocab is not None else vocab_of(TOKENIZER_VERSION)

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
    def for_version(cls, version: int) -> Tokenizer:
        """The tokenizer of ``version`` (1 or 2); TokenizerError for others."""
        return cls(vocab_of(version))

    @classmethod
    def from_tokens(cls, tokens, version: object) -> Tokenizer:
        """The tokenizer a checkpoint was trained with; TokenizerError when this composer cannot read it."""
        if version not in VERSIONS:
            raise TokenizerError(f"tokenizer version {version} (this composer reads versions {', '.join(map(str, VERSIONS))})")
        ours = vocab_of(version)
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
        bars = np.flatnonzero(kinds == BAR)
        # Each bar's length: the meter in effect at the token after its Bar (a change sits there).
        last_ts = np.maximum.accumulate(np.where(kinds == TIMESIG, np.arange(len(ids)), ts[0]))
        lengths = values[last_ts[np.minimum(bars + 1, len(ids) - 1)]]
        bar_start = np.concatenate(([0], np.cumsum(lengths)))
        bar_no = np.cumsum(kinds == BAR) - 1  # bar of each token
        pos = kinds == POS
        starts = bar_start[bar_no[pos]] + values[pos]
        pitches = values[kinds == PITCH]
        note_no = np.cumsum(kinds == PITCH) - 1  # note that each Dur token belongs to
        dur = kinds == DUR
        durations = np.bincount(note_no[dur], weights=values[dur], minlength=len(pitches)).astype(np.int64)
        n = min(len(starts), len(pitches), len(durations))
        return starts[:n], durations[:n], pitches[:n]


def _encode(melody: Melody, v: Vocab) -> list[int]:
    """Token ids of a melody (BOS ... EOS), built with numpy: no per-token Python work."""
    n_bars = melody.n_bars
    changes = [0] * n_bars  # change tokens after each Bar
    after: dict[int, list[int]] = {}
    if melody.meter_changes or melody.key_changes:
        if not v.changes:
            raise TokenizerError(f"tokenizer version {v.version} cannot hold meter or key changes "
                                 f"(this melody changes at bar {min(b for b, _ in melody.meter_changes + melody.key_changes) + 1}): "
                                 "retrain with `compose train` for version 2")
        for b, m in melody.meter_changes:
            after.setdefault(b, []).append(v.timesig_id(m))
        for b, k in melody.key_changes:
            after.setdefault(b, []).append(v.key_id(k))
        for b, toks in after.items():
            changes[b] = len(toks)
    head = [v.bos, v.timesig_id(melody.time_signature), v.key_id(melody.key)]
    extra = np.asarray(changes, dtype=np.int64)
    extra_before = np.concatenate(([0], np.cumsum(extra)))  # change tokens before each bar's Bar
    if not melody.notes:
        out = list(head)
        for b in range(n_bars):
            out += [v.bar] + after.get(b, [])
        return out + [v.eos]
    start, dur, pitch = np.array([(n.start, n.duration, n.pitch) for n in melody.notes], dtype=np.int64).T
    off_range = (pitch < PITCH_MIN) | (pitch > PITCH_MAX)
    if off_range.any():
        v.pitch_id(int(pitch[off_range][0]))  # raises the error naming the pitch
    bar_starts = np.asarray(melody.bar_starts, dtype=np.int64)
    bar = np.searchsorted(bar_starts, start, side="right") - 1
    n_dur = (dur + MAX_DUR - 1) // MAX_DUR  # Dur tokens per note: Dur_96 ... Dur_rest
    size = 2 + n_dur  # Pos Pitch Dur+
    before = np.concatenate(([0], np.cumsum(size)))  # note tokens before each note
    note_at = 3 + (bar + 1) + extra_before[bar + 1] + before[:-1]  # header, Bars and changes up to its bar, earlier notes
    out = np.empty(3 + n_bars + int(extra_before[-1]) + int(before[-1]) + 1, dtype=np.int64)
    out[:3] = head
    out[-1] = v.eos
    bar_at = 3 + np.arange(n_bars) + extra_before[:-1] + before[np.searchsorted(bar, np.arange(n_bars))]
    out[bar_at] = v.bar
    for b, toks in after.items():
        out[bar_at[b] + 1: bar_at[b] + 1 + len(toks)] = toks
    pos0, pitch0, dur0 = v.index["Pos_0"], v.index[f"Pitch_{PITCH_MIN}"], v.index["Dur_1"]
    out[note_at] = pos0 + start - bar_starts[bar]
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
    meter, bar_start, bar_len = ts, 0, 0
    meters: list[tuple[int, TimeSignature]] = []
    keys: list[tuple[int, Key]] = []
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
            bar_start += bar_len
            n_bars += 1
            i += 1
            if i < len(seq) and kinds[seq[i]] == TIMESIG and n_bars > 1:
                new = TimeSignature.parse(v.tokens[seq[i]].split("_", 1)[1])
                if new != meter:
                    meters.append((n_bars - 1, new))
                meter = new
                i += 1
            if i < len(seq) and kinds[seq[i]] == KEY and n_bars > 1:
                new_key = Key.from_index(values[seq[i]])
                if new_key != (keys[-1][1] if keys else key):
                    keys.append((n_bars - 1, new_key))
                i += 1
            bar_len = meter.bar_steps
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
            start = bar_start + pos
            if start < end:
                raise TokenizerError(f"note at step {start} starts before the previous note ends ({end})")
            starts.append(start)
            durs.append(dur)
            pitches.append(pitch)
            end = start + dur
        else:
            raise TokenizerError(f"unexpected token {v.tokens[t]} at position {i}")
    n_bars = max(n_bars, 1)
    if end > bar_start + bar_len:  # a last note sounding past the bars written: whole bars of the last meter
        n_bars += -(-(end - bar_start - bar_len) // meter.bar_steps)
    return Melody(notes_from_arrays(starts, durs, pitches), ts, key, n_bars, tempo=tempo, title=title,
                  meter_changes=tuple(meters), key_changes=tuple(keys))


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
