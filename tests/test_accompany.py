"""Accompaniment (issue 14): chord spans as Chords and Bass notes in each style, on 4/4, 3/4 and
6/8, and the three-track MIDI file they are written to, read back with pretty_midi and mido."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import pretty_midi
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from composer.errors import MusicError
from composer.harmony.accompany import STYLES, accompanied_bytes, accompaniment, chord_symbols, choose_voicing
from composer.harmony.baseline import triad_baseline
from composer.harmony.chords import QUALITIES, Chord, parse_chord
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_write import BASS_PROGRAM, CHORDS_PROGRAM, melody_to_bytes, write_accompanied
from tests.conftest import melodies

TICK = 40  # ticks per grid step in written files


def tune(meter: str, bars: int = 4, low: int = 64) -> Melody:
    """A stepwise tune in C major, one note a beat (6/8: eighths), lowest note ``low``."""
    ts = TimeSignature.parse(meter)
    step = 6 if ts.is_compound else ts.beat_steps
    shape = (0, 2, 3, 5, 7, 8, 7, 5, 3, 2)
    notes = tuple(Note(at, step, low + shape[i % len(shape)]) for i, at in enumerate(range(0, bars * ts.bar_steps, step)))
    return Melody(notes, ts, Key(0), bars, tempo=96.0, title="Tune")


def check_invariants(melody: Melody, spans, chords: list[Note], bass: list[Note]) -> None:
    """Every note inside the span of its chord, chord notes chord tones, bass notes the chord's bass."""
    total = melody.total_steps
    for n in chords + bass:
        assert n.duration >= 1 and 0 <= n.pitch <= 127 and n.end <= total
    for group, is_bass in ((chords, False), (bass, True)):
        for n in group:
            holding = [(s, d, c) for s, d, c in spans if s <= n.start and n.end <= s + d]
            assert holding, f"{n} crosses a chord change"
            chord = holding[-1][2]
            if is_bass:
                assert n.pitch % 12 == chord.bass and 36 <= n.pitch <= 59
            else:
                assert n.pitch % 12 in chord.tones()


def lowest_melody(melody: Melody, lo: int, hi: int) -> int:
    return min(n.pitch for n in melody.notes if n.start < hi and n.end > lo)


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8"])
@pytest.mark.parametrize("style", STYLES)
def test_every_style_keeps_to_the_chords_and_under_the_melody(meter: str, style: str):
    m = tune(meter)
    spans = triad_baseline(m)
    chords, bass = accompaniment(m, spans, style)
    assert chords and bass
    check_invariants(m, spans, chords, bass)
    for s, d, _ in spans:
        inside = [n for n in chords if s <= n.start < s + d]
        assert all(n.pitch < lowest_melody(m, s, s + d) for n in inside)
        assert all(b.pitch < min(n.pitch for n in inside) for b in bass if s <= b.start < s + d) if inside else True


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8"])
def test_block_holds_the_whole_chord_for_its_span(meter: str):
    m = tune(meter)
    spans = triad_baseline(m)
    chords, bass = accompaniment(m, spans, "block")
    for s, d, chord in spans:
        held = [n for n in chords if n.start == s]
        assert all(n.duration == d for n in held) and {n.pitch % 12 for n in held} == set(chord.tones())
        assert max(n.pitch for n in held) - min(n.pitch for n in held) < 12  # close position
        assert [(b.start, b.duration) for b in bass if b.start == s] == [(s, d)]
    assert len(bass) == len(spans)


def test_block_voicings_move_little_and_use_inversions():
    m = Melody((Note(0, 192, 76),), TimeSignature(4, 4), Key(0), 4)
    spans = [(i * 48, 48, parse_chord(c)) for i, c in enumerate(["C", "F", "G7", "C"])]
    chords, _ = accompaniment(m, spans, "block")
    voicings = [sorted(n.pitch for n in chords if n.start == s) for s, _, _ in spans]
    for a, b in zip(voicings, voicings[1:]):
        assert sum(min(abs(x - y) for y in a) for x in b) <= 6  # a root-position C -> F jump moves 15
    assert voicings[1][0] % 12 == 0  # F over C: the second inversion, C held in the lowest voice
    assert all(55 <= v[-1] < 76 for v in voicings)


def test_bass_plays_the_inversion_in_octaves_two_and_three():
    m = tune("4/4", 2)
    spans = [(0, 48, parse_chord("F/A")), (48, 48, parse_chord("C/Bb"))]
    _, bass = accompaniment(m, spans, "block")
    assert [b.pitch % 12 for b in bass] == [9, 10] and all(36 <= b.pitch <= 59 for b in bass)


def test_arpeggio_is_one_line_in_eighths_up_and_down():
    m = tune("4/4", 1)
    chords, bass = accompaniment(m, [(0, 48, parse_chord("C"))], "arpeggio")
    assert [(n.start, n.duration) for n in chords] == [(i * 6, 6) for i in range(8)]
    p = [n.pitch for n in chords]
    assert p[0] < p[1] < p[2] > p[3] and p[:4] == p[4:]  # C E G E C E G E (some inversion)
    assert [(b.start, b.duration) for b in bass] == [(0, 24), (24, 24)]  # the strong beats 1 and 3


@pytest.mark.parametrize("meter, oom, pah", [("3/4", [0], [12, 24]), ("6/8", [0], [18]), ("4/4", [0, 24], [12, 36]),
                                             ("2/4", [0], [12]), ("7/8", [0, 12, 24], [6, 18, 30, 36])])
def test_oom_pah_bass_on_strong_beats_chord_on_weak(meter: str, oom: list[int], pah: list[int]):
    m = tune(meter, 1)
    chords, bass = accompaniment(m, [(0, m.bar_steps, parse_chord("G7"))], "oom-pah")
    assert [b.start for b in bass] == oom
    assert sorted({n.start for n in chords}) == pah
    assert all(len([n for n in chords if n.start == at]) == 4 for at in pah)  # the whole G7 each time


def test_spans_are_cut_at_the_last_bar_line_and_no_chord_is_silent():
    m = tune("3/4", 2)
    spans = [(0, 36, Chord(0)), (36, 36, None), (72, 100, Chord(7))]
    for style in STYLES:
        chords, bass = accompaniment(m, spans, style)
        assert all(n.end <= 72 for n in chords + bass)
        assert not [n for n in chords + bass if 36 <= n.start < 72]


def test_a_low_melody_still_gets_a_voicing_under_it_when_one_fits():
    m = tune("4/4", 2, low=57)  # A3 and up
    spans = triad_baseline(m)
    chords, _ = accompaniment(m, spans, "block")
    for s, d, _ in spans:
        assert max(n.pitch for n in chords if n.start == s) < lowest_melody(m, s, s + d)
    assert choose_voicing(Chord(0), ceiling=40) == (43, 48, 52)  # nothing fits: the lowest


def test_unknown_style_is_refused():
    with pytest.raises(MusicError, match="unknown accompaniment style 'waltz'"):
        accompaniment(tune("3/4"), [], "waltz")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=melodies(max_bars=6), data=st.data())
def test_any_melody_and_any_chords_keep_the_invariants(m: Melody, data):
    cuts = sorted(set(data.draw(st.lists(st.integers(1, m.total_steps - 1), max_size=8)) if m.total_steps > 1 else []))
    edges = [0, *cuts, m.total_steps + data.draw(st.integers(0, 30))]
    chords_drawn = st.builds(Chord, st.integers(0, 11), st.sampled_from(list(QUALITIES)))
    spans = [(a, b - a, data.draw(chords_drawn)) for a, b in zip(edges, edges[1:])]
    clipped = [(a, min(d, m.total_steps - a), c) for a, d, c in spans]
    for style in STYLES:
        chords, bass = accompaniment(m, spans, style)
        check_invariants(m, clipped, chords, bass)


def test_chord_symbols_merge_repeats_and_follow_the_key():
    m = Melody((Note(0, 12, 70),), TimeSignature(4, 4), Key(6), 3)  # F# major
    spans = [(0, 48, Chord(6)), (48, 48, Chord(6)), (96, 24, Chord(10, "min")), (120, 24, Chord(1, "7", 5))]
    assert chord_symbols(m, spans) == [(0, 96, "F#"), (96, 24, "A#m"), (120, 24, "C#7/E#")]


# ---- the written file ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8"])
def test_written_file_has_three_named_tracks_and_the_melody_unchanged(tmp_path: Path, meter: str):
    m = tune(meter)
    path = tmp_path / "song.mid"
    chords, bass = accompaniment(m, triad_baseline(m), "oom-pah")
    write_accompanied(m, chords, bass, path, program=73, chords_program=4, bass_program=33)
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.name for i in pm.instruments] == ["Melody", "Chords", "Bass"]
    assert [i.program for i in pm.instruments] == [73, 4, 33]
    seconds = 60.0 / 96 / 12  # one grid step at 96 quarters a minute
    assert [(round(n.start / seconds), round(n.end / seconds), n.pitch) for n in pm.instruments[0].notes] == \
        [(n.start, n.end, n.pitch) for n in m.notes]
    assert len(pm.instruments[1].notes) == len(chords) and len(pm.instruments[2].notes) == len(bass)
    assert pm.get_tempo_changes()[1].tolist() == pytest.approx([96.0])
    ts = pm.time_signature_changes[0]
    assert (ts.numerator, ts.denominator, ts.time) == (m.time_signature.numerator, m.time_signature.denominator, 0)
    mf = mido.MidiFile(str(path))
    assert mf.type == 1 and len(mf.tracks) == 4
    for track, channel in zip(mf.tracks[1:], (0, 1, 2)):
        assert {msg.channel for msg in track if hasattr(msg, "channel")} == {channel}
        assert [msg.key for msg in track if msg.type == "key_signature"] == ["C"]
    assert {sum(msg.time for msg in t) for t in mf.tracks} == {m.total_steps * TICK}  # all end on the bar line


def test_accompanied_file_defaults_and_melody_only_writer_unchanged():
    m = tune("4/4", 2)
    data = accompanied_bytes(m, triad_baseline(m), "block")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert [i.program for i in pm.instruments] == [0, CHORDS_PROGRAM, BASS_PROGRAM] and BASS_PROGRAM == 32
    # the conductor and melody tracks are those of the melody-only writer
    alone, both = mido.MidiFile(file=io.BytesIO(melody_to_bytes(m))), mido.MidiFile(file=io.BytesIO(data))
    assert alone.tracks[0] == both.tracks[0] and alone.tracks[1] == both.tracks[1]


def test_bad_program_is_refused(tmp_path: Path):
    m = tune("4/4", 1)
    with pytest.raises(MusicError, match="program 128 is outside 0-127"):
        write_accompanied(m, [], [], tmp_path / "x.mid", bass_program=128)
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize("style", STYLES)
def test_a_pickup_is_played_alone(style: str):
    m = Melody((Note(36, 12, 67), Note(48, 48, 72)), TimeSignature(4, 4), Key(0), 2)  # an upbeat G, then C
    spans = [(0, 48, Chord(7)), (48, 48, Chord(0))]
    chords, bass = accompaniment(m, spans, style)
    assert min(n.start for n in chords + bass) == 48
    assert chord_symbols(m, spans) == [(48, 48, "C")]
