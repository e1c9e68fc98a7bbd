"""Keys: tonic and mode, their names and signatures, the scales, and key estimation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import MusicError
from composer.music.melody import LETTER_PITCH_CLASS

# Pitch classes above the tonic. Minor holds the natural minor plus the raised leading tone
# (harmonic minor), as minor tunes use both.
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)

# Preferred spelling of each tonic (major, minor) as in key signatures up to 6 accidentals.
_MAJOR_NAMES = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_MINOR_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
_KEY_NAME = re.compile(r"^[A-Ga-g](?:#{0,2}|b{0,2})$")  # a tonic: letter and up to two sharps or flats
# Key-signature sharps (+) / flats (-) of each major tonic pitch class.
_MAJOR_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 5: -1, 10: -2, 3: -3, 8: -4, 1: -5}


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class 0-11 and mode."""

    tonic: int
    minor: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12:
            raise MusicError(f"bad key tonic {self.tonic}")

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

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the key's scale, relative to the tonic (minor: natural + harmonic)."""
        return MINOR_SCALE if self.minor else MAJOR_SCALE

    def in_scale(self, pitch: int) -> bool:
        """True when the MIDI pitch (or pitch class) belongs to the key's scale."""
        return (pitch - self.tonic) % 12 in self.scale

    def transpose(self, semitones: int) -> Key:
        """The key ``semitones`` higher (same mode)."""
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
        if not text.strip():
            raise MusicError("the key is blank: use a name like C, Dm, F#, Bbm")
        if _KEY_NAME.match(t) is None:
            raise MusicError(f"unknown key {text!r}: use a name like C, Dm, F#, Bbm (at most two sharps or flats)")
        pc = LETTER_PITCH_CLASS[t[0].upper()] + t[1:].count("#") - t[1:].count("b")  # ('bb': the letter is no flat)
        return cls(pc % 12, minor)

    @classmethod
    def from_sharps(cls, sharps: int, minor: bool) -> Key:
        """Key from a key-signature (sharps>0, flats<0) and mode."""
        major_pc = (7 * sharps) % 12
        return cls((major_pc - 3) % 12 if minor else major_pc, minor)

    @classmethod
    def from_index(cls, index: int) -> Key:
        """The inverse of ``index``."""
        return cls(index % 12, index >= 12)

    def __str__(self) -> str:
        return self.name


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
