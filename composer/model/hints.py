"""Copy hints: what the melody itself suggests comes next, as an extra input of the LSTM.

Real tunes repeat themselves (the corpus writes repeat signs out), and an LSTM's
memory fades after a few bars, so a plain LSTM pays again for notes it has already
heard. Each step therefore also sees a *hint*: the token that followed the longest
earlier context equal to the current one (as a compressor's match model finds it), and
how long that match is. The network learns when to trust it: a 40-token match in the
second A part, hardly at all a 2-token one.

Matches come from an online suffix automaton (linear time, one ``push`` per token), so
training data, scoring and sampling all compute the same hints the same way. A hint is
one int: ``bucket * V + token`` (V = the vocabulary's size), with the "no match" token
BOS (which never follows anything) in bucket 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from composer.tokens.tokenizer import Vocab

EDGES = (1, 3, 6, 12, 24, 48, 96)  # match lengths (tokens) that open buckets 1..7; bucket 0 = no match
BUCKETS = len(EDGES) + 1
_BUCKET_OF = np.searchsorted(EDGES, np.arange(EDGES[-1] + 1), side="right")  # length -> bucket


class Matcher:
    """Longest earlier match of the sequence pushed so far (an online suffix automaton)."""

    __slots__ = ("seq", "length", "link", "next", "first", "last", "size", "none")

    def __init__(self, vocab: Vocab) -> None:
        self.size, self.none = len(vocab), vocab.bos  # hint = bucket * size + token; BOS = no match
        self.seq: list[int] = []
        self.length, self.link, self.first = [0], [-1], [-1]  # per state
        self.next: list[dict[int, int]] = [{}]
        self.last = 0

    def push(self, tok: int) -> int:
        """Append ``tok``; returns the hint for the token after it."""
        i = len(self.seq)
        self.seq.append(tok)
        length, link, nxt, first = self.length, self.link, self.next, self.first
        cur = len(length)
        length.append(length[self.last] + 1)
        link.append(0)
        nxt.append({})
        first.append(i)
        p = self.last
        while p != -1 and tok not in nxt[p]:
            nxt[p][tok] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][tok]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:  # split q: a clone holds the shorter contexts
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                nxt.append(dict(nxt[q]))
                first.append(first[q])
                while p != -1 and nxt[p].get(tok) == q:
                    nxt[p][tok] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        self.last = cur
        # link[cur]: the longest suffix that also ends earlier; it first ended at first[.]
        s = link[cur]
        n = length[s]
        if n == 0:
            return self.none
        bucket = int(_BUCKET_OF[min(n, EDGES[-1])])
        return bucket * self.size + self.seq[first[s] + 1]


def hints(seq: Sequence[int], vocab: Vocab) -> np.ndarray:
    """Hint after each token of one melody (same length as ``seq``; the last one predicts
    past the end and is unused)."""
    m = Matcher(vocab)
    return np.fromiter((m.push(int(t)) for t in seq), dtype=np.int64, count=len(seq))


def split_hints(h, size: int):
    """(bucket, token) of hints (numpy arrays or tensors) of a vocabulary of ``size`` ids."""
    return h // size, h % size
