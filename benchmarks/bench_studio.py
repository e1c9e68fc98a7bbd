"""Studio speed: a warm 16-bar ``POST /api/generate`` to a real ``compose studio`` (uvicorn,
the shipped model, default options) against ``python -c "import torch"``: target <= 0.3.

Usage: ``python benchmarks/bench_studio.py [--quick]``.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> float:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
    return time.perf_counter() - t


def _import_torch() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t


def warm_request(repeats: int) -> tuple[float, float]:
    """(median seconds of a warm 16-bar request, median seconds of import torch), interleaved."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "composer", "studio", "--no-browser", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/options", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"compose studio did not start: {proc.stderr.read()[-300:] if proc.poll() is not None else ''}")
                time.sleep(0.2)
        _post(f"{base}/api/generate", {"bars": 16, "seed": 0})  # warm-up: first request builds the copy index
        req, torch_s = [], []
        for r in range(repeats):
            req.append(_post(f"{base}/api/generate", {"bars": 16, "seed": r + 1}))
            torch_s.append(_import_torch())
        return statistics.median(req), statistics.median(torch_s)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(quick: bool = False) -> list[dict]:
    req, torch_s = warm_request(3 if quick else 7)
    return [
        {"name": "studio warm POST /api/generate bars 16 vs python -c 'import torch' (default model)",
         "value": req / torch_s, "target": "<= 0.3", "unit": "x"},
        {"name": "studio warm POST /api/generate bars 16", "value": req, "target": "-", "unit": "s"},
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['name']}: {row['value']:.3g} {row['unit']} (target {row['target']})")
