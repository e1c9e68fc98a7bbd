"""Warm start: begin a run from another checkpoint's weights instead of random ones.

Fine-tuning the shipped model on your own tunes takes minutes where training from scratch takes
an hour and more, and a model carries over to a newer vocabulary or new inputs without starting
again: token rows (embedding, copy-hint embedding, output bias) are matched by the token's
string; tokens the old vocabulary lacked start with zero embeddings and an output bias as low
as the least likely old token's (so the model does not start by guessing them), and inputs the
old model did not have (the length or key inputs) start at zero, so the warm model at step 0
predicts exactly what the old one did.
"""

from __future__ import annotations

import torch

from composer.errors import TrainingError
from composer.model.bundle import ModelBundle, load_bundle
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer

SHAPE_FIELDS = ("cell", "num_layers", "hidden_size", "embed_size", "copy_hints", "tie_weights")  # must agree
_BY_TOKEN = ("embed.weight", "hint_token.weight", "head.bias", "head.weight")  # rows indexed by token id


def load_init(source: str, cfg: ModelConfig) -> ModelBundle:
    """The checkpoint ``--init`` names ('shipped': the shipped model), checked against the run's
    network ``cfg`` before any data is read; CheckpointError / TrainingError in one line."""
    bundle = load_bundle(None if source == "shipped" else source)
    old = bundle.model.cfg
    differ = [f for f in SHAPE_FIELDS if getattr(old, f) != getattr(cfg, f)]
    if differ:
        f = differ[0]
        raise TrainingError(f"--init {bundle.name} has {f.replace('_', ' ')} {getattr(old, f)}, this run "
                            f"{getattr(cfg, f)}: give the same --{_option(f)} (or train from scratch)")
    return bundle


def warm_start(model: MelodyLSTM, tokenizer: Tokenizer, bundle: ModelBundle) -> str:
    """Copy ``bundle``'s weights (see ``load_init``) into ``model``; returns what was copied, in words."""
    old = bundle.model
    old_index = {t: i for i, t in enumerate(bundle.tokenizer.vocab.tokens)}
    pairs = [(i, old_index[t]) for i, t in enumerate(tokenizer.vocab.tokens) if t in old_index]
    new_rows = torch.tensor([i for i, t in enumerate(tokenizer.vocab.tokens) if t not in old_index], dtype=torch.long)
    dst_rows = torch.tensor([d for d, _ in pairs], dtype=torch.long)
    src_rows = torch.tensor([s for _, s in pairs], dtype=torch.long)
    state = old.state_dict()
    copied = zeroed = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            q = state.get(name)
            if q is None:
                p.zero_()  # an input the old model lacked: silent until training finds a use for it
                zeroed += 1
                continue
            q = q.to(p.dtype)
            if name in _BY_TOKEN:
                p[dst_rows.to(p.device)] = q[src_rows].to(p.device)
                if len(new_rows):  # tokens the old model never saw: silent inputs, unlikely outputs
                    p[new_rows.to(p.device)] = q.min().to(p.device) if p.dim() == 1 else 0.0
            elif q.shape == p.shape:
                p.copy_(q.to(p.device))
            else:
                raise TrainingError(f"--init {bundle.name}: weight {name} has shape {tuple(q.shape)}, this run's "
                                    f"{tuple(p.shape)}")
            copied += 1
    model.train(model.training)  # drop cached fused copies of the weights
    return (f"warm start from {bundle.name}: {copied} weight tensors copied ({len(pairs)} of {len(tokenizer)} token "
            f"rows by name, {len(new_rows)} new tokens)" + (f", {zeroed} new inputs at zero" if zeroed else ""))


def _option(field: str) -> str:
    return {"num_layers": "layers", "hidden_size": "hidden", "embed_size": "embed", "copy_hints": "copy-hints",
            "tie_weights": "tie-weights"}.get(field, field)
