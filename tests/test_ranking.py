"""Degenerate loops, the rank score and how generated sets end (issue 12)."""

import pytest
from hypothesis import given, settings

from composer.evaluate.stats import ending_stats
from composer.generate.ranking import (CORPUS_REPETITION, REPETITION_BITS, form_repeats, rank_order, repetition_range,
                                       standing)
from composer.music.bars import bar_contents, degenerate_loop, is_pickup, loop_run
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from conftest import melodies

TS = TimeSignature(4, 4)  # 48 steps a bar
RIFF = [(0, 12, 60), (12, 12, 64), (24, 24, 67)]
ANSWER = [(0, 24, 65), (24, 24, 62)]


def tune(bars: list[list[tuple[int, int, int]]], key: Key = Key(0)) -> Melody:
    """A 4/4 melody from per-bar (onset, duration, pitch) lists."""
    notes = [Note(b * 48 + s, d, p) for b, bar in enumerate(bars) for s, d, p in bar]
    return Melody(tuple(notes), TS, key, len(bars))


def up(bar, semitones: int):
    return [(s, d, p + semitones) for s, d, p in bar]


def test_eight_bars_of_one_bar_is_a_loop_and_seven_are_not():
    assert degenerate_loop(tune([RIFF] * 8)) == (0, 8, 1)
    assert degenerate_loop(tune([ANSWER] + [RIFF] * 7)) is None
    assert degenerate_loop(tune([ANSWER] * 2 + [RIFF] * 9 + [ANSWER])) == (2, 9, 1)


def test_a_two_bar_pattern_repeated_is_a_loop():
    assert degenerate_loop(tune([ANSWER] + [RIFF, ANSWER] * 4)) == (0, 9, 2)
    assert degenerate_loop(tune([RIFF, ANSWER] * 3 + [RIFF, RIFF])) is None  # 7 bars, then it breaks


def test_transposed_repeats_and_rests_are_not_loops():
    sequence = [up(RIFF, -2 * k) for k in range(8)]  # the figure a step lower each time: a sequence
    assert degenerate_loop(tune(sequence)) is None
    assert degenerate_loop(tune([RIFF] + [[]] * 9 + [ANSWER])) is None  # nine bars' rest between phrases
    assert degenerate_loop(tune([RIFF, []] * 4)) == (0, 8, 2)  # a bar, a rest, a bar, a rest...: a loop


def test_a_note_held_over_the_bar_line_belongs_to_the_bar_it_starts_in():
    m = tune([[(24, 36, 60)], [(12, 36, 62)]])
    assert bar_contents(m) == [((24, 36, 60),), ((12, 36, 62),)]


@settings(max_examples=60, deadline=None)
@given(melodies(max_bars=12))
def test_a_loop_is_a_run_of_equal_bars(m: Melody):
    bars = bar_contents(m)
    found = degenerate_loop(m)
    if found is None:
        return
    start, length, period = found
    assert length >= 8 and period in (1, 2) and any(bars[start:start + period])
    assert all(bars[i] == bars[i - period] for i in range(start + period, start + length))


def test_loop_run_takes_the_longest_run():
    assert loop_run("xababyaaaaaz") == (6, 5, 1)
    assert loop_run("xabababab") == (1, 8, 2)
    assert loop_run("") == (0, 0, 0)


def test_pickups_are_bars_of_mostly_rest():
    assert is_pickup([(36, 12)], 48) and is_pickup([], 48)
    assert is_pickup([(0, 6), (30, 6)], 48)  # sounds for 12 of 48 steps
    assert not is_pickup([(0, 12), (12, 12)], 48) and not is_pickup([(12, 36)], 48)


def test_the_corpus_range_grows_with_length_and_with_a_form():
    assert repetition_range(16) == CORPUS_REPETITION[16] and repetition_range(2) == CORPUS_REPETITION[4]
    highs = [repetition_range(b)[1] for b in (4, 8, 12, 16, 24, 32, 64, 512)]
    assert highs == sorted(highs) and repetition_range(512) == CORPUS_REPETITION[64]
    lo, hi = repetition_range(16, form_share=0.5)
    assert lo == 0.5 and hi == pytest.approx(0.5 + 0.5 * CORPUS_REPETITION[16][1], abs=1e-3)


def test_a_form_asks_for_loops_only_when_its_sections_make_one():
    assert form_repeats("AAAA", 2, False) == (0.75, True)  # one 2-bar section, four times: 8 bars
    assert form_repeats("AABB", 4, False) == (0.5, False)
    assert form_repeats("AABB", 4, True) == (0.375, False)  # each repeat's last bar is new
    assert form_repeats("ABABABAB", 1, False)[1] and not form_repeats("AAAA", 1, False)[1]  # 4 bars are too few
    assert form_repeats("", 4, False) == (0.0, False)


def test_loops_rank_last_and_repetition_past_real_tunes_costs_bits():
    loop = tune([RIFF] * 16)
    phrase = [[(0, 6 * k, 60), (6 * k, 48 - 6 * k, 62 + k)] for k in range(1, 8)] + [RIFF]  # eight rhythms
    varied = tune(phrase * 2)  # half its bars repeat: within real 16-bar openings' range
    repetitive = tune([RIFF, ANSWER, RIFF, up(ANSWER, 2)] * 4)
    s_loop, s_varied, s_rep = standing(loop, 1.0), standing(varied, 2.4), standing(repetitive, 2.0)
    assert s_loop.loop and not s_varied.loop and not s_rep.loop
    assert s_varied.score == s_varied.bits_per_note == 2.4 and s_varied.penalty == 0  # within real tunes' range
    assert s_rep.repetition > s_rep.usual[1]
    assert s_rep.penalty == pytest.approx(REPETITION_BITS * (s_rep.repetition - s_rep.usual[1]))
    assert s_rep.bits_per_note < s_varied.bits_per_note < s_rep.score
    assert rank_order([s_loop, s_varied, s_rep]) == [1, 2, 0]  # the loop had the fewest bits/note: last all the same
    assert not standing(loop, 1.0, form_share=0.75, loop_asked=True).loop  # 'AAAA' asked for it


def test_ending_stats_use_the_last_key():
    in_c = tune([RIFF, [(0, 48, 72)]])  # ends on C, a whole note
    modulates = Melody(in_c.notes, TS, Key(0), 2, key_changes=((1, Key(7)),))  # its last bar is in G
    short = tune([RIFF, [(0, 6, 72)]])  # ends on C, an eighth
    e = ending_stats([in_c, modulates, short, tune([RIFF] * 8), tune([[]])])  # the loop ends on G; one melody is empty
    assert e["melodies"] == 5 and e["tonic_ending"] == pytest.approx(2 / 4)
    assert e["last_note_mean_steps"] == pytest.approx((48 + 48 + 6 + 24) / 4)
    assert e["last_note_quarter_or_longer"] == pytest.approx(3 / 4) and e["loop_rate"] == pytest.approx(1 / 5)


def test_clean_spares_replace_loops_without_a_second_pass(tmp_path):
    """A batch of num >= 8 draws num // 8 spare melodies; a loop is replaced by a clean spare (no
    fresh batch needed) and the spares are dropped."""
    import torch

    from composer.generate.api import Composer
    from composer.generate.draw import Generated
    from composer.generate.plan import Plan
    from composer.model.checkpoint import save_checkpoint
    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM
    from composer.music.keys import Key
    from composer.music.melody import Melody, Note
    from composer.music.meter import TimeSignature

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1)))
    c = Composer.load(path)
    tok, ts = c.bundle.tokenizer, TimeSignature(4, 4)

    def gen_of(pitches):  # one note a bar, 8 bars
        ids = tok.encode(Melody(tuple(Note(48 * b, 48, p) for b, p in enumerate(pitches)), ts, Key(0), 8))
        return Generated(tuple(ids), 10.0, 8)

    loop, clean, spare = gen_of([60] * 8), gen_of([60, 62, 64, 65, 67, 65, 64, 62]), gen_of([67, 65, 64, 62, 60, 62, 64, 60])
    out, copies, resampled, looped = c._guard(Plan(bars=8, meters=(ts,)), [loop, clean, spare], None, 0, None, None,
                                              keep=2)
    assert out == [spare, clean] and looped == {0} and not resampled and len(copies) == 2
