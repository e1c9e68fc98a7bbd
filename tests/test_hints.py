"""Copy hints: the online match finder against brute force, on real tunes, and in batches."""

import numpy as np
import pretty_midi
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.train.batching import Transposer, WindowSampler, flatten
from composer.model.hints import BUCKETS, EDGES, Matcher, hints, split_hints
from composer.music.midi_io import read_melody
from composer.tokens.tokenizer import PITCH, Tokenizer
from composer.train.config import TrainConfig

TOK = Tokenizer()
VOCAB = TOK.vocab
V = len(VOCAB)  # hint = bucket * V + token
NONE = VOCAB.bos  # the hint when nothing earlier matches


def brute_force(seq: list[int]) -> list[int]:
    """Per position: the longest earlier context equal to the current one, first occurrence."""
    out = []
    for i in range(len(seq)):
        best, at = 0, -1
        for j in range(i):
            n = 0
            while n <= j and seq[j - n] == seq[i - n]:
                n += 1
            if n > best:
                best, at = n, j
        bucket = int(np.searchsorted(EDGES, min(best, EDGES[-1]), side="right"))
        out.append(NONE if best == 0 else bucket * V + seq[at + 1])
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(3, 6), max_size=80))
def test_matcher_equals_brute_force(seq):
    assert hints(seq, VOCAB).tolist() == brute_force(seq)


def test_buckets_follow_the_match_length():
    seq = list(range(10, 40)) * 3  # a 30-token phrase played three times
    bucket, token = split_hints(hints(seq, VOCAB), V)
    assert bucket[:30].tolist() == [0] * 30 and token[:30].tolist() == [NONE] * 30
    assert token[30:89].tolist() == seq[31:90]  # the repeats are predicted token for token
    lengths = np.arange(1, 60)  # the match grows by one per token of the repeat
    assert bucket[30:89].tolist() == np.searchsorted(EDGES, np.minimum(lengths, EDGES[-1]), side="right").tolist()
    assert int(bucket.max()) == BUCKETS - 2


def test_a_repeated_strain_is_predicted_from_its_first_pass(tmp_path):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    strain = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 67, 62, 60]
    for i, p in enumerate(strain + strain):  # eighth notes, 4 bars of 4/4 played twice
        inst.notes.append(pretty_midi.Note(90, p, i * 0.25, i * 0.25 + 0.25))
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "aa.mid"))
    ids = TOK.encode(read_melody(tmp_path / "aa.mid"))
    bucket, token = split_hints(hints(ids, VOCAB), V)
    half = [i for i, t in enumerate(ids) if VOCAB.kinds[t] == PITCH][len(strain)]  # second pass, first note
    late = np.arange(half + 8, len(ids) - 2)
    assert (token[late] == np.asarray(ids)[late + 1]).all() and (bucket[late] >= 3).all()
    assert (np.diff(bucket[late]) >= 0).all()  # the match only grows through the repeat


def test_online_matchers_agree_with_hints_token_by_token():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(3, 8, size=50).tolist() for _ in range(4)]
    ms = [Matcher(VOCAB) for _ in seqs]
    for t in range(50):
        got = [m.push(s[t]) for m, s in zip(ms, seqs)]
        assert got == [int(hints(s, VOCAB)[t]) for s in seqs]


def test_windows_carry_their_hints_transposed_with_the_tokens():
    rng = np.random.default_rng(1)
    pitch0 = VOCAB.first(PITCH) + 40
    seqs = [np.concatenate([[VOCAB.bos], np.tile(rng.integers(pitch0, pitch0 + 12, size=10), 4)]) for _ in range(30)]
    tokens, hint = flatten(seqs), flatten([hints(s, VOCAB) for s in seqs])
    plain = WindowSampler(tokens, 16, 4, seed=2, hints=hint, vocab=VOCAB)
    plan = plain.plan(0)
    x, y, h, _, _, _ = plain.batch(plan, 1)
    at = plan.offsets[1, 0].unsqueeze(1) + torch.arange(16)
    assert torch.equal(h, hint[at]) and torch.equal(x, tokens[at])
    moved = WindowSampler(tokens, 16, 4, seed=2, hints=hint, max_shift=5, vocab=VOCAB)
    xm, _, hm, _, _, _ = moved.batch(plan, 1)
    shift = Transposer(5, VOCAB).shifts(x, plan.draws[1, 0]) + 5
    table = Transposer(5, VOCAB).tables
    b, tok = split_hints(h, V)
    bm, tokm = split_hints(hm, V)
    assert torch.equal(bm, b) and torch.equal(xm, table[shift.unsqueeze(1), x])
    assert torch.equal(tokm, table[shift.unsqueeze(1), tok])  # hinted pitches move with the window


def test_runs_from_before_copy_hints_resume_without_them():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "copy_hints"}
    assert TrainConfig.from_dict(old).copy_hints is False
    assert TrainConfig.from_dict(TrainConfig().to_dict()).copy_hints is True
