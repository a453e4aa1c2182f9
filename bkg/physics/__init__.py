"""Pure physics of the NA64mu Z' search: no I/O, no global state, vectorised numpy.

constants (PDG values, materials), zprime (widths, Br(invisible), g-2), crosssection
(mu N -> mu N Z', WW and IWW), energyloss (muon energy loss in matter), signal (the
yield of eq. 6 and the background-free reach). Import the modules directly; this package
imports nothing at import time. Units: GeV, cm, g/cm2; pb or cm2/g.
"""

from __future__ import annotations

__all__ = ["constants", "crosssection", "energyloss", "signal", "zprime"]
