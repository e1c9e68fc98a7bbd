"""Reading and writing MIDI: round trips, real multi-track files, the melody heuristics, bad input."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError, MidiError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody, read_report, write_midi
from composer.music.midi_write import settings_text
from composer.tokens.tokenizer import Tokenizer
from conftest import FIXTURES, REAL, line, melodies, write_ticks

TOKENIZER = Tokenizer()  # this version's vocabulary


# ---- round trips ---------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(melodies(max_bars=6, full_first_and_last=True), st.sampled_from([60.0, 97.3, 120.0, 176.5]))
def test_midi_file_round_trip(tmp_path: Path, m: Melody, tempo: float):
    m = Melody(m.notes, m.time_signature, m.key, m.n_bars, tempo=tempo, title="t")
    path = write_midi(m, tmp_path / "m.mid", force=True)
    r = read_report(path)
    assert r.melody == m
    assert r.melody.tempo == pytest.approx(tempo, abs=1e-3)
    assert (r.quantized, r.dropped, r.key_estimated, r.track, r.source_notes) == (0, 0, False, "Melody", len(m.notes))
    assert TOKENIZER.decode(TOKENIZER.encode(r.melody)) == m


def test_written_file_ends_on_the_last_bar_line(tmp_path: Path):
    m = Melody((Note(0, 6, 60), Note(40, 8, 64)), TimeSignature(3, 4), Key(0), 2)
    mid = mido.MidiFile(str(write_midi(m, tmp_path / "a.mid")))
    for tr in mid.tracks:
        assert sum(msg.time for msg in tr) == 2 * 3 * mid.ticks_per_beat
    names = [msg.name for msg in mid.tracks[1] if msg.type == "track_name"]
    assert names == ["Melody"]


def test_written_file_as_pretty_midi_and_mido_see_it(tmp_path: Path):
    """The hand-built bytes: every meta event a DAW reads, and legato repeats of one pitch
    (the note-off sorts before the note-on at the same tick)."""
    import pretty_midi

    notes = (Note(0, 12, 62), Note(12, 12, 62), Note(24, 6, 66), Note(30, 6, 69), Note(36, 36, 62))
    m = Melody(notes, TimeSignature(6, 8), Key(2, minor=True), 2, tempo=97.0)
    path = write_midi(m, tmp_path / "m.mid", program=73, text="composer | seed 1 | ソナタ")
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [(t.numerator, t.denominator, t.time) for t in pm.time_signature_changes] == [(6, 8, 0.0)]
    assert [(k.key_number, k.time) for k in pm.key_signature_changes] == [(12 + 2, 0.0)]  # D minor
    assert pm.get_tempo_changes()[1].tolist() == [pytest.approx(97.0, abs=1e-3)]
    assert pm.text_events == [] and settings_text(path) == "composer | seed 1 | ???"  # out of notation's sight
    (inst,) = pm.instruments
    assert (inst.name, inst.program, inst.is_drum) == ("Melody", 73, False)
    spb = 60 / 97.0 / 12  # seconds per grid step
    got = [(round(n.start / spb), round(n.end / spb), n.pitch) for n in inst.notes]
    assert got == [(n.start, n.end, n.pitch) for n in notes]
    assert all(0 < n.velocity <= 127 for n in inst.notes)
    mid = mido.MidiFile(str(path))  # mido validates every message and chunk length
    assert (mid.type, mid.ticks_per_beat, len(mid.tracks)) == (1, 480, 2)
    (ts,) = [msg for msg in mid.tracks[0] if msg.type == "time_signature"]
    assert ts.clocks_per_click == 36  # one click per dotted quarter in 6/8
    assert mid.length == pytest.approx(2 * 36 * spb)


@given(st.integers(0, 0x0FFFFFFF))
def test_varlen_round_trip(n: int):
    from composer.music.smf import varlen

    b = varlen(n)
    value = 0
    for i, byte in enumerate(b):
        assert (byte >= 0x80) == (i < len(b) - 1)
        value = value << 7 | byte & 0x7F
    assert value == n and len(b) <= 4


def test_write_never_overwrites_without_force(tmp_path: Path):
    m = Melody((Note(0, 6, 60),), TimeSignature(4, 4), Key(0), 1)
    p = write_midi(m, tmp_path / "a.mid")
    before = p.read_bytes()
    m2 = Melody((Note(0, 12, 62),), TimeSignature(4, 4), Key(0), 1)
    with pytest.raises(ComposerError, match="--force"):
        write_midi(m2, p)
    assert p.read_bytes() == before
    write_midi(m2, p, force=True)
    assert read_melody(p) == m2
    assert [x.name for x in tmp_path.iterdir()] == ["a.mid"]  # no temp file left


# ---- real multi-track files (music21's test files, see fixtures/real/README.md) -------------------

@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_files_yield_a_melody(path: Path):
    r = read_report(path)
    m = r.melody
    assert len(m.notes) > 0 and r.source_notes == len(m.notes) + r.dropped
    assert r.quantized <= len(m.notes)  # counts notes of the melody, not of the whole track
    assert all(a.end <= b.start for a, b in zip(m.notes, m.notes[1:]))  # monophonic
    assert TOKENIZER.decode(TOKENIZER.encode(m)) == m


@pytest.mark.parametrize("name, meter, key, estimated, track, notes, first_start", [
    ("m21_test02.mid", "4/4", "F#m", False, "Instrument 1", 36, 36),  # 1/4 pickup bar kept as a pickup
    ("m21_test03.mid", "3/4", "Ab", False, "Piano (hi)", 435, 0),  # 1 bar of 4/4, then 3/4
    ("m21_test05.mid", "4/4", None, True, "track 1", 6, 0),  # no meter, no tempo, no names
    ("m21_test09.mid", "6/8", "F", False, "Right Hand", 704, 0),  # 192 tpq, tempo changes, chords
    ("m21_test12.mid", "4/4", "C", False, "SOPRANO", 3, 0),  # highest of 4 voices
    ("m21_test18.mid", "4/4", None, True, "音轨1", 34, 0),
    ("m21_k525short.mid", "4/4", "C", False, "String Ensemble 1", 41, 0),
])
def test_real_file_details(name, meter, key, estimated, track, notes, first_start):
    r = read_report(FIXTURES / "real" / name)
    assert str(r.melody.time_signature) == meter
    assert r.key_estimated is estimated
    if key:
        assert r.melody.key.name == key
    assert r.track == track and len(r.melody.notes) == notes and r.melody.notes[0].start == first_start


def test_real_file_tempo_and_track_choice():
    r = read_report(FIXTURES / "real" / "m21_test17.mid")
    assert r.track == "Piano" and r.source_notes == 25  # the busier of two tracks named Piano
    assert read_report(FIXTURES / "real" / "m21_test05.mid").melody.tempo == 120.0
    assert read_report(FIXTURES / "real" / "m21_test03.mid").melody.tempo == 144.0


# ---- heuristics on files written here -------------------------------------------------------------

def _band(tmp_path: Path, melody_name: str | None) -> Path:
    mel = line([(i * 12, 12, 72 + (i % 5)) for i in range(16)])
    bass = line([(i * 3, 3, 36 + (i % 7)) for i in range(64)])
    chords = line([(i * 48, 48, p) for i in range(4) for p in (60, 64, 67)])
    drums = line([(i * 3, 2, 42 + (i % 2) * 38) for i in range(64)])  # busy and high: hi-hat 42, 80
    return write_ticks(tmp_path / "band.mid", [
        {"name": "Bass", "notes": bass, "channel": 1},
        {"name": "Pad", "notes": chords, "channel": 2},
        {"name": "Drums", "notes": drums, "channel": 9},
        {"name": melody_name, "notes": mel, "channel": 3},
    ])


def test_named_melody_track_wins(tmp_path: Path):
    r = read_report(_band(tmp_path, "Lead Vocal"))
    assert r.track == "Lead Vocal" and len(r.melody.notes) == 16 and r.dropped == 0


def test_highest_busiest_non_drum_track_otherwise(tmp_path: Path):
    r = read_report(_band(tmp_path, "Synth 2"))
    assert r.track == "Synth 2" and [n.pitch for n in r.melody.notes][:5] == [72, 73, 74, 75, 76]


def test_drum_only_file_is_refused(tmp_path: Path):
    p = write_ticks(tmp_path / "d.mid", [{"name": "Kit", "notes": line([(0, 3, 36), (6, 3, 38)]), "channel": 9}])
    with pytest.raises(MidiError, match="drum"):
        read_report(p)


def test_skyline_keeps_the_top_line(tmp_path: Path):
    steps = [(0, 12, 72), (0, 12, 64), (0, 12, 60),  # chord: top note kept
             (12, 24, 60), (18, 6, 71),  # a higher note cuts a sounding lower one
             (36, 12, 74), (40, 4, 67),  # inner voice under a held note: dropped
             (48, 15, 76), (60, 12, 74),  # legato: starts a sixteenth before the end, outlasts it
             (72, 24, 72), (90, 3, 60)]  # short low note under a long one: dropped
    p = write_ticks(tmp_path / "s.mid", [{"name": "Piano", "notes": line(steps)}])
    r = read_report(p)
    assert [(n.start, n.duration, n.pitch) for n in r.melody.notes] == [
        (0, 12, 72), (12, 6, 60), (18, 6, 71), (36, 12, 74), (48, 12, 76), (60, 12, 74), (72, 24, 72)]
    assert r.dropped == len(steps) - 7 and r.quantized == 0


def test_quantization_moves_and_counts(tmp_path: Path):
    tpq = 480  # 40 ticks per step
    notes = [(0, 470, 60), (487, 960, 62), (960, 1440, 64), (1453, 1913, 65)]  # 2 late onsets, 1 early end
    r = read_report(write_ticks(tmp_path / "q.mid", [{"name": "Lead", "notes": notes}], tpq=tpq))
    assert [(n.start, n.end) for n in r.melody.notes] == [(0, 12), (12, 24), (24, 36), (36, 48)]
    assert r.quantized == 3 and r.dropped == 0


@pytest.mark.parametrize("tpq", [96, 120, 192, 1000, 1001, 24, 32767])
def test_odd_resolutions(tmp_path: Path, tpq: int):
    steps = [(0, 3, 60), (3, 3, 62), (6, 4, 64), (10, 4, 65), (14, 4, 67), (18, 30, 69), (48, 96, 71)]
    m = Melody(tuple(Note(*s) for s in steps), TimeSignature(4, 4), Key(0), 3)
    r = read_report(write_ticks(tmp_path / "r.mid", [{"name": "Tune", "notes": line(steps, tpq)}], tpq=tpq,
                                keys=((0, "C"),)))
    assert r.melody == m
    exact = sum(1 for s, d, _ in steps if (s * tpq) % 12 == 0 and ((s + d) * tpq) % 12 == 0)
    assert r.quantized == len(steps) - exact  # triplets are off the tick grid unless tpq is a multiple of 3


def test_every_meter_section_is_kept_with_its_meter(tmp_path: Path):
    # 2 bars of 3/4 (6 notes), then 4/4 restated every bar for 4 bars (16 notes), then 2 bars of 6/8.
    tpq = 480
    a = [(i * 12, 12, 60 + i) for i in range(6)]
    b = [(72 + i * 12, 12, 70 + i % 4) for i in range(16)]
    c = [(264 + i * 18, 18, 65) for i in range(4)]
    meters = [(0, 3, 4), (72 * 40, 4, 4), (120 * 40, 4, 4), (168 * 40, 4, 4), (216 * 40, 4, 4), (264 * 40, 6, 8)]
    p = write_ticks(tmp_path / "m.mid", [{"name": "Flute", "notes": line(a + b + c, tpq)}], meters=meters,
                    tempos=((0, 90.0), (72 * 40, 100.0), (120 * 40, 140.0)))
    r = read_report(p)
    m = r.melody
    assert str(m.time_signature) == "3/4" and len(m.notes) == 26 and m.n_bars == 8 and r.dropped == 0
    assert m.meter_changes == ((2, TimeSignature(4, 4)), (6, TimeSignature(6, 8)))  # restated 4/4: no change
    assert m.bar_starts[2:4] == (72, 120) and m.notes[6] == Note(72, 12, 70) and m.total_steps == 264 + 72
    assert m.tempo == 90.0  # the tempo at bar 1
    again = read_report(tmp_path / "again.mid" if write_midi(m, tmp_path / "again.mid") else None).melody
    assert again == m  # the meter changes are written at their bar lines and read back


def test_pickup_bar_written_as_its_own_meter(tmp_path: Path):
    # A 2/8 pickup bar, then 6/8: the pickup sits at the end of bar 1 so bar lines stay put.
    notes = [(0, 6, 67), (6, 6, 69)] + [(12 + i * 6, 6, 71) for i in range(12)]
    p = write_ticks(tmp_path / "p.mid", [{"name": "Whistle", "notes": line(notes)}],
                    meters=((0, 2, 8), (12 * 40, 6, 8)))
    m = read_melody(p)
    assert str(m.time_signature) == "6/8" and len(m.notes) == 14
    assert m.notes[0].start == 36 - 12 and m.notes[2].start == 36 and m.n_bars == 3


def test_leading_empty_bars_are_dropped(tmp_path: Path):
    p = write_ticks(tmp_path / "e.mid", [{"name": "Lead", "notes": line([(96 + 30, 6, 60), (144, 12, 62)])}])
    m = read_melody(p)
    assert [n.start for n in m.notes] == [30, 48] and m.n_bars == 2


def test_key_from_signature_else_estimated(tmp_path: Path):
    c_major = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60]
    a_minor = [57, 60, 64, 69, 68, 69, 71, 72, 71, 69, 68, 64, 65, 64, 62, 60, 59, 57, 56, 57]
    for pitches, expected in ((c_major, "C"), (a_minor, "Am")):
        notes = line([(i * 6, 6, p) for i, p in enumerate(pitches)])
        r = read_report(write_ticks(tmp_path / f"{expected}.mid", [{"name": "Lead", "notes": notes}]))
        assert r.key_estimated and r.melody.key.name == expected
    r = read_report(write_ticks(tmp_path / "sig.mid", [{"name": "Lead", "notes": line([(0, 6, 60)])}],
                                keys=((0, "Bbm"),)))
    assert not r.key_estimated and r.melody.key == Key(10, True)


def test_notes_off_the_piano_are_dropped(tmp_path: Path):
    notes = line([(0, 12, 12), (0, 12, 60), (12, 12, 62), (24, 12, 120)])  # a keyswitch below, a squeak above
    r = read_report(write_ticks(tmp_path / "k.mid", [{"name": "Strings", "notes": notes}]))
    assert [n.pitch for n in r.melody.notes] == [60, 62] and r.dropped == 2
    TOKENIZER.encode(r.melody)


# ---- the shipped corpus ----------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parent.parent / "midi_corpus"


def notes_preserved(path: Path, melody: Melody) -> tuple[int, int]:
    """(notes of the file's melody track found exactly in ``melody``, notes in that track): onset,
    length and pitch, compared exactly (in units of 1/(12 * ticks per quarter) of a quarter) after
    aligning the first notes. The melody track of a four-part chorale is its Soprano; other files
    have one track."""
    from collections import Counter

    from symusic import Score

    score = Score(str(path))
    tpq = score.ticks_per_quarter
    tracks = [t for t in score.tracks if t.name == "Soprano"] or list(score.tracks)
    raw = sorted((int(n.time) * 12, int(n.duration) * 12, int(n.pitch)) for t in tracks for n in t.notes)
    if not raw or not melody.notes:
        return 0, len(raw)
    offset = raw[0][0] - melody.notes[0].start * tpq
    kept = Counter((n.start * tpq + offset, n.duration * tpq, n.pitch) for n in melody.notes)
    return sum((Counter(raw) & kept).values()), len(raw)


def test_midi_corpus_round_trip(tmp_path: Path):
    """Every shipped file reads, its tokens decode to the same melody, >= 99.5% of its notes survive
    exactly, and (on a sample) writing the decoded melody and reading it back changes nothing."""
    files = sorted(CORPUS.glob("*.mid"))
    assert len(files) >= 2200, f"midi_corpus/ should hold the built corpus ({len(files)} files found)"
    kept = total = 0
    for i, path in enumerate(files):
        m = read_melody(path)
        back = TOKENIZER.decode(TOKENIZER.encode(m))
        assert back == m, path.name
        k, n = notes_preserved(path, back)
        kept, total = kept + k, total + n
        if i % 25 == 0:
            again = read_melody(write_midi(back, tmp_path / path.name))
            assert again == m, path.name
    assert kept / total >= 0.995, f"{kept}/{total} notes preserved exactly"
