"""Training the harmonizer on four-part chorales: labelled examples, a split by piece, the loop.

Each chorale gives one example: its soprano's beat frames (composer.harmony.features) and, for
each chord rate, the segments and their labels, from ``analysis.label_spans`` of the four real
voices over that rate's segment edges (a half-bar label is the chord of Bach's voices across the
half bar, not a guess from beat labels). Labels are key-relative like the frames. Every batch
draws a random rate per sequence, so one model serves all three rates. The library reports
through a ``progress(row)`` callback and never prints.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from composer.errors import TrainingError
from composer.harmony.analysis import NoteSpan, label_spans
from composer.harmony.chords import Chord
from composer.harmony.features import RATES, beat_edges, beat_features, segment_edges, segment_of_beats
from composer.harmony.harmonizer import save_harmonizer
from composer.harmony.network import HarmonizerConfig, HarmonizerNet
from composer.harmony.vocab import NO_BASS, chord_id
from composer.music.melody import Melody


@dataclass
class Example:
    """One piece: (T, F) frames and, per rate, each beat's segment (T,), chord ids and bass ids (S,)."""

    name: str
    frames: np.ndarray
    segments: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)


def relative_ids(chords: Sequence[Chord | None], tonics: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Key-relative chord ids and bass ids of ``chords`` (each under its own tonic)."""
    ids, bass = [], []
    for chord, tonic in zip(chords, tonics):
        rel = None if chord is None else chord.transpose(-int(tonic))
        ids.append(chord_id(rel))
        bass.append(NO_BASS if rel is None else rel.bass)
    return np.asarray(ids, dtype=np.int64), np.asarray(bass, dtype=np.int64)


def make_example(name: str, melody: Melody, parts: Sequence[Sequence[NoteSpan]]) -> Example:
    """The training example of a melody and the voices that harmonize it (all on one grid)."""
    beats = beat_edges(melody)
    ex = Example(name, beat_features(melody))
    for rate in RATES:
        edges = segment_edges(melody, rate)
        tonics = [melody.key_at(melody.bar_of(s)).tonic for s in edges[:-1]]
        ids, bass = relative_ids(label_spans(parts, edges), tonics)
        ex.segments[rate] = (segment_of_beats(beats, edges), ids, bass)
    return ex


def split_by_piece(names: Sequence[str], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, validation) indices: each piece's side depends only on its name and the seed
    (the hashing of composer.data.corpus.split_files), ~val_fraction held out."""
    n = len(names)
    if n < 2:
        return list(range(n)), []
    n_val = min(n - 1, max(1, math.ceil(n * val_fraction)))
    rank = sorted(range(n), key=lambda i: hashlib.sha256(f"{seed}:{names[i]}".encode()).digest())
    val = set(rank[:n_val])
    return [i for i in range(n) if i not in val], sorted(val)


def collate(examples: Sequence[Example], rates: Sequence[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Padded tensors of examples, example i at rate rates[i] (padding: segment -1, ids -100)."""
    t = max(len(e.frames) for e in examples)
    s = max(len(e.segments[r][1]) for e, r in zip(examples, rates))
    b = len(examples)
    frames = np.zeros((b, t, examples[0].frames.shape[1]), dtype=np.float32)
    seg = np.full((b, t), -1, dtype=np.int64)
    chords = np.full((b, s), -100, dtype=np.int64)
    bass = np.full((b, s), -100, dtype=np.int64)
    for i, (e, r) in enumerate(zip(examples, rates)):
        sg, c, bs = e.segments[r]
        frames[i, :len(e.frames)] = e.frames
        seg[i, :len(sg)] = sg
        chords[i, :len(c)], bass[i, :len(bs)] = c, bs
    out = {"frames": frames, "lengths": np.array([len(e.frames) for e in examples]), "seg": seg,
           "rate": np.array([RATES.index(r) for r in rates]), "chords": chords, "bass": bass}
    return {k: torch.from_numpy(v).to(device) for k, v in out.items()}


def batch_loss(model: HarmonizerNet, batch: dict[str, torch.Tensor]) -> tuple:
    """Summed chord and bass cross-entropy (nats) over the batch's labelled segments, their count,
    and the chord and bass logits."""
    chords, bass = batch["chords"], batch["bass"]
    inputs = chords.clamp(min=0), bass.clamp(min=0)  # padding as id 0: those outputs are ignored
    chord_logits, bass_logits = model(batch["frames"], batch["lengths"], batch["seg"], batch["rate"], *inputs)
    ce = nn.functional.cross_entropy
    lc = ce(chord_logits.transpose(1, 2), chords, ignore_index=-100, reduction="sum")
    lb = ce(bass_logits.transpose(1, 2), bass, ignore_index=-100, reduction="sum")
    return lc, lb, int((chords != -100).sum()), chord_logits, bass_logits


@torch.no_grad()
def score(model: HarmonizerNet, examples: Sequence[Example], rate: str = "beat", batch_size: int = 32) -> dict:
    """Teacher-forced bits per chord token and per bass token, and chord/root/bass accuracy of
    the most likely token, over ``examples`` at ``rate``."""
    model.eval()
    totals = {"chord": 0.0, "bass": 0.0, "n": 0, "chord_ok": 0, "root_ok": 0, "bass_ok": 0}
    for i in range(0, len(examples), batch_size):
        part = examples[i:i + batch_size]
        batch = collate(part, [rate] * len(part), next(model.parameters()).device.type)
        lc, lb, n, cl, bl = batch_loss(model, batch)
        chords, bass = batch["chords"], batch["bass"]
        mask = chords != -100
        pred = cl.argmax(-1)
        totals["chord"] += float(lc)
        totals["bass"] += float(lb)
        totals["n"] += n
        totals["chord_ok"] += int(((pred == chords) & mask).sum())
        totals["root_ok"] += int((((pred - 1) % 12 == (chords - 1) % 12) & mask).sum())
        totals["bass_ok"] += int(((bl.argmax(-1) == bass) & mask).sum())
    n = max(totals["n"], 1)
    return {"bits_per_chord": totals["chord"] / n / math.log(2), "bits_per_bass": totals["bass"] / n / math.log(2),
            "chord_accuracy": totals["chord_ok"] / n, "root_accuracy": totals["root_ok"] / n,
            "bass_accuracy": totals["bass_ok"] / n, "segments": totals["n"]}


@dataclass(frozen=True)
class TrainSettings:
    """Training-loop settings (the network's shape is HarmonizerConfig)."""

    minutes: float = 20.0  # wall-clock budget; 0 = none
    epochs: int = 200  # most passes over the training pieces
    batch_size: int = 16  # pieces per step
    lr: float = 2e-3  # peak AdamW learning rate, cosine-decayed over the budget
    weight_decay: float = 0.01
    patience: int = 25  # stop after this many epochs without a better validation loss
    val_fraction: float = 0.1  # share of pieces held out
    seed: int = 0


@dataclass
class TrainedHarmonizer:
    """The best network (by validation loss), its history and the split."""

    model: HarmonizerNet
    history: list[dict]
    train_names: list[str]
    val_names: list[str]
    best: dict


def train_harmonizer(examples: Sequence[Example], settings: TrainSettings = TrainSettings(),
                     cfg: HarmonizerConfig = HarmonizerConfig(), progress: Callable[[dict], None] | None = None,
                     should_stop: Callable[[], bool] | None = None, device: str = "cpu") -> TrainedHarmonizer:
    """Train on ``examples`` split by piece; ``progress`` gets one row per epoch."""
    if len(examples) < 2:
        raise TrainingError(f"{len(examples)} four-part pieces: the harmonizer needs at least 2 (one held out)")
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    tr_idx, va_idx = split_by_piece([e.name for e in examples], settings.val_fraction, settings.seed)
    train, val = [examples[i] for i in tr_idx], [examples[i] for i in va_idx]
    model = HarmonizerNet(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    budget = settings.minutes * 60
    t0 = time.monotonic()
    history: list[dict] = []
    best, best_state, stale = None, None, 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        order.sort(key=lambda i: len(train[i].frames) + rng.random() * 40)  # similar lengths together
        groups = [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
        rng.shuffle(groups)
        total, count = 0.0, 0
        for g in groups:
            frac = (time.monotonic() - t0) / budget if budget else epoch / settings.epochs
            for pg in opt.param_groups:
                pg["lr"] = settings.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
            batch = collate([train[i] for i in g], [rng.choice(RATES) for _ in g], device)
            lc, lb, n, _, _ = batch_loss(model, batch)
            loss = (lc + 0.5 * lb) / max(n, 1)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # long pieces give rare large gradients
            opt.step()
            total, count = total + float(lc.detach()), count + n
        row = {"epoch": epoch, "train_bits_per_chord": total / max(count, 1) / math.log(2),
               "seconds": time.monotonic() - t0}
        figures = score(model, val, "beat") if val else {"bits_per_chord": row["train_bits_per_chord"]}
        row.update({f"val_{k}": v for k, v in figures.items()})
        history.append(row)
        if best is None or figures["bits_per_chord"] < best["bits_per_chord"]:
            best, stale = dict(figures, epoch=epoch), 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if progress:
            progress(row)
        if stale >= settings.patience or (budget and time.monotonic() - t0 >= budget) or (should_stop and should_stop()):
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainedHarmonizer(model, history, [examples[i].name for i in tr_idx], [examples[i].name for i in va_idx], best)


def chorale_examples(folder) -> list[Example]:
    """The training examples of every four-part chorale in ``folder`` (composer.harmony.corpus)."""
    from composer.harmony.corpus import load_chorales

    chorales = load_chorales(folder)
    if len(chorales) < 2:
        raise TrainingError(f"{folder} holds {len(chorales)} four-part chorales (files bach_*.mid with tracks Soprano, "
                            "Alto, Tenor, Bass): build them with compose corpus build")
    return [make_example(c.name, c.melody, c.parts) for c in chorales]


def fit_and_save(examples: Sequence[Example], settings: TrainSettings, out, cfg: HarmonizerConfig = HarmonizerConfig(),
                 progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """Train and write the best network to ``out`` with its split, settings and figures; the best figures."""
    from dataclasses import asdict

    result = train_harmonizer(examples, settings, cfg, progress, should_stop)
    meta = {"settings": asdict(settings), "best": result.best, "history": result.history,
            "train_names": result.train_names, "val_names": result.val_names}
    save_harmonizer(out, result.model, meta)
    return result.best
