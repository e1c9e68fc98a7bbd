"""Chord codes: the chord sounding at every token, as an extra input of the network (melody over chords).

Each input token also carries one small int, its *chord code*: the chord sounding at the token's
time (a Bar token: its bar line; a Pos token: its onset; a Pitch or Dur token: its note's onset),
written relative to the key in effect there (``composer.model.keycodes``), so a ii-V-I is the
same code in every key and a transposed training window keeps its codes:

* ``0..120``: ``composer.harmony.vocab.chord_id`` of the chord moved down by the key's tonic
  (0 is "no chord": N.C., or silence in the chords given);
* ``NO_CHORDS`` (121): no chords given (plain generation; the header; a tune trained without
  chords). A model trained with chords on some windows and none on others serves both.

The network reads a chord when it predicts the token *after* the one that carries it: a Pos token
(its onset known) carries the chord there, and the network then draws the pitch over it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from composer.harmony.chords import Chord
from composer.harmony.vocab import CHORD_VOCABULARY, chord_id
from composer.model.keycodes import NO_KEY
from composer.model.keycodes import codes as key_codes
from composer.tokens.tokenizer import BAR, POS, TIMESIG, Vocab

NO_CHORDS = len(CHORD_VOCABULARY)  # 121
CODES = NO_CHORDS + 1

ChordSpan = tuple[int, int, "Chord | None"]  # (start step, duration in steps, chord) on the melody's grid


def token_steps(seq: Sequence[int], vocab: Vocab) -> np.ndarray:
    """The time (grid step) of each token: a Bar its bar line, a Pos its onset, a Pitch or Dur its
    note's onset, a TimeSig/Key after a Bar that bar line; -1 in the header (before the first Bar)."""
    ids = np.asarray(seq, dtype=np.int64)
    kinds, values = vocab.kinds[ids], vocab.values[ids]
    out = np.full(len(ids), -1, dtype=np.int64)
    bar_len, start, now, bars = 0, 0, -1, 0
    for i, (k, v) in enumerate(zip(kinds.tolist(), values.tolist())):
        if k == BAR:
            start = start + bar_len if bars else 0
            bars += 1
            now = start
        elif k == TIMESIG:
            bar_len = v  # the header's meter, or a change from this bar on
        elif k == POS:
            now = start + v
        out[i] = now
    return out


def step_codes(spans: Sequence[ChordSpan], total_steps: int, tonics: np.ndarray) -> np.ndarray:
    """The chord code at each grid step 0..total_steps-1: ``tonics[step]`` is the key's tonic
    there (-1: no key); steps no span covers are "no chord" (0)."""
    out = np.zeros(total_steps, dtype=np.int64)
    for start, duration, chord in spans:
        lo, hi = max(start, 0), min(start + duration, total_steps)
        if hi <= lo or chord is None:
            continue
        tonic = tonics[lo:hi]
        for t in np.unique(tonic).tolist():
            if t >= 0:
                out[lo:hi][tonic == t] = chord_id(chord.transpose(-t))
    out[tonics < 0] = NO_CHORDS
    return out


def codes(seq: Sequence[int], vocab: Vocab, spans: Sequence[ChordSpan] | None) -> np.ndarray:
    """Chord code of each token of one tune as an input (same length as ``seq``); all
    ``NO_CHORDS`` when ``spans`` is None."""
    n = len(seq)
    if spans is None or n == 0:
        return np.full(n, NO_CHORDS, dtype=np.int64)
    steps = token_steps(seq, vocab)
    keys = key_codes(seq, vocab)
    tonic = np.where(keys == NO_KEY, -1, keys % 12)
    total = int(max(steps.max(initial=0), max((s + d for s, d, _ in spans), default=0))) + 1
    tonic_at = np.full(total, -1, dtype=np.int64)
    for i in np.argsort(steps, kind="stable").tolist():  # the key in effect from each token's time on
        if steps[i] >= 0:
            tonic_at[steps[i]:] = tonic[i]
    by_step = step_codes(spans, total, tonic_at)
    return np.where(steps < 0, NO_CHORDS, by_step[np.maximum(steps, 0)])
