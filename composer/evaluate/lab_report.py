"""The lab's report: plot-ready series, PNG line plots and the Markdown summary.

Plain data in, bytes or text out: the probes (composer.evaluate.lab_probes) and the training
runs produce the numbers, ``compose lab`` decides the file names. matplotlib (Agg backend) is
imported only when drawing, as in composer.train.plots.

A series is ``{label: (xs, ys)}`` or ``{label: (xs, ys, fmt)}`` with a matplotlib format string
such as ``"C0o-"`` (colour, marker, line).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

from composer.files import atomic_write

Series = Mapping[str, tuple]  # label -> (xs, ys) or (xs, ys, fmt)


def _epoch_x(row: Mapping) -> float:
    """Epoch number, fractional for an epoch a time limit cut short (metrics.csv gives strings)."""
    e = float(row["epoch"])
    steps, total = float(row.get("steps") or 0), float(row.get("steps_per_epoch") or 0)
    return e - 1 + steps / total if total and steps and steps < total else e


def dropout_curves(histories: Mapping[str, Sequence[Mapping]]) -> dict[str, tuple[list[float], list[float], str]]:
    """Training and validation loss (nats per token) per epoch of each run, e.g. ``{"dropout 0.3":
    history}`` with history as ``TrainResult.history`` or metrics.csv's rows: one colour per run,
    validation solid, training dashed (the gap between them is what the model memorised)."""
    out: dict[str, tuple[list[float], list[float], str]] = {}
    for i, (name, rows) in enumerate(histories.items()):
        x = [_epoch_x(r) for r in rows]
        out[f"{name} train"] = (x, [float(r["train_loss"]) for r in rows], f"C{i % 10}--")
        out[f"{name} validation"] = (x, [float(r["val_loss"]) for r in rows], f"C{i % 10}o-")
    return out


def by_distance_series(per_run: Mapping[str, Mapping[int, float]], skip: Sequence[int] = (0,)) -> dict[str, tuple]:
    """``{cell: {k: value}}`` (a probe's result per run) as series over k, in k order; keys in
    ``skip`` (the memory probe's reference, 0) left out."""
    out = {}
    for i, (name, by_k) in enumerate(per_run.items()):
        by_k = _by_k(by_k)
        ks = sorted(k for k in by_k if k not in skip)
        out[name] = (ks, [float(by_k[k]) for k in ks], f"C{i % 10}o-")
    return out


def line_plot_png(series: Series, title: str, xlabel: str, ylabel: str, log_y: bool = False,
                  log_x: bool = False, hlines: Mapping[str, float] | None = None) -> bytes:
    """One panel of labelled lines as PNG bytes; ``hlines`` adds dotted reference levels."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    for label, line in series.items():
        xs, ys, *fmt = line
        ax.plot(list(xs), list(ys), *(fmt or ["o-"]), label=label)
    for i, (label, y) in enumerate((hlines or {}).items()):
        if math.isfinite(y):
            ax.axhline(y, ls=":", color=f"C{i % 10}", label=label)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if series or hlines:
        ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_lines(series: Series, title: str, xlabel: str, ylabel: str, path: Path, log_y: bool = False,
               **options) -> Path:
    """Write ``line_plot_png`` to ``path`` atomically (replacing a file there); returns the path."""
    return atomic_write(Path(path), line_plot_png(series, title, xlabel, ylabel, log_y=log_y, **options), force=True)


def _by_k(by_k: Mapping) -> dict[int, float]:
    """A probe's result with int keys again (JSON turns them into strings)."""
    return {int(k): float(v) for k, v in by_k.items()}


def _num(x, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def report_markdown(results: Mapping) -> str:
    """The lab's Markdown report. ``results`` (every part optional):

    * ``command``, ``minutes``: how the runs were made;
    * ``cells``: rows of {cell, copy_hints, parameters, minutes, val_bits_per_note};
    * ``memory``: {cell: memory_by_distance result} (key 0: the repeat-free reference);
    * ``gradient``: {cell: gradient_by_distance result};
    * ``dropout``: {run name: training history};
    * ``plots``: {caption: PNG path relative to the report}.
    """
    lines = ["# The RNN lesson, measured", ""]
    if results.get("command"):
        lines += [f"Made with `{results['command']}`" + (f" ({results['minutes']} minutes per run)." if
                                                         results.get("minutes") is not None else "."), ""]
    cells = results.get("cells") or []
    if cells:
        lines += ["## Cells", "", "| cell | copy hints | parameters | minutes | validation bits/note |",
                  "|---|---|---:|---:|---:|"]
        for r in cells:
            lines.append(f"| {r['cell']} | {'yes' if r.get('copy_hints') else 'no'} | {int(r['parameters']):,} | "
                         f"{_num(r.get('minutes'), 1)} | {_num(r.get('val_bits_per_note'), 3)} |")
        lines.append("")
    memory = results.get("memory") or {}
    if memory:
        lines += ["## Memory: loss on notes that repeat a note k bars back (nats)", ""]
        for cell, by_k in memory.items():
            by_k = _by_k(by_k)
            ks = sorted(k for k in by_k if k != 0)
            parts = ", ".join(f"k={k}: {_num(by_k[k])}" for k in ks)
            lines.append(f"- {cell}: {parts}; repeat-free notes {_num(by_k.get(0))}")
        lines.append("")
    gradient = results.get("gradient") or {}
    if gradient:
        lines += ["## Vanishing gradient: |d loss_t / d input_(t-k)|", ""]
        for cell, by_k in gradient.items():
            by_k = _by_k(by_k)
            ks = sorted(by_k)
            first, last = by_k[ks[0]], by_k[ks[-1]]
            ratio = last / first if first else float("nan")
            lines.append(f"- {cell}: {first:.3g} at k={ks[0]}, {last:.3g} at k={ks[-1]} ({ratio:.2g} of the first)")
        lines.append("")
    dropout = results.get("dropout") or {}
    if dropout:
        lines += ["## Dropout: last epoch's losses (nats per token)", ""]
        for name, rows in dropout.items():
            if rows:
                tr, va = float(rows[-1]["train_loss"]), float(rows[-1]["val_loss"])
                lines.append(f"- {name}: train {tr:.3f}, validation {va:.3f} (gap {va - tr:+.3f})")
        lines.append("")
    for caption, png in (results.get("plots") or {}).items():
        lines += [f"![{caption}]({png})", ""]
    return "\n".join(lines).rstrip() + "\n"
