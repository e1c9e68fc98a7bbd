"""The corpus cache: one ``.npz`` per corpus folder holding every file's tokens by content hash.

An entry is ``(ids int16 or None, notes, meter, key, reason)``; reason is "" when the file is
usable. ``stats`` maps a file's relative path to ((size, mtime_ns, ctime_ns), content hash),
so an unchanged file is not hashed again. The arrays carry a checksum and are checked to fit
together when read: a damaged cache is never used, only rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from composer.errors import ComposerError
from composer.files import atomic_write
from composer.tokens.tokenizer import TOKENIZER_VERSION

Entry = tuple  # (ids int16 or None, notes, meter, key, reason)


def default_cache_dir() -> Path:
    """$COMPOSER_CACHE, else $XDG_CACHE_HOME/composer, else ~/.cache/composer."""
    if os.environ.get("COMPOSER_CACHE"):
        return Path(os.environ["COMPOSER_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "composer"


def cache_path(cache_dir: Path, folder: Path, version: int = TOKENIZER_VERSION, track: str | None = None) -> Path:
    """The cache file of a corpus folder (by its absolute path), the tokenizer version and the melody track asked for."""
    tag = hashlib.sha256((str(folder.resolve()) + ("" if track is None else f"\0track={track}")).encode()).hexdigest()[:16]
    return cache_dir / f"corpus-{tag}-v{version}.npz"


_CACHE_ARRAYS = ("hashes", "offsets", "ids", "notes", "meters", "keys", "reasons", "stat_paths", "stats", "stat_hashes")


def checksum(arrays: dict[str, np.ndarray], names: tuple[str, ...] = _CACHE_ARRAYS) -> str:
    """sha256 over the named arrays (names, dtypes, shapes, bytes): a damaged file is found on reading.
    (Also the copy index's checksum.)"""
    h = hashlib.sha256()
    for name in names:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_cache(path: Path, version: int = TOKENIZER_VERSION) -> tuple[dict[str, Entry], dict[str, tuple[tuple[int, int, int], str]]]:
    """(entries by content hash, {path: (stat, hash)}); an unreadable, damaged or foreign cache is
    empty, so every file is tokenized again and the cache rewritten."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != version or "checksum" not in z.files:
                return {}, {}
            a = {name: z[name] for name in _CACHE_ARRAYS}
            if str(z["checksum"]) != checksum(a) or not _consistent(a, version):
                return {}, {}
    except Exception:  # not a zip, a member missing or truncated: rebuilt
        return {}, {}
    hashes, off, ids = a["hashes"].tolist(), a["offsets"].tolist(), a["ids"]
    rows = zip(hashes, a["notes"].tolist(), a["meters"].tolist(), a["keys"].tolist(), a["reasons"].tolist())
    stat_rows = zip(a["stat_paths"].tolist(), a["stats"].tolist(), a["stat_hashes"].tolist())
    entries = {h: (None if r else ids[off[j]: off[j + 1]], n, m, k, r) for j, (h, n, m, k, r) in enumerate(rows)}
    return entries, {p: (tuple(st), h) for p, st, h in stat_rows}


def _consistent(a: dict[str, np.ndarray], version: int = TOKENIZER_VERSION) -> bool:
    """Whether the cache's arrays fit together: one row per entry, offsets from 0 rising to the end
    of the ids, token ids inside the vocabulary, tokens for usable entries only, stats of known
    entries. Cheap (linear); with the checksum it keeps a damaged cache from being read."""
    from composer.tokens.tokenizer import Vocab

    n = len(a["hashes"])
    off, ids, usable = a["offsets"], a["ids"], a["reasons"] == ""
    if any(a[k].ndim != 1 or len(a[k]) != n for k in ("hashes", "notes", "meters", "keys", "reasons")):
        return False
    if off.shape != (n + 1,) or ids.ndim != 1 or ids.dtype != np.int16 or off.dtype.kind != "i":
        return False
    if off[0] != 0 or off[-1] != len(ids) or (np.diff(off) < 0).any():
        return False
    if len(ids) and (ids.min() < 0 or ids.max() >= len(Vocab.build(version))):
        return False
    if ((np.diff(off) > 0) != usable).any() or len(set(a["hashes"].tolist())) != n:
        return False
    k = len(a["stat_paths"])
    return (a["stats"].shape == (k, 3) and a["stat_hashes"].shape == (k,) and a["stat_paths"].ndim == 1
            and set(a["stat_hashes"].tolist()) <= set(a["hashes"].tolist()))


def write_cache(path: Path, entries: dict[str, Entry], stats: dict[str, tuple[tuple[int, int, int], str]],
                version: int = TOKENIZER_VERSION) -> None:
    """Write the entries and stats atomically; a read-only cache folder is left alone."""
    hashes = list(entries)
    seqs = [entries[h][0] if entries[h][0] is not None else np.zeros(0, np.int16) for h in hashes]
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in seqs])
    arrays = dict(
        hashes=np.array(hashes, dtype="U64"),
        offsets=offsets,
        ids=np.concatenate(seqs).astype(np.int16) if seqs else np.zeros(0, np.int16),
        notes=np.array([entries[h][1] for h in hashes], dtype=np.int64),
        meters=np.array([entries[h][2] for h in hashes], dtype=str),
        keys=np.array([entries[h][3] for h in hashes], dtype=str),
        reasons=np.array([entries[h][4] for h in hashes], dtype=str),
        stat_paths=np.array(list(stats), dtype=str),
        stats=np.array([st for st, _ in stats.values()], dtype=np.int64).reshape(-1, 3),
        stat_hashes=np.array([h for _, h in stats.values()], dtype="U64"),
    )
    buf = io.BytesIO()
    np.savez(buf, version=np.int64(version), checksum=np.array(checksum(arrays)), **arrays)
    try:
        atomic_write(path, buf.getvalue(), force=True)
    except ComposerError:
        pass  # a read-only cache folder only costs speed
