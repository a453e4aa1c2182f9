"""Trigger and veto counters: S0, S1, S_mu, the off-axis S4, V1 and Vm1,2.

Geometry (z from the ECAL, which sits right before the MS2 magnet): S0 and
S1 are discs of ``radius_cm`` on the beam axis in front of the ECAL; S4 is
``z_from_ms2_m`` behind MS2, in front of the HCAL, and spans x in
[offset, offset + width] (the bend side), |y| < height/2; V1, in the same plane,
vetoes undeflected beam muons (paper Sec. II): it spans x in [offset - w, offset),
next to S4's inner edge and across the beam axis, |y| < h/2; S_mu (size w x h,
centred on S4's x centre like the HCAL) is 3 m further. A muon of momentum p is
bent by 0.3 B L / p (rad).
"""

from __future__ import annotations

import numpy as np

__all__ = ["beam_counters", "downstream_position", "s4_hit", "s_mu_hit", "v1_hit"]


def beam_counters(x_cm: np.ndarray, y_cm: np.ndarray, *, radius_cm: float) -> np.ndarray:
    """True where a beam particle at (x, y) crosses a disc counter of ``radius_cm``."""
    return x_cm * x_cm + y_cm * y_cm < radius_cm * radius_cm


def downstream_position(
    x_cm: np.ndarray,
    y_cm: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    p_gev: np.ndarray,
    *,
    z_m: float,
    field_tm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) in cm at z_m behind MS2 of a muon leaving the ECAL at (x, y) with slopes (tx, ty)."""
    bend = 0.3 * field_tm / np.maximum(p_gev, 1e-3)
    return x_cm + 100.0 * z_m * (tx + bend), y_cm + 100.0 * z_m * ty


def s4_hit(
    x_cm: np.ndarray, y_cm: np.ndarray, *, offset_cm: float, size_cm: tuple[float, float]
) -> np.ndarray:
    """True where (x, y) at the S4 plane falls on S4."""
    return (x_cm >= offset_cm) & (x_cm <= offset_cm + size_cm[0]) & (np.abs(y_cm) <= size_cm[1] / 2)


def s_mu_hit(
    x_cm: np.ndarray, y_cm: np.ndarray, *, centre_x_cm: float, size_cm: tuple[float, float]
) -> np.ndarray:
    """True where (x, y) at the S_mu plane falls on S_mu."""
    return (np.abs(x_cm - centre_x_cm) <= size_cm[0] / 2) & (np.abs(y_cm) <= size_cm[1] / 2)


def v1_hit(
    x_cm: np.ndarray, y_cm: np.ndarray, *, s4_offset_cm: float, size_cm: tuple[float, float]
) -> np.ndarray:
    """True where (x, y) at the S4 plane falls on V1 (the strip beside S4, over the beam axis)."""
    return (
        (x_cm >= s4_offset_cm - size_cm[0])
        & (x_cm < s4_offset_cm)
        & (np.abs(y_cm) <= size_cm[1] / 2)
    )
