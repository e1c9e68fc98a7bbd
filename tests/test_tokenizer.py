"""The tokenizer: lossless round trip, grammar, vocabulary, keys and transposition."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import MusicError, TokenizerError
from composer.music.keys import Key, estimate_key
from composer.music.melody import (PITCH_MAX, PITCH_MIN, STEPS_PER_QUARTER, Melody, Note, parse_pitch, pitch_name,
                                   transpositions)
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import (BAR, DUR, KEY, MAX_DUR, PITCH, POS, TIMESIG, TOKENIZER_VERSION, Tokenizer,
                                       Vocab)
from conftest import METERS, keys, melodies, meters

TOKENIZER = Tokenizer()  # this version's vocabulary
VOCAB = TOKENIZER.vocab
Q = STEPS_PER_QUARTER


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(melodies())
def test_round_trip_is_exact(m: Melody):
    ids = TOKENIZER.encode(m)
    back = TOKENIZER.decode(ids)
    assert back == m
    assert (back.notes, back.n_bars, back.time_signature, back.key) == (m.notes, m.n_bars, m.time_signature, m.key)
    kinds = VOCAB.kinds[np.asarray(ids)]
    assert ids[0] == VOCAB.bos and ids[-1] == VOCAB.eos
    assert kinds[1] == TIMESIG and kinds[2] == KEY
    assert int(np.count_nonzero(kinds == BAR)) == m.n_bars
    assert TOKENIZER.count_notes(ids) == len(m.notes)
    assert int(np.count_nonzero(kinds == POS)) == len(m.notes)


def test_every_supported_meter_round_trips():
    for ts in METERS:
        bar = ts.bar_steps
        notes = (Note(0, 1, 60), Note(bar - 1, 2, 62), Note(bar + 1, 2 * bar, 64))  # tie into bar 2 and 3
        m = Melody(notes, ts, Key(2, True), 4)
        assert TOKENIZER.decode(TOKENIZER.encode(m)) == m, ts
    names = {str(ts) for ts in METERS}
    assert {"4/4", "3/4", "2/4", "6/8", "9/8", "12/8", "2/2", "5/4", "7/8", "3/8", "3/2"} <= names


@pytest.mark.parametrize("duration", [1, MAX_DUR - 1, MAX_DUR, MAX_DUR + 1, 2 * MAX_DUR, 2 * MAX_DUR + 5, 7 * MAX_DUR])
def test_long_notes_chain_duration_tokens(duration: int):
    ts = TimeSignature(4, 4)
    m = Melody((Note(6, duration, 67), Note(6 + duration, 6, 69)), ts, Key(0), -(-(12 + duration) // ts.bar_steps))
    ids = TOKENIZER.encode(m)
    durs = [int(VOCAB.values[i]) for i in ids if VOCAB.kinds[i] == DUR]
    assert sum(durs) == duration + 6
    assert TOKENIZER.decode(ids) == m


def test_pickup_empty_bars_and_silence():
    ts = TimeSignature(6, 8)
    pickup = Melody((Note(30, 6, 64), Note(36, 18, 67)), ts, Key(7), 2)
    assert TOKENIZER.decode(TOKENIZER.encode(pickup)).notes[0].start == 30
    gaps = Melody((Note(0, 6, 60), Note(4 * 36 + 12, 6, 62)), ts, Key(0), 7)  # 3 empty bars, 2 after
    assert TOKENIZER.decode(TOKENIZER.encode(gaps)) == gaps
    silent = Melody((), TimeSignature(3, 4), Key(9, True), 3)
    ids = TOKENIZER.encode(silent)
    assert [VOCAB.tokens[i] for i in ids] == ["BOS", "TimeSig_3/4", "Key_Am", "Bar", "Bar", "Bar", "EOS"]
    assert TOKENIZER.decode(ids) == silent


def test_token_strings_read_as_documented():
    m = Melody((Note(0, 6, 69), Note(6, 12, 72)), TimeSignature(6, 8), Key(9, True), 1)
    assert [VOCAB.tokens[i] for i in TOKENIZER.encode(m)] == \
        ["BOS", "TimeSig_6/8", "Key_Am", "Bar", "Pos_0", "Pitch_69", "Dur_6", "Pos_6", "Pitch_72", "Dur_12", "EOS"]


def test_truncated_sequence_decodes_complete_bars():
    m = Melody((Note(0, 12, 60), Note(48, 12, 62)), TimeSignature(4, 4), Key(0), 2)
    ids = TOKENIZER.encode(m)[:-1]  # no EOS
    assert TOKENIZER.decode(ids) == m
    assert TOKENIZER.decode(ids + [VOCAB.eos, VOCAB.bar, VOCAB.bar]) == m  # tokens after EOS are ignored


def _ids(*tokens: str) -> list[int]:
    return [VOCAB.id(t) for t in tokens]


@pytest.mark.parametrize("tokens", [
    (),
    ("BOS",),
    ("BOS", "Key_C", "TimeSig_4/4", "Bar"),  # header out of order
    ("TimeSig_4/4", "Key_C", "Bar"),  # no BOS
    ("BOS", "TimeSig_3/4", "Key_C", "Bar", "Pos_40", "Pitch_60", "Dur_1"),  # Pos beyond a 3/4 bar
    ("BOS", "TimeSig_4/4", "Key_C", "Pos_0", "Pitch_60", "Dur_1"),  # note before the first Bar
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "Pos_0", "Dur_3", "Pitch_60"),  # Dur before Pitch
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "Pos_0", "Pitch_60"),  # cut inside a note
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "Pos_6", "Pitch_60", "Dur_12", "Pos_8", "Pitch_62", "Dur_1"),  # overlap
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "Pitch_60"),
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "PAD"),
    ("BOS", "TimeSig_4/4", "Key_C", "Bar", "Key_D"),
])
def test_bad_sequences_raise_tokenizer_error(tokens):
    with pytest.raises(TokenizerError):
        TOKENIZER.decode(_ids(*tokens))


@pytest.mark.parametrize("bad", [-1, -300, len(VOCAB), 10**6])
def test_ids_outside_the_vocabulary_raise_tokenizer_error(bad: int):
    with pytest.raises(TokenizerError):
        TOKENIZER.decode(_ids("BOS", "TimeSig_4/4", "Key_C", "Bar") + [bad])
    with pytest.raises(TokenizerError):
        TOKENIZER.count_notes([VOCAB.bos, bad])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(VOCAB) - 1), max_size=40), meters, keys)
def test_random_sequences_decode_or_raise_tokenizer_error(body, ts, key):
    ids = [VOCAB.bos, VOCAB.timesig_id(ts), VOCAB.key_id(key)] + body
    try:
        m = TOKENIZER.decode(ids)
    except TokenizerError:
        return
    assert TOKENIZER.decode(TOKENIZER.encode(m)) == m


def test_encode_refuses_what_it_cannot_represent():
    with pytest.raises(TokenizerError):
        TOKENIZER.encode(Melody((Note(0, 6, 110),), TimeSignature(4, 4), Key(0), 1))  # above the piano
    with pytest.raises(TokenizerError):
        TOKENIZER.encode(Melody((Note(0, 6, 60),), TimeSignature(17, 4), Key(0), 1))  # bar longer than 16 quarters
    with pytest.raises(TokenizerError, match="version 1"):
        Tokenizer.for_version(1).encode(Melody((Note(0, 6, 60),), TimeSignature(9, 4), Key(0), 1))  # v1: 8 quarters


def test_vocab_json_round_trip_and_version():
    text = VOCAB.to_json()
    data = json.loads(text)
    assert data["tokenizer_version"] == TOKENIZER_VERSION
    assert Vocab.from_json(text) == VOCAB
    data["tokenizer_version"] = TOKENIZER_VERSION + 1
    with pytest.raises(TokenizerError, match="version"):
        Vocab.from_json(json.dumps(data))
    with pytest.raises(TokenizerError):
        Vocab.from_json("not json")
    with pytest.raises(TokenizerError):
        Vocab.from_json(json.dumps({"tokenizer_version": TOKENIZER_VERSION}))


def test_vocab_layout():
    v = VOCAB
    assert len(set(v.tokens)) == len(v) == len(Vocab.build())
    assert (v.pad, v.bos, v.eos) == (0, 1, 2)
    for kind, count in ((POS, 16 * Q), (PITCH, PITCH_MAX - PITCH_MIN + 1), (DUR, MAX_DUR), (KEY, 24), (BAR, 1)):
        ids = np.flatnonzero(v.kinds == kind)
        assert len(ids) == count and np.all(np.diff(ids) == 1) and ids[0] == v.first(kind)
    assert v.values[v.id("Pitch_60")] == 60 and v.values[v.id("Dur_96")] == 96 and v.values[v.id("Pos_0")] == 0
    assert v.values[v.id("TimeSig_6/8")] == 36 and v.values[v.id("Key_Am")] == Key(9, True).index
    assert v.tokens.count("Bar") == 1


@settings(max_examples=60, deadline=None)
@given(melodies(max_bars=4), st.integers(-12, 12))
def test_transpose_table_matches_transposed_melody(m: Melody, k: int):
    table = VOCAB.transpose_table(k)
    lo, hi = m.pitch_range()
    moved = table[np.asarray(TOKENIZER.encode(m))]
    if m.notes and (lo + k < PITCH_MIN or hi + k > PITCH_MAX):
        assert (moved == -1).any()
    else:
        assert moved.tolist() == TOKENIZER.encode(m.transpose(k))


def test_keys_names_and_signatures():
    for i in range(24):
        k = Key.from_index(i)
        assert Key.parse(k.name) == k and k.index == i
        assert Key.from_sharps(k.sharps, k.minor) == k
        assert VOCAB.tokens[VOCAB.key_id(k)] == f"Key_{k.name}"
    assert Key.parse("Bb minor") == Key(10, True) and Key.parse("F#") == Key(6) and Key.parse("a") == Key(9, True)
    assert Key.from_sharps(-3, False).name == "Eb" and Key.from_sharps(3, True).name == "F#m"
    with pytest.raises(MusicError):
        Key.parse("H")


def _tune(degrees: list[int], tonic: int, minor: bool) -> list[int]:
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    return [60 + tonic + scale[d % 7] + 12 * (d // 7) for d in degrees]


def test_estimate_key_c_major_and_a_minor():
    # "Twinkle twinkle" in C major, tonic-heavy phrase endings.
    c = _tune([0, 0, 4, 4, 5, 5, 4, 3, 3, 2, 2, 1, 1, 0, 4, 4, 3, 3, 2, 2, 1, 4, 4, 3, 3, 2, 2, 1, 0], 0, False)
    durs = [6] * len(c)
    assert estimate_key(c, durs) == Key(0)
    # An A-minor line: arpeggio, leading tone G#, ending on A.
    a = [57, 60, 64, 69, 68, 69, 71, 72, 71, 69, 68, 64, 65, 64, 62, 60, 59, 57, 56, 57]
    assert estimate_key(a, [6] * len(a)) == Key(9, True)
    assert estimate_key([], []) == Key(0)


def test_transpositions_cover_twelve_keys_within_range():
    m = Melody((Note(0, 12, 60), Note(12, 12, 67), Note(24, 24, 72)), TimeSignature(4, 4), Key(0), 1)
    ts = transpositions(m, low=48, high=84)
    assert len(ts) == 12 and len({t.key for t in ts}) == 12
    for t in ts:
        lo, hi = t.pitch_range()
        assert 48 <= lo and hi <= 84
        assert [n.start for n in t.notes] == [0, 12, 24]
        assert t.key == Key((t.notes[0].pitch - 60) % 12)
    wide = Melody((Note(0, 12, 40), Note(12, 12, 80)), TimeSignature(4, 4), Key(0), 1)
    assert len(transpositions(wide, low=40, high=84)) == 5  # only shifts 0..+4 fit


def test_pitch_names():
    assert pitch_name(60) == "C4" and parse_pitch("C4") == 60 and parse_pitch("F#5") == 78 and parse_pitch("Bb3") == 58
    assert all(parse_pitch(pitch_name(p)) == p for p in range(128))
    with pytest.raises(MusicError):
        parse_pitch("X9")


def test_time_signature_parse():
    assert TimeSignature.parse("6/8").bar_steps == 3 * Q
    for bad in ("6-8", "0/4", "3/5", "x"):
        with pytest.raises(MusicError):
            TimeSignature.parse(bad)
