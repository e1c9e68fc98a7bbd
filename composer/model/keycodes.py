"""Key codes: the key in effect at every token, as an extra input of the network.

The only key information in a token sequence is its Key token: the header's third token (and,
from tokenizer version 2, a Key token right after a Bar for a key change). Hundreds of tokens
later an LSTM has lost it, and training windows are transposed by up to a few semitones, so
the network cannot tell the tonic to end on. Each input token therefore also carries one
small int, its *key code*:

* ``0..23``: ``Key.index`` of the key in effect (majors 0..11 by tonic, minors 12..23);
* ``NO_KEY`` (24): before any Key token (BOS, the TimeSig).

A Key token carries its own key (the code is the key in effect once the token has been read,
as a Bar token counts itself in ``composer.model.lengths``): a sampler has drawn the key when
it feeds that token, and the token the network predicts next is the first of the new key.
The Bar before a key change still has the old key.

Transposing a window by ``s`` semitones maps key ``k`` to ``(k % 12 + s) % 12 + 12 * (k >= 12)``
(as ``Vocab.transpose_table`` maps Key tokens); ``NO_KEY`` stays. ``transpose`` does it for
numpy arrays and tensors alike.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

from composer.tokens.tokenizer import KEY, Vocab

NO_KEY = 24  # the code of tokens before the first Key token
CODES = NO_KEY + 1

A = TypeVar("A")  # a numpy array or a torch tensor of int codes


def key_of_token(vocab: Vocab) -> np.ndarray:
    """Per token id: the key code a Key token sets, -1 for every other kind (V,)."""
    return np.where(vocab.kinds == KEY, vocab.values, -1)


def codes(seq: Sequence[int], vocab: Vocab) -> np.ndarray:
    """Key code of each token of one tune as an input (same length as ``seq``)."""
    ids = np.asarray(seq, dtype=np.int64)
    sets = key_of_token(vocab)[ids]  # (T,): the key a token sets, or -1
    last = np.maximum.accumulate(np.where(sets >= 0, np.arange(len(ids)), -1)) if len(ids) else ids
    return np.where(last >= 0, sets[np.maximum(last, 0)], NO_KEY).astype(np.int64)


def codes_after(seq: Sequence[int], vocab: Vocab, start: int = NO_KEY) -> np.ndarray:
    """Key codes of ``seq`` fed after a token whose code was ``start`` (a span of a longer tune)."""
    c = codes(seq, vocab)
    seen = np.maximum.accumulate(key_of_token(vocab)[np.asarray(seq, dtype=np.int64)] >= 0) if len(c) else c
    return np.where(seen, c, start).astype(np.int64)


def transpose(c: A, semitones) -> A:
    """Key codes ``c`` of a window transposed by ``semitones`` (an int, or per row (B, 1));
    numpy arrays or tensors. ``NO_KEY`` stays."""
    moved = (c % 12 + semitones) % 12 + 12 * (c >= 12)
    return c + (c < NO_KEY) * (moved - c)
