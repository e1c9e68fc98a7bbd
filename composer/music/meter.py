"""Meters: the one home of what a time signature means on the grid (bar, beat, compound time,
a usual tempo) and of which meters the composer handles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import MusicError
from composer.music.melody import STEPS_PER_QUARTER

MAX_BAR_STEPS = 16 * STEPS_PER_QUARTER  # longest bar the composer handles: 4/1, 8/2, 16/4, 32/8
SUPPORTED_DENOMINATORS = (1, 2, 4, 8, 16, 32)  # n/32 only where the bar is whole grid steps (even n)
MAX_NUMERATOR = 32
V1_MAX_BAR_STEPS, V1_DENOMINATORS = 8 * STEPS_PER_QUARTER, (2, 4, 8, 16)  # tokenizer version 1's meters
_METER = re.compile(r"^\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*$")  # ASCII digits only: int() also reads '４'


def is_compound_meter(numerator: int, denominator: int) -> bool:
    """Compound time: 6, 9, 12 ... eighths (or shorter notes) a bar, gathered in threes, one beat
    each (6/8, 9/8, 12/8, 6/16 ...). 3/8 and 6/4 count as simple."""
    return denominator >= 8 and numerator % 3 == 0 and numerator > 3


@dataclass(frozen=True)
class TimeSignature:
    """A meter: ``numerator`` notes of 1/``denominator`` per bar; the bar must fit the grid."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if self.numerator < 1 or self.denominator not in (1, 2, 4, 8, 16, 32):
            raise MusicError(f"time signature {self.numerator}/{self.denominator} is not supported: the numerator must be "
                             "positive and the denominator 1, 2, 4, 8, 16 or 32")
        _ = self.bar_steps  # raises when a bar is not a whole number of steps

    @property
    def bar_steps(self) -> int:
        """Grid steps in one bar."""
        steps = self.numerator * 4 * STEPS_PER_QUARTER
        if steps % self.denominator:
            raise MusicError(f"time signature {self} is not supported: its bar is not a whole number of grid steps "
                             f"({STEPS_PER_QUARTER} a quarter): use an even number of 32nds")
        return steps // self.denominator

    @property
    def is_compound(self) -> bool:
        """True for 6/8, 9/8, 12/8, 6/16 ...: beats of three eighths (or sixteenths)."""
        return is_compound_meter(self.numerator, self.denominator)

    @property
    def beat_steps(self) -> int:
        """Grid steps per beat: a dotted quarter in compound meters, else one 1/denominator note
        (rounded down: a 1/32 beat, 1.5 steps, counts as 1)."""
        whole = 4 * STEPS_PER_QUARTER
        return 3 * whole // self.denominator if self.is_compound else whole // self.denominator

    @property
    def beats(self) -> int:
        """Beats per bar: 2 in 6/8, 3 in 3/4, 7 in 7/8."""
        return self.numerator // 3 if self.is_compound else self.numerator

    @property
    def groups(self) -> tuple[int, ...]:
        """Lengths in grid steps of the bar's beat groups, the pulses a player accents: one per
        beat, dotted in compound time; irregular bars gathered in twos and threes (5/8 as 3+2,
        7/8 as 2+2+3, 5/4 as 3+2, 7/4 as 4+3)."""
        whole, n = 4 * STEPS_PER_QUARTER, self.numerator
        if whole % self.denominator:  # n/32: a 32nd is not whole steps
            return (self.bar_steps,)
        unit = whole // self.denominator
        if self.is_compound:
            return (3 * unit,) * (n // 3)
        if n in (5, 7) and self.denominator <= 4:
            return (3 * unit, 2 * unit) if n == 5 else (4 * unit, 3 * unit)
        if n >= 5 and n % 2 and self.denominator >= 8:  # 5/8, 7/8, 11/8, 13/16 ...
            return (3 * unit, 2 * unit) if n == 5 else (2 * unit,) * ((n - 3) // 2) + (3 * unit,)
        return (self.bar_steps // n,) * n if self.bar_steps % n == 0 else (self.bar_steps,)

    @property
    def usual_tempo(self) -> float:
        """A usual tempo in quarter notes per minute: lilting compound meters, brisk cut time."""
        return 150.0 if self.is_compound else 180.0 if self.denominator == 2 else 120.0

    @classmethod
    def parse(cls, text: str) -> TimeSignature:
        """Parse '4/4', '6/8'; MusicError for anything else."""
        m = _METER.match(str(text))
        if m is None:
            raise MusicError(f"unknown time signature {text!r}: use a form like 4/4, 3/4, 6/8")
        return cls(int(m.group(1)), int(m.group(2)))  # MusicError says what is wrong with it

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


def check_supported(ts: TimeSignature) -> None:
    """Raise MusicError saying why the composer cannot handle ``ts`` (its denominator, or a bar
    longer than ``MAX_BAR_STEPS``); return when it can."""
    if ts.denominator not in SUPPORTED_DENOMINATORS:
        raise MusicError(f"time signature {ts} is not supported: the denominator must be "
                         f"{', '.join(map(str, SUPPORTED_DENOMINATORS[:-1]))} or {SUPPORTED_DENOMINATORS[-1]}")
    if ts.numerator > MAX_NUMERATOR:
        raise MusicError(f"time signature {ts} is not supported: at most {MAX_NUMERATOR} beats a bar")
    if ts.bar_steps > MAX_BAR_STEPS:
        raise MusicError(f"time signature {ts} is not supported: its bar of {ts.bar_steps / STEPS_PER_QUARTER:g} "
                         f"quarters is longer than {MAX_BAR_STEPS // STEPS_PER_QUARTER}")


def supported_meters(max_bar_steps: int = MAX_BAR_STEPS,
                     denominators: tuple[int, ...] = SUPPORTED_DENOMINATORS) -> list[TimeSignature]:
    """Every n/d (n <= 32, d in ``denominators``) whose bar is whole grid steps and fits
    ``max_bar_steps`` (the defaults: what this composer reads and writes)."""
    out = []
    for den in denominators:
        for num in range(1, MAX_NUMERATOR + 1):
            if (num * 4 * STEPS_PER_QUARTER) % den == 0 and num * 4 * STEPS_PER_QUARTER // den <= max_bar_steps:
                out.append(TimeSignature(num, den))
    return out


def meter_for_steps(steps: int, denominator: int = 4) -> TimeSignature | None:
    """A supported meter whose bar lasts ``steps`` grid steps (a short or split bar given its own
    time signature), preferring ``denominator``, then finer ones: 18 steps -> 3/8. None if none."""
    whole = 4 * STEPS_PER_QUARTER
    for den in (denominator, 4, 8, 16, 2, 1, 32):
        if den in SUPPORTED_DENOMINATORS and steps > 0 and (steps * den) % whole == 0:
            num = steps * den // whole
            if num <= MAX_NUMERATOR and steps <= MAX_BAR_STEPS:
                return TimeSignature(num, den)
    return None
