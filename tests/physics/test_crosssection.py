"""mu N -> mu N Z' cross sections on lead: form factors, WW/IWW spectra, totals, the table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from bkg.physics.constants import ALPHA, COPPER, GEV2_TO_PB, LEAD, M_MU_GEV
from bkg.physics.crosssection import (
    ChiTable,
    CrossSectionTable,
    d2sigma_dx_dtheta_pb,
    dsigma_dx_iww_light_lepton_pb,
    dsigma_dx_iww_pb,
    dsigma_dx_pb,
    dsigma_dx_ww_pb,
    form_factor_chi,
    form_factor_g2,
    sigma_total_pb,
)

E0 = 160.0


def _chi_quad(tmin, tmax):
    f = lambda lt: (1 - tmin / np.exp(lt)) * form_factor_g2(np.exp(lt))  # noqa: E731
    return quad(f, np.log(tmin), np.log(tmax), epsabs=0, epsrel=1e-12, limit=400)[0]


@pytest.mark.parametrize(
    ("tmin", "tmax"),
    [(1e-16, 0.0112), (1e-9, 0.0112), (1e-5, 0.02), (3e-3, 0.0112), (1e-12, 1.0), (0.5, 1.01)],
)
def test_chi_quadrature_and_table(tmin, tmax):
    ref = _chi_quad(tmin, tmax)  # scipy adaptive quadrature of the defining integral
    assert form_factor_chi(tmin, tmax) == pytest.approx(ref, rel=1e-9)
    assert ChiTable.build(LEAD).chi(tmin, tmax) == pytest.approx(ref, rel=1e-6)


def test_chi_edge_cases_and_shapes():
    assert form_factor_chi(0.02, 0.01) == 0.0
    tmin = np.geomspace(1e-12, 1e-2, 6)[:, None]
    out = form_factor_chi(tmin, np.array([0.0112, 0.05]))
    assert out.shape == (6, 2)
    assert np.all(np.diff(out[:, 0]) < 0)  # flux decreases with tmin


def test_g2_plateau():
    # Between atomic screening (1/a^2 ~ 4e-10 GeV^2) and the nuclear size (d ~ 5e-3 GeV^2)
    # the elastic form factor is Z^2 (Tsai); the inelastic part adds ~Z.
    assert form_factor_g2(1e-6) == pytest.approx(82**2 + 82, rel=2e-3)
    assert form_factor_g2(10.0) < 1.0  # nuclear and proton form factors cut off


@pytest.mark.parametrize("m", [0.001, 0.01, 0.1, 1.0])
@pytest.mark.parametrize("x", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_ww_angular_integral_against_quad(m, x):
    if x <= m / E0:
        pytest.skip("below threshold")
    u0 = m * m * (1 - x) / x + M_MU_GEV**2 * x
    th_c = np.sqrt(u0 / (x * E0 * E0))  # characteristic angle
    pts = [p for p in (0.1 * th_c, th_c, 10 * th_c, 100 * th_c) if p < 0.3]
    ref = quad(
        lambda th: d2sigma_dx_dtheta_pb(x, th, E0, m),
        0,
        0.3,
        points=pts,
        limit=500,
        epsrel=1e-10,
        epsabs=0,
    )[0]
    assert dsigma_dx_ww_pb(x, E0, m) == pytest.approx(ref, rel=1e-6)


def _sigma_reference(e0, m, rel=1e-5):
    """sigma_tot by scipy: quad over theta (in ln theta) inside quad over logit(x)."""
    x_lo, x_hi = m / e0, 1 - M_MU_GEV / e0

    def inner(s):
        x = 1 / (1 + np.exp(-s))
        u0 = m * m * (1 - x) / x + M_MU_GEV**2 * x
        f = lambda lt: d2sigma_dx_dtheta_pb(x, np.exp(lt), e0, m) * np.exp(lt)  # noqa: E731
        v = quad(
            f,
            np.log(1e-9),
            np.log(0.3),
            points=[0.5 * np.log(u0 / (x * e0 * e0))],
            epsrel=rel,
            epsabs=0,
            limit=200,
        )
        return v[0] * x * (1 - x)

    return quad(
        inner, np.log(x_lo / (1 - x_lo)), np.log(x_hi / (1 - x_hi)), epsrel=rel, epsabs=0, limit=200
    )[0]


@pytest.mark.parametrize("m", [0.01, 0.2])
def test_sigma_total_against_direct_double_integral(m, ww_table):
    ref = _sigma_reference(E0, m)
    assert sigma_total_pb(E0, m) == pytest.approx(ref, rel=1e-5)
    assert ww_table.sigma_pb(E0, m) == pytest.approx(ref, rel=1e-2)  # table interpolation <= 1%


def test_sigma_total_magnitude_160gev():
    # Order of magnitude for eps = 1 on Pb at 160 GeV (brief: O(1e8-1e10) pb below ~200 MeV).
    # Independent estimate at 1 GeV (Bjorken et al. light-lepton form, where the muon mass is
    # negligible): sigma ~ (4/3) alpha^3 chi/m^2 ln(...) ~ 2e7 pb; WW lies below IWW.
    m = np.array([0.001, 0.01, 0.1, 0.2, 1.0])
    s = sigma_total_pb(E0, m)
    assert np.all(np.diff(s) < 0)
    assert 1e9 < s[1] < 3e10
    assert 1e8 < s[3] < 3e9
    assert 1e6 < s[4] < 1e8
    assert sigma_total_pb(E0, 0.1, eps=1e-4) == pytest.approx(1e-8 * s[2], rel=1e-12)


def test_iww_closed_form_matches_angular_integral():
    # The IWW spectrum is the WW angular integral with chi held fixed and theta -> infinity.
    m, chi_fixed = 0.05, 1.0
    for x in (0.05, 0.4, 0.8, 0.99):

        def f(lt, x=x):
            th = np.exp(lt)
            u = -x * E0**2 * th**2 - m**2 * (1 - x) / x - M_MU_GEV**2 * x
            a2 = (
                2 * (2 - 2 * x + x * x) / (1 - x)
                + 4
                * (m**2 + 2 * M_MU_GEV**2)
                * (u * x + m**2 * (1 - x) + M_MU_GEV**2 * x**2)
                / u**2
            )
            return (
                2
                * ALPHA**3
                * E0**2
                * th
                * np.sqrt(x * x - m**2 / E0**2)
                * (1 - x)
                / u**2
                * a2
                * chi_fixed
                * th
            )

        ref = quad(f, np.log(1e-10), np.log(1e5), epsrel=1e-11, epsabs=0, limit=400)[0] * GEV2_TO_PB
        chi_iww = form_factor_chi(m**4 / (4 * E0**2), m**2 + M_MU_GEV**2)
        assert dsigma_dx_iww_pb(x, E0, m) / chi_iww == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize("m", [0.01, 0.1, 1.0])
def test_iww_light_lepton_limit_is_bjorken(m):
    # Massive-muon IWW with m_l -> 0 against Bjorken-Essig-Schuster-Toro's
    # 4 eps^2 alpha^3 chi sqrt(1 - m^2/E0^2) x (1 + x^2/(3(1-x)))/m^2 (same flux limits).
    # The only difference is the Z' velocity factor: BEST write sqrt(1 - m^2/E0^2) where the
    # phase space gives sqrt(1 - m^2/(x E0)^2); divided out, the two agree to rounding.
    ml = 1e-9
    x = np.array([0.05, 0.2, 0.5, 0.8, 0.95, 0.999])
    massive = dsigma_dx_iww_pb(x, E0, m, m_lepton_gev=ml)
    light = dsigma_dx_iww_light_lepton_pb(x, E0, m, tmax_gev2=m * m + ml * ml)
    velocity = np.sqrt(1 - (m / (x * E0)) ** 2) / np.sqrt(1 - (m / E0) ** 2)
    np.testing.assert_allclose(massive, light * velocity, rtol=1e-9)
    np.testing.assert_allclose(massive[x >= 0.2], light[x >= 0.2], rtol=1e-3)


def test_iww_exceeds_ww_and_muon_mass_matters():
    # IWW ignores the angle dependence of tmin: it overestimates, most at large mass.
    for m in (0.01, 0.1, 1.0):
        ratio = sigma_total_pb(E0, m, method="iww") / sigma_total_pb(E0, m)
        assert 1.0 < ratio < 3.0
    # For m << m_mu the light-lepton form (no muon mass) is far above the muon result.
    x = 0.5
    assert dsigma_dx_iww_light_lepton_pb(x, E0, 0.001) > 10 * dsigma_dx_iww_pb(x, E0, 0.001)


def test_spectrum_shapes_and_dispatch():
    x = np.linspace(0.001, 0.999, 50)
    d = dsigma_dx_ww_pb(x, E0, 0.1)
    assert d.shape == x.shape and np.all(d >= 0)
    np.testing.assert_array_equal(dsigma_dx_pb(x, E0, 0.1, method="ww"), d)
    assert dsigma_dx_ww_pb(0.0001, E0, 0.1) == 0.0  # below x = m/E0
    assert dsigma_dx_ww_pb(1 - 0.5 * M_MU_GEV / E0, E0, 0.1) == 0.0  # above 1 - m_mu/E0
    with pytest.raises(ValueError, match="method"):
        dsigma_dx_pb(x, E0, 0.1, method="exact")  # type: ignore[arg-type]
    assert sigma_total_pb(0.15, 0.1) == 0.0  # below threshold


def test_table_interpolates(ww_table):
    # its build time is a benchmark figure (bench/), not a unit-test assertion
    tab = CrossSectionTable.build(
        energies_gev=np.geomspace(10, 200, 30), masses_gev=np.geomspace(1e-3, 3, 60)
    )
    rng = np.random.default_rng(20220322)
    e = np.exp(rng.uniform(np.log(75), np.log(195), 12))
    m = np.exp(rng.uniform(np.log(1.1e-3), np.log(2.5), 12))
    direct = sigma_total_pb(e, m)
    np.testing.assert_allclose(tab.sigma_pb(e, m), direct, rtol=1e-2)
    np.testing.assert_allclose(ww_table.sigma_pb(e, m), direct, rtol=1e-2)
    x_cut = 1 - 80.0 / e
    np.testing.assert_allclose(
        ww_table.sigma_x_above_pb(e, m, x_cut), sigma_total_pb(e, m, x_min=x_cut), rtol=1e-2
    )
    # at the grid nodes the total is exact
    assert ww_table.sigma_pb(ww_table.energies_gev[3], ww_table.masses_gev[7]) == pytest.approx(
        ww_table.sigma_pb_grid[3, 7], rel=1e-12
    )


def test_table_fraction_limits(ww_table):
    s = ww_table.sigma_pb(160.0, 0.05)
    assert ww_table.sigma_x_above_pb(160.0, 0.05, -1.0) == pytest.approx(s, rel=1e-12)
    assert ww_table.sigma_x_above_pb(160.0, 0.05, 0.9999) < 1e-3 * s
    fr = ww_table.sigma_x_above_pb(160.0, 0.05, np.linspace(0, 1, 11)) / s
    assert np.all(np.diff(fr) <= 1e-12)
    assert ww_table.sigma_pb(160.0, 0.05, eps=1e-3) == pytest.approx(1e-6 * s)


def test_table_range_and_method_errors(ww_table):
    with pytest.raises(ValueError, match="outside"):
        ww_table.sigma_pb(250.0, 0.1)
    with pytest.raises(ValueError, match="outside"):
        ww_table.sigma_pb(160.0, 5.0)
    with pytest.raises(ValueError, match="method"):
        CrossSectionTable.build(method="exact")  # type: ignore[arg-type]


def test_iww_table_matches_direct():
    tab = CrossSectionTable.build(energies_gev=[100.0, 160.0], masses_gev=[0.01, 0.1], method="iww")
    assert tab.sigma_pb(160.0, 0.1) == pytest.approx(
        sigma_total_pb(160.0, 0.1, method="iww"), rel=1e-10
    )


def test_other_material_scales_roughly_as_z_squared():
    r = sigma_total_pb(E0, 0.1, material=COPPER) / sigma_total_pb(E0, 0.1)
    assert (29 / 82) ** 2 * 0.7 < r < (29 / 82) ** 2 * 1.6


def test_below_threshold_and_massless_inputs():
    # the Z' takes at least its mass: x < m/E0 has no cross section (light-lepton form too);
    # m = 0 has no finite total cross section and is refused instead of returning NaN
    assert dsigma_dx_iww_light_lepton_pb(0.001, E0, 1.0) == 0.0
    assert dsigma_dx_iww_light_lepton_pb(0.01, E0, 1.0) > 0.0
    with pytest.raises(ValueError, match="mass must be above 0"):
        sigma_total_pb(E0, 0.0)
