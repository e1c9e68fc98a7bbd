"""The Melody type: a monophonic line on a rhythm grid, with meter, key and tempo.

Times are integer grid steps (``STEPS_PER_QUARTER`` per quarter note, fine enough
for sixteenths and eighth/sixteenth triplets). Bar 1 starts at step 0, so a pickup
(anacrusis) sits at the end of bar 1. The meter and key may change at a bar line
(``meter_changes``, ``key_changes``: a short bar before a repeat written as its own 1/8 bar,
a tune that moves from 3/4 to 2/4 or modulates); bar lines then follow the bars' own lengths.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

from composer.errors import MusicError

if TYPE_CHECKING:  # the meter and key modules build on this one
    from composer.music.keys import Key
    from composer.music.meter import TimeSignature

STEPS_PER_QUARTER = 12
PITCH_MIN, PITCH_MAX = 21, 108  # piano range, inclusive

_SHARP_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
LETTER_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}  # natural note letters


@dataclass(frozen=True, order=True)
class Note:
    """One note: onset and duration in grid steps, MIDI pitch."""

    start: int
    duration: int
    pitch: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.duration < 1:
            raise MusicError(f"bad note timing start={self.start} duration={self.duration}")
        if not 0 <= self.pitch <= 127:
            raise MusicError(f"bad MIDI pitch {self.pitch}")

    @property
    def end(self) -> int:
        """The step where the note stops sounding."""
        return self.start + self.duration


def notes_from_arrays(start, duration, pitch) -> tuple[Note, ...]:
    """Notes from parallel integer sequences, validated in one numpy pass (readers build
    thousands; the per-note checks cost more than the rest of reading a file)."""
    import numpy as np

    s, d, p = (np.asarray(x, dtype=np.int64).reshape(-1) for x in (start, duration, pitch))
    if not len(s) == len(d) == len(p):
        raise MusicError("start, duration and pitch arrays differ in length")
    if len(s) and (s.min() < 0 or d.min() < 1 or p.min() < 0 or p.max() > 127):
        return tuple(Note(a, b, c) for a, b, c in zip(s.tolist(), d.tolist(), p.tolist()))  # raises
    new = object.__new__
    out = []
    for a, b, c in zip(s.tolist(), d.tolist(), p.tolist()):
        n = new(Note)
        attrs = n.__dict__  # frozen: fill the fields directly, as __init__ would, checks done above
        attrs["start"], attrs["duration"], attrs["pitch"] = a, b, c
        out.append(n)
    return tuple(out)


@dataclass(frozen=True)
class Melody:
    """A monophonic melody: sorted, non-overlapping notes within ``n_bars`` bars.

    ``time_signature`` and ``key`` hold from bar 1; ``meter_changes`` and ``key_changes`` list
    ``(bar index, new value)`` for later bars (0-based, increasing, each a real change)."""

    notes: tuple[Note, ...]
    time_signature: TimeSignature
    key: Key
    n_bars: int
    tempo: float = field(default=120.0, compare=False)
    title: str = field(default="", compare=False)
    meter_changes: tuple[tuple[int, TimeSignature], ...] = ()
    key_changes: tuple[tuple[int, Key], ...] = ()

    def __post_init__(self) -> None:
        for name, changes, first in (("meter", self.meter_changes, self.time_signature), ("key", self.key_changes, self.key)):
            prev_bar, prev = 0, first
            for bar, value in changes:
                if not prev_bar < bar < self.n_bars or value == prev:
                    raise MusicError(f"bad {name} change to {value} at bar {bar + 1} of {self.n_bars}")
                prev_bar, prev = bar, value
        prev_end = 0
        for n in self.notes:
            if n.start < prev_end:
                raise MusicError(f"notes overlap or are unsorted at step {n.start}")
            prev_end = n.end
        if self.n_bars < 1 or prev_end > self.total_steps:
            raise MusicError(f"{len(self.notes)} notes do not fit in {self.n_bars} bars")

    @property
    def bar_steps(self) -> int:
        """Grid steps in one bar of the first meter (every bar's when ``uniform``)."""
        return self.time_signature.bar_steps

    @property
    def uniform(self) -> bool:
        """True when no meter changes: bar lines at multiples of ``bar_steps``."""
        return not self.meter_changes

    @cached_property
    def bar_starts(self) -> tuple[int, ...]:
        """Step of each bar line: bar i spans bar_starts[i]..bar_starts[i + 1] (n_bars + 1 values)."""
        if not self.meter_changes:
            return tuple(range(0, (self.n_bars + 1) * self.bar_steps, self.bar_steps))
        out, at, length = [0], 0, self.bar_steps
        changes = dict(self.meter_changes)
        for bar in range(self.n_bars):
            length = changes[bar].bar_steps if bar in changes else length
            at += length
            out.append(at)
        return tuple(out)

    @property
    def total_steps(self) -> int:
        """Grid steps from the first bar line to the last."""
        return self.bar_starts[-1] if self.meter_changes else self.n_bars * self.bar_steps

    def meter_at(self, bar: int) -> TimeSignature:
        """The meter of bar ``bar`` (0-based)."""
        return _at(bar, self.time_signature, self.meter_changes)

    def key_at(self, bar: int) -> Key:
        """The key of bar ``bar`` (0-based)."""
        return _at(bar, self.key, self.key_changes)

    @property
    def last_meter(self) -> TimeSignature:
        return self.meter_at(self.n_bars - 1)

    @property
    def last_key(self) -> Key:
        return self.key_at(self.n_bars - 1)

    def bar_of(self, step: int) -> int:
        """The bar (0-based) holding grid step ``step``."""
        if not self.meter_changes:
            return step // self.bar_steps
        return min(bisect.bisect_right(self.bar_starts, step) - 1, self.n_bars - 1)

    def pitch_range(self) -> tuple[int, int]:
        """(lowest, highest) pitch; (60, 60) for a melody without notes."""
        if not self.notes:
            return (60, 60)
        pitches = [n.pitch for n in self.notes]
        return min(pitches), max(pitches)

    def transpose(self, semitones: int) -> Melody:
        """Shift every pitch and key by ``semitones``."""
        notes = tuple(Note(n.start, n.duration, n.pitch + semitones) for n in self.notes)
        keys = tuple((b, k.transpose(semitones)) for b, k in self.key_changes)
        return replace(self, notes=notes, key=self.key.transpose(semitones), key_changes=keys)

    def bars(self, first: int, count: int) -> Melody:
        """The ``count`` bars from bar ``first`` (0-based); notes crossing the cut are clipped."""
        starts = self.bar_starts
        count = max(1, min(count, self.n_bars - first))
        lo, hi = starts[first], starts[first + count]
        notes = tuple(
            Note(max(n.start, lo) - lo, min(n.end, hi) - max(n.start, lo), n.pitch)
            for n in self.notes
            if n.end > lo and n.start < hi
        )
        meters = tuple((b - first, m) for b, m in self.meter_changes if first < b < first + count)
        keys = tuple((b - first, k) for b, k in self.key_changes if first < b < first + count)
        return replace(self, notes=notes, n_bars=count, time_signature=self.meter_at(first), key=self.key_at(first),
                       meter_changes=meters, key_changes=keys)

    def __len__(self) -> int:
        return len(self.notes)


def _at(bar: int, first, changes):
    """The value in effect at ``bar`` given the first value and (bar, value) changes."""
    value = first
    for b, v in changes:
        if b > bar:
            break
        value = v
    return value


def transpositions(melody: Melody, low: int = PITCH_MIN, high: int = PITCH_MAX) -> list[Melody]:
    """The melody in all 12 keys, each shift chosen within -6..+5 semitones (or an
    octave off) so that every pitch stays inside ``low..high``; keys that cannot fit are left out."""
    lo, hi = melody.pitch_range()
    out = []
    for k in range(-6, 6):
        for shift in (k, k - 12, k + 12):
            if low <= lo + shift and hi + shift <= high:
                out.append(melody.transpose(shift))
                break
    return out


def pitch_name(pitch: int) -> str:
    """MIDI number to name: 60 -> 'C4'."""
    return f"{_SHARP_NAMES[pitch % 12]}{pitch // 12 - 1}"


_PITCH = re.compile(r"^\s*(?:(-?[0-9]{1,3})|([A-Ga-g])(#{0,2}|b{0,2})(-?[0-9]{1,2}))\s*$")  # ASCII digits only


def parse_pitch(text: str) -> int:
    """Note name or number to MIDI number: 'C4' -> 60, 'F#5' -> 78, 'Bbb3' -> 57, '67' -> 67.
    Digits are ASCII only ('²' or '٣' are not numbers here); at most two sharps or flats."""
    m = _PITCH.match(str(text))
    if m is None:
        raise MusicError(f"unknown pitch {text!r}: use a name like C4, F#5 or a MIDI number 0-127")
    if m.group(1) is not None:
        p = int(m.group(1))
    else:
        acc = m.group(3)
        p = LETTER_PITCH_CLASS[m.group(2).upper()] + acc.count("#") - acc.count("b") + 12 * (int(m.group(4)) + 1)
    if not 0 <= p <= 127:
        raise MusicError(f"pitch {text!r} is outside MIDI 0-127")
    return p
