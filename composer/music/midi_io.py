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
from composer.music.barlines import BarGrid, bar_grid, meter_events
from composer.music.meter import MAX_BAR_STEPS
from composer.music.voices import melody_line
from composer.music.midi_write import clean_text as _clean, melody_to_bytes, velocities, write_midi  # noqa: F401 (re-exported)

MAX_BARS = 4096  # longer melodies are refused (guards against absurd tick values)
MAX_FILE_BYTES = 32 * 2**20
MAX_NOTES = 500_000  # per file: bounds memory and time (the largest real songs hold a few ten thousand)
# Track names that mark the melody: "Soprano" (German "Sopran") is the tune of a four-part chorale.
_MELODY_NAMES = re.compile(r"melod|lead|vocal|voice|sing|solo|tune|sopran", re.I)


@dataclass(frozen=True)
class ReadReport:
    """What reading a file kept and changed."""

    melody: Melody
    track: str  # name of the track used as melody, else "track N" (N counts the tracks holding notes)
    source_notes: int  # notes in that track
    quantized: int  # notes of the melody whose onset or end moved to reach the grid
    dropped: int  # notes removed: inner voices and chord notes, notes off the piano
    key_estimated: bool  # True when the file had no key signature
    inner_voices: int = 0  # of them: chord notes and voices other than the melody line
    off_piano: int = 0  # of them: notes outside the piano range
    reshaped_bars: int = 0  # bars merged (under a sixteenth), split (over 16 quarters) or given a derived meter


def read_melody(path: str | Path, track: str | int | None = None) -> Melody:
    """The melody of a MIDI file, quantized to the grid; raises MidiError."""
    return read_report(path, track).melody


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


def read_report(path: str | Path, track: str | int | None = None) -> ReadReport:
    """Read a MIDI file into a Melody and say what was kept; raises MidiError. ``track``: the
    melody track by name or number (1 = the first track holding notes), else chosen by name and range."""
    path = Path(path)
    score = _load_score(path)
    index, chosen = _choose_track(path, score) if track is None else _named_track(path, score, track)
    arr = chosen.notes.numpy()
    n_source = len(arr["time"])
    tpq = score.ticks_per_quarter
    t_on = arr["time"].astype(np.int64)
    t_off = t_on + np.maximum(arr["duration"].astype(np.int64), 0)
    pitch = arr["pitch"].astype(np.int64)
    if t_on.min() < 0:
        raise MidiError(path, "negative note times (corrupt file)")
    in_range = (pitch >= PITCH_MIN) & (pitch <= PITCH_MAX)
    if not in_range.any():
        raise MidiError(path, f"no notes in the piano range {PITCH_MIN}-{PITCH_MAX}")
    t_on, t_off, pitch = t_on[in_range], t_off[in_range], pitch[in_range]
    if (int(t_off.max()) - int(t_on.min())) * STEPS_PER_QUARTER / tpq > MAX_BARS * MAX_BAR_STEPS:
        raise MidiError(path, f"longer than {MAX_BARS} bars (absurd tick values?)")
    raw = [(int(ts.time), int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures]
    grid = bar_grid(meter_events(raw, t_on, t_off, tpq), tpq, int(t_on.min()), int(t_off.max()))
    if len(grid.meters) > MAX_BARS:
        raise MidiError(path, f"longer than {MAX_BARS} bars (absurd tick values?)")
    # Fractional grid steps from bar 1's line; exact for any resolution (integer ratios).
    f_on = (t_on - grid.origin) * (STEPS_PER_QUARTER / tpq)
    f_off = (t_off - grid.origin) * (STEPS_PER_QUARTER / tpq)
    on, off = np.rint(f_on).astype(np.int64), np.rint(f_off).astype(np.int64)
    moved = (np.abs(f_on - on) > 1e-6) | (np.abs(f_off - off) > 1e-6)
    off = np.minimum(np.maximum(off, on + 1), grid.starts[-1])
    kept, on, off = melody_line(on, off, pitch)
    pitch, moved = pitch[kept], moved[kept]
    try:
        notes = notes_from_arrays(on, off - on, pitch)
        starts = np.asarray(grid.starts)
        key, key_changes, key_estimated = _keys(score, grid, tpq, starts, pitch, off - on)
        tempos = [(int(tp.time), float(tp.qpm)) for tp in score.tempos]
        before = [q for t, q in tempos if t <= max(grid.origin, 0)]
        tempo = before[-1] if before else tempos[0][1] if tempos else 120.0
        tempo = round(tempo, 3) if 1 <= tempo <= 1000 else 120.0
        melody = Melody(notes, grid.meters[0], key, len(grid.meters), tempo=tempo, title=_clean(chosen.name) or path.stem,
                        meter_changes=grid.changes(), key_changes=key_changes)
    except MusicError as e:  # the reader promises MidiError only
        raise MidiError(path, str(e)) from None
    return ReadReport(
        melody=melody,
        track=_clean(chosen.name) or f"track {index + 1}",
        source_notes=n_source,
        quantized=int(moved.sum()),
        dropped=n_source - len(notes),
        key_estimated=key_estimated,
        inner_voices=int(in_range.sum()) - len(notes),
        off_piano=n_source - int(in_range.sum()),
        reshaped_bars=grid.reshaped,
    )


def _keys(score, grid: BarGrid, tpq: int, starts: np.ndarray, pitch: np.ndarray, dur: np.ndarray):
    """(key of bar 1, later key changes by bar, whether estimated): the file's key signature at
    bar 1, and each later one from the bar it starts (the next bar when it comes mid-bar)."""
    step_ticks = tpq / STEPS_PER_QUARTER
    events = [(int(ks.time), Key.from_sharps(int(ks.key), bool(ks.tonality))) for ks in score.key_signatures
              if -7 <= int(ks.key) <= 7 and int(ks.tonality) in (0, 1)]
    if not events:
        return estimate_key(pitch, dur), (), True
    by_bar: dict[int, Key] = {}
    for t, k in events:  # in file order: the last event for a bar wins
        step = (t - grid.origin) / step_ticks
        bar = int(np.searchsorted(starts, step - 1, side="left"))  # first bar line at or after it (one step's slack)
        by_bar[min(bar, len(grid.meters))] = k
    key = by_bar.pop(0, None) or events[0][1]
    changes: list[tuple[int, Key]] = []
    for bar in sorted(b for b in by_bar if b < len(grid.meters)):
        if by_bar[bar] != (changes[-1][1] if changes else key):
            changes.append((bar, by_bar[bar]))
    return key, tuple(changes), False


def _named_track(path: Path, score, track: str | int):
    """The track asked for by number (1 = the first track holding notes) or by name (any case)."""
    tracks = [(i, t) for i, t in enumerate(score.tracks) if len(t.notes) > 0]
    names = ", ".join(f"{n} {_clean(t.name)!r}" if _clean(t.name) else str(n) for n, (_, t) in enumerate(tracks, 1))
    text = str(track).strip()
    if text.isdigit():
        n = int(text)
        if 1 <= n <= len(tracks):
            return tracks[n - 1]
        raise MidiError(path, f"has no track {n} with notes (tracks: {names or 'none'})")
    for i, t in tracks:
        if _clean(t.name).casefold() == text.casefold():
            return i, t
    raise MidiError(path, f"has no track named {text!r} with notes (tracks: {names or 'none'})")
