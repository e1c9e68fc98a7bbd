"""A reference the tests compare the library against: one melody's likelihood, the plain way."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from composer.model.hints import hints
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer


def sequence_nll(model: MelodyLSTM, ids: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood (nats) of ids[1:] given ids[:-1]; ids (T,) one melody, one forward call."""
    h = torch.from_numpy(hints(ids[:-1].tolist(), Tokenizer().vocab)).unsqueeze(0) if model.cfg.copy_hints else None
    logits, _ = model(ids[:-1].unsqueeze(0), hints=h)
    return F.cross_entropy(logits[0].float(), ids[1:], reduction="sum")
