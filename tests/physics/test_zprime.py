"""Z' model: widths (eqs. 4-5), Br(invisible) and Delta a_mu (eq. 3)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from bkg.physics import zprime
from bkg.physics.constants import M_MU_GEV, M_TAU_GEV
from bkg.physics.zprime import (
    br_invisible,
    delta_a_mu,
    g2_loop_integral,
    g_prime_for_delta_a_mu,
    total_width_gev,
    width_leptons_gev,
    width_neutrinos_gev,
)


def test_delta_a_mu_light_limit():
    # Eq. 3 with m -> 0: the integrand becomes (1 - x), Delta a = g'^2/(8 pi^2).
    g = 1e-3
    assert delta_a_mu(g, 1e-7) == pytest.approx(g**2 / (8 * np.pi**2), rel=1e-5)


@pytest.mark.parametrize(("m", "rel"), [(10.0, 5e-3), (100.0, 1e-4), (1000.0, 2e-6)])
def test_delta_a_mu_heavy_limit(m, rel):
    # Eq. 3 with m >> m_mu: Delta a -> g'^2 m_mu^2 / (12 pi^2 m^2); corrections O(m_mu^2/m^2 ln).
    g = 0.3
    assert delta_a_mu(g, m) == pytest.approx(g**2 * M_MU_GEV**2 / (12 * np.pi**2 * m**2), rel=rel)


@pytest.mark.parametrize("m", [1e-4, 0.01, 0.1, 0.2, 1.0, 30.0])
def test_loop_integral_against_quad(m):
    r = (m / M_MU_GEV) ** 2
    brk = [min(np.sqrt(r), 0.5), max(1 - 1 / r, 0.5)] if r > 1 else [min(np.sqrt(r), 0.5)]
    ref = quad(
        lambda x: x * x * (1 - x) / (x * x + (1 - x) * r),
        0,
        1,
        points=brk,
        epsabs=0,
        epsrel=1e-12,
        limit=400,
    )[0]
    assert g2_loop_integral(m) == pytest.approx(ref, rel=1e-9)


def test_delta_a_mu_vectorised_and_inverse():
    m = np.geomspace(1e-3, 1.0, 7)
    g = g_prime_for_delta_a_mu(251e-11, m)
    assert g.shape == m.shape
    np.testing.assert_allclose(delta_a_mu(g, m), 251e-11, rtol=1e-12)
    assert np.all(np.diff(g) > 0)  # heavier Z' needs a larger coupling
    assert np.isnan(g_prime_for_delta_a_mu(-1e-11, 0.1))


@settings(max_examples=30, deadline=None)
@given(st.floats(1e-6, 1.0), st.floats(1e-4, 10.0))
def test_delta_a_mu_scales_as_g_squared(g, m):
    assert delta_a_mu(g, m) == pytest.approx(g * g * delta_a_mu(1.0, m), rel=1e-12)


def test_widths_closed_forms():
    g, m = 4e-4, 0.5
    ap = g * g / (4 * np.pi)
    assert width_neutrinos_gev(g, m) == pytest.approx(ap * m / 3)  # eq. 4, mu + tau flavours
    r = M_MU_GEV**2 / m**2
    assert width_leptons_gev(g, m, M_MU_GEV) == pytest.approx(
        ap * m / 3 * (1 + 2 * r) * np.sqrt(1 - 4 * r)
    )  # eq. 5
    assert width_leptons_gev(g, m, M_TAU_GEV) == 0.0  # below 2 m_tau
    assert width_leptons_gev(g, 0.2, M_MU_GEV) == 0.0  # below 2 m_mu
    assert total_width_gev(g, m) == pytest.approx(
        ap * m / 3 * (1 + (1 + 2 * r) * np.sqrt(1 - 4 * r))
    )
    m5 = 5.0  # above both thresholds
    rt, rm = M_TAU_GEV**2 / m5**2, M_MU_GEV**2 / m5**2
    expected = (
        ap * m5 / 3 * (1 + (1 + 2 * rm) * np.sqrt(1 - 4 * rm) + (1 + 2 * rt) * np.sqrt(1 - 4 * rt))
    )
    assert total_width_gev(g, m5) == pytest.approx(expected)


def test_br_invisible():
    below = np.geomspace(1e-4, 2 * M_MU_GEV * 0.999, 20)
    np.testing.assert_array_equal(br_invisible(below), 1.0)
    assert br_invisible(0.0) == 1.0  # both widths vanish at m = 0: the limit, not 0/0
    # By hand at 500 MeV: Br = 1 / (1 + (1 + 2r) sqrt(1 - 4r)), r = m_mu^2 / m^2.
    r = M_MU_GEV**2 / 0.5**2
    by_hand = 1.0 / (1.0 + (1.0 + 2.0 * r) * np.sqrt(1.0 - 4.0 * r))
    assert br_invisible(0.5) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.5032, abs=1e-4)
    assert br_invisible(3.0) == pytest.approx(0.5, rel=1e-3)  # two neutrino flavours vs muons
    assert br_invisible(10.0) < 0.36  # tau channel open


def test_doctests():
    assert doctest.testmod(zprime).failed == 0


def test_g2_band_reaching_zero_has_a_zero_lower_edge() -> None:
    from bkg.physics.zprime import g2_band_g_prime, g_prime_for_delta_a_mu

    m = np.array([0.01, 0.1])
    low, central, high = g2_band_g_prime(38e-11, 63e-11, 2.0, m)
    np.testing.assert_array_equal(low, 0.0)
    np.testing.assert_allclose(central, g_prime_for_delta_a_mu(38e-11, m))
    np.testing.assert_allclose(high, g_prime_for_delta_a_mu(164e-11, m))


def test_sensitivity_says_when_the_band_reaches_zero() -> None:
    from bkg.config import from_dict
    from bkg.report.sensitivity import compute_sensitivity

    cfg = from_dict({"g_minus_2": {"reference": "2025"}, "signal": {"masses_gev": {"points": 6}}})
    result = compute_sensitivity(cfg)
    assert result.band_reaches_zero
    assert result.covered_up_to_gev() == 0.0
    assert result.ratio_to_band(0.01) == float("inf")
    assert "reaches g' = 0" in result.summary()
