"""How one token is drawn: sampling settings, the Gumbel-max draw under the grammar's mask
(temperature, top-k, nucleus), and a sampled sequence with its likelihood."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from composer.music.melody import PITCH_MAX, PITCH_MIN


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are drawn; trusted as given (``GenerateRequest`` validates user values)."""

    temperature: float = 1.0  # divides the logits; higher = more surprising
    top_k: int = 0  # keep only the k most likely allowed tokens (0 = all)
    top_p: float = 1.0  # nucleus: smallest set of allowed tokens with this much probability
    pitch_range: tuple[int, int] = (PITCH_MIN, PITCH_MAX)  # inclusive MIDI pitches for new notes


@dataclass(frozen=True)
class Generated:
    """One sampled sequence with the model's log-likelihood of it."""

    ids: tuple[int, ...]  # BOS ... EOS
    nll_nats: float  # -log p of every token after BOS, model at temperature 1
    notes: int  # notes scored: after Sampler.reset_likelihood (a prime), the new bars' only

    @property
    def bits_per_note(self) -> float:
        return self.nll_nats / math.log(2) / max(self.notes, 1)


def gumbel_draw(logits: torch.Tensor, noise: torch.Tensor, blocked: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """One id per row from softmax(logits / T) restricted to ~blocked, given Gumbel(0, 1) noise
    (B, V) -> (B,); top-k and top-p narrow the allowed tokens first."""
    if cfg.top_k == 0 and cfg.top_p >= 1.0:
        z = torch.add(noise, logits, alpha=1.0 / cfg.temperature)
        return z.masked_fill_(blocked, -math.inf).argmax(1)
    z = (logits / cfg.temperature).masked_fill_(blocked, -math.inf)
    if 0 < cfg.top_k < z.shape[1]:
        kth = z.topk(cfg.top_k, dim=1).values[:, -1:]
        z.masked_fill_(z < kth, -math.inf)
    if cfg.top_p < 1.0:
        srt, idx = z.sort(dim=1, descending=True)
        p = srt.softmax(dim=1)
        drop = (p.cumsum(1) - p) > cfg.top_p  # keeps the top token always
        z.scatter_(1, idx, srt.masked_fill(drop, -math.inf))
    return (z + noise).argmax(1)
