"""Chords in a generation request: the chords a melody is written over (``--chords``), and the
accompaniment of melodies that come without (``--accompany``: the harmonizer's chords).

``over_chords`` settles what the chords need before sampling: one meter and one key (the
request's, the prime's, or the key the progression is in and the model's usual meter), and the
chords' spans on the melody's grid, one bar of the progression per new bar after any prime.
"""

from __future__ import annotations

from collections.abc import Sequence

from composer.errors import RequestError
from composer.harmony.progression import parse_progression, progression_key, progression_spans
from composer.music.keys import Key
from composer.music.melody import Melody
from composer.music.meter import TimeSignature

ChordSpans = tuple  # of (start step, steps, Chord | None)


def over_chords(text: str, bars: int, prime: Melody | None, meter: TimeSignature | None, key: Key | None,
                known_meters: Sequence[TimeSignature]) -> tuple[TimeSignature, Key, ChordSpans]:
    """(meter, key, chord spans over the whole melody) for a melody over the chords ``text``."""
    written = parse_progression(text, bars)
    if prime is not None:
        meter, key, start = prime.last_meter, prime.last_key, prime.total_steps
    else:
        start = 0
        if meter is None:
            meter = TimeSignature(4, 4) if not known_meters or TimeSignature(4, 4) in known_meters else known_meters[0]
        if key is None:
            key = progression_key(written)
    lines = [start + i * meter.bar_steps for i in range(bars + 1)]
    spans = progression_spans(written, lines)
    if prime is None and key is not None and key.minor != progression_key(written).minor and _clash(written, key):
        raise RequestError(f"the chords {text!r} are not in {key.name}: give their key, or leave --key out")
    return meter, key, tuple(spans)


def _clash(bars, key: Key) -> bool:
    """True when no chord of the progression is on the key's tonic (the key given contradicts them)."""
    return not any(c is not None and c.root == key.tonic for bar in bars for c in bar)
