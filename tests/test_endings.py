"""Ending search: what a cadence is, the guide that keeps a redrawn last bar able to cadence, and
better_endings replacing only the last bar of melodies that stop instead of ending."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.generate.endings import CadenceGuide, better_endings, cadences, free_last_bar
from composer.generate.plan import Plan, generate
from composer.generate.sample import Sampler, SamplingConfig
from composer.data.plans import COPY, FRESH
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()
C, AM = Key.parse("C"), Key.parse("Am")


def melody(notes, ts=TimeSignature(4, 4), key=C) -> Melody:
    end = max(s + d for s, d, _ in notes)
    return Melody(tuple(Note(*n) for n in notes), ts, key, -(-end // ts.bar_steps))


@pytest.mark.parametrize("last, ts, key, expected", [
    ((36, 12, 60), TimeSignature(4, 4), C, True),  # C on beat 4, a quarter
    ((24, 24, 72), TimeSignature(4, 4), C, True),  # C an octave up, a half note on beat 3
    ((36, 12, 62), TimeSignature(4, 4), C, False),  # D: a half close
    ((30, 18, 60), TimeSignature(4, 4), C, False),  # off the beat
    ((42, 6, 60), TimeSignature(4, 4), C, False),  # an eighth
    ((36, 12, 57), TimeSignature(4, 4), AM, True),  # A in A minor
    ((18, 18, 60), TimeSignature(6, 8), C, True),  # the second dotted-quarter beat of 6/8
    ((12, 12, 60), TimeSignature(6, 8), C, False),  # the third eighth of 6/8 is no beat
])
def test_a_cadence_is_the_tonic_on_a_beat_held_a_quarter(last, ts, key, expected):
    first = (0, 12, 64)
    assert cadences(melody([first, last], ts, key)) is expected


def test_a_melody_without_notes_does_not_cadence():
    assert not cadences(Melody((), TimeSignature(4, 4), C, 2))


def test_only_a_fresh_last_bar_is_left_to_the_model():
    assert free_last_bar(None) and free_last_bar(()) and free_last_bar((FRESH, FRESH))
    assert not free_last_bar((FRESH, 2 * 0 + COPY))


@pytest.fixture(scope="module")
def model() -> MelodyLSTM:
    torch.manual_seed(0)  # untrained: its draws go anywhere, the hardest case for the guide
    return MelodyLSTM(ModelConfig(vocab_size=len(TOK.vocab), embed_size=16, hidden_size=32, num_layers=2,
                                  dropout=0.0, copy_hints=True, length_aware=True, key_aware=True)).eval()


@settings(max_examples=12, deadline=None)
@given(meter=st.sampled_from(["4/4", "3/4", "2/4", "6/8", "2/2", "9/8", "7/8", "5/4"]),
       key=st.integers(0, 23), seed=st.integers(0, 10_000), rows=st.sampled_from([1, 5]))
def test_every_guided_last_bar_cadences(model, meter, key, seed, rows):
    ts, k = TimeSignature.parse(meter), Key.from_index(key)
    s = Sampler(model, TOK, rows, SamplingConfig(), torch.Generator().manual_seed(seed), total_bars=3)
    s.start([ts], [k])
    s.sample_bars(2, final=False)
    guide = CadenceGuide(TOK, rows, ts.bar_steps, ts.beat_steps, k.tonic)
    s.sample_bars(1, final=True, guide=guide)
    for g in s.results():
        m = TOK.decode(g.ids)
        assert m.n_bars == 3 and cadences(m), m.notes[-3:]


def test_better_endings_changes_only_the_last_bar_of_melodies_that_do_not_cadence(model):
    plan = Plan(bars=6, meters=(TimeSignature(4, 4),), key=C)
    gen = torch.Generator().manual_seed(3)
    s = Sampler(model, TOK, 8, SamplingConfig(), gen, total_bars=6)
    s.start([TimeSignature(4, 4)], [C])
    s.sample_bars(6)
    before = s.results()
    after = better_endings(model, TOK, before, plan.sampling, gen, total_bars=6)
    assert len(after) == len(before)
    changed = 0
    for b, a in zip(before, after):
        mb, ma = TOK.decode(b.ids), TOK.decode(a.ids)
        assert cadences(ma)
        if cadences(mb):
            assert a == b  # an ending that cadences is kept as it was
            continue
        changed += 1
        assert ma.bars(0, 5).notes == mb.bars(0, 5).notes  # the bars before are the melody's own
        assert ma.n_bars == 6
    assert changed  # an untrained model rarely cadences by itself


def test_a_redrawn_ending_is_scored_like_the_melody(model):
    """The kept redraw's likelihood is that of the whole melody, as the sampler scores any melody."""
    import numpy as np

    from composer.model.scoring import sequence_nlls

    gen = torch.Generator().manual_seed(5)
    s = Sampler(model, TOK, 4, SamplingConfig(), gen, total_bars=4)
    s.start([TimeSignature(3, 4)], [AM])
    s.sample_bars(4)
    for g in better_endings(model, TOK, s.results(), SamplingConfig(), gen, total_bars=4):
        want = float(sequence_nlls(model, TOK, [np.asarray(g.ids)])[0])
        assert g.nll_nats == pytest.approx(want, rel=1e-4, abs=1e-3)


def test_generate_ends_every_free_melody_on_a_cadence(model):
    out = generate(model, TOK, Plan(bars=4, meters=(TimeSignature(6, 8),), key=Key.parse("G")), 6,
                   torch.Generator().manual_seed(0))
    assert all(cadences(TOK.decode(g.ids)) for g in out)


def test_a_prime_keeps_its_bars_and_the_new_ending_cadences(model):
    prime = melody([(0, 12, 60), (12, 12, 62), (24, 24, 64), (48, 48, 67)])
    out = generate(model, TOK, Plan(bars=3, prime=prime), 4, torch.Generator().manual_seed(1))
    for g in out:
        m = TOK.decode(g.ids)
        assert m.bars(0, 2).notes == prime.notes and m.n_bars == 5 and cadences(m)


def test_a_fork_continues_each_row_where_it_stands(model):
    from composer.generate.fork import fork

    s = Sampler(model, TOK, 3, SamplingConfig(), torch.Generator().manual_seed(2), total_bars=3)
    s.start([TimeSignature(4, 4), TimeSignature(3, 4)], [C, AM])
    s.sample_bars(2, final=False)
    f = fork(s, 4)
    assert f.batch == 12 and f.lik.rows() == [r for r in s.lik.rows() for _ in range(4)]
    assert torch.equal(f.logits, s.logits.repeat_interleave(4, 0))
    assert all(torch.equal(a, b.repeat_interleave(4, 1)) for a, b in zip(f.state, s.state))
    assert (f.grammar.bar_len == np.repeat(np.atleast_1d(s.grammar.bar_len), 4)).all()
    assert torch.allclose(f.lik.nll, s.lik.nll.repeat_interleave(4))
    f.sample_bars(1, final=True)  # every fork row finishes its own melody
    for i, g in enumerate(f.results()):
        m = TOK.decode(g.ids)
        assert m.n_bars == 3 and list(g.ids[: len(s.lik.rows()[i // 4])]) == s.lik.rows()[i // 4]


def test_end_on_cadence_keeps_each_melody_and_ends_it(model):
    from composer.generate.endings import end_on_cadence

    s = Sampler(model, TOK, 5, SamplingConfig(), torch.Generator().manual_seed(4), total_bars=4)
    s.start([TimeSignature(4, 4), TimeSignature(6, 8)], [C, AM, Key.parse("Bb")])
    s.sample_bars(3, final=False)
    before = s.lik.rows()
    out = end_on_cadence(s, TOK, tries=6)
    assert len(out) == 5
    for row, g in zip(before, out):
        m = TOK.decode(g.ids)
        assert list(g.ids[: len(row)]) == row and m.n_bars == 4 and cadences(m)
