"""Tokenizer speed, measured in one run against references on the same files.

- ours: composer.music.midi_io.read_report + composer.tokens.tokenizer.encode, per file
- MidiTok REMI with its default TokenizerConfig, tokenizing the same files from disk
- pretty_midi: parsing the file alone (no tokenizing)
- load_corpus on the folk corpus: cold (empty cache, worker processes) vs cached

on midi_corpus/ (folk tunes and chorales) and on real multi-track files (the MIDI files that
ship inside music21, plus tests/fixtures/real). Usage: ``python benchmarks/bench_tokenizer.py [--quick]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def folk_files(quick: bool) -> list[Path]:
    from composer.data.corpus import find_midi_files

    folder = ROOT / "midi_corpus"
    files = find_midi_files(folder) if folder.is_dir() else []
    return files[:: max(1, len(files) // 300)] if quick else files


def multitrack_files() -> list[Path]:
    """Real multi-track files: music21's own MIDI test files and our fixtures (all that is on disk)."""
    import music21

    base = Path(music21.__file__).parent
    found = sorted(base.glob("midi/testPrimitive/*.mid")) + sorted(base.glob("omr/*.mid"))
    found += sorted((ROOT / "tests" / "fixtures" / "real").glob("*.mid"))
    from symusic import Score

    return [p for p in found if len(Score(str(p)).tracks) > 1]


def _ours(path: Path) -> None:
    from composer.music.midi_io import read_report
    from composer.tokens.tokenizer import Tokenizer

    Tokenizer().encode(read_report(path).melody)


def _contenders():
    import pretty_midi
    from miditok import REMI, TokenizerConfig

    remi = REMI(TokenizerConfig())
    return {
        "ours": _ours,
        "miditok": lambda p: remi(p),
        "pretty_midi": lambda p: pretty_midi.PrettyMIDI(str(p)),
    }


def time_per_file(files: list[Path], repeats: int) -> dict[str, float]:
    """Best total over ``repeats`` rounds (contenders interleaved so load noise hits all), per file, seconds."""
    fns = _contenders()
    for fn in fns.values():  # warm-up: imports, caches
        for p in files[:3]:
            fn(p)
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for p in files:
                fn(p)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: v / len(files) for k, v in best.items()}


def cache_ratio(files: list[Path]) -> tuple[float, float]:
    """(cold seconds, cached seconds) of load_corpus on a copy of ``files``."""
    from composer.data.corpus import load_corpus

    with tempfile.TemporaryDirectory() as tmp:
        data, cache = Path(tmp) / "data", Path(tmp) / "cache"
        data.mkdir()
        for i, p in enumerate(files):
            shutil.copy(p, data / f"{i:05d}_{p.name}")
        t0 = time.perf_counter()
        load_corpus(data, cache_dir=cache)
        cold = time.perf_counter() - t0
        cached = min(_timed(lambda: load_corpus(data, cache_dir=cache)) for _ in range(3))
    return cold, cached


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict]:
    """Figures as dicts(name, value, target, unit)."""
    warnings.filterwarnings("ignore")
    out = []
    sets = [("folk", folk_files(quick), 2 if quick else 3), ("multi-track", multitrack_files(), 2 if quick else 5)]
    for label, files, repeats in sets:
        if not files:
            continue
        t = time_per_file(files, repeats)
        out += [
            {"name": f"{label} ({len(files)} files): ours read+encode", "value": t["ours"] * 1e3, "target": "-", "unit": "ms/file"},
            {"name": f"{label}: MidiTok REMI tokenize", "value": t["miditok"] * 1e3, "target": "-", "unit": "ms/file"},
            {"name": f"{label}: pretty_midi parse only", "value": t["pretty_midi"] * 1e3, "target": "-", "unit": "ms/file"},
            {"name": f"{label}: ours / MidiTok time", "value": t["ours"] / t["miditok"], "target": "<= 1", "unit": "x"},
            {"name": f"{label}: ours / pretty_midi parse time", "value": t["ours"] / t["pretty_midi"], "target": "<= 1.2", "unit": "x"},
        ]
    folk = sets[0][1]
    if folk:
        cold, cached = cache_ratio(folk)
        out += [
            {"name": f"load_corpus cold ({len(folk)} files)", "value": cold, "target": "-", "unit": "s"},
            {"name": "load_corpus cached", "value": cached, "target": "-", "unit": "s"},
            {"name": "load_corpus cold / cached", "value": cold / cached, "target": ">= 20", "unit": "x"},
        ]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a sample of the corpus, fewer repeats")
    args = ap.parse_args()
    for r in run(args.quick):
        print(f"{r['name']}: {r['value']:.3g} {r['unit']} (target {r['target']})")
