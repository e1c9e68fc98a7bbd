"""The MIDI writer as DAWs and notation programs read it (issue 12): the key signature also in
the melody track (MuseScore 3 reads it there), the settings text where no program shows it (not
a text event, which MuseScore takes for a lyric), meter and key changes at their bar lines,
every track ending on the last bar line, and velocities that accent the meter's beat groups."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import mido
import pretty_midi
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_write import SETTINGS_ID, melody_to_bytes, settings_text, velocities, write_midi

TICK = 40  # ticks per grid step (480 per quarter)
TEXT = "composer 1.0 | model default | seed 42 | temperature 1 | key Bbm | meter 7/8"


def timed(track) -> list[tuple[int, mido.Message]]:
    """(absolute tick, message) for each message of a mido track."""
    now, out = 0, []
    for msg in track:
        now += msg.time
        out.append((now, msg))
    return out


def keys_in(track) -> list[tuple[int, str]]:
    return [(t, m.key) for t, m in timed(track) if m.type == "key_signature"]


def changing(tmp_path: Path) -> tuple[Melody, Path]:
    """4 bars: 4/4 in Bb minor, 7/8 from bar 2, D major from bar 3, 6/8 from bar 4."""
    notes = (Note(0, 48, 58), Note(48, 42, 61), Note(90, 42, 62), Note(132, 36, 66))
    m = Melody(notes, TimeSignature(4, 4), Key(10, minor=True), 4, tempo=100.0,
               meter_changes=((1, TimeSignature(7, 8)), (3, TimeSignature(6, 8))), key_changes=((2, Key(2)),))
    return m, write_midi(m, tmp_path / "m.mid", program=73, text=TEXT)


def test_key_signature_in_the_melody_track_too(tmp_path: Path):
    m, path = changing(tmp_path)
    conductor, melody = mido.MidiFile(path).tracks
    want = [(0, "Bbm"), (m.bar_starts[2] * TICK, "D")]
    assert keys_in(conductor) == want and keys_in(melody) == want
    # at the bar line: after the last bar's note-off, before the new bar's note-on
    at = [m.type for t, m in timed(melody) if t == want[1][0]]
    assert at == ["note_off", "key_signature", "note_on"]


@pytest.mark.parametrize("key, name", [(Key(0), "C"), (Key(5), "F"), (Key(3), "Eb"), (Key(6), "F#"),
                                       (Key(2, True), "Dm"), (Key(10, True), "Bbm"), (Key(8, True), "G#m")])
def test_every_key_written_in_both_tracks(tmp_path: Path, key: Key, name: str):
    m = Melody((Note(0, 12, 60),), TimeSignature(3, 4), key, 1)
    tracks = mido.MidiFile(write_midi(m, tmp_path / "k.mid")).tracks
    assert [keys_in(t) for t in tracks] == [[(0, name)], [(0, name)]]


def test_settings_text_out_of_sight_of_notation_programs(tmp_path: Path):
    """No text or lyric event anywhere (least of all at a note's tick): a sequencer-specific
    event with the non-commercial id 0x7D, which pretty_midi and notation programs skip."""
    m, path = changing(tmp_path)
    mid = mido.MidiFile(path)
    kinds = {msg.type for tr in mid.tracks for msg in tr}
    assert not kinds & {"text", "lyrics", "marker", "cue_marker"}
    (seq,) = [(t, msg) for t, msg in timed(mid.tracks[0]) if msg.type == "sequencer_specific"]
    assert seq[0] == 0 and bytes(seq[1].data).startswith(b"\x7d") and bytes(seq[1].data).startswith(SETTINGS_ID)
    assert settings_text(path) == TEXT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pretty_midi: key signatures on the melody track
        pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.text_events == [] and pm.lyrics == []


def test_settings_text_is_one_latin1_line(tmp_path: Path):
    m = Melody((Note(0, 12, 60),), TimeSignature(4, 4), Key(0), 1)
    path = write_midi(m, tmp_path / "t.mid", text="seed 1\n| prime ソナタ.mid\x00")
    assert settings_text(path) == "seed 1 | prime ???.mid"
    assert settings_text(write_midi(m, tmp_path / "none.mid")) is None


def test_meter_and_key_changes_at_bar_lines_and_tracks_end_on_the_last(tmp_path: Path):
    m, path = changing(tmp_path)
    mid = mido.MidiFile(path)
    assert m.bar_starts == (0, 48, 90, 132, 168)
    meters = [(t, (msg.numerator, msg.denominator)) for t, msg in timed(mid.tracks[0]) if msg.type == "time_signature"]
    assert meters == [(0, (4, 4)), (48 * TICK, (7, 8)), (132 * TICK, (6, 8))]
    for track in mid.tracks:
        assert timed(track)[-1][0] == 168 * TICK and track[-1].type == "end_of_track"
    assert (mid.tracks[1][0].name, mid.tracks[1][1].program) == ("Melody", 73)


def test_velocities_accent_7_8_as_2_2_3(tmp_path: Path):
    """Seven eighths of one pitch: the downbeat loudest, then the group starts 2+2+3 (eighths 1, 3, 5)."""
    m = Melody(tuple(Note(6 * i, 6, 67) for i in range(7)), TimeSignature(7, 8), Key(0), 1)
    assert velocities(m) == [92, 68, 80, 68, 80, 68, 68]
    notes = [msg for msg in mido.MidiFile(write_midi(m, tmp_path / "v.mid")).tracks[1] if msg.type == "note_on"]
    assert [n.velocity for n in notes] == velocities(m)


def test_velocities_accent_5_4_as_3_2():
    m = Melody(tuple(Note(12 * i, 12, 67) for i in range(10)), TimeSignature(5, 4), Key(0), 2)
    v = velocities(m)
    assert v[:5] == [92, 68, 68, 80, 68]  # bar 1: group starts on beats 1 and 4
    assert v[5:] == [x + 3 for x in v[:5]]  # bar 2: the same accents, a little louder (phrase swell)


def test_velocities_in_a_meter_change_follow_each_bar():
    m = Melody(tuple(Note(12 * i, 12, 67) for i in range(4)) + tuple(Note(48 + 6 * i, 6, 67) for i in range(7)),
               TimeSignature(4, 4), Key(0), 2, meter_changes=((1, TimeSignature(7, 8)),))
    assert velocities(m)[4:] == [95, 71, 83, 71, 83, 71, 71]


bars = st.lists(st.sampled_from([TimeSignature(4, 4), TimeSignature(3, 4), TimeSignature(6, 8), TimeSignature(7, 8),
                                 TimeSignature(5, 4), TimeSignature(1, 8)]), min_size=1, max_size=6)
keys = st.lists(st.builds(Key, st.integers(0, 11), st.booleans()), min_size=6, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meters=bars, ks=keys)
def test_any_changes_are_written_at_their_bar_lines(tmp_path: Path, meters, ks):
    """A note on each bar's downbeat; meter and key changes wherever the values change."""
    mc = tuple((b, t) for b, t in enumerate(meters) if b and t != meters[b - 1])
    kc = tuple((b, k) for b, k in enumerate(ks[:len(meters)]) if b and k != ks[b - 1])
    starts = [0]
    for t in meters:
        starts.append(starts[-1] + t.bar_steps)
    notes = tuple(Note(s, 6, 60 + b) for b, s in enumerate(starts[:-1]))
    m = Melody(notes, meters[0], ks[0], len(meters), meter_changes=mc, key_changes=kc)
    mid = mido.MidiFile(file=io.BytesIO(melody_to_bytes(m, text="x")))
    want_keys = [(starts[b] * TICK, k.sharps, k.minor) for b, k in ((0, ks[0]),) + kc]
    for track in mid.tracks:
        got = [(t, msg) for t, msg in timed(track) if msg.type == "key_signature"]
        assert [(t, pretty_midi.key_name_to_key_number(msg.key)) for t, msg in got] == \
               [(t, Key.from_sharps(s, minor).index) for t, s, minor in want_keys]  # tonic and mode
        assert timed(track)[-1][0] == starts[-1] * TICK
    meters_at = [(t, (msg.numerator, msg.denominator)) for t, msg in timed(mid.tracks[0]) if msg.type == "time_signature"]
    assert meters_at == [(starts[b] * TICK, (t.numerator, t.denominator)) for b, t in ((0, meters[0]),) + mc]
    ons = [t for t, msg in timed(mid.tracks[1]) if msg.type == "note_on"]
    assert ons == [s * TICK for s in starts[:-1]]
