"""Run every benchmark in one process and write benchmarks/RESULTS.md.

Each figure is a ratio against a reference measured in the same run, so results
compare across machines. Usage: ``python benchmarks/run.py [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITES = ["bench_tokenizer", "bench_train", "bench_generate", "bench_studio"]


def _versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for name in ("torch", "numpy", "symusic", "pretty_midi", "miditok"):
        try:
            from importlib.metadata import version

            out.append(f"{name} {version(name)}")
        except Exception:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores available{gpu}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller inputs, for a fast check")
    ap.add_argument("--only", nargs="*", default=SUITES, help="suites to run")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    rows = []
    for suite in args.only:
        print(f"== {suite}", flush=True)
        results = importlib.import_module(suite).run(quick=args.quick)
        for r in results:
            print(f"  {r['name']}: {r['value']:.3g} {r.get('unit', '')} (target {r.get('target', '-')})", flush=True)
            rows.append((suite, r))
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- Machine: {_machine()}",
        f"- Versions: {_versions()}",
        f"- Command: `python benchmarks/run.py{' --quick' if args.quick else ''}`",
        "",
        "| suite | figure | value | target |",
        "|---|---|---|---|",
    ]
    for suite, r in rows:
        lines.append(f"| {suite} | {r['name']} | {r['value']:.3g} {r.get('unit', '')} | {r.get('target', '-')} |")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
