"""Physical constants and target materials (natural units: GeV, cm, g/cm2, pb).

Masses come from the ``particle`` package (PDG); alpha, hbar*c, Avogadro and the
proton magnetic moment are CODATA/PDG values written out with their source.

>>> round(M_MU_GEV, 10)
0.1056583755
>>> LEAD.z, LEAD.a_g_mol
(82, 207.2)
"""

from __future__ import annotations

from dataclasses import dataclass

from particle import Particle

__all__ = [
    "ALPHA",
    "COPPER",
    "GEV2_TO_PB",
    "HBARC_GEV_CM",
    "IRON",
    "LEAD",
    "MATERIALS",
    "MU_P",
    "M_E_GEV",
    "M_MU_GEV",
    "M_P_GEV",
    "M_TAU_GEV",
    "N_AVOGADRO",
    "PB_TO_CM2",
    "R_E_CM",
    "Material",
]

# Fine-structure constant at q^2 = 0 (the value the paper and DMG4 use, 1/137.036).
ALPHA: float = 1.0 / 137.036

# Masses from the particle package (PDG), MeV -> GeV.  PDG IDs: e- 11, mu- 13, tau- 15, p 2212.
_MEV_TO_GEV = 1.0e-3


def _pdg_mass_gev(pdgid: int) -> float:
    """Mass of a particle from the particle package's PDG table, MeV -> GeV."""
    mass = Particle.from_pdgid(pdgid).mass
    if mass is None:  # pragma: no cover - all four are in every PDG table
        raise LookupError(f"no PDG mass for {pdgid}")
    return float(mass) * _MEV_TO_GEV


M_E_GEV: float = _pdg_mass_gev(11)
M_MU_GEV: float = _pdg_mass_gev(13)
M_TAU_GEV: float = _pdg_mass_gev(15)
M_P_GEV: float = _pdg_mass_gev(2212)

# Proton magnetic moment in nuclear magnetons (2.7928...; Tsai's inelastic form factor).
MU_P: float = 2.792847344

# Avogadro constant, 1/mol (exact in the 2019 SI).
N_AVOGADRO: float = 6.02214076e23

# (hbar c)^2 = 0.3893793721 GeV^2 mb = 0.3893793721e9 GeV^2 pb (PDG physical constants).
GEV2_TO_PB: float = 0.3893793721e9
# hbar c = 197.3269804 MeV fm = 1.973269804e-14 GeV cm.
HBARC_GEV_CM: float = 1.973269804e-14
# 1 pb = 1e-36 cm^2.
PB_TO_CM2: float = 1.0e-36
# Classical electron radius r_e = alpha hbar c / (m_e c^2), cm (computed, 2.8179e-13 cm).
R_E_CM: float = ALPHA * HBARC_GEV_CM / M_E_GEV


@dataclass(frozen=True)
class Material:
    """A homogeneous target/absorber made of one element.

    The numbers (Z, A, density, radiation length, mean excitation energy, Sternheimer
    density-effect parameters) are the PDG "Atomic and nuclear properties of
    materials" values (Sternheimer, Berger & Seltzer, ADNDT 30 (1984) 261, as tabulated
    by Groom et al., ADNDT 78 (2001) 183).

    Attributes:
        name: human-readable name.
        z: atomic number Z.
        a_g_mol: atomic weight A in g/mol.
        density_g_cm3: density rho in g/cm3.
        x0_g_cm2: radiation length X0 in g/cm2.
        mean_excitation_gev: mean excitation energy I in GeV.
        sternheimer_cbar: density-effect parameter -C (dimensionless).
        sternheimer_x0: density-effect parameter x0 (x = log10(beta gamma)).
        sternheimer_x1: density-effect parameter x1.
        sternheimer_a: density-effect parameter a.
        sternheimer_k: density-effect exponent k (often called m).
        sternheimer_delta0: density-effect value delta0 below x0 (conductors).
    """

    name: str
    z: int
    a_g_mol: float
    density_g_cm3: float
    x0_g_cm2: float
    mean_excitation_gev: float
    sternheimer_cbar: float
    sternheimer_x0: float
    sternheimer_x1: float
    sternheimer_a: float
    sternheimer_k: float
    sternheimer_delta0: float

    @property
    def atoms_per_gram(self) -> float:
        """Number of atoms per gram, N_A / A (1/g)."""
        return N_AVOGADRO / self.a_g_mol

    @property
    def x0_cm(self) -> float:
        """Radiation length in cm."""
        return self.x0_g_cm2 / self.density_g_cm3

    @property
    def z_over_a(self) -> float:
        """Z/A in mol/g."""
        return self.z / self.a_g_mol


# PDG atomic & nuclear properties: Pb (Z=82), I = 823 eV, X0 = 6.37 g/cm2.
LEAD = Material(
    name="Pb",
    z=82,
    a_g_mol=207.2,
    density_g_cm3=11.35,
    x0_g_cm2=6.37,
    mean_excitation_gev=823.0e-9,
    sternheimer_cbar=6.2018,
    sternheimer_x0=0.3776,
    sternheimer_x1=3.8073,
    sternheimer_a=0.09359,
    sternheimer_k=3.1608,
    sternheimer_delta0=0.14,
)

# PDG: Cu (Z=29), I = 322 eV, X0 = 12.86 g/cm2 (VHCAL absorber).
COPPER = Material(
    name="Cu",
    z=29,
    a_g_mol=63.546,
    density_g_cm3=8.96,
    x0_g_cm2=12.86,
    mean_excitation_gev=322.0e-9,
    sternheimer_cbar=4.4190,
    sternheimer_x0=-0.0254,
    sternheimer_x1=3.2792,
    sternheimer_a=0.14339,
    sternheimer_k=2.9044,
    sternheimer_delta0=0.08,
)

# PDG: Fe (Z=26), I = 286 eV, X0 = 13.84 g/cm2 (HCAL absorber).
IRON = Material(
    name="Fe",
    z=26,
    a_g_mol=55.845,
    density_g_cm3=7.874,
    x0_g_cm2=13.84,
    mean_excitation_gev=286.0e-9,
    sternheimer_cbar=4.2911,
    sternheimer_x0=-0.0012,
    sternheimer_x1=3.1531,
    sternheimer_a=0.14680,
    sternheimer_k=2.9632,
    sternheimer_delta0=0.12,
)

MATERIALS: dict[str, Material] = {m.name: m for m in (LEAD, COPPER, IRON)}
