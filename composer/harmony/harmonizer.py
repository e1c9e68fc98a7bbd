"""The harmonizer: the one path that turns melodies into chord spans (the CLI, the API and the
evaluation all call ``Harmonizer``), and its checkpoint file.

Decoding is greedy over the chord segments of the rate, with a **melody preference** added to
the network's chord log-probabilities, as a musician harmonizes: + TONE_BONUS x (share of the
segment's melody time on chord tones) + START_BONUS when the note sounding at the segment's start
(the downbeat of a bar or half bar) is a chord tone. Consecutive equal chords inside a bar merge
into one span.

**Automatic chord rate** (rate None): a tune whose bars hold at most two beats (2/4, 6/8, 2/2,
3/8) gets one chord a bar. Otherwise the tune is decoded at half-bar rate and gets one chord a
bar when at most AUTO_SPLIT_SHARE of its bars would have two different chords (the model hears
one harmony per bar), else two a bar (its halves merging where they agree). Folk tunes
mostly change chord every bar or half bar; beat rate, the chorale's rhythm, only on request.
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
from composer.harmony.vocab import CHORD_VOCABULARY, chord_from_id
from composer.music.melody import Melody

FORMAT = "composer-harmonizer"
VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "harmonizer.pt"
TONE_BONUS = 1.5  # log-prob bonus per share of a segment's melody time on chord tones
START_BONUS = 1.0  # log-prob bonus when the note sounding at the segment's start is a chord tone
AUTO_SPLIT_SHARE = 0.35  # auto rate: bar rate when at most this share of bars would split at half rate
BATCH = 64  # melodies decoded together

ChordSpan = tuple[int, int, Chord]
_TONES = np.zeros((N_CHORDS, 12), dtype=np.float32)  # key-relative chord id -> its pitch classes
for _i, _c in enumerate(CHORD_VOCABULARY[1:], 1):
    _TONES[_i, list(_c.tones())] = 1.0


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
        out: list[list[ChordSpan] | None] = [None] * len(melodies)
        short = [i for i, m in enumerate(melodies) if _max_beats(m) <= 2]
        rest = [i for i in range(len(melodies)) if i not in set(short)]
        for i, spans in zip(short, self._decode([melodies[i] for i in short], "bar")):
            out[i] = spans
        halves = self._decode([melodies[i] for i in rest], "half")
        coarse = [i for i, spans in zip(rest, halves) if split_share(melodies[i], spans) <= AUTO_SPLIT_SHARE]
        for i, spans in zip(rest, halves):
            out[i] = spans
        for i, spans in zip(coarse, self._decode([melodies[i] for i in coarse], "bar")):
            out[i] = spans
        return out  # type: ignore[return-value]

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


def _max_beats(melody: Melody) -> int:
    """The most beats in any bar of the melody."""
    return max(melody.meter_at(b).beats for b in {0, *(bar for bar, _ in melody.meter_changes)})


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
    bonus = TONE_BONUS * rel @ _TONES.T + START_BONUS * start @ _TONES.T
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
            out.append((lo, hi - lo, chord))
    return out


def split_share(melody: Melody, spans: Sequence[ChordSpan]) -> float:
    """The share of bars holding more than one chord span."""
    starts = {melody.bar_of(s) for s, _, _ in spans}
    per_bar = np.bincount([melody.bar_of(s) for s, _, _ in spans], minlength=melody.n_bars)
    return float((per_bar > 1).sum()) / max(len(starts), 1)
