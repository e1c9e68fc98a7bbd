"""Originality guard: the longest run of notes a melody shares with any training melody.

Each pair of consecutive notes becomes one symbol (pitch interval, onset gap, duration of
the first note), so a run of ``L`` matching symbols is a run of ``L + 1`` notes with the same
intervals and rhythm: transposed copies count as copies. The training symbols, joined with a
unique separator after each melody, get a suffix array (numpy prefix doubling); a query finds
its lexicographic neighbours by a binary search vectorized over all its start positions,
comparing suffixes through rolling hashes.

Saved as a .npz with a checksum of its arrays (format 2); reading checks the checksum and that
the arrays fit together (cheap, linear checks), so a damaged file is refused, never searched.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from composer.data.cache import checksum
from composer.errors import CorpusError
from composer.files import atomic_write
from composer.music.melody import Melody
from composer.tokens.tokenizer import Tokenizer

INDEX_VERSION = 2  # 2: a checksum of the arrays; 1 (no checksum) is still read, its arrays checked
_ARRAYS = ("alphabet", "codes", "offsets", "sa", "names", "key")
_CAP = 4095  # onset gaps and durations are clipped to 12 bits
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so it has an inverse mod 2**64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))

Source = Melody | Sequence[int] | np.ndarray


def note_arrays(item: Source, tokenizer: Tokenizer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, durations, pitches) as int64 arrays of a Melody or of token ids."""
    if isinstance(item, Melody):
        a = np.array([(n.start, n.duration, n.pitch) for n in item.notes], dtype=np.int64).reshape(-1, 3)
        return a[:, 0], a[:, 1], a[:, 2]
    return (tokenizer or Tokenizer()).note_arrays(item)


def symbols(item: Source, tokenizer: Tokenizer | None = None) -> np.ndarray:
    """One int64 symbol per pair of consecutive notes: (interval, onset gap, first duration)."""
    starts, durations, pitches = note_arrays(item, tokenizer)
    if len(pitches) < 2:
        return np.zeros(0, dtype=np.int64)
    interval = np.diff(pitches) + 128
    gap = np.clip(np.diff(starts), 0, _CAP)
    dur = np.clip(durations[:-1], 0, _CAP)
    return (interval << 24) | (gap << 12) | dur


def _mix(x: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random uint64 per symbol id (splitmix64), so hashes behave randomly."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _prefix_hashes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, P): G[k] = sum_{j<k} mix(c_j) * B^-j and P[j] = B^j, all mod 2**64, so the hash of
    codes[a:a+L] is (G[a+L] - G[a]) * P[a] regardless of where the window sits."""
    n = len(codes)
    inv = np.full(n, _BASE_INV, dtype=np.uint64)
    inv[0] = 1
    inv_pows = np.cumprod(inv, dtype=np.uint64)  # wraps mod 2**64
    g = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(_mix(codes) * inv_pows, dtype=np.uint64, out=g[1:])
    pw = np.full(n, _BASE, dtype=np.uint64)
    pw[0] = 1
    return g, np.cumprod(pw, dtype=np.uint64)


def suffix_array(codes: np.ndarray) -> np.ndarray:
    """Suffix array of non-negative int codes by prefix doubling (a sort per doubling)."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rank = np.unique(codes, return_inverse=True)[1].astype(np.int64)
    k = 1
    while True:
        second = np.zeros(n, dtype=np.int64)
        if k < n:
            second[: n - k] = rank[k:] + 1
        key = rank * (n + 1) + second
        sa = np.argsort(key, kind="stable")
        sk = key[sa]
        new = np.empty(n, dtype=np.int64)
        new[sa] = np.concatenate(([0], np.cumsum(sk[1:] != sk[:-1])))
        rank = new
        if rank.max() == n - 1 or k >= n:
            return sa
        k *= 2


@dataclass(frozen=True)
class Copy:
    """Where a melody's longest shared run lies: ``notes`` long, from note ``start`` of
    the query and note ``source_note`` of training melody ``source`` (its name or number)."""

    notes: int
    start: int
    source: str
    source_note: int


class CopyIndex:
    """Index of the note symbols of training melodies; answers longest-copy queries."""

    def __init__(self, alphabet: np.ndarray, codes: np.ndarray, offsets: np.ndarray, names: Sequence[str],
                 key: str = "", sa: np.ndarray | None = None) -> None:
        self.alphabet = alphabet  # sorted distinct int64 symbols; code = position here
        self.codes = codes  # int64 codes of all melodies, each followed by a unique separator
        self.offsets = offsets  # melody m's symbols are codes[offsets[m]:offsets[m+1]-1]
        self.names = list(names)
        self.key = key  # identifies the training files the index was built from
        self.sa = suffix_array(codes) if sa is None else sa
        self._g, self._p = _prefix_hashes(codes)

    @classmethod
    def build(cls, melodies: Iterable[Source], names: Sequence[str] | None = None, key: str = "",
              tokenizer: Tokenizer | None = None) -> CopyIndex:
        """Index a list of Melody objects or token-id arrays (of ``tokenizer``'s vocabulary)."""
        syms = [symbols(m, tokenizer) for m in melodies]
        alphabet = np.unique(np.concatenate(syms)) if syms else np.zeros(0, np.int64)
        a = len(alphabet)
        parts = []
        for i, s in enumerate(syms):  # separator a+i is unique: no match crosses melodies
            parts += [np.searchsorted(alphabet, s), np.array([a + i])]
        codes = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        offsets = np.concatenate(([0], np.cumsum([len(s) + 1 for s in syms]))).astype(np.int64)
        names = list(names) if names is not None else [str(i) for i in range(len(syms))]
        return cls(alphabet, codes, offsets, names, key)

    def __len__(self) -> int:
        """Number of indexed melodies."""
        return len(self.offsets) - 1

    def _query_codes(self, item: Source) -> np.ndarray:
        s = symbols(item)
        if len(self.alphabet) == 0:
            return np.full(len(s), -1, dtype=np.int64)
        idx = np.minimum(np.searchsorted(self.alphabet, s), len(self.alphabet) - 1)
        return np.where(self.alphabet[idx] == s, idx, -1).astype(np.int64)  # -1 never occurs in the index

    def _lcp(self, qg, qp, qs, qend, ts):
        """Longest common prefix of query suffixes qs (ending before qend) and index suffixes ts,
        by binary search on the length comparing window hashes; arrays of equal shape."""
        n = len(self.codes)
        lo = np.zeros(len(qs), dtype=np.int64)
        hi = np.minimum(qend - qs, n - ts)
        while True:
            open_ = lo < hi
            if not open_.any():
                return lo
            mid = (lo + hi + 1) // 2
            h_q = (qg[qs + mid] - qg[qs]) * qp[qs]
            h_t = (self._g[ts + mid] - self._g[ts]) * self._p[ts]
            same = h_q == h_t
            lo = np.where(open_ & same, mid, lo)
            hi = np.where(open_ & ~same, mid - 1, hi)

    def _search(self, q: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For every start position of the joined queries q: (longest match, index position)."""
        m, n = len(q), len(self.codes)
        if m == 0 or n == 0:
            return np.zeros(m, np.int64), np.zeros(m, np.int64)
        qg, qp = _prefix_hashes(np.where(q < 0, np.int64(2**62), q))
        qs = np.arange(m, dtype=np.int64)
        lo, hi = np.zeros(m, np.int64), np.full(m, n, np.int64)  # insertion point in [lo, hi]
        while (lo < hi).any():
            mid = (lo + hi) // 2
            ts = self.sa[np.minimum(mid, n - 1)]
            lcp = self._lcp(qg, qp, qs, ends, ts)
            q_done = qs + lcp >= ends  # the query suffix is a prefix of the index suffix
            t_next = self.codes[np.minimum(ts + lcp, n - 1)]
            q_next = q[np.minimum(qs + lcp, m - 1)]
            less = q_done | (q_next < t_next)  # query suffix sorts before SA[mid]
            active = lo < hi
            hi = np.where(active & less, mid, hi)
            lo = np.where(active & ~less, mid + 1, lo)
        best, where = np.zeros(m, np.int64), np.zeros(m, np.int64)
        for nb in (lo - 1, lo):  # the longest match is with a neighbour of the insertion point
            ok = (nb >= 0) & (nb < n)
            ts = self.sa[np.clip(nb, 0, n - 1)]
            lcp = np.where(ok, self._lcp(qg, qp, qs, ends, ts), 0)
            better = lcp > best
            best, where = np.where(better, lcp, best), np.where(better, ts, where)
        return best, where

    def copies(self, melodies: Sequence[Source]) -> list[Copy]:
        """The longest shared run of each melody, all queries searched together."""
        qs = [self._query_codes(m) for m in melodies]
        lens = np.array([len(q) for q in qs], dtype=np.int64)
        ends = np.repeat(np.cumsum(lens), lens)
        best, where = self._search(np.concatenate(qs) if qs else np.zeros(0, np.int64), ends)
        out, off = [], 0
        for mel, q in zip(melodies, qs):
            n_notes = len(note_arrays(mel)[0])
            b, w = best[off : off + len(q)], where[off : off + len(q)]
            off += len(q)
            if n_notes == 0 or len(self) == 0:
                out.append(Copy(0, 0, "", 0))
                continue
            i = int(np.argmax(b)) if len(b) else 0
            length = int(b[i]) if len(b) else 0
            if length == 0:
                out.append(Copy(1, 0, "", 0))
                continue
            m = int(np.searchsorted(self.offsets, w[i], side="right")) - 1
            out.append(Copy(length + 1, i, self.names[m], int(w[i] - self.offsets[m])))
        return out

    def longest_copies(self, melodies: Sequence[Source]) -> np.ndarray:
        """Longest shared run, in notes, of each melody (int64 array)."""
        return np.array([c.notes for c in self.copies(melodies)], dtype=np.int64)

    def save(self, path: str | Path) -> Path:
        """Write the index as a .npz (no pickled objects) with a checksum of its arrays, atomically."""
        buf = io.BytesIO()
        small = np.int32 if len(self.codes) < 2**31 else np.int64  # halves the file of a real corpus
        arrays = dict(alphabet=self.alphabet, codes=self.codes.astype(small), offsets=self.offsets,
                      sa=self.sa.astype(small), names=np.array(self.names, dtype=str), key=np.array(self.key))
        np.savez_compressed(buf, version=np.int64(INDEX_VERSION), checksum=np.array(checksum(arrays, _ARRAYS)), **arrays)
        return atomic_write(Path(path), buf.getvalue(), force=True)

    @classmethod
    def load(cls, path: str | Path) -> CopyIndex:
        """Read an index written by ``save``; CorpusError in one line when it is unreadable, of
        another version, damaged (its checksum differs) or its arrays do not fit together."""
        try:
            with np.load(path, allow_pickle=False) as z:
                version = int(z["version"])
                if version not in (1, INDEX_VERSION):
                    raise CorpusError(f"{path}: copy index version {version}, expected {INDEX_VERSION}; delete it to rebuild")
                a = {k: z[k] for k in _ARRAYS}
                if version >= 2 and str(z["checksum"]) != checksum(a, _ARRAYS):
                    raise CorpusError(f"{path} is damaged (its checksum does not match its contents); delete it to rebuild")
        except CorpusError:
            raise
        except Exception as e:
            raise CorpusError(f"{path} is not a readable copy index ({type(e).__name__}); delete it to rebuild") from None
        why = _misfit(a)
        if why:
            raise CorpusError(f"{path} is damaged ({why}); delete it to rebuild")
        return cls(a["alphabet"].astype(np.int64), a["codes"].astype(np.int64), a["offsets"].astype(np.int64),
                   a["names"].tolist(), str(a["key"]), a["sa"].astype(np.int64))


def _misfit(a: dict[str, np.ndarray]) -> str:
    """What does not fit together in an index's arrays ('' when they do): one name per melody,
    offsets rising from 0 to the end of the codes, each melody's unique separator at its end and
    only symbol codes before it, and a suffix array that is a permutation of the positions."""
    alphabet, codes, offsets, sa, names = a["alphabet"], a["codes"], a["offsets"], a["sa"], a["names"]
    if any(x.ndim != 1 or x.dtype.kind != "i" for x in (alphabet, codes, offsets, sa)) or names.ndim != 1 or a["key"].ndim:
        return "arrays of the wrong shape or type"
    m, n, k = len(names), len(codes), len(alphabet)
    if len(offsets) != m + 1 or offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 1).any():
        return f"{len(offsets)} melody offsets for {m} names and {n} codes"
    if k > 1 and (np.diff(alphabet) <= 0).any():
        return "the alphabet is not sorted"
    if n and (codes.min() < 0 or codes.max() >= k + m):
        return "codes outside the alphabet"
    if m and ((codes[offsets[1:] - 1] != k + np.arange(m)).any() or np.count_nonzero(codes >= k) != m):
        return "melody separators out of place"
    if len(sa) != n or (n and (sa.min() < 0 or sa.max() >= n or np.count_nonzero(np.bincount(sa, minlength=n)) != n)):
        return "the suffix array is not a permutation of the codes"
    return ""


def files_key(train_files: Sequence[str]) -> str:
    """Identifies a list of training files (order-independent)."""
    return hashlib.sha256(json.dumps(sorted(train_files)).encode()).hexdigest()[:32]


def index_path(checkpoint_path: str | Path) -> Path:
    """Where a checkpoint's copy index is cached: beside it."""
    p = Path(checkpoint_path)
    return p.with_name(p.name + ".copyindex.npz")
