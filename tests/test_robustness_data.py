"""Robustness of the data and model files (issue 17): data folders with huge files and symlinked
folders, damaged corpus caches and copy indexes, crafted checkpoints (zip bombs, absurd sizes,
wrong types, NaN weights), the corpus builder's --force, and the one-line messages of each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from composer.data.corpus import find_midi_files, load_corpus
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import MAX_FILE_BYTES, read_melody, write_midi
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def tune(seed: int, bars: int = 4) -> Melody:
    """A small random 4/4 melody."""
    rng = np.random.default_rng(seed)
    notes, t = [], 0
    while t + 12 <= bars * 48:
        d = int(rng.choice([6, 12, 24]))
        if t + d > bars * 48:
            break
        notes.append(Note(t, d, int(rng.integers(60, 76))))
        t += d
    return Melody(tuple(notes), TimeSignature(4, 4), Key(0), bars)


def tunes(folder: Path, n: int, start: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [write_midi(tune(start + i), folder / f"tune{start + i:02d}.mid").name for i in range(n)]


# ---- a data folder: huge files, symlinked folders ------------------------------------------------------

_UNDER_A_MEMORY_LIMIT = """
import json, resource, sys
import composer.data.corpus, composer.music.midi_io, symusic  # everything loaded before the limit
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))  # 1 GiB more to work in
c = composer.data.corpus.load_corpus(sys.argv[1], cache_dir=sys.argv[2], workers=1)
print(json.dumps({"files": [f.path for f in c.files], "skipped": dict(c.skipped)}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
def test_a_huge_file_is_skipped_by_its_size_before_it_is_read(tmp_path: Path):
    data = tmp_path / "tunes"
    tunes(data, 2)
    huge = data / "huge.mid"
    with open(huge, "wb") as f:
        f.truncate(4 * 2**30)  # sparse: 4 GiB long, no disk used
    # Read whole to hash it, the file would need 4 GiB of memory: the child has 1 GiB to spare.
    res = subprocess.run([sys.executable, "-c", _UNDER_A_MEMORY_LIMIT, str(data), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["files"] == ["tune00.mid", "tune01.mid"]
    assert out["skipped"] == {"huge.mid": f"file too large ({4 * 2**30} bytes)"}
    # Just over the reader's limit is skipped the same way, with the words the reader uses.
    with open(huge, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    assert dict(load_corpus(data, workers=1).skipped) == {"huge.mid": f"file too large ({MAX_FILE_BYTES + 1} bytes)"}


def test_symlinked_folders_are_followed_once(tmp_path: Path):
    data, elsewhere = tmp_path / "tunes", tmp_path / "elsewhere"
    tunes(data / "own", 1)
    tunes(elsewhere / "deep", 1, start=5)
    (data / "linked").symlink_to(elsewhere)  # a collection kept elsewhere, linked in
    (data / "again").symlink_to(elsewhere)  # the same one twice: read once
    (data / "alias").symlink_to(data / "own")  # a folder already in the data: read under its own name
    (data / "own" / "loop").symlink_to(data)  # a loop: not entered
    (data / "dangling").symlink_to(tmp_path / "nowhere")
    names = [p.relative_to(data).as_posix() for p in find_midi_files(data)]
    assert names == ["again/deep/tune05.mid", "own/tune00.mid"]
    c = load_corpus(data, workers=1)
    assert [f.path for f in c.files] == names and c.skipped == ()


# ---- a damaged corpus cache ----------------------------------------------------------------------------

def _rewrite_cache(cache: Path, change, resign: bool) -> None:
    """Rewrite the folder's one cache file with ``change(arrays)`` applied (a valid zip, bad content)."""
    from composer.data.cache import _CACHE_ARRAYS, _checksum

    (path,) = cache.glob("corpus-*.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    if resign:  # the arrays do not fit together, but the checksum matches them
        arrays["checksum"] = np.array(_checksum({k: arrays[k] for k in _CACHE_ARRAYS}))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _shift(a):
    a["offsets"][1:-1] += 1  # every melody's tokens start one later


def _beyond_vocab(a):
    a["ids"][3] = len(TOK) + 5  # a token id past the vocabulary: IndexError when decoded


def _truncated(a):
    a["ids"] = a["ids"][:-7]  # the last melody loses its end


@pytest.mark.parametrize("change, resign", [(_shift, False), (_beyond_vocab, False), (_beyond_vocab, True),
                                            (_truncated, True)],
                         ids=["offsets-shifted", "id-beyond-vocab", "id-beyond-vocab-resigned", "ids-truncated-resigned"])
def test_a_damaged_corpus_cache_is_rebuilt(tmp_path: Path, change, resign):
    data, cache = tmp_path / "tunes", tmp_path / "cache"
    tunes(data, 4)
    want = [(f.path, f.ids.tolist()) for f in load_corpus(data, cache_dir=False, workers=1).files]
    load_corpus(data, cache_dir=cache, workers=1)
    _rewrite_cache(cache, change, resign)
    got = load_corpus(data, cache_dir=cache, workers=1)
    assert [(f.path, f.ids.tolist()) for f in got.files] == want
    for f in got.files:
        assert TOK.decode(f.ids) == read_melody(data / f.path)
    again = load_corpus(data, cache_dir=cache, workers=1)  # the cache was rewritten whole
    assert [(f.path, f.ids.tolist()) for f in again.files] == want
