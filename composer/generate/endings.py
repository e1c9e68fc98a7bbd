"""Ending search: a melody's last bar redrawn until it cadences, the most likely cadence kept.

A length-aware model knows the last bar is the last (``composer.model.lengths``), and taught the
real ending of a tune it puts the tonic first most of the time; but one free draw of the last bar
often keeps running in short notes or stops on the 2nd or 5th degree. So the last bar is drawn
several times from the model's own state at its bar line, and a melody whose own draw does not
*cadence* takes the most likely draw that does. Every note is still the model's; the search only
chooses among its endings, as ranking chooses among its melodies. Two ways, one rule:

* ``end_on_cadence`` (the default, free path): the sampler stops at every melody's last bar line
  and is forked (``composer.generate.fork``), so each last bar is drawn once freely and ``tries``
  times guided, all in one batch, nothing fed again;
* ``better_endings`` (forms and ``--form corpus`` plans, whose last bar the plan may fix): after the
  batch, each melody that does not cadence is fed back in one forward pass and its last bar
  redrawn ``tries`` times.

A last bar **cadences** (``cadences``) when its last note

1. is the tonic of the melody's last key,
2. starts on a beat of the bar (``TimeSignature.beat_steps``: a quarter in 4/4, a dotted quarter
   in 6/8), and
3. lasts at least a quarter note (or the whole bar, in a bar shorter than that).

While a last bar is redrawn, a ``CadenceGuide`` keeps each draw able to cadence: no note starts
after the last beat a held note fits on, a note on that beat is the tonic, a note that cannot
cadence ends by that beat, and the bar closes only after a cadence. The model still chooses
every note within that (rhythm, approach, register), and of the redraws the most likely is kept.

Only bars the plan leaves free are redrawn: not a repeated section's copy, nor a bar that a
``--form corpus`` plan copies or echoes (their endings are the section's or the plan's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from composer.data.plans import FRESH
from composer.generate.draw import Generated, SamplingConfig
from composer.music.melody import STEPS_PER_QUARTER, Melody
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import DUR, PITCH, POS, Tokenizer

TRIES = 12  # redraws of a last bar that does not cadence


def cadences(melody: Melody, target: int | None = None) -> bool:
    """True when the melody's last note is the tonic of its last key (or pitch class ``target``:
    over given chords, the last chord's root), on a beat, held a quarter or more."""
    if not melody.notes:
        return False
    last = melody.notes[-1]
    bar = melody.bar_of(last.start)
    meter = melody.meter_at(bar)
    into = last.start - melody.bar_starts[bar]
    held = min(STEPS_PER_QUARTER, melody.bar_starts[bar + 1] - melody.bar_starts[bar])
    tonic = melody.last_key.tonic if target is None else target
    return ((last.pitch - tonic) % 12 == 0 and into % meter.beat_steps == 0
            and last.duration >= held)


class CadenceGuide:
    """Narrows the grammar's mask while every row writes one last bar (the Follower interface:
    ``constrain`` then ``advance``), so that the bar can only close on a cadence.

    ``last`` is the last beat from which a note a quarter long still fits in the bar. A note may
    start no later; one that starts there must be the tonic; one that cannot cadence (not the
    tonic, or off the beat) must end by ``last``, so that a cadence still fits after it; and the
    bar closes only after a cadence."""

    def __init__(self, tokenizer: Tokenizer, rows: int, bar_steps, beat_steps, tonic) -> None:
        """``bar_steps``, ``beat_steps`` and ``tonic`` (the pitch class to end on): one for every
        row, or one per row."""
        v = tokenizer.vocab
        self.kinds, self.values = v.kinds, v.values
        self.pos0, self.pitch0, self.dur0 = v.first(POS), v.first(PITCH), v.first(DUR)
        self.npos, self.npitch, self.ndur = (int((v.kinds == k).sum()) for k in (POS, PITCH, DUR))
        self.pitch_pc = v.values[self.pitch0:self.pitch0 + self.npitch] % 12
        each = lambda x: [int(a) for a in np.broadcast_to(np.asarray(x), (rows,))]  # noqa: E731
        bar, self.beat, self.tonic = each(bar_steps), each(beat_steps), each(tonic)
        self.held = [min(STEPS_PER_QUARTER, n) for n in bar]
        self.last = [(n - h) // t * t for n, h, t in zip(bar, self.held, self.beat)]
        self.onset = [-1] * rows  # the current note's onset in the bar (-1: none yet)
        self.pitch = [-1] * rows
        self.end = [0] * rows  # where the current note ends so far
        self.free = [False] * rows  # rows the guide leaves alone (given up, or drawing freely)

    def _can_cadence(self, row: int) -> bool:
        return (self.onset[row] >= 0 and self.onset[row] % self.beat[row] == 0
                and (self.pitch[row] - self.tonic[row]) % 12 == 0)

    def constrain(self, blocked, close: int) -> None:
        """Narrow ``blocked`` (rows, V) in place for every row the guide still leads."""
        pos, pitch, dur = (slice(a, a + n) for a, n in ((self.pos0, self.npos), (self.pitch0, self.npitch),
                                                        (self.dur0, self.ndur)))
        for row in range(blocked.shape[0]):
            if self.free[row]:
                continue
            b, last, held = blocked[row], self.last[row], self.held[row]
            extra = b.copy()
            cad = self._can_cadence(row)
            if not (cad and self.end[row] - self.onset[row] >= held):
                extra[close] = True
            extra[pos][last + 1:] = True  # no onset after the last beat a cadence fits on
            if self.onset[row] == last:  # the note on the last beat is the cadence
                extra[pitch] |= (self.pitch_pc - self.tonic[row]) % 12 != 0
            # Dur_d (index d - 1): a note that cannot cadence ends by the last beat; a cadence
            # is held a quarter or stops early enough for another one
            lo = max(last - self.end[row], 0)
            hi = held - (self.end[row] - self.onset[row]) - 1 if cad else self.ndur
            extra[dur][lo:max(hi, lo)] = True
            if extra.all():
                self.free[row] = True
                continue
            b[:] = extra

    def advance(self, tok, took=None) -> None:
        """Note the token each row took (rows where ``took`` is False took none)."""
        for row, t in enumerate(tok.tolist()):
            if took is not None and not took[row]:
                continue
            kind, value = self.kinds[t], int(self.values[t])
            if kind == POS:
                self.onset[row], self.end[row] = value, value
            elif kind == PITCH:
                self.pitch[row] = value
            elif kind == DUR:
                self.end[row] += value


def free_last_bar(structure: Sequence[int] | None) -> bool:
    """True when a row's bar plan (None: no plan) leaves its last bar to the model."""
    return structure is None or not len(structure) or structure[-1] == FRESH


def better_endings(model: MelodyLSTM, tokenizer: Tokenizer, rows: list[Generated], sampling: SamplingConfig,
                   generator: torch.Generator, total_bars: int, prime_tokens: int = 0,
                   free: Sequence[bool] | None = None, tries: int = TRIES, chords=None,
                   target: int | None = None, guide=None, spans: Sequence[int] = (1, 2, 4)) -> list[Generated]:
    """``rows`` with each free last bar that does not cadence replaced by the most likely of
    ``tries`` redraws that does (else kept). ``prime_tokens``: body tokens of a prime at the
    start of every row (scored as the sampler scored them: not at all); ``total_bars``: the bars
    of each whole melody (the length codes'); ``chords``: the Sampler's chord codes, and
    ``target`` the pitch class to end on (None: each melody's tonic), ``guide`` the maker of
    their chord-tone guide (``composer.generate.chordguide``); ``spans``: the bars redrawn in
    turn (a form's repeat redraws its last bar only, keeping the bars it repeats). When no redraw of the last bar cadences (a note
    of the bar before held far into it), the last two bars are redrawn, then the last four."""
    out = list(rows)
    bar = tokenizer.vocab.bar
    for i, row in enumerate(rows):
        if free is not None and not free[i]:
            continue
        melody = tokenizer.decode(row.ids)
        if cadences(melody, target):
            continue
        body = list(row.ids[3:-1])  # BOS TimeSig Key ... EOS
        lines = [j for j, t in enumerate(body) if t == bar]  # each bar's Bar token
        for redraw in spans:  # the last bar; then more (a note held into the last bar)
            if len(lines) < redraw or lines[-redraw] < prime_tokens:
                break  # those bars are the prime's: nothing to redraw
            drawn = _redraw(model, tokenizer, melody, body, lines[-redraw], redraw, sampling, generator,
                            total_bars, prime_tokens, tries, chords, target, guide)
            if drawn:
                out[i] = min(drawn, key=lambda g: g.nll_nats)
                break
    return out


def _redraw(model: MelodyLSTM, tokenizer: Tokenizer, melody: Melody, body: list[int], cut: int, bars: int,
            sampling: SamplingConfig, generator: torch.Generator, total_bars: int, prime_tokens: int,
            tries: int, chords, target: int | None, guide) -> list[Generated]:
    """``tries`` draws of the melody's last ``bars`` bars (body tokens from ``cut`` on), the last
    one guided; those that cadence."""
    from composer.generate.sample import Sampler

    s = Sampler(model, tokenizer, tries, sampling, generator, total_bars=total_bars, chords=chords)
    s.trusted = True  # the melody's own tokens: they passed the grammar when sampled
    s.start([melody.time_signature], [melody.key])
    s.chord_guide = guide(s) if guide is not None else None
    if prime_tokens:
        s.feed([body[:prime_tokens]] * tries, more_bars=total_bars - body[:prime_tokens].count(tokenizer.vocab.bar))
        s.reset_likelihood()
    s.feed([body[prime_tokens:cut]] * tries, more_bars=bars)
    if bars > 1:
        s.sample_bars(bars - 1, final=False)
    meter = melody.meter_at(melody.n_bars - 1)
    s.sample_bars(1, final=True, guide=CadenceGuide(tokenizer, tries, meter.bar_steps, meter.beat_steps,
                                                     melody.last_key.tonic if target is None else target))
    return [g for g in s.results() if cadences(tokenizer.decode(g.ids), target)]


def end_on_cadence(s, tokenizer: Tokenizer, tries: int = TRIES, target: int | None = None,
                   guide=None) -> list[Generated]:
    """Sample the last bar of every row of the sampler ``s`` (each standing at its last bar line)
    as one batch: per row one free draw and ``tries`` guided ones (``composer.generate.fork``);
    a row keeps its free draw when it cadences, else the most likely guided draw that does.
    ``target``: the pitch class to end on (None: each row's last key's tonic); ``guide``: the
    maker of a chord-tone guide for the fork."""
    from composer.generate.fork import fork
    from composer.music.meter import TimeSignature
    from composer.tokens.tokenizer import KEY, TIMESIG

    k = 1 + tries
    v = tokenizer.vocab
    meters, tonics = [], []
    for row in s.lik.rows(0):  # each row's last meter and key so far
        ids = np.asarray(row, dtype=np.int64)
        ts = ids[v.kinds[ids] == TIMESIG][-1]
        meters.append(TimeSignature.parse(v.tokens[ts].split("_", 1)[1]))
        tonics.append(int(v.values[ids[v.kinds[ids] == KEY][-1]]) % 12 if target is None else target)
    f = fork(s, k)
    f.chord_guide = guide(f) if guide is not None else None
    cadence = CadenceGuide(tokenizer, f.batch, np.repeat([m.bar_steps for m in meters], k),
                           np.repeat([m.beat_steps for m in meters], k), np.repeat(tonics, k))
    cadence.free[::k] = [True] * s.batch  # each row's first draw is its own, unguided
    f.sample_bars(1, final=True, guide=cadence)
    drawn = f.results()
    out = []
    for i in range(s.batch):
        first, *guided = drawn[i * k:(i + 1) * k]
        if cadences(tokenizer.decode(first.ids), target):
            out.append(first)
            continue
        good = [g for g in guided if cadences(tokenizer.decode(g.ids), target)]
        out.append(min(good, key=lambda g: g.nll_nats) if good else first)
    return out
