"""Pure physics of the NA64mu Z' search: no I/O, no global state, vectorised numpy.

Modules (import them directly; this package imports nothing heavy at import time):

* :mod:`bkg.physics.constants` - PDG constants (masses via the ``particle`` package) and
  target materials (:data:`~bkg.physics.constants.LEAD`, COPPER, IRON);
* :mod:`bkg.physics.zprime` - L_mu - L_tau Z' widths, Br(invisible), (g-2)_mu (eqs. 2-5);
* :mod:`bkg.physics.crosssection` - mu N -> mu N Z' cross sections (WW and IWW) and the
  :class:`~bkg.physics.crosssection.CrossSectionTable`;
* :mod:`bkg.physics.energyloss` - muon ionisation and radiative energy loss in matter;
* :mod:`bkg.physics.signal` - the signal yield of eq. 6 and the background-free reach.

Units: GeV, cm, g/cm2; cross sections in pb (per nucleus) or cm2/g (per unit mass
thickness).
"""

from __future__ import annotations

__all__ = ["constants", "crosssection", "energyloss", "signal", "zprime"]
