"""Hostile MIDI through the reader and the tokenizer: only ComposerError may escape, nothing hangs,
memory stays bounded. Complements the fuzz tests of test_midi_bad_input.py (mutations of one small
file, random notes and meters) with tempos, keys, names, raw event streams, mutated real files,
truncation at every length, non-MIDI data and absurd sizes (in a subprocess, under a timeout)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from composer.errors import ComposerError, MidiError
from composer.music.midi_io import read_report
from composer.tokens.tokenizer import Tokenizer
from conftest import REAL, raw_track, save_events
from conftest import make_corrupted as mc

TOKENIZER = Tokenizer()  # this version's vocabulary

# derandomize: the same cases on every run (CI determinism); examples are not stored between runs
FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check(path: Path) -> str:
    """Read and tokenize ``path``: a melody that survives the round trip, or a one-line MidiError.
    Any other exception fails the test. Returns 'read' or 'refused'."""
    try:
        report = read_report(path)
        ids = TOKENIZER.encode(report.melody)
    except MidiError as e:
        assert e.path == str(path) and e.reason and "\n" not in str(e), repr(e)
        return "refused"
    except ComposerError as e:  # another of the package's own errors (e.g. the tokenizer's)
        assert str(e) and "\n" not in str(e)
        return "refused"
    assert TOKENIZER.decode(ids, tempo=report.melody.tempo, title=report.melody.title) == report.melody
    assert "\n" not in report.track and 1 <= report.melody.tempo <= 1000
    return "read"


def check_bytes(tmp_path: Path, data: bytes, name: str = "fuzz.mid") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return check(p)


# ---- valid files with random content: tempos, meters, keys, names, several tracks -------------------

KEYS = sorted(mido.midifiles.meta._key_signature_decode.values())
names = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20)  # mido writes names as latin-1
notes = st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 4000), st.integers(0, 127)), max_size=25)


@settings(max_examples=70, **FUZZ)
@given(tpq=st.sampled_from([1, 3, 24, 96, 480, 960, 7919, 32767]),
       tracks=st.lists(st.tuples(names, notes, st.sampled_from([0, 1, 9])), min_size=1, max_size=3),
       tempos=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 2**24 - 1)), max_size=3),
       meters=st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 255), st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128])),
                       max_size=3),
       keys=st.lists(st.tuples(st.integers(0, 20_000), st.sampled_from(KEYS)), max_size=3))
def test_fuzz_valid_files_with_tempos_keys_and_names(tmp_path: Path, tpq, tracks, tempos, meters, keys):
    meta = [(t, mido.MetaMessage("set_tempo", tempo=v)) for t, v in tempos]
    meta += [(t, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for t, n, d in meters]
    meta += [(t, mido.MetaMessage("key_signature", key=k)) for t, k in keys]
    out = []
    for i, (name, ns, ch) in enumerate(tracks):
        events = list(meta) if i == 0 else []
        for on, d, p in ns:
            events += [(on, mido.Message("note_on", note=p, velocity=64, channel=ch)),
                       (on + d, mido.Message("note_off", note=p, channel=ch))]
        events.sort(key=lambda e: e[0])
        out.append((name, events))
    event(check(save_events(tmp_path / "rand.mid", out, tpq)))


# ---- raw event streams: running status, bad meta, huge deltas, lying lengths, odd headers -------------

deltas = st.one_of(st.integers(0, 2000), st.integers(0, 0x0FFFFFFF))
byte = st.integers(0, 255)
data7 = st.integers(0, 127) | byte  # mostly valid data bytes, sometimes a stray status byte
raw_event = st.one_of(
    st.tuples(deltas, st.builds(lambda s, a, b: bytes([s, a, b]), st.integers(0x80, 0x9F), data7, data7)),  # note on/off
    st.tuples(deltas, st.builds(lambda a, b: bytes([a, b]), data7, data7)),  # running status, valid or not
    st.tuples(deltas, st.builds(lambda k, d: mc.meta(k, d), st.sampled_from([0x03, 0x2F, 0x51, 0x58, 0x59, 0x7F]) | st.integers(0, 127),
                                st.binary(max_size=8))),  # tempo/meter/key/end-of-track with any payload
    st.tuples(deltas, st.builds(lambda d: b"\xf0" + mc.vlq(len(d)) + d, st.binary(max_size=6))),  # sysex
    st.tuples(deltas, st.builds(lambda a, b, c: bytes([a, b, c]), st.integers(0xA0, 0xFF), byte, byte)),  # anything else
)


def mostly_none(strategy):
    """None (the true value) three times in four, else ``strategy`` (a lie)."""
    return st.one_of(st.none(), st.none(), st.none(), strategy)


@settings(max_examples=90, **FUZZ)
@given(tracks=st.lists(st.tuples(st.lists(raw_event, max_size=16), mostly_none(st.integers(0, 2**32 - 1))), max_size=3),
       fmt=st.sampled_from([0, 1, 2, 7]), claimed=mostly_none(st.integers(0, 65535)),
       division=st.sampled_from([1, 96, 480, 0x7FFF, 0x8000, 0xE250]), good_notes=st.booleans())
def test_fuzz_raw_event_streams(tmp_path: Path, tracks, fmt, claimed, division, good_notes):
    chunks = [raw_track((mc.notes() if good_notes and i == 0 else []) + evs, lie) for i, (evs, lie) in enumerate(tracks)]
    n = len(chunks) if claimed is None else claimed
    data = b"MThd" + struct.pack(">IHHH", 6, fmt, n, division) + b"".join(chunks)
    event(check_bytes(tmp_path, data))  # --hypothesis-show-statistics: how many read, how many refused


# ---- byte-mutated real files ----------------------------------------------------------------------------

edit = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.floats(0, 1, exclude_max=True), byte, st.integers(1, 8))


@settings(max_examples=90, **FUZZ)
@given(which=st.sampled_from(REAL), edits=st.lists(edit, min_size=1, max_size=4), keep_header=st.booleans())
def test_fuzz_mutated_real_files(tmp_path: Path, which, edits, keep_header):
    data = bytearray(which.read_bytes())
    for kind, where, val, n in edits:
        lo = 14 if keep_header else 0  # mutating the header mostly tests the 'not MIDI' path
        pos = lo + int(where * (len(data) - lo)) if len(data) > lo else 0
        if kind == "set":
            data[pos:pos + n] = bytes([val]) * len(data[pos:pos + n])
        elif kind == "insert":
            data[pos:pos] = bytes([val]) * n
        else:
            del data[pos:pos + n]
    event(check_bytes(tmp_path, bytes(data)))


# ---- truncation at every length class, no tracks, non-MIDI data ------------------------------------------

def cut_points(data: bytes) -> list[int]:
    """Every length up to the first track's events, then around each chunk boundary and every
    ~1/32 of the file: each class of 'where the file stops'."""
    cuts = set(range(min(len(data), 40)))
    i = 0
    while (i := data.find(b"MTrk", i)) >= 0:
        cuts.update(range(max(0, i - 2), min(len(data), i + 10)))
        i += 4
    cuts.update(range(0, len(data), max(1, len(data) // 32)))
    cuts.update(range(max(0, len(data) - 6), len(data)))
    return sorted(cuts)


def test_truncation_at_every_length_class(tmp_path: Path):
    small = mc.good()
    cases = [(small, n) for n in range(len(small) + 1)]  # every single length of a small file
    for path in REAL:
        data = path.read_bytes()
        cases += [(data, n) for n in cut_points(data)]
    outcomes = [check_bytes(tmp_path, data[:n]) for data, n in cases]
    assert len(cases) > 600 and "refused" in outcomes and "read" in outcomes
    assert check_bytes(tmp_path, small) == "read"


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"MThd" + struct.pack(">IHHH", 6, 1, 0, 480), "no notes"),  # no tracks
    (b"MThd" + struct.pack(">IHHH", 6, 1, 40, 480), "no notes"),  # claims 40 tracks, holds none
    (b"MThd" + struct.pack(">IHHH", 6, 1, 1, 480) + raw_track([(0, mc.meta(0x51, b"\x07\xa1\x20"))], None), "no notes"),
    (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + raw_track([(0, b"\x3c\x40")] + mc.notes(), None), "corrupt"),  # data before any status
    (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + raw_track([(0, mc.meta(0x59, b"\x80\x05"))] + mc.notes(), None), None),  # key -128, mode 5
    (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + raw_track([(0, mc.meta(0x59, b""))] + mc.notes(), None), None),  # empty key payload
    (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + raw_track([(0, mc.meta(0x51, b""))] + mc.notes(), None), None),  # empty tempo
], ids=["empty", "no-tracks", "claims-40-tracks", "no-notes", "running-status", "key-minus-128", "key-empty", "tempo-empty"])
def test_no_tracks_running_status_and_bad_key_signatures(tmp_path: Path, data, reason):
    p = tmp_path / "x.mid"
    p.write_bytes(data)
    if reason is None:
        assert check(p) in ("read", "refused")
        return
    with pytest.raises(MidiError, match=reason):
        read_report(p)


@settings(max_examples=40, **FUZZ)
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"MThd", b"MThd\x00\x00\x00\x06", b"RIFF", b"\x89PNG", b"MTrk"]))
def test_fuzz_non_midi_data_with_a_mid_name(tmp_path: Path, data, prefix):
    outcome = check_bytes(tmp_path, prefix + data)
    event(outcome)
    assert outcome == "refused" or prefix.startswith(b"MThd")


# ---- absurd sizes: refused quickly and in bounded memory (a subprocess, under a timeout) ---------------------

def absurd_files(folder: Path) -> dict[str, bytes]:
    """name -> bytes of files built to cost time or memory."""
    hdr = lambda n, tpq=480: b"MThd" + struct.pack(">IHHH", 6, 1, n, tpq)  # noqa: E731
    huge = [(0x0FFFFFFF, b"\x90\x40\x50"), (1, b"\x80\x40\x00")]
    # 2 million notes in 12 MB: note-on/off pairs under running status, one tick apart
    dense = b"\x00\x90\x3c\x40" + b"\x01\x3c\x00\x00\x3c\x40" * 2_000_000 + b"\x01\x3c\x00"
    # 400,000 one-tick notes inside 100 bars: all allowed, read through the slow skyline path
    crowded = b"\x00\x90\x3c\x40" + b"".join(bytes([1, 0x3C + i % 24, 0, 0, 0x3C + (i + 1) % 24, 0x40]) for i in range(400_000))
    return {
        "tick_overflow.mid": hdr(1) + raw_track(mc.notes() + huge * 20, None),  # ticks past 2**32
        "absurd_last_tick.mid": hdr(1, 1) + raw_track(mc.notes() + huge * 7, None),  # 2**31 quarters at 1 tick per quarter
        "absurd_duration.mid": hdr(1) + raw_track([(0, b"\x90\x40\x50"), (0x0FFFFFFF, b"\x40\x00")] * 3, None),
        "million_tracks_claimed.mid": hdr(65535) + raw_track(mc.notes(), None) * 2000,
        "two_million_notes.mid": hdr(1) + b"MTrk" + struct.pack(">I", len(dense) + 4) + dense + b"\x00\xff\x2f\x00",
        "crowded.mid": hdr(1, 96 * 40) + b"MTrk" + struct.pack(">I", len(crowded) + 4) + crowded + b"\x00\xff\x2f\x00",
    }


CHILD = """
import json, resource, sys, time
from composer.errors import ComposerError
from composer.music.midi_io import read_report
from composer.tokens.tokenizer import Tokenizer
tokenizer, out = Tokenizer(), {}
for p in sys.argv[1:]:
    t = time.perf_counter()
    try:
        tokenizer.encode(read_report(p).melody)
        what = "read"
    except ComposerError as e:
        what = "refused: " + str(e).split(": ", 1)[1]
    out[p.rsplit("/", 1)[1]] = [what, round(time.perf_counter() - t, 2)]
out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def test_absurd_files_are_refused_quickly_in_bounded_memory(tmp_path: Path):
    paths = []
    for name, data in absurd_files(tmp_path).items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    try:
        res = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reading the absurd files took over 60 s (a hang?)")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    print(json.dumps(out, indent=1))  # -s shows per-file outcome and seconds
    assert out["maxrss_mb"] < 1024, out
    for name in ("tick_overflow.mid", "absurd_last_tick.mid", "absurd_duration.mid"):
        assert out[name][0].startswith("refused"), (name, out[name])
    assert "too many notes" in out["two_million_notes.mid"][0]
    assert all(out[n][0] in ("read",) or out[n][0].startswith("refused") for n in out if n.endswith(".mid"))
