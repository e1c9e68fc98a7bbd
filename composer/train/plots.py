"""The training loss curve as a PNG (matplotlib, Agg backend, imported only when drawing)."""

from __future__ import annotations

import io
from typing import Sequence


def loss_curve_png(history: Sequence[dict], baseline_bpn: float | None = None) -> bytes:
    """Two panels: train and validation loss (nats/token) per epoch; validation bits per note
    with the n-gram baseline as a dashed line."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    x = [_epoch_x(r) for r in history]
    ax1.plot(x, [r["train_loss"] for r in history], "o-", label="train (windows, dropout)")
    ax1.plot(x, [r["val_loss"] for r in history], "o-", label="validation (whole melodies)")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss (nats per token)")
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.plot(x, [r["val_bits_per_note"] for r in history], "o-", color="C1", label="LSTM")
    if baseline_bpn is not None:
        ax2.axhline(baseline_bpn, ls="--", color="gray", label=f"n-gram baseline ({baseline_bpn:.2f})")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation bits per note")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _epoch_x(row: dict) -> float:
    """Epoch number, fractional for an epoch cut short (by the time limit)."""
    steps, total = row.get("steps", 0), row.get("steps_per_epoch", 0)
    e = float(row["epoch"])
    return e - 1 + steps / total if total and steps and steps < total else e
