"""Generated melodies against real ones: music statistics, bar repetition and originality."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from composer.errors import ComposerError
from composer.evaluate.stats import Comparison, compare, ending_stats, openings
from composer.model.bundle import ModelBundle
from composer.music.bars import bar_repetition
from composer.music.melody import Melody

Progress = Callable[[int, int], None]
DEFAULT_MAX_COPY = 12  # runs longer than this many notes count as copies


def reference_melodies(bundle: ModelBundle, folder: str | Path | None, data: str | Path | None = None,
                       progress: Progress | None = None) -> list[Melody]:
    """Real melodies to compare with: the usable files of ``folder``, else the checkpoint's validation files."""
    if folder is not None:
        from composer.data.corpus import load_corpus

        files = load_corpus(folder, progress=progress, version=bundle.tokenizer.version).files
    else:
        files = bundle.training_files("val", data, progress)
    return [bundle.tokenizer.decode(f.ids, title=f.path) for f in files]


def originality(index, melodies: Sequence[Melody], max_copy: int = DEFAULT_MAX_COPY) -> dict:
    """Longest run shared with a training melody, per melody and summarized (None: no index)."""
    if index is None:
        return {"available": False}
    runs = index.longest_copies(list(melodies))
    notes = np.array([len(m.notes) for m in melodies], dtype=np.float64)
    return {"available": True, "max_copy": max_copy, "longest": runs.tolist(),
            "median": float(np.median(runs)), "mean": round(float(runs.mean()), 2), "max": int(runs.max()),
            "over_max_copy": int((runs > max_copy).sum()),
            "mean_share_of_notes": round(float((runs / np.maximum(notes, 1)).mean()), 4)}


def repetition_summary(melodies: Sequence[Melody]) -> dict:
    """Mean and spread of the bar-repetition statistic."""
    r = np.array([bar_repetition(m) for m in melodies], dtype=np.float64)
    return {"mean": round(float(r.mean()), 4), "std": round(float(r.std()), 4)}


@dataclass(frozen=True)
class SampleReport:
    """Generated melodies compared with real openings of the same length."""

    comparison: Comparison
    data: dict  # plain data for JSON (comparison included)


def compare_samples(generated: Sequence[Melody], reference: Sequence[Melody], bars: int, index=None,
                    variants: Sequence[tuple[str, Sequence[Melody]]] = (),
                    max_copy: int = DEFAULT_MAX_COPY, loops_resampled: Mapping[str, int] | None = None) -> SampleReport:
    """Statistics of ``generated`` against the first ``bars`` bars of each long-enough reference
    melody, with originality and bar repetition; each of ``variants`` (label, melodies), e.g.
    sampled without planned repeats or with a form, is compared the same way. Endings and
    loops (``endings``) are the whole reference melodies' (a real tune's end, not its opening's
    cut), beside each generated set's; ``loops_resampled`` ('generated' or a variant's label ->
    count) says how many first draws were loops that generation resampled."""
    real = openings(reference, bars)
    if not real:
        raise ComposerError(f"no reference melody has {bars} bars: use fewer --bars or another --reference")
    cut = lambda ms: [m.bars(0, bars) if m.n_bars > bars else m for m in ms]  # noqa: E731
    gen = cut(generated)
    comp = compare(real, gen, names=("real", "generated"))
    data = {"bars": bars, "reference_melodies": len(reference), "reference_openings": len(real),
            "generated": len(gen), "statistics": comp.to_dict(),
            "originality": originality(index, gen, max_copy),
            "bar_repetition": {"real": repetition_summary(real), "generated": repetition_summary(gen)},
            "endings": {"real": ending_stats(reference), "generated": ending_stats(gen)},
            "variants": {}}
    for label, mels in variants:
        mels = cut(mels)
        vcomp = compare(real, mels, names=("real", label))
        data["variants"][label] = {"mean_overlap": round(vcomp.mean_overlap, 4),
                                   "overlaps": {k: round(f.overlap, 4) for k, f in vcomp.features.items()},
                                   "originality": originality(index, mels, max_copy),
                                   "bar_repetition": repetition_summary(mels)}
        data["endings"][label] = ending_stats(mels)
    for label, n in (loops_resampled or {}).items():
        if label in data["endings"]:
            data["endings"][label]["loops_resampled"] = int(n)
    rvr = real_vs_real(real, len(gen))
    if rvr is not None:
        data["real_vs_real"] = {"held_out": rvr.sizes[1], "mean_overlap": round(rvr.mean_overlap, 4),
                                "overlaps": {k: round(f.overlap, 4) for k, f in rvr.features.items()}}
    return SampleReport(comp, data)


def real_vs_real(real: Sequence[Melody], n: int, seed: int = 0) -> Comparison | None:
    """For scale: ``n`` real melodies (at most half of them) against the rest; None when too few."""
    n = min(n, len(real) // 2)
    if n < 2:
        return None
    pick = np.random.default_rng(seed).permutation(len(real))
    held = set(pick[:n].tolist())
    return compare([m for i, m in enumerate(real) if i not in held], [real[i] for i in sorted(held)],
                   names=("real", "held-out real"))
