"""Chords: root, quality and bass as pitch classes; chord symbols ("Am", "G7", "F/A") both ways.

Ten qualities, the ones four-part chorales and folk/pop lead sheets use: the four triads, the
five common sevenths and the suspended fourth (sus4 is the lead-sheet suspension, and a
suspension that does not resolve within a beat). Left out: sus2 (its notes are a sus4 on
another root: Csus2 = Gsus4/C, so it would only duplicate labels), sixths (C6 holds the notes
of Am7/C) and ninths and above (more notes than four voices hold; write the seventh).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import MusicError
from composer.music.melody import LETTER_PITCH_CLASS

# name -> (intervals above the root, the role of each tone: letter steps above the root's letter).
# The order is part of the chord vocabulary's ids (composer.harmony.vocab): append, never reorder.
QUALITIES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "maj": ((0, 4, 7), (0, 2, 4)),
    "min": ((0, 3, 7), (0, 2, 4)),
    "dim": ((0, 3, 6), (0, 2, 4)),
    "aug": ((0, 4, 8), (0, 2, 4)),
    "7": ((0, 4, 7, 10), (0, 2, 4, 6)),
    "maj7": ((0, 4, 7, 11), (0, 2, 4, 6)),
    "m7": ((0, 3, 7, 10), (0, 2, 4, 6)),
    "m7b5": ((0, 3, 6, 10), (0, 2, 4, 6)),
    "dim7": ((0, 3, 6, 9), (0, 2, 4, 6)),
    "sus4": ((0, 5, 7), (0, 3, 4)),
}
_SUFFIX = {"maj": "", "min": "m", "dim": "dim", "aug": "aug", "7": "7", "maj7": "maj7", "m7": "m7",
           "m7b5": "m7b5", "dim7": "dim7", "sus4": "sus4"}  # how symbol() writes each quality

# Root spellings: flats for major-like chords (Bb, Eb, Ab as in keys), sharps where minor and
# diminished chords usually have them (C#m, G#m, F#m7b5, D#dim as leading-tone chords).
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_DIM_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_ROOT_NAMES = {"min": _MINOR_NAMES, "m7": _MINOR_NAMES, "dim": _DIM_NAMES, "m7b5": _DIM_NAMES, "dim7": _DIM_NAMES}
_LETTERS = "CDEFGAB"

# Spellings parse_chord accepts for each quality (after the root, before any /bass).
_SPELLINGS: dict[str, str] = {
    "": "maj", "M": "maj", "maj": "maj", "major": "maj",
    "m": "min", "min": "min", "mi": "min", "-": "min", "minor": "min",
    "dim": "dim", "°": "dim", "o": "dim",
    "aug": "aug", "+": "aug", "#5": "aug", "+5": "aug",
    "7": "7", "dom7": "7",
    "maj7": "maj7", "M7": "maj7", "ma7": "maj7", "Δ": "maj7", "Δ7": "maj7", "j7": "maj7",
    "m7": "m7", "min7": "m7", "mi7": "m7", "-7": "m7",
    "m7b5": "m7b5", "min7b5": "m7b5", "-7b5": "m7b5", "ø": "m7b5", "ø7": "m7b5", "Ø": "m7b5", "Ø7": "m7b5",
    "dim7": "dim7", "°7": "dim7", "o7": "dim7",
    "sus4": "sus4", "sus": "sus4",
}
_CASE_SENSITIVE = {"M", "M7", "m", "m7"}  # M (major) and m (minor) differ; other spellings ignore case
# Chords outside the vocabulary that people write, and the nearest one to write instead.
# ({r}: the root as written; {v}: the note a fifth above, the root of a sus2's sus4.)
_INSTEAD = {"6": "{r}", "m6": "{r}m", "9": "{r}7", "11": "{r}7", "13": "{r}7", "add9": "{r}", "add2": "{r}",
            "madd9": "{r}m", "m9": "{r}m7", "m11": "{r}m7", "maj9": "{r}maj7", "7sus4": "{r}sus4", "7sus": "{r}sus4",
            "9sus4": "{r}sus4", "sus2": "{v}sus4/{r}", "5": "{r} or {r}m", "7b9": "{r}7", "7#9": "{r}7",
            "mmaj7": "{r}m", "m(maj7)": "{r}m", "mmaj": "{r}m"}
_CHORD = re.compile(r"^([A-Ga-g])([#b]?)(.*?)(?:/([A-Ga-g])([#b]?))?$")
_FORMS = "a root A-G (with # or b), then nothing, m, dim, aug, 7, maj7, m7, m7b5, dim7 or sus4, and an optional /bass"


@dataclass(frozen=True)
class Chord:
    """A chord: root pitch class 0-11, quality (a QUALITIES key) and bass pitch class (the root
    unless given: an inversion such as F/A, or a bass outside the chord such as C/Bb)."""

    root: int
    quality: str = "maj"
    bass: int | None = None

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise MusicError(f"unknown chord quality {self.quality!r}: use one of {', '.join(QUALITIES)}")
        if self.bass is None:
            object.__setattr__(self, "bass", self.root)  # frozen: fill the default as __init__ would
        for name, pc in (("root", self.root), ("bass", self.bass)):
            if not isinstance(pc, int) or not 0 <= pc < 12:
                raise MusicError(f"bad chord {name} {pc!r}: use a pitch class 0-11 (C=0)")

    def tones(self) -> tuple[int, ...]:
        """The chord's pitch classes, root first, then third (or fourth), fifth, seventh."""
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality][0])

    @property
    def inverted(self) -> bool:
        """True when something other than the root is in the bass."""
        return self.bass != self.root

    def root_position(self) -> Chord:
        """The same chord with its root in the bass."""
        return Chord(self.root, self.quality)

    def transpose(self, semitones: int) -> Chord:
        """The chord ``semitones`` higher (root and bass)."""
        return Chord((self.root + semitones) % 12, self.quality, (self.bass + semitones) % 12)

    def symbol(self, sharps: int | None = None) -> str:
        """The chord symbol: 'Am', 'G7', 'F/A', 'Bdim', 'Cmaj7', 'F#m7b5', 'Bb/D'. Black-key roots
        are spelled as the key signature ``sharps`` suggests (Key.sharps: C#/E# in F# minor, Db/F
        in Ab), or without it by the quality (Bb, Eb, Ab majors; C#m, G#m minors)."""
        names = _ROOT_NAMES.get(self.quality, _FLAT_NAMES)
        if sharps:
            names = _SHARP_NAMES if sharps > 0 else _FLAT_NAMES
        root = names[self.root]
        text = root + _SUFFIX[self.quality]
        return text if self.bass == self.root else f"{text}/{self._bass_name(root)}"

    def _bass_name(self, root: str) -> str:
        """The bass spelled from the root's letter when it is a chord tone (C#/E#, Ab/C), else by
        the root's accidentals (C/Bb, F#/G#)."""
        intervals, steps = QUALITIES[self.quality]
        for interval, step in zip(intervals, steps):
            if (self.root + interval) % 12 == self.bass:
                letter = _LETTERS[(_LETTERS.index(root[0]) + step) % 7]
                shift = (self.bass - LETTER_PITCH_CLASS[letter] + 6) % 12 - 6
                if abs(shift) <= 1:
                    return letter + {-1: "b", 0: "", 1: "#"}[shift]
        return (_SHARP_NAMES if "#" in root else _FLAT_NAMES)[self.bass]

    def __str__(self) -> str:
        return self.symbol()


def pitch_class_of(letter: str, accidental: str) -> int:
    """'F', '#' -> 6; 'B', 'b' -> 10."""
    return (LETTER_PITCH_CLASS[letter] + {"": 0, "#": 1, "b": -1}[accidental]) % 12


def parse_chord(text: str) -> Chord:
    """A chord symbol to a Chord: 'Am', 'Cmin', 'C-', 'CM7', 'C°', 'C+', 'Cø', 'Csus4', 'Bb/D', 'F♯m'."""
    t = str(text).strip().replace("♯", "#").replace("♭", "b")
    m = _CHORD.match(t)
    if not t or m is None:
        raise MusicError(f"unknown chord {text!r}: write {_FORMS} (e.g. Am, G7, F/A)")
    letter, acc, suffix, bass_letter, bass_acc = m.groups()
    if letter.islower() or (bass_letter or "A").islower():
        fixed = letter.upper() + acc + suffix + (f"/{bass_letter.upper()}{bass_acc}" if bass_letter else "")
        raise MusicError(f"unknown chord {text!r}: write note letters as capitals ({fixed})")
    quality = _SPELLINGS.get(suffix) if suffix in _CASE_SENSITIVE else _SPELLINGS.get(suffix.lower(), _SPELLINGS.get(suffix))
    if quality is None:
        if "/" in suffix:
            raise MusicError(f"unknown chord {text!r}: after / write the bass note as A-G with # or b (e.g. F/A, Bb/D)")
        hint = _INSTEAD.get(suffix, _INSTEAD.get(suffix.lower()))
        if hint is not None:
            fifth = _FLAT_NAMES[(pitch_class_of(letter, acc) + 7) % 12]
            raise MusicError(f"chord {text!r} is not in the chord vocabulary: write {hint.format(r=letter + acc, v=fifth)}")
        raise MusicError(f"unknown chord {text!r}: {suffix!r} is no chord quality here; write {_FORMS}")
    root_pc = pitch_class_of(letter, acc)
    bass_pc = pitch_class_of(bass_letter, bass_acc) if bass_letter else root_pc
    return Chord(root_pc, quality, bass_pc)
