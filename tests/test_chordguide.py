"""Chord tones on strong beats when a melody is written over chords (composer.generate.chordguide)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.generate.chordguide import strong_offsets, tones_table
from composer.generate.plan import Plan, generate
from composer.generate.sample import SamplingConfig
from composer.harmony.progression import parse_progression, progression_spans
from composer.model.chordcodes import NO_CHORDS, step_codes
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music.keys import Key
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()


@pytest.mark.parametrize("meter, strong", [("4/4", {0, 24}), ("2/4", {0, 12}), ("6/8", {0, 18}), ("2/2", {0, 24}),
                                           ("3/4", {0}), ("9/8", {0}), ("12/8", {0, 36}), ("5/4", {0, 36}), ("7/8", {0})])
def test_strong_beats_are_the_bar_line_and_the_middle_of_a_two_group_bar(meter, strong):
    assert strong_offsets(TimeSignature.parse(meter)) == strong


def test_the_tones_table_maps_relative_codes_back_to_the_key():
    spans = [(0, 48, parse_progression("G7")[0][0]), (48, 48, None)]
    codes = step_codes(spans, 100, np.full(100, 7))  # in G: G7 is I7
    table = tones_table(codes, 7)
    assert set(np.flatnonzero(table[0])) == {7, 11, 2, 5} and not table[60].any()
    assert not tones_table(np.array([NO_CHORDS]), 0).any()


@pytest.fixture(scope="module")
def model() -> MelodyLSTM:
    torch.manual_seed(0)  # untrained: its pitches go anywhere, so the guide does all the work
    return MelodyLSTM(ModelConfig(vocab_size=len(TOK.vocab), embed_size=16, hidden_size=32, num_layers=2,
                                  dropout=0.0, copy_hints=True, length_aware=True, key_aware=True,
                                  chord_aware=True)).eval()


@settings(max_examples=8, deadline=None)
@given(text=st.sampled_from(["Am F C G", "C G | Am F", "Dm G7 C", "Bm G D A", "F Bb C7 F"]),
       meter=st.sampled_from(["4/4", "3/4", "6/8", "2/4"]), num=st.sampled_from([1, 3]), seed=st.integers(0, 999))
def test_every_note_on_a_strong_beat_is_a_tone_of_its_chord(model, text, meter, num, seed):
    ts = TimeSignature.parse(meter)
    bars = parse_progression(text, 4)
    spans = tuple(progression_spans(bars, [i * ts.bar_steps for i in range(5)]))
    out = generate(model, TOK, Plan(bars=4, meters=(ts,), key=Key.parse("C"), chords=spans), num,
                   torch.Generator().manual_seed(seed))
    strong = strong_offsets(ts)
    for g in out:
        m = TOK.decode(g.ids)
        for n in m.notes:
            if (n.start - m.bar_starts[m.bar_of(n.start)]) in strong:
                chord = next(c for s, d, c in spans if s <= n.start < s + d)
                assert n.pitch % 12 in chord.tones(), (n, chord)


def test_a_pitch_range_without_the_chord_tones_leaves_the_note_free(model):
    spans = ((0, 48, parse_progression("F#")[0][0]),)  # F# A# C#: none in C4-D4 but C#4
    plan = Plan(bars=1, meters=(TimeSignature(4, 4),), key=Key.parse("C"), chords=spans,
                sampling=SamplingConfig(pitch_range=(60, 60)))  # only C4: no chord tone
    out = generate(model, TOK, plan, 2, torch.Generator().manual_seed(0))
    assert all(n.pitch == 60 for g in out for n in TOK.decode(g.ids).notes)
