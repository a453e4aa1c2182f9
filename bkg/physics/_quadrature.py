"""Fixed Gauss-Legendre rules used by the vectorised integrals of this package (private)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gauss_legendre", "gauss_legendre_unit"]


@lru_cache(maxsize=32)
def _nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gauss_legendre_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss-Legendre rule on [0, 1] (read-only arrays)."""
    x, w = _nodes(int(n))
    return 0.5 * (x + 1.0), 0.5 * w


def gauss_legendre(
    n: int, a: np.ndarray | float, b: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [a, b], broadcast over the shapes of a and b.

    Args:
        n: number of nodes.
        a: lower limits (any shape S).
        b: upper limits (shape broadcastable with a).

    Returns:
        (nodes, weights), each of shape S + (n,).
    """
    u, w = gauss_legendre_unit(n)
    a = np.asarray(a, dtype=float)[..., None]
    b = np.asarray(b, dtype=float)[..., None]
    return a + (b - a) * u, (b - a) * w
