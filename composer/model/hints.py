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

from array import array
from typing import Sequence

import numpy as np

from composer.tokens.tokenizer import Vocab

EDGES = (1, 3, 6, 12, 24, 48, 96)  # match lengths (tokens) that open buckets 1..7; bucket 0 = no match
BUCKETS = len(EDGES) + 1
_BUCKET_OF = np.searchsorted(EDGES, np.arange(EDGES[-1] + 1), side="right")  # length -> bucket
_BUCKET_LIST, _CAP = _BUCKET_OF.tolist(), EDGES[-1]


class Matcher:
    """Longest earlier match of the sequence pushed so far (an online suffix automaton).

    Compact, because a batch of long melodies holds one per row: per-state numbers live in
    ``array('l')`` (8 bytes, no int objects), and all transitions in one dict keyed by
    ``state * size + token``, with each state's out-tokens kept as a linked list of edges
    (needed only to copy a state when it splits). About a third of the memory of a dict per
    state; the same hints."""

    __slots__ = ("seq", "length", "link", "first", "head", "edge_tok", "edge_next", "trans", "last", "size", "none")

    def __init__(self, vocab: Vocab) -> None:
        self.size, self.none = len(vocab), vocab.bos  # hint = bucket * size + token; BOS = no match
        self.seq = array("l")
        self.length, self.link, self.first = array("l", [0]), array("l", [-1]), array("l", [-1])  # per state
        self.head = array("l", [-1])  # per state: its last out-edge (-1: none)
        self.edge_tok, self.edge_next = array("l"), array("l")  # per edge: its token, the state's previous edge
        self.trans: dict[int, int] = {}  # state * size + token -> next state
        self.last = 0

    def copy(self) -> Matcher:
        """An independent matcher in the same state (rows that share a prime)."""
        other = Matcher.__new__(Matcher)
        for name in ("seq", "length", "link", "first", "head", "edge_tok", "edge_next"):
            setattr(other, name, array("l", getattr(self, name)))
        other.trans, other.last, other.size, other.none = dict(self.trans), self.last, self.size, self.none
        return other

    def push(self, tok: int) -> int:
        """Append ``tok``; returns the hint for the token after it."""
        i = len(self.seq)
        self.seq.append(tok)
        length, link, first, head = self.length, self.link, self.first, self.head
        edge_tok, edge_next, trans, size = self.edge_tok, self.edge_next, self.trans, self.size
        cur = len(length)
        length.append(length[self.last] + 1)
        link.append(0)
        first.append(i)
        head.append(-1)
        p = self.last
        key = p * size + tok
        while p != -1 and key not in trans:
            trans[key] = cur
            edge_tok.append(tok)
            edge_next.append(head[p])
            head[p] = len(edge_tok) - 1
            p = link[p]
            key = p * size + tok
        if p != -1:
            q = trans[key]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:  # split q: a clone holds the shorter contexts (and q's out-edges)
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                first.append(first[q])
                head.append(-1)
                e, base, qbase = head[q], clone * size, q * size
                while e != -1:
                    t = edge_tok[e]
                    trans[base + t] = trans[qbase + t]
                    edge_tok.append(t)
                    edge_next.append(head[clone])
                    head[clone] = len(edge_tok) - 1
                    e = edge_next[e]
                while p != -1 and trans.get(p * size + tok) == q:
                    trans[p * size + tok] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        self.last = cur
        # link[cur]: the longest suffix that also ends earlier; it first ended at first[.]
        s = link[cur]
        n = length[s]
        if n == 0:
            return self.none
        bucket = _BUCKET_LIST[n if n < _CAP else _CAP]
        return bucket * size + self.seq[first[s] + 1]


def hints(seq: Sequence[int], vocab: Vocab) -> np.ndarray:
    """Hint after each token of one melody (same length as ``seq``; the last one predicts
    past the end and is unused)."""
    m = Matcher(vocab)
    return np.fromiter((m.push(int(t)) for t in seq), dtype=np.int64, count=len(seq))


def split_hints(h, size: int):
    """(bucket, token) of hints (numpy arrays or tensors) of a vocabulary of ``size`` ids."""
    return h // size, h % size
