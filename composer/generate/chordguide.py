"""Chord tones on the strong beats of a melody written over chords (``--chords``).

A chord-aware model hears the chord at every token and learns what real melodies do over it,
but one free draw can still put a passing note on the bar line. Musicians' rule for a melody
over given chords is that its strong beats sound chord tones, and the weak ones are free
(passing and neighbour notes). So while sampling over chords, ``ChordToneGuide`` lets a note
that starts on a strong beat (the bar line, and the middle of a bar of an even number of beat
groups: beat 3 in 4/4, the second dotted quarter in 6/8) take only the tones of the chord sounding there,
within the pitch range (when the range holds none, the note is free). The model still chooses
which chord tone, its octave and its rhythm.
"""

from __future__ import annotations

import numpy as np

from composer.harmony.vocab import tone_table
from composer.model.chordcodes import NO_CHORDS
from composer.music.meter import TimeSignature
from composer.tokens.grammar import AFTER_POS
from composer.tokens.tokenizer import PITCH, Tokenizer


def strong_offsets(meter: TimeSignature) -> frozenset[int]:
    """Steps into a bar of ``meter`` that are strong beats: the bar line, and in a bar of an even
    number of beat groups the group at its middle (beat 3 of 4/4, the 2nd dotted quarter of 6/8)."""
    groups = meter.groups
    half = len(groups) // 2
    return frozenset((0, sum(groups[:half])) if len(groups) % 2 == 0 else (0,))


def tones_table(codes: np.ndarray, tonic: int) -> np.ndarray:
    """(steps, 12) bool: the pitch classes of the chord at each step (chord codes relative to
    ``tonic``; no chord: none)."""
    by_code = np.vstack([np.roll(tone_table(), tonic, axis=1), np.zeros((1, 12), dtype=bool)])  # + NO_CHORDS
    return by_code[np.minimum(codes, NO_CHORDS)]


class ChordToneGuide:
    """Narrows a sampler's mask (the Follower interface: ``constrain``, ``advance``) so that notes
    on strong beats are chord tones. Reads the sampler's grammar for each row's onset."""

    def __init__(self, sampler, tokenizer: Tokenizer, codes: np.ndarray, tonic: int, meter: TimeSignature) -> None:
        v = tokenizer.vocab
        self.sampler = sampler
        self.tones = tones_table(codes, tonic)
        self.strong = strong_offsets(meter)
        self.pitch0 = v.first(PITCH)
        n = int((v.kinds == PITCH).sum())
        self.pitch_pc = v.values[self.pitch0:self.pitch0 + n] % 12  # (pitch tokens,)

    def constrain(self, blocked, close: int) -> None:
        """Block the pitches off the chord for rows about to pitch a note on a strong beat."""
        g = self.sampler.grammar
        phase, cursor, start = (np.atleast_1d(np.asarray(a)) for a in (g.phase, g.cursor, g.start))
        for row in np.flatnonzero(phase == AFTER_POS).tolist():
            at = int(cursor[row])
            if at - int(start[row]) not in self.strong or at >= len(self.tones) or not self.tones[at].any():
                continue
            b = blocked[row, self.pitch0:self.pitch0 + len(self.pitch_pc)]
            off = ~self.tones[at][self.pitch_pc]
            if (b | off).all():
                continue  # no chord tone in range: the note is free
            b |= off

    def advance(self, tok, took=None) -> None:
        """Nothing to note: the grammar holds each row's time."""


class Both:
    """Two guides in turn (a plan's Follower or the cadence guide, then the chord-tone guide)."""

    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def constrain(self, blocked, close: int) -> None:
        self.first.constrain(blocked, close)
        self.second.constrain(blocked, close)

    def advance(self, tok, took=None) -> None:
        self.first.advance(tok, took)
        self.second.advance(tok, took)
