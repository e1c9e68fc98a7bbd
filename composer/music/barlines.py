"""Bar lines of a MIDI file: every bar with its real length, from the file's time signatures.

Notation programs export what the score shows: a short bar before a repeat as its own 1/8 or
1/4 bar with its own time signature, a 1/32 bar, a pickup in the middle of a tune, real
changes of meter. Each of these becomes a bar of its own length (``Melody.meter_changes``),
so no note is lost to a meter it does not fit. Two rules keep the grid whole:

* a first bar shorter than the bar after it is a pickup (anacrusis): it is written as the
  end of a full bar of the meter that follows, as scores and the corpus write pickups;
* bar lines fall on sixteenth notes (3 grid steps): a 1/32 bar merges into its neighbour,
  a bar longer than ``MAX_BAR_STEPS`` is split. Notes keep their own positions either way.

Two time signatures at the same tick (seen in real files: 4/4 and 1/4 both at 0) are resolved
by the bar lines and notes: the meter whose bars end where the next time signature starts,
else the one fewer notes are tied across (a 1/4 "bar" cuts every half note), then the longer
bar; never simply the last one read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from composer.music.melody import STEPS_PER_QUARTER
from composer.errors import MusicError
from composer.music.meter import MAX_BAR_STEPS, TimeSignature, check_supported, meter_for_steps

_LINE_STEPS = 3  # bar lines fall on sixteenths


@dataclass(frozen=True)
class BarGrid:
    """Bars in grid steps from ``origin`` (a tick): ``starts`` (n + 1 bar lines) and each bar's meter."""

    origin: float
    starts: tuple[int, ...]
    meters: tuple[TimeSignature, ...]
    reshaped: int  # bars merged, split or given a derived meter to fit the grid

    def changes(self) -> tuple[tuple[int, TimeSignature], ...]:
        """(bar, meter) where the meter differs from the bar before."""
        return tuple((i, m) for i, m in enumerate(self.meters) if i and m != self.meters[i - 1])


def meter_events(raw: list[tuple[int, int, int]], onsets: np.ndarray, offsets: np.ndarray,
                 tpq: int) -> list[tuple[int, int, int]]:
    """(tick, numerator, denominator) meter changes from raw events in file order: malformed ones
    dropped, same-tick conflicts resolved, restatements merged; 4/4 from tick 0 when none come first."""
    by_tick: dict[int, list[tuple[int, int]]] = {}
    for tick, num, den in raw:
        if 1 <= num <= 255 and 1 <= den <= 64 and not den & (den - 1) and tick >= 0:
            cands = by_tick.setdefault(tick, [])
            if (num, den) in cands:
                cands.remove((num, den))
            cands.append((num, den))
    if not by_tick or min(by_tick) > 0:
        by_tick.setdefault(0, [(4, 4)])
    ticks = sorted(by_tick)
    end = float(onsets.max()) + 1 if len(onsets) else ticks[-1] + 1.0
    out: list[tuple[int, int, int]] = []
    for j, t in enumerate(ticks):
        nxt = ticks[j + 1] if j + 1 < len(ticks) else None
        num, den = _resolve(by_tick[t], t, nxt, end, onsets, offsets, tpq)
        if not out or out[-1][1:] != (num, den):
            out.append((t, num, den))
    return out


def _resolve(cands: list[tuple[int, int]], t: int, nxt: int | None, end: float, onsets: np.ndarray,
             offsets: np.ndarray, tpq: int) -> tuple[int, int]:
    """The meter among ``cands`` (last read last) that the bar lines and notes agree with."""
    if len(cands) == 1:
        return cands[0]
    eps = tpq / 48

    def fits(c):  # its bars end where the next time signature starts
        span, bar = nxt - t, _bar_ticks(c, tpq)
        return abs(span / bar - round(span / bar)) * bar < eps

    if nxt is not None:
        fitting = [c for c in cands if fits(c)]
        if len(fitting) == 1:
            return fitting[0]
        cands = fitting or cands
    stop = nxt if nxt is not None else end
    inside = (onsets >= t) & (onsets < stop)
    on, off = onsets[inside] - t, offsets[inside] - t

    def tied(c):  # notes sounding across one of its bar lines
        bar = _bar_ticks(c, tpq)
        return int(np.count_nonzero(np.floor((on + eps) / bar) != np.floor((off - eps) / bar)))

    return min(reversed(cands), key=lambda c: (tied(c), -_bar_ticks(c, tpq)))  # ties: the one read last


def _bar_ticks(meter: tuple[int, int], tpq: int) -> float:
    return meter[0] * 4 * tpq / meter[1]


def bar_grid(events: list[tuple[int, int, int]], tpq: int, first_on: int, last_off: int) -> BarGrid:
    """The bars from the one holding ``first_on`` to the one holding ``last_off`` (ticks)."""
    lines: list[tuple[float, tuple[int, int]]] = []  # (start tick, meter) of each bar
    eps = tpq / 48
    for j, (t0, num, den) in enumerate(events):
        t1 = events[j + 1][0] if j + 1 < len(events) else math.inf
        bar, at = _bar_ticks((num, den), tpq), float(t0)
        if at > last_off and lines:
            break
        while (at < t1 - eps or not lines) and (at <= last_off or not lines):
            lines.append((at, (num, den)))
            at += bar
    while lines[0][0] > first_on + eps:  # notes before the first bar line (a section too short to hold one)
        lines.insert(0, (lines[0][0] - _bar_ticks(lines[0][1], tpq), lines[0][1]))
    first = max(i for i, (t, _) in enumerate(lines) if t <= first_on + eps)
    last = max(i for i, (t, _) in enumerate(lines) if t < last_off - eps) if last_off > lines[first][0] + eps else first
    bars = lines[first: last + 1]
    ends = [t for t, _ in lines[first + 1: last + 2]]
    if len(ends) < len(bars):  # the last bar: a full bar of its meter
        ends.append(bars[-1][0] + _bar_ticks(bars[-1][1], tpq))
    origin = bars[0][0]
    if len(bars) > 1 and ends[0] - bars[0][0] < ends[1] - bars[1][0] - eps:  # a pickup: the end of a full bar
        origin = ends[0] - (ends[1] - bars[1][0])
        bars[0] = (origin, bars[1][1])
    step = STEPS_PER_QUARTER / tpq
    starts, meters, reshaped = [0], [], 0
    for (t, meter), e in zip(bars, ends):
        line = int(math.floor((e - origin) * step / _LINE_STEPS + 0.5)) * _LINE_STEPS
        length = line - starts[-1]
        if length <= 0:
            reshaped += 1  # a bar shorter than a sixteenth: merged into the next one
            continue
        nominal = _meter(meter)
        for piece in _pieces(length):
            m = nominal if nominal is not None and nominal.bar_steps == piece else meter_for_steps(piece, min(meter[1], 32))
            reshaped += m is not nominal
            starts.append(starts[-1] + piece)
            meters.append(m)
    if not meters:  # everything in one sub-sixteenth bar
        starts, meters = [0, 48], [TimeSignature(4, 4)]
    return BarGrid(origin, tuple(starts), tuple(meters), reshaped)


def _meter(meter: tuple[int, int]) -> TimeSignature | None:
    """The meter, if the composer handles it (a 1/32 or 3/64 bar is not whole grid steps; 37/16 too many beats)."""
    try:
        ts = TimeSignature(*meter)
        check_supported(ts)
        return ts
    except MusicError:
        return None


def _pieces(length: int) -> list[int]:
    """A bar of ``length`` steps (a multiple of 3) as bars that have a meter: itself, else split."""
    out = []
    while length > 0:
        if length <= MAX_BAR_STEPS and meter_for_steps(length) is not None:
            out.append(length)
            break
        take = min(MAX_BAR_STEPS, length - length % STEPS_PER_QUARTER or length)
        if take == length or meter_for_steps(take) is None:
            take = STEPS_PER_QUARTER * 4 if length > STEPS_PER_QUARTER * 4 else length
        out.append(take)
        length -= take
    return out
