"""Whole-melody likelihood: each melody is read from BOS to EOS with the network's state
carried across the whole piece, in padded batches of similar lengths."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from composer.model import keycodes
from composer.model.hints import hints
from composer.model.lengths import codes
from composer.tokens.tokenizer import Tokenizer

LN2 = math.log(2.0)


@dataclass(frozen=True)
class SequenceScore:
    """Negative log-likelihood of a set of melodies (every token after BOS is predicted)."""

    nll_nats: float  # total over all melodies
    tokens: int  # predicted tokens (each melody's length minus its BOS)
    notes: int
    per_sequence: tuple[float, ...] = ()  # nats per melody, in input order

    @property
    def bits_per_note(self) -> float:
        return self.nll_nats / LN2 / max(self.notes, 1)

    @property
    def bits_per_token(self) -> float:
        return self.nll_nats / LN2 / max(self.tokens, 1)

    @property
    def nats_per_token(self) -> float:
        return self.nll_nats / max(self.tokens, 1)

    def to_dict(self) -> dict:
        return {"nll_nats": self.nll_nats, "tokens": self.tokens, "notes": self.notes,
                "bits_per_note": self.bits_per_note, "bits_per_token": self.bits_per_token}


def make_score(per_sequence: Sequence[float], seqs: Sequence[np.ndarray], tokenizer: Tokenizer) -> SequenceScore:
    """A SequenceScore from per-melody nats and the melodies themselves."""
    return SequenceScore(
        nll_nats=float(sum(per_sequence)),
        tokens=int(sum(max(len(s) - 1, 0) for s in seqs)),
        notes=int(sum(tokenizer.count_notes(s) for s in seqs)),
        per_sequence=tuple(float(x) for x in per_sequence),
    )


@torch.no_grad()
def token_nlls(model, tokenizer: Tokenizer, seqs: Sequence[np.ndarray], device: torch.device | str = "cpu",
               batch_size: int = 64, chunk: int = 1024) -> list[np.ndarray]:
    """NLL in nats of each sequence's tokens after the first (one float64 array per sequence,
    in input order).

    Sequences are sorted by length so a batch wastes little on padding; long ones run in
    ``chunk``-token slices with the state carried, bounding memory. A model that reads copy
    hints, length or key codes gets them computed from each sequence (as training does). The model is used as is (call ``.eval()``
    first for dropout-free scores)."""
    device = torch.device(device)
    lengths = np.array([len(s) for s in seqs])
    order = np.argsort(-lengths, kind="stable")
    out = [np.zeros(max(int(n) - 1, 0), dtype=np.float64) for n in lengths]
    with_hints, with_lengths = model.cfg.copy_hints, model.cfg.length_aware
    with_keys = getattr(model.cfg, "key_aware", False)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        t_max = int(lengths[idx[0]])
        if t_max < 2:
            continue
        ids = np.zeros((len(idx), t_max), dtype=np.int64)  # PAD = 0 past each end
        hint = np.zeros_like(ids) if with_hints else None
        code = np.zeros_like(ids) if with_lengths else None
        key = np.full_like(ids, keycodes.NO_KEY) if with_keys else None
        for r, i in enumerate(idx):
            ids[r, : lengths[i]] = seqs[i]
            if with_hints:
                hint[r, : lengths[i]] = hints(seqs[i], tokenizer.vocab)
            if with_lengths:
                code[r, : lengths[i]] = codes(seqs[i], tokenizer.vocab)
            if with_keys:
                key[r, : lengths[i]] = keycodes.codes(seqs[i], tokenizer.vocab)
        ids_t = torch.from_numpy(ids).to(device)
        hint_t = torch.from_numpy(hint).to(device) if with_hints else None
        code_t = torch.from_numpy(code).to(device) if with_lengths else None
        key_t = torch.from_numpy(key).to(device) if with_keys else None
        parts, state = [], None
        for s in range(0, t_max - 1, chunk):
            x = ids_t[:, s : min(s + chunk, t_max - 1)]
            y = ids_t[:, s + 1 : s + 1 + x.shape[1]]
            h = hint_t[:, s : s + x.shape[1]] if with_hints else None
            c = code_t[:, s : s + x.shape[1]] if with_lengths else None
            k = key_t[:, s : s + x.shape[1]] if with_keys else None
            logits, state = model(x, state, hints=h, lengths=c, **({"keys": k} if with_keys else {}))  # (B, t, V)
            parts.append(F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none").double().cpu())
        nll = torch.cat(parts, dim=1).numpy()  # (B, t_max - 1)
        for r, i in enumerate(idx):
            out[i] = nll[r, : lengths[i] - 1].copy()
    return out


def sequence_nlls(model, tokenizer: Tokenizer, seqs: Sequence[np.ndarray], device: torch.device | str = "cpu",
                  batch_size: int = 64, chunk: int = 1024) -> list[float]:
    """Summed NLL in nats of each sequence's tokens after the first, in input order."""
    return [float(t.sum()) for t in token_nlls(model, tokenizer, seqs, device, batch_size, chunk)]


@torch.no_grad()
def run_span(model, ids: Sequence[int], state, hints: Sequence[int] | None = None, chunk: int = 2048,
             lengths: Sequence[int] | None = None, keys: Sequence[int] | None = None,
             chords: Sequence[int] | None = None):
    """Feed one sequence's tokens from ``state`` in forward passes of ``chunk`` tokens:
    (logits (T, V), new state); ``hints`` (T,) for a model that reads copy hints, ``lengths``
    (T,) length codes for a length-aware one, ``keys`` (T,) key codes for a key-aware one,
    ``chords`` (T,) chord codes for a chord-aware one (None: no chords given)."""
    x = torch.tensor(list(ids), dtype=torch.long)[None]  # (1, T)
    h = torch.tensor(list(hints), dtype=torch.long)[None] if hints is not None else None
    c = torch.tensor(list(lengths), dtype=torch.long)[None] if lengths is not None else None
    k = {} if keys is None else {"keys": torch.tensor(list(keys), dtype=torch.long)[None]}
    if chords is not None:
        k["chords"] = torch.tensor(list(chords), dtype=torch.long)[None]
    parts = []
    for a in range(0, x.shape[1], chunk):
        out, state = model(x[:, a:a + chunk], state, hints=None if h is None else h[:, a:a + chunk],
                           lengths=None if c is None else c[:, a:a + chunk], **{n: t[:, a:a + chunk] for n, t in k.items()})
        parts.append(out[0])
    return torch.cat(parts), state

