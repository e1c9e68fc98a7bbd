"""Writing a Melody as a MIDI file: the bytes built directly (``composer.music.smf``), tempo,
meter and key on the conductor track, one named melody track with musical velocities, every
track ending exactly on the last bar line."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from composer.errors import MusicError
from composer.files import atomic_write
from composer.music import smf
from composer.music.melody import STEPS_PER_QUARTER, Melody


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
    if not 0 <= program <= 127:
        raise MusicError(f"program {program} is outside 0-127")
    # MIDI text events hold latin-1 bytes: other characters (a file name like 'ソナタ.mid' in
    # the text) become '?'; control characters are dropped.
    tpq = 480
    tick = tpq // STEPS_PER_QUARTER  # exact: 40 ticks per grid step
    end = melody.total_steps * tick
    starts = melody.bar_starts
    meters = ((0, melody.time_signature),) + melody.meter_changes
    keys = ((0, melody.key),) + melody.key_changes
    head = [smf.Event(0, smf.tempo_meta(melody.tempo))]
    head += [smf.Event(starts[b] * tick, smf.time_signature_meta(m.numerator, m.denominator)) for b, m in meters]
    head += [smf.Event(starts[b] * tick, smf.key_signature_meta(k.sharps, k.minor)) for b, k in keys]
    if text:
        head.append(smf.Event(0, smf.sequencer_meta(SETTINGS_ID, _latin1(text).encode("latin-1"))))
    body = [smf.Event(0, smf.text_meta(0x03, _latin1(track_name)), 0), smf.Event(0, bytes([smf.PROGRAM, program]), 0)]
    for n, vel in zip(melody.notes, velocities(melody)):
        body.append(smf.Event(n.start * tick, bytes([smf.NOTE_ON, n.pitch, vel]), 2))
        body.append(smf.Event(n.end * tick, bytes([smf.NOTE_OFF, n.pitch, 0]), 1))
    # after the bar's note-offs, before its note-ons (pretty_midi warns that it skips them here)
    body += [smf.Event(starts[b] * tick, smf.key_signature_meta(k.sharps, k.minor), 1) for b, k in keys]
    return smf.midi_file([smf.track(head, end), smf.track(body, end)], tpq)


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


def write_midi(melody: Melody, path: str | Path, program: int = 0, track_name: str = "Melody",
               text: str | None = None, force: bool = False) -> Path:
    """Write the melody as a MIDI file, atomically; never overwrites without ``force``."""
    return atomic_write(Path(path), melody_to_bytes(melody, program, track_name, text), force=force)
