"""A minimal Standard MIDI File writer: the bytes of a type-1 file, built directly.

``compose generate --num 64`` writes 64 files; building each through pretty_midi and
mido (message objects, value checks, then a re-parse to move the end-of-track) took
about 40 ms a file, this takes well under 1 ms. Only what a melody file needs is
here: tempo, meter, key and the settings on a conductor track, then one named track with
its key, a program change and its notes. Reading stays with symusic and pretty_midi.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from composer.errors import MusicError
from composer.music.meter import is_compound_meter

NOTE_OFF, NOTE_ON, PROGRAM = 0x80, 0x90, 0xC0


@dataclass(frozen=True)
class Event:
    tick: int
    data: bytes  # the event after its delta time (status byte onwards)
    order: int = 1  # among events at the same tick: lower first (note-offs before note-ons)


def varlen(n: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    if n < 0:
        raise MusicError(f"negative delta time {n}")
    out = bytearray([n & 0x7F])
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def meta(kind: int, payload: bytes) -> bytes:
    """A meta event of ``kind`` (0xFF kind length payload)."""
    return bytes([0xFF, kind]) + varlen(len(payload)) + payload


def text_meta(kind: int, text: str) -> bytes:
    """A text-like meta event (1 = text, 3 = track name); ``text`` must be latin-1."""
    return meta(kind, text.encode("latin-1"))


def sequencer_meta(manufacturer: bytes, payload: bytes) -> bytes:
    """A sequencer-specific meta event (FF 7F): a manufacturer id (1 or 3 bytes), then data that
    only the program that wrote it reads; every other reader skips it."""
    return meta(0x7F, manufacturer + payload)


def tempo_meta(bpm: float) -> bytes:
    """A tempo event: microseconds per quarter note (capped at the 3-byte maximum)."""
    return meta(0x51, min(round(60_000_000 / bpm), 0xFFFFFF).to_bytes(3, "big"))


def time_signature_meta(numerator: int, denominator: int) -> bytes:
    """Meter with a metronome click per beat (dotted in compound meters such as 6/8 and 6/16)."""
    if denominator & (denominator - 1) or not 1 <= denominator <= 128:
        raise MusicError(f"time signature denominator {denominator} is not a power of two")
    clocks = 96 // denominator  # MIDI clocks (24 a quarter) per 1/denominator note
    click = clocks * (3 if is_compound_meter(numerator, denominator) else 1)
    return meta(0x58, bytes([numerator, denominator.bit_length() - 1, min(click, 255), 8]))


def key_signature_meta(sharps: int, minor: bool) -> bytes:
    """A key-signature event: sharps (negative: flats) and mode."""
    return meta(0x59, struct.pack(">bB", sharps, int(minor)))


def track(events: Sequence[Event], end_tick: int) -> bytes:
    """An MTrk chunk of the events (sorted by tick, stable), ending at ``end_tick``."""
    body, now = bytearray(), 0
    for e in sorted(events, key=lambda e: (e.tick, e.order)):
        body += varlen(e.tick - now) + e.data
        now = e.tick
    body += varlen(max(end_tick - now, 0)) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def midi_file(tracks: Sequence[bytes], ticks_per_quarter: int) -> bytes:
    """A type-1 file holding the given MTrk chunks."""
    return b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), ticks_per_quarter) + b"".join(tracks)
