"""The lab's probes: how far back a trained model remembers, measured two ways.

* ``memory_by_distance``: the loss on notes that repeat the note at the same place k bars
  earlier. A model that still remembers bar b - k predicts such a note cheaply; once k lies past
  its memory the loss climbs back to that of notes that repeat nothing.
* ``gradient_by_distance``: the norm of d loss_t / d input_{t-k}, the slides' vanishing
  gradient: how much the input k tokens back can still move the prediction at t.

Both take any model with ``forward(ids (B, T), state=None, hints=None) -> (logits (B, T, V),
state)`` and an ``embed`` (nn.Embedding) that forward calls once on ``ids``, whatever its cell.
Library code: plain-data results, no printing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from composer.errors import ModelError, RequestError
from composer.model.hints import hints as copy_hints
from composer.model.scoring import token_nlls
from composer.tokens.tokenizer import BAR, PITCH, Tokenizer

DISTANCES = (1, 2, 4, 8, 16)  # bars back
NO_REPEAT = 0  # key of the reference in memory results: notes that repeat nothing within max(distances) bars


def repeat_table(tokenizer: Tokenizer, seq: Sequence[int],
                 within: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per note of a melody: (the token index of its Pitch token, its bar, a (notes, within) table
    whose column k - 1 says whether the note k bars earlier starts at the same place in its bar
    with the same pitch)."""
    ids = np.asarray(seq, dtype=np.int64)
    kinds = tokenizer.vocab.kinds[ids]
    starts, _, pitches = tokenizer.note_arrays(ids)
    at = np.flatnonzero(kinds == PITCH)[: len(starts)]
    bar = (np.cumsum(kinds == BAR) - 1)[at]
    bar_steps = int(tokenizer.vocab.values[ids[1]])  # the TimeSig token's value: steps per bar
    table = np.zeros((len(starts), within), dtype=bool)
    if len(starts):
        for k in range(1, within + 1):
            back = starts - k * bar_steps
            j = np.clip(np.searchsorted(starts, back), 0, len(starts) - 1)
            table[:, k - 1] = (back >= 0) & (starts[j] == back) & (pitches[j] == pitches)
    return at, bar, table


def _members(bar: np.ndarray, table: np.ndarray, k: int, nearest: bool) -> np.ndarray:
    """Mask of the notes averaged under distance ``k``; NO_REPEAT: notes with ``within`` bars
    before them that repeat nothing that far back (earlier ones have had less to remember)."""
    within = table.shape[1]
    if k == NO_REPEAT:
        return (bar >= within) & ~table.any(axis=1)
    if nearest:  # k is the nearest repeat: none at 1..k-1
        return table[:, k - 1] & ~table[:, : k - 1].any(axis=1)
    return table[:, k - 1]


def repeat_counts(tokenizer: Tokenizer, seqs: Sequence[Sequence[int]], distances: Sequence[int] = DISTANCES,
                  nearest: bool = True) -> dict[int, int]:
    """Notes per distance k that ``memory_by_distance`` averages over (key NO_REPEAT: the reference)."""
    within = max(distances)
    out = dict.fromkeys((*distances, NO_REPEAT), 0)
    for seq in seqs:
        _, bar, table = repeat_table(tokenizer, seq, within)
        for k in out:
            out[k] += int(_members(bar, table, k, nearest).sum())
    return out


def memory_by_distance(model, tokenizer: Tokenizer, seqs: Sequence[Sequence[int]],
                       distances: Sequence[int] = DISTANCES, nearest: bool = True,
                       device: torch.device | str = "cpu") -> dict[int, float]:
    """Mean loss (nats) of the Pitch tokens of notes that repeat the note at the same place in
    the bar k bars earlier, for each k in ``distances``; key NO_REPEAT (0) holds the reference:
    notes with at least max(distances) bars before them that repeat nothing that far back.

    With ``nearest`` a note counts under k only when k bars back is its nearest such repeat (a
    note also heard 1 bar back says nothing about remembering 16 bars). NaN where no note counts.
    The model is scored in eval mode (whole melodies, state carried) and left as it was."""
    within = max(distances)
    was_training = model.training
    model.eval()
    try:
        nlls = token_nlls(model, tokenizer, [np.asarray(s, dtype=np.int64) for s in seqs], device=device)
    finally:
        model.train(was_training)
    sums = dict.fromkeys((*distances, NO_REPEAT), 0.0)
    counts = dict.fromkeys(sums, 0)
    for seq, nll in zip(seqs, nlls):
        at, bar, table = repeat_table(tokenizer, seq, within)
        loss = nll[at - 1]  # nll[j] is the loss of token j + 1
        for k in sums:
            mask = _members(bar, table, k, nearest)
            sums[k] += float(loss[mask].sum())
            counts[k] += int(mask.sum())
    return {k: sums[k] / counts[k] if counts[k] else float("nan") for k in sums}


def input_gradients(model, ids: torch.Tensor, targets: torch.Tensor, at: int = -1,
                    hints: torch.Tensor | None = None) -> torch.Tensor:
    """d loss_at / d input_s for every position s: (B, T, E), where loss_at is the cross-entropy
    of ``targets`` (B,) at position ``at`` of each row and input_s the token embedding at s
    (before copy hints and dropout are added). Rows are independent. Runs in eval mode (no
    dropout) and leaves the model's mode and its parameters' ``.grad`` as they were."""
    captured: list[torch.Tensor] = []

    def as_leaf(module, args, out):  # the embedding's output becomes the tensor we differentiate by
        leaf = out.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    handle = model.embed.register_forward_hook(as_leaf)
    was_training = model.training
    model.eval()
    try:
        # cuDNN's RNN backward refuses eval mode; the native kernels give the same gradients
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            logits, _ = model(ids, None, hints=hints)  # (B, T, V)
            if not captured:
                raise ModelError("the model's forward never called model.embed: "
                                 "the gradient probe cannot see its inputs")
            loss = F.cross_entropy(logits[:, at], targets, reduction="sum")  # rows independent: sum = each row's own
            (grad,) = torch.autograd.grad(loss, captured[0])
    finally:
        handle.remove()
        model.train(was_training)
    return grad


def gradient_windows(tokenizer: Tokenizer, seqs: Sequence[Sequence[int]], windows: int, seq_len: int,
                     seed: int = 0) -> list[tuple[int, int]]:
    """(melody index, start) of ``windows`` windows of seq_len + 1 tokens (inputs and the last
    one's target), spread over the melodies long enough to hold one, at seeded random starts."""
    long_enough = [i for i, s in enumerate(seqs) if len(s) > seq_len]
    if not long_enough:
        longest = max((len(s) for s in seqs), default=0)
        raise RequestError(f"the gradient probe needs melodies of more than {seq_len} tokens; the longest has "
                           f"{longest}: pass a smaller seq_len")
    rng = np.random.default_rng(seed)
    order = rng.permutation(long_enough)
    picks = [int(order[w % len(order)]) for w in range(windows)]
    return [(i, int(rng.integers(0, len(seqs[i]) - seq_len))) for i in picks]


def gradient_by_distance(model, tokenizer: Tokenizer, seqs: Sequence[Sequence[int]], max_back: int = 64,
                         windows: int = 32, seq_len: int = 128, seed: int = 0) -> dict[int, float]:
    """Mean over windows of |d loss_t / d input_{t-k}| for k = 1..max_back tokens back, where t is
    each window's last position and the model starts the window from a zero state."""
    if not 1 <= max_back < seq_len:
        raise RequestError(f"max_back must be in [1, seq_len - 1 = {seq_len - 1}], got {max_back}")
    spots = gradient_windows(tokenizer, seqs, windows, seq_len, seed)
    device = next(model.parameters()).device
    rows = [np.asarray(seqs[i][s: s + seq_len + 1], dtype=np.int64) for i, s in spots]
    block = torch.from_numpy(np.stack(rows)).to(device)  # (W, seq_len + 1)
    hint = None
    if model.cfg.copy_hints:  # hints from the whole melody, as scoring computes them
        hint = torch.from_numpy(np.stack([copy_hints(seqs[i], tokenizer.vocab)[s: s + seq_len]
                                          for i, s in spots])).to(device)
    grad = input_gradients(model, block[:, :-1], block[:, -1], at=-1, hints=hint)  # (W, T, E)
    norms = grad.norm(dim=-1).mean(dim=0).double().cpu().numpy()  # (T,)
    t = seq_len - 1
    return {k: float(norms[t - k]) for k in range(1, max_back + 1)}
