"""Forking a sampler: every row's whole state (network state, next-token logits, grammar, copy
hints, length/key/chord codes, likelihood and tokens so far) repeated ``k`` times in a row, so
``k`` continuations of each melody are drawn as one batch from where it stands, without feeding
anything again (the ending search draws a melody's last bar this way)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from composer.generate.sample import _NOISE_STEPS, Sampler
from composer.tokens.grammar import repeat_grammar


def fork(s: Sampler, k: int) -> Sampler:
    """A new sampler of ``s.batch * k`` rows: row ``i * k + j`` continues row ``i`` of ``s``."""
    out = copy.copy(s)
    out.batch = s.batch * k
    idx = torch.arange(s.batch).repeat_interleave(k)
    out.state = tuple(t.index_select(1, idx) for t in s.state)
    out.logits = s.logits.index_select(0, idx) if s.logits is not None else None
    out.grammar = repeat_grammar(s.grammar, k) if s.grammar is not None else None
    out._blocked_t = torch.from_numpy(out.grammar.blocked) if out.grammar is not None else None
    out._noise, out._noise_np, out._ni = None, None, _NOISE_STEPS  # fresh noise of the new width
    out.lik = s.lik.repeat(k)
    out._toks = out.lik.toks
    out._matchers = [m.copy() for m in s._matchers for _ in range(k)] if s._matchers is not None else None
    out._hint = np.repeat(s._hint, k)
    out.cond = s.cond.repeat(k)
    out.chord_guide = None  # a guide reads its own sampler: the caller makes one for the fork
    return out
