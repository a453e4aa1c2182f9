"""Muon passage through the lead ECAL (active target): energy loss and its truth.

Model (docs/physics-conventions.md): -dE/dX = a(E) + b(E) E with X in g/cm2. Ionisation
is continuous with Landau-like fluctuations; radiative losses are split at ``V_CUT``
into soft (continuous) losses and catastrophic interactions drawn from the spectra of
:mod:`bkg.physics.energyloss` (:func:`sample_v`); hard knock-on electrons are drawn the
same way (:func:`_knock_ons`, docs/physics-simulation.md). Entry point: :func:`pass_ecal`,
whose docstring gives the model in full.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from bkg.sim.draws import normal32

__all__ = [
    "KNOCK_ON_ID",
    "LEAD_X0_G_CM2",
    "PROCESS",
    "V_CUT",
    "b_radiative_cm2_g",
    "dedx_ionisation_gev_cm2_g",
    "knock_on_t_cut_gev",
    "pass_ecal",
    "sample_v",
]

M_MU = 0.1056583755
M_E = 0.00051099895
LEAD_X0_G_CM2 = 6.37
LEAD_Z_OVER_A = 82.0 / 207.2
LEAD_I_GEV = 823e-9
V_CUT = 1e-3
PROCESS = {"brems": 1, "pair": 2, "nucl": 3}
#: ``process`` of a knock-on electron (mu e -> mu e) drawn in the ECAL
KNOCK_ON_ID = 4
#: knock-on electrons below max(V_CUT E, this) stay in the continuous (restricted) loss,
#: whose Landau fluctuation holds them; above it they are drawn one by one
KNOCK_ON_T_MIN_GEV = 0.1


def dedx_ionisation_gev_cm2_g(e_gev: np.ndarray | float) -> np.ndarray:
    """Mean ionisation loss of a muon in lead, Bethe with a density-effect cap (GeV cm2/g).

    Args:
        e_gev: muon energy (GeV).
    """
    e = np.asarray(e_gev, dtype=float)
    gamma = e / M_MU
    bg2 = np.maximum(gamma * gamma - 1.0, 1e-12)
    beta2 = bg2 / (gamma * gamma)
    tmax = 2 * M_E * bg2 / (1 + 2 * gamma * M_E / M_MU + (M_E / M_MU) ** 2)
    k = 0.307075e-3  # GeV cm2/mol
    log_term = 0.5 * np.log(2 * M_E * bg2 * tmax / LEAD_I_GEV**2)
    # Sternheimer density effect for lead (x0=0.3776, x1=3.8073, C=6.2018, a=0.0936, k=3.1608)
    xx = 0.5 * np.log10(bg2)
    delta = np.where(
        xx > 3.8073,
        2 * np.log(10) * xx - 6.2018,
        np.where(
            xx > 0.3776,
            2 * np.log(10) * xx - 6.2018 + 0.0936 * np.clip(3.8073 - xx, 0.0, None) ** 3.1608,
            0.0,
        ),
    )
    return k * LEAD_Z_OVER_A / beta2 * (log_term - beta2 - 0.5 * delta + tmax**2 / (8 * e * e))


_LOG_E_GRID = np.linspace(np.log(0.2), np.log(1000.0), 400)


def b_radiative_cm2_g(e_gev: np.ndarray | float, *, process: str | None = None) -> np.ndarray:
    """Radiative loss coefficient b(E) of a muon in lead (cm2/g), total or one process."""
    e = np.maximum(np.asarray(e_gev, dtype=float), 1.0)
    procs = list(PROCESS) if process is None else [process]
    i, f = _scale_cell(np.log(e))
    return sum(_on_cells(_energy_tables()[p][1], i, f) for p in procs)  # type: ignore[return-value]


#: ln E grid (GeV) of the energy dependence of the radiative rates (below 1 GeV: the 1 GeV value)
_SCALE_LOG_E = np.linspace(0.0, np.log(1000.0), 120)
_SCALE_STEP = float(_SCALE_LOG_E[1] - _SCALE_LOG_E[0])


@functools.cache
def _energy_tables() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per process on :data:`_SCALE_LOG_E`: (N_p(v >= V_CUT; E) / N_p(v >= V_CUT; 160 GeV), b_p(E) in cm2/g)."""
    from bkg.physics import energyloss

    e = np.exp(_SCALE_LOG_E)
    out = {}
    for p, name in _PHYSICS_NAME.items():
        n_cut: np.ndarray = energyloss.sigma_v_above_cm2_g(e, V_CUT, process=name)  # type: ignore[arg-type]
        out[p] = (n_cut / _above(p, V_CUT), np.asarray(_b_process(p, e), dtype=float))
    return out


def _grid_cell(log_e: np.ndarray, step: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell of a uniform ln E grid starting at ln E = 0 (``size`` points ``step`` apart) and
    the position in it (0..1) of each ln E, clipped to the grid."""
    t = np.clip(log_e * (1.0 / step), 0.0, size - 1.0)
    i = np.minimum(t.astype(np.intp), size - 2)
    return i, t - i


def _scale_cell(log_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_grid_cell` on :data:`_SCALE_LOG_E`."""
    return _grid_cell(log_e, _SCALE_STEP, _SCALE_LOG_E.size)


def _on_cells(values: np.ndarray, i: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Linear interpolation of a table on its grid at the cells of :func:`_grid_cell`."""
    return values[i] + f * (values[i + 1] - values[i])


_DEDX_GRID = dedx_ionisation_gev_cm2_g(np.exp(_LOG_E_GRID))  # tabulated Bethe, for speed


_PHYSICS_NAME = {"brems": "brems", "pair": "pair", "nucl": "photonuclear"}
_E_TABLE_GEV = 160.0
_LOG_V = np.linspace(np.log(1e-5), np.log(0.9999), 600)


#: Muon energies (GeV) of the v spectra that pass_ecal draws from (log spaced); a muon
#: between two nodes draws from either, with weights linear in ln E.
_E_NODES = np.geomspace(1.0, 1000.0, 16)
_LOG_E_NODE_STEP = float(np.log(_E_NODES[1] / _E_NODES[0]))


RateTable = tuple[np.ndarray, np.ndarray, float]

#: the rate tables made in this process or handed over (:func:`rate_tables`)
_RATE_TABLES: dict[tuple[str, int | None], RateTable] = {}


def _rate_table(process: str, node: int | None = None) -> RateTable:
    """(N_A/A) sigma(v > v_i) on the v grid (cm2/g), and b_p, at 160 GeV or at ``_E_NODES[node]``."""
    table = _RATE_TABLES.get((process, node))
    if table is None:
        e = _E_TABLE_GEV if node is None else float(_E_NODES[node])
        table = (_above_on_grid(process, e), np.exp(_LOG_V), float(_b_process(process, e)))
        _RATE_TABLES[process, node] = table
    return table


def rate_tables() -> dict[tuple[str, int | None], RateTable]:
    """The rate tables this process has made so far, for :func:`adopt_rate_tables` in a
    spawned process: they depend on this code alone (no config), and integrating them
    is ~0.9 s of CPU that the report's side processes then do not repeat."""
    return dict(_RATE_TABLES)


def adopt_rate_tables(tables: dict[tuple[str, int | None], RateTable] | None) -> None:
    """Take the rate tables of :func:`rate_tables` (made by the same code in another
    process) instead of integrating them again; tables already here are kept."""
    for key, table in (tables or {}).items():
        _RATE_TABLES.setdefault(key, table)


def start_rate_tables(process: str, share: float = 1.0) -> Callable[[], None]:
    """Integrate the rate tables of ``process`` (160 GeV and the energy nodes: the first
    ``share`` of them) in a fork of this process, while this one goes on; returns the
    call that takes them (waiting for them). Where a fork is not safe
    (:func:`bkg.pipes.fork_is_safe`), or the fork died, they are integrated here when
    needed, as without this call.

    The pair-production tables are ~90% of :func:`warm_tables` (0.73 s of CPU): the
    samples stage starts most of them before importing what its workers need, on the
    core that is otherwise idle until the workers start, and makes the rest itself.
    """
    from bkg.pipes import fork_is_safe

    if not fork_is_safe():
        return lambda: None
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    keys = [(process, None), *((process, k) for k in range(_E_NODES.size))]
    keys = keys[: max(1, round(share * len(keys)))]
    proc = ctx.Process(target=_send_rate_tables, args=(send, keys), daemon=True)
    proc.start()
    send.close()

    def take() -> None:
        try:
            tables = receive.recv()
        except EOFError:  # the fork died without them: integrated here when needed
            tables = {}
        finally:
            receive.close()
            proc.join()
        adopt_rate_tables(tables)

    return take


def _send_rate_tables(send: Any, keys: list[tuple[str, int | None]]) -> None:
    send.send({key: _rate_table(*key) for key in keys})
    send.close()


#: Gauss-Legendre nodes per cell of the v grid (:func:`_above_on_grid`)
_CELL_NODES = 16


def _above_on_grid(process: str, e_gev: float) -> np.ndarray:
    """(N_A/A) sigma(v > v_i) at every v_i of ``_LOG_V`` (cm2/g), for muons of ``e_gev``.

    The integral of :func:`bkg.physics.energyloss.sigma_v_above_cm2_g`, done once for the
    whole grid: dsigma/dv integrated over each cell [v_i, v_i+1] of the grid (clipped to the
    process's v range; :data:`_CELL_NODES` Gauss-Legendre nodes in ln v) and summed from the
    top. Integrating each v_i's range on its own (48 nodes over up to 11 units of ln v) cost
    6x the cross-section evaluations, ~4.5 s per process for the pair tables. Against 32
    nodes per cell, wherever N(v > v_i) is above 1e-7 of N(v > 1e-5), both are within
    1e-4 (cell sums 5e-5, the old per-point integrals 6e-5; at v = V_CUT 1e-10 and 1e-8).
    """
    from bkg.physics import energyloss
    from bkg.physics._quadrature import gauss_legendre
    from bkg.physics.constants import LEAD, M_MU_GEV

    name = _PHYSICS_NAME[process]
    lo, hi = energyloss._v_range(name, np.array(float(e_gev)), LEAD, M_MU_GEV)
    log_lo, log_hi = float(np.log(lo)), float(np.log(hi))
    edges = np.append(_LOG_V, max(log_hi, float(_LOG_V[-1])))  # the last cell ends at v_max
    t, w = gauss_legendre(
        _CELL_NODES, np.clip(edges[:-1], log_lo, log_hi), np.clip(edges[1:], log_lo, log_hi)
    )
    v = np.exp(t)
    dsigma = energyloss._DSIGMA_DV[name](v, float(e_gev), material=LEAD, mass_gev=M_MU_GEV)
    cell = np.sum(dsigma * v * w, axis=-1)
    return np.asarray(np.cumsum(cell[::-1])[::-1], dtype=float)


def _b_process(process: str, e_gev: np.ndarray | float) -> np.ndarray:
    """b_p(E) of one process from :mod:`bkg.physics.energyloss` (cm2/g)."""
    from bkg.physics import energyloss

    return {
        "brems": energyloss.b_bremsstrahlung_cm2_g,
        "pair": energyloss.b_pair_cm2_g,
        "nucl": energyloss.b_photonuclear_cm2_g,
    }[process](e_gev)


def _above(process: str, v: float, node: int | None = None) -> float:
    above = _rate_table(process, node)[0]
    return float(np.interp(np.log(v), _LOG_V, above))


def lambda_catastrophic_cm2_g(process: str, e_gev: float, *, v_cut: float = V_CUT) -> float:
    """Number of interactions with v >= v_cut per g/cm2 for one process (cm2/g)."""
    i, f = _scale_cell(np.log(np.atleast_1d(max(float(e_gev), 1.0))))
    scale = float(_on_cells(_energy_tables()[process][0], i, f)[0])
    return _above(process, v_cut) * scale


class _InverseCDF(NamedTuple):
    """v as a function of the target N(v > x) = u N(v > v_cut): piecewise linear in log v.

    The nodes (N increasing) are padded with -inf and +inf, so that segment k spans
    [nodes[k], nodes[k + 1]) and the value there is base_value + (N - base_node) slope
    (constant below the first and above the last node, as np.interp). ``guide[b]`` is
    the segment of the lower edge of bin b of :data:`_GUIDE_BINS` equal bins of u, or
    -1 where a bin holds more than one node (drawn with np.interp instead).
    """

    n_cut: float
    n_grid: np.ndarray
    log_v: np.ndarray
    nodes: np.ndarray
    base_node: np.ndarray
    base_value: np.ndarray
    slope: np.ndarray
    guide: np.ndarray


_GUIDE_BINS = 1 << 14


@functools.lru_cache(maxsize=128)
def _inverse_table(process: str, v_cut: float, node: int | None = None) -> _InverseCDF:
    """The inverse CDF of v >= v_cut for one process (N on the grid in increasing order, log v),
    at 160 GeV or at ``_E_NODES[node]``."""
    above, grid, _ = _rate_table(process, node)
    n_cut = _above(process, v_cut, node)
    live = (grid >= v_cut) & (above > 0)
    # N(v > x) decreases from n_cut to 0: draw N uniformly and invert (x on a log grid)
    xp = np.concatenate([[n_cut], above[live]])[::-1]
    fp = np.log(np.concatenate([[v_cut], grid[live]])[::-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.diff(fp) / np.diff(xp)
    slope = np.concatenate([[0.0], np.where(np.isfinite(inner), inner, 0.0), [0.0]])
    base_node = np.concatenate([[0.0], xp[:-1], [0.0]])
    base_value = np.concatenate([[fp[0]], fp[:-1], [fp[-1]]])
    nodes = np.concatenate([[-np.inf], xp, [np.inf]])
    segment = np.searchsorted(xp, n_cut * np.arange(_GUIDE_BINS + 1) / _GUIDE_BINS, side="right")
    guide = np.where(np.diff(segment) <= 1, segment[:-1], -1)
    return _InverseCDF(n_cut, xp, fp, nodes, base_node, base_value, slope, guide)


def sample_v(
    process: str,
    n: int,
    rng: np.random.Generator,
    *,
    v_cut: float = V_CUT,
    node: int | None = None,
) -> np.ndarray:
    """Draw n energy fractions v >= v_cut from the tabulated spectrum (inverse CDF in log v).

    The same piecewise-linear inverse as ``np.interp(u N(v > v_cut), N grid, log v grid)``;
    the segment comes from a guide table of equal bins in u instead of a binary search.
    Without a node (the dimuon and leading-hadron generators) it draws at 160 GeV.
    """
    cdf = _inverse_table(process, float(v_cut), node)
    u = rng.random(n)
    target = u * cdf.n_cut
    k = cdf.guide[(u * _GUIDE_BINS).astype(np.intp)]
    crowded = np.flatnonzero(k < 0)
    k[crowded] = 0
    k += cdf.nodes[k + 1] <= target  # at most one node inside a guide bin
    k -= target < cdf.nodes[k]  # the target rounded below its bin's lower edge
    log_v = (target - cdf.base_node[k]) * cdf.slope[k] + cdf.base_value[k]
    if crowded.size:
        log_v[crowded] = np.interp(target[crowded], cdf.n_grid, cdf.log_v)
    return np.exp(log_v)


def _drawn_loss(process: str, node: int | None = None) -> float:
    """sum of the v that :func:`sample_v` draws per g/cm2 of interactions above V_CUT (cm2/g):
    the integral of its inverse CDF v(N) over N in [0, N(v > V_CUT)], exactly as it draws
    (log v linear in N on each segment, constant below the first node)."""
    cdf = _inverse_table(process, V_CUT, node)
    xp, fp = cdf.n_grid, cdf.log_v
    dn = np.diff(xp)
    dlog = np.diff(fp)
    v0, v1 = np.exp(fp[:-1]), np.exp(fp[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        seg = np.where(np.abs(dlog) > 1e-12, (v1 - v0) * dn / dlog, v0 * dn)
    return float(np.exp(fp[0]) * xp[0] + np.sum(np.where(dn > 0, seg, 0.0)))


@functools.cache
def _soft_b_nodes() -> np.ndarray:
    """Continuous radiative loss b (cm2/g) at each of ``_E_NODES``: b_p minus what the
    drawn interactions above V_CUT carry on average, so that soft + drawn = b_p exactly."""
    return np.array(
        [
            sum(_rate_table(p, k)[2] - _drawn_loss(p, k) for p in PROCESS)
            for k in range(_E_NODES.size)
        ]
    )


def _soft_b_at(log_e: np.ndarray) -> np.ndarray:
    """Soft radiative b(E) (cm2/g), linear in ln E between the nodes (constant outside them)."""
    return _on_cells(_soft_b_nodes(), *_grid_cell(log_e, _LOG_E_NODE_STEP, _E_NODES.size))


def _node_of(log_e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A node of ``_E_NODES`` per energy: the lower or the upper neighbour, with weights
    linear in ln E (so that the drawn spectra average to the one in between)."""
    lo, frac = _grid_cell(log_e, _LOG_E_NODE_STEP, _E_NODES.size)
    return lo + (rng.random(lo.size) < frac)


@functools.cache
def _pass_constants(
    mip_visible_gev: float, total_depth_g_cm2: float, knock_on: bool = True
) -> float:
    """The scale of the visible ionisation of :func:`pass_ecal`, computed once.

    Calibration: the continuous ionisation (restricted to knock-ons below the cut when
    those above are drawn) + soft radiative losses of a 160 GeV muon give
    ``mip_visible_gev`` in the full depth.
    """
    hard = float(_knock_on_mean_loss(np.array([160.0]))[0]) if knock_on else 0.0
    full_ion = (float(dedx_ionisation_gev_cm2_g(160.0)) - hard) * total_depth_g_cm2
    full_soft = float(_soft_b_at(np.array([np.log(160.0)]))[0]) * 160.0 * total_depth_g_cm2
    return max(mip_visible_gev - full_soft, 0.1 * mip_visible_gev) / full_ion


def warm_tables() -> None:
    """Build every cached table of this module (before forking workers, so they inherit them)."""
    for p in PROCESS:
        _inverse_table(p, V_CUT)
        for k in range(_E_NODES.size):
            _inverse_table(p, V_CUT, k)
    _energy_tables()
    _pass_constants(0.5, 40 * LEAD_X0_G_CM2)


def _dedx_at(log_e: np.ndarray) -> np.ndarray:
    """a(E) by linear interpolation of the tabulated Bethe loss on its uniform grid in ln E.

    The same piecewise-linear function as ``np.interp(log_e, _LOG_E_GRID, _DEDX_GRID)``
    (constant outside the grid), with the grid cell computed instead of searched.
    """
    t = np.clip((log_e - _LOG_E_GRID[0]) * (1.0 / _LOG_E_STEP), 0.0, _LOG_E_GRID.size - 1.0)
    i = np.minimum(t.astype(np.intp), _LOG_E_GRID.size - 2)
    return _DEDX_GRID[i] + (t - i) * _DEDX_SLOPE[i]


_LOG_E_STEP = float(_LOG_E_GRID[1] - _LOG_E_GRID[0])
_DEDX_SLOPE = np.diff(_DEDX_GRID)


def _rank_within(idx: np.ndarray) -> np.ndarray:
    """For each entry of idx: how many earlier entries hold the same value (0, 1, ...)."""
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    start = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    rank = np.empty(idx.size, dtype=np.intp)
    rank[order] = np.arange(idx.size) - np.repeat(start, np.diff(np.r_[start, idx.size]))
    return rank


def _apply_losses(
    idx: np.ndarray,
    v: np.ndarray,
    z: np.ndarray,
    pid: int,
    e_out: np.ndarray,
    deposit: np.ndarray,
    process: np.ndarray,
    e_transfer: np.ndarray,
    depth_int: np.ndarray,
) -> None:
    """Apply interactions (muon idx, fraction v of the energy left, depth z) of one process in place.

    One after another: the k-th interaction of a muon takes v of what the first k-1 left.
    The loss goes to ``deposit``; the largest interaction of each muon is recorded when it
    beats what the earlier processes left.
    """
    loss = v * np.maximum(e_out[idx], 0.0)
    shared = np.bincount(idx, minlength=e_out.size)[idx] > 1
    if shared.any():
        big = _apply_shared(idx, v, loss, shared, e_out, deposit)
    else:  # every muon once: plain fancy indexing
        e_out[idx] -= loss
        deposit[idx] += loss
        big = np.ones(idx.size, dtype=bool)
    # the largest interaction of each muon, if it beats what the earlier processes left
    big &= loss > e_transfer[idx]
    ib = idx[big]
    process[ib] = pid
    e_transfer[ib] = loss[big]
    depth_int[ib] = z[big]


def _apply_shared(
    idx: np.ndarray,
    v: np.ndarray,
    loss: np.ndarray,
    shared: np.ndarray,
    e_out: np.ndarray,
    deposit: np.ndarray,
) -> np.ndarray:
    """:func:`_apply_losses` when some muons (``shared``) have several interactions.

    Those muons' interactions are redone in order (the k-th takes v of what the first k-1
    left), ``loss`` updated in place; returns the mask of each muon's largest
    interaction (a plain fancy assignment would keep the last, not the largest).
    """
    repeated = np.flatnonzero(shared)
    sub = idx[repeated]
    rank = _rank_within(sub)
    for r in range(int(rank.max()) + 1):
        j = repeated[rank == r]
        loss[j] = v[j] * np.maximum(e_out[idx[j]], 0.0)
        e_out[idx[j]] -= loss[j]
    once = ~shared
    alone = idx[once]
    e_out[alone] -= loss[once]
    deposit[alone] += loss[once]
    np.add.at(deposit, sub, loss[repeated])  # in order, as one muon's losses add up
    muons, which = np.unique(sub, return_inverse=True)
    top = np.zeros(muons.size)
    np.maximum.at(top, which, loss[repeated])
    largest = once
    largest[repeated] = loss[repeated] == top[which]
    return largest


def knock_on_t_cut_gev(e_gev: np.ndarray | float) -> np.ndarray:
    """Smallest knock-on energy drawn as an interaction: V_CUT E, at least KNOCK_ON_T_MIN_GEV."""
    return np.maximum(V_CUT * np.asarray(e_gev, dtype=float), KNOCK_ON_T_MIN_GEV)


def _knock_on_rate(e_gev: np.ndarray) -> np.ndarray:
    """Knock-on electrons above the cut per g/cm2 for muons of energy e (cm2/g)."""
    from bkg.physics import energyloss

    e = np.maximum(e_gev, 0.2)
    return np.asarray(energyloss.knock_on_above_cm2_g(e, knock_on_t_cut_gev(e)), dtype=float)


def _knock_on_mean_loss(e_gev: np.ndarray) -> np.ndarray:
    """Mean energy of the knock-on electrons above the cut per g/cm2 (GeV cm2/g)."""
    from bkg.physics import energyloss

    e = np.maximum(e_gev, 0.2)
    return np.asarray(
        energyloss.knock_on_loss_above_gev_cm2_g(e, knock_on_t_cut_gev(e)), dtype=float
    )


#: ln E grid (GeV) of the knock-on tables: uniform from 0.2 GeV, with a node at
#: KNOCK_ON_T_MIN_GEV / V_CUT = 100 GeV, where the cut max(V_CUT E, 0.1 GeV) has its kink
_KO_LOG_E0 = float(np.log(0.2))
_KO_STEP = float(np.log(KNOCK_ON_T_MIN_GEV / V_CUT / 0.2)) / 292
_KO_SIZE = 402  # up to 1.04 TeV


#: the knock-on rate bound of :func:`_knock_ons` over the largest node of a range
_KO_RATE_MARGIN = 1.01


@functools.cache
def _knock_on_tables() -> tuple[np.ndarray, np.ndarray]:
    """(rate in cm2/g, mean loss in GeV cm2/g) of the knock-ons above the cut on the ln E grid
    ``_KO_LOG_E0 + k _KO_STEP``: the closed forms of :mod:`bkg.physics.energyloss` at the
    nodes. The continuous loss interpolates the mean loss linearly in ln E (nodes 0.021
    apart: within 2e-5 of the Bethe loss a(E) of the closed form, checked in the tests);
    the rate only bounds the thinning of :func:`_knock_ons`."""
    e = np.exp(_KO_LOG_E0 + _KO_STEP * np.arange(_KO_SIZE))
    return _knock_on_rate(e), _knock_on_mean_loss(e)


def _knock_on_cell(log_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell of the knock-on grid and the position in it (0..1) of each ln E (clipped)."""
    t = np.clip((log_e - _KO_LOG_E0) * (1.0 / _KO_STEP), 0.0, _KO_SIZE - 1.0)
    i = np.minimum(t.astype(np.intp), _KO_SIZE - 2)
    return i, t - i


def _draw_knock_on_t(rng: np.random.Generator, e: np.ndarray) -> np.ndarray:
    """Knock-on kinetic energies for muons of energy e: 1/T^2 on [T_cut, T_max] by inversion,
    kept with the spin-1/2 factor 1 - beta^2 T/T_max + T^2/(2 E^2) (<= 1), redrawn otherwise."""
    gamma = e / M_MU
    bg2 = np.maximum(gamma * gamma - 1.0, 1e-12)
    beta2 = bg2 / (gamma * gamma)
    t_max = 2 * M_E * bg2 / (1 + 2 * gamma * M_E / M_MU + (M_E / M_MU) ** 2)
    t_cut = np.minimum(knock_on_t_cut_gev(e), t_max)
    out = np.empty(e.size)
    todo = np.arange(e.size)
    while todo.size:
        lo, hi = t_cut[todo], t_max[todo]
        t = 1.0 / (1.0 / lo - rng.random(todo.size) * (1.0 / lo - 1.0 / hi))
        spin = 1.0 - beta2[todo] * t / hi + t * t / (2.0 * e[todo] ** 2)
        ok = rng.random(todo.size) < spin
        out[todo[ok]] = t[ok]
        todo = todo[~ok]
    return out


def pass_ecal(
    e_in: np.ndarray,
    rng: np.random.Generator,
    *,
    depth_g_cm2: np.ndarray | float,
    mip_visible_gev: float = 0.5,
    total_depth_g_cm2: float = 40 * LEAD_X0_G_CM2,
    knock_on: bool = True,
) -> dict[str, np.ndarray]:
    """Propagate muons of energy e_in through ``depth_g_cm2`` of lead.

    The model: ionisation and soft radiative losses in :func:`_continuous_loss`,
    catastrophic interactions in :func:`_catastrophic`, hard knock-ons in :func:`_knock_ons`.

    Catastrophic interactions of each process are drawn as one Poisson process over
    all muons at the largest rate (the highest energy and depth), then thinned to each
    muon's own rate: the same law as a Poisson number per muon, with draws only for
    the muons that interact.

    Args:
        e_in: muon energies at entry (GeV), shape (n,).
        rng: random generator.
        depth_g_cm2: traversed thickness per muon (g/cm2), scalar or (n,).
        mip_visible_gev: mean visible ECAL signal of a 160 GeV muon without catastrophic loss (GeV).
        total_depth_g_cm2: full ECAL thickness (for the MIP calibration).
        knock_on: draw the knock-on electrons above the cut (False: the full Bethe loss
            is continuous, as until December 2026; for comparisons).

    Returns:
        dict with ``e_out`` (GeV), ``e_dep_ion`` (visible ionisation, GeV),
        ``e_dep_em`` (energy put into EM showers, GeV), ``e_had`` (energy given to
        the hadronic system by photonuclear interactions, GeV), ``process``
        (int8: 0 none, else the largest catastrophic interaction, 4 a knock-on electron),
        ``e_transfer`` (GeV), ``depth_int`` (g/cm2 of the largest interaction).
        Energies are float64 (the energy balance of the muon), ``e_dep_ion`` float32.
    """
    e_in = np.asarray(e_in, dtype=np.float64)
    n = e_in.size
    ion_scale = _pass_constants(float(mip_visible_gev), float(total_depth_g_cm2), knock_on)
    depth_arr = np.asarray(depth_g_cm2, dtype=np.float64)
    depth: np.ndarray | float = float(depth_arr) if depth_arr.ndim == 0 else depth_arr
    log_e = np.log(np.maximum(e_in, 0.2))
    ion, soft = _continuous_loss(rng, e_in, log_e, depth, knock_on)
    st = _MuonState(
        e_out=e_in - ion - soft,
        e_em=soft,
        e_had=np.zeros(n),
        process=np.zeros(n, dtype=np.int8),
        e_transfer=np.zeros(n),
        depth_int=np.full(n, -1.0),
    )
    _catastrophic(rng, st, log_e, depth_arr)
    if knock_on:
        _knock_ons(rng, st, e_in, log_e, depth_arr)
    np.maximum(st.e_out, 0.0, out=st.e_out)
    return {
        "e_out": st.e_out,
        "e_dep_ion": (ion * ion_scale).astype(np.float32),
        "e_dep_em": st.e_em,
        "e_had": st.e_had,
        "process": st.process,
        "e_transfer": st.e_transfer,
        "depth_int": st.depth_int,
    }


class _MuonState(NamedTuple):
    """The arrays :func:`pass_ecal` updates in place (one entry per muon)."""

    e_out: np.ndarray
    e_em: np.ndarray
    e_had: np.ndarray
    process: np.ndarray
    e_transfer: np.ndarray
    depth_int: np.ndarray


def _continuous_loss(
    rng: np.random.Generator,
    e_in: np.ndarray,
    log_e: np.ndarray,
    depth: np.ndarray | float,
    knock_on: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(ionisation, soft radiative loss) in GeV, evaluated at the entry energy (the loss is ~1%).

    Ionisation is continuous with Landau-like fluctuations (a Moyal-distributed deposit
    scaled to the Bethe mean). Radiative losses below ``V_CUT`` are continuous: b_p(E)
    minus the mean of what the sampler draws above it, so that the two parts add up to
    b_p(E).
    """
    n = e_in.size
    # restricted loss: the knock-ons above the cut are drawn below, not continuous
    mean_ion = _dedx_at(log_e)
    if knock_on:
        mean_ion -= _on_cells(_knock_on_tables()[1], *_knock_on_cell(log_e))
    mean_ion *= depth
    # Landau-like fluctuation: Moyal variate with the PDG width xi = (K/2) (Z/A) x / beta^2
    xi = 0.5 * 0.307075e-3 * LEAD_Z_OVER_A * depth  # GeV (beta ~ 1)
    g = np.abs(normal32(rng, n))
    # Moyal(0,1) via |N|: lambda = -2 ln|N|
    moyal = np.minimum(-2.0 * np.log(np.maximum(g, np.float32(1e-6))), np.float32(40.0))
    ion = np.maximum(mean_ion + xi * (moyal - 1.27), 0.2 * mean_ion)
    soft = _soft_b_at(log_e) * e_in * depth
    return ion, soft


def _catastrophic(
    rng: np.random.Generator, st: _MuonState, log_e: np.ndarray, depth_arr: np.ndarray
) -> None:
    """Radiative interactions with v >= V_CUT of every process, applied to ``st`` in place.

    Drawn as one Poisson process over all muons at the largest rate (the highest energy
    and depth), then thinned to each muon's own rate.

    Catastrophic interactions (v >= ``V_CUT``) have a number per muon that is Poisson
    with the integrated cross section; only the muons that have one are treated further.
    Each process p has an energy-weighted spectrum v dsigma/dv = b_p f_p(v) with a
    spectrum of :mod:`bkg.physics.energyloss` (Kelner-Kokoulin-Petrukhin bremsstrahlung,
    Kokoulin-Petrukhin pair production, Borog-Petrukhin photonuclear), tabulated on a log
    grid of v: the number of interactions with v above a cut is (N_A/A) sigma(v > v_cut)
    and v is drawn by inverting it. The energy dependence comes from the same module: the
    rate of interactions with v >= V_CUT is tabulated versus E, and v is drawn from the
    spectrum at the muon's energy (16 log-spaced energy nodes; a muon between two draws
    from either, with weights linear in ln E). Several interactions of one muon are
    applied one after another, each taking its fraction v of the energy left; the
    largest is the truth recorded.
    """
    n = log_e.size
    tables = _energy_tables()
    scalar_depth = depth_arr.ndim == 0
    depth_max = float(depth_arr) if scalar_depth else float(np.max(depth_arr, initial=0.0))
    # the rate cells the muons span (the radiative tables start at 1 GeV)
    lo_cell, hi_cell = (
        (int(_scale_cell(log_e.min())[0]), int(_scale_cell(log_e.max())[0]) + 2) if n else (0, 0)
    )
    for p, pid in PROCESS.items():
        rate = tables[p][0]  # N_p(v >= V_CUT; E) / N_p(v >= V_CUT; 160 GeV)
        scale_max = float(np.max(rate[lo_cell:hi_cell], initial=0.0))
        # the largest rate: every muon at the highest rate and depth; thinned below
        lam = _above(p, V_CUT) * scale_max * depth_max
        m = int(rng.poisson(lam * n)) if n and lam > 0 else 0
        if m == 0:
            continue
        idx = rng.integers(0, n, size=m)
        ratio = _on_cells(rate, *_scale_cell(log_e[idx])) * (1.0 / scale_max)
        if not scalar_depth:
            ratio *= depth_arr[idx] * (1.0 / depth_max)
        idx = idx[rng.random(idx.size) < ratio]
        # v from the spectrum at the muon's energy (a node on either side of it)
        node = _node_of(log_e[idx], rng)
        v = np.empty(idx.size)
        for k in np.unique(node):
            at = np.flatnonzero(node == k)
            v[at] = sample_v(p, at.size, rng, node=int(k))
        z = rng.random(idx.size) * (depth_max if scalar_depth else depth_arr[idx])
        deposit = st.e_had if p == "nucl" else st.e_em
        _apply_losses(idx, v, z, pid, st.e_out, deposit, st.process, st.e_transfer, st.depth_int)


def _knock_ons(
    rng: np.random.Generator,
    st: _MuonState,
    e_in: np.ndarray,
    log_e: np.ndarray,
    depth_arr: np.ndarray,
) -> None:
    """Hard knock-on electrons (T above V_CUT E), applied to ``st`` in place.

    A Poisson number per muon (their rate falls with E, as T_cut rises; drawn as one
    Poisson process at the largest rate, thinned to each muon's), T from 1/T^2
    thinned by the spin-1/2 factor; each electron showers in the ECAL like a
    bremsstrahlung photon.

    Knock-on electrons (mu e -> mu e, process 4) with T above max(V_CUT E, 0.1 GeV) are
    drawn after the radiative interactions, from the closed-form count of a spin-1/2
    projectile (dN/dT = (K/2)(Z/A)/beta^2 /T^2 (1 - beta^2 T/T_max + T^2/2E^2),
    :func:`bkg.physics.energyloss.knock_on_above_cm2_g`); the electron's energy goes to
    ``e_dep_em``. The continuous ionisation is then the Bethe loss restricted to T below
    the cut (the mean above it is subtracted, :func:`_continuous_loss`), so the mean
    loss is unchanged; the visible-ionisation calibration uses the restricted loss.
    (Until December 2026 the whole Bethe loss was continuous: 160 GeV muons lost more
    than 10% in the 40 X0 about 15% less often, 4.7e-3 against 5.4e-3.)
    """
    n = e_in.size
    scalar_depth = depth_arr.ndim == 0
    depth_max = float(depth_arr) if scalar_depth else float(np.max(depth_arr, initial=0.0))
    rate = _knock_on_tables()[0]
    if not n or depth_max <= 0:
        return
    lo = int(_knock_on_cell(log_e.min())[0])
    hi = int(_knock_on_cell(log_e.max())[0]) + 2
    # a bound on the rate over the muons' energies (the largest node of the cells they
    # span, 1% above: between nodes the closed form exceeds them by < 1e-3, see the
    # tests) times the deepest depth: one Poisson process over all muons, thinned to
    # each muon's own rate (the closed form) and depth
    rate_max = _KO_RATE_MARGIN * float(np.max(rate[lo:hi], initial=0.0))
    if rate_max <= 0:
        return
    idx = rng.integers(0, n, size=int(rng.poisson(rate_max * depth_max * n)))
    ratio = _knock_on_rate(e_in[idx]) * (1.0 / rate_max)
    if not scalar_depth:
        ratio *= depth_arr[idx] * (1.0 / depth_max)
    idx = idx[rng.random(idx.size) < ratio]
    if idx.size:
        t = _draw_knock_on_t(rng, e_in[idx])
        z = rng.random(idx.size) * (depth_max if scalar_depth else depth_arr[idx])
        # the electron takes T itself: as a fraction of the energy the muon has left
        v = np.minimum(t / np.maximum(st.e_out[idx], 1e-9), 1.0)
        _apply_losses(
            idx, v, z, KNOCK_ON_ID, st.e_out, st.e_em, st.process, st.e_transfer, st.depth_int
        )
