"""Length codes (bars left to the end, phrase counted from the end): the codes themselves, the
network's whole-sequence and one-step paths, checkpoints, training windows and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import leading_full, no_ending_search, one_pass_equals_stepwise, record_steps
from composer.errors import ModelError
from composer.generate.plan import Plan, generate
from composer.generate.sample import Sampler, SamplingConfig
from composer.model import lengths as L
from composer.model.bundle import load_bundle
from composer.model.checkpoint import parameters_needed, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.hints import BUCKETS as HINT_BUCKETS
from composer.model.hints import hints
from composer.model.network import MelodyLSTM
from composer.model.scoring import token_nlls
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import DUR, PITCH, POS, Tokenizer
from composer.train.batching import Transposer, WindowSampler, flatten
from composer.train.config import TrainConfig

TOK = Tokenizer()
VOCAB = TOK.vocab
HEAD = [VOCAB.bos, VOCAB.timesig_id(TimeSignature(4, 4)), VOCAB.key_id(Key(0))]
NOTE = [VOCAB.first(POS), VOCAB.first(PITCH) + 40, VOCAB.first(DUR) + 3]


def tune(n_bars: int) -> list[int]:
    """BOS TimeSig Key, then n bars of one note each, then EOS."""
    return HEAD + [VOCAB.bar, *NOTE] * n_bars + [VOCAB.eos]


def code(bars_left: int) -> int:
    return int(L.code_of(bars_left))


# -- the codes ----------------------------------------------------------------------------------

def test_header_first_bar_and_last_bar_of_a_short_tune():
    c = L.codes(tune(3), VOCAB).tolist()
    assert c[:3] == [L.HEADER_CODE] * 3  # BOS TimeSig Key: before the first Bar
    assert c[3:7] == [code(2)] * 4 and code(2) == 2 * L.PHRASES + 2  # first bar: 2 bars after it
    assert c[7:11] == [code(1)] * 4
    assert c[11:] == [0] * 5  # the last bar (its Bar token too) and EOS: 0 bars left


def test_buckets_are_exact_to_16_then_coarse():
    left = [0, 1, 16, 17, 24, 25, 32, 33, 64, 65, 1000]
    assert L.bucket(left).tolist() == [0, 1, 16, 17, 17, 18, 18, 19, 19, 20, 20]
    assert L.HEADER == 21 and L.CODES == 22 * 8
    assert [int(x) % L.PHRASES for x in L.code_of(left)] == [x % 8 for x in left]
    assert int(L.code_of(-1)) == L.HEADER_CODE and L.HEADER_CODE < L.CODES


def test_phrases_line_up_with_the_ending():
    c = L.codes(tune(16), VOCAB)
    bar_codes = c[np.asarray(tune(16)) == VOCAB.bar]
    _, phrase = L.split_codes(bar_codes)
    assert phrase.tolist() == [7, 6, 5, 4, 3, 2, 1, 0] * 2  # bars 8 and 16 end a phrase
    assert L.split_codes(L.codes(tune(40), VOCAB)[3])[0] == 19  # 39 bars left: the 33-64 bucket


def test_other_tokens_after_a_bar_change_no_code():
    """A later vocabulary puts TimeSig/Key tokens after some Bar tokens: only Bars count."""
    seq, extra = tune(5), [VOCAB.timesig_id(TimeSignature(3, 4)), VOCAB.key_id(Key(2))]
    longer, origin = [], []  # origin[j]: the index in seq of longer[j], None for an inserted token
    for i, t in enumerate(seq):
        longer.append(t)
        origin.append(i)
        if t == VOCAB.bar and i % 2:
            longer += extra
            origin += [None, None]
    c, c2 = L.codes(seq, VOCAB), L.codes(longer, VOCAB)
    assert len(longer) > len(seq)
    for j, i in enumerate(origin):  # every old token keeps its code; an inserted one has its bar's
        assert c2[j] == (c[i] if i is not None else c2[j - 1 if origin[j - 1] is not None else j - 2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["bar", "note", "other"]), max_size=120))
def test_generation_codes_equal_the_whole_tune_codes(kinds):
    """Counting bars as a sampler does (``code_after``, ``code_table``) gives what training sees."""
    body = {"bar": [VOCAB.bar], "note": NOTE[1:2], "other": [VOCAB.key_id(Key(3))]}
    seq = HEAD + [t for k in kinds for t in body[k]] + [VOCAB.eos]
    n = seq.count(VOCAB.bar)
    taken = np.cumsum(np.asarray(seq) == VOCAB.bar)
    c = L.codes(seq, VOCAB)
    assert c.tolist() == L.code_after(taken, n).tolist() == L.code_table(n)[taken].tolist()


# -- the network ----------------------------------------------------------------------------------

def tiny(cell: str = "lstm", copy_hints: bool = False, v: int = len(VOCAB)) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=v, embed_size=8, hidden_size=12, num_layers=2, dropout=0.2,
                                  copy_hints=copy_hints, cell=cell, length_aware=True)).eval()


@pytest.mark.parametrize("copy_hints", [False, True], ids=["plain", "hints"])
@pytest.mark.parametrize("cell", ModelConfig.CELLS)
def test_step_matches_forward_token_by_token(cell, copy_hints):
    v = 40
    model = tiny(cell, copy_hints, v)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, v, (3, 17), generator=g)
    codes = torch.randint(0, L.CODES, (3, 17), generator=g)
    hint = torch.randint(0, v * HINT_BUCKETS, (3, 17), generator=g) if copy_hints else None
    with torch.no_grad():
        whole, last = model(ids, hints=hint, lengths=codes)  # (B, T, V)
        plain, _ = model(ids, hints=hint, lengths=torch.zeros_like(codes))
    assert not torch.allclose(whole, plain)  # the codes reach the network
    state, steps = model.init_state(3), []
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state, None if hint is None else hint[:, t], lengths=codes[:, t])
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, last):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_length_aware_model_refuses_to_run_without_codes():
    model = tiny()
    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ModelError, match="length codes"):
        model(ids)
    with pytest.raises(ModelError, match="length codes"):
        model.step(ids[:, 0], model.init_state(1))


# -- configs and checkpoints ------------------------------------------------------------------------

def test_configs_without_the_field_load_as_not_length_aware():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "length_aware"}
    assert ModelConfig.from_dict(old).length_aware is False
    run = {k: v for k, v in TrainConfig().to_dict().items() if k != "length_aware"}
    assert TrainConfig.from_dict(run).length_aware is False
    assert TrainConfig().length_aware is True and TrainConfig().model_config(len(VOCAB)).length_aware is True
    with pytest.raises(ModelError, match="length aware"):
        ModelConfig(length_aware="yes")


@pytest.mark.parametrize("cell", ModelConfig.CELLS)
def test_parameter_count_includes_the_length_embeddings(cell):
    for hinted in (False, True):
        cfg = ModelConfig(vocab_size=40, embed_size=8, hidden_size=12, num_layers=2, copy_hints=hinted, cell=cell,
                          length_aware=True)
        assert parameters_needed(cfg) == MelodyLSTM(cfg).num_parameters()
        assert parameters_needed(cfg) - parameters_needed(ModelConfig(**{**cfg.to_dict(), "length_aware": False})) \
            == (L.BUCKETS + L.PHRASES) * 8


def test_a_length_aware_checkpoint_round_trips(tmp_path):
    model = tiny(copy_hints=True)
    path = save_checkpoint(tmp_path / "m.pt", model, tokenizer=TOK)
    back = load_bundle(path).model
    assert back.cfg == model.cfg and back.cfg.length_aware
    ids = torch.tensor([tune(3)])
    args = dict(hints=torch.from_numpy(hints(tune(3), VOCAB))[None], lengths=torch.from_numpy(L.codes(tune(3), VOCAB))[None])
    with torch.no_grad():
        torch.testing.assert_close(back(ids, **args)[0], model(ids, **args)[0])


# -- training windows -------------------------------------------------------------------------------

def test_windows_cut_the_codes_with_the_tokens_and_never_transpose_them():
    seqs = [np.asarray(tune(n)) for n in (3, 9, 20, 5, 12)] * 3
    tokens, codes = flatten(seqs), flatten([L.codes(s, VOCAB) for s in seqs])
    plain = WindowSampler(tokens, 16, 4, seed=2, lengths=codes, vocab=VOCAB)
    plan = plain.plan(0)
    x, _, h, c, _, _ = plain.batch(plan, 1)
    at = plan.offsets[1, 0].unsqueeze(1) + torch.arange(16)
    assert h is None and torch.equal(c, codes[at]) and torch.equal(x, tokens[at])
    moved = WindowSampler(tokens, 16, 4, seed=2, lengths=codes, max_shift=5, vocab=VOCAB)
    xm, _, _, cm, _, _ = moved.batch(plan, 1)
    shift = Transposer(5, VOCAB).shifts(x, plan.draws[1, 0]) + 5
    assert torch.equal(xm, Transposer(5, VOCAB).tables[shift.unsqueeze(1), x]) and torch.equal(cm, c)


# -- sampling ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[False, True], ids=["plain", "copy-hints"])
def model(request) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=len(VOCAB), embed_size=24, hidden_size=32, num_layers=2, dropout=0.1,
                                  copy_hints=request.param, length_aware=True)).eval()


@pytest.mark.parametrize("num", [1, 4])
def test_sampling_feeds_the_codes_training_would_see_and_ends_on_time(model, num, monkeypatch):
    calls = record_steps(model, monkeypatch, "lengths")
    no_ending_search(monkeypatch)  # the codes fed while sampling; redrawn endings are fed alike (test_endings)
    out = generate(model, TOK, Plan(bars=6, meters=(TimeSignature(3, 4),)), num, torch.Generator().manual_seed(3))
    full = leading_full(calls, num)  # before any row closed: every row
    for row, g in enumerate(out):
        assert TOK.decode(g.ids).n_bars == 6 and g.ids.count(VOCAB.bar) == 6 and g.ids[-1] == VOCAB.eos
        want = L.codes(g.ids, VOCAB)[:-1]  # every token but EOS is an input
        fed = [(ids[row], codes[row]) for ids, codes in full][: len(want)]
        assert [t for t, _ in fed] == list(g.ids[: len(fed)]) and [c for _, c in fed] == want[: len(fed)].tolist()
        if num == 1:
            assert len(fed) == len(want) == len(calls)
    assert {c for _, cs in calls for c in cs} >= {L.HEADER_CODE, 0, code(5)}


def test_a_long_prime_in_one_pass_gets_the_same_codes_as_step_by_step(model, monkeypatch):
    notes = tuple(Note(i * 24, 24, 60 + (i * 5) % 12) for i in range(2 * 20))  # 20 bars of half notes
    prime = Melody(notes, TimeSignature(4, 4), Key(0), 20)
    one_pass_equals_stepwise(model, TOK, Plan(bars=3, prime=prime), monkeypatch, 23)


def test_the_sampler_likelihood_equals_scoring_and_resets_after_a_prime(model):
    prime = Melody(tuple(Note(i * 12, 12, 62 + i % 5) for i in range(8)), TimeSignature(2, 4), Key(2), 4)
    body = TOK.encode(prime)[3:-1]
    s = Sampler(model, TOK, 1, SamplingConfig(), torch.Generator().manual_seed(1), total_bars=4 + 3)
    s.start([prime.time_signature], [prime.key])
    s.feed([body])
    whole = s.results()[0]
    nll = token_nlls(model, TOK, [np.asarray(whole.ids + (VOCAB.eos,))])[0]  # scored as a 4-bar tune
    s.reset_likelihood()
    assert s.results()[0].nll_nats == 0.0
    s.sample_bars(3)
    g = s.results()[0]
    scored = token_nlls(model, TOK, [np.asarray(g.ids)])[0]  # scoring counts bars as the sampler planned them
    assert g.nll_nats == pytest.approx(float(scored[len(whole.ids) - 1:].sum()), rel=1e-4)
    # the prime was heard with 3 bars still to come: not as the whole 4-bar tune it would score as alone
    assert whole.nll_nats == pytest.approx(float(scored[: len(whole.ids) - 1].sum()), rel=1e-4)
    assert whole.nll_nats != pytest.approx(float(nll[: len(whole.ids) - 1].sum()), rel=1e-6)


def test_a_length_aware_model_needs_the_total_bars(model):
    with pytest.raises(ModelError, match="total_bars"):
        Sampler(model, TOK, 2)
    Sampler(MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1)), TOK, 1)  # not length-aware: optional
