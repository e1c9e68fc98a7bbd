"""The music layer's facts: meters (bar, beat, compound time, usual tempo), keys and their scales,
per-bar analysis, and MusicError for anything that is not valid music."""

from __future__ import annotations

import io

import mido
import pytest
from hypothesis import given

from composer.errors import ComposerError, MusicError, TokenizerError
from composer.music.bars import bar_repetition, bar_shapes, repeated_bars
from composer.music.keys import MAJOR_SCALE, MINOR_SCALE, Key
from composer.music.melody import STEPS_PER_QUARTER, Melody, Note, parse_pitch
from composer.music.meter import MAX_BAR_STEPS, TimeSignature, supported_meters
from composer.music.midi_io import melody_to_bytes
from composer.music.smf import time_signature_meta
from conftest import keys, meters

Q = STEPS_PER_QUARTER


@pytest.mark.parametrize("meter, compound, beat_steps, beats, tempo", [
    ("4/4", False, Q, 4, 120.0),
    ("3/4", False, Q, 3, 120.0),
    ("2/2", False, 2 * Q, 2, 180.0),
    ("3/2", False, 2 * Q, 3, 180.0),
    ("6/8", True, 3 * Q // 2, 2, 150.0),
    ("9/8", True, 3 * Q // 2, 3, 150.0),
    ("12/8", True, 3 * Q // 2, 4, 150.0),
    ("3/8", False, Q // 2, 3, 120.0),  # three eighths: a simple meter, one beat per eighth
    ("5/8", False, Q // 2, 5, 120.0),
    ("7/8", False, Q // 2, 7, 120.0),
    ("6/16", True, 3 * Q // 4, 2, 150.0),  # compound too: two dotted-eighth beats, as the MIDI click says
])
def test_meter_beats_and_usual_tempo(meter, compound, beat_steps, beats, tempo):
    ts = TimeSignature.parse(meter)
    assert (ts.is_compound, ts.beat_steps, ts.beats, ts.usual_tempo) == (compound, beat_steps, beats, tempo)


@given(meters)
def test_beats_fill_the_bar(ts: TimeSignature):
    if 48 % ts.denominator == 0:  # (a 32nd is 1.5 grid steps: n/32 beats are rounded)
        assert ts.beats * ts.beat_steps == ts.bar_steps
    assert sum(ts.groups) == ts.bar_steps
    assert ts.bar_steps <= MAX_BAR_STEPS and TimeSignature.parse(str(ts)) == ts


def test_supported_meters():
    names = [str(ts) for ts in supported_meters()]
    assert {"4/4", "3/4", "2/4", "6/8", "9/8", "12/8", "2/2", "3/2", "7/8", "5/16"} <= set(names)
    assert {"6/2", "3/1", "4/1", "4/2", "16/4", "9/4", "2/32"} <= set(names)  # bars up to 16 quarters (version 2)
    assert "17/4" not in names and "33/8" not in names and "1/32" not in names and len(names) == len(set(names))


def test_metronome_click_per_beat():
    clocks = {m: time_signature_meta(*map(int, m.split("/")))[5] for m in ("4/4", "6/8", "2/2")}
    assert clocks == {"4/4": 24, "6/8": 36, "2/2": 48}  # MIDI clocks per click: 24 a quarter
    assert time_signature_meta(6, 16)[5] == 18  # a dotted eighth, as written before is_compound existed
    m = Melody((Note(0, 18, 67),), TimeSignature(6, 8), Key(7), 1)
    (ts,) = [e for e in mido.MidiFile(file=io.BytesIO(melody_to_bytes(m))).tracks[0] if e.type == "time_signature"]
    assert ts.clocks_per_click == 36


def test_key_scales():
    assert Key(0).scale == MAJOR_SCALE == (0, 2, 4, 5, 7, 9, 11)
    assert Key(9, minor=True).scale == MINOR_SCALE == (0, 2, 3, 5, 7, 8, 10, 11)  # natural + raised 7th
    d_minor = Key.parse("Dm")
    assert [p for p in range(60, 72) if d_minor.in_scale(p)] == [60, 61, 62, 64, 65, 67, 69, 70]  # C C# D E F G A Bb
    assert Key.parse("Eb").in_scale(parse_pitch("Bb3")) and not Key.parse("Eb").in_scale(parse_pitch("B3"))


@given(keys)
def test_every_key_holds_its_tonic_and_transposes_its_scale(key: Key):
    assert key.in_scale(key.tonic) and key.in_scale(key.tonic + 12 * 5)
    up = key.transpose(5)
    assert [up.in_scale(p + 5) for p in range(12)] == [key.in_scale(p) for p in range(12)]


def test_bars_repeating_an_earlier_bar():
    motif = [(0, 12, 60), (12, 12, 64), (24, 24, 62)]
    notes = [Note(b * 48 + s, d, p + shift) for b, shift in ((0, 0), (1, 5), (3, 0)) for s, d, p in motif]
    m = Melody(tuple(notes), TimeSignature(4, 4), Key(0), 4)
    shapes = bar_shapes(m)
    assert list(shapes) == [0, 1, 3] and shapes[0][:2] == shapes[1][:2] and shapes[0][2] != shapes[1][2]
    assert repeated_bars(m) == (2, 3) and bar_repetition(m) == pytest.approx(2 / 3)


@pytest.mark.parametrize("make", [
    lambda: Note(-1, 6, 60), lambda: Note(0, 0, 60), lambda: Note(0, 6, 128), lambda: Key(12),
    lambda: TimeSignature(3, 5), lambda: TimeSignature(0, 4), lambda: TimeSignature.parse("6-8"),
    lambda: Key.parse("H"), lambda: parse_pitch("X9"), lambda: parse_pitch("C12"),
    lambda: Melody((Note(0, 12, 60), Note(6, 6, 62)), TimeSignature(4, 4), Key(0), 1),  # overlap
    lambda: Melody((Note(0, 60, 60),), TimeSignature(4, 4), Key(0), 1),  # longer than its bars
    lambda: melody_to_bytes(Melody((), TimeSignature(4, 4), Key(0), 1), program=128),
    lambda: time_signature_meta(4, 3),
], ids=["note-start", "note-length", "note-pitch", "key-tonic", "meter-5", "meter-0", "meter-text", "key-text",
        "pitch-text", "pitch-range", "overlap", "too-long", "program", "smf-denominator"])
def test_music_errors_are_music_errors(make):
    with pytest.raises(MusicError) as e:
        make()
    assert isinstance(e.value, ComposerError) and not isinstance(e.value, TokenizerError)
    assert str(e.value) and "\n" not in str(e.value)
