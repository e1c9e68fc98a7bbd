"""How much of a MIDI file's melody a round trip keeps, measured with pretty_midi alone.

The notes counted are the melody's top line: at each onset of the melody track the highest
note starting there, as (onset, pitch, duration) in quarter notes, onsets relative to the
first note. Where a double stop starts two notes together, the round trip may keep one of
the others instead. Nothing here imports composer: this is the yardstick the reader is
measured with, not a copy of it.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

TOLERANCE = 1 / 24  # quarter notes: half a step of a 12-steps-per-quarter grid


@dataclass(frozen=True)
class TopNote:
    """One onset of the top line: the highest note and the others starting with it."""

    onset: float  # quarter notes after the line's first onset
    pitch: int
    dur: float  # quarter notes, clipped at the next onset of the line
    others: tuple[tuple[int, float], ...] = ()  # (pitch, clipped duration) of the lower notes there


def _track(pm: pretty_midi.PrettyMIDI, path: Path, track: int | str | None) -> pretty_midi.Instrument:
    """The instrument named or numbered by ``track`` (index among pretty_midi's instruments), or
    the only non-drum instrument holding notes."""
    tracks = [i for i in pm.instruments if not i.is_drum and i.notes]
    if track is None:
        if len(tracks) != 1:
            raise ValueError(f"{path.name}: {len(tracks)} tracks with notes: name the melody track")
        return tracks[0]
    if isinstance(track, int):
        return pm.instruments[track]
    named = [i for i in pm.instruments if i.name == track]
    if len(named) != 1:
        raise ValueError(f"{path.name}: no single track named {track!r} in {[i.name for i in pm.instruments]}")
    return named[0]


def notes_in_quarters(path: str | Path, track: int | str | None = None) -> list[tuple[float, float, int]]:
    """Every note of the melody track as (start, end, pitch) in quarter notes from the file's start."""
    path = Path(path)
    pm = pretty_midi.PrettyMIDI(str(path))
    q = float(pm.resolution)
    return sorted((pm.time_to_tick(n.start) / q, pm.time_to_tick(n.end) / q, n.pitch)
                  for n in _track(pm, path, track).notes)


def line_from_notes(notes: list[tuple[float, float, int]], under_held: bool = True) -> list[TopNote]:
    """The top line of (start, end, pitch) notes. With ``under_held=False`` an onset whose highest
    note starts while a higher note is still sounding (a chord under a held melody note) is left
    out: the strict skyline, a melody-on-top piano part's tune."""
    by_onset: dict[float, list[tuple[int, float]]] = {}
    for s, e, p in notes:
        by_onset.setdefault(round(s * 48) / 48, []).append((p, e - s))
    onsets = sorted(by_onset)
    if not under_held:
        keep = []
        for t in onsets:
            top = max(p for p, _ in by_onset[t])
            if not any(s < t - 1e-9 and e > t + 1e-9 and p > top for s, e, p in notes):
                keep.append(t)
        onsets = keep
    if not onsets:
        return []
    first, line = onsets[0], []
    for k, t in enumerate(onsets):
        room = onsets[k + 1] - t if k + 1 < len(onsets) else float("inf")
        here = sorted(by_onset[t], reverse=True)
        clipped = [(p, min(d, room)) for p, d in here]
        line.append(TopNote(t - first, clipped[0][0], clipped[0][1], tuple(clipped[1:])))
    return line


def top_line(path: str | Path, track: int | str | None = None, under_held: bool = True) -> list[TopNote]:
    """The melody track's top line (see the module docstring); ``track`` is an instrument index or
    name, needed when the file holds more than one track with notes."""
    return line_from_notes(notes_in_quarters(path, track), under_held)


def _matches(src: TopNote, out: TopNote) -> bool:
    """Whether the output note is the source's top note or one of the notes starting with it."""
    return any(p == out.pitch and abs(d - out.dur) <= TOLERANCE for p, d in ((src.pitch, src.dur), *src.others))


def match_lines(source: list[TopNote], output: list[TopNote]) -> tuple[int, int]:
    """(source notes kept, output notes matching none): each output note matches at most one
    source note; the output is aligned by the shift that keeps most notes, so a dropped or moved
    first note costs one note, not the whole line."""
    if not source or not output:
        return 0, len(output)
    out_onsets = [n.onset for n in output]
    shifts = {round(o.onset - s.onset, 6) for s in source for o in output[:8] if _matches(s, o)} or {0.0}
    best = (-1, 0)
    for shift in sorted(shifts):
        used: set[int] = set()
        for s in source:
            j = bisect_left(out_onsets, s.onset + shift - TOLERANCE)
            while j < len(output) and output[j].onset <= s.onset + shift + TOLERANCE:
                if j not in used and _matches(s, output[j]):
                    used.add(j)
                    break
                j += 1
        if len(used) > best[0]:
            best = (len(used), len(output) - len(used))
    return best


def kept_share(source: str | Path, roundtrip: str | Path, track: int | str | None = None,
               under_held: bool = True) -> float:
    """Share of the source's top-line notes found in the round trip (onset, pitch, duration)."""
    src = top_line(source, track, under_held)
    kept, _ = match_lines(src, top_line(roundtrip))
    return kept / len(src) if src else 1.0


def extra_notes(source: str | Path, roundtrip: str | Path, track: int | str | None = None,
                under_held: bool = True) -> int:
    """Notes of the round trip that match no source top-line note (a leaked accompaniment)."""
    return match_lines(top_line(source, track, under_held), top_line(roundtrip))[1]
