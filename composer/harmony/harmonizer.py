"""The harmonizer: the one path that turns melodies into chord spans (the CLI, the API and the
evaluation all call ``Harmonizer``), and its checkpoint file.

Decoding is greedy over the chord segments of the rate, with **decoding-time preferences**
added to the network's chord log-probabilities (the network learned Bach; a song's chords are
plainer): + TONE_BONUS x (share of the segment's melody time on chord tones), + START_BONUS
when the note sounding at the segment's start (a downbeat) is a chord tone, + PRIMARY_BONUS for
the primary chords (I, IV, V, V7; in minor i, iv, V, V7) and - QUALITY_PENALTY for qualities
other than major, minor and dominant seventh. Set on the folk dev set (composer.harmony.folk):
root accuracy per quarter 0.38 without them, 0.61 with them (triad baseline 0.55).
Consecutive equal chords inside a bar merge into one span. A bass that would make a parallel
fifth or octave with the melody moves to another tone of its chord (an inversion).

**Automatic chord rate** (rate None): one chord a bar (folk tunes mostly change chord every bar
or half bar), except a bar whose middle note (the start of its second half) is not a tone of
the bar's chord while the half-bar decoding has chords holding the notes at both halves' starts:
that bar takes the two half-bar chords. Beat rate, the chorale's rhythm, only on request.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from composer.errors import CheckpointError, MusicError
from composer.files import atomic_write
from composer.harmony.chords import Chord
from composer.harmony.features import (RATES, beat_edges, beat_features, beat_tonics, check_rate, pitch_time,
                                       segment_edges, segment_of_beats)
from composer.harmony.network import N_CHORDS, HarmonizerConfig, HarmonizerNet
from composer.harmony.vocab import CHORD_VOCABULARY, chord_from_id, tone_table
from composer.music.melody import Melody

FORMAT = "composer-harmonizer"
VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "harmonizer.pt"
TONE_BONUS = 3.0  # log-prob bonus per share of a segment's melody time on chord tones
START_BONUS = 1.0  # log-prob bonus when the note sounding at the segment's start is a chord tone
QUALITY_PENALTY = 1.0  # log-prob penalty for qualities other than major, minor and dominant seventh
PRIMARY_BONUS = 4.0  # log-prob bonus for the primary chords (I IV V V7; minor: i iv V V7)
BATCH = 64  # melodies decoded together

ChordSpan = tuple[int, int, Chord]
_TONES = tone_table()[:N_CHORDS].astype(np.float32)  # key-relative chord id -> its pitch classes


def _prior() -> np.ndarray:
    """(2, N_CHORDS): the style preference over key-relative chord ids in major (row 0) and minor (row 1)."""
    from composer.harmony.vocab import chord_id

    out = np.zeros((2, N_CHORDS), dtype=np.float32)
    for i, chord in enumerate(CHORD_VOCABULARY[1:], 1):
        if chord.quality not in ("maj", "min", "7"):
            out[:, i] -= QUALITY_PENALTY
    for row, chords in enumerate(((Chord(0), Chord(5), Chord(7), Chord(7, "7")),
                                  (Chord(0, "min"), Chord(5, "min"), Chord(7), Chord(7, "7")))):
        for c in chords:
            out[row, chord_id(c)] += PRIMARY_BONUS
    return out


_PRIOR = _prior()


def save_harmonizer(path: str | Path, model: HarmonizerNet, meta: dict | None = None, half: bool = True) -> Path:
    """Write a self-contained checkpoint (tensors and plain data; fp16 weights when ``half``) atomically."""
    state = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "version": VERSION, "config": model.cfg.to_dict(), "state": state, "meta": meta or {}}
    buf = io.BytesIO()
    torch.save(blob, buf)
    return atomic_write(Path(path), buf.getvalue(), force=True)


def load_network(path: str | Path, device: str = "cpu") -> tuple[HarmonizerNet, dict]:
    """The network and metadata of a checkpoint; CheckpointError (one line) if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"harmonizer checkpoint {path} not found: give a file written by compose train --harmonizer")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable harmonizer checkpoint ({type(e).__name__}): "
                              "retrain it with compose train --harmonizer") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a harmonizer checkpoint: give one written by compose train --harmonizer")
    if blob.get("version") != VERSION:
        raise CheckpointError(f"{path} is harmonizer format {blob.get('version')!r}, this composer reads {VERSION}: retrain it")
    try:
        known = {f.name for f in fields(HarmonizerConfig)}
        model = HarmonizerNet(HarmonizerConfig(**{k: v for k, v in blob["config"].items() if k in known}))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    except Exception as e:
        raise CheckpointError(f"{path}: the weights do not fit the harmonizer network ({type(e).__name__}): retrain it") from None
    return model.to(device).eval(), dict(blob.get("meta") or {})


class Harmonizer:
    """Chords and bass for melodies: ``Harmonizer.load().harmonize(melody)``."""

    def __init__(self, model: HarmonizerNet, meta: dict | None = None, path: Path | None = None) -> None:
        self.model = model.eval()
        self.meta = meta or {}
        self.path = path
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu") -> Harmonizer:
        """The harmonizer in ``path`` (None: the shipped composer/models/harmonizer.pt)."""
        path = Path(path) if path is not None else SHIPPED
        model, meta = load_network(path, device)
        return cls(model, meta, path)

    def harmonize(self, melody: Melody, rate: str | None = None) -> list[ChordSpan]:
        """(start step, duration, chord with bass) from the first bar line to the last; rate None = auto."""
        return self.harmonize_many([melody], rate)[0]

    def harmonize_many(self, melodies: Sequence[Melody], rate: str | None = None) -> list[list[ChordSpan]]:
        """harmonize for many melodies, decoded in batches."""
        if rate is not None:
            check_rate(rate)
            return self._decode(melodies, rate)
        bars = self._decode(melodies, "bar")
        halves = self._decode(melodies, "half")
        return [_mix(m, b, h) for m, b, h in zip(melodies, bars, halves)]
    def _decode(self, melodies: Sequence[Melody], rate: str) -> list[list[ChordSpan]]:
        """Decode at one rate, BATCH melodies at a time (similar lengths together)."""
        order = sorted(range(len(melodies)), key=lambda i: melodies[i].total_steps)
        out: list[list[ChordSpan]] = [[] for _ in melodies]
        for lo in range(0, len(order), BATCH):
            idx = order[lo:lo + BATCH]
            for i, spans in zip(idx, self._decode_batch([melodies[i] for i in idx], rate)):
                out[i] = spans
        return out

    def _decode_batch(self, melodies: Sequence[Melody], rate: str) -> list[list[ChordSpan]]:
        preps = [_prepare(m, rate) for m in melodies]
        b = len(preps)
        t = max(len(p["frames"]) for p in preps)
        s = max(len(p["edges"]) - 1 for p in preps)
        frames = np.zeros((b, t, preps[0]["frames"].shape[1]), dtype=np.float32)
        seg = np.full((b, t), -1, dtype=np.int64)
        bonus = np.zeros((b, s, N_CHORDS), dtype=np.float32)
        for i, p in enumerate(preps):
            frames[i, :len(p["frames"])] = p["frames"]
            seg[i, :len(p["seg"])] = p["seg"]
            bonus[i, :len(p["bonus"])] = p["bonus"]
        dev = self.device
        lengths = torch.tensor([len(p["frames"]) for p in preps])
        rates = torch.full((b,), RATES.index(rate), dtype=torch.long, device=dev)
        chords, bass = self.model.decode(torch.from_numpy(frames).to(dev), lengths, torch.from_numpy(seg).to(dev),
                                         rates, s, torch.from_numpy(bonus).to(dev))
        chords, bass = chords.cpu().numpy(), bass.cpu().numpy()
        return [_spans(m, p, chords[i], bass[i]) for i, (m, p) in enumerate(zip(melodies, preps))]


def _mix(melody: Melody, bars: list[ChordSpan], halves: list[ChordSpan]) -> list[ChordSpan]:
    """The automatic rate: each bar's bar-rate chord, unless the melody note at the bar's middle
    (the start of its second half) is not one of its tones while the half-rate chords hold the
    notes at both halves' starts: then that bar's half-rate chords."""
    by_bar: dict[int, list[ChordSpan]] = {}
    for span in halves:
        by_bar.setdefault(melody.bar_of(span[0]), []).append(span)
    out: list[ChordSpan] = []
    for start, length, chord in bars:
        mine = by_bar.get(melody.bar_of(start), [])
        mid = _sounding(melody, mine[-1][0]) if len(mine) > 1 else None
        if mid is not None and mid not in chord.tones() and all(
                (pc := _sounding(melody, s)) is None or pc in c.tones() for s, _, c in mine):
            out += mine
        else:
            out.append((start, length, chord))
    return out


def _prepare(melody: Melody, rate: str) -> dict:
    """Frames, segments, tonics and the melody preference of one melody at ``rate``."""
    if melody.total_steps < 1:
        raise MusicError("an empty melody has no bars to harmonize")
    beats = beat_edges(melody)
    edges = segment_edges(melody, rate)
    tonics = beat_tonics(melody, edges)
    time_ = pitch_time(melody, edges) / np.diff(np.asarray(edges))[:, None]
    rel = np.stack([np.roll(row, -int(t)) for row, t in zip(time_, tonics)])  # key-relative
    start = np.zeros_like(rel)
    for k, lo in enumerate(edges[:-1]):
        pc = _sounding(melody, lo)
        if pc is not None:
            start[k, (pc - tonics[k]) % 12] = 1.0
    minor = np.array([melody.key_at(melody.bar_of(lo)).minor for lo in edges[:-1]])
    bonus = TONE_BONUS * rel @ _TONES.T + START_BONUS * start @ _TONES.T
    if rate != "beat":  # the song-style preference; beat rate keeps the chorale's own chords
        bonus = bonus + np.where(minor[:, None], _PRIOR[1], _PRIOR[0])
    return {"frames": beat_features(melody), "seg": segment_of_beats(beats, edges), "edges": edges,
            "tonics": tonics, "bonus": bonus}


def _sounding(melody: Melody, step: int) -> int | None:
    """The pitch class of the melody note sounding at ``step`` (None in a rest)."""
    import bisect

    i = bisect.bisect_right(melody.notes, step, key=lambda n: n.start) - 1
    if i >= 0 and melody.notes[i].end > step:
        return melody.notes[i].pitch % 12
    return None


def _spans(melody: Melody, prep: dict, chords: np.ndarray, bass: np.ndarray) -> list[ChordSpan]:
    """Absolute chord spans from decoded key-relative ids; equal neighbours inside a bar merge."""
    edges, tonics = prep["edges"], prep["tonics"]
    out: list[ChordSpan] = []
    for k, (lo, hi) in enumerate(zip(edges, edges[1:])):
        chord = chord_from_id(int(chords[k]), int(bass[k])).transpose(int(tonics[k]))
        if out and out[-1][2] == chord and melody.bar_of(lo) == melody.bar_of(out[-1][0]):
            out[-1] = (out[-1][0], hi - out[-1][0], chord)
        else:
            out.append((lo, hi - lo, _avoid_parallels(melody, out[-1] if out else None, lo, chord)))
    if out:  # the final chord stands in root position, as a cadence does (never a 6/4 at the end)
        out[-1] = (out[-1][0], out[-1][1], out[-1][2].root_position())
    return out


def _avoid_parallels(melody: Melody, before: ChordSpan | None, start: int, chord: Chord) -> Chord:
    """The chord, its bass moved to another of its tones (root, third, fifth ... in that order)
    when the chosen bass would make a parallel fifth or octave with the melody at ``start``."""
    if before is None or start < 1:
        return chord
    upper, prev_upper, prev_bass = _sounding(melody, start), _sounding(melody, start - 1), before[2].bass
    if upper is None or prev_upper is None or upper == prev_upper:
        return chord
    bad = (prev_upper - prev_bass) % 12
    if bad not in (0, 7) or chord.bass == prev_bass or (upper - chord.bass) % 12 != bad:
        return chord
    for tone in chord.tones():
        if tone != prev_bass and (upper - tone) % 12 != bad:
            return Chord(chord.root, chord.quality, tone)
    return chord

