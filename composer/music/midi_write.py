"""Writing a Melody as a MIDI file: the bytes built directly (``composer.music.smf``), tempo,
meter and key on the conductor track, one named melody track with musical velocities (with
``accompanied_to_bytes`` also a Chords and a Bass track), every track ending exactly on the last
bar line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from composer.errors import MusicError
from composer.files import atomic_write
from composer.music import smf
from composer.music.melody import STEPS_PER_QUARTER, Melody, Note


def clean_text(text: str) -> str:
    """One printable line: control characters (NUL padding, newlines) removed, spaces trimmed."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text or "").strip()


# The settings text ("composer 1.0 | model ... | seed 42 | temperature 1.0 ...") goes in a
# sequencer-specific meta event (FF 7F) at tick 0 on the conductor track: the manufacturer id
# 0x7D (set aside for non-commercial and educational use) and a "composer:" tag, then the text.
# The SMF spec keeps FF 7F for a program's own data, so DAWs (Ableton, Logic, Reaper) and
# notation programs (MuseScore) skip it. A plain text event (FF 01) at a note's tick is the
# karaoke lyric convention: MuseScore printed it as a lyric under the first note. A marker (FF 06)
# would show in every DAW's marker lane and may give a notation program a mark past the last bar.
SETTINGS_ID = b"\x7dcomposer:"

TPQ = 480  # ticks per quarter note
TICK = TPQ // STEPS_PER_QUARTER  # exact: 40 ticks per grid step
CHORDS_PROGRAM = 0  # Acoustic Grand Piano: the accompaniment's default instrument
BASS_PROGRAM = 32  # Acoustic Bass
_PHRASE_SWELL = (0, 3, 5, 1)  # velocity added in bars 1-4 of each phrase


def velocities(melody: Melody) -> list[int]:
    """Musical velocities: accents on the downbeat and main beats, a lift towards high notes,
    and a swell over each 4-bar phrase (so even a repeated one-note bar breathes)."""
    starts = melody.bar_starts
    lo, hi = melody.pitch_range()
    out = []
    for n in melody.notes:
        b = melody.bar_of(n.start)
        pos = n.start - starts[b]
        v = 96 if pos == 0 else 84 if pos in _group_starts(melody.meter_at(b)) else 72
        v += int(round(8 * (n.pitch - lo) / max(1, hi - lo))) - 4
        v += _PHRASE_SWELL[b % 4]
        out.append(max(1, min(127, v)))
    return out


@lru_cache(maxsize=None)
def _group_starts(meter) -> frozenset[int]:
    """Steps within the bar where the meter's beat groups start (7/8 as 2+2+3: 0, 12, 24)."""
    at, out = 0, set()
    for g in meter.groups:
        out.add(at)
        at += g
    return frozenset(out)


def melody_to_bytes(melody: Melody, program: int = 0, track_name: str = "Melody", text: str | None = None) -> bytes:
    """A type-1 MIDI file of the melody: tempo, meter and key at tick 0 on the conductor track
    (meter and key changes at their bar lines), one named track with ``program`` that repeats
    the key signatures (MuseScore 3 reads the key from the note track only), ``text`` stored
    out of sight (``SETTINGS_ID``), every track ending exactly on the last bar line."""
    _check_program(program)
    end = melody.total_steps * TICK
    body = _part(melody, track_name, program, 0, melody.notes, velocities(melody))
    return smf.midi_file([smf.track(_conductor(melody, text), end), smf.track(body, end)], TPQ)


def accompanied_to_bytes(melody: Melody, chords: Sequence[Note], bass: Sequence[Note], program: int = 0,
                         chords_program: int = CHORDS_PROGRAM, bass_program: int = BASS_PROGRAM,
                         text: str | None = None) -> bytes:
    """A type-1 MIDI file of the melody with its accompaniment: the conductor track, then the
    tracks Melody (channel 1), Chords (channel 2) and Bass (channel 3), each with its General
    MIDI program and the key signatures, all ending on the melody's last bar line (notes past it
    are cut there)."""
    for p in (program, chords_program, bass_program):
        _check_program(p)
    end = melody.total_steps * TICK
    tracks = [smf.track(_conductor(melody, text), end),
              smf.track(_part(melody, "Melody", program, 0, melody.notes, velocities(melody)), end)]
    for name, prog, channel, notes, base in (("Chords", chords_program, 1, chords, 60), ("Bass", bass_program, 2, bass, 76)):
        notes = [n for n in notes if n.start < melody.total_steps]
        tracks.append(smf.track(_part(melody, name, prog, channel, notes, _accompaniment_velocities(melody, notes, base)), end))
    return smf.midi_file(tracks, TPQ)


def _check_program(program: int) -> None:
    """A General MIDI program is 0-127."""
    if not 0 <= program <= 127:
        raise MusicError(f"program {program} is outside 0-127")


def _conductor(melody: Melody, text: str | None) -> list[smf.Event]:
    """The conductor track's events: tempo, meters and keys at their bar lines, the settings text."""
    # MIDI text events hold latin-1 bytes: other characters (a file name like 'ソナタ.mid' in
    # the text) become '?'; control characters are dropped.
    starts = melody.bar_starts
    head = [smf.Event(0, smf.tempo_meta(melody.tempo))]
    head += [smf.Event(starts[b] * TICK, smf.time_signature_meta(m.numerator, m.denominator)) for b, m in _meters(melody)]
    head += [smf.Event(starts[b] * TICK, smf.key_signature_meta(k.sharps, k.minor)) for b, k in _keys(melody)]
    if text:
        head.append(smf.Event(0, smf.sequencer_meta(SETTINGS_ID, _latin1(text).encode("latin-1"))))
    return head


def _part(melody: Melody, name: str, program: int, channel: int, notes: Sequence[Note], vels: Sequence[int]) -> list[smf.Event]:
    """One instrument track's events: its name, program, notes on ``channel`` (0-based) and the
    key signatures (MuseScore 3 reads the key from the note track only)."""
    end = melody.total_steps
    body = [smf.Event(0, smf.text_meta(0x03, _latin1(name)), 0), smf.Event(0, bytes([smf.PROGRAM | channel, program]), 0)]
    for n, vel in zip(notes, vels):
        body.append(smf.Event(n.start * TICK, bytes([smf.NOTE_ON | channel, n.pitch, vel]), 2))
        body.append(smf.Event(min(n.end, end) * TICK, bytes([smf.NOTE_OFF | channel, n.pitch, 0]), 1))
    # after the bar's note-offs, before its note-ons (pretty_midi warns that it skips them here)
    body += [smf.Event(melody.bar_starts[b] * TICK, smf.key_signature_meta(k.sharps, k.minor), 1) for b, k in _keys(melody)]
    return body


def _meters(melody: Melody):
    """(bar, meter) of the first meter and each change."""
    return ((0, melody.time_signature),) + melody.meter_changes


def _keys(melody: Melody):
    """(bar, key) of the first key and each change."""
    return ((0, melody.key),) + melody.key_changes


def _accompaniment_velocities(melody: Melody, notes: Sequence[Note], base: int) -> list[int]:
    """Softer than the melody: ``base``, more on the downbeat, less off the beat groups."""
    starts = melody.bar_starts
    out = []
    for n in notes:
        b = melody.bar_of(n.start)
        pos = n.start - starts[b]
        out.append(base + 6 if pos == 0 else base if pos in _group_starts(melody.meter_at(b)) else base - 6)
    return out


def settings_text(path: str | Path) -> str | None:
    """The settings text ``melody_to_bytes`` stored in a MIDI file (None when there is none)."""
    import mido

    for track in mido.MidiFile(str(path)).tracks:
        for msg in track:
            if msg.type == "sequencer_specific" and bytes(msg.data[:len(SETTINGS_ID)]) == SETTINGS_ID:
                return bytes(msg.data[len(SETTINGS_ID):]).decode("latin-1")
    return None


def _latin1(text: str) -> str:
    """One printable line that a MIDI text event can hold: characters outside latin-1 become '?'."""
    return clean_text(text).encode("latin-1", "replace").decode("latin-1")


def write_accompanied(melody: Melody, chords: Sequence[Note], bass: Sequence[Note], path: str | Path,
                      program: int = 0, chords_program: int = CHORDS_PROGRAM, bass_program: int = BASS_PROGRAM,
                      text: str | None = None, force: bool = False) -> Path:
    """Write the melody with its Chords and Bass tracks as a MIDI file, atomically; never
    overwrites without ``force``."""
    data = accompanied_to_bytes(melody, chords, bass, program, chords_program, bass_program, text)
    return atomic_write(Path(path), data, force=force)


def write_midi(melody: Melody, path: str | Path, program: int = 0, track_name: str = "Melody",
               text: str | None = None, force: bool = False) -> Path:
    """Write the melody as a MIDI file, atomically; never overwrites without ``force``."""
    return atomic_write(Path(path), melody_to_bytes(melody, program, track_name, text), force=force)
