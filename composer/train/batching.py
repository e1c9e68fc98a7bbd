"""Flat token tensors -> random training windows, transposed on the fly.

All melodies of the training split are concatenated into one flat tensor
(``BOS ... EOS BOS ... EOS``). An epoch is a shuffled set of windows that tile
the tensor from a random phase, so every token is seen once per epoch. The
offsets and transpositions of a whole epoch are drawn up front from a generator
seeded by (seed, epoch): the data order depends on nothing else, which makes
``--resume`` and DDP sharding exact (rank r takes column r of every step).
Building a batch is a few tensor ops: no Python work per window. Copy hints
(``composer.model.hints``), when given, are a second flat tensor cut and transposed with
the tokens; length codes (``composer.model.lengths``) a third, cut alike and never transposed;
key codes (``composer.model.keycodes``) a fourth, cut alike and shifted by each window's own
transposition (the key moves with the pitches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch

from composer.errors import TrainingError
from composer.model import chordcodes, keycodes
from composer.model.hints import split_hints
from composer.music.melody import PITCH_MAX, PITCH_MIN
from composer.tokens.tokenizer import PITCH, Vocab

_FAR = 10_000  # stands in for "no pitch" in min/max reductions
MIN_WINDOW = 8  # fewest tokens per window worth training on (a melody of one note is 8 tokens)


def window_length(n_tokens: int, seq_len: int) -> int:
    """Tokens per window for ``n_tokens`` training tokens: ``seq_len``, or shorter when the corpus
    cannot fill one window of ``seq_len + 1`` tokens (small folders of one's own melodies)."""
    return min(seq_len, n_tokens - 2)


def sub_seed(seed: int, factor: int, offset: int) -> int:
    """A seed derived from ``seed`` that torch accepts (below 2**63) for any ``seed`` up to 2**63 - 1."""
    return (seed * factor + offset) % 2**63


def flatten(seqs: Sequence[np.ndarray]) -> torch.Tensor:
    """One int64 tensor holding every sequence back to back."""
    if not seqs:
        return torch.zeros(0, dtype=torch.int64)
    return torch.from_numpy(np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]))


class Transposer:
    """Shifts every window by its own random number of semitones, keeping its pitches in range."""

    def __init__(self, max_shift: int, vocab: Vocab, device: torch.device | str = "cpu") -> None:
        self.max_shift, self.size = max_shift, len(vocab)
        # tables[s + max_shift] maps ids shifted by s semitones, shape (2K+1, V).
        tables = np.stack([np.maximum(vocab.transpose_table(s), 0) for s in range(-max_shift, max_shift + 1)])
        self.tables = torch.from_numpy(tables).to(device)
        self.pitch0 = vocab.first(PITCH)
        # Pitch value of each id (-1 for other kinds) for the per-window range.
        self.pitch_of = torch.from_numpy(np.where(vocab.kinds == PITCH, vocab.values, -1)).to(device)

    def __call__(self, windows: torch.Tensor, u: torch.Tensor,
                 hints: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """windows (B, T) ids, u (B,) uniform [0, 1) draws -> transposed windows (B, T); with
        ``hints`` (B, T) also the hints shifted alike (their tokens; lengths stay)."""
        k = self.max_shift
        if k == 0:
            return windows if hints is None else (windows, hints)
        out, moved = self.move(windows, self.shifts(windows, u), hints)
        return out if hints is None else (out, moved)

    def move(self, windows: torch.Tensor, shift: torch.Tensor,
             hints: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(windows, hints or None) transposed by ``shift`` (B,) semitones, each within +-max_shift."""
        row = (shift + self.max_shift).unsqueeze(1)  # (B, 1): the table of each window
        out = self.tables[row, windows]
        if hints is None:
            return out, None
        bucket, token = split_hints(hints, self.size)
        return out, bucket * self.size + self.tables[row, token]

    def shifts(self, windows: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """(B,) semitones per window: uniform over the shifts that keep its pitches in range."""
        k = self.max_shift
        p = self.pitch_of[windows]  # (B, T), -1 where not a pitch
        is_pitch = p >= 0
        lo_p = torch.where(is_pitch, p, _FAR).amin(dim=1)  # (B,)
        hi_p = torch.where(is_pitch, p, -_FAR).amax(dim=1)
        lo = torch.clamp(PITCH_MIN - lo_p, min=-k, max=0)  # lowest allowed shift
        hi = torch.clamp(PITCH_MAX - hi_p, min=0, max=k)
        return lo + (u * (hi - lo + 1).to(u.dtype)).long().clamp(max=hi - lo)  # (B,) uniform in [lo, hi]


@dataclass
class EpochPlan:
    """The windows of one epoch: ``offsets`` and ``draws`` of shape (steps, world, batch)."""

    offsets: torch.Tensor  # start of each window in the flat tensor
    draws: torch.Tensor  # uniform [0, 1) per window, picks its transposition
    no_chords: torch.Tensor | None = None  # per window: True = trained without its chords

    @property
    def steps(self) -> int:
        return self.offsets.shape[0]


class Batch(NamedTuple):
    """One step's windows, each (batch, seq_len) int64 on the device."""

    inputs: torch.Tensor
    targets: torch.Tensor
    hints: torch.Tensor | None  # the inputs' copy hints, or None
    lengths: torch.Tensor | None  # the inputs' length codes, or None
    keys: torch.Tensor | None  # the inputs' key codes (transposed with the window), or None
    chords: torch.Tensor | None = None  # the inputs' chord codes (relative to the key: never transposed), or None


class WindowSampler:
    """Random windows of ``seq_len + 1`` tokens from a flat tensor, sharded across ranks."""

    def __init__(self, tokens: torch.Tensor, seq_len: int, batch_size: int, *, seed: int = 0,
                 max_shift: int = 0, world: int = 1, rank: int = 0, device: torch.device | str = "cpu",
                 hints: torch.Tensor | None = None, vocab: Vocab | None = None,
                 lengths: torch.Tensor | None = None, keys: torch.Tensor | None = None,
                 chords: torch.Tensor | None = None, chord_dropout: float = 0.0) -> None:
        """``chords``: each token's chord code; a window sees them with probability 1 - ``chord_dropout``,
        else "no chords given" throughout (composer.model.chordcodes)."""
        if max_shift > 0 and vocab is None:
            raise TrainingError("transposing windows needs the vocabulary (vocab=tokenizer.vocab)")
        if tokens.numel() < seq_len + 2:
            raise TrainingError(f"{tokens.numel()} tokens cannot fill one window of {seq_len + 1}: lower --seq-len")
        if hints is not None and hints.shape != tokens.shape:
            raise TrainingError(f"{hints.numel()} hints for {tokens.numel()} tokens: compute one hint per token")
        if lengths is not None and lengths.shape != tokens.shape:
            raise TrainingError(f"{lengths.numel()} length codes for {tokens.numel()} tokens: compute one code per token")
        if keys is not None and keys.shape != tokens.shape:
            raise TrainingError(f"{keys.numel()} key codes for {tokens.numel()} tokens: compute one code per token")
        self.tokens = tokens.to(device)
        self.hints = hints.to(device) if hints is not None else None
        self.lengths = lengths.to(device) if lengths is not None else None
        self.keys = keys.to(device) if keys is not None else None
        if chords is not None and chords.shape != tokens.shape:
            raise TrainingError(f"{chords.numel()} chord codes for {tokens.numel()} tokens: compute one code per token")
        self.chords = chords.to(device) if chords is not None else None
        self.chord_dropout = chord_dropout
        self.seq_len, self.batch_size = seq_len, batch_size
        self.seed, self.world, self.rank = seed, world, rank
        self.device = torch.device(device)
        self.transposer = Transposer(max_shift, vocab, device=device) if max_shift > 0 else None
        self._arange = torch.arange(seq_len + 1, device=device)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (at least 1); each step uses ``world * batch_size`` windows."""
        n_windows = (self.tokens.numel() - 1) // self.seq_len
        return max(1, n_windows // (self.world * self.batch_size))

    def plan(self, epoch: int) -> EpochPlan:
        """The same plan on every rank and after a resume: it depends on (seed, epoch) only."""
        g = torch.Generator().manual_seed(sub_seed(self.seed, 1_000_003, epoch))
        n, t = self.tokens.numel(), self.seq_len
        last = n - t - 1  # largest valid offset
        phase = int(torch.randint(0, min(t, last + 1), (1,), generator=g))  # under two windows: a phase that fits
        starts = torch.arange(phase, last + 1, t)
        need = self.steps_per_epoch * self.world * self.batch_size
        # Tile the tokens once in random order; top up with random offsets when the corpus is
        # smaller than one step (tiny corpora, many ranks).
        order = starts[torch.randperm(starts.numel(), generator=g)]
        if order.numel() < need:
            extra = torch.randint(0, last + 1, (need - order.numel(),), generator=g)
            order = torch.cat([order, extra])
        offsets = order[:need].view(self.steps_per_epoch, self.world, self.batch_size)
        draws = torch.rand(offsets.shape, generator=g)
        drop = torch.rand(offsets.shape, generator=g) < self.chord_dropout if self.chords is not None else None
        return EpochPlan(offsets, draws, drop)

    def batch(self, plan: EpochPlan, step: int) -> Batch:
        """The windows of this rank at ``step``: inputs, targets, and the inputs' hints, length
        and key codes (None when not given)."""
        off = plan.offsets[step, self.rank].to(self.device, non_blocking=True)
        at = off.unsqueeze(1) + self._arange
        win = self.tokens[at]  # (B, T+1)
        hint = self.hints[at[:, :-1]] if self.hints is not None else None
        code = self.lengths[at[:, :-1]] if self.lengths is not None else None  # bars left: no pitch in them
        key = self.keys[at[:, :-1]] if self.keys is not None else None
        chord = self.chords[at[:, :-1]] if self.chords is not None else None
        if chord is not None and plan.no_chords is not None:
            off_rows = plan.no_chords[step, self.rank].to(self.device).unsqueeze(1)
            chord = chord.masked_fill(off_rows, chordcodes.NO_CHORDS)
        if self.transposer is not None:
            u = plan.draws[step, self.rank].to(self.device, non_blocking=True)
            shift = self.transposer.shifts(win, u)  # (B,) semitones
            win, hint = self.transposer.move(win, shift, hint)
            if key is not None:
                key = keycodes.transpose(key, shift.unsqueeze(1))
        return Batch(win[:, :-1], win[:, 1:], hint, code, key, chord)
