"""Chord codes (the chord sounding at every token, relative to the key): the time of each token,
the codes themselves and their transposition, the network's whole-sequence and one-step paths
with chords, configs, and training windows that see their chords or none."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import melodies
from composer.harmony.chords import parse_chord
from composer.harmony.progression import parse_progression, progression_spans
from composer.harmony.vocab import CHORD_VOCABULARY, chord_id
from composer.model import chordcodes as CC
from composer.model import keycodes as K
from composer.model import lengths as L
from composer.model.config import ModelConfig
from composer.model.hints import BUCKETS as HINT_BUCKETS
from composer.model.network import MelodyLSTM
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import BAR, DUR, PITCH, POS, Tokenizer
from composer.train.batching import WindowSampler, flatten

TOK = Tokenizer()
VOCAB = TOK.vocab
C, G = Key(0), Key(7)
T44, T34, T68 = TimeSignature(4, 4), TimeSignature(3, 4), TimeSignature(6, 8)


def expected_steps(melody: Melody, ids: list[int]) -> list[int]:
    """Each token's time from the melody itself: the j-th Bar token at bar_starts[j], the n-th
    note's Pos, Pitch and Dur tokens at its onset; -1 before the first Bar; others: the time so far."""
    kinds = VOCAB.kinds[np.asarray(ids)].tolist()
    out, now, bar, note = [], -1, 0, -1
    for k in kinds:
        if k == BAR:
            now, bar = melody.bar_starts[bar], bar + 1
        elif k == POS:
            note += 1
            now = melody.notes[note].start
        elif k in (PITCH, DUR):
            assert now == melody.notes[note].start
        out.append(now)
    assert note == len(melody.notes) - 1  # one Pos per note
    return out


# -- the time of each token ---------------------------------------------------------------------

PLAIN_44 = Melody((Note(0, 12, 60), Note(12, 24, 62), Note(36, 30, 64), Note(72, 24, 65)), T44, C, 2)
SIX_EIGHT = Melody((Note(0, 6, 67), Note(6, 12, 69), Note(18, 18, 71), Note(42, 30, 72)), T68, G, 3)
CHANGING = Melody((Note(0, 12, 60), Note(12, 60, 62), Note(72, 6, 64), Note(90, 30, 65), Note(120, 36, 67)),
                  T44, C, 4, meter_changes=((1, T34), (3, T68)))


@pytest.mark.parametrize("melody", [PLAIN_44, SIX_EIGHT, CHANGING], ids=["4/4", "6/8", "meter change"])
def test_token_steps_are_note_onsets_and_bar_lines(melody):
    ids = TOK.encode(melody)
    assert CC.token_steps(ids, VOCAB).tolist()[:-1] == expected_steps(melody, ids)[:-1]  # (EOS: the time so far)
    assert CC.token_steps(ids[:3], VOCAB).tolist() == [-1, -1, -1]  # BOS TimeSig Key: the header
    bars = [s for s, t in zip(CC.token_steps(ids, VOCAB).tolist(), ids) if t == VOCAB.bar]
    assert bars == list(melody.bar_starts[:-1])


@settings(max_examples=60, deadline=None)
@given(melodies(max_bars=6))
def test_token_steps_of_any_melody(melody):
    ids = TOK.encode(melody)
    assert CC.token_steps(ids, VOCAB).tolist()[:-1] == expected_steps(melody, ids)[:-1]


# -- the codes ----------------------------------------------------------------------------------

def spans_of(text: str, melody: Melody) -> list:
    """The chords ``text`` (one bar each, | between bars) over the melody's bars."""
    return progression_spans(parse_progression(text, melody.n_bars), melody.bar_starts)


def test_header_and_no_chords():
    ids = TOK.encode(PLAIN_44)
    c = CC.codes(ids, VOCAB, spans_of("C G", PLAIN_44))
    assert c[:3].tolist() == [CC.NO_CHORDS] * 3 and CC.NO_CHORDS == len(CHORD_VOCABULARY) == 121
    assert CC.CODES == 122 and CC.NO_CHORDS not in c[3:].tolist()
    assert CC.codes(ids, VOCAB, None).tolist() == [CC.NO_CHORDS] * len(ids)
    assert CC.codes([], VOCAB, []).tolist() == [] and CC.codes([], VOCAB, None).tolist() == []
    # a step no span covers (N.C. or silence in the chords given) is "no chord", not "no chords given"
    nc = CC.codes(ids, VOCAB, spans_of("N.C. G", PLAIN_44))
    assert set(nc[3:].tolist()) == {0, chord_id(parse_chord("G"))}


def test_a_pos_token_carries_the_chord_at_its_onset():
    # C for the first half of the bar, G7 from step 24; a note held over the change keeps C
    melody = Melody((Note(0, 12, 60), Note(12, 18, 64), Note(30, 18, 67)), T44, C, 1)
    ids = TOK.encode(melody)
    c = CC.codes(ids, VOCAB, [(0, 24, parse_chord("C")), (24, 24, parse_chord("G7"))]).tolist()
    cc, g7 = chord_id(parse_chord("C")), chord_id(parse_chord("G7"))
    names = [VOCAB.tokens[i] for i in ids]
    assert names[3:13] == ["Bar", "Pos_0", "Pitch_60", "Dur_12", "Pos_12", "Pitch_64", "Dur_18", "Pos_30",
                           "Pitch_67", "Dur_18"]
    assert c[3:10] == [cc] * 7  # the Bar, the first two notes' tokens (onsets 0, 12)
    assert c[10:13] == [g7] * 3  # Pos_30, its Pitch and Dur: onset 30, past the change at 24


def test_chords_are_written_relative_to_the_key_and_follow_a_key_change():
    melody = Melody(tuple(Note(i * 12, 12, 67) for i in range(8)), T44, C, 2, key_changes=((1, G),))
    ids = TOK.encode(melody)
    c = CC.codes(ids, VOCAB, spans_of("G G", melody))
    steps = CC.token_steps(ids, VOCAB)
    notes = VOCAB.kinds[np.asarray(ids)] == PITCH
    first, second = c[notes & (steps < 48)], c[notes & (steps >= 48)]
    assert set(first.tolist()) == {chord_id(parse_chord("G"))}  # V of C: G's own id (C's tonic is 0)
    assert set(second.tolist()) == {chord_id(parse_chord("C"))}  # I of G: written as a chord on 0
    # a whole step up (D, then A; chords A, A): V then I again, the same codes
    in_d = CC.codes(TOK.encode(melody.transpose(2)), VOCAB, spans_of("A A", melody))
    assert in_d.tolist() == c.tolist()


PROGRESSIONS = ["C F G7 C", "Am | Dm E7 | Am", "C Am | F G", "Dm7 G7 | Cmaj7 | N.C. | C"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PROGRESSIONS), st.integers(-11, 11), st.sampled_from([PLAIN_44, SIX_EIGHT, CHANGING]))
def test_transposing_the_melody_key_and_chords_keeps_the_codes(text, k, melody):
    melody = Melody(tuple(Note(n.start, n.duration, n.pitch - 5) for n in melody.notes), melody.time_signature,
                    melody.key, max(melody.n_bars, 4), meter_changes=melody.meter_changes)
    spans = spans_of(text, melody)
    moved = [(s, d, None if ch is None else ch.transpose(k)) for s, d, ch in spans]
    want = CC.codes(TOK.encode(melody), VOCAB, spans)
    assert CC.codes(TOK.encode(melody.transpose(k)), VOCAB, moved).tolist() == want.tolist()
    if k % 12:  # and moving only the chords moves the codes
        assert CC.codes(TOK.encode(melody), VOCAB, moved).tolist() != want.tolist() or "N.C." in text


def test_step_codes_fill_spans_and_mark_steps_without_a_key():
    tonics = np.array([0] * 6 + [7] * 6 + [-1] * 2)
    out = CC.step_codes([(0, 4, parse_chord("G")), (4, 6, parse_chord("D")), (10, 4, None)], 14, tonics)
    g, d, c = (chord_id(parse_chord(x)) for x in ("G", "D", "C"))
    assert out.tolist() == [g] * 4 + [d] * 2 + [g] * 4 + [0, 0] + [CC.NO_CHORDS] * 2


# -- the network --------------------------------------------------------------------------------

def tiny(others: bool = False, v: int = len(VOCAB)) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=v, embed_size=8, hidden_size=12, num_layers=2, dropout=0.2,
                                  copy_hints=others, length_aware=others, key_aware=others,
                                  chord_aware=True)).eval()


def test_forward_without_chords_is_forward_with_no_chords_given():
    model = tiny(True, 40)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 40, (2, 9), generator=g)
    kw = dict(hints=torch.randint(0, 40 * HINT_BUCKETS, (2, 9), generator=g),
              lengths=torch.randint(0, L.CODES, (2, 9), generator=g), keys=torch.randint(0, K.CODES, (2, 9), generator=g))
    with torch.no_grad():
        none, _ = model(ids, **kw)
        given_none, _ = model(ids, chords=torch.full_like(ids, CC.NO_CHORDS), **kw)
        some, _ = model(ids, chords=torch.randint(0, CC.NO_CHORDS, (2, 9), generator=g), **kw)
    assert torch.equal(none, given_none) and not torch.allclose(none, some)
    one, _ = model.step(ids[:, 0], model.init_state(2), **{n: x[:, 0] for n, x in kw.items()})
    two, _ = model.step(ids[:, 0], model.init_state(2), chords=torch.full((2,), CC.NO_CHORDS),
                        **{n: x[:, 0] for n, x in kw.items()})
    torch.testing.assert_close(one, two)


@pytest.mark.parametrize("others", [False, True], ids=["chords", "chords+keys+lengths+hints"])
def test_step_matches_forward_token_by_token_with_chords(others):
    v = 40
    model = tiny(others, v)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, v, (3, 17), generator=g)
    chords = torch.randint(0, CC.CODES, (3, 17), generator=g)
    kw = dict(hints=torch.randint(0, v * HINT_BUCKETS, (3, 17), generator=g),
              lengths=torch.randint(0, L.CODES, (3, 17), generator=g),
              keys=torch.randint(0, K.CODES, (3, 17), generator=g)) if others else {}
    with torch.no_grad():
        whole, last = model(ids, chords=chords, **kw)  # (B, T, V)
    state, steps = model.init_state(3), []
    for t in range(ids.shape[1]):
        logits, state = model.step(ids[:, t], state, chords=chords[:, t], **{n: x[:, t] for n, x in kw.items()})
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-4, rtol=1e-4)
    for a, b in zip(state, last):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_configs_without_the_field_load_as_not_chord_aware():
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "chord_aware"}
    assert ModelConfig.from_dict(old).chord_aware is False and ModelConfig().chord_aware is False
    cfg = ModelConfig(vocab_size=40, embed_size=8, hidden_size=12, num_layers=1, chord_aware=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert MelodyLSTM(cfg).num_parameters() - MelodyLSTM(ModelConfig.from_dict(
        {k: v for k, v in cfg.to_dict().items() if k != "chord_aware"})).num_parameters() == CC.CODES * 8


# -- training windows ---------------------------------------------------------------------------

def windows(dropout: float, seed: int = 3, max_shift: int = 0):
    """A sampler over 12 tunes whose every token has a true chord (never NO_CHORDS)."""
    seqs = [np.asarray(TOK.encode(m)) for m in (PLAIN_44, SIX_EIGHT, CHANGING)] * 4
    tokens = flatten(seqs)
    g = torch.Generator().manual_seed(seed)
    chords = torch.randint(1, CC.NO_CHORDS, tokens.shape, generator=g)
    keys = flatten([K.codes(s, VOCAB) for s in seqs])
    return WindowSampler(tokens, 16, 4, seed=seed, keys=keys, chords=chords, chord_dropout=dropout,
                         max_shift=max_shift, vocab=VOCAB), tokens, chords


def window_states(sampler, chords, epoch: int) -> list[bool]:
    """Per window of the epoch: True = trained without its chords; each window is one or the other."""
    plan, out = sampler.plan(epoch), []
    for step in range(plan.steps):
        b = sampler.batch(plan, step)
        at = plan.offsets[step, 0].unsqueeze(1) + torch.arange(16)
        for row in range(b.chords.shape[0]):
            dropped = bool((b.chords[row] == CC.NO_CHORDS).all())
            assert dropped or torch.equal(b.chords[row], chords[at[row]])
            out.append(dropped)
        assert torch.equal(plan.no_chords[step, 0], torch.tensor(out[-b.chords.shape[0]:]))
    return out


def test_windows_see_their_chords_or_none():
    sampler, tokens, chords = windows(0.5, max_shift=5)  # chords are relative to the key: never transposed
    first = window_states(sampler, chords, 0)
    assert any(first) and not all(first)
    again, _, _ = windows(0.5, max_shift=5)
    assert window_states(again, chords, 0) == first  # the same per (seed, epoch)
    assert window_states(sampler, chords, 1) != first
    never, _, _ = windows(0.0)
    assert not any(window_states(never, chords, 0)) and not any(window_states(never, chords, 1))
    # adding chords leaves each window and its transposition as they were
    plain = WindowSampler(tokens, 16, 4, seed=3, max_shift=5, vocab=VOCAB)
    a, b = plain.plan(0), sampler.plan(0)
    assert torch.equal(a.offsets, b.offsets) and torch.equal(a.draws, b.draws) and a.no_chords is None
    assert plain.batch(a, 0).chords is None
