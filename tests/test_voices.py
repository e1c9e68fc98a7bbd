"""The melody line of a polyphonic track (composer.music.voices.melody_line): fiddle double stops
and drones above the tune are cut, a piano's accompaniment under a held melody note is dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError, MusicError
from composer.music.melody import STEPS_PER_QUARTER
from composer.music.voices import melody_line

E = STEPS_PER_QUARTER // 2  # an eighth note in grid steps
BAR = 8 * E  # a 4/4 bar


def run(notes: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """melody_line on (start, duration, pitch) notes, as (start, duration, pitch) kept."""
    s, d, p = (np.array(x, dtype=np.int64) for x in zip(*notes))
    idx, on, off = melody_line(s, s + d, p)
    return list(zip(on.tolist(), (off - on).tolist(), p[idx].tolist()))


def eighths(t0: int, pitches: list[int]) -> list[tuple[int, int, int]]:
    """A run of eighth notes from step t0."""
    return [(t0 + i * E, E, p) for i, p in enumerate(pitches)]


def top_line_share(notes: list[tuple[int, int, int]], kept: list[tuple[int, int, int]]) -> float:
    """The issue's yardstick: the share of onsets whose highest note (or another note starting
    with it) is kept with its duration clipped at the next onset."""
    onsets = sorted({s for s, _, _ in notes})
    room = {t: (b - t if b else 10**9) for t, b in zip(onsets, onsets[1:] + [0])}
    want = {t: {(p, min(d, room[t])) for s, d, p in notes if s == t} for t in onsets}
    got = {s: (p, d) for s, d, p in kept}
    return sum(1 for t in onsets if t in got and got[t] in want[t]) / len(onsets)


REEL = [67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 64, 66, 67, 69, 71, 67,
        69, 71, 72, 71, 69, 67, 66, 64, 62, 64, 66, 67, 69, 67, 66, 64]  # four bars of running eighths


# ---- fiddle: a held note above the tune is a second voice ------------------------------------------

def test_double_stop_held_two_bars_over_the_running_tune():
    below = [67, 69, 67, 66, 64, 66, 67, 64, 62, 64, 66, 67, 69, 67, 66, 64]  # under the B
    tune = eighths(0, [62, 64, 66, 64] * 2) + eighths(BAR, below) + eighths(3 * BAR, [62, 64, 66, 67, 69, 71, 72, 74])
    notes = tune + [(BAR, 2 * BAR, 71)]  # B held two bars, starting with the tune's G
    kept = run(notes)
    assert top_line_share(notes, kept) == 1.0
    assert [p for _, _, p in kept][8:10] in ([71, 69], [67, 69])  # the double stop, then the tune on


def test_drone_above_from_the_first_note():
    notes = eighths(0, REEL) + [(0, 4 * BAR, 76)]  # an open E string sounding over all four bars
    kept = run(notes)
    assert top_line_share(notes, kept) == 1.0 and len(kept) == len(REEL)


def test_repeated_double_stops_across_a_reel():
    notes, t = [], 0
    for rep in range(8):  # every bar opens with a double stop whose upper note rings for half a bar
        bar = REEL[(rep % 4) * 8:(rep % 4) * 8 + 8]
        notes += eighths(t, bar) + [(t, 4 * E, max(bar[:4]) + 3 + rep % 3)]
        t += BAR
    kept = run(notes)
    assert top_line_share(notes, kept) == 1.0


def test_fiddle_file_written_and_read_back(tmp_path: Path):
    """A double stop held over the tune, through a real MIDI file (pretty_midi writes and reads)."""
    pm = pretty_midi.PrettyMIDI(resolution=480)
    fiddle = pretty_midi.Instrument(program=40, name="Fiddle")
    q = 0.5  # seconds per quarter at 120 bpm
    tune = eighths(0, REEL) + eighths(4 * BAR, REEL[::-1])
    for s, d, p in tune + [(2 * BAR, 2 * BAR, 78), (5 * BAR, BAR + 4 * E, 79)]:
        fiddle.notes.append(pretty_midi.Note(90, p, s / STEPS_PER_QUARTER * q, (s + d) / STEPS_PER_QUARTER * q))
    pm.instruments.append(fiddle)
    pm.write(str(tmp_path / "reel.mid"))
    back = pretty_midi.PrettyMIDI(str(tmp_path / "reel.mid"))
    notes = [(round(pm_tick(back, n.start)), round(pm_tick(back, n.end) - pm_tick(back, n.start)), n.pitch)
             for n in back.instruments[0].notes]
    kept = run(notes)
    assert top_line_share(notes, kept) == 1.0 and len(kept) == len(tune)


def pm_tick(pm: pretty_midi.PrettyMIDI, seconds: float) -> float:
    """Seconds -> grid steps of the file read back."""
    return pm.time_to_tick(seconds) / pm.resolution * STEPS_PER_QUARTER


# ---- piano: the melody is the top voice, held notes keep it ----------------------------------------

MELODY = [(0, 12, 76), (12, 12, 74), (24, 24, 72), (48, 12, 74), (60, 12, 76), (72, 24, 77),
          (96, 12, 76), (108, 12, 74), (120, 24, 72)]  # quarters and half notes


def test_melody_over_held_block_chords():
    chords = [(b, BAR, p) for b in (0, BAR, 2 * BAR) for p in (48, 55, 60, 64)]
    assert run(MELODY + chords) == MELODY


def test_chords_starting_with_each_melody_note():
    chords = [(s, d, p - k) for s, d, p in MELODY for k in (4, 7, 12)]
    assert run(MELODY + chords) == MELODY


def test_alberti_bass_under_the_melody():
    alberti = [(i * E // 2 * 1, E // 2, (48, 55, 52, 55)[i % 4]) for i in range(3 * BAR // (E // 2))]
    assert run(MELODY + alberti) == MELODY


def test_held_melody_note_over_a_moving_inner_voice():
    # The half notes hold while an inner voice a fourth to a sixth below moves in eighths.
    inner = eighths(24, [67, 65, 64, 65]) + eighths(72, [69, 67, 65, 67]) + eighths(120, [64, 65, 64, 62])
    assert run(MELODY + inner) == MELODY


def test_held_note_over_a_broken_chord_keeps_the_held_note():
    # From a real piano part (music21's test09): G held over a staccato A-minor arpeggio.
    notes = [(0, 3, 64), (6, 16, 67), (6, 3, 64), (12, 3, 60), (18, 3, 57), (24, 2, 55), (30, 2, 60)]
    assert run(notes) == [(0, 3, 64), (6, 16, 67), (24, 2, 55), (30, 2, 60)]


def test_the_reader_skyline_cases():
    """The old reader's skyline expectations (tests/test_midi_io.py) hold unchanged."""
    notes = [(0, 12, 72), (0, 12, 64), (0, 12, 60),  # chord: top note kept
             (12, 24, 60), (18, 6, 71),  # a higher note cuts a sounding lower one
             (36, 12, 74), (40, 4, 67),  # inner voice under a held note: dropped
             (48, 15, 76), (60, 12, 74),  # legato: starts a sixteenth before the end, outlasts it
             (72, 24, 72), (90, 3, 60)]  # short low note under a long one: dropped
    assert run(notes) == [(0, 12, 72), (12, 6, 60), (18, 6, 71), (36, 12, 74), (48, 12, 76), (60, 12, 74), (72, 24, 72)]


def test_legato_overlap_cuts_the_held_note():
    assert run([(0, 14, 72), (12, 12, 71), (24, 12, 69)]) == [(0, 12, 72), (12, 12, 71), (24, 12, 69)]


def test_identical_onsets_keep_the_highest_and_longest():
    assert run([(0, 6, 60), (0, 12, 67), (0, 6, 67), (12, 12, 65)]) == [(0, 12, 67), (12, 12, 65)]


# ---- properties -----------------------------------------------------------------------------------

note_lists = st.lists(st.tuples(st.integers(0, 200), st.integers(1, 60), st.integers(40, 90)), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(note_lists, st.randoms(use_true_random=False))
def test_line_is_monophonic_from_the_input_and_stable(notes, rnd):
    kept = run(notes)
    assert all(d >= 1 for _, d, _ in kept)
    assert all(a[0] + a[1] <= b[0] for a, b in zip(kept, kept[1:]))  # monophonic, sorted
    starts = {(s, p) for s, _, p in notes}
    assert all((s, p) in starts for s, _, p in kept)  # each kept note is an input note, maybe cut short
    assert run(kept) == kept  # idempotent
    shuffled = list(notes)
    rnd.shuffle(shuffled)
    assert run(shuffled) == kept  # input order does not matter


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 24), st.integers(0, 12), st.integers(40, 90)), min_size=1, max_size=40))
def test_monophonic_input_comes_back_unchanged(steps):
    notes, t = [], 0
    for d, rest, p in steps:
        notes.append((t, d, p))
        t += d + rest
    s, d, p = (np.array(x, dtype=np.int64) for x in zip(*notes))
    idx, on, off = melody_line(s, s + d, p)
    assert idx.tolist() == list(range(len(notes))) and on.tolist() == s.tolist() and off.tolist() == (s + d).tolist()


def test_empty_input_gives_an_empty_line():
    idx, on, off = melody_line(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert len(idx) == len(on) == len(off) == 0


@pytest.mark.parametrize("start, end, pitch, message", [
    ([0, 12], [12], [60, 62], "differ in length"),
    ([0], [0], [60], "not after its start"),
    ([0.5], [12], [60], "integer"),
    ([0], [12], [130], "outside"),
])
def test_bad_input_is_refused_in_one_line(start, end, pitch, message):
    with pytest.raises(MusicError, match=message) as e:
        melody_line(np.array(start), np.array(end), np.array(pitch))
    assert isinstance(e.value, ComposerError) and "\n" not in str(e.value)

