"""Writing a Melody as a MIDI file: the bytes built directly (``composer.music.smf``), tempo,
meter and key on the conductor track, one named melody track with musical velocities, every
track ending exactly on the last bar line."""

from __future__ import annotations

import re
from pathlib import Path

from composer.errors import MusicError
from composer.files import atomic_write
from composer.music import smf
from composer.music.melody import STEPS_PER_QUARTER, Melody


def clean_text(text: str) -> str:
    """One printable line: control characters (NUL padding, newlines) removed, spaces trimmed."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text or "").strip()


_PHRASE_SWELL = (0, 3, 5, 1)  # velocity added in bars 1-4 of each phrase


def velocities(melody: Melody) -> list[int]:
    """Musical velocities: accents on the downbeat and main beats, a lift towards high notes,
    and a swell over each 4-bar phrase (so even a repeated one-note bar breathes)."""
    bar = melody.bar_steps
    beat = melody.time_signature.beat_steps
    lo, hi = melody.pitch_range()
    out = []
    for n in melody.notes:
        pos = n.start % bar
        v = 96 if pos == 0 else 84 if pos % beat == 0 else 72
        v += int(round(8 * (n.pitch - lo) / max(1, hi - lo))) - 4
        v += _PHRASE_SWELL[n.start // bar % 4]
        out.append(max(1, min(127, v)))
    return out


def melody_to_bytes(melody: Melody, program: int = 0, track_name: str = "Melody", text: str | None = None) -> bytes:
    """A type-1 MIDI file of the melody: tempo, meter, key (and ``text``) at tick 0 on the
    conductor track, one named track with ``program``, every track ending exactly on the
    last bar line."""
    if not 0 <= program <= 127:
        raise MusicError(f"program {program} is outside 0-127")
    # MIDI text events hold latin-1 bytes: other characters (a file name like 'ソナタ.mid' in
    # the text) become '?'; control characters are dropped.
    tpq = 480
    tick = tpq // STEPS_PER_QUARTER  # exact: 40 ticks per grid step
    end = melody.total_steps * tick
    ts = melody.time_signature
    head = [smf.Event(0, smf.tempo_meta(melody.tempo)), smf.Event(0, smf.time_signature_meta(ts.numerator, ts.denominator)),
            smf.Event(0, smf.key_signature_meta(melody.key.sharps, melody.key.minor))]
    if text:
        head.append(smf.Event(0, smf.text_meta(0x01, _latin1(text))))
    body = [smf.Event(0, smf.text_meta(0x03, _latin1(track_name)), 0), smf.Event(0, bytes([smf.PROGRAM, program]), 0)]
    for n, vel in zip(melody.notes, velocities(melody)):
        body.append(smf.Event(n.start * tick, bytes([smf.NOTE_ON, n.pitch, vel]), 2))
        body.append(smf.Event(n.end * tick, bytes([smf.NOTE_OFF, n.pitch, 0]), 1))
    return smf.midi_file([smf.track(head, end), smf.track(body, end)], tpq)


def _latin1(text: str) -> str:
    """One printable line that a MIDI text event can hold: characters outside latin-1 become '?'."""
    return clean_text(text).encode("latin-1", "replace").decode("latin-1")


def write_midi(melody: Melody, path: str | Path, program: int = 0, track_name: str = "Melody",
               text: str | None = None, force: bool = False) -> Path:
    """Write the melody as a MIDI file, atomically; never overwrites without ``force``."""
    return atomic_write(Path(path), melody_to_bytes(melody, program, track_name, text), force=force)
