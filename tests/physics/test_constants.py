"""Constants and materials against PDG/CODATA values."""

from __future__ import annotations

import doctest

import pytest

from bkg.physics import constants
from bkg.physics.constants import (
    ALPHA,
    COPPER,
    GEV2_TO_PB,
    IRON,
    LEAD,
    M_E_GEV,
    M_MU_GEV,
    M_P_GEV,
    M_TAU_GEV,
    R_E_CM,
)


def test_masses_from_particle_package():
    # PDG 2024: m_mu = 105.6583755 MeV, m_e = 0.51099895 MeV,
    # m_tau = 1776.9 MeV (+-0.1), m_p = 938.27209 MeV.
    assert M_MU_GEV == pytest.approx(0.1056583755, rel=1e-9)
    assert M_E_GEV == pytest.approx(0.51099895e-3, rel=1e-8)
    assert M_TAU_GEV == pytest.approx(1.7769, rel=1e-4)
    assert M_P_GEV == pytest.approx(0.93827209, rel=1e-8)


def test_derived_constants():
    assert 1.0 / ALPHA == pytest.approx(137.036, rel=1e-12)  # CODATA
    assert GEV2_TO_PB == pytest.approx(0.3893793721e9, rel=1e-10)  # PDG (hbar c)^2
    # CODATA 2018 classical electron radius 2.8179403262e-13 cm; alpha = 1/137.036 differs
    # from CODATA's 1/137.035999 by 3e-7.
    assert R_E_CM == pytest.approx(2.8179403262e-13, rel=1e-6, abs=0.0)


def test_materials():
    # PDG atomic and nuclear properties.
    assert (LEAD.z, LEAD.a_g_mol, LEAD.density_g_cm3, LEAD.x0_g_cm2) == (82, 207.2, 11.35, 6.37)
    assert LEAD.mean_excitation_gev == pytest.approx(823e-9)
    assert LEAD.x0_cm == pytest.approx(0.5612, rel=1e-3)  # PDG: X0(Pb) = 0.5612 cm
    assert COPPER.x0_cm == pytest.approx(1.436, rel=1e-3)  # PDG: 1.436 cm
    assert IRON.x0_cm == pytest.approx(1.757, rel=1e-3)  # PDG: 1.757 cm
    assert LEAD.atoms_per_gram == pytest.approx(6.02214076e23 / 207.2)


def test_material_is_frozen():
    with pytest.raises(AttributeError):
        LEAD.z = 1  # type: ignore[misc]


def test_doctests():
    assert doctest.testmod(constants).failed == 0
