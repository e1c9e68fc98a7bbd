"""The token grammar: masks allow exactly the sequences the tokenizer decodes, with N bars."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.errors import TokenizerError
from composer.tokens.grammar import Grammar, Grammar1, make_grammar, tables_for
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import DUR, MAX_DUR, PITCH, POS, Tokenizer

TOK = Tokenizer()
V = TOK.vocab
TABLES = tables_for(V)
METERS = [TimeSignature(4, 4), TimeSignature(3, 4), TimeSignature(6, 8), TimeSignature(2, 2), TimeSignature(7, 8), TimeSignature(5, 16)]


def header(ts: TimeSignature, key: Key = Key(0)) -> list[int]:
    return [V.bos, V.timesig_id(ts), V.key_id(key)]


def random_walk(rng, bar_steps: list[int], bars: int, pitch_range=(21, 108), batch_kind=Grammar):
    """Draw uniformly among allowed ids until every sequence closes; returns id lists."""
    g = Grammar(np.array(bar_steps), TABLES, pitch_range) if batch_kind is Grammar else Grammar1(bar_steps[0], TABLES, pitch_range)
    seqs = [[] for _ in bar_steps]
    g.advance(np.full(len(bar_steps), V.bar))
    for s in seqs:
        s.append(V.bar)
    g.set_span(bars, final=True)
    for _ in range(10_000):
        blocked, active = g.mask(), ~g.done()
        assert not blocked[active].all(axis=1).any(), "no token allowed"
        tok = np.array([rng.choice(np.flatnonzero(~row)) if a else V.pad for row, a in zip(blocked, active)])
        assert g.allows(tok)[active].all()
        g.advance(tok, active)
        for s, t, a in zip(seqs, tok.tolist(), active):
            if a:
                s.append(t)
        if g.done().all():
            return seqs
    raise AssertionError("walk did not end")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), meter=st.sampled_from(METERS), bars=st.integers(1, 6),
       lo=st.integers(21, 108), width=st.integers(0, 30))
def test_every_walk_decodes_to_exactly_n_bars(seed, meter, bars, lo, width):
    rng = np.random.default_rng(seed)
    pr = (lo, min(108, lo + width))
    for kind in (Grammar, Grammar1):
        for body in random_walk(rng, [meter.bar_steps] * (2 if kind is Grammar else 1), bars, pr, kind):
            m = TOK.decode(header(meter) + body)
            assert m.n_bars == bars and body.count(V.bar) == bars and body[-1] == V.eos
            assert all(pr[0] <= n.pitch <= pr[1] for n in m.notes)
            assert all(a.end <= b.start for a, b in zip(m.notes, m.notes[1:]))
            assert m.notes[-1].end > (bars - 1) * meter.bar_steps  # last bar sounds
            assert m.notes[0].start < meter.bar_steps  # first bar holds a note
            assert TOK.encode(m) == header(meter) + body  # canonical: the tokenizer writes the same ids


notes_st = st.lists(st.tuples(st.integers(0, 40), st.integers(1, 250), st.integers(21, 108)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(meter=st.sampled_from(METERS), raw=notes_st, extra_bars=st.integers(0, 2))
def test_grammar_accepts_every_encoded_melody(meter, raw, extra_bars):
    """Completeness: nothing the tokenizer writes is refused (both implementations)."""
    notes, t = [], 0
    for gap, dur, pitch in raw:
        notes.append(Note(t + gap, dur, pitch))
        t += gap + dur
    bars = max(1, -(-t // meter.bar_steps)) + extra_bars
    body = TOK.encode(Melody(tuple(notes), meter, Key(0), bars))[3:]
    for g in (Grammar(np.array([meter.bar_steps, meter.bar_steps]), TABLES), Grammar1(meter.bar_steps, TABLES)):
        g.set_span(bars, final=True)
        for tok in body:
            arr = np.array([tok] * g.batch)
            blocked = g.mask()
            ok = g.allows(arr)
            # EOS needs a sounding last bar; trailing empty bars are legal tokens but not sampled
            if tok == V.eos and not (notes and notes[-1].end > (bars - 1) * meter.bar_steps):
                assert not ok.any()
                break
            assert ok.all(), V.tokens[tok]
            if notes and notes[0].start < meter.bar_steps:  # sampling never leaves the first bar empty
                assert not blocked[:, tok].any()  # the sampling mask (full pitch range) allows it too
            g.advance(arr)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), meter=st.sampled_from(METERS), bars=st.integers(1, 5))
def test_scalar_and_batch_grammars_agree(seed, meter, bars):
    rng = np.random.default_rng(seed)
    gb, g1 = Grammar(np.array([meter.bar_steps]), TABLES, (40, 90)), Grammar1(meter.bar_steps, TABLES, (40, 90))
    for g in (gb, g1):
        g.advance(np.array([V.bar]))
        g.set_span(bars, final=False)
    for _ in range(500):
        mb, m1 = gb.mask().copy(), g1.mask().copy()
        assert (mb == m1).all()
        tok = np.array([rng.choice(np.flatnonzero(~mb[0]))])
        assert gb.closing(tok)[0] == g1.closing(tok)[0]
        if gb.closing(tok)[0]:
            assert tok[0] == V.bar and gb.bars[0] == bars  # the Bar after the last bar closes a section
            return
        gb.advance(tok)
        g1.advance(tok)
        assert (gb.bars[0], gb.cursor[0], gb.phase[0]) == (g1.bars, g1.cursor, g1.phase)
    raise AssertionError("section did not close")


def test_rules_in_detail():
    g = Grammar1(48, TABLES)  # 4/4: 48 steps a bar
    g.set_span(2, final=True)
    assert set(np.flatnonzero(~g.mask()[0])) == {V.bar}  # after the header: a Bar
    g.step(V.bar)
    ids = np.flatnonzero(~g.mask()[0])
    assert set(V.kinds[ids]) == {POS}  # no Bar before the first note: bar 1 is never empty
    assert V.values[ids].tolist() == list(range(48))
    assert Grammar1(48, TABLES).allows1(V.bar)  # forced tokens (a prime) may hold empty bars
    for tok in (TABLES.pos0 + 10, V.pitch_id(60)):
        g.step(tok)
    durs = np.flatnonzero(~g.mask()[0])
    assert V.values[durs].tolist() == list(range(1, 2 * 48 - 10 + 1))  # the note must end by the last bar line
    g.step(TABLES.dur0 + 86 - 1)  # a note from step 10 to 96: it fills both bars
    assert set(np.flatnonzero(~g.mask()[0])) == {V.bar}  # no room in bar 1, Bar allowed
    g.step(V.bar)
    assert set(np.flatnonzero(~g.mask()[0])) == {V.eos}  # sounding through bar 2: only EOS


def test_long_notes_chain_dur_96():
    g = Grammar1(48, TABLES)
    g.set_span(5, final=True)
    for tok in (V.bar, TABLES.pos0, V.pitch_id(60), TABLES.dur0 + MAX_DUR - 1):
        g.step(tok)
    ids = np.flatnonzero(~g.mask()[0])
    assert DUR in set(V.kinds[ids]) and V.bar in ids  # continue the note, or end it at 96 steps
    assert V.values[ids[V.kinds[ids] == DUR]].max() == MAX_DUR  # 144 steps left: up to a further 96
    g.step(TABLES.dur0 + 30 - 1)
    assert g.cursor == 126


def test_sections_close_with_bar_and_pitch_range_is_hard():
    g = make_grammar(np.array([36, 36]), TABLES, (60, 62))
    assert isinstance(g, Grammar)
    g.advance(np.array([V.bar, V.bar]))
    g.set_span(1, final=False)
    g.advance(np.array([TABLES.pos0, TABLES.pos0]))
    pitches = np.flatnonzero(~g.mask()[0])
    assert V.values[pitches].tolist() == [60, 61, 62] and set(V.kinds[pitches]) == {PITCH}
    assert g.allows(np.array([V.pitch_id(30)] * 2)).all()  # forced tokens (a prime) may leave the range
    with pytest.raises(TokenizerError):
        Grammar1(36, TABLES, (70, 60))
