"""A generated melody as the API returns it: ``Result`` (its rank, likelihood, settings text and,
with chords, its accompaniment), and how it is written to MIDI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.music.melody import Melody
from composer.music.midi_write import BASS_PROGRAM, CHORDS_PROGRAM


@dataclass(frozen=True)
class Result:
    """One generated melody, ranked among its batch."""

    melody: Melody  # with its tempo and title
    bits_per_note: float  # the model's surprise at it (temperature 1): lower = more typical
    rank: int  # 1 = most likely of its batch
    seed: int  # the batch's seed
    program: int  # General MIDI instrument of its track
    text: str  # the settings, stored in the MIDI file
    longest_copy: int | None = None  # notes shared with a training tune (None: not checked)
    resampled: bool = False  # replaced because an earlier draw copied a training tune
    prime_bars: int = 0  # bars at the start that are the prime's, kept note for note (0: no prime)
    prime_steps: int = 0  # grid steps of those bars: where the new bars begin
    prime_track: str = ""  # the track of the prime file that was continued ('' without a prime file)
    score: float | None = None  # what it is ranked by: bits/note + repetition penalty (composer.generate.ranking)
    repetition: float | None = None  # share of its new bars repeating an earlier bar's rhythm and contour
    usual_repetition: tuple[float, float] | None = None  # real tunes' range of that share (5th-95th percentile)
    loop: bool = False  # a degenerate loop the form did not ask for (left after resampling): ranked last
    loop_resampled: bool = False  # replaced because an earlier draw was a degenerate loop
    chords: tuple | None = None  # (start step, steps, Chord | None): written as Chords and Bass tracks (None: melody only)
    style: str = "block"  # the accompaniment pattern (composer.harmony.accompany.STYLES)
    chords_program: int = CHORDS_PROGRAM  # General MIDI instruments of the Chords and Bass tracks
    bass_program: int = BASS_PROGRAM
    chords_given: bool = False  # the user's chords (played from bar one), not the harmonizer's (a pickup plays alone)

    def to_midi_bytes(self) -> bytes:
        """The MIDI file, exactly as ``compose generate`` writes it: the melody, and with chords
        its Chords and Bass tracks."""
        if self.chords is not None:
            from composer.harmony.accompany import accompanied_bytes

            return accompanied_bytes(self.melody, self.chords, self.style, self.program, self.chords_program,
                                     self.bass_program, self.text, pickup=not self.chords_given)
        from composer.music.midi_io import melody_to_bytes

        return melody_to_bytes(self.melody, program=self.program, track_name="Melody", text=self.text)

    def chord_symbols(self) -> list[tuple[int, int, str]]:
        """(start step, steps, symbol) where the chord changes, for a lead sheet (none without chords)."""
        if self.chords is None:
            return []
        from composer.harmony.accompany import chord_symbols

        return chord_symbols(self.melody, self.chords, pickup=not self.chords_given)

    def file_stem(self, prime: str | None = None, of: int = 1) -> str:
        """The name ``compose generate`` gives this result's files (without suffix), such as
        melody_Dm_6-8_16bars_seed42, tune_continued_..._02 for a prime 'tune' in a batch of ``of``;
        the key and meter are the last bar's (those of the new bars after a prime that changes them)."""
        from composer.files import safe_name

        meter, key = str(self.melody.last_meter), self.melody.last_key.name
        stem = (f"{safe_name(prime)}_continued" if prime is not None else "melody") + \
            f"_{key.replace('#', 'sharp')}_{meter.replace('/', '-')}_{self.melody.n_bars}bars_seed{self.seed}"
        return stem + (f"_{self.rank:02d}" if of > 1 else "")

    def save(self, path: str | Path, force: bool = False) -> Path:
        """Write the MIDI file atomically; an existing file is only replaced with ``force``."""
        from composer.files import atomic_write

        return atomic_write(Path(path), self.to_midi_bytes(), force=force)
