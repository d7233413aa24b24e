"""Modified uniformly redundant arrays (Gottesman & Fenimore 1989).

The IBIS mask is a MURA of prime order 53 replicated cyclically to 95×95 elements
(``instruments.md`` §1.2). The basic pattern ``A`` correlates with its decoding array
``G = 2A - 1`` (``G[0, 0] = +1``) to an exact delta function, which is what makes the
balanced cross-correlation of ISGRI images work.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mura", "mura_decoder", "extend_cyclic", "ibis_mask"]


def _quadratic_residue_sign(p: int) -> np.ndarray:
    c = -np.ones(p, dtype=np.int8)
    c[np.unique((np.arange(1, p) ** 2) % p)] = 1
    c[0] = -1  # 0 is not a non-zero residue
    return c


def mura(p: int = 53) -> np.ndarray:
    """The p×p MURA basic pattern, 1 = open; ``p`` must be a prime of the form 4m+1."""
    if p % 4 != 1 or any(p % k == 0 for k in range(2, int(p**0.5) + 1)):
        raise ValueError(f"MURA order must be a prime 4m+1, got {p}")
    c = _quadratic_residue_sign(p)
    a = (np.outer(c, c) == 1).astype(np.uint8)
    a[0, :] = 0
    a[1:, 0] = 1
    return a


def mura_decoder(a: np.ndarray) -> np.ndarray:
    """Decoding array G = 2A - 1 with G[0, 0] = +1."""
    g = 2 * a.astype(np.int8) - 1
    g[0, 0] = 1
    return g


def extend_cyclic(a: np.ndarray, size: int, origin: int) -> np.ndarray:
    """``M[i, j] = A[(i - origin) mod p, (j - origin) mod p]`` for a size×size mask."""
    p = a.shape[0]
    idx = (np.arange(size) - origin) % p
    return a[np.ix_(idx, idx)]


def ibis_mask() -> np.ndarray:
    """The 95×95 IBIS mask: MURA-53 extended cyclically with origin 21 (53 + 2·21 = 95)."""
    return extend_cyclic(mura(53), 95, 21)
