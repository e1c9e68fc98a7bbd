"""The Melody type: a monophonic line on a rhythm grid, with meter, key and tempo.

Times are integer grid steps (``STEPS_PER_QUARTER`` per quarter note, fine enough
for sixteenths and eighth/sixteenth triplets). Bar lines fall at multiples of the
bar length from step 0, so a pickup (anacrusis) sits at the end of bar 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from composer.errors import TokenizerError

STEPS_PER_QUARTER = 12
PITCH_MIN, PITCH_MAX = 21, 108  # piano range, inclusive

_SHARP_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_PC_OF = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Preferred spelling of each tonic (major, minor) as in key signatures up to 6 accidentals.
_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
# Key-signature sharps (+) / flats (-) of each major tonic pitch class.
_MAJOR_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 5: -1, 10: -2, 3: -3, 8: -4, 1: -5}


@dataclass(frozen=True, order=True)
class Note:
    """One note: onset and duration in grid steps, MIDI pitch."""

    start: int
    duration: int
    pitch: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.duration < 1:
            raise TokenizerError(f"bad note timing start={self.start} duration={self.duration}")
        if not 0 <= self.pitch <= 127:
            raise TokenizerError(f"bad MIDI pitch {self.pitch}")

    @property
    def end(self) -> int:
        return self.start + self.duration


def notes_from_arrays(start, duration, pitch) -> tuple[Note, ...]:
    """Notes from parallel integer sequences, validated in one numpy pass (readers build
    thousands; the per-note checks cost more than the rest of reading a file)."""
    import numpy as np

    s, d, p = (np.asarray(x, dtype=np.int64).reshape(-1) for x in (start, duration, pitch))
    if not len(s) == len(d) == len(p):
        raise TokenizerError("start, duration and pitch arrays differ in length")
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
class Key:
    """A key: tonic pitch class 0-11 and mode."""

    tonic: int
    minor: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12:
            raise TokenizerError(f"bad key tonic {self.tonic}")

    @property
    def name(self) -> str:
        """Readable name: 'C', 'F#', 'Bbm'."""
        return _MINOR_NAMES[self.tonic] + "m" if self.minor else _MAJOR_NAMES[self.tonic]

    @property
    def index(self) -> int:
        """0-23: majors first, then minors."""
        return self.tonic + 12 * self.minor

    @property
    def sharps(self) -> int:
        """Accidentals of the key signature: positive sharps, negative flats."""
        return _MAJOR_SHARPS[(self.tonic + 3) % 12 if self.minor else self.tonic]

    def transpose(self, semitones: int) -> Key:
        return Key((self.tonic + semitones) % 12, self.minor)

    @classmethod
    def parse(cls, text: str) -> Key:
        """Parse 'C', 'Dm', 'F#', 'Bbm', 'Eb minor', 'a' (lowercase = minor)."""
        t = text.strip().replace("♯", "#").replace("♭", "b")
        low = t.lower()
        minor = False
        for suffix in (" minor", "minor", " min", "min", "m"):
            if low.endswith(suffix) and len(t) > len(suffix):
                t, minor = t[: -len(suffix)].strip(), True
                break
        else:
            for suffix in (" major", "major", " maj", "maj"):
                if low.endswith(suffix) and len(t) > len(suffix):
                    t = t[: -len(suffix)].strip()
                    break
            else:
                if t[:1].islower():
                    minor = True
        if not t or t[0].upper() not in _PC_OF or any(c not in "#b" for c in t[1:]):
            raise TokenizerError(f"unknown key {text!r}: use a name like C, Dm, F#, Bbm")
        pc = _PC_OF[t[0].upper()] + t.count("#") - t.count("b")
        return cls(pc % 12, minor)

    @classmethod
    def from_sharps(cls, sharps: int, minor: bool) -> Key:
        """Key from a key-signature (sharps>0, flats<0) and mode."""
        major_pc = (7 * sharps) % 12
        return cls((major_pc - 3) % 12 if minor else major_pc, minor)

    @classmethod
    def from_index(cls, index: int) -> Key:
        return cls(index % 12, index >= 12)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class TimeSignature:
    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if self.numerator < 1 or self.denominator not in (1, 2, 4, 8, 16, 32):
            raise TokenizerError(f"bad time signature {self.numerator}/{self.denominator}")
        _ = self.bar_steps  # raises when a bar is not a whole number of steps

    @property
    def bar_steps(self) -> int:
        """Grid steps in one bar."""
        steps = self.numerator * 4 * STEPS_PER_QUARTER
        if steps % self.denominator:
            raise TokenizerError(f"time signature {self} does not fit the grid")
        return steps // self.denominator

    @classmethod
    def parse(cls, text: str) -> TimeSignature:
        try:
            num, den = (int(x) for x in text.strip().split("/"))
            return cls(num, den)
        except (ValueError, TokenizerError):
            raise TokenizerError(f"unknown time signature {text!r}: use a form like 4/4, 3/4, 6/8") from None

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class Melody:
    """A monophonic melody: sorted, non-overlapping notes within ``n_bars`` bars."""

    notes: tuple[Note, ...]
    time_signature: TimeSignature
    key: Key
    n_bars: int
    tempo: float = field(default=120.0, compare=False)
    title: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        bar = self.time_signature.bar_steps
        prev_end = 0
        for n in self.notes:
            if n.start < prev_end:
                raise TokenizerError(f"notes overlap or are unsorted at step {n.start}")
            prev_end = n.end
        if self.n_bars < 1 or prev_end > self.n_bars * bar:
            raise TokenizerError(f"{len(self.notes)} notes do not fit in {self.n_bars} bars")

    @property
    def bar_steps(self) -> int:
        return self.time_signature.bar_steps

    @property
    def total_steps(self) -> int:
        return self.n_bars * self.bar_steps

    def pitch_range(self) -> tuple[int, int]:
        if not self.notes:
            return (60, 60)
        pitches = [n.pitch for n in self.notes]
        return min(pitches), max(pitches)

    def transpose(self, semitones: int) -> Melody:
        """Shift every pitch and the key by ``semitones``."""
        notes = tuple(Note(n.start, n.duration, n.pitch + semitones) for n in self.notes)
        return replace(self, notes=notes, key=self.key.transpose(semitones))

    def bars(self, first: int, count: int) -> Melody:
        """The ``count`` bars from bar ``first`` (0-based); notes crossing the cut are clipped."""
        bar = self.bar_steps
        lo, hi = first * bar, (first + count) * bar
        notes = tuple(
            Note(max(n.start, lo) - lo, min(n.end, hi) - max(n.start, lo), n.pitch)
            for n in self.notes
            if n.end > lo and n.start < hi
        )
        return replace(self, notes=notes, n_bars=count)

    def __len__(self) -> int:
        return len(self.notes)


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


def parse_pitch(text: str) -> int:
    """Note name or number to MIDI number: 'C4' -> 60, 'F#5' -> 78, '67' -> 67."""
    t = text.strip()
    if t.lstrip("-").isdigit():
        p = int(t)
    else:
        i = 1
        while i < len(t) and t[i] in "#b":
            i += 1
        if not t or t[0].upper() not in _PC_OF or not t[i:].lstrip("-").isdigit():
            raise TokenizerError(f"unknown pitch {text!r}: use a name like C4 or a MIDI number")
        p = _PC_OF[t[0].upper()] + t[1:i].count("#") - t[1:i].count("b") + 12 * (int(t[i:]) + 1)
    if not 0 <= p <= 127:
        raise TokenizerError(f"pitch {text!r} is outside MIDI 0-127")
    return p


# Krumhansl-Kessler key profiles (major, minor), tonic first.
_KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def _profiles():
    """The 24 key profiles (majors, then minors; index = Key.index), centred, unit length: (24, 12)."""
    import numpy as np

    rows = [np.roll(np.asarray(p), tonic) for p in (_KK_MAJOR, _KK_MINOR) for tonic in range(12)]
    prof = np.asarray(rows) - np.mean(rows, axis=1, keepdims=True)
    return prof / np.linalg.norm(prof, axis=1, keepdims=True)


_PROFILES = None


def estimate_key(pitches, durations) -> Key:
    """Krumhansl-Schmuckler: the key whose profile best correlates with the
    duration-weighted pitch-class histogram (first of equals in Key.index order)."""
    import numpy as np

    global _PROFILES
    if _PROFILES is None:
        _PROFILES = _profiles()
    hist = np.zeros(12)
    np.add.at(hist, np.asarray(pitches, dtype=np.int64) % 12, np.asarray(durations, dtype=np.float64))
    centred = hist - hist.mean()
    norm = np.linalg.norm(centred)
    if not hist.any() or norm == 0:
        return Key(0)
    r = _PROFILES @ (centred / norm)  # Pearson correlation with each of the 24 keys
    return Key.from_index(int(np.argmax(r)))
