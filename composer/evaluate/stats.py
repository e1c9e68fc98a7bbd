"""Objective statistics of melody sets and their overlap (Yang & Lerch 2018, "On the evaluation
of generative models in music").

Note-level features (pitch class relative to the key, interval, duration, inter-onset interval)
are pooled over a set into one normalized histogram; per-melody features (pitch range, in-key
ratio, notes per bar, bar repetition) become a Gaussian kernel density. Two sets agree on a
feature by the overlapping area of their distributions: 1.0 when identical, 0.0 when disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from composer.errors import ComposerError
from composer.music.bars import bar_repetition, degenerate_loop
from composer.music.melody import Melody

# Duration / onset-gap bins in grid steps (12 per quarter): the common values get a bin each.
_STEP_EDGES = [1, 3, 4, 5, 6, 7, 9, 10, 12, 13, 18, 19, 24, 25, 36, 37, 48, 49, 10**9]
_STEP_LABELS = ["<16th", "16th", "trip8", "", "8th", "", "dot8", "", "4th", "", "dot4", "", "half", "",
                "dot2", "", "whole", ">"]
_INTERVAL_LIMIT = 12
_GRID = 128  # points of each density curve

HISTOGRAMS = ("pitch_class", "interval", "duration", "ioi")
SCALARS = ("pitch_range", "in_key_ratio", "notes_per_bar", "bar_repetition")
FEATURES = HISTOGRAMS + SCALARS
TITLES = {
    "pitch_class": "pitch class (from key tonic)", "interval": "interval (semitones)",
    "duration": "duration", "ioi": "inter-onset interval", "pitch_range": "pitch range (semitones)",
    "in_key_ratio": "in-key ratio", "notes_per_bar": "notes per bar", "bar_repetition": "bar repetition",
}
_MIN_BANDWIDTH = {"pitch_range": 1.0, "in_key_ratio": 0.02, "notes_per_bar": 0.25, "bar_repetition": 0.03}


def melody_scalars(melody: Melody) -> dict[str, float]:
    """The per-melody features of one melody."""
    pitches = np.array([n.pitch for n in melody.notes], dtype=np.int64)
    rel = (pitches - melody.key.tonic) % 12
    return {
        "pitch_range": float(pitches.max() - pitches.min()) if len(pitches) else 0.0,
        "in_key_ratio": float(np.isin(rel, melody.key.scale).mean()) if len(pitches) else 0.0,
        "notes_per_bar": len(pitches) / melody.n_bars,
        "bar_repetition": bar_repetition(melody),
    }


QUARTER = 12  # grid steps of a quarter note: a last note this long or longer sounds like an ending


def ending_stats(melodies: Sequence[Melody]) -> dict:
    """How a set of melodies ends, and how many loop: the share whose last note is the tonic of
    the melody's last key (``Melody.last_key``), the last note's mean length in grid steps and
    the share at least a quarter note long, and the share holding a degenerate loop
    (``composer.music.bars.degenerate_loop``). Melodies without notes count only for loops."""
    last = [(m.notes[-1], m.last_key) for m in melodies if m.notes]
    lengths = np.array([n.duration for n, _ in last], dtype=np.float64)
    tonic = np.array([(n.pitch - k.tonic) % 12 == 0 for n, k in last], dtype=np.float64)
    loops = np.array([degenerate_loop(m) is not None for m in melodies], dtype=np.float64)
    mean = lambda x: round(float(x.mean()), 4) if len(x) else float("nan")  # noqa: E731
    return {"melodies": len(melodies), "tonic_ending": mean(tonic), "last_note_mean_steps": mean(lengths),
            "last_note_quarter_or_longer": mean(lengths >= QUARTER), "loop_rate": mean(loops)}


def _note_values(melodies: Sequence[Melody]) -> dict[str, np.ndarray]:
    """Pooled note-level values of a set."""
    pcs, ivs, durs, iois = [], [], [], []
    for m in melodies:
        p = np.array([n.pitch for n in m.notes], dtype=np.int64)
        s = np.array([n.start for n in m.notes], dtype=np.int64)
        pcs.append((p - m.key.tonic) % 12)
        ivs.append(np.clip(np.diff(p), -_INTERVAL_LIMIT, _INTERVAL_LIMIT))
        durs.append(np.array([n.duration for n in m.notes], dtype=np.int64))
        iois.append(np.diff(s))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    return {"pitch_class": cat(pcs), "interval": cat(ivs), "duration": cat(durs), "ioi": cat(iois)}


def _histogram(name: str, values: np.ndarray) -> np.ndarray:
    """Normalized histogram of note-level values on the feature's fixed bins."""
    if name == "pitch_class":
        counts = np.bincount(values, minlength=12)[:12]
    elif name == "interval":
        counts = np.bincount(values + _INTERVAL_LIMIT, minlength=2 * _INTERVAL_LIMIT + 1)
    else:
        counts = np.histogram(values, bins=_STEP_EDGES)[0]
    counts = counts.astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def bin_labels(name: str) -> list[str]:
    """Labels of a histogram feature's bins."""
    if name == "pitch_class":
        return [str(i) for i in range(12)]
    if name == "interval":
        return [str(i) for i in range(-_INTERVAL_LIMIT, _INTERVAL_LIMIT + 1)]
    return list(_STEP_LABELS)


def _bandwidth(name: str, x: np.ndarray) -> float:
    """Silverman's rule, floored at the feature's resolution."""
    if len(x) < 2:
        return _MIN_BANDWIDTH[name]
    iqr = np.subtract(*np.percentile(x, [75, 25])) / 1.34
    spread = min(x.std(ddof=1), iqr) if iqr > 0 else x.std(ddof=1)
    return max(0.9 * spread * len(x) ** -0.2, _MIN_BANDWIDTH[name])


def _density(name: str, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of x on the grid (integrates to ~1 over it)."""
    if len(x) == 0:
        return np.zeros_like(grid)
    h = _bandwidth(name, x)
    z = (grid[:, None] - x[None, :]) / h
    return np.exp(-0.5 * z * z).sum(axis=1) / (len(x) * h * np.sqrt(2 * np.pi))


def _area(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid integral of y over x."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


@dataclass(frozen=True)
class Feature:
    """One feature for two sets: overlap, and what to draw (bin labels or a density grid)."""

    name: str
    overlap: float
    a: np.ndarray  # normalized histogram or density of set A
    b: np.ndarray
    labels: list[str] | None = None  # histogram features
    grid: np.ndarray | None = None  # density features
    mean_a: float | None = None  # per-melody features: mean of each set
    mean_b: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every feature's overlap between set A (e.g. real) and B (e.g. generated), and their mean."""

    features: dict[str, Feature]
    names: tuple[str, str]
    sizes: tuple[int, int]

    @property
    def mean_overlap(self) -> float:
        return float(np.mean([f.overlap for f in self.features.values()]))

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        a, b = self.names
        feats = {}
        for f in self.features.values():
            d = {"overlap": round(f.overlap, 4), a: np.round(f.a, 5).tolist(), b: np.round(f.b, 5).tolist()}
            if f.labels is not None:
                d["bins"] = f.labels
            else:
                d["grid"] = np.round(f.grid, 4).tolist()
                d[f"mean_{a}"], d[f"mean_{b}"] = round(f.mean_a, 4), round(f.mean_b, 4)
            feats[f.name] = d
        return {"sets": {a: self.sizes[0], b: self.sizes[1]}, "mean_overlap": round(self.mean_overlap, 4),
                "features": feats}


def compare(a: Sequence[Melody], b: Sequence[Melody], names: tuple[str, str] = ("real", "generated")) -> Comparison:
    """Overlap of every feature between melody sets ``a`` and ``b``."""
    if not a or not b:
        raise ComposerError(f"cannot compare melody sets of sizes {len(a)} and {len(b)}: both need melodies")
    va, vb = _note_values(a), _note_values(b)
    feats = {}
    for name in HISTOGRAMS:
        ha, hb = _histogram(name, va[name]), _histogram(name, vb[name])
        feats[name] = Feature(name, float(np.minimum(ha, hb).sum()), ha, hb, labels=bin_labels(name))
    sa = [melody_scalars(m) for m in a]
    sb = [melody_scalars(m) for m in b]
    for name in SCALARS:
        xa = np.array([s[name] for s in sa], dtype=np.float64)
        xb = np.array([s[name] for s in sb], dtype=np.float64)
        pad = 4 * max(_bandwidth(name, xa), _bandwidth(name, xb))
        grid = np.linspace(min(xa.min(), xb.min()) - pad, max(xa.max(), xb.max()) + pad, _GRID * 4)
        da, db = _density(name, xa, grid), _density(name, xb, grid)
        da, db = da / _area(da, grid), db / _area(db, grid)  # the tails cut off by the grid are negligible
        overlap = float(np.clip(_area(np.minimum(da, db), grid), 0.0, 1.0))
        keep = slice(None, None, 4)  # a lighter curve for JSON and the picture
        feats[name] = Feature(name, overlap, da[keep], db[keep], grid=grid[keep],
                              mean_a=float(xa.mean()), mean_b=float(xb.mean()))
    return Comparison(feats, names, (len(a), len(b)))


def openings(melodies: Sequence[Melody], n_bars: int) -> list[Melody]:
    """The first ``n_bars`` bars of every melody at least that long (equal-length comparison)."""
    return [m.bars(0, n_bars) for m in melodies if m.n_bars >= n_bars]


def plot(comparison: Comparison, path: str | Path, force: bool = False) -> Path:
    """A PNG with each feature's two distributions side by side; written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from composer.files import atomic_write

    a, b = comparison.names
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    for ax, f in zip(axes.ravel(), comparison.features.values()):
        if f.labels is not None:
            x = np.arange(len(f.labels))
            ax.bar(x - 0.2, f.a, 0.4, label=a, color="tab:blue")
            ax.bar(x + 0.2, f.b, 0.4, label=b, color="tab:orange")
            step = 1 if len(x) <= 18 else 2
            ax.set_xticks(x[::step], [f.labels[i] for i in x[::step]], rotation=60 if f.name in ("duration", "ioi") else 0,
                          fontsize=7)
        else:
            ax.fill_between(f.grid, f.a, alpha=0.4, label=a, color="tab:blue")
            ax.fill_between(f.grid, f.b, alpha=0.4, label=b, color="tab:orange")
        ax.set_title(f"{TITLES[f.name]}\noverlap {f.overlap:.2f}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{a} ({comparison.sizes[0]}) vs {b} ({comparison.sizes[1]}): mean overlap "
                 f"{comparison.mean_overlap:.3f}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return atomic_write(Path(path), buf.getvalue(), force=force)
