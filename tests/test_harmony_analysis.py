"""Chord labelling of four-part writing, on chords built by hand and on a real Bach chorale: every
quality in every inversion, incomplete chords, non-chord tones, and what a musician would write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.errors import MusicError
from composer.harmony.analysis import label_beats, label_span, label_spans
from composer.harmony.chords import QUALITIES, Chord, parse_chord
from composer.music.melody import Note, parse_pitch

Q = 12  # grid steps a quarter: one beat here


def beat(*voices: str, length: int = Q) -> list[list[tuple[int, int, int]]]:
    """One beat of voices, each 'C4' (held) or 'E4 D4' (notes sharing the beat evenly), bass last."""
    parts = []
    for voice in voices:
        names = voice.split()
        share = length // len(names)
        parts.append([(i * share, share, parse_pitch(n)) for i, n in enumerate(names)])
    return parts


def label(*voices: str) -> Chord | None:
    return label_beats(beat(*voices), Q, 1)[0]


SYMMETRIC = {"aug", "dim7"}  # every tone could be the root: the bass is taken as the root


@pytest.mark.parametrize("quality", list(QUALITIES))
@pytest.mark.parametrize("root", [0, 6, 10])
def test_every_quality_in_root_position_and_every_inversion(quality, root):
    chord = Chord(root, quality)
    for bass in chord.tones():
        parts = [[(0, Q, 60 + t)] for t in chord.tones()] + [[(0, Q, 36 + bass)]]  # every tone above the bass
        expected = Chord(bass, quality) if quality in SYMMETRIC else Chord(root, quality, bass)
        assert label_beats(parts, Q, 1) == [expected], (chord.symbol(), bass)


@pytest.mark.parametrize("voices, symbol", [
    (("C5", "E4", "C4", "C3"), "C"),  # a triad without its fifth
    (("E5", "C5", "C4", "E3"), "C/E"),  # ... in first inversion
    (("Eb5", "C5", "C4", "C3"), "Cm"),
    (("C5", "Bb4", "E4", "C3"), "C7"),  # a seventh chord without its fifth
    (("F4", "B3", "G3", "G2"), "G7"),
    (("B4", "F4", "D4", "G2"), "G7"),  # ... and without its third: the root and seventh decide
    (("G4", "C4", "C4", "C3"), "C"),  # an open fifth: major by the simpler-quality rule
    (("C5", "C4", "C4", "C3"), "C"),  # a bare octave
])
def test_incomplete_chords(voices, symbol):
    assert label(*voices) == parse_chord(symbol)


def test_a_doubled_root_or_fifth_changes_nothing():
    assert label("C5", "G4", "E4", "C3") == label("C5", "C5", "G4", "E4", "C3") == Chord(0)
    assert label("G5", "C5", "G4", "E3") == label("C5", "E4", "E3") == Chord(0, "maj", 4)


def test_passing_and_neighbour_notes_are_tolerated():
    assert label("E5 D5", "G4", "C4", "C3") == Chord(0)  # a passing D in the soprano
    assert label("C5 B4", "G4", "E4", "C3") == Chord(0)  # a passing major seventh
    assert label("C5", "G4", "E4", "C3 D3") == Chord(0)  # a passing note in the bass
    assert label("A4", "E4", "C4", "A2 G2") == Chord(9, "min")  # a passing seventh is no Am7
    assert label("C5 Bb4", "G4", "E4", "C3") == Chord(0)  # V 8-7: the seventh on the second eighth


def test_an_accented_passing_note_in_the_bass_is_not_the_label_bass():
    assert label("C5", "G4", "E4", "D3 C3") == Chord(0)


def test_a_seventh_on_the_beat_makes_a_seventh_chord():
    assert label("Bb4 C5", "G4", "E4", "C3") == Chord(0, "7")
    assert label("F4", "D4", "B3", "G2") == Chord(7, "7")


def test_suspensions():
    assert label("F5 E5", "C5", "G4", "C3") == Chord(0)  # 4-3 resolving within the beat: the triad
    assert label("C5 B4", "G4", "D4", "G2") == Chord(7)  # ... over the dominant
    assert label("F5", "C5", "G4", "C3") == Chord(0, "sus4")  # held the whole beat: a sus4 chord
    assert label("D5 C5", "G4", "E4", "C3") == Chord(0)  # 9-8 (an accented non-chord tone)


def test_two_chords_in_one_beat_do_not_merge_into_a_seventh_chord():
    assert label("A4", "C#4 F#4", "F#3 D4", "F#3") == parse_chord("F#m")  # not Dmaj7/F#


def test_chromatic_passing_note_makes_no_augmented_triad():
    assert label("F#4", "C#4 D4", "F#3", "Bb2") == parse_chord("F#/A#")  # not A#aug
    assert label("E4", "G#4", "C4", "C3") == parse_chord("Caug")


def test_beats_silence_and_notes_across_beats():
    parts = [[(0, 2 * Q, 64), (3 * Q, Q, 67)], [(0, 2 * Q, 48), (3 * Q, Q, 55)], [(0, 2 * Q, 55)]]
    assert label_beats(parts, Q, 5) == [Chord(0), Chord(0), None, Chord(7), None]
    assert label_spans(parts, [0, 2 * Q, 4 * Q]) == [Chord(0), Chord(7)]  # half-bar chords
    assert label_span([], 0, Q) is None
    as_notes = [[Note(*n) for n in part] for part in parts]  # Melody notes work as well as tuples
    assert label_beats(as_notes, Q, 5) == label_beats(parts, Q, 5)


def test_bad_beats_are_refused():
    with pytest.raises(MusicError):
        label_beats([], 0, 4)
    with pytest.raises(MusicError):
        label_spans([], [0, 12, 12])


notes = st.lists(st.tuples(st.integers(0, 11), st.integers(1, 12), st.integers(40, 80)), min_size=1, max_size=8)


@given(notes, st.integers(-12, 12))
def test_labels_transpose_with_the_music(spans, k):
    parts = [[n] for n in spans]
    moved = [[(s, d, p + k)] for s, d, p in spans]
    (before,), (after,) = label_beats(parts, Q, 1), label_beats(moved, Q, 1)
    assert after == before.transpose(k)


def test_bach_chorale_bwv_66_6():
    """The first eight beats of bwv66.6 (F# minor, opening on A major), checked by hand beat by
    beat: A (the E/G# of the second eighth is a passing chord), F#m, E/G#, A, E/G#, A (the bass
    leaps to C# on the second eighth), E (the tenor's D on the second eighth is a passing seventh:
    V 8-7, labelled E), A."""
    corpus = pytest.importorskip("music21.corpus")
    score = corpus.parse("bach/bwv66.6")
    parts = [[(round(float(n.offset) * Q), round(float(n.quarterLength) * Q), n.pitch.midi) for n in part.flatten().notes]
             for part in score.parts]
    labels = label_beats(parts, Q, 8)
    assert [c.symbol(3) for c in labels] == ["A", "F#m", "E/G#", "A", "E/G#", "A", "E", "A"]
