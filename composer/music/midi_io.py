"""The one module that reads MIDI files (writing: ``composer.music.midi_write``, re-exported here).

Reading uses symusic (a C++ parser, several times faster than pretty_midi);
writing builds the file's bytes directly (``composer.music.smf``), ending exactly on the
last bar line; the tests read every written file back with pretty_midi.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.errors import MidiError, MusicError
from composer.music.keys import Key, estimate_key
from composer.music.melody import PITCH_MAX, PITCH_MIN, STEPS_PER_QUARTER, Melody, notes_from_arrays
from composer.music.meter import TimeSignature, supported_meters
from composer.music.midi_write import clean_text as _clean, melody_to_bytes, velocities, write_midi  # noqa: F401 (re-exported)

MAX_BARS = 4096  # longer melodies are refused (guards against absurd tick values)
MAX_FILE_BYTES = 32 * 2**20
MAX_NOTES = 500_000  # per file: bounds memory and time (the largest real songs hold a few ten thousand)
_METERS = frozenset(supported_meters())  # the meters the composer handles (a TimeSig token each)
_MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|sing|solo|tune", re.I)


@dataclass(frozen=True)
class ReadReport:
    """What reading a file kept and changed."""

    melody: Melody
    track: str  # name of the track used as melody, else "track N" (N counts the tracks holding notes)
    source_notes: int  # notes in that track
    quantized: int  # notes of the melody whose onset or end moved to reach the grid
    dropped: int  # notes removed: chords/inner voices (skyline), outside the meter section kept, off the piano
    key_estimated: bool  # True when the file had no key signature


def read_melody(path: str | Path) -> Melody:
    """The melody of a MIDI file, quantized to the grid; raises MidiError."""
    return read_report(path).melody


def _load_score(path: Path):
    """The parsed file (symusic, ticks), after size, header and note-count checks; raises MidiError."""
    from symusic import Score

    data = _read_regular_file(path)
    if data[:4] != b"MThd":
        raise MidiError(path, "not a MIDI file (no MThd header)")
    try:
        score = Score.from_midi(data, ttype="tick")
    except Exception as e:  # symusic raises RuntimeError/ValueError/IndexError on bad data
        raise MidiError(path, f"corrupt or truncated MIDI ({_parser_message(e)})") from None
    if score.ticks_per_quarter <= 0:
        raise MidiError(path, f"bad resolution ({score.ticks_per_quarter} ticks per quarter)")
    n_notes = sum(len(t.notes) for t in score.tracks)
    if n_notes > MAX_NOTES:
        raise MidiError(path, f"too many notes ({n_notes}, at most {MAX_NOTES})")
    return score


def _read_regular_file(path: Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``; raises MidiError. The file type is
    checked on the opened descriptor (non-blocking), so a FIFO, a device such as /dev/zero or a
    folder is named as such and never read (a FIFO would block, /dev/zero never ends)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise MidiError(path, "is a folder, not a MIDI file") from None
    except OSError as e:
        raise MidiError(path, f"cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            m = st.st_mode
            kind = ("a folder" if stat.S_ISDIR(m) else "a FIFO (named pipe)" if stat.S_ISFIFO(m)
                    else "a device" if stat.S_ISCHR(m) or stat.S_ISBLK(m) else "a socket" if stat.S_ISSOCK(m) else "special")
            raise MidiError(path, f"not a regular file but {kind}: give a .mid file")
        if st.st_size == 0:
            raise MidiError(path, "empty file (0 bytes)")
        if st.st_size > MAX_FILE_BYTES:
            raise MidiError(path, f"file too large ({st.st_size} bytes)")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise MidiError(path, f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


def _parser_message(e: Exception) -> str:
    """symusic's message, short: 'MiniMidi: Unexpected EOF ...!: iostream error' -> 'Unexpected EOF ...'."""
    text = _clean(str(e)).removeprefix("MiniMidi:").removesuffix(": iostream error").strip()
    text = text.split("!")[0].strip() or type(e).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _choose_track(path: Path, score):
    """Track named like a melody, else the non-drum track that is highest and busiest."""
    candidates = [(i, t) for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes) > 0]
    if not candidates:
        if any(len(t.notes) for t in score.tracks):
            raise MidiError(path, "only drum tracks, no melody")
        raise MidiError(path, "no notes")
    if len(candidates) == 1:
        return candidates[0]
    named = [(i, t) for i, t in candidates if _MELODY_NAMES.search(t.name or "")]
    if named:
        return max(named, key=lambda it: len(it[1].notes))

    def score_of(it):
        arr = it[1].notes.numpy()
        return float(np.mean(arr["pitch"])) + 6.0 * math.log2(len(arr["pitch"]))

    return max(candidates, key=score_of)


def _meter_section(path: Path, score, on: np.ndarray) -> tuple[TimeSignature, float, int, int]:
    """The single-meter stretch holding most of the melody's notes (ties: the longer one):
    (meter, origin tick of bar 1, first tick kept, end tick). A section shorter than one bar
    just before it (a pickup written as its own bar, e.g. 1/4 then 4/4) is kept as a pickup."""
    at: dict[int, TimeSignature | None] = {}
    for ts in score.time_signatures:  # the last event at a tick wins
        num, den = int(ts.numerator), int(ts.denominator)
        if num < 1 or den < 1 or den & (den - 1) or den > 64:
            continue  # a malformed event, not a meter: ignored
        try:
            meter = TimeSignature(num, den)
            at[int(ts.time)] = meter if meter in _METERS else None
        except Exception:
            at[int(ts.time)] = None
    if not at or min(at) > 0:
        at[0] = TimeSignature(4, 4)  # the MIDI default before any time signature
    changes: list[tuple[int, TimeSignature | None]] = []
    for t, meter in sorted(at.items()):
        if not changes or changes[-1][1] != meter:  # a restated meter continues its section
            changes.append((t, meter))
    bounds = [t for t, _ in changes[1:]] + [max(int(on.max()) + 1, changes[-1][0] + 1)]
    on_sorted = np.sort(on)
    best, best_rank = None, None
    for j, ((t0, meter), t1) in enumerate(zip(changes, bounds)):
        count = int(np.searchsorted(on_sorted, t1) - np.searchsorted(on_sorted, t0))
        if meter is not None and count and (best_rank is None or (count, t1 - t0) > best_rank):
            best, best_rank = j, (count, t1 - t0)
    if best is None:
        raise MidiError(path, "no notes in a supported time signature")
    (t0, meter), t1 = changes[best], bounds[best]
    bar_ticks = meter.bar_steps * score.ticks_per_quarter / STEPS_PER_QUARTER
    origin = first = t0
    if best > 0 and t0 - changes[best - 1][0] < bar_ticks:
        first = changes[best - 1][0]
        origin = t0 - bar_ticks
    if best + 1 == len(changes):
        t1 = np.iinfo(np.int64).max
    return meter, origin, first, t1


def _skyline(start: np.ndarray, end: np.ndarray, pitch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monophonic line: at each onset the highest note; a higher note cuts a sounding lower one;
    a lower note starting under a sounding one is an inner voice and dropped, unless it starts
    within a sixteenth of that note's end and outlasts it (legato playing: it cuts the note).
    Returns (index of each kept note in the input, its start, its end)."""
    order = np.lexsort((-pitch, start))
    start, end, pitch = start[order], end[order], pitch[order]
    if len(start) < 2 or (np.all(start[1:] > start[:-1]) and np.all(end[:-1] <= start[1:])):
        return order, start, end  # already monophonic: the usual case for melody tracks
    legato = STEPS_PER_QUARTER // 4
    out: list[list[int]] = []  # [start, end, pitch, input index]
    for s, e, p, i in zip(start.tolist(), end.tolist(), pitch.tolist(), order.tolist()):
        if out:
            last = out[-1]
            if s == last[0]:
                continue  # same onset, lower note
            if s < last[1]:
                if p < last[2] and not (last[1] - s <= legato and e > last[1]):
                    continue  # lower note under a sounding one
                last[1] = s
        out.append([s, e, p, i])
    kept = np.asarray(out, dtype=np.int64).reshape(-1, 4)
    return kept[:, 3], kept[:, 0], kept[:, 1]


def read_report(path: str | Path) -> ReadReport:
    """Read a MIDI file into a Melody and say what was kept; raises MidiError."""
    path = Path(path)
    score = _load_score(path)
    index, track = _choose_track(path, score)
    arr = track.notes.numpy()
    n_source = len(arr["time"])
    tpq = score.ticks_per_quarter
    t_on = arr["time"].astype(np.int64)
    t_off = t_on + np.maximum(arr["duration"].astype(np.int64), 0)
    pitch = arr["pitch"].astype(np.int64)
    if t_on.min() < 0:
        raise MidiError(path, "negative note times (corrupt file)")
    meter, origin, first, sec_end = _meter_section(path, score, t_on)
    bar = meter.bar_steps
    if (int(t_off.max()) - origin) * STEPS_PER_QUARTER / tpq > MAX_BARS * bar:
        raise MidiError(path, f"longer than {MAX_BARS} bars (absurd tick values?)")
    keep = (t_on >= first) & (t_on < sec_end) & (pitch >= PITCH_MIN) & (pitch <= PITCH_MAX)
    if not keep.any():
        raise MidiError(path, f"no notes in the piano range {PITCH_MIN}-{PITCH_MAX}")
    pitch = pitch[keep]
    # Fractional grid steps from bar 1's origin; exact for any resolution (integer ratios).
    f_on = (t_on[keep] - origin) * (STEPS_PER_QUARTER / tpq)
    f_off = (np.minimum(t_off[keep], sec_end) - origin) * (STEPS_PER_QUARTER / tpq)
    on, off = np.rint(f_on).astype(np.int64), np.rint(f_off).astype(np.int64)
    moved = (np.abs(f_on - on) > 1e-6) | (np.abs(f_off - off) > 1e-6)
    off = np.maximum(off, on + 1)
    kept, on, off = _skyline(on, off, pitch)
    pitch, moved = pitch[kept], moved[kept]
    shift = int(on[0]) // bar * bar  # drop whole empty bars before the first note
    try:
        notes = notes_from_arrays(on - shift, off - on, pitch)
        n_bars = max(1, -(-notes[-1].end // bar))
        key_estimated, key = True, None
        first_on = int(t_on[keep].min())
        for ks in score.key_signatures:
            if int(ks.time) <= max(first, first_on) and -7 <= int(ks.key) <= 7 and int(ks.tonality) in (0, 1):
                key, key_estimated = Key.from_sharps(int(ks.key), bool(ks.tonality)), False
        if key is None:
            key = estimate_key(pitch, off - on)
        tempos = [(int(tp.time), float(tp.qpm)) for tp in score.tempos]
        before = [q for t, q in tempos if t <= max(first, 0)]
        tempo = before[-1] if before else tempos[0][1] if tempos else 120.0
        tempo = round(tempo, 3) if 1 <= tempo <= 1000 else 120.0
        melody = Melody(notes, meter, key, n_bars, tempo=tempo, title=_clean(track.name) or path.stem)
    except MusicError as e:  # the reader promises MidiError only
        raise MidiError(path, str(e)) from None
    return ReadReport(
        melody=melody,
        track=_clean(track.name) or f"track {index + 1}",
        source_notes=n_source,
        quantized=int(moved.sum()),
        dropped=n_source - len(notes),
        key_estimated=key_estimated,
    )
