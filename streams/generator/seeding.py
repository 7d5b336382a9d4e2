"""Named, independent random streams derived from one seed (no global RNG, no hash())."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["Stream", "device_id", "mix64", "rng_for"]

_MASK = (1 << 64) - 1


class Stream(IntEnum):
    """What a random stream is for; part of its seed, so streams never overlap."""

    POPULATION = 1
    WINDOW = 2
    TRAVEL = 3
    COMPROMISE = 4
    DRIFT = 5


def rng_for(seed: int, stream: Stream, *path: int) -> np.random.Generator:
    """A PCG64 generator for (`seed`, `stream`, `path`): same inputs, same numbers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(stream), *path])))


def mix64(*values: int) -> int:
    """A 64-bit splitmix hash of non-negative ints, stable across processes and runs."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        state ^= state >> 31
        state = state * 0x94D049BB133111EB & _MASK
        state ^= state >> 29
    return state


def device_id(seed: int, *path: int) -> str:
    """An opaque device id for (`seed`, `path`); cards' and fraudsters' ids look alike."""
    return f"dev-{mix64(seed, *path):016x}"
