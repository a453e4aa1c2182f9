"""The largest sizes the tool accepts: every count a user gives has a maximum checked before
any work starts (docs/guarantees.md, "Limits on sizes", says why each is what it is).

This module imports nothing heavy: the command-line options read it when ``bkg`` starts.
The config schema (``bkg/config/schema.json``) states the same maxima for its keys; a test
keeps the two equal.
"""

from __future__ import annotations

#: Beam muons one `bkg samples` run simulates (``samples.n_mot``, ``--n-mot``): 1e4 chunks
#: of the default 1e6, about 430 GB of beam ntuples and 1 h of CPU on the reference machine.
MAX_SIMULATED_MOT = 1e10
#: Events of the other samples (``samples.hadron_events``, ``samples.dimuon_events``;
#: ``leading_hadron_events`` and ``signal_events_per_mass`` cost 5 and 50 times more per
#: event, so their maxima are lower): about 1 h of CPU each.
MAX_SAMPLE_EVENTS = 10_000_000_000
MAX_LEADING_HADRON_EVENTS = 1_000_000_000
MAX_SIGNAL_EVENTS_PER_MASS = 100_000_000
#: Signal mass points of the samples (``samples.signal_masses_gev``).
MAX_SIGNAL_MASSES = 100
#: Events per chunk (``samples.chunk_size``): a worker holds ~0.45 kB per event while it
#: generates a chunk (0.64 GB peak at 1e6), so 1e7 needs ~4.5 GB per worker.
MAX_CHUNK_SIZE = 10_000_000
#: Muons on target of the physics projection (``n_mot``, ``bkg sensitivity --n-mot``):
#: NA64mu plans ~1e13-1e14; at 1e15 the default background is 1.9e4 events and pyhf's
#: fits still converge (1e20: "Inequality constraints incompatible").
MAX_PROJECTION_MOT = 1e15
#: Observed events in the signal box (``bkg limits --observed``): the toys tabulate the
#: Poisson CDF over mean +- 40 sqrt(mean), 8e4 values at 1e6 (1e24 asked for 2.25 PiB).
MAX_OBSERVED = 1_000_000
#: S4 geometries of one `bkg trigger-scan` (each simulates ``--n-beam`` muons again).
MAX_GEOMETRIES = 50
#: The seed: any non-negative integer numpy's SeedSequence takes that fits in int64.
MAX_SEED = 2**63 - 1
