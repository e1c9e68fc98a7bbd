"""The chord vocabulary the harmony models predict: stable ids for "no chord" and the 12 roots of
each quality (the bass a separate pitch class), so a checkpoint's outputs keep their meaning.

Chord id 0 is "no chord" (silence, or a bar the user leaves empty with N.C.); then for each
quality in ``QUALITIES`` order the 12 roots C..B: id = 1 + 12 * quality index + root, so a
transposition by k semitones moves an id by k within its block of 12. Bass ids are the pitch
class 0-11, and 12 for "no bass" (no chord). New qualities may only be appended to QUALITIES.
"""

from __future__ import annotations

import numpy as np

from composer.errors import MusicError
from composer.harmony.chords import QUALITIES, Chord

NO_CHORD = 0
_QUALITY_INDEX = {q: i for i, q in enumerate(QUALITIES)}
CHORD_VOCABULARY: tuple[Chord | None, ...] = (None,) + tuple(Chord(root, q) for q in QUALITIES for root in range(12))
NO_BASS = 12
BASS_VOCABULARY_SIZE = 13  # 12 pitch classes and "no bass"


def chord_id(chord: Chord | None) -> int:
    """The id of a chord's root and quality (its bass is ``bass_id``'s); 0 for no chord."""
    if chord is None:
        return NO_CHORD
    return 1 + 12 * _QUALITY_INDEX[chord.quality] + chord.root


def chord_from_id(index: int, bass: int | None = None) -> Chord | None:
    """The chord of a chord id (None for id 0), with bass id ``bass`` (the root when None or NO_BASS)."""
    if not 0 <= index < len(CHORD_VOCABULARY):
        raise MusicError(f"bad chord id {index}: use 0..{len(CHORD_VOCABULARY) - 1}")
    chord = CHORD_VOCABULARY[index]
    if chord is None or bass is None or bass == NO_BASS:
        return chord
    if not 0 <= bass < 12:
        raise MusicError(f"bad bass id {bass}: use 0..{NO_BASS}")
    return Chord(chord.root, chord.quality, bass)


def bass_id(chord: Chord | None) -> int:
    """The bass pitch class of a chord, or NO_BASS for no chord."""
    return NO_BASS if chord is None else chord.bass


def tone_table() -> np.ndarray:
    """(chord ids, 12) bool: the pitch classes of each chord id (none for id 0, no chord); for
    key-relative ids, pitch classes above the tonic (``np.roll`` by a tonic moves them to a key)."""
    table = np.zeros((len(CHORD_VOCABULARY), 12), dtype=bool)
    for i, chord in enumerate(CHORD_VOCABULARY):
        if chord is not None:
            table[i, list(chord.tones())] = True
    return table

