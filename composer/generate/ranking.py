"""How a batch of melodies is ranked: a score that does not reward repeating more than real
tunes do, and degenerate loops never first.

The model's likelihood alone (bits per note) ranks the most repetitive melodies first: a
copy-hint model predicts a repeat almost for free, so a melody that loops one bar for eight
bars is the most "likely" one of its batch. The rank score is therefore

    score = bits/note + REPETITION_BITS * max(0, repetition - corpus_high)

where ``repetition`` is ``composer.music.bars.bar_repetition`` (the share of bars repeating an
earlier bar's rhythm and contour) of the new bars and ``corpus_high`` the 95th percentile of
real tunes of that length (``CORPUS_REPETITION``). Within the corpus's range repetition costs
nothing; past it, each extra share of repeated bars costs back what it buys on average.
Degenerate loops (``composer.music.bars.degenerate_loop``) that the form did not ask for
are resampled by ``Composer.generate`` and any left rank after every other melody.

No bonus for ending on the tonic: the model is being taught to end (cadence) by itself, and a
tonic bonus would pick melodies by one note rather than by the model's judgement of the whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from composer.music.bars import LOOP_BARS, LOOP_PERIODS, bar_repetition, degenerate_loop, loop_run
from composer.music.melody import Melody

# bar_repetition of real tunes: (5th, 95th percentile) of the first N bars of every tune of
# midi_corpus/ at least N bars long (2,248 tunes read with the shipped model's tokenizer;
# 2,248 / 2,247 / 1,988 / 812 / 36 openings), measured with composer.music.bars.bar_repetition
# (medians 0, 0.25, 0.44, 0.63, 0.69). Longer tunes repeat more: a reel's A part comes twice.
CORPUS_REPETITION = {4: (0.0, 0.25), 8: (0.0, 0.5), 16: (0.062, 0.688), 32: (0.281, 0.75), 64: (0.492, 0.781)}
# Bits/note per unit of repetition share past the corpus's high end: the shipped model's
# bits/note fall 2.8 per unit share of repeated bars (least squares over 192 melodies of 16
# bars, three `--num 64` batches; 3.15 bits/note at no repetition), so this cancels the gain.
REPETITION_BITS = 2.8


def repetition_range(bars: int, form_share: float = 0.0) -> tuple[float, float]:
    """The corpus's usual bar-repetition range for ``bars`` bars (interpolated on log2 of the
    length, clamped to the measured lengths); a form that itself repeats ``form_share`` of the
    bars raises the top: its repeats, plus corpus-like repetition in the bars left fresh."""
    sizes = sorted(CORPUS_REPETITION)
    x = min(max(math.log2(max(bars, 1)), math.log2(sizes[0])), math.log2(sizes[-1]))
    i = max(j for j, s in enumerate(sizes) if math.log2(s) <= x)
    j = min(i + 1, len(sizes) - 1)
    lo0, hi0 = CORPUS_REPETITION[sizes[i]]
    lo1, hi1 = CORPUS_REPETITION[sizes[j]]
    w = 0.0 if i == j else (x - math.log2(sizes[i])) / (math.log2(sizes[j]) - math.log2(sizes[i]))
    lo, hi = lo0 + w * (lo1 - lo0), hi0 + w * (hi1 - hi0)
    if form_share > 0:
        lo, hi = max(lo, form_share), max(hi, form_share + (1 - form_share) * hi)
    return round(lo, 3), round(hi, 3)


def form_repeats(form: str, section_bars: int, vary: bool) -> tuple[float, bool]:
    """(share of bars the form copies from an earlier section, whether the form itself asks for
    a degenerate loop): 'AAAA' of 2-bar sections is one 2-bar pattern for 8 bars, so loops are
    what was asked for; 'AABB' of 4-bar sections is not (a loop there is the model's)."""
    if not form or section_bars < 1:
        return 0.0, False
    labels, seen, copied = [], set(), 0  # a bar's label: equal labels are the same bar
    for s, letter in enumerate(form.upper()):
        for b in range(section_bars):
            varied = letter in seen and vary and b == section_bars - 1
            labels.append(("varied", s) if varied else (letter, b))
            copied += letter in seen and not varied
        seen.add(letter)
    _, length, _ = loop_run(labels, LOOP_PERIODS)
    return copied / len(labels), length >= LOOP_BARS


@dataclass(frozen=True)
class Standing:
    """Why a melody ranks where it does."""

    score: float  # bits/note plus the repetition penalty; lower ranks first
    bits_per_note: float
    repetition: float  # share of (new) bars repeating an earlier bar's rhythm and contour
    usual: tuple[float, float]  # the corpus's range of that share for this length (and form)
    loop: bool  # a degenerate loop the form did not ask for: ranked after every other melody

    @property
    def penalty(self) -> float:
        """Bits/note added for repeating more than real tunes do."""
        return self.score - self.bits_per_note


def standing(melody: Melody, bits_per_note: float, form_share: float = 0.0, loop_asked: bool = False) -> Standing:
    """The standing of one melody (its new bars only, after a prime)."""
    rep = bar_repetition(melody)
    usual = repetition_range(melody.n_bars, form_share)
    penalty = REPETITION_BITS * max(0.0, rep - usual[1])
    loop = not loop_asked and degenerate_loop(melody) is not None
    return Standing(bits_per_note + penalty, bits_per_note, rep, usual, loop)


def rank_order(standings: Sequence[Standing]) -> list[int]:
    """Indices best first: melodies that are not loops by score, then loops by score."""
    return sorted(range(len(standings)), key=lambda i: (standings[i].loop, standings[i].score))


def flaws(melodies: Sequence[Melody], index, max_copy: int, loops_asked: bool = False) -> list[tuple[bool, bool, int, int | None]]:
    """Per melody (its new bars): (copies more than ``max_copy`` notes of a training tune, is a
    degenerate loop the form did not ask for, the copy's length when too long else 0, the longest
    copy or None without an ``index``). The first three order draws: a smaller tuple is better."""
    copies = [int(c) for c in index.longest_copies(list(melodies))] if index is not None else [None] * len(melodies)
    out = []
    for m, c in zip(melodies, copies):
        copied = c is not None and c > max_copy
        out.append((copied, not loops_asked and degenerate_loop(m) is not None, c if copied else 0, c))
    return out
