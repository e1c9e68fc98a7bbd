"""Key codes (the key in effect at every token): the codes themselves and their transposition,
the network's whole-sequence and one-step paths, configs, checkpoints and warm starts,
training windows and sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import leading_full, no_ending_search, one_pass_equals_stepwise, record_steps
from composer.cli import main
from composer.errors import ModelError
from composer.generate.plan import Plan, generate
from composer.model import keycodes as K
from composer.model import lengths as L
from composer.model.bundle import load_bundle
from composer.model.checkpoint import parameters_needed, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.hints import BUCKETS as HINT_BUCKETS
from composer.model.network import MelodyLSTM
from composer.model.scoring import token_nlls
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import DUR, PITCH, POS, Tokenizer
from composer.train.batching import Transposer, WindowSampler, flatten
from composer.train.config import TrainConfig
from composer.train.warmstart import load_init, warm_start

TOK = Tokenizer()
VOCAB = TOK.vocab
C, D, AM = Key(0), Key(2), Key(9, True)
HEAD = [VOCAB.bos, VOCAB.timesig_id(TimeSignature(4, 4)), VOCAB.key_id(C)]
NOTE = [VOCAB.first(POS), VOCAB.first(PITCH) + 40, VOCAB.first(DUR) + 3]


def modulating(n_bars: int = 4, change_at: int = 2, key: Key = AM) -> Melody:
    """A 4/4 tune of quarter notes in C that changes to ``key`` at bar ``change_at`` (0-based)."""
    notes = tuple(Note(i * 12, 12, 60 + (i * 7) % 12) for i in range(4 * n_bars))
    return Melody(notes, TimeSignature(4, 4), C, n_bars, key_changes=((change_at, key),))


# -- the codes ----------------------------------------------------------------------------------

def test_the_header_key_and_a_key_change_after_a_bar():
    seq = HEAD + [VOCAB.bar, *NOTE, VOCAB.bar, VOCAB.key_id(D), *NOTE, VOCAB.bar, *NOTE, VOCAB.eos]
    c = K.codes(seq, VOCAB).tolist()
    assert c[:2] == [K.NO_KEY] * 2  # BOS, TimeSig: no key yet
    assert c[2:7] == [C.index] * 5  # the Key token carries its own key, then its bar
    assert c[7] == C.index  # the Bar before a key change is still in the old key
    assert c[8:] == [D.index] * (len(seq) - 8) and D.index == 2  # the Key token after it and all after


def test_the_tokenizer_writes_key_changes_that_the_codes_follow():
    ids = TOK.encode(modulating())
    c = K.codes(ids, VOCAB)
    bars = np.flatnonzero(np.asarray(ids) == VOCAB.bar)
    assert ids[bars[2] + 1] == VOCAB.key_id(AM) and AM.index == 21
    assert set(c[3 : bars[2] + 1].tolist()) == {C.index} and set(c[bars[2] + 1 :].tolist()) == {AM.index}
    assert K.codes([], VOCAB).tolist() == [] and K.codes(HEAD[:2], VOCAB).tolist() == [K.NO_KEY] * 2


def test_codes_after_a_span_start_from_the_key_so_far():
    seq = TOK.encode(modulating())
    for cut in (1, 3, 10, len(seq) - 2):
        whole = K.codes(seq, VOCAB)
        assert K.codes_after(seq[cut:], VOCAB, int(whole[cut - 1])).tolist() == whole[cut:].tolist()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["bar", "note", "key", "bos"]), max_size=80), st.integers(0, 23),
       st.integers(-11, 11))
def test_transposed_codes_are_the_codes_of_the_transposed_tokens(kinds, k, s):
    body = {"bar": [VOCAB.bar], "note": NOTE, "key": [VOCAB.key_id(Key.from_index((k * 5 + len(kinds)) % 24))],
            "bos": [VOCAB.bos]}
    seq = np.asarray([VOCAB.bos, VOCAB.key_id(Key.from_index(k))] + [t for x in kinds for t in body[x]])
    moved = np.maximum(VOCAB.transpose_table(s)[seq], 0)  # (as the Transposer: a pitch out of range -> PAD)
    want = K.codes(moved, VOCAB)
    assert K.transpose(K.codes(seq, VOCAB), s).tolist() == want.tolist()
    assert K.transpose(torch.from_numpy(K.codes(seq, VOCAB)), s).tolist() == want.tolist()


def test_transposing_keeps_the_mode_and_no_key():
    c = np.array([0, 11, 12, 23, K.NO_KEY])
    assert K.transpose(c, 1).tolist() == [1, 0, 13, 12, K.NO_KEY]
    assert K.transpose(c, -13).tolist() == [11, 10, 23, 22, K.NO_KEY]
    rows = torch.tensor([[0, K.NO_KEY], [21, 21]])
    assert K.transpose(rows, torch.tensor([[2], [-5]])).tolist() == [[2, K.NO_KEY], [16, 16]]
    assert [Key.from_index(i).transpose(3).index for i in range(24)] == K.transpose(np.arange(24), 3).tolist()


# -- the network ----------------------------------------------------------------------------------

def tiny(cell: str = "lstm", copy_hints: bool = False, length_aware: bool = False, v: int = len(VOCAB)) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=v, embed_size=8, hidden_size=12, num_layers=2, dropout=0.2,
                                  copy_hints=copy_hints, cell=cell, length_aware=length_aware, key_aware=True)).eval()


@pytest.mark.parametrize("others", [False, True], ids=["keys", "keys+lengths+hints"])
@pytest.mark.parametrize("cell", ModelConfig.CELLS)
def test_step_matches_forward_token_by_token(cell, others):
    v = 40
    model = tiny(cell, others, others, v)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, v, (3, 17), generator=g)
    keys = torch.randint(0, K.CODES, (3, 17), generator=g)
    kw = dict(hints=torch.randint(0, v * HINT_BUCKETS, (3, 17), generator=g),
              lengths=torch.randint(0, L.CODES, (3, 17), generator=g)) if others else {}
    with torch.no_grad():
        whole, last = model(ids, keys=keys, **kw)  # (B, T, V)
        plain, _ = model(ids, keys=torch.full_like(keys, K.NO_KEY), **kw)
    assert not torch.allclose(whole, plain)  # the codes reach the network
    state, steps = model.init_state(3), []
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state, keys=keys[:, t], **{n: x[:, t] for n, x in kw.items()})
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, last):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_key_aware_model_refuses_to_run_without_codes():
    model = tiny(length_aware=True)
    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ModelError, match="key codes"):
        model(ids, lengths=ids)
    with pytest.raises(ModelError, match="key codes"):
        model.step(ids[:, 0], model.init_state(1), lengths=ids[:, 0])


# -- configs, checkpoints, warm starts -------------------------------------------------------------

def test_configs_without_the_field_load_as_not_key_aware():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "key_aware"}
    assert ModelConfig.from_dict(old).key_aware is False and ModelConfig().key_aware is False
    run = {k: v for k, v in TrainConfig().to_dict().items() if k != "key_aware"}
    assert TrainConfig.from_dict(run).key_aware is False
    assert TrainConfig().key_aware is True and TrainConfig().model_config(len(VOCAB)).key_aware is True
    assert TrainConfig(key_aware=False).model_config(len(VOCAB)).key_aware is False
    with pytest.raises(ModelError, match="key aware"):
        ModelConfig(key_aware="yes")


def test_compose_train_has_the_flag():
    out = CliRunner().invoke(main, ["train", "--help"]).output
    assert "--key-aware / --no-key-aware" in out


@pytest.mark.parametrize("cell", ModelConfig.CELLS)
def test_parameter_count_includes_the_key_embedding(cell):
    for others in (False, True):
        cfg = ModelConfig(vocab_size=40, embed_size=8, hidden_size=12, num_layers=2, copy_hints=others, cell=cell,
                          length_aware=others, key_aware=True)
        assert parameters_needed(cfg) == MelodyLSTM(cfg).num_parameters()
        assert parameters_needed(cfg) - parameters_needed(ModelConfig(**{**cfg.to_dict(), "key_aware": False})) \
            == K.CODES * 8


def test_a_key_aware_checkpoint_round_trips(tmp_path):
    model = tiny(copy_hints=True, length_aware=True)
    path = save_checkpoint(tmp_path / "m.pt", model, tokenizer=TOK)
    back = load_bundle(path).model
    assert back.cfg == model.cfg and back.cfg.key_aware
    seq = TOK.encode(modulating())
    nll = token_nlls(model, TOK, [np.asarray(seq)])[0]
    assert token_nlls(back, TOK, [np.asarray(seq)])[0] == pytest.approx(nll, rel=1e-6)


def test_a_warm_start_from_a_model_without_keys_predicts_what_it_did(tmp_path):
    torch.manual_seed(3)
    cfg = ModelConfig(vocab_size=len(VOCAB), embed_size=16, hidden_size=24, num_layers=2, dropout=0.0,
                      copy_hints=True, length_aware=True)
    old = MelodyLSTM(cfg).eval()
    path = save_checkpoint(tmp_path / "old.pt", old, tokenizer=TOK)
    torch.manual_seed(4)
    new = MelodyLSTM(ModelConfig(**{**cfg.to_dict(), "key_aware": True}))
    seqs = [np.asarray(TOK.encode(modulating())), np.asarray(TOK.encode(modulating(6, 3, D)))]
    before = token_nlls(new.eval(), TOK, seqs)
    note = warm_start(new, TOK, load_init(str(path), new.cfg))
    assert "new inputs at zero" in note and torch.all(new.key_embed.weight == 0)
    after, reference = token_nlls(new.eval(), TOK, seqs), token_nlls(old, TOK, seqs)
    for a, r, b in zip(after, reference, before):
        np.testing.assert_allclose(a, r, rtol=1e-6, atol=1e-9)  # the same predictions at step 0
        assert abs(b.sum() - r.sum()) > 1  # (and not the fresh model's)


# -- training windows -------------------------------------------------------------------------------

def test_windows_cut_the_key_codes_and_shift_them_with_the_tokens():
    seqs = [np.asarray(TOK.encode(modulating(n, n // 2, Key.from_index(n)))) for n in (3, 9, 5, 12)] * 3
    tokens, keys = flatten(seqs), flatten([K.codes(s, VOCAB) for s in seqs])
    lengths = flatten([L.codes(s, VOCAB) for s in seqs])
    plain = WindowSampler(tokens, 40, 4, seed=2, keys=keys, lengths=lengths, vocab=VOCAB)
    plan = plain.plan(0)
    x, _, h, c, k, _ = plain.batch(plan, 1)
    at = plan.offsets[1, 0].unsqueeze(1) + torch.arange(40)
    assert h is None and torch.equal(k, keys[at]) and torch.equal(c, lengths[at]) and torch.equal(x, tokens[at])
    moved = WindowSampler(tokens, 40, 4, seed=2, keys=keys, lengths=lengths, max_shift=5, vocab=VOCAB)
    xm, _, _, cm, km, _ = moved.batch(plan, 1)
    shift = Transposer(5, VOCAB).shifts(x, plan.draws[1, 0])
    assert bool((shift != 0).any()) and torch.equal(cm, c)  # length codes stay
    assert torch.equal(km, K.transpose(k, shift.unsqueeze(1)))
    sets = torch.from_numpy(K.key_of_token(VOCAB))[xm]  # a Key token inside a window: its code is its own key
    assert bool((sets >= 0).any()) and torch.equal(km[sets >= 0], sets[sets >= 0])


# -- sampling ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[False, True], ids=["keys+lengths", "keys+lengths+hints"])
def model(request) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=len(VOCAB), embed_size=24, hidden_size=32, num_layers=2, dropout=0.1,
                                  copy_hints=request.param, length_aware=True, key_aware=True)).eval()


def fed_rows(calls, out, num: int) -> None:
    """Every row was fed its tokens with the key codes training computes from the whole tune."""
    full = leading_full(calls, num)  # before any row closed: every row
    for row, g in enumerate(out):
        want = K.codes(g.ids, VOCAB)[:-1]  # every token but EOS is an input
        fed = [(ids[row], keys[row]) for ids, keys in full][: len(want)]
        assert [t for t, _ in fed] == list(g.ids[: len(fed)]) and [c for _, c in fed] == want[: len(fed)].tolist()
        if num == 1:
            assert len(fed) == len(want) == len(calls)


@pytest.mark.parametrize("num", [1, 4])
def test_sampling_after_a_modulating_prime_feeds_the_codes_training_would_see(model, num, monkeypatch):
    calls = record_steps(model, monkeypatch, "keys")
    no_ending_search(monkeypatch)  # the codes fed while sampling; redrawn endings are fed alike (test_endings)
    out = generate(model, TOK, Plan(bars=3, prime=modulating()), num, torch.Generator().manual_seed(3))
    fed_rows(calls, out, num)
    assert {k for _, ks in calls for k in ks} == {K.NO_KEY, C.index, AM.index}
    assert all(TOK.decode(g.ids).n_bars == 7 and TOK.decode(g.ids).key_changes == ((2, AM),) for g in out)


@pytest.mark.parametrize("num", [1, 4])
def test_each_row_hears_the_key_it_drew(model, num, monkeypatch):
    calls = record_steps(model, monkeypatch, "keys")
    no_ending_search(monkeypatch)  # the codes fed while sampling; redrawn endings are fed alike (test_endings)
    keys = (D, AM, Key(10), Key(4, True))
    out = generate(model, TOK, Plan(bars=4, keys={"*": keys}), num, torch.Generator().manual_seed(5))
    fed_rows(calls, out, num)
    assert {TOK.decode(g.ids).key for g in out} <= set(keys)
    if num == 4:
        assert len({g.ids[2] for g in out}) > 1  # rows in different keys at once


def test_a_long_prime_in_one_pass_gets_the_same_codes_as_step_by_step(model, monkeypatch):
    prime = modulating(20, 12, D)  # 20 bars, a key change in bar 13: far past the shared-pass threshold
    fast = one_pass_equals_stepwise(model, TOK, Plan(bars=3, prime=prime), monkeypatch, 23)
    # the new bars were sampled hearing the prime's last key: the likelihood scoring computes
    scored = token_nlls(model, TOK, [np.asarray(g.ids) for g in fast])
    n_prime = len(TOK.encode(prime)) - 2  # predicted tokens of the prime: all but BOS and its EOS
    for g, s in zip(fast, scored):
        assert g.nll_nats == pytest.approx(float(s[n_prime:].sum()), rel=1e-4)
