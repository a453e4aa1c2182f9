"""HEPData submission made with hepdata_lib: Table I, the expected limit and the g-2 band.

hepdata_lib validates every file with hepdata-validator when it writes them;
an invalid submission raises here rather than at upload time.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import math
import os
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["write_hepdata"]

REFERENCE = "PRD 105, 052006 (2022)"
#: nucleon mass (GeV, the mean of proton and neutron) for the fixed-target sqrt(s)
M_NUCLEON = 0.9389


def sqrt_s_gev(beam_energy_gev: float) -> float:
    """Centre-of-mass energy (GeV) of a muon of ``beam_energy_gev`` on a nucleon at rest.

    HEPData's ``cmenergies`` keyword is sqrt(s), not the beam energy: 17.3 GeV at 160 GeV.
    """
    from bkg.physics.constants import M_MU_GEV

    return math.sqrt(M_NUCLEON**2 + M_MU_GEV**2 + 2.0 * beam_energy_gev * M_NUCLEON)


# Table names become file names (lower-cased, spaces to "_"), so they stay free of
# ':', quotes and '%'; the description carries the full title.


def _var(name: str, values: Sequence[float], *, independent: bool, units: str = "") -> Any:
    from hepdata_lib import Variable

    var = Variable(
        name,
        is_independent=independent,
        is_binned=False,
        units=units,
        zero_uncertainties_warning=False,
    )
    var.values = [float(v) for v in values]
    return var


def _asym(label: str, down: Sequence[float], up: Sequence[float]) -> Any:
    from hepdata_lib import Uncertainty

    unc = Uncertainty(label, is_symmetric=False)
    unc.values = [(-float(d), float(u)) for d, u in zip(down, up, strict=True)]
    return unc


def _table1(table1: Mapping[str, Any]) -> Any:
    from hepdata_lib import Table

    tab = Table("Table I")
    tab.description = (
        "Background sources of the NA64mu Z' -> invisible search and their expected level per "
        f"muon on target, from tail fits to simulated samples (reproduction of {REFERENCE}, Table I)."
    )
    tab.location = "Table I"
    tab.keywords = {"observables": ["N"], "reactions": ["MU- NUCLEUS --> MU- NUCLEUS Z'"]}
    sources = table1["sources"]
    # a source that is a 90% CL upper bound says so in its label and carries no errors
    labels = [s["label"] + (" (90% CL upper limit)" if s["upper_bound"] else "") for s in sources]
    src = _var("Source", range(1, len(labels) + 1), independent=True)
    src.values = labels

    def unc(key: str) -> list[float]:
        return [0.0 if s["upper_bound"] else s[key] for s in sources]

    level = _var("Level per MOT", [s["level_per_mot"] for s in sources], independent=False)
    level.add_uncertainty(_asym("stat", unc("stat_down"), unc("stat_up")))
    level.add_uncertainty(_asym("syst", unc("syst_down"), unc("syst_up")))
    tab.add_variable(src)
    tab.add_variable(level)
    return tab


def _limits(limits: Mapping[str, Any], *, beam_energy_gev: float) -> Any:
    from hepdata_lib import Table

    tab = Table("Expected limit on g-prime")
    tab.description = (
        f"Expected {100 * limits['confidence_level']:.0f}% CL CLs upper limit on the L_mu - L_tau coupling g' "
        f"versus the Z' mass for {limits['n_mot']:.3g} MOT of {beam_energy_gev:g} GeV, with the 1 and "
        f"2 sigma bands ({limits['calculator']}; the Table I background, {limits['background_events']:.3g} "
        "events). The paper's Fig. 6 draws the background-free N > 2.3 curve instead."
    )
    tab.location = "Fig. 6"
    tab.keywords = {
        "observables": ["g'"],
        "cmenergies": [round(sqrt_s_gev(beam_energy_gev), 2)],
    }
    mass = _var("m_Zprime", limits["masses_gev"], independent=True, units="GeV")
    med = limits["g_prime_expected"]
    exp = _var("g' expected", med, independent=False)
    m1, p1 = limits["g_prime_minus1"], limits["g_prime_plus1"]
    m2, p2 = limits["g_prime_minus2"], limits["g_prime_plus2"]
    exp.add_uncertainty(
        _asym(
            "1 sigma",
            [a - b for a, b in zip(med, m1, strict=True)],
            [b - a for a, b in zip(med, p1, strict=True)],
        )
    )
    exp.add_uncertainty(
        _asym(
            "2 sigma",
            [a - b for a, b in zip(med, m2, strict=True)],
            [b - a for a, b in zip(med, p2, strict=True)],
        )
    )
    tab.add_variable(mass)
    tab.add_variable(exp)
    if limits.get("g_prime_observed") is not None:
        tab.add_variable(_var("g' observed", limits["g_prime_observed"], independent=False))
    return tab


def _g2(band: Mapping[str, Any]) -> Any:
    from hepdata_lib import Table

    tab = Table("g-2 band")
    tab.description = (
        f"Coupling g' that explains Delta a_mu = ({band['delta_a_mu'] * 1e11:.0f} +- {band['sigma'] * 1e11:.0f})e-11 "
        f"({band['reference']}) within +-{band['band_sigmas']:g} sigma."
    )
    tab.location = "Fig. 6"
    tab.keywords = {"observables": ["g'"]}
    tab.add_variable(_var("m_Zprime", band["masses_gev"], independent=True, units="GeV"))
    tab.add_variable(_var("g' band low", band["low"], independent=False))
    tab.add_variable(_var("g' central", band["central"], independent=False))
    tab.add_variable(_var("g' band high", band["high"], independent=False))
    return tab


def _deterministic_tarball(folder: Path, target: Path) -> None:
    """The upload tarball with fixed mtimes/owners, so identical runs give identical bytes."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in files:
                info = tarfile.TarInfo(path.name)
                info.size = path.stat().st_size
                info.mode = 0o644
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)


def write_hepdata(
    out_dir: str | Path,
    *,
    table1: Mapping[str, Any],
    limits: Mapping[str, Any],
    g2_band: Mapping[str, Any],
    beam_energy_gev: float,
    workspace_files: Sequence[Path] = (),
) -> Path:
    """Write and validate the submission folder; returns the folder.

    The pyhf likelihood (BkgOnly + patchset) is attached as additional resources. The
    upload archive goes beside the folder (``<folder>.tar.gz``), so that the folder itself
    is a valid submission directory.
    """
    from hepdata_lib import Submission

    out_dir = Path(out_dir)
    sub = Submission()
    sub.comment = f"na64mu-bkg reproduction of the NA64mu projection, {REFERENCE}."
    for tab in (_table1(table1), _limits(limits, beam_energy_gev=beam_energy_gev), _g2(g2_band)):
        sub.add_table(tab)
    for path in workspace_files:
        sub.add_additional_resource(
            f"pyhf likelihood: {Path(path).name}",
            str(Path(path).resolve()),  # hepdata_lib runs in another working directory
            copy_file=True,
            file_type="HistFactory",
        )
    captured = io.StringIO()
    out_dir = out_dir.resolve()
    work = out_dir.parent / f".{out_dir.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    try:
        # hepdata_lib writes submission.tar.gz into the working directory.
        os.chdir(work)
        with contextlib.redirect_stdout(captured):
            sub.create_files(str(out_dir), validate=True, remove_old=True)
        _deterministic_tarball(out_dir, out_dir.with_name(out_dir.name + ".tar.gz"))
    finally:
        os.chdir(previous)
        shutil.rmtree(work, ignore_errors=True)
    log.debug("hepdata_lib: %s", captured.getvalue())
    return out_dir
