"""Meter and key changes (tokenizer version 2): the Melody type, tokens, grammar, MIDI files and
the bar lines of real-world files (short bars, same-tick meters, big meters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import keys
from composer.errors import MusicError, TokenizerError
from composer.generate.sample import Sampler
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music.barlines import bar_grid, meter_events
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_report, write_midi
from composer.tokens.grammar import make_grammar, tables_for
from composer.tokens.tokenizer import KEY, TIMESIG, Tokenizer

TOK = Tokenizer()
V = TOK.vocab
TS = TimeSignature.parse
SHORT = [TS(m) for m in ("4/4", "3/4", "2/4", "6/8", "1/8", "1/4", "5/8", "9/8", "7/8", "3/8", "2/32", "6/2", "4/1", "3/16")]


@st.composite
def changing_melodies(draw, max_bars: int = 8) -> Melody:
    """Melodies whose meter and key may change at any bar line, notes crossing bar lines."""
    n_bars = draw(st.integers(1, max_bars))
    meters = [draw(st.sampled_from(SHORT)) for _ in range(n_bars)]
    bar_keys = [draw(keys) for _ in range(n_bars)]
    m_changes = tuple((b, m) for b, m in enumerate(meters) if b and m != meters[b - 1])
    k_changes = tuple((b, k) for b, k in enumerate(bar_keys) if b and k != bar_keys[b - 1])
    total = sum(m.bar_steps for m in meters)
    notes, t = [], draw(st.integers(0, 5))
    while t < total and len(notes) < 40:
        d = min(draw(st.integers(1, 60)), total - t)
        if draw(st.booleans()):
            notes.append(Note(t, d, draw(st.integers(PITCH_MIN, PITCH_MAX))))
        t += d
    return Melody(tuple(notes), meters[0], bar_keys[0], n_bars, meter_changes=m_changes, key_changes=k_changes)


def test_melody_bars_follow_their_meters():
    m = Melody((Note(40, 20, 60),), TS("4/4"), Key(7), 3, meter_changes=((1, TS("1/8")),), key_changes=((2, Key(2)),))
    assert m.bar_starts == (0, 48, 54, 60) and m.total_steps == 60
    assert [m.meter_at(b) for b in range(3)] == [TS("4/4"), TS("1/8"), TS("1/8")] and m.last_key == Key(2)
    assert [m.bar_of(s) for s in (0, 47, 48, 53, 54, 59)] == [0, 0, 1, 1, 2, 2]
    part = m.bars(1, 2)
    assert part.time_signature == TS("1/8") and part.meter_changes == () and part.key_changes == ((1, Key(2)),)
    assert part.notes == (Note(0, 12, 60),)  # the note from bar 1 clipped at the cut
    assert m.transpose(2).key_changes == ((2, Key(4)),)
    with pytest.raises(MusicError):
        Melody((), TS("4/4"), Key(0), 2, meter_changes=((1, TS("4/4")),))  # not a change
    with pytest.raises(MusicError):
        Melody((), TS("4/4"), Key(0), 2, meter_changes=((2, TS("3/4")),))  # past the last bar
    with pytest.raises(MusicError):
        Melody((Note(0, 60, 60),), TS("4/4"), Key(0), 2, meter_changes=((1, TS("1/8")),))  # longer than 54 steps


def test_changes_are_tokens_after_the_bar():
    m = Melody((Note(0, 48, 60), Note(48, 6, 62), Note(54, 18, 64)), TS("4/4"), Key(0), 3,
               meter_changes=((1, TS("1/8")), (2, TS("6/8"))), key_changes=((2, Key(7)),))
    words = [V.tokens[i] for i in TOK.encode(m)]
    assert words == ["BOS", "TimeSig_4/4", "Key_C", "Bar", "Pos_0", "Pitch_60", "Dur_48",
                     "Bar", "TimeSig_1/8", "Pos_0", "Pitch_62", "Dur_6",
                     "Bar", "TimeSig_6/8", "Key_G", "Pos_0", "Pitch_64", "Dur_18", "EOS"]
    assert TOK.decode(TOK.encode(m)) == m
    with pytest.raises(TokenizerError, match="version 1 cannot hold meter or key changes"):
        Tokenizer.for_version(1).encode(m)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changing_melodies())
def test_round_trip_with_changes(m: Melody):
    ids = TOK.encode(m)
    assert TOK.decode(ids) == m
    starts, durs, pitches = TOK.note_arrays(ids)
    assert starts.tolist() == [n.start for n in m.notes] and durs.tolist() == [n.duration for n in m.notes]
    assert pitches.tolist() == [n.pitch for n in m.notes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(changing_melodies(max_bars=6))
def test_midi_file_round_trip_with_changes(tmp_path_factory, m: Melody):
    if not m.notes or m.notes[0].start >= m.bar_starts[1] or m.notes[-1].end <= m.bar_starts[-2]:
        return  # a file holds no empty first or last bar
    if m.n_bars > 1 and m.meter_at(0).bar_steps < m.meter_at(1).bar_steps:
        return  # a first bar shorter than the next is read as a pickup (test_a_pickup_bar_is_the_end_of_a_full_bar)
    path = tmp_path_factory.mktemp("m") / "m.mid"
    write_midi(m, path)
    got = read_report(path).melody
    assert got.notes == m.notes and got.meter_changes == m.meter_changes and got.bar_starts == m.bar_starts
    assert got.key_changes == m.key_changes and got.key == m.key


def test_the_grammar_follows_a_prime_that_changes_meter():
    prime = Melody((Note(0, 48, 60), Note(48, 6, 62)), TS("4/4"), Key(0), 2, meter_changes=((1, TS("3/8")),))
    body = TOK.encode(prime)[3:-1]
    g = make_grammar(np.array([48]), tables_for(V))
    g.set_span(2, final=False)
    for t in body:
        assert g.allows1(t), V.tokens[t]
        g.step(t)
    assert g.bar_len == 18 and g.start == 48 and g.cursor == 54
    g.set_span(3, final=True)
    g.step(V.bar)
    allowed = np.flatnonzero(~g.mask()[0])
    assert not np.isin(V.kinds[allowed], (TIMESIG, KEY)).any()  # sampling never changes meter or key
    assert V.values[allowed[V.kinds[allowed] == V.kinds[V.id("Pos_0")]]].max() == 17  # bars of 3/8 now
    fresh = make_grammar(np.array([48]), tables_for(V))
    fresh.step(V.bar)
    assert not fresh.allows1(V.id("TimeSig_3/8"))  # no change in bar 1: the header holds its meter


def test_sampling_after_a_changing_prime_keeps_its_last_meter_and_key():
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(vocab_size=len(V), embed_size=16, hidden_size=16, num_layers=1, dropout=0.0,
                                   copy_hints=False, **_length_kw()))
    prime = Melody((Note(0, 48, 60), Note(48, 18, 62)), TS("4/4"), Key(0), 2,
                   meter_changes=((1, TS("6/8")),), key_changes=((1, Key(7)),))
    for batch in (1, 3):
        s = _sampler(model, batch, total_bars=6)
        s.start([prime.time_signature], [prime.key])
        s.feed([TOK.encode(prime)[3:-1]] * batch)
        s.sample_bars(4)
        for r in s.results():
            m = TOK.decode(r.ids)
            assert m.n_bars == 6 and m.meter_changes == ((1, TS("6/8")),) and m.key_changes == ((1, Key(7)),)
            assert m.total_steps == 48 + 5 * 36


def _length_kw() -> dict:
    """length_aware=False where the model config has that field (the sampler then needs no bar count)."""
    return {"length_aware": False} if "length_aware" in ModelConfig.__dataclass_fields__ else {}


def _sampler(model, batch: int, total_bars: int) -> Sampler:
    try:
        return Sampler(model, TOK, batch, total_bars=total_bars)
    except TypeError:  # a sampler without bar counts
        return Sampler(model, TOK, batch)


# ---- bar lines of real-world files -------------------------------------------------------------------

def test_same_tick_meters_resolved_by_bars_and_notes():
    on = np.arange(0, 480 * 16, 960)  # half notes for four 4/4 bars
    off = on + 960
    for raw in ([(0, 4, 4), (0, 1, 4)], [(0, 1, 4), (0, 4, 4)]):
        assert meter_events(raw, on, off, 480) == [(0, 4, 4)]  # 1/4 bars would cut every half note
    # a 1/4 bar then 4/4 at the next quarter: the 1/4 fits its span exactly
    assert meter_events([(0, 4, 4), (0, 1, 4), (480, 4, 4)], on, off, 480) == [(0, 1, 4), (480, 4, 4)]


def test_short_bars_and_big_meters_become_bars_of_their_own():
    # 6/8 bars, a 1/32 bar (merged into its neighbour: not whole sixteenths), a 2/8 bar, then 20/4 (split)
    tpq = 480
    events = [(0, 6, 8), (1440, 1, 32), (1500, 2, 8), (1980, 20, 4)]
    grid = bar_grid(meter_events(events, np.array([0, 1980]), np.array([480, 1980 + 480 * 20]), tpq), tpq, 0, 1980 + 480 * 20)
    steps = np.diff(grid.starts).tolist()
    # bar lines on sixteenths: the 1/32 bar (1.5 steps) ends on the next one, so later lines sit
    # 1.5 steps late (notes keep their own positions); the 20/4 bar is 16/4 + 4/4
    assert steps == [36, 3, 12, 192, 48] and grid.reshaped == 3
    assert list(map(str, grid.meters)) == ["6/8", "2/32", "2/8", "16/4", "4/4"]


def test_a_pickup_bar_is_the_end_of_a_full_bar():
    grid = bar_grid([(0, 1, 4), (480, 3, 4)], 480, 0, 480 * 7)
    assert grid.origin == 480 - 1440 and grid.starts[:3] == (0, 36, 72) and set(map(str, grid.meters)) == {"3/4"}


def test_key_changes_are_read_at_their_bar(tmp_path: Path):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120, resolution=480)
    inst = pretty_midi.Instrument(0, name="Flute")
    for i in range(16):  # four 4/4 bars of quarters (0.5 s each)
        inst.notes.append(pretty_midi.Note(90, 67 + (i % 3), i * 0.5, i * 0.5 + 0.5))
    pm.instruments.append(inst)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    pm.key_signature_changes += [pretty_midi.KeySignature(7, 0), pretty_midi.KeySignature(2, 4.0),
                                 pretty_midi.KeySignature(7, 5.25)]  # bar 3; mid bar 3 -> from bar 4
    pm.write(str(tmp_path / "k.mid"))
    m = read_report(tmp_path / "k.mid").melody
    assert m.key == Key(7) and m.key_changes == ((2, Key(2)), (3, Key(7)))


def test_a_section_too_short_for_a_bar_line_still_gives_bars():
    # 4/4 for 2 ticks, then 1/1 (found by fuzzing: no bar line fell before the note)
    grid = bar_grid(meter_events([(0, 4, 4), (2, 1, 1)], np.array([0]), np.array([1]), 96), 96, 0, 1)
    assert len(grid.meters) >= 1 and grid.starts[0] == 0 and grid.origin <= 0
    grid = bar_grid([(480, 3, 4)], 480, 0, 100)  # a first time signature after the first note
    assert grid.origin <= 0 and str(grid.meters[0]) == "3/4"
