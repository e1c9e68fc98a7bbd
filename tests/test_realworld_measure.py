"""The round-trip yardstick itself (tests/realworld_measure.py) on tiny hand-made MIDI pairs: it
keeps what is kept, and a dropped note, a moved onset, a wrong pitch or length each cost a note."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest

from realworld_measure import extra_notes, kept_share, top_line

TUNE = [(0, 1, 67), (1, 1.5, 69), (1.5, 2, 71), (2, 4, 72), (4, 5, 74), (5, 6, 72), (6, 8, 71)]  # quarters


def _write(path: Path, *tracks: list[tuple[float, float, int]], resolution: int = 480, tempo: float = 120.0,
           names: tuple[str, ...] = ("Fiddle", "Piano")) -> Path:
    """A MIDI file with one track per list of (start, end, pitch) in quarter notes."""
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    spq = 60.0 / tempo
    for notes, name in zip(tracks, names):
        inst = pretty_midi.Instrument(0, name=name)
        inst.notes = [pretty_midi.Note(90, p, s * spq, e * spq) for s, e, p in notes]
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def _share(tmp_path: Path, source, output, **kw) -> float:
    return kept_share(_write(tmp_path / "src.mid", source), _write(tmp_path / "out.mid", output, **kw))


def test_same_notes_keep_everything_whatever_the_resolution_tempo_and_start(tmp_path: Path):
    later = [(s + 3, e + 3, p) for s, e, p in TUNE]
    assert _share(tmp_path, TUNE, later, resolution=384, tempo=97.0) == 1.0


def test_top_line_is_relative_quarters_with_the_other_notes_of_a_double_stop(tmp_path: Path):
    path = _write(tmp_path / "a.mid", [(2, 3, 64), (2, 3, 60), (3, 5, 67), (3.5, 4, 62)])
    line = top_line(path)
    assert [(n.onset, n.pitch, n.dur) for n in line] == [(0, 64, 1), (1, 67, 0.5), (1.5, 62, 0.5)]
    assert line[0].others == ((60, 1),)


def test_a_dropped_note_costs_one_note(tmp_path: Path):
    assert _share(tmp_path, TUNE, TUNE[:3] + TUNE[4:]) == pytest.approx(6 / 7)


def test_a_dropped_first_note_costs_one_note_not_the_alignment(tmp_path: Path):
    assert _share(tmp_path, TUNE, TUNE[1:]) == pytest.approx(6 / 7)


def test_a_moved_onset_costs_a_note(tmp_path: Path):
    moved = list(TUNE)
    moved[4] = (4.25, 5, 74)
    assert _share(tmp_path, TUNE, moved) < 1.0


def test_a_wrong_pitch_costs_a_note(tmp_path: Path):
    wrong = list(TUNE)
    wrong[2] = (1.5, 2, 70)
    assert _share(tmp_path, TUNE, wrong) == pytest.approx(6 / 7)


def test_a_wrong_length_costs_a_note_a_tiny_one_does_not(tmp_path: Path):
    short = list(TUNE)
    short[3] = (2, 3, 72)
    assert _share(tmp_path, TUNE, short) == pytest.approx(6 / 7)
    nudged = list(TUNE)
    nudged[3] = (2, 4 - 1 / 48, 72)  # within the tolerance of 1/24 quarter
    assert _share(tmp_path, TUNE, nudged) == 1.0


def test_keeping_the_lower_note_of_a_double_stop_is_fine(tmp_path: Path):
    source = [(0, 1, 67), (0, 1, 71), (1, 2, 69), (1, 2, 74)]
    assert _share(tmp_path, source, [(0, 1, 67), (1, 2, 69)]) == 1.0
    assert _share(tmp_path, source, [(0, 1, 71), (1, 2, 72)]) == 0.5  # 72 starts nowhere in the source


def test_a_note_held_above_counts_the_notes_under_it(tmp_path: Path):
    source = [(0, 8, 83), (0, 1, 74), (1, 2, 72), (2, 3, 71), (3, 4, 69)]  # a B held over a run below
    assert len(top_line(_write(tmp_path / "s.mid", source))) == 4
    assert _share(tmp_path, source, [(0, 8, 83)]) == 0.0  # today's skyline: the drone only, too long
    assert _share(tmp_path, source, [(0, 1, 83)]) == 0.25
    assert _share(tmp_path, source, [(0, 1, 74), (1, 2, 72), (2, 3, 71), (3, 4, 69)]) == 1.0
    assert _share(tmp_path, source, [(0, 1, 83), (1, 2, 72), (2, 3, 71), (3, 4, 69)]) == 1.0


def test_legato_overlap_is_compared_cut_at_the_next_onset(tmp_path: Path):
    source = [(0, 1.2, 67), (1, 2, 69)]
    assert _share(tmp_path, source, [(0, 1, 67), (1, 2, 69)]) == 1.0


def test_extra_notes_and_the_strict_skyline(tmp_path: Path):
    melody = [(0, 2, 76), (2, 3, 74), (3, 6, 72)]
    chords = [(1, 2, 64), (1, 2, 60), (4, 5, 64), (5, 6, 64)]  # under held melody notes
    src = _write(tmp_path / "piano.mid", melody + chords + [(0, 6, 48)])  # and a bass held below
    assert len(top_line(src)) == 6 and len(top_line(src, under_held=False)) == 3
    tune = _write(tmp_path / "tune.mid", melody)
    assert kept_share(src, tune, under_held=False) == 1.0 and extra_notes(src, tune, under_held=False) == 0
    leaked = _write(tmp_path / "leaked.mid", [(0, 1, 76), (1, 2, 64), (2, 3, 74), (3, 6, 72)])
    assert kept_share(src, leaked, under_held=False) == pytest.approx(2 / 3)  # the melody's first note cut
    assert extra_notes(src, leaked, under_held=False) == 2  # ... and a chord note leaked


def test_a_track_is_chosen_by_name_or_index_and_needed_when_several(tmp_path: Path):
    path = _write(tmp_path / "two.mid", TUNE, [(0, 8, 48)], names=("Violin", "Piano"))
    with pytest.raises(ValueError, match="name the melody track"):
        top_line(path)
    assert len(top_line(path, "Violin")) == 7 and len(top_line(path, 1)) == 1
    with pytest.raises(ValueError, match="Cello"):
        top_line(path, "Cello")
