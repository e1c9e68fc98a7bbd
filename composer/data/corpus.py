"""A folder of MIDI files -> tokenized melodies, in parallel, cached on disk.

The cache is one compact ``.npz`` file per corpus folder, keyed by each file's
content hash (sha256 of its bytes) and the tokenizer version: renaming or moving
a file keeps its entry, editing it re-tokenizes just that file (composer.data.cache).
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from composer.tokens.tokenizer import TOKENIZER_VERSION
from composer.data.cache import Entry, cache_path, default_cache_dir, read_cache, write_cache
from composer.errors import ComposerError, CorpusError
from composer.music.midi_io import MAX_FILE_BYTES

MIDI_SUFFIXES = (".mid", ".midi")
_CHUNK = 32  # files per task sent to a worker process


@dataclass(frozen=True)
class TokenizedFile:
    """One usable file: its token ids and what they describe."""

    path: str  # relative to the corpus folder, with '/' separators
    ids: np.ndarray  # token ids, int16, BOS ... EOS
    notes: int
    meter: str  # "6/8"
    key: str  # "Am"
    sha256: str = ""  # of the file's bytes: a checkpoint records it to find its training files again


@dataclass(frozen=True)
class Corpus:
    """The usable files of a folder and the ones skipped, with their reasons."""

    files: tuple[TokenizedFile, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason)


def find_midi_files(folder: str | Path) -> list[Path]:
    """Every .mid/.midi file under ``folder`` (any case, recursive, symlinked folders followed
    once each), sorted by path."""
    folder = Path(folder)
    return [folder / rel for rel, _ in _scan(str(folder))]


def _scan(folder: str) -> list[tuple[str, tuple[int, int, int]]]:
    """(relative '/'-separated path, (size, mtime_ns, ctime_ns)) of each MIDI file, sorted by path.

    Symlinked files and folders are followed, as the user linked them in. The real folders
    are walked first, then the symlinked ones in path order; a folder already visited (by its
    real path: a link to an ancestor, two links to one place) is not entered again, so loops
    end and a linked folder is found under its own name when it is inside ``folder``.
    os.scandir, not pathlib: on a cached load pathlib alone costs more than the rest."""
    found: list[tuple[str, tuple[int, int, int]]] = []
    links: list[tuple[str, str]] = []
    seen = {os.path.realpath(folder)}

    def walk(prefix: str, top: str) -> None:
        stack = [(prefix, top)]
        while stack:
            prefix, path = stack.pop()
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for e in entries:
                try:
                    if e.is_symlink() and e.is_dir():
                        links.append((prefix + e.name + "/", e.path))
                    elif e.is_dir(follow_symlinks=False):
                        real = os.path.realpath(e.path)
                        if real not in seen:
                            seen.add(real)
                            stack.append((prefix + e.name + "/", e.path))
                    elif e.name.lower().endswith(MIDI_SUFFIXES) and e.is_file():
                        st = e.stat()
                        found.append((prefix + e.name, (st.st_size, st.st_mtime_ns, st.st_ctime_ns)))
                except OSError:
                    continue

    walk("", folder)
    while links:
        links.sort(reverse=True)
        prefix, path = links.pop()
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            walk(prefix, path)
    return sorted(found)


_Entry = Entry  # (ids int16 or None, notes, meter, key, reason); reason is "" when usable


def tokenize_file(path: str | Path, version: int = TOKENIZER_VERSION, track: str | None = None) -> _Entry:
    """Read and encode one file (tokenizer ``version``, melody ``track`` or the reader's choice);
    a bad file gives ``(None, 0, "", "", reason)``, never raises."""
    from composer.music.midi_io import read_melody
    from composer.tokens.tokenizer import Tokenizer

    try:
        melody = read_melody(path, track)
        ids = np.asarray(Tokenizer.for_version(version).encode(melody), dtype=np.int16)
        return ids, len(melody.notes), str(melody.time_signature), melody.key.name, ""
    except ComposerError as e:
        return None, 0, "", "", getattr(e, "reason", None) or str(e)
    except Exception as e:  # a reader bug must not stop a batch of thousands of files
        return None, 0, "", "", f"unexpected error ({type(e).__name__}: {e})"


def _tokenize_chunk(paths: list[str], version: int = TOKENIZER_VERSION, track: str | None = None) -> list[_Entry]:
    return [tokenize_file(p, version, track) for p in paths]


_HASH_CHUNK = 1 << 20


def _hash_file(path: str) -> str:
    """sha256 of a file's bytes, read in chunks (memory stays flat whatever the size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _not_hashed(size: int) -> str:
    """Why a file is skipped before it is hashed ('' when it can be read): the reader's size limit,
    checked first so a huge file is never read (the same words as composer.music.midi_io)."""
    return f"file too large ({size} bytes)" if size > MAX_FILE_BYTES else ""


def load_corpus(
    folder: str | Path,
    *,
    cache_dir: str | Path | None | bool = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    version: int = TOKENIZER_VERSION,
    track: str | None = None,
) -> Corpus:
    """Tokenize every MIDI file under ``folder``; bad files are skipped with their reason.

    ``cache_dir=False`` disables the cache; ``workers`` defaults to the CPU count
    (1 = in this process). ``progress(done, total)`` is called as files finish. ``version``: the
    tokenizer version to encode with (a model's own; default this composer's); ``track``: the
    melody track of every file by name or number (default: the reader's choice per file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder: give a folder of .mid files")
    found = _scan(str(folder))
    if not found:
        raise CorpusError(f"{folder} holds no .mid or .midi files: add MIDI files or give another folder")
    files, skipped = _tokenized(folder, found, cache_dir, workers, progress, version=version, track=track)
    if not files:
        why = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise CorpusError(f"no usable MIDI file in {folder}: all {len(found)} were skipped{why}; run `compose check {folder}`")
    return Corpus(tuple(files), tuple(skipped))


def load_listed(folder: str | Path, names: Iterable[str], hashes: dict[str, str] | None = None, *,
                cache_dir: str | Path | None | bool = None, workers: int | None = None,
                progress: Callable[[int, int], None] | None = None, version: int = TOKENIZER_VERSION,
                track: str | None = None) -> list[TokenizedFile]:
    """The listed files of ``folder`` (paths relative to it), tokenized through the same cache,
    in the given order; nothing else in the folder is read. CorpusError names the first file
    that is missing, changed (its sha256 differs from ``hashes``) or no longer usable."""
    folder, names = Path(folder), list(names)
    found = []
    for rel in names:
        try:
            st = os.stat(folder / rel)
        except OSError:
            raise CorpusError(f"{folder / rel} is missing") from None
        if not stat.S_ISREG(st.st_mode):  # a device or FIFO would never finish hashing
            raise CorpusError(f"{folder / rel} is not a regular file")
        found.append((rel, (st.st_size, st.st_mtime_ns, st.st_ctime_ns)))
    files, skipped = _tokenized(folder, found, cache_dir, workers, progress, whole=False, version=version, track=track)
    if skipped:
        raise CorpusError(f"{folder / skipped[0][0]} is no longer usable ({skipped[0][1]})")
    for f in files:
        want = (hashes or {}).get(f.path)
        if want and want != f.sha256:
            raise CorpusError(f"{folder / f.path} has changed since training (its content hash differs)")
    return files


def _tokenized(folder: Path, found: list[tuple[str, tuple[int, int, int]]], cache_dir, workers, progress,
               whole: bool = True, version: int = TOKENIZER_VERSION,
               track: str | None = None) -> tuple[list[TokenizedFile], list[tuple[str, str]]]:
    """(usable files, skipped (path, reason)) of ``found`` (path, stat) in ``folder``, through the
    cache; ``whole``: ``found`` is the whole folder, so entries of files gone are dropped."""
    total = len(found)
    cache_file = None if cache_dir is False else cache_path(Path(cache_dir or default_cache_dir()), folder, version, track)
    cached, old_stats = read_cache(cache_file, version) if cache_file is not None and cache_file.exists() else ({}, {})
    # A file whose size and times are unchanged keeps its recorded content hash (as git does);
    # any other file is hashed again, so entries are always found by content.
    hashes, stats, entries = [], {}, {}
    for rel, st in found:
        old = old_stats.get(rel)
        if old is not None and old[0] == st:
            h = old[1]
        elif why := _not_hashed(st[0]):
            h = f"unreadable:{rel}"
            entries[h] = (None, 0, "", "", why)
        else:
            try:
                h = _hash_file(os.path.join(folder, rel))
            except OSError as e:
                h = f"unreadable:{rel}"
                entries[h] = (None, 0, "", "", f"cannot read: {e.strerror}")
        hashes.append(h)
        if h in cached:
            entries[h] = cached[h]
        if not h.startswith("unreadable:"):
            stats[rel] = (st, h)
    todo = sorted({h: os.path.join(folder, rel) for (rel, _), h in zip(found, hashes) if h not in entries}.items())
    done = total - sum(1 for h in hashes if h not in entries)
    if progress:
        progress(done, total)
    for h, entry in zip([h for h, _ in todo], list(_run(todo, workers, total, done, progress, version, track))):
        entries[h] = entry
    if cache_file is not None and (todo or stats.keys() != old_stats.keys() or len(cached) != len(entries)):
        keep = {h: entries[h] for h in dict.fromkeys(hashes) if not h.startswith("unreadable:")}
        if not whole:  # a few listed files: the rest of the folder's entries stay cached
            keep, stats = {**cached, **keep}, {**old_stats, **stats}
        if whole or todo or stats.keys() != old_stats.keys():
            write_cache(cache_file, keep, stats, version)
    files, skipped = [], []
    for (rel, _), h in zip(found, hashes):
        ids, notes, meter, key, reason = entries[h]
        if reason:
            skipped.append((rel, reason))
        else:
            files.append(TokenizedFile(rel, ids, notes, meter, key, h))
    return files, skipped


def _run(todo: list[tuple[str, str]], workers: int | None, total: int, done: int, progress,
         version: int = TOKENIZER_VERSION, track: str | None = None) -> Iterable[_Entry]:
    """Tokenize the ``todo`` files (hash, path) in order, in worker processes when it pays."""
    paths = [p for _, p in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(paths) // _CHUNK + 1))
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    if workers == 1:
        results = map(_tokenize_chunk, chunks, [version] * len(chunks), [track] * len(chunks))
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_tokenize_chunk, chunks, [version] * len(chunks), [track] * len(chunks))
    try:
        for chunk in results:
            yield from chunk
            done += len(chunk)
            if progress:
                progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def split_files(files: Iterable[TokenizedFile], val_fraction: float = 0.1, seed: int = 0
                ) -> tuple[list[TokenizedFile], list[TokenizedFile]]:
    """(train, validation) by file, deterministic from ``seed`` and the file paths.

    Validation holds ``val_fraction`` of the files (at least 5%, and at least one file
    when there are two or more); each file's side depends only on its path and the seed,
    so adding files to a corpus moves few others."""
    files = list(files)
    n = len(files)
    if n < 2:
        return files, []
    frac = min(max(val_fraction, 0.05), 0.5)
    n_val = min(n - 1, max(1, int(np.ceil(n * frac))))
    rank = sorted(range(n), key=lambda i: hashlib.sha256(f"{seed}:{files[i].path}".encode()).digest())
    val_idx = set(rank[:n_val])
    train = [f for i, f in enumerate(files) if i not in val_idx]
    val = [f for i, f in enumerate(files) if i in val_idx]
    return train, val
