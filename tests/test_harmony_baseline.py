"""The triad baseline on melodies built by hand: one diatonic triad per two quarter notes, the one
covering most of the melody's time, ties to I, V, IV."""

from __future__ import annotations

from hypothesis import given

from composer.harmony.baseline import diatonic_triads, triad_baseline
from composer.harmony.chords import Chord, parse_chord
from composer.music.keys import Key
from composer.music.melody import Melody, Note, parse_pitch
from composer.music.meter import TimeSignature
from conftest import melodies

Q = 12


def melody(text: str, key: str = "C", meter: str = "4/4", **kw) -> Melody:
    """Notes as 'C4:2 D4:1 r:1' (name:quarters, r for a rest), in as many bars as they fill."""
    notes, at = [], 0
    for word in text.split():
        name, quarters = word.split(":")
        steps = round(float(quarters) * Q)
        if name != "r":
            notes.append(Note(at, steps, parse_pitch(name)))
        at += steps
    ts = TimeSignature.parse(meter)
    return Melody(tuple(notes), ts, Key.parse(key), -(-at // ts.bar_steps), **kw)


def symbols(m: Melody) -> list[str]:
    return [chord.symbol() for _, _, chord in triad_baseline(m)]


def test_diatonic_triads_in_tie_break_order():
    assert [c.symbol() for c in diatonic_triads(Key.parse("C"))] == ["C", "G", "F", "Am", "Dm", "Em", "Bdim"]
    assert [c.symbol() for c in diatonic_triads(Key.parse("Am"))] == ["Am", "E", "Dm", "F", "C", "G", "Em", "Bdim"]


def test_c_major_scale_in_half_notes():
    m = melody("C4:2 D4:2 E4:2 F4:2 G4:2 A4:2 B4:2 C5:2")
    spans = triad_baseline(m)
    assert [(s, d) for s, d, _ in spans] == [(i * 24, 24) for i in range(8)]
    # D: G over Dm and Bdim (V before the rest); E: C over Em and Am; A: F over Am and Dm; B: G.
    assert symbols(m) == ["C", "G", "C", "F", "C", "F", "G", "C"]


def test_c_major_scale_in_quarters_is_all_ties():
    assert symbols(melody("C4:1 D4:1 E4:1 F4:1 G4:1 A4:1 B4:1 C5:1")) == ["C"] * 4  # every pair: one note of I


def test_arpeggiated_dominant_seventh_in_c():
    m = melody("G4:0.5 B4:0.5 D5:0.5 F5:0.5 E5:0.5 C5:0.5 G4:0.5 C5:0.5 B3:1 D4:1 C4:2")
    # G B D F: G and Bdim both cover three eighths, V wins the tie; then E C G C, then B D (G over Bdim), C.
    assert symbols(m) == ["G", "C", "G", "C"]


def test_minor_melody_takes_the_major_dominant_for_its_leading_tone():
    m = melody("A4:1 C5:1 E5:1 C5:1 B4:1 G#4:1 E4:1 G#4:1 A4:4", key="Am")
    assert symbols(m) == ["Am", "Am", "E", "E", "Am", "Am"]
    natural = melody("A4:1 C5:1 G4:1 B4:1 A4:2 r:2", key="Am")  # G natural: the natural minor's triads
    assert symbols(natural) == ["Am", "G", "Am", "Am"]  # (the rest keeps the chord before it)


def test_short_last_span_in_three_four_and_key_changes():
    m = melody("C4:3 G4:2 B4:1 D5:3 F#5:3", meter="3/4", key_changes=((2, Key.parse("G")),))
    spans = triad_baseline(m)
    assert [(s, d) for s, d, _ in spans] == [(0, 24), (24, 12), (36, 24), (60, 12), (72, 24), (96, 12), (108, 24), (132, 12)]
    assert [c.symbol() for _, _, c in spans] == ["C", "C", "C", "G", "G", "G", "D", "D"]  # bar 3 is in G: D is V


def test_a_melody_starting_with_rests_opens_on_the_tonic():
    m = melody("r:2 A4:2", key="F")
    assert triad_baseline(m) == [(0, 24, parse_chord("F")), (24, 24, parse_chord("F"))]


@given(melodies())
def test_spans_tile_the_melody_and_stay_in_the_key(m):
    spans = triad_baseline(m)
    assert spans[0][0] == 0 and sum(d for _, d, _ in spans) == m.total_steps
    assert all(a + d == b for (a, d, _), (b, _, _) in zip(spans, spans[1:]))
    for start, _, chord in spans:
        assert chord in diatonic_triads(m.key_at(m.bar_of(start))) and isinstance(chord, Chord)
