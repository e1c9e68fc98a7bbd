"""Seeds to random streams: every seed a user can give draws its own melodies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer.errors import RequestError

if TYPE_CHECKING:
    import torch

_MT_WORDS = 624  # Mersenne Twister state words
_MT_OFFSET = 24  # bytes before them in torch's CPU generator state: initial seed, left, seeded, next
_M32 = 0xFFFFFFFF


def _mt_next(word: int, j: int) -> int:
    """The Mersenne Twister's seeding recurrence (Knuth's multiplier), as torch seeds it."""
    return (1812433253 * (word ^ (word >> 30)) + j) & _M32


def _splitmix64(x: int) -> int:
    """A bijective 64-bit mix: nearby seeds get unrelated words."""
    z = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator for ``seed`` (0 .. 2**63-1), a different stream for every seed.

    ``manual_seed`` keeps only the low 32 bits for the Mersenne Twister (5 and 5 + 2**32 would
    give the same melodies). Seeds below 2**32 are used as they are, so they give the melodies
    they always gave. A larger seed gets a state of its own, different from every other seed's:
    words 1 and 2 hold its low and high halves (so two large seeds differ there), words 3 and 4
    a 64-bit mix of it, and each later word is torch's seeding recurrence of the word before plus
    an odd number, 2 x the word two back + 1, so it never continues a state torch's seeding made.
    Different states give different streams (the twist is a bijection of the state)."""
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(seed & _M32)
    if seed <= _M32:
        return gen
    raw = gen.get_state().numpy().copy()
    words = raw[_MT_OFFSET : _MT_OFFSET + 8 * _MT_WORDS].view(np.uint64)
    lo = seed & _M32
    if raw[:8].view(np.uint64)[0] != lo or words[0] != lo or words[1] != _mt_next(lo, 1):
        raise RequestError(f"seed {seed}: this torch ({torch.__version__}) keeps its generator state differently; "
                           f"use a seed below {2**32}")
    mix = _splitmix64(seed)
    state = [0x80000000, lo, seed >> 32, mix & _M32, mix >> 32]
    for j in range(5, _MT_WORDS):
        state.append((_mt_next(state[-1], j) + 2 * state[-2] + 1) & _M32)
    words[:] = state
    raw[:8].view(np.uint64)[0] = seed  # initial_seed() reports the seed given
    return gen.set_state(torch.from_numpy(raw))
