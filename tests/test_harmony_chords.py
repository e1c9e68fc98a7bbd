"""Chord symbols both ways, the chord vocabulary's ids, and progressions as people type them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.errors import MusicError
from composer.harmony.chords import QUALITIES, Chord, parse_chord
from composer.harmony.progression import parse_progression, progression_spans
from composer.harmony.vocab import (BASS_VOCABULARY_SIZE, CHORD_VOCABULARY, NO_BASS, NO_CHORD, bass_id, chord_from_id,
                                    chord_id)
from composer.music.keys import Key
from composer.music.melody import Melody
from composer.music.meter import TimeSignature

C, E, F, G, A, B = 0, 4, 5, 7, 9, 11
chords = st.builds(Chord, st.integers(0, 11), st.sampled_from(list(QUALITIES)), st.integers(0, 11))


@pytest.mark.parametrize("text, root, quality, bass", [
    ("C", C, "maj", C), ("Cm", C, "min", C), ("Cmin", C, "min", C), ("C-", C, "min", C),
    ("Cmaj7", C, "maj7", C), ("CM7", C, "maj7", C), ("CΔ7", C, "maj7", C), ("C7", C, "7", C),
    ("Cdim", C, "dim", C), ("C°", C, "dim", C), ("Caug", C, "aug", C), ("C+", C, "aug", C),
    ("Cm7", C, "m7", C), ("C-7", C, "m7", C), ("Cm7b5", C, "m7b5", C), ("Cø", C, "m7b5", C),
    ("Cm7♭5", C, "m7b5", C), ("Cdim7", C, "dim7", C), ("C°7", C, "dim7", C),
    ("Csus4", C, "sus4", C), ("Csus", C, "sus4", C), ("C/E", C, "maj", E),
    ("Bb", 10, "maj", 10), ("B♭", 10, "maj", 10), ("F#", 6, "maj", 6), ("F♯", 6, "maj", 6),
    ("Bb/D", 10, "maj", 2), ("F#m7b5", 6, "m7b5", 6), ("Am7/G", A, "m7", G), ("C/Bb", C, "maj", 10),
    (" Ebmaj7 ", 3, "maj7", 3), ("Cb", B, "maj", B), ("E#m", F, "min", F), ("CMAJ7", C, "maj7", C),
])
def test_common_spellings_parse(text, root, quality, bass):
    assert parse_chord(text) == Chord(root, quality, bass)


@pytest.mark.parametrize("chord, symbol", [
    (Chord(A, "min"), "Am"), (Chord(G, "7"), "G7"), (Chord(F, "maj", A), "F/A"), (Chord(B, "dim"), "Bdim"),
    (Chord(C, "maj7"), "Cmaj7"), (Chord(6, "m7b5"), "F#m7b5"), (Chord(10, "maj", 2), "Bb/D"),
    (Chord(1, "min"), "C#m"), (Chord(8, "maj", C), "Ab/C"), (Chord(2, "maj", 6), "D/F#"),
    (Chord(C, "dim7", A), "Cdim7/A"), (Chord(C, "maj", 10), "C/Bb"), (Chord(E, "sus4", A), "Esus4/A"),
])
def test_symbols_read_as_musicians_write_them(chord, symbol):
    assert chord.symbol() == symbol == str(chord)


def test_black_key_roots_follow_the_key_signature_when_given():
    v_of_f_sharp_minor = Chord(1, "maj", F)
    assert v_of_f_sharp_minor.symbol(Key.parse("F#m").sharps) == "C#/E#"
    assert v_of_f_sharp_minor.symbol(Key.parse("Ab").sharps) == "Db/F"


def test_chord_tones_root_first():
    assert Chord(G, "7").tones() == (7, 11, 2, 5)
    assert Chord(A, "min", C).tones() == (9, 0, 4)  # the bass does not reorder the tones
    assert Chord(C, "sus4").tones() == (0, 5, 7)


@pytest.mark.parametrize("text, says", [
    ("H", "write a root A-G"), ("", "unknown chord ''"), ("am", "capitals (Am)"), ("C/e", "capitals (C/E)"),
    ("C9", "write C7"), ("F6", "write F"), ("Dsus2", "write Asus4/D"), ("Cxyz", "'xyz' is no chord quality"),
    ("C/H", "after / write the bass note"), ("Bbmaj9", "write Bbmaj7"),
])
def test_bad_symbols_say_what_to_write(text, says):
    with pytest.raises(MusicError) as e:
        parse_chord(text)
    assert says in str(e.value) and repr(text) in str(e.value)


def test_bad_chord_fields_are_refused():
    for bad in (dict(root=12), dict(root=0, quality="9"), dict(root=0, bass=-1)):
        with pytest.raises(MusicError):
            Chord(**bad)


def test_every_vocabulary_chord_round_trips_with_every_bass():
    for chord in CHORD_VOCABULARY[1:]:
        for bass in range(12):
            c = Chord(chord.root, chord.quality, bass)
            assert parse_chord(c.symbol()) == c, c.symbol()
            for sharps in (-5, 0, 5):
                assert parse_chord(c.symbol(sharps)) == c, c.symbol(sharps)


@given(chords, st.integers(-30, 30))
def test_symbols_round_trip_and_transpose(chord, k):
    assert parse_chord(chord.symbol()) == chord
    up = chord.transpose(k)
    assert up.tones() == tuple((t + k) % 12 for t in chord.tones()) and up.bass == (chord.bass + k) % 12
    assert chord_id(up) == chord_id(chord) - chord.root + up.root  # a transposition moves an id within its block


def test_vocabulary_ids_are_stable():
    assert len(CHORD_VOCABULARY) == 1 + 12 * len(QUALITIES) == 121 and CHORD_VOCABULARY[NO_CHORD] is None
    assert list(QUALITIES)[:4] == ["maj", "min", "dim", "aug"]  # ids of trained models depend on this order
    assert chord_id(None) == 0 and chord_id(Chord(C)) == 1 and chord_id(Chord(A, "min")) == 1 + 12 + 9
    assert chord_id(Chord(F, "maj", A)) == chord_id(Chord(F)) and bass_id(Chord(F, "maj", A)) == A
    assert bass_id(None) == NO_BASS == BASS_VOCABULARY_SIZE - 1
    assert [chord_id(c) for c in CHORD_VOCABULARY] == list(range(len(CHORD_VOCABULARY)))
    assert chord_from_id(chord_id(Chord(F, "maj")), A) == Chord(F, "maj", A)
    assert chord_from_id(0, 4) is None and chord_from_id(5, NO_BASS) == Chord(4)
    with pytest.raises(MusicError):
        chord_from_id(121)


def test_one_chord_a_bar_repeats_to_fill():
    am, f, c, g = (parse_chord(t) for t in ("Am", "F", "C", "G"))
    assert parse_progression("Am F C G", 6) == [[am], [f], [c], [g], [am], [f]]
    assert parse_progression("Am F C G") == [[am], [f], [c], [g]]


def test_bars_with_several_chords():
    am, f, c, g = (parse_chord(t) for t in ("Am", "F", "C", "G"))
    assert parse_progression("Am F | C G", 2) == [[am, f], [c, g]]
    assert parse_progression("| Am | F C G | % | N.C. |", 5) == [[am], [f, c, g], [f, c, g], [None], [am]]


@pytest.mark.parametrize("text, bars, says", [
    ("Am F C G", 2, "ask for 4 bars"), ("Am H", 4, "'H'"), ("", 4, "no chords"), ("Am | | F", 4, "bar 2"),
    ("% Am", 4, "start with a chord"), ("Am", 0, "bad number of bars 0"), ("Am Fmaj9", 4, "write Fmaj7"),
])
def test_bad_progressions_say_what_is_wrong(text, bars, says):
    with pytest.raises(MusicError) as e:
        parse_progression(text, bars)
    assert says in str(e.value)


def test_chords_of_a_bar_share_it_evenly():
    melody = Melody((), TimeSignature(3, 4), Key(0), 2)
    bars = parse_progression("C G7 F | Am", 2)
    assert progression_spans(bars, melody.bar_starts) == [
        (0, 12, Chord(C)), (12, 12, Chord(G, "7")), (24, 12, Chord(F)), (36, 36, Chord(A, "min"))]
    two = progression_spans(parse_progression("C | G F", 2), (0, 36, 72))  # 6/8: 36 steps a bar
    assert two == [(0, 36, Chord(C)), (36, 18, Chord(G)), (54, 18, Chord(F))]
    with pytest.raises(MusicError):
        progression_spans(bars, (0, 36))


def test_a_bar_line_anywhere_makes_the_chords_share_bars():
    """'C G7 |' (or '| C G7 |') is one bar of two chords, as written, not two bars of one."""
    from composer.harmony.progression import parse_progression

    for text in ("C G7 |", "| C G7 |", "|C G7"):
        bars = parse_progression(text)
        assert len(bars) == 1 and [c.symbol() for c in bars[0]] == ["C", "G7"], text
    assert len(parse_progression("C G7")) == 2
