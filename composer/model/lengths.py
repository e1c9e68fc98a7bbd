"""Length codes: how far the melody is from its end, as an extra input of the network.

A plain LSTM never knows where a piece ends, so a 16-bar melody simply stops: its last bar is
sampled like any other and rarely lands on the tonic. Each input token therefore also carries
one small int, its *length code*, computed from the token's place among the Bar tokens:

* ``b`` = Bar tokens at or before the token (the token itself counts when it is a Bar), and
  ``N`` = Bar tokens of the whole tune. The header (BOS, TimeSig, Key: ``b == 0``) gets its own
  bucket, ``HEADER``. From the first Bar on, ``bars_left = N - b``: every token of the last bar
  (its Bar token included, and EOS) has 0, the second-last bar 1, and so on.
* ``bars_left`` is bucketed exactly for 0..16, then coarsely (17-24, 25-32, 33-64, 65+), and
  ``phrase = bars_left % 8``. The code is ``bucket * PHRASES + phrase`` (``CODES`` values).

Counting from the end, not from the start, is the point: cadences sit at the end of a tune and
of its 4- and 8-bar phrases, and phrases line up with the ending (a 16-bar tune's bars 8 and 16
both have ``phrase == 0``). A count from the start would tell the last bar of a 16-bar tune
from that of a 12-bar one only through its total. Only ``vocab.kinds == BAR`` is read, so
other tokens anywhere (a TimeSig or Key after a Bar) change no code.

Training, scoring and sampling use the same codes: ``codes`` for a whole tune, ``code_after``
when generating, from the bars taken so far and the bars planned.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from composer.tokens.tokenizer import BAR, Vocab

EXACT = 16  # bars left counted one by one (0..EXACT)
COARSE = (24, 32, 64)  # upper ends of the coarse buckets after EXACT; past the last: one bucket more
HEADER = EXACT + 1 + len(COARSE) + 1  # the bucket of tokens before the first Bar
BUCKETS = HEADER + 1
PHRASES = 8  # phrase = bars_left % PHRASES
CODES = BUCKETS * PHRASES
HEADER_CODE = HEADER * PHRASES


def bucket(bars_left: np.ndarray | int) -> np.ndarray:
    """The length bucket of ``bars_left`` >= 0: itself up to EXACT, then one per COARSE range."""
    left = np.asarray(bars_left, dtype=np.int64)
    coarse = EXACT + 1 + np.searchsorted(np.asarray(COARSE), left, side="left")
    return np.where(left <= EXACT, left, coarse)


def code_of(bars_left: np.ndarray | int) -> np.ndarray:
    """The length code of tokens with ``bars_left`` bars after theirs (negative: the header)."""
    left = np.asarray(bars_left, dtype=np.int64)
    code = bucket(np.maximum(left, 0)) * PHRASES + np.maximum(left, 0) % PHRASES
    return np.where(left < 0, HEADER_CODE, code)


def codes(seq: Sequence[int], vocab: Vocab) -> np.ndarray:
    """Length code of each token of one tune as an input (same length as ``seq``)."""
    ids = np.asarray(seq, dtype=np.int64)
    b = np.cumsum(vocab.kinds[ids] == BAR)  # Bar tokens at or before each token
    n = int(b[-1]) if len(b) else 0
    return code_of(np.where(b == 0, -1, n - b))


def code_table(total_bars: int) -> np.ndarray:
    """``table[b]``: the code of an input token when ``b`` Bar tokens (it included) have been
    taken of ``total_bars`` planned, for b in 0..total_bars + 1 (past the plan: 0 bars left)."""
    b = np.arange(total_bars + 2)
    return code_of(np.where(b == 0, -1, np.maximum(total_bars - b, 0)))


def code_after(bars_taken: np.ndarray | int, total_bars: int) -> np.ndarray:
    """The code of the next input, ``bars_taken`` Bar tokens (it included) into ``total_bars``."""
    b = np.asarray(bars_taken, dtype=np.int64)
    return code_of(np.where(b == 0, -1, np.maximum(total_bars - b, 0)))


def split_codes(c, phrases: int = PHRASES):
    """(bucket, phrase) of codes (numpy arrays or tensors)."""
    return c // phrases, c % phrases
