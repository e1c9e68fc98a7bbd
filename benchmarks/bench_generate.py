"""Generation speed, as ratios measured in the same run.

1. Constrained sampling at batch 1 (grammar mask, Gumbel-max draw, likelihood
   bookkeeping, following a training tune's bar plan when the model has them) against
   a bare fused-gate step + argmax on the same weights: one ``addmm`` per layer over the
   concatenated input and hidden weights, as the issue defines it: target >= 0.8.
2. ``compose generate --bars 16`` end to end against ``python -c "import torch"``:
   target <= 1.5.
3. ``compose generate --num 64`` against ``--num 1``: target <= 2.

Uses the shipped default model when present, else a random-weight stand-in of the
default ModelConfig (named so in the figures). Usage: ``python benchmarks/bench_generate.py [--quick]``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _model():
    """(model, checkpoint path or None, label, bar plans or None): the default model, else a stand-in."""
    import torch

    from composer.generate.api import Composer
    from composer.model.checkpoint import DEFAULT_MODEL, save_checkpoint
    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM

    if DEFAULT_MODEL.is_file():
        composer = Composer.load()
        model = composer.bundle.model
        c = model.cfg
        plans = composer.bundle.record.bar_plans if composer.default_form == "corpus" else None  # as generate samples
        inputs = [n for n, on in (("copy hints", c.copy_hints), ("length codes", c.length_aware), ("key codes", c.key_aware), ("chord codes", getattr(c, "chord_aware", False))) if on]
        hinted = " with " + ", ".join(inputs) if inputs else ""
        return model, None, f"default model {c.num_layers}x{c.hidden_size}{hinted}", plans, composer.bundle.tokenizer
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig()).eval()
    path = Path(tempfile.mkdtemp()) / "standin.pt"
    save_checkpoint(path, model, extra={"data": {"meters": {"4/4": 100, "6/8": 80}, "keys": {"G": 50, "D": 40}}})
    c = model.cfg
    return model, path, f"random-weight {c.num_layers}x{c.hidden_size} stand-in", None, None


def sampling_vs_bare_step(model, repeats: int, bars: int, table=None, tokenizer=None) -> tuple[float, float, float]:
    """(sampler tokens/s, bare step tokens/s, ratio) at batch 1: each repeat runs both back to
    back (alternating which goes first) so they share the machine's load; medians are reported."""
    import torch

    from composer.music.meter import TimeSignature
    from composer.generate.sample import Sampler, SamplingConfig
    from composer.generate.structure import draw_plans
    from composer.tokens.tokenizer import Tokenizer

    plans = draw_plans(table, 1, bars, torch.Generator().manual_seed(0))
    tokenizer = tokenizer or Tokenizer()

    fused = []  # per layer: ([W_ih; W_hh]^T, b_ih + b_hh)
    for k in range(model.cfg.num_layers):
        w = torch.cat([getattr(model.lstm, f"weight_ih_l{k}"), getattr(model.lstm, f"weight_hh_l{k}")], dim=1)
        fused.append((w.t().contiguous().detach(), (getattr(model.lstm, f"bias_ih_l{k}") + getattr(model.lstm, f"bias_hh_l{k}")).detach()))

    def sampler() -> tuple[float, int]:
        s = Sampler(model, tokenizer, 1, SamplingConfig(), torch.Generator().manual_seed(0), total_bars=bars)
        t = time.perf_counter()
        s.start([TimeSignature(4, 4)], {})
        s.sample_bars(bars, plans=plans)
        s.results()
        return time.perf_counter() - t, len(s._toks) - 1  # model steps: every token but the final EOS

    @torch.no_grad()
    def bare(steps: int) -> float:
        h, c = model.init_state(1)
        tok = torch.tensor([1])
        t = time.perf_counter()
        for _ in range(steps):
            x, hs, cs = model.embed(tok), [], []
            for k, (w, b) in enumerate(fused):
                i, f, g, o = torch.addmm(b, torch.cat([x, h[k]], dim=1), w).chunk(4, dim=1)
                ck = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
                x = torch.sigmoid(o) * torch.tanh(ck)
                hs.append(x)
                cs.append(ck)
            h, c = torch.stack(hs), torch.stack(cs)
            tok = model._logits(x).argmax(1)
        return time.perf_counter() - t

    _, steps = sampler()  # warm-up, and the step count
    bare(steps)
    s_rate, b_rate, ratios = [], [], []
    for r in range(repeats):
        if r % 2:
            tb = bare(steps)
            ts, n = sampler()
        else:
            ts, n = sampler()
            tb = bare(n)
        s_rate.append(n / ts)
        b_rate.append(n / tb)
        ratios.append(tb / ts)
    return statistics.median(s_rate), statistics.median(b_rate), statistics.median(ratios)


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-300:]}")
    return time.perf_counter() - t


def end_to_end(ckpt: Path | None, repeats: int, out: Path) -> dict[str, float]:
    """Median wall seconds of import torch, generate --num 1 and --num 64 (interleaved)."""
    base = [sys.executable, "-m", "composer", "generate", "--bars", "16", "--seed", "1", "--outdir", str(out)]
    if ckpt is not None:
        base += ["--checkpoint", str(ckpt)]
    cmds = {"import torch": [sys.executable, "-c", "import torch"], "num 1": base, "num 64": base + ["--num", "64"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for k, c in cmds.items():
        _timed(c)  # warm the file cache
    for _ in range(repeats):
        for k, c in cmds.items():
            times[k].append(_timed(c))
    return {k: statistics.median(v) for k, v in times.items()}


def run(quick: bool = False) -> list[dict]:
    """The figures, each with its target."""
    import torch

    torch.set_num_threads(1)  # as `compose generate` does for one melody (composer/generate/api.py)
    model, ckpt, label, table, tokenizer = _model()
    s_tps, b_tps, ratio = sampling_vs_bare_step(model, 5 if quick else 15, 16 if quick else 64, table, tokenizer)
    rows = [
        {"name": f"sampling batch 1 vs bare fused-gate step ({label}, 1 thread)", "value": ratio, "target": ">= 0.8", "unit": "x"},
        {"name": f"sampling batch 1 tokens/s ({label})", "value": s_tps, "target": "-", "unit": "tok/s"},
        {"name": f"bare fused-gate step tokens/s ({label})", "value": b_tps, "target": "-", "unit": "tok/s"},
    ]
    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM

    small = MelodyLSTM(ModelConfig(embed_size=256, hidden_size=256, num_layers=2, length_aware=True)).eval()  # overhead shows most here
    s_tps, b_tps, ratio = sampling_vs_bare_step(small, 5 if quick else 15, 16 if quick else 64)
    rows += [
        {"name": "sampling batch 1 vs bare fused-gate step (random-weight 2x256 with copy hints and length codes, 1 thread)", "value": ratio, "target": ">= 0.8", "unit": "x"},
        {"name": "sampling batch 1 tokens/s (2x256)", "value": s_tps, "target": "-", "unit": "tok/s"},
        {"name": "bare fused-gate step tokens/s (2x256)", "value": b_tps, "target": "-", "unit": "tok/s"},
    ]
    tmp = Path(tempfile.mkdtemp())
    try:
        e2e = end_to_end(ckpt, 2 if quick else 5, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ckpt is not None:
            shutil.rmtree(ckpt.parent, ignore_errors=True)
    rows += [
        {"name": f"compose generate --bars 16 vs python -c 'import torch' ({label})", "value": e2e["num 1"] / e2e["import torch"],
         "target": "<= 1.5", "unit": "x"},
        {"name": "compose generate --num 64 vs --num 1", "value": e2e["num 64"] / e2e["num 1"], "target": "<= 2", "unit": "x"},
        {"name": "python -c 'import torch'", "value": e2e["import torch"], "target": "-", "unit": "s"},
        {"name": "compose generate --bars 16", "value": e2e["num 1"], "target": "-", "unit": "s"},
        {"name": "compose generate --bars 16 --num 64", "value": e2e["num 64"], "target": "-", "unit": "s"},
    ]
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['name']}: {r['value']:.3g} {r['unit']} (target {r['target']})")
