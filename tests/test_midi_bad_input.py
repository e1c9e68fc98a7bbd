"""MIDI files the reader must refuse with one MidiError line, or read into a melody the tokenizer
can represent: the corrupted fixtures (named after their error), missing files, too many notes, and
fuzzed bytes and contents. test_fuzz.py goes further (raw event streams, truncation, absurd sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import MidiError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import melody_to_bytes, read_melody, read_report
from composer.tokens.tokenizer import Tokenizer
from conftest import CORRUPTED, line, make_corrupted, write_ticks

TOKENIZER = Tokenizer()  # this version's vocabulary


def test_corrupted_fixtures_are_what_the_script_writes():
    built = make_corrupted.build()
    assert sorted(p.name for p in CORRUPTED) == sorted(built)
    assert all(p.read_bytes() == built[p.name] for p in CORRUPTED)


@pytest.mark.parametrize("path", CORRUPTED, ids=lambda p: p.name)
def test_corrupted_files(path: Path):
    words = make_corrupted.EXPECTED[path.name]
    if words is None:
        m = read_melody(path)
        assert TOKENIZER.decode(TOKENIZER.encode(m)) == m
        return
    with pytest.raises(MidiError) as e:
        read_report(path)
    assert e.value.path == str(path) and str(path) in str(e.value)
    assert words in e.value.reason and "\n" not in str(e.value)


def test_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(MidiError, match="cannot"):
        read_report(tmp_path / "nope.mid")
    with pytest.raises(MidiError):
        read_report(tmp_path)


def test_too_many_notes_is_refused(tmp_path: Path, monkeypatch):
    import composer.music.midi_io as midi_io

    p = write_ticks(tmp_path / "many.mid", [{"name": "Lead", "notes": line([(i, 1, 60) for i in range(300)])}])
    monkeypatch.setattr(midi_io, "MAX_NOTES", 299)
    with pytest.raises(MidiError, match="too many notes"):
        read_report(p)
    monkeypatch.setattr(midi_io, "MAX_NOTES", 300)
    assert len(read_report(p).melody.notes) == 300


GOOD = melody_to_bytes(Melody(tuple(Note(i * 6, 6, 60 + i % 12) for i in range(16)), TimeSignature(6, 8), Key(7), 3))


def _check_reads_or_refuses(path: Path) -> None:
    try:
        m = read_melody(path)
    except MidiError as e:
        assert e.path == str(path) and e.reason and "\n" not in e.reason
        return
    assert TOKENIZER.decode(TOKENIZER.encode(m)) == m  # whatever is read is representable


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=12),
       st.integers(14, len(GOOD)))
def test_fuzz_mutated_bytes(tmp_path: Path, edits, cut):
    data = bytearray(GOOD[:cut])
    for pos, val in edits:
        if pos < len(data):
            data[pos] = val
    p = tmp_path / "fuzz.mid"
    p.write_bytes(bytes(data))
    _check_reads_or_refuses(p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tpq=st.integers(1, 32767),
       notes=st.lists(st.tuples(st.integers(0, 2**21), st.integers(0, 5000), st.integers(0, 127)), max_size=30),
       meters=st.lists(st.tuples(st.integers(0, 20000), st.integers(1, 40), st.sampled_from([1, 2, 4, 8, 16, 32, 64])),
                       max_size=4),
       channel=st.sampled_from([0, 9]))
def test_fuzz_valid_files_with_random_content(tmp_path: Path, tpq, notes, meters, channel):
    notes = [(on, on + d, p) for on, d, p in notes]
    p = write_ticks(tmp_path / "rand.mid", [{"name": "x", "notes": notes, "channel": channel}], tpq=tpq,
                    meters=sorted(meters))
    _check_reads_or_refuses(p)
