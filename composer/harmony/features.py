"""What the harmonizer reads: a melody as key-relative per-beat feature frames, and the chord
segments of a harmonic rhythm (``--chord-rate beat|half|bar``) over those beats.

A **beat** is a quarter in x/4, a dotted quarter in compound meters (6/8, 9/8, 12/8), a half in
x/2 (``TimeSignature.beat_steps``); a bar that is not whole beats ends with a shorter one.
A **half bar** is the first ceil(beats / 2) beats of a bar, then the rest (4/4: 2 + 2, 3/4: 2 + 1,
6/8: 1 + 1; a one-beat bar is one segment). A **bar** is the bar. Segment edges are therefore
always beat edges, and every segment lies inside one bar.

Everything is **key-relative**: pitch classes are counted from the tonic of the bar's key
(``Melody.key_at``), so one model serves all keys and a transposed melody gets transposed chords.
"""

from __future__ import annotations

import numpy as np

from composer.errors import MusicError
from composer.music.melody import STEPS_PER_QUARTER, Melody

RATES = ("beat", "half", "bar")
MAX_BEAT_INDEX = 8  # beat-in-bar one-hot width (later beats share the last slot)
# Frame layout: 12 weighted pitch classes | 13 start pitch class (12 = rest) | onsets | beat index |
# beats in bar | minor | beat length | first beat | last beat | leap into the start note (octaves).
N_FEATURES = 12 + 13 + 1 + MAX_BEAT_INDEX + 1 + 1 + 1 + 1 + 1 + 1


def check_rate(rate: str) -> int:
    """The index of a chord rate in RATES; MusicError naming the value otherwise."""
    if rate not in RATES:
        raise MusicError(f"unknown chord rate {rate!r}: use beat, half or bar")
    return RATES.index(rate)


def beats_of_bars(melody: Melody) -> list[list[int]]:
    """For each bar, the steps of its beat starts (the bar line first)."""
    starts = melody.bar_starts
    out = []
    for bar, (lo, hi) in enumerate(zip(starts, starts[1:])):
        step = max(melody.meter_at(bar).beat_steps, 1)
        out.append(list(range(lo, hi, step)))
    return out


def beat_edges(melody: Melody) -> list[int]:
    """Beat boundaries from the first bar line to the last (len = beats + 1): each bar's beats by
    its meter (quarters in 4/4 and 3/4, dotted quarters in 6/8, half notes in 2/2:
    TimeSignature.beat_steps); a bar that is not whole beats ends with a partial beat."""
    return [s for bar in beats_of_bars(melody) for s in bar] + [melody.total_steps]


def segment_edges(melody: Melody, rate: str) -> list[int]:
    """Chord-segment boundaries for ``rate`` (a subset of beat_edges, bar lines included)."""
    check_rate(rate)
    edges: list[int] = []
    for beats in beats_of_bars(melody):
        if rate == "beat":
            edges += beats
        elif rate == "bar" or len(beats) == 1:
            edges.append(beats[0])
        else:
            edges += [beats[0], beats[(len(beats) + 1) // 2]]
    return edges + [melody.total_steps]


def segment_of_beats(beats: list[int], segments: list[int]) -> np.ndarray:
    """For each beat (edges ``beats``), the index of the segment (edges ``segments``) holding it."""
    return (np.searchsorted(np.asarray(segments), np.asarray(beats[:-1]), side="right") - 1).astype(np.int64)


def beat_tonics(melody: Melody, edges: list[int]) -> np.ndarray:
    """The key tonic (pitch class) in effect at the start of each span of ``edges``."""
    return np.array([melody.key_at(melody.bar_of(s)).tonic for s in edges[:-1]], dtype=np.int64)


def pitch_time(melody: Melody, edges: list[int]) -> np.ndarray:
    """(spans, 12): steps each absolute pitch class sounds in each span of ``edges``."""
    out = np.zeros((len(edges) - 1, 12))
    arr = np.asarray(edges)
    for n in melody.notes:
        i = max(int(np.searchsorted(arr, n.start, side="right")) - 1, 0)
        while i < len(edges) - 1 and edges[i] < n.end:
            out[i, n.pitch % 12] += min(n.end, edges[i + 1]) - max(n.start, edges[i])
            i += 1
    return out


def beat_features(melody: Melody) -> np.ndarray:
    """(beats, N_FEATURES) float32 frames, key-relative (layout above)."""
    edges = beat_edges(melody)
    n = len(edges) - 1
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    tonic = beat_tonics(melody, edges)
    lengths = np.diff(np.asarray(edges)).astype(np.float64)
    weights = pitch_time(melody, edges) / lengths[:, None]
    rows = np.arange(n)
    for pc in range(12):  # rotate each beat so its key's tonic is pitch class 0
        x[rows, (pc - tonic) % 12] = weights[:, pc]
    notes, j = melody.notes, 0
    col = 25
    for b, (lo, hi) in enumerate(zip(edges, edges[1:])):
        while j < len(notes) and notes[j].end <= lo:
            j += 1
        k, onsets = j, 0
        start_pc, leap = 12, 0.0
        while k < len(notes) and notes[k].start < hi:
            if notes[k].start <= lo < notes[k].end:
                start_pc = (notes[k].pitch - tonic[b]) % 12
                leap = (notes[k].pitch - notes[k - 1].pitch) / 12 if k else 0.0  # transposition-free
            onsets += notes[k].start >= lo
            k += 1
        x[b, 12 + start_pc] = 1.0
        x[b, col] = min(onsets, 8) / 4
        x[b, col + 1 + MAX_BEAT_INDEX + 5] = leap
    col += 1
    b = 0
    for bar, beats in enumerate(beats_of_bars(melody)):
        minor = float(melody.key_at(bar).minor)
        for i, _ in enumerate(beats):
            x[b, col + min(i, MAX_BEAT_INDEX - 1)] = 1.0
            x[b, col + MAX_BEAT_INDEX] = len(beats) / 8
            x[b, col + MAX_BEAT_INDEX + 1] = minor
            x[b, col + MAX_BEAT_INDEX + 2] = lengths[b] / (2 * STEPS_PER_QUARTER)
            b += 1
    x[0, col + MAX_BEAT_INDEX + 3] = 1.0
    x[n - 1, col + MAX_BEAT_INDEX + 4] = 1.0
    return x
