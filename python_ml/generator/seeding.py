"""Independent, reproducible random streams for the generator's components.

Each component (and each day, for per-day work) draws from its own stream,
derived from the user seed and a fixed key, so changing one component's
draws never shifts another's and days can be generated in any order.
"""

from __future__ import annotations

import zlib

import numpy as np


def component_rng(seed: int, component: str, *keys: int) -> np.random.Generator:
    """Return the random generator of ``component`` (and optional integer keys).

    Parameters
    ----------
    seed : int
        The dataset seed chosen by the user (non-negative).
    component : str
        A fixed name such as ``"catalog"``; it is hashed with CRC-32, which
        is stable across Python runs unlike ``hash()``.
    *keys : int
        Further non-negative integers, such as a day index.
    """
    entropy = [seed, zlib.crc32(component.encode("ascii")), *keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))
