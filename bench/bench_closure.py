"""Direct estimates by biased simulation: events/s, effective sample size, time to 30%.

For each source whose Table I level can rest on a direct estimate, runs it on the default
configuration, then, if the relative statistical error of the level Table I would use is
above 30%, once more with the number of events that 1/sqrt(N) says reaches 30% (x 1.2):

* momentum mismatch and punch-through: their biased simulation (bkg.sim.biasing.DIRECT),
  P(x >= cut). With no biased event beyond the cut (the mismatch's forced kinks all fail
  the track chi2) the estimate is a 90% CL bound, which has no relative error: printed as
  such, with the time it took;
* non-hermeticity: the forced escape paths (bkg.sim.escape), the level selected into the
  signal box (Table I's) and region D (the closure's).

Prints events/s, the effective events, the relative error and the time. The issue's
target: 30% within 10 minutes on 2 cores.

    python bench/bench_closure.py [N_START]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from bkg.config import load_config

TARGET = 0.30
BUDGET_S = 600.0
#: (n_generated, effective events, value, stat, bound or None)
Run = tuple[int, float, float, float, "float | None"]


def _biased(name: str) -> Callable[[object, int], Run]:
    from bkg.sim.biasing import DIRECT

    def run(cfg: object, n: int) -> Run:
        d = DIRECT[name](cfg, n, cfg.seed)  # type: ignore[attr-defined]
        return (
            d.n_generated,
            d.effective_events,
            d.direct,
            d.direct_stat,
            (d.bound_90 if d.n_beyond == 0 else None),
        )

    return run


def _escape(part: str) -> Callable[[object, int], Run]:
    from bkg.sim import escape

    def run(cfg: object, n: int) -> Run:
        escape._DIRECT_CACHE.clear()  # time the simulation, not the cache of the last case
        t = escape.direct_estimate(cfg, n=n)[part]["total"]  # type: ignore[arg-type]
        return n, t["effective_events"], t["level"], t["stat"], None

    return run


def main() -> None:

    cfg = load_config()
    n0 = int(float(sys.argv[1])) if len(sys.argv) > 1 else 2_000_000
    n_forced = cfg.detector.escape.forced_events
    cases = [
        ("momentum_mismatch", _biased("momentum_mismatch"), n0),
        ("punch_through", _biased("punch_through"), n0),
        ("hermeticity (box)", _escape("selected"), n_forced),
        ("hermeticity (D)", _escape("region_d"), n_forced),
    ]
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores)")
    print(f"{'source':<20} {'events':>10} {'events/s':>10} {'eff. events':>12} {'level':>10} "
          f"{'rel. err':>9} {'time (s)':>9}")  # fmt: skip
    for name, run, n in cases:
        total = 0.0
        for _ in range(2):
            t = time.perf_counter()
            n_gen, n_eff, value, stat, bound = run(cfg, n)
            dt = time.perf_counter() - t
            total += dt
            if bound is not None:
                print(f"{name:<20} {n_gen:>10.3g} {n_gen / dt:>10.3g} {n_eff:>12.1f} "
                      f"{'<' + format(bound, '.3g'):>10} {'bound':>9} {dt:>9.1f}")  # fmt: skip
                print(f"  -> no event beyond the cut: 90% CL bound {bound:.3g} in {dt:.1f} s "
                      "(no relative error to reach)")  # fmt: skip
                break
            rel = stat / value if value > 0 else float("inf")
            print(f"{name:<20} {n_gen:>10.3g} {n_gen / dt:>10.3g} {n_eff:>12.1f} {value:>10.3g} "
                  f"{rel:>9.2f} {dt:>9.1f}")  # fmt: skip
            if rel <= TARGET:
                break
            n = int(min(n * (rel / TARGET) ** 2 * 1.2, 2e8))
        if bound is None:
            verdict = "reached" if rel <= TARGET else "NOT reached"
            print(f"  -> 30% {verdict} in {dt:.1f} s (last run; {total:.1f} s in all), "
                  f"budget {BUDGET_S:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
