"""Fast random draws shared by the fast simulation.

numpy's ziggurat ``Generator.standard_normal`` costs ~9 ns per variate on the
reference machine (float32 or float64 alike), about a quarter of the beam
simulation. :func:`normal32` draws the same standard normal law with the
Box-Muller transform, (R cos phi, R sin phi) with R = sqrt(-2 ln V),
V = 1 - U1 and phi = 2 pi U2, in ~3.5 ns: U1 is a float64 uniform (multiples of
2^-53), so V = 1 - U1 is exact and lies in [2^-53, 1]; V is then rounded to
float32 (relative error 6e-8, and 2^-53 is a normal float32) and the logarithm,
the square root, the angle and the result are float32 (numpy's SIMD float32
log, sin and cos; the float64 ``log1p`` alone cost ~18 ns). R still reaches
sqrt(-2 ln 2^-53) = 8.6 sigma (a float32 U1 would cut the tails at 5.8 sigma).
Use it for smearing whose result is stored as float32; draws that feed a
far-tail extrapolation keep numpy's float64 ``standard_normal``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normal32"]

_TWO_PI = np.float32(2.0 * np.pi)


def normal32(rng: np.random.Generator, n: int) -> np.ndarray:
    """n standard normal variates (float32) by Box-Muller; one pair per two variates.

    Args:
        rng: random generator (consumes ceil(n/2) float64 and ceil(n/2) float32 uniforms).
        n: number of variates.

    Returns:
        float32 array of shape (n,).
    """
    m = (n + 1) // 2
    u = rng.random(m)
    np.subtract(1.0, u, out=u)  # V = 1 - U1 in [2^-53, 1], exact: never ln 0
    r = u.astype(np.float32)  # rounding 6e-8 relative; 2^-53 is a normal float32
    np.log(r, out=r)
    r *= np.float32(-2.0)
    np.sqrt(r, out=r)
    phi = rng.random(m, dtype=np.float32)
    phi *= _TWO_PI
    out = np.empty(2 * m, dtype=np.float32)
    np.multiply(np.cos(phi, out=out[:m]), r, out=out[:m])
    np.multiply(np.sin(phi, out=phi), r, out=out[m:])
    return out[:n]
