"""The sampler: stateful constrained decoding, batches, forms, primes and likelihood bookkeeping."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.music.bars import is_pickup
from composer.model.config import ModelConfig
from composer.errors import ComposerError, TokenizerError
from composer.model.hints import hints
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.model.network import MelodyLSTM
from nll_reference import sequence_nll
from composer.generate.endings import cadences
from composer.generate.plan import Plan, generate
from composer.generate.sample import Sampler, SamplingConfig
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()
VOCAB = TOK.vocab

METERS = [TimeSignature(4, 4), TimeSignature(3, 4), TimeSignature(6, 8), TimeSignature(2, 2), TimeSignature(9, 8)]


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "copy-hints"])
def model(request) -> MelodyLSTM:
    torch.manual_seed(0)
    m = MelodyLSTM(ModelConfig(vocab_size=len(VOCAB), embed_size=24, hidden_size=32, num_layers=2, dropout=0.1,
                               copy_hints=request.param))
    return m.eval()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check(g, meter, bars, pitch_range=(21, 108)) -> Melody:
    m = TOK.decode(g.ids)
    assert g.ids[0] == VOCAB.bos and g.ids[-1] == VOCAB.eos and TOK.encode(m) == list(g.ids)
    assert m.time_signature == meter and m.n_bars == bars and g.ids.count(VOCAB.bar) == bars
    assert all(pitch_range[0] <= n.pitch <= pitch_range[1] for n in m.notes)
    assert all(a.end <= b.start for a, b in zip(m.notes, m.notes[1:]))
    return m


def test_step_matches_nn_lstm(model):
    ids = torch.randint(3, 12, (3, 40), generator=gen(1))  # few distinct ids: long matches
    h = torch.from_numpy(np.stack([hints(r.tolist(), VOCAB) for r in ids])) if model.cfg.copy_hints else None
    full, _ = model(ids, hints=h)
    state = model.init_state(3)
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state, h[:, t] if h is not None else None)
        torch.testing.assert_close(logits, full[:, t], rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), meter=st.sampled_from(METERS), bars=st.integers(1, 12),
       lo=st.integers(21, 100), width=st.integers(0, 24), batch=st.sampled_from([1, 3]))
def test_hot_sampling_stays_well_formed(model, seed, meter, bars, lo, width, batch):
    pr = (lo, min(108, lo + width))
    plan = Plan(bars=bars, meters=(meter,), sampling=SamplingConfig(temperature=3.0, pitch_range=pr))
    out = generate(model, TOK, plan, batch, gen(seed))
    assert len(out) == batch
    for g in out:
        check(g, meter, bars, pr)


def test_same_seed_same_tokens_and_knobs(model):
    plan = Plan(bars=8, meters=(TimeSignature(6, 8), TimeSignature(4, 4)), sampling=SamplingConfig(temperature=1.5, top_k=12, top_p=0.9))
    a, b = generate(model, TOK, plan, 4, gen(7)), generate(model, TOK, plan, 4, gen(7))
    assert [g.ids for g in a] == [g.ids for g in b]
    assert len({g.ids for g in generate(model, TOK, plan, 4, gen(8))} | {g.ids for g in a}) > 4
    greedy = Plan(bars=4, meters=(TimeSignature(3, 4),), sampling=SamplingConfig(top_k=1))
    assert len({generate(model, TOK, greedy, 1, gen(s))[0].ids for s in range(4)}) == 1  # top-k 1 = greedy
    tiny_p = Plan(bars=4, meters=(TimeSignature(3, 4),), sampling=SamplingConfig(top_p=1e-6))
    assert generate(model, TOK, tiny_p, 1, gen(3))[0].ids == generate(model, TOK, greedy, 1, gen(0))[0].ids


@pytest.mark.parametrize("form,vary", [("", False), ("AABB", False), ("ABAC", True), ("AA", False)])
def test_likelihood_matches_a_full_forward_pass(model, form, vary):
    """The tracked log-likelihood equals nn.LSTM's over the finished sequence, also for rows that
    waited (frozen state) and for forced sections: so the carried state is exactly right."""
    plan = Plan(bars=8, meters=(TimeSignature(4, 4), TimeSignature(6, 8)), form=form, vary=vary,
                sampling=SamplingConfig(temperature=2.0))
    for g in generate(model, TOK, plan, 3, gen(11)) + generate(model, TOK, plan, 1, gen(12)):
        ref = sequence_nll(model, torch.tensor(g.ids)).item()
        assert math.isclose(g.nll_nats, ref, rel_tol=1e-4), (g.nll_nats, ref)
        assert math.isclose(g.bits_per_note, ref / math.log(2) / g.notes, rel_tol=1e-4)


def bars_of(m: Melody, first: int, count: int) -> list[tuple[int, int, int]]:
    lo = first * m.bar_steps
    return [(n.start - lo, n.duration, n.pitch) for n in m.notes if lo <= n.start < lo + count * m.bar_steps]


def test_form_repeats_sections_exactly(model):
    meter = TimeSignature(3, 4)
    plan = Plan(bars=12, meters=(meter,), form="ABA", sampling=SamplingConfig(temperature=2.0))
    for g in generate(model, TOK, plan, 3, gen(5)):
        m = check(g, meter, 12)
        k = _after_pickup(m)  # a section opening with a pickup bar comes round with a lead-in bar instead
        same = 3 - k  # all but a closing bar
        assert bars_of(m, k, same) == bars_of(m, 8 + k, same) and bars_of(m, 0, 4) != bars_of(m, 4, 4)
        # the piece's last bar: A's own when that cadences, else a new closing bar (a second-time ending)
        first_a = Melody(tuple(n for n in m.notes if n.start < 4 * meter.bar_steps), meter, m.key, 4)
        held = any(n.start < 11 * meter.bar_steps < n.end for n in m.notes)  # no room left to cadence in
        assert bars_of(m, 3, 1) == bars_of(m, 11, 1) if cadences(first_a) else (cadences(m) or held)
    varied = Plan(bars=8, meters=(meter,), form="AA", vary=True, sampling=SamplingConfig(temperature=2.0))
    for g in generate(model, TOK, varied, 4, gen(6)):
        m = check(g, meter, 8)
        k = _after_pickup(m)
        assert bars_of(m, k, 3 - k) == bars_of(m, 4 + k, 3 - k)  # all but the last bar of the section
        assert bars_of(m, 3, 1) != bars_of(m, 7, 1)  # --vary: the last bar is new


def _after_pickup(m: Melody) -> int:
    """1 when the melody opens with a pickup bar (issue 12: its repeat is led into), else 0."""
    return int(is_pickup([(n.start, n.duration) for n in m.notes if n.start < m.bar_steps], m.bar_steps))


def test_prime_is_kept_note_for_note(model):
    meter = TimeSignature(6, 8)
    prime = Melody((Note(0, 6, 62), Note(6, 6, 64), Note(12, 18, 66), Note(30, 200, 100)), meter, Key(2), 7)
    plan = Plan(bars=3, meters=(TimeSignature(4, 4),), prime=prime, sampling=SamplingConfig(temperature=3.0, pitch_range=(60, 72)))
    for g in generate(model, TOK, plan, 2, gen(9)):
        m = check(g, meter, 10, (21, 108))
        assert m.notes[: len(prime.notes)] == prime.notes and m.key == prime.key
        assert all(60 <= n.pitch <= 72 for n in m.notes[len(prime.notes):])


def test_feed_refuses_tokens_that_break_the_grammar(model):
    s = Sampler(model, TOK, 1)
    with pytest.raises(ComposerError):
        s.feed([[VOCAB.bar]])  # not started
    s.start([TimeSignature(4, 4)], [Key(0)])
    with pytest.raises(TokenizerError):
        s.feed([[VOCAB.bar, VOCAB.id("Pos_50")]])  # past the end of a 4/4 bar
    with pytest.raises(ComposerError):
        Plan(bars=10, form="AAB")


def test_header_choices_are_respected(model):
    keys = {"6/8": (Key.parse("Em"),), "*": (Key.parse("G"), Key.parse("D"))}
    plan = Plan(bars=2, meters=(TimeSignature(6, 8), TimeSignature(2, 4)), keys=keys, sampling=SamplingConfig(temperature=3.0))
    out = generate(model, TOK, plan, 32, gen(2))
    seen = {(str(m.time_signature), m.key.name) for m in (TOK.decode(g.ids) for g in out)}
    assert seen <= {("6/8", "Em"), ("2/4", "G"), ("2/4", "D")} and len(seen) >= 2


def test_a_long_prime_fed_in_one_pass_equals_feeding_it_step_by_step(model, monkeypatch):
    """A span fed to every row goes through one forward pass: the same state, hints, tokens and
    likelihood as stepping it token by token (what a long --prime costs: one call)."""
    import composer.generate.sample as sample

    rng = np.random.default_rng(4)
    notes, t = [], 0
    while t < 40 * 48:
        d = int(rng.choice([6, 12, 12, 24]))
        notes.append(Note(t, d, int(rng.choice([60, 62, 64, 65, 67]))))
        t += d
    prime = Melody(tuple(notes[:-1]), TimeSignature(4, 4), Key(0), 40)
    plan = Plan(bars=4, prime=prime)
    calls = []
    one_pass = sample.Sampler._feed_shared
    monkeypatch.setattr(sample.Sampler, "_feed_shared", lambda self, *a: calls.append(1) or one_pass(self, *a))
    fast = generate(model, TOK, plan, 3, gen(9))
    assert calls  # the prime (and each ending redrawn after it: composer.generate.endings) in one pass
    monkeypatch.setattr(sample, "_SHARED_MIN", 10**9)  # the step-by-step path
    slow = generate(model, TOK, plan, 3, gen(9))
    assert [g.ids for g in fast] == [g.ids for g in slow]
    for a, b in zip(fast, slow):
        assert a.nll_nats == pytest.approx(b.nll_nats, rel=1e-4)


def test_a_plan_refuses_a_key_its_prime_is_not_in():
    prime = Melody((Note(0, 12, 62),), TimeSignature(4, 4), Key(2), 1)
    with pytest.raises(ComposerError, match="transpose it first"):
        Plan(bars=2, prime=prime, key=Key(7))
    assert Plan(bars=2, prime=prime, key=Key(2)).key == Key(2)
