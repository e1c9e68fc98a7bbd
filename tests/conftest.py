"""What several test files share: hypothesis strategies for melodies, meters and keys, the fixture
folders, MIDI files built event by event, and the builder of the corrupted fixtures.

Test files import these directly (``from conftest import melodies``): pytest puts tests/ on the
import path for this rootdir conftest."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import mido
from hypothesis import strategies as st

from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, Note
from composer.music.meter import supported_meters

FIXTURES = Path(__file__).parent / "fixtures"
REAL = sorted((FIXTURES / "real").glob("*.mid"))  # music21's test files, see fixtures/real/README.md
CORRUPTED = sorted((FIXTURES / "corrupted").glob("*.mid"))  # each named after the error it must raise


def _load_make_corrupted():
    """fixtures/make_corrupted.py as a module (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("make_corrupted", FIXTURES / "make_corrupted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corrupted = _load_make_corrupted()  # the corrupted fixtures (build, EXPECTED) and raw MIDI pieces (meta, vlq, notes)

# ---- strategies ---------------------------------------------------------------------------------------

METERS = supported_meters()  # every meter the composer handles (a TimeSig token each)
meters = st.sampled_from(METERS)
keys = st.integers(0, 23).map(Key.from_index)  # all 24 keys


@st.composite
def melodies(draw, max_bars: int = 10, full_first_and_last: bool = False) -> Melody:
    """Random quantized monophonic melodies: any supported meter, rests, long and tied notes,
    empty bars, pickups. With ``full_first_and_last`` the first and last bars hold a note
    (what a MIDI file can carry: leading and trailing empty bars are not in the file)."""
    ts = draw(meters)
    bar = ts.bar_steps
    grid = draw(st.sampled_from([1, 2, 3, 4, 6, 12]))  # rhythm of this melody: 1 step .. quarters
    n_bars = draw(st.integers(1, max_bars))
    t = draw(st.integers(0, bar - 1)) if draw(st.booleans()) else 0  # pickup: start late in bar 1
    notes = []
    total = n_bars * bar
    while t < total and len(notes) < 80:
        kind = draw(st.sampled_from(["short", "short", "short", "long", "rest", "empty-bar"]))
        if kind == "rest":
            t += grid * draw(st.integers(1, 4))
            continue
        if kind == "empty-bar":
            t = (t // bar + 2) * bar  # leave the rest of this bar and the next one empty
            continue
        d = grid * draw(st.integers(1, 4)) if kind == "short" else draw(st.integers(bar // 2 + 1, 3 * bar))
        d = min(d, total - t)
        if d < 1:
            break
        notes.append(Note(t, d, draw(st.integers(PITCH_MIN, PITCH_MAX))))
        t += d
    if full_first_and_last:
        if not notes:
            notes = [Note(0, 1, 60)]
        shift = notes[0].start // bar * bar
        notes = [Note(n.start - shift, n.duration, n.pitch) for n in notes]
        n_bars = -(-notes[-1].end // bar)
    else:
        n_bars += draw(st.integers(0, 2))  # trailing empty bars are kept by the tokens
    return Melody(tuple(notes), ts, draw(keys), n_bars)


# ---- MIDI files built by hand ---------------------------------------------------------------------------

def save_events(path: Path, tracks: list[tuple[str | None, list]], tpq: int) -> Path:
    """A type-1 file through mido: per track an optional name and (tick, message) events, in the
    order given (sort them first); delta times are computed here."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    for name, events in tracks:
        track = mido.MidiTrack()
        if name is not None:
            track.append(mido.MetaMessage("track_name", name=name))
        prev = 0
        for t, msg in events:
            track.append(msg.copy(time=t - prev))
            prev = t
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def write_ticks(path: Path, tracks: list[dict], tpq: int = 480, meters=((0, 4, 4),), tempos=((0, 120.0),),
                keys=()) -> Path:
    """A type-1 file written event by event: a conductor track (meters, tempos, keys), then tracks
    given as dicts(name, notes=[(on, off, pitch)], channel)."""
    meta = [(t, mido.MetaMessage("time_signature", numerator=n, denominator=d)) for t, n, d in meters]
    meta += [(t, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(b))) for t, b in tempos]
    meta += [(t, mido.MetaMessage("key_signature", key=k)) for t, k in keys]
    out = []
    for tr in [{"events": meta}] + tracks:
        events = list(tr.get("events", []))
        ch = tr.get("channel", 0)
        for on, off, p in tr.get("notes", []):
            events.append((on, mido.Message("note_on", note=p, velocity=80, channel=ch)))
            events.append((off, mido.Message("note_off", note=p, velocity=0, channel=ch)))
        events.sort(key=lambda e: (e[0], e[1].type == "note_on"))  # offs before ons at a tick
        out.append((tr.get("name") or None, events))
    return save_events(path, out, tpq)


def line(steps: list[tuple[int, int, int]], tpq: int = 480) -> list[tuple[int, int, int]]:
    """(start, duration, pitch) in grid steps -> (on, off, pitch) ticks."""
    k = tpq / 12
    return [(round(s * k), round((s + d) * k), p) for s, d, p in steps]


def raw_track(events: list[tuple[int, bytes]], length_lie: int | None) -> bytes:
    """An MTrk chunk of (delta, event bytes), ending with end-of-track; ``length_lie`` replaces
    the true chunk length."""
    body = b"".join(make_corrupted.vlq(dt) + ev for dt, ev in events) + b"\x00\xff\x2f\x00"
    n = len(body) if length_lie is None else length_lie
    return b"MTrk" + struct.pack(">I", n) + body


# ---- tiny models ------------------------------------------------------------------------------------------

def tiny_checkpoint(folder: Path, data: dict) -> Path:
    """A tiny random 2x32 LSTM (seed 0, no copy hints) saved in ``folder``, recording ``data`` (the meters
    and keys of its absent training tunes)."""
    import torch

    from composer.model.checkpoint import save_checkpoint
    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM

    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(embed_size=16, hidden_size=32, num_layers=2, dropout=0.0, copy_hints=False))
    return save_checkpoint(folder / "tiny.pt", model, extra={"data": data})


def record_steps(model, monkeypatch, what: str) -> list[tuple[list[int], list[int] | None]]:
    """Record (input ids, the ``what`` codes: 'lengths', 'keys' or 'chords') of every ``model.step``
    call; None where the call passed no codes of that kind (chords: "no chords given")."""
    calls = []
    step = type(model).step

    def recorder(self, ids, state, hints=None, lengths=None, keys=None, chords=None):
        codes = {"lengths": lengths, "keys": keys, "chords": chords}[what]
        calls.append((ids.tolist(), None if codes is None else codes.tolist()))
        return step(self, ids, state, hints, lengths, keys, chords=chords)

    monkeypatch.setattr(type(model), "step", recorder)
    return calls


def no_ending_search(monkeypatch) -> None:
    """generate() without the ending search (composer.generate.endings): each melody as first drawn,
    so a test can match the inputs fed while sampling against the final tokens."""
    import composer.generate.plan as plan

    monkeypatch.setattr(plan, "better_endings", lambda model, tokenizer, rows, *a, **k: rows)

    def last_bar(s, tokenizer, *a, **k):  # the last bar drawn once, by the sampler itself
        s.sample_bars(1, final=True)
        return s.results()

    monkeypatch.setattr(plan, "end_on_cadence", last_bar)


def leading_full(calls: list, num: int) -> list:
    """The recorded steps up to the first that some row sat out (every row stepped: ``num`` ids)."""
    out = []
    for call in calls:
        if len(call[0]) != num:
            break
        out.append(call)
    return out


def one_pass_equals_stepwise(model, tokenizer, plan, monkeypatch, bars: int) -> list:
    """generate() with a long prime fed in one forward pass and again token by token: the same
    melodies (of ``bars`` bars) and likelihoods; returns the one-pass melodies."""
    import pytest
    import torch

    import composer.generate.sample as sample
    from composer.generate.plan import generate

    fast = generate(model, tokenizer, plan, 2, torch.Generator().manual_seed(9))
    monkeypatch.setattr(sample, "_SHARED_MIN", 10**9)
    slow = generate(model, tokenizer, plan, 2, torch.Generator().manual_seed(9))
    assert [g.ids for g in fast] == [g.ids for g in slow]
    for a, b in zip(fast, slow):
        assert tokenizer.decode(a.ids).n_bars == bars
        assert a.nll_nats == pytest.approx(b.nll_nats, rel=1e-4)
    return fast
