"""Bar plans from real tunes, and the sampler following them (copies and echoes of its own bars)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from composer.model.config import ModelConfig
from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.model.network import MelodyLSTM
from nll_reference import sequence_nll
from composer.generate.plan import Plan, generate
from composer.generate.sample import SamplingConfig
from composer.music.bars import bar_repetition, repeated_bars
from composer.data.plans import COPY, ECHO, FRESH, bar_plan, plan_table, table_from_ids
from composer.generate.structure import default_form, draw_plans
from composer.tokens.tokenizer import Tokenizer
from conftest import melodies

TOK = Tokenizer()
VOCAB = TOK.vocab
TS = TimeSignature(3, 4)  # 36 steps a bar


def bar(b: int, notes: list[tuple[int, int, int]]) -> list[Note]:
    return [Note(b * 36 + s, d, p) for s, d, p in notes]


MOTIF = [(0, 12, 60), (12, 12, 64), (24, 12, 62)]
OTHER = [(0, 18, 67), (18, 18, 65)]


def test_bar_plan_finds_copies_echoes_and_fresh_bars():
    up = [(s, d, p + 5) for s, d, p in MOTIF]  # same rhythm and contour, new pitches: a sequence
    notes = bar(0, MOTIF) + bar(1, MOTIF) + bar(2, up) + bar(3, OTHER) + bar(5, OTHER) + bar(6, up)
    m = Melody(tuple(notes), TS, Key(0), 7)
    assert bar_plan(m) == [FRESH, 2 * 0 + COPY, 2 * 0 + ECHO, FRESH, FRESH, 2 * 3 + COPY, 2 * 2 + COPY]
    assert bar_plan(m, max_bars=3) == [FRESH, COPY, ECHO]
    assert repeated_bars(m) == (4, 6)  # the statistic agrees: 4 of the 6 bars holding notes repeat


@settings(max_examples=40, deadline=None)
@given(melodies(max_bars=8))
def test_plans_only_point_back(m: Melody):
    plan = bar_plan(m)
    assert len(plan) == m.n_bars
    assert all(v == FRESH or 0 <= v // 2 < b for b, v in enumerate(plan))


def test_table_and_draws():
    long = Melody(tuple(bar(0, MOTIF) + bar(1, MOTIF) + bar(3, MOTIF)), TS, Key(0), 4)
    short = Melody(tuple(bar(0, MOTIF)), TS, Key(0), 1)
    table = plan_table([long, short])
    assert table.dtype == torch.int16 and table.shape == (2, 64)
    assert table[0, :4].tolist() == [FRESH, COPY, FRESH, COPY] and (table[0, 4:] == -2).all()
    g = torch.Generator().manual_seed(0)
    plans = draw_plans(table, 5, 4, g)
    assert plans == ((FRESH, COPY, FRESH, COPY),) * 5  # only the long tune has 4 bars
    assert draw_plans(table, 2, 6, g) == ((FRESH, COPY, FRESH, COPY, FRESH, FRESH),) * 2  # fresh past its end
    assert draw_plans(None, 3, 4, g) is None
    a = draw_plans(table, 50, 1, torch.Generator().manual_seed(3))
    assert a == draw_plans(table, 50, 1, torch.Generator().manual_seed(3)) and len(a) == 50
    assert torch.equal(table_from_ids([TOK.encode(long), TOK.encode(short)], TOK), table)  # from a tokenized split


def test_default_form_is_free_for_copy_hints_and_corpus_plans_otherwise():
    assert default_form(copy_hints=False, has_plans=True) == "corpus"
    assert default_form(copy_hints=True, has_plans=True) == "free"  # such a model repeats by itself
    assert default_form(copy_hints=False, has_plans=False) == "free"


@pytest.fixture(scope="module")
def model() -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=len(VOCAB), embed_size=24, hidden_size=32, num_layers=2, dropout=0.3, copy_hints=False)).eval()


def shape(m: Melody, b: int):
    """(rhythm, pitches, contour) of the notes starting in bar b."""
    bs = m.bar_steps
    notes = [n for n in m.notes if b * bs <= n.start < (b + 1) * bs]
    rhythm = tuple((n.start - b * bs, n.duration) for n in notes)
    pitches = tuple(n.pitch for n in notes)
    return rhythm, pitches, tuple(np.sign(np.diff(pitches)).tolist())


def free_to_follow(m: Melody, b: int, src: int) -> bool:
    """The copy can be taken whole: no note from before bar b still sounds at the source's first
    onset, and no copied note would run past the melody's end."""
    bs = m.bar_steps
    before = [n for n in m.notes if n.start < b * bs]
    rhythm = shape(m, src)[0]
    if not rhythm:
        return False
    ok_start = not before or before[-1].end - b * bs <= rhythm[0][0]
    return ok_start and b * bs + rhythm[-1][0] + rhythm[-1][1] <= m.total_steps


PLAN = (FRESH, 2 * 0 + COPY, 2 * 0 + ECHO, FRESH, 2 * 3 + COPY, 2 * 1 + ECHO, FRESH, 2 * 6 + COPY)


@pytest.mark.parametrize("batch, temperature, meter", [(1, 1.0, TimeSignature(4, 4)), (1, 3.0, TS),
                                                      (12, 1.0, TimeSignature(6, 8)), (12, 3.0, TimeSignature(4, 4))])
def test_sampler_follows_the_plan(model, batch, temperature, meter):
    plan = Plan(bars=8, meters=(meter,), sampling=SamplingConfig(temperature=temperature), structure=(PLAN,) * batch)
    followed = 0
    for g in generate(model, TOK, plan, batch, torch.Generator().manual_seed(batch + 1)):
        m = TOK.decode(g.ids)
        assert m.n_bars == 8 and g.ids[-1] == VOCAB.eos and all(a.end <= b.start for a, b in zip(m.notes, m.notes[1:]))
        for b, v in enumerate(PLAN):
            if v == FRESH or not free_to_follow(m, b, v // 2):
                continue
            followed += 1
            src, got = shape(m, v // 2), shape(m, b)
            if v % 2 == COPY:
                assert got == src, (b, got, src)
            else:
                assert (got[0], got[2]) == (src[0], src[2]), (b, got, src)
        ref = sequence_nll(model, torch.tensor(g.ids)).item()  # forced tokens are scored by the model too
        assert g.nll_nats == pytest.approx(ref, rel=1e-4)
    assert followed >= max(1, batch // 2)  # the plan is not vacuous


def test_structure_repeats_more_than_free_sampling(model):
    plans = (PLAN + PLAN,) * 16
    free = generate(model, TOK, Plan(bars=16), 16, torch.Generator().manual_seed(1))
    planned = generate(model, TOK, Plan(bars=16, structure=plans), 16, torch.Generator().manual_seed(1))
    rep = lambda rs: np.mean([bar_repetition(TOK.decode(r.ids)) for r in rs])  # noqa: E731
    assert rep(planned) > rep(free) + 0.2


def test_a_prime_is_kept_and_the_new_bars_follow_the_plan(model):
    prime = Melody(tuple(bar(0, MOTIF) + bar(1, OTHER)), TS, Key(0), 2)
    plan = Plan(bars=8, prime=prime, structure=(PLAN,) * 16)
    followed = 0
    for g in generate(model, TOK, plan, 16, torch.Generator().manual_seed(2)):
        m = TOK.decode(g.ids)
        assert m.n_bars == 10 and m.notes[:5] == prime.notes
        new = m.bars(2, 8)
        for b, v in enumerate(PLAN):
            if v % 2 == COPY and v != FRESH and free_to_follow(new, b, v // 2) and shape(new, b)[0]:
                followed += 1
                assert shape(new, b) == shape(new, v // 2)  # bar numbers count from the first new bar
    assert followed > 0


def test_structure_is_refused_with_a_form_or_the_wrong_count(model):
    with pytest.raises(ComposerError, match="form"):
        generate(model, TOK, Plan(bars=8, form="AB", structure=(PLAN,)), 1)
    with pytest.raises(ComposerError, match="2 bar plans for 3"):
        generate(model, TOK, Plan(bars=8, structure=(PLAN, PLAN)), 3)


# --- repeats of a --form section: --vary's new last bar, a pickup's lead-in ---------------------------
from composer.generate.structure import Differ, Follower, LeadIn, Literal, bar_tokens, repeat_plan  # noqa: E402
from composer.music.bars import bar_contents, is_pickup  # noqa: E402
from composer.tokens.grammar import Grammar, tables_for  # noqa: E402

T = tables_for(VOCAB)
FOUR = TimeSignature(4, 4)  # 48 steps a bar
PICKUP = [(36, 12, 67)]  # a quarter-note upbeat


def section(*bars) -> list[int]:
    """The body tokens (each bar opened by Bar) of 4/4 bars given as (onset, duration, pitch) lists."""
    m = Melody(tuple(Note(b * 48 + s, d, p) for b, notes in enumerate(bars) for s, d, p in notes), FOUR, Key(0), len(bars))
    return TOK.encode(m)[3:-1]


def repeat_against(first: list[int], plan) -> list[int]:
    """Write the repeat of ``first`` under the grammar and a Follower of ``plan``, drawn by an
    adversary that always takes the original's next token when allowed (else it closes the bar,
    else the lowest allowed id): the model at its most slavish. Returns the repeat's tokens."""
    g = Grammar(np.array([48]), T)
    n = first.count(T.bar)
    g.set_span(n, final=True)
    for tk in first:
        g.advance(np.array([tk]))
    g.set_span(2 * n, final=True)
    g.advance(np.array([T.bar]))
    follow, out, bars = Follower([plan], T), [T.bar], bar_tokens(first, T.bar)
    for _ in range(1000):
        blocked = g.mask()
        follow.constrain(blocked, g.close)
        allowed = np.flatnonzero(~blocked[0])
        b, k = out.count(T.bar) - 1, len(out) - 1 - max(i for i, x in enumerate(out) if x == T.bar)
        want = bars[b][k] if k < len(bars[b]) else None
        close = [x for x in (T.bar, g.close) if x in allowed]
        tok = want if want in allowed else close[0] if close else int(allowed.min())
        follow.advance(np.array([tok]))
        if g.closing(np.array([tok]))[0]:
            return out
        g.advance(np.array([tok]))
        out.append(tok)
    raise AssertionError("the repeat never closed")


def test_vary_refuses_the_original_last_bar_even_to_a_slavish_model():
    first = section([(0, 12, 60), (12, 12, 64), (24, 24, 62)], [(0, 24, 65), (24, 24, 64)])
    plan = repeat_plan(first, T, 48, vary=True)
    assert plan == (Literal(tuple(bar_tokens(first, T.bar)[0])), Differ(tuple(bar_tokens(first, T.bar)[1])))
    again = bar_tokens(repeat_against(first, plan), T.bar)
    original = bar_tokens(first, T.bar)
    assert again[0] == original[0] and again[1] != original[1]
    assert again[1][:-2] == original[1][:-2]  # it went along until the last note's pitch: a new ending


def test_a_repeat_leads_into_bar_2_instead_of_repeating_the_pickup():
    first = section(PICKUP, [(0, 24, 72), (24, 24, 71)], [(0, 48, 69)])
    plan = repeat_plan(first, T, 48, vary=False)
    tail = tuple(bar_tokens(first, T.bar)[0])
    assert plan[0] == LeadIn(tail, 36, 24) and all(isinstance(r, Literal) for r in plan[1:])
    again = bar_tokens(repeat_against(first, plan), T.bar)
    assert again[1:] == bar_tokens(first, T.bar)[1:]  # bars 2 and 3 as they were
    lead = again[0]
    assert lead[-len(tail):] == list(tail) and T.pos_value[lead[0]] < 24  # fresh notes, then the upbeat into bar 2


def test_a_full_first_bar_repeats_as_it_was():
    first = section([(0, 24, 60), (24, 24, 62)], [(0, 48, 64)])
    assert all(isinstance(r, Literal) for r in repeat_plan(first, T, 48, vary=False))


def test_forms_vary_every_repeat_and_never_repeat_a_pickup(model):
    plan = Plan(bars=16, meters=(FOUR,), form="AABB", vary=True)
    for g in generate(model, TOK, plan, 12, torch.Generator().manual_seed(3)):
        m = TOK.decode(g.ids)
        bars = bar_contents(m)
        for a, again in ((0, 4), (8, 12)):
            ending = 3 if bars[a + 3] else 2  # the last bar, or from the bar before when a note is held over it
            assert bars[again + ending:again + 4] != bars[a + ending:a + 4]  # the varied ending
            assert bars[again + 1:again + ending] == bars[a + 1:a + ending]
            first = [(s, d) for s, d, _ in bars[a]]
            if is_pickup(first, 48):
                assert bars[again] != bars[a] and bars[again][0][0] < 24
            else:
                assert bars[again] == bars[a]
