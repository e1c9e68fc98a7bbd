"""The one module that reads and writes MIDI files.

Reading uses symusic (a C++ parser, several times faster than pretty_midi);
writing uses pretty_midi, then fixes the end-of-track so the file ends exactly
on the last bar line.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.errors import MidiError
from composer.files import atomic_write
from composer.melody import STEPS_PER_QUARTER, Key, Melody, Note, TimeSignature, estimate_key
from composer.tokenizer import MAX_BAR_STEPS

MAX_BARS = 4096  # longer melodies are refused (guards against absurd tick values)
MAX_FILE_BYTES = 32 * 2**20
_MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|sing|solo|tune", re.I)


@dataclass(frozen=True)
class ReadReport:
    """What reading a file kept and changed."""

    melody: Melody
    track: str  # name (or "track N") of the track used as melody
    source_notes: int  # notes in that track
    quantized: int  # notes whose onset or end moved to reach the grid
    dropped: int  # notes removed to make the line monophonic, or outside the meter section kept
    key_estimated: bool  # True when the file had no key signature


def read_melody(path: str | Path) -> Melody:
    """The melody of a MIDI file, quantized to the grid; raises MidiError."""
    return read_report(path).melody


def _load_score(path: Path):
    from symusic import Score

    try:
        size = path.stat().st_size
    except OSError as e:
        raise MidiError(path, f"cannot open: {e.strerror}") from None
    if size == 0:
        raise MidiError(path, "empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise MidiError(path, f"file too large ({size} bytes)")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"MThd":
        raise MidiError(path, "not a MIDI file (no MThd header)")
    try:
        score = Score(str(path), ttype="tick")
    except Exception as e:  # symusic raises RuntimeError/ValueError/IndexError on bad data
        raise MidiError(path, f"corrupt or truncated MIDI ({str(e).strip() or type(e).__name__})") from None
    if score.ticks_per_quarter <= 0:
        raise MidiError(path, f"bad resolution ({score.ticks_per_quarter} ticks per quarter)")
    return score


def _choose_track(path: Path, score):
    """Track named like a melody, else the non-drum track that is highest and busiest."""
    candidates = [(i, t) for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes) > 0]
    if not candidates:
        if any(len(t.notes) for t in score.tracks):
            raise MidiError(path, "only drum tracks, no melody")
        raise MidiError(path, "no notes")
    named = [(i, t) for i, t in candidates if _MELODY_NAMES.search(t.name or "")]
    if named:
        return max(named, key=lambda it: len(it[1].notes))

    def score_of(it):
        arr = it[1].notes.numpy()
        return float(np.mean(arr["pitch"])) + 6.0 * math.log2(len(arr["pitch"]))

    return max(candidates, key=score_of)


def _meter_section(path: Path, score, end_tick: int) -> tuple[TimeSignature, int, int]:
    """The longest stretch in one supported meter: (meter, start tick, end tick)."""
    changes = []
    for ts in score.time_signatures:
        try:
            meter = TimeSignature(int(ts.numerator), int(ts.denominator))
            ok = meter.bar_steps <= MAX_BAR_STEPS
        except Exception:
            ok = False
        changes.append((int(ts.time), meter if ok else None))
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, TimeSignature(4, 4)))
    changes.sort(key=lambda c: c[0])
    best = None
    for j, (t0, meter) in enumerate(changes):
        t1 = changes[j + 1][0] if j + 1 < len(changes) else max(end_tick, t0)
        if meter is not None and t1 > t0 and (best is None or t1 - t0 > best[2] - best[1]):
            best = (meter, t0, t1)
    if best is None:
        raise MidiError(path, "no supported time signature")
    return best


def _skyline(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> list[tuple[int, int, int]]:
    """Monophonic line: at each onset the highest note; a higher note cuts a sounding lower one."""
    order = np.lexsort((-pitch, start))
    out: list[list[int]] = []
    for s, e, p in zip(start[order].tolist(), end[order].tolist(), pitch[order].tolist()):
        if out:
            last = out[-1]
            if s == last[0]:
                continue  # same onset, lower note
            if s < last[1]:
                if p < last[2]:
                    continue  # lower note under a sounding one
                last[1] = s
        out.append([s, e, p])
    return [tuple(n) for n in out]


def read_report(path: str | Path) -> ReadReport:
    """Read a MIDI file into a Melody and say what was kept; raises MidiError."""
    path = Path(path)
    score = _load_score(path)
    index, track = _choose_track(path, score)
    arr = track.notes.numpy()
    tpq = score.ticks_per_quarter
    t_on = arr["time"].astype(np.int64)
    t_off = t_on + np.maximum(arr["duration"].astype(np.int64), 0)
    meter, sec0, sec1 = _meter_section(path, score, int(t_off.max()))
    bar = meter.bar_steps
    if (int(t_off.max()) - sec0) * STEPS_PER_QUARTER / tpq > MAX_BARS * bar:
        raise MidiError(path, f"longer than {MAX_BARS} bars (absurd tick values?)")
    keep = (t_on >= sec0) & (t_on < sec1)
    pitch = arr["pitch"].astype(np.int64)[keep]
    rel_on, rel_off = t_on[keep] - sec0, np.minimum(t_off[keep], sec1) - sec0
    if len(pitch) == 0:
        raise MidiError(path, "no notes in the main time-signature section")
    on = np.rint(rel_on * STEPS_PER_QUARTER / tpq).astype(np.int64)
    off = np.rint(rel_off * STEPS_PER_QUARTER / tpq).astype(np.int64)
    off = np.maximum(off, on + 1)
    moved = ((rel_on * STEPS_PER_QUARTER) % tpq != 0) | ((rel_off * STEPS_PER_QUARTER) % tpq != 0)
    pitch = np.clip(pitch, 0, 127)
    line = _skyline(on, off, pitch)
    first_bar = line[0][0] // bar  # drop whole empty bars before the first note
    shift = first_bar * bar
    notes = tuple(Note(s - shift, e - s, p) for s, e, p in line)
    n_bars = max(1, -(-notes[-1].end // bar))
    key_estimated = True
    key = None
    for ks in score.key_signatures:
        if int(ks.time) <= max(sec0, int(t_on[keep].min())) and -7 <= int(ks.key) <= 7:
            key, key_estimated = Key.from_sharps(int(ks.key), bool(ks.tonality)), False
    if key is None:
        key = estimate_key([n.pitch for n in notes], [n.duration for n in notes])
    tempos = [(int(tp.time), float(tp.qpm)) for tp in score.tempos]
    before = [q for t, q in tempos if t <= sec0]
    tempo = before[-1] if before else tempos[0][1] if tempos else 120.0
    tempo = round(tempo, 3) if 1 <= tempo <= 1000 else 120.0
    title = track.name or path.stem
    melody = Melody(notes, meter, key, n_bars, tempo=tempo, title=title)
    return ReadReport(
        melody=melody,
        track=track.name or f"track {index + 1}",
        source_notes=len(arr["time"]),
        quantized=int(moved.sum()),
        dropped=len(arr["time"]) - len(notes),
        key_estimated=key_estimated,
    )


def velocities(melody: Melody) -> list[int]:
    """Musical velocities: accents on the downbeat and main beats, a lift towards phrase peaks."""
    bar = melody.bar_steps
    ts = melody.time_signature
    compound = ts.denominator == 8 and ts.numerator % 3 == 0 and ts.numerator > 3
    beat = 3 * STEPS_PER_QUARTER // 2 if compound else 4 * STEPS_PER_QUARTER // ts.denominator
    lo, hi = melody.pitch_range()
    out = []
    for n in melody.notes:
        pos = n.start % bar
        v = 96 if pos == 0 else 84 if pos % beat == 0 else 72
        v += int(round(8 * (n.pitch - lo) / max(1, hi - lo))) - 4
        out.append(max(1, min(127, v)))
    return out


def melody_to_bytes(melody: Melody, program: int = 0, track_name: str = "Melody", text: str | None = None) -> bytes:
    """A type-1 MIDI file of the melody: tempo, meter and key at tick 0, one named track,
    ending exactly on the last bar line."""
    import mido
    import pretty_midi

    tpq = 480
    spq = STEPS_PER_QUARTER
    sec_per_step = 60.0 / melody.tempo / spq
    pm = pretty_midi.PrettyMIDI(resolution=tpq, initial_tempo=melody.tempo)
    ts = melody.time_signature
    pm.time_signature_changes.append(pretty_midi.TimeSignature(ts.numerator, ts.denominator, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(melody.key.index, 0.0))
    inst = pretty_midi.Instrument(program=program, name=track_name)
    for n, vel in zip(melody.notes, velocities(melody)):
        inst.notes.append(pretty_midi.Note(vel, n.pitch, n.start * sec_per_step, n.end * sec_per_step))
    pm.instruments.append(inst)
    if text:
        pm.text_events.append(pretty_midi.Text(text, 0.0))
    buf = io.BytesIO()
    pm.write(buf)
    mid = mido.MidiFile(file=io.BytesIO(buf.getvalue()))
    end_tick = melody.total_steps * tpq // spq
    for tr in mid.tracks:  # every track ends at the final bar line
        abs_t, msgs = 0, []
        for msg in tr:
            abs_t += msg.time
            if msg.type != "end_of_track":
                msgs.append((abs_t, msg))
        tr.clear()
        prev = 0
        for t, msg in msgs:
            tr.append(msg.copy(time=t - prev))
            prev = t
        tr.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - prev)))
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def write_midi(melody: Melody, path: str | Path, program: int = 0, track_name: str = "Melody",
               text: str | None = None, force: bool = False) -> Path:
    """Write the melody as a MIDI file, atomically; never overwrites without ``force``."""
    return atomic_write(Path(path), melody_to_bytes(melody, program, track_name, text), force=force)
