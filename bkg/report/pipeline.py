"""``bkg report``: every stage, in order, into one self-describing folder.

samples -> fits -> table -> sensitivity -> workspace -> limits -> figures ->
HEPData -> claims -> provenance -> index.html. The samples and fits stages
write to their own folders and are skipped when their config slice and inputs
are unchanged (:mod:`bkg.cache`); the report itself is assembled in a
temporary folder that replaces ``reports/<name>/`` only when complete, so an
interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bkg import cache, interrupt
from bkg.atomic import atomic_dir, atomic_path, recover_dir, write_json, write_text
from bkg.cache import (
    FITS_INDEPENDENT,
    SAMPLES_INDEPENDENT,
    fits_config_key,
    samples_config_key,
)
from bkg.config import Config
from bkg.errors import FitError, SampleError
from bkg.pipes import fork_is_safe, process_state, side_context, start_side_server
from bkg.report.claims import none_applicable

if TYPE_CHECKING:
    from bkg.sim.figures import Fig2Curves

log = logging.getLogger(__name__)

__all__ = [
    "ReportResult",
    "efficiency_function",
    "run_fits_stage",
    "run_report",
    "run_samples_stage",
]

Progress = Callable[[str, str], None]
#: ``advance(task, done, total)``: a step of a long stage (sample chunks, fitted sources)
Advance = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and what it contains."""

    folder: Path
    stages: dict[str, str]
    claims: list[dict[str, Any]] = field(default_factory=list)
    table1: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        n_ok = sum(c["verdict"] == "agrees" for c in self.claims)
        lines = [f"report written to {self.folder}/ (index.html)"]
        lines += [f"  {stage:<12} {state}" for stage, state in self.stages.items()]
        if self.table1:
            total = self.table1["total"]
            lines.append(
                f"total background {total['level_per_mot']:.2e} per MOT = {total['expected_events']:.3g} events "
                f"at {self.table1['n_mot']:.3g} MOT"
            )
        if none_applicable(self.claims):
            lines.append(
                "claims of the paper: not compared (they describe its 160 GeV beam; claims.md "
                "lists this run's values)"
            )
        elif self.claims:
            lines.append(f"claims of the paper reproduced: {n_ok} of {len(self.claims)}")
            lines += [
                f"  {c['verdict']}: {c['statement']} (paper {_fmt_claim_value(c['paper'])}, "
                f"here {_fmt_claim_value(c['reproduced'])}; claims.md)"
                for c in self.claims
                if c["verdict"] != "agrees"
            ]
        return "\n".join(lines)


def _noop(stage: str, state: str) -> None:
    return None


def run_samples_stage(
    cfg: Config,
    *,
    samples_dir: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = _noop,
    advance: Advance | None = None,
) -> tuple[str, str]:
    """Generate the samples unless the folder already holds them for this config.

    A folder whose MANIFEST.json ``bkg samples`` did not write (a GEANT4 production that
    meets samples/README.md) is used as it is and never overwritten; a folder with ROOT
    files but no MANIFEST.json is an error, not something to write over.

    Returns:
        (state, key): state is ``"ran"``, ``"reused"`` or ``"external"``.
    """
    key = samples_key(cfg)
    if cache.is_fresh(samples_dir, key):
        progress("samples", "reused")
        return "reused", key
    from bkg.sim.run import external_samples

    if external_samples(samples_dir):
        progress("samples", "external")
        log.warning(
            "%s: samples not made by `bkg samples` (MANIFEST.json generator is not bkg.sim): "
            "used as they are",
            samples_dir,
        )
        # the key of what was used: the production's own files, not the config's samples
        return "external", cache.stage_key("samples-external", {}, _manifest_hashes(samples_dir))
    from bkg.sim import run_samples

    progress("samples", "running")
    t0 = time.perf_counter()
    manifest = run_samples(
        cfg, out_dir=samples_dir, workers=workers, scheduler=scheduler, progress=advance
    )
    mark_samples_done(cfg, samples_dir, manifest)
    progress("samples", f"done ({time.perf_counter() - t0:.1f} s)")
    return "ran", key


#: drawing code of the report's figures (Figs. 2, 3, 5): not run by the samples or fits
#: stages, so a change of a figure does not make them run again
_FIGURE_CODE = ("sim/figures.py",)


def samples_key(cfg: Config) -> str:
    """Cache key of the samples stage: its config slice and the simulation code."""
    code = {"code": cache.code_digest("sim", "ntuple", "physics", exclude=_FIGURE_CODE)}
    return cache.stage_key(
        "samples", cache.config_slice(cfg.to_dict(), drop=SAMPLES_INDEPENDENT), code
    )


def check_made_for(cfg: Config, folder: Path, stage: str) -> None:
    """A clear error when ``folder`` holds the samples or fits of another setup.

    The check reads the setup key that `bkg samples`, `bkg fit` and `bkg report` record
    in the folder's .stage.json: the beam and detector (and, for fits, the selection
    and the signal box), not sizes, seeds, folders or the statistics. A folder without
    a record and a production that `bkg samples` did not write (GEANT4) are not checked.

    Raises:
        SampleError (samples) or FitError (fits) naming the folder and the way out.
    """
    from bkg.sim.run import external_samples

    recorded = cache.recorded_config(folder)
    if recorded is None:
        return
    if stage == "samples" and recorded != samples_config_key(cfg):
        if external_samples(folder):  # its own MANIFEST says what it is; the record is stale
            return
        raise SampleError(
            f"{folder}: these samples simulate another beam or detector than config "
            f"{cfg.name!r} (see its MANIFEST.json); run `bkg samples` (or `bkg report`) "
            "with this config, or give --samples a folder made with it"
        )
    if stage == "fits" and recorded != fits_config_key(cfg):
        raise FitError(
            f"{folder}: these fits assume another beam, detector or selection than config "
            f"{cfg.name!r}; run `bkg fit` (or `bkg report`) with this config, or give --fits "
            "a folder made with it"
        )


def mark_samples_partial(cfg: Config, samples_dir: Path) -> None:
    """Record that ``samples_dir`` was (partly) written for ``cfg``'s setup by `bkg samples
    --only` or `--n-mot`: not the config's complete production (`bkg report` regenerates
    it), but a folder whose setup the stage commands accept."""
    cache.mark_done(samples_dir, "partial", [], config_key=samples_config_key(cfg))


def mark_samples_done(cfg: Config, samples_dir: Path, manifest: dict[str, Any]) -> None:
    """Record a complete samples folder for ``cfg`` (also after `bkg samples`).

    The sample files' sha256 are those of the MANIFEST (computed by the workers that
    wrote them); only MANIFEST.json itself is hashed here.
    """
    files = [entry["file"] for entry in manifest["files"]] + ["MANIFEST.json"]
    known = {entry["file"]: entry["sha256"] for entry in manifest["files"]}
    cache.mark_done(
        samples_dir, samples_key(cfg), files, known=known, config_key=samples_config_key(cfg)
    )


def fits_key(cfg: Config, samples_dir: Path) -> str:
    """Cache key of the fits stage: config slice, the samples' hashes and the fit code.

    The code includes ``sim`` and ``physics``: the closure (part of the fits stage)
    simulates its direct estimates with them.
    """
    hashes = samples_hashes(samples_dir)
    code = cache.code_digest(
        "sources", "fit", "selection", "ntuple", "sim", "physics", exclude=_FIGURE_CODE
    )
    inputs = {**hashes, "code": code, **_pdf_input()}
    return cache.stage_key("fits", cache.config_slice(cfg.to_dict(), drop=FITS_INDEPENDENT), inputs)


def _pdf_input() -> dict[str, str]:
    """The ``--pdf`` mode as an input of the stages that draw figures (nothing for the
    default, so the default's keys stay those of the figures it always wrote)."""
    from bkg.plotting import pdf_mode

    mode = pdf_mode()
    return {} if mode == "paper" else {"pdf": mode}


def samples_hashes(samples_dir: Path) -> dict[str, str]:
    """The sample files' sha256: as ``bkg samples`` recorded them, or, for a production it
    did not write, as its MANIFEST lists them (every stage checks them when it reads).

    An external folder never uses the record: a ``.stage.json`` left from an earlier
    fast-simulation production in the same folder describes other files.
    """
    from bkg.sim.run import external_samples

    if external_samples(samples_dir):
        return _manifest_hashes(samples_dir)
    return cache.recorded_outputs(samples_dir) or _manifest_hashes(samples_dir)


def _manifest_hashes(samples_dir: Path) -> dict[str, str]:
    from bkg.ntuple import read_manifest

    try:  # the one MANIFEST reader; a bad MANIFEST is reported by the stage that reads it
        files = read_manifest(samples_dir, check_hashes=False)["files"]
    except SampleError:
        return {}
    return {str(e["file"]): str(e["sha256"]) for e in files}


def mark_fits_done(cfg: Config, samples_dir: Path, fits_dir: Path) -> None:
    """Record a complete fits folder for ``cfg`` and these samples (also after `bkg fit`)."""
    outputs = [p.name for p in fits_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    cache.mark_done(fits_dir, fits_key(cfg, samples_dir), outputs, config_key=fits_config_key(cfg))


def run_fits_stage(
    cfg: Config,
    *,
    samples_dir: Path,
    fits_dir: Path,
    progress: Progress = _noop,
    advance: Advance | None = None,
) -> tuple[str, str]:
    """Fit every source unless the fits folder holds the fits of these samples and config."""
    key = fits_key(cfg, samples_dir)
    if cache.is_fresh(fits_dir, key):
        progress("fits", "reused")
        return "reused", key
    from bkg.sources import run_fits

    progress("fits", "running")
    t0 = time.perf_counter()
    estimates = run_fits(
        cfg, samples_dir=samples_dir, out_dir=fits_dir, progress=advance, closure_follows=True
    )
    from bkg.sources.closure import run_closure

    progress("closure", "running")  # direct estimates by biased simulation (bkg closure)
    t1 = time.perf_counter()
    run_closure(cfg, fits_dir)
    progress("closure", f"done ({time.perf_counter() - t1:.1f} s)")
    mark_fits_done(cfg, samples_dir, fits_dir)
    progress("fits", f"done ({time.perf_counter() - t0:.1f} s)")
    log.info("fitted %d sources", len(estimates))
    return "ran", key


def efficiency_function(
    samples_dir: Path, cfg: Config, *, lock: bool = True
) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """Signal efficiency per MOT versus mass, from the signal sample (log-mass interpolation).

    The signal sample is made of beam-core muons; a MOT is any muon of the M2 beam,
    and the backgrounds are per such muon (the leading-hadron and dimuon yields carry
    the core fraction too). So the factor that multiplies the eq. (6) yield per MOT is
    (1 - halo fraction) x the conditional efficiency of the sample: the halo makes no
    signal that the trigger keeps. Outside the simulated masses the nearest measured
    value is used (``np.interp``). ``lock=False``: the caller's run holds the samples'
    lock already, in another process (the report's side chain).
    """
    from bkg import locks
    from bkg.sim import signal_fractions

    held = [locks.Lock(Path(samples_dir), exclusive=False)] if lock else []
    with locks.hold(held):
        masses, frac = signal_fractions(samples_dir, cfg)
    eff, err = frac["selection"]
    trig, trig_err = frac["trigger"]
    box, box_err = frac["box"]
    core = 1.0 - cfg.beam.halo_fraction
    per_mot = core * eff

    def efficiency(m: np.ndarray) -> np.ndarray:
        return np.interp(np.log(np.asarray(m, dtype=float)), np.log(masses), per_mot)

    return efficiency, {
        "masses_gev": masses.tolist(),
        "efficiency": eff.tolist(),
        "error": err.tolist(),
        "definition": "selected / (true E'_mu in the signal box), beam-core muons",
        "beam_core_fraction": core,
        "efficiency_per_mot": per_mot.tolist(),
        "definition_per_mot": "beam_core_fraction x efficiency: multiplies the x >= 1/2 yield per MOT",
        "trigger_efficiency": trig.tolist(),
        "trigger_efficiency_error": trig_err.tolist(),
        "box_fraction": box.tolist(),
        "box_fraction_error": box_err.tolist(),
        "definition_box_fraction": (
            "events with true E'_mu in the signal box / all events: the largest trigger "
            "efficiency a trigger that keeps only the box can have"
        ),
    }


class _SideProcess:
    """A function of the report run in a second process (:func:`bkg.pipes.side_context`:
    a fork of this process before TensorFlow is imported), its result taken when needed.

    Disabled (``enabled`` False: one worker, or a Dask scheduler), :meth:`start` returns
    a call of the function in this process. On leaving the block the process is ended
    if its result was not taken (an error or an interrupt of the report).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.procs: list[Any] = []
        self.chains: list[_Chain] = []

    @property
    def claimed(self) -> list[Any]:
        """Per chain: which tasks either process has taken (shared flags)."""
        return [chain.claimed for chain in self.chains]

    def full_priority(self) -> None:
        """Every niced chain back at this process's priority (:meth:`_Chain.full_priority`)."""
        for chain in self.chains:
            chain.full_priority()

    def __enter__(self) -> _SideProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()

    def start(self, module: str, func: str, *args: Any, when: bool = True) -> Callable[[], Any]:
        import importlib

        def here() -> Any:
            return getattr(importlib.import_module(module), func)(*args)

        if not (self.enabled and when):
            return here
        ctx = side_context()
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_side_call, args=(send, module, func, args, process_state()), daemon=True
        )
        proc.start()
        send.close()
        self.procs.append(proc)

        def result() -> Any:
            try:
                ok, value = receive.recv()
            except EOFError:  # the process died without an answer (killed): do it here
                return here()
            finally:
                proc.join()
            if not ok:
                raise value
            return value

        return result

    def start_chain(
        self, tasks: Sequence[tuple[str, str, tuple[Any, ...], bool]], *, nice: int = 0
    ) -> list[Callable[[], Any]]:
        """Functions ``(module, func, args, when)`` called one after the other in ONE side
        process (what they build once, e.g. the ECAL's tables, is then built once), each
        result sent back as soon as it is computed; a task whose ``when`` is False, or all
        of them when disabled, is a call here instead.

        A task the side process has not started when its result is asked for is taken
        back and computed here (the side process then skips it): neither process waits
        while work it could do is queued. ``nice`` lowers the side process's priority
        (``os.nice``): started while other stages run, it then takes only the CPU they
        leave idle.

        Returns:
            One callable per task giving its result (or raising its error).
        """
        import functools

        chained = [t[:3] for t in tasks if self.enabled and t[3]]
        if not chained:
            return [_here(*t[:3]) for t in tasks]
        ctx = side_context()
        receive, send = ctx.Pipe(duplex=False)
        claimed = ctx.Array("b", len(chained))  # 1: taken by one of the two processes
        from bkg.sim.ecal import rate_tables

        proc = ctx.Process(
            target=_side_chain,
            args=(send, chained, claimed, nice, rate_tables(), process_state()),
            daemon=True,
        )
        proc.start()
        send.close()
        self.procs.append(proc)
        chain = _Chain(receive, claimed, chained, proc.pid if nice else None)
        self.chains.append(chain)
        out: list[Callable[[], Any]] = []
        k = 0
        for t in tasks:
            if self.enabled and t[3]:  # in the chain, in this order
                out.append(functools.partial(chain.get, k))
                k += 1
            else:
                out.append(_here(*t[:3]))
        return out


def _here(module: str, func: str, args: tuple[Any, ...]) -> Callable[[], Any]:
    """A call of ``module.func(*args)`` in this process."""
    import importlib

    return lambda: getattr(importlib.import_module(module), func)(*args)


class _Chain:
    """The report's side of :meth:`_SideProcess.start_chain`: results as they arrive,
    tasks the side process has not claimed done here."""

    def __init__(
        self,
        receive: Any,
        claimed: Any,
        tasks: list[tuple[str, str, tuple[Any, ...]]],
        pid: int | None = None,
    ) -> None:
        self.receive, self.claimed, self.tasks = receive, claimed, tasks
        self.received: dict[int, tuple[bool, Any]] = {}
        self.done_here: dict[int, tuple[bool, Any]] = {}
        self.pid = pid
        self.not_waited = False  # a niced process that could not be given its priority back

    def full_priority(self) -> None:
        """Give the (niced) side process this process's priority back. Where that is not
        permitted (raising a priority needs privileges), this process no longer waits for
        a task the side process has started: it does it itself."""
        if self.pid is None:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except (AttributeError, OSError):
            self.not_waited = True

    def claim(self, index: int) -> bool:
        """Take task ``index`` unless the side process has (True: it is this process's)."""
        from bkg.pipes import claim

        return claim(self.claimed, index)

    def get(self, index: int) -> Any:
        """Task ``index``'s result (or raise its error)."""
        if index in self.done_here:
            return _outcome(self.done_here.pop(index))
        if self.claim(index):
            return _here(*self.tasks[index])()
        try:
            while index not in self.received:
                if not self.receive.poll():
                    if self.not_waited:  # started there, at the lowest priority
                        return _here(*self.tasks[index])()
                    if self.help_out():
                        continue  # did a queued task while the side process works
                k, ok, value = self.receive.recv()
                self.received[k] = (ok, value)
        except EOFError:  # the process died without an answer (killed): do it here
            return _here(*self.tasks[index])()
        return _outcome(self.received.pop(index))

    def help_out(self) -> bool:
        """While waiting: take the last queued task (the side process takes them from the
        front) and do it here. False when none is left."""
        for j in reversed(range(len(self.tasks))):
            if self.claim(j):
                try:
                    self.done_here[j] = (True, _here(*self.tasks[j])())
                except Exception as exc:  # raised when its result is asked for
                    self.done_here[j] = (False, exc)
                return True
        return False


def _outcome(result: tuple[bool, Any]) -> Any:
    """The value of a (ok, value) result, or raise its exception."""
    ok, value = result
    if not ok:
        raise value
    return value


def _side_chain(
    send: Any,
    tasks: list[tuple[str, str, tuple[Any, ...]]],
    claimed: Any,
    nice: int = 0,
    tables: dict[Any, Any] | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Body of :meth:`_SideProcess.start_chain`: (index, True, result) or (index, False,
    the exception) of each task not yet claimed by the report's process, in turn.
    ``tables``: the ECAL's rate tables made by the samples stage in the report's process
    (:func:`bkg.sim.ecal.rate_tables`), not integrated again here; ``state``: that
    process's working directory and environment (:func:`bkg.pipes.process_state`).

    Results are sent from a thread (:class:`bkg.pipes.Sender`, at the normal priority):
    started early, the chain goes on while the report's process is still in the fits.
    """
    import importlib

    from bkg.memory import heap_policy
    from bkg.pipes import Sender, adopt_process_state, claim
    from bkg.sim.ecal import adopt_rate_tables

    adopt_process_state(state)
    heap_policy("keep")
    adopt_rate_tables(tables)
    sender = Sender(send)
    if nice:
        with contextlib.suppress(AttributeError, OSError):  # no os.nice (Windows)
            os.nice(nice)
    try:
        for index, (module, func, args) in enumerate(tasks):
            if not claim(claimed, index):  # taken by the report's process
                continue
            try:
                out = (index, True, getattr(importlib.import_module(module), func)(*args))
            except BaseException as exc:  # re-raised in the report's process
                out = (index, False, exc)
            sender.send(out)
    finally:
        sender.close()


def _side_call(
    send: Any, module: str, func: str, args: tuple[Any, ...], state: dict[str, Any] | None = None
) -> None:
    """Body of a :class:`_SideProcess`: send (True, result) or (False, the exception)."""
    import importlib

    from bkg.memory import heap_policy
    from bkg.pipes import adopt_process_state

    adopt_process_state(state)
    heap_policy("keep")
    try:
        out = (True, getattr(importlib.import_module(module), func)(*args))
    except BaseException as exc:  # re-raised in the report's process
        out = (False, exc)
    send.send(out)
    send.close()


def report_stage_key(stage: str, cfg: Config, keys: Mapping[str, str]) -> str:
    """Cache key of a stage of the report (:class:`bkg.cache.StageCache`).

    Its inputs: the whole config, the sample files' and fit files' sha256 and the code
    of the package (``keys["inputs"]``). Every stage of the report is a deterministic
    function of these (the toys are seeded from the config), so equal keys give
    byte-identical outputs.
    """
    return cache.stage_key(f"report-{stage}", cfg.to_dict(), {"inputs": keys["inputs"]})


def _efficiency_of_record(record: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Signal efficiency per MOT versus mass from ``signal_efficiency.json``'s record
    (:func:`efficiency_function`; the record's floats are those of the arrays)."""
    log_masses = np.log(np.asarray(record["masses_gev"], dtype=float))
    per_mot = np.asarray(record["efficiency_per_mot"], dtype=float)

    def efficiency(m: np.ndarray) -> np.ndarray:
        return np.interp(np.log(np.asarray(m, dtype=float)), log_masses, per_mot)

    return efficiency


def run_report(
    cfg: Config,
    *,
    name: str | None = None,
    out_root: str | Path = "reports",
    samples_dir: str | Path | None = None,
    fits_dir: str | Path = "fits",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = _noop,
    advance: Advance | None = None,
) -> ReportResult:
    """Run every stage and write ``out_root/<name>/``.

    Args:
        cfg: the effective configuration.
        name: report folder name (default: ``cfg.name``).
        out_root: folder that holds the reports.
        samples_dir: samples folder (default: ``cfg.samples.folder``).
        fits_dir: fits folder.
        workers: local worker processes for sample generation (default: all cores).
        scheduler: a Dask scheduler address, used instead of local processes.
        progress: called with (stage, state) as stages start and finish.
        advance: called with (task, done, total) along the samples and fits stages.
    """

    name = name or cfg.name
    from bkg.config import check_report_name

    check_report_name(name, source="--name")  # a folder under out_root, never '..' or a path
    samples_dir = Path(samples_dir or cfg.samples.folder)
    fits_dir = Path(fits_dir)
    from bkg import locks
    from bkg.sim.run import external_samples

    try:  # a production `bkg samples` did not write is only read: never locked for writing
        external = samples_dir.is_dir() and external_samples(samples_dir)
    except SampleError:
        external = True
    # every folder this run reads or writes, locked until the report is in place: another
    # run never changes the samples or fits between the stage that makes them and the
    # report that uses them, and never assembles the same report at the same time
    held = [
        locks.Lock(samples_dir, exclusive=not external),
        locks.Lock(fits_dir),
        locks.Lock(Path(out_root) / name, replaced=True),
    ]
    with locks.hold(held):
        recover_dir(Path(out_root) / name)  # a run killed between the two renames of a swap
        locks.clean_stale(Path(out_root), names=[name])  # .<name>.*.tmp of a killed run
        locks.clean_stale(fits_dir)
        return _run_report_locked(
            cfg, name=name, out_root=out_root, samples_dir=samples_dir, fits_dir=fits_dir,
            scheduler=scheduler, workers=workers, progress=progress, advance=advance,
        )  # fmt: skip


def _run_report_locked(
    cfg: Config,
    *,
    name: str,
    out_root: str | Path,
    samples_dir: Path,
    fits_dir: Path,
    workers: int | None,
    scheduler: str | None,
    progress: Progress,
    advance: Advance | None,
) -> ReportResult:
    """:func:`run_report` with the locks of its folders held."""
    scheduler = scheduler or cfg.run.scheduler
    run = _StageRunner(cfg, progress)
    side_process = (workers or cfg.run.workers or os.cpu_count() or 1) > 1 and not scheduler
    with _SideProcess(side_process) as side:
        early = _input_stages(
            run, samples_dir=samples_dir, fits_dir=fits_dir, workers=workers,
            scheduler=scheduler, advance=advance, side=side,
        )  # fmt: skip
        side.full_priority()  # the fits are done: an early chain is no longer in the way
        with atomic_dir(Path(out_root) / name) as tmp:
            return _report_stages(
                run, side, early, name=name, out_root=out_root, tmp=tmp,
                samples_dir=samples_dir, fits_dir=fits_dir,
            )  # fmt: skip


def _report_stages(
    run: _StageRunner,
    side: _SideProcess,
    early: list[Callable[[], Any]] | None,
    *,
    name: str,
    out_root: str | Path,
    tmp: Path,
    samples_dir: Path,
    fits_dir: Path,
) -> ReportResult:
    """The stages after the fits, written into ``tmp`` (the report folder being made)."""
    cfg = run.cfg
    run.stage_cache = cache.StageCache(Path(out_root) / name, tmp)
    fig2_curves_of, decay_of, beam_figures_of, sensitivity_of, diagnostics_of = (
        early or _start_side_work(run, run.stage_cache, side, samples_dir)
    )
    table1 = run.step("table", lambda: _table_stage(cfg, fits_dir=fits_dir, tmp=tmp))
    eff_record = run.step(
        "efficiency", lambda: _efficiency_stage(cfg, samples_dir=samples_dir, tmp=tmp)
    )
    sens = run.step("sensitivity", lambda: _sensitivity_stage(tmp, sensitivity_of()))
    ws_files = run.step("workspace", lambda: _workspace_stage(cfg, tmp, sens))
    limits = run.step("limits", lambda: _limits_stage(cfg, tmp, sens))
    fig2 = run.step("fig2", fig2_curves_of)  # plotted as Fig. 2 and judged in the claims
    run.step(
        "figures",
        lambda: _figures(
            cfg,
            samples_dir=samples_dir,
            fits_dir=fits_dir,
            out_dir=tmp / "figures",
            fig2=fig2,
            beam_figures=beam_figures_of(),
        ),
    )
    limits_json = json.loads((tmp / "limits.json").read_text())
    run.step(
        "hepdata",
        lambda: _hepdata(
            tmp, table1=table1, limits=limits_json, sens=sens, cfg=cfg, ws_files=ws_files
        ),
    )
    results = run.step(
        "results",
        lambda: _results_stage(
            cfg, samples_dir=samples_dir, fits_dir=fits_dir, tmp=tmp, table1=table1,
            sens=sens, limits=limits, eff_record=eff_record, fig2=fig2,
            decay_option=decay_of(), diagnostics=diagnostics_of(),
        ),
    )  # fmt: skip
    claims = _write_claims(cfg, tmp, results)
    provenance = _write_provenance(
        cfg, tmp, samples_dir=samples_dir, fits_dir=fits_dir, keys=run.keys
    )
    run.stage_cache.save()
    _write_index(
        name, tmp, fits_dir=fits_dir, table1=table1, limits_json=limits_json, claims=claims,
        provenance=provenance,
    )  # fmt: skip
    return ReportResult(
        folder=Path(out_root) / name, stages=run.stages, claims=claims, table1=table1
    )


#: the report's stages that take a result of the side chain (:func:`_start_side_work`)
_CHAINED_STAGES = ("sensitivity", "fig2", "figures", "results")


def _start_side_work(
    run: _StageRunner,
    stage_cache: cache.StageCache | None,
    side: _SideProcess,
    samples_dir: Path,
    *,
    nice: int = 0,
) -> list[Callable[[], Any]]:
    """The sensitivity (reach, Figs. 4 and 6), Fig. 2's curves, Figs. 3 and 5, the
    decay-length option and the samples' diagnostics of the results in the side process:
    a callable for each result.

    With ``stage_cache`` a task runs there only when its stage will not be reused;
    without it (started early, before the fits, when the report's stages cannot be
    reused: :func:`_input_stages`) all of them do, at the priority ``nice``.
    """
    cfg = run.cfg
    # Fig. 2's curves simulate the signal on their own, Figs. 3 and 5 read the beam
    # sample, the results' decay-length option simulates hadrons: one side
    # process does them in turn (on the second core while the stages before them
    # run), each when its stage is not reused; seeded from the config, the same
    # numbers in any process
    fresh = {
        stage: stage_cache is None
        or not stage_cache.reusable(stage, report_stage_key(stage, cfg, run.keys))
        for stage in _CHAINED_STAGES
    }
    # (Figs. 3 and 5 drawn there too, their bytes sent back: the drawing is half of
    # this process's work after the fits). While the report's process waits for one of
    # them it does the last queued ones itself (start_chain)
    sens, fig2, fig3, fig5, decay, diagnostics = side.start_chain(
        [
            ("bkg.report.pipeline", "render_sensitivity", (cfg, samples_dir), fresh["sensitivity"]),
            ("bkg.sim.figures", "fig2_curves", (cfg,), fresh["fig2"]),
            ("bkg.sim.figures", "render_fig3", (samples_dir, cfg), fresh["figures"]),
            ("bkg.sim.figures", "render_fig5", (samples_dir, cfg), fresh["figures"]),
            ("bkg.report.results", "decay_length_option", (cfg,), fresh["results"]),
            ("bkg.report.results", "sample_diagnostics", (samples_dir, cfg), fresh["results"]),
        ],
        nice=nice,
    )
    return [fig2, decay, lambda: {**fig3(), **fig5()}, sens, diagnostics]


@dataclass
class _StageRunner:
    """Runs a report's stages in turn: each one's state, cache key and wall time.

    Until ``stage_cache`` is set (the report folder is open), a stage always runs; after,
    a stage whose key is unchanged is reused from the previous report.
    """

    cfg: Config
    progress: Progress
    stages: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    stage_cache: cache.StageCache | None = None

    def step(self, stage: str, func: Callable[[], Any]) -> Any:
        """``func()`` (or its recorded value) as the stage ``stage``, with its progress lines."""
        interrupt.check()
        t0 = time.perf_counter()
        self.progress(stage, "running")
        if self.stage_cache is None:
            out, reused = func(), False
        else:
            key = report_stage_key(stage, self.cfg, self.keys)
            out, reused = self.stage_cache.run(stage, key, func)
        self.timings[stage] = time.perf_counter() - t0
        self.stages.setdefault(stage, "reused" if reused else "ran")
        self.progress(stage, "reused" if reused else f"done ({self.timings[stage]:.1f} s)")
        return out


def _input_stages(
    run: _StageRunner,
    *,
    samples_dir: Path,
    fits_dir: Path,
    workers: int | None,
    scheduler: str | None,
    advance: Advance | None,
    side: _SideProcess | None = None,
) -> list[Callable[[], Any]] | None:
    """The samples and fits stages (in their own folders), then the key of their outputs.

    When the fits will run, the report's stages after them cannot be reused (their key
    holds the fits' files): the side chain of :func:`_start_side_work` then starts
    before the fits, at the lowest priority, and does its work on the CPU the fits
    leave idle. Returns its callables (None when it did not start).
    """
    cfg = run.cfg
    if side is not None and side.enabled and not cache.is_fresh(samples_dir, samples_key(cfg)):
        # where the side processes cannot be forks of this process, their modules
        # imported once, by the fork server, while the samples are made (bkg.pipes)
        start_side_server()
        if fork_is_safe():  # the side forks then inherit the plotting stack
            advance = _preloading_figures(advance)
    t0 = time.perf_counter()
    run.stages["samples"], run.keys["samples"] = run_samples_stage(
        cfg, samples_dir=samples_dir, workers=workers, scheduler=scheduler,
        progress=run.progress, advance=advance,
    )  # fmt: skip
    run.timings["samples"] = time.perf_counter() - t0
    interrupt.check()
    early = None
    if (
        side is not None
        and side.enabled
        and not cache.is_fresh(fits_dir, fits_key(cfg, samples_dir))
    ):
        early = _start_side_work(run, None, side, samples_dir, nice=19)
    t0 = time.perf_counter()
    run.stages["fits"], run.keys["fits"] = run_fits_stage(
        cfg, samples_dir=samples_dir, fits_dir=fits_dir, progress=run.progress, advance=advance
    )
    run.timings["fits"] = time.perf_counter() - t0
    interrupt.check()
    run.keys["inputs"] = cache.stage_key(
        "report-inputs",
        {},
        {
            **{f"samples/{k}": v for k, v in samples_hashes(samples_dir).items()},
            **{f"fits/{k}": v for k, v in cache.recorded_outputs(fits_dir).items()},
            "code": cache.code_digest("."),
            **_pdf_input(),
        },
    )
    return early


def _preloading_figures(advance: Advance | None) -> Advance:
    """``advance`` (the samples' progress) that first imports the plotting stack
    (:func:`bkg.plotting.preload`, nothing drawn): called when a chunk is done, while this
    process only waits for the sample workers; the side processes forked after the
    samples then have it. (Not before a fork with nothing else running, as in `bkg fit`:
    the other core would idle while this process imports it, and the side process
    imports it itself while this one imports zfit.)"""
    from bkg.plotting import preload

    def call(sample: str, done: int, total: int) -> None:
        preload()  # once (functools.cache)
        if advance is not None:
            advance(sample, done, total)

    return call


def _table_stage(cfg: Config, *, fits_dir: Path, tmp: Path) -> dict[str, Any]:
    """Table I from the fitted sources (table1.json, .csv, .md, .tex)."""
    from bkg.sources import read_estimates
    from bkg.sources.table import write_table

    return write_table(read_estimates(fits_dir), cfg, out_dir=tmp)


def _efficiency_stage(cfg: Config, *, samples_dir: Path, tmp: Path) -> dict[str, Any]:
    """The measured signal efficiency (signal_efficiency.json)."""
    record = efficiency_function(samples_dir, cfg)[1]
    write_json(tmp / "signal_efficiency.json", record)
    return record


def render_sensitivity(cfg: Config, samples_dir: Path) -> tuple[Any, dict[str, bytes]]:
    """The background-free reach and the signal yields, and the bytes of the files
    :func:`bkg.report.sensitivity.run_sensitivity` writes (sensitivity.json, .csv, Figs. 4
    and 6), relative to the report folder: a task of the side chain."""
    import tempfile

    from bkg.report.sensitivity import run_sensitivity

    # the report's process holds the samples' lock for the whole run, this task included
    efficiency = _efficiency_of_record(efficiency_function(samples_dir, cfg, lock=False)[1])
    with tempfile.TemporaryDirectory(prefix="bkg-sensitivity-") as folder:
        result = run_sensitivity(cfg, out_dir=folder, efficiency=efficiency)
        files = {str(Path(f).relative_to(folder)): Path(f).read_bytes() for f in result.files}
    return result, files


def _sensitivity_stage(tmp: Path, rendered: tuple[Any, dict[str, bytes]]) -> Any:
    """The background-free reach and the signal yields (sensitivity.json and plots), as
    :func:`render_sensitivity` made them: its files written into the report."""
    import dataclasses

    result, files = rendered
    for name, data in sorted(files.items()):
        with atomic_path(tmp / name) as part:
            part.write_bytes(data)
    return dataclasses.replace(result, files=[tmp / name for name in files])


def _workspace_stage(cfg: Config, tmp: Path, sens: Any) -> Any:
    """The pyhf workspace and its patchset of masses (workspace/)."""
    from bkg.stats import run_workspace

    return run_workspace(
        cfg,
        table1_path=tmp / "table1.json",
        masses_gev=sens.masses_gev,
        signal_per_mot_ref=sens.yield_per_mot_ref,
        out_dir=tmp / "workspace",
    )


def _limits_stage(cfg: Config, tmp: Path, sens: Any) -> Any:
    """The CLs limits on g' (limits.json, limits.csv)."""
    from bkg.stats import run_limits

    return run_limits(
        cfg,
        table1_path=tmp / "table1.json",
        masses_gev=sens.masses_gev,
        signal_per_mot_ref=sens.yield_per_mot_ref,
        out_dir=tmp,
        # the published run, computed here with this setup's yields (its 160 GeV beam)
        compare_presets=("na64mu-2022",) if cfg.beam.energy_gev == 160.0 else (),
    )


def _results_stage(
    cfg: Config,
    *,
    samples_dir: Path,
    fits_dir: Path,
    tmp: Path,
    table1: dict[str, Any],
    sens: Any,
    limits: Any,
    eff_record: dict[str, Any],
    fig2: Any,
    decay_option: float | None = None,
    diagnostics: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Every computed number the claims are judged on (results.json)."""
    from bkg.report.results import collect_results

    out = collect_results(
        cfg,
        samples_dir=samples_dir,
        fits_dir=fits_dir,
        table1=table1,
        sensitivity=sens,
        limits=limits,
        efficiency=eff_record,
        fig2=fig2,
        decay_option=decay_option,
        diagnostics=diagnostics,
    )
    write_json(tmp / "results.json", out)
    return out


def _write_claims(cfg: Config, tmp: Path, results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paper's claims judged on the results (claims.json, claims.md)."""
    from bkg.report.claims import evaluate_claims

    claims = [c.as_dict() for c in evaluate_claims(results, beam_energy_gev=cfg.beam.energy_gev)]
    write_json(tmp / "claims.json", {"claims": claims})
    write_text(tmp / "claims.md", _claims_markdown(claims))
    return claims


def _write_provenance(
    cfg: Config, tmp: Path, *, samples_dir: Path, fits_dir: Path, keys: Mapping[str, str]
) -> dict[str, Any]:
    """Every input and output with its sha256, the seeds and the stage keys (provenance.json)."""
    from bkg.report.provenance import collect_provenance, file_hashes

    inputs = {f"samples/{k}": v for k, v in samples_hashes(samples_dir).items()}
    inputs.update({f"fits/{k}": v for k, v in cache.recorded_outputs(fits_dir).items()})
    seeds = {"root": cfg.seed, "samples": _manifest_seeds(samples_dir), "toys": cfg.seed}
    outputs = file_hashes(tmp, exclude=("provenance.json", "index.html"))
    provenance = collect_provenance(
        cfg, inputs=inputs, outputs=outputs, seeds=seeds, stages={k: v for k, v in keys.items()}
    )
    write_json(tmp / "provenance.json", provenance)
    return provenance


def _write_index(
    name: str,
    tmp: Path,
    *,
    fits_dir: Path,
    table1: Mapping[str, Any],
    limits_json: Mapping[str, Any],
    claims: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
) -> None:
    """The report page (index.html) showing every figure of the folder."""
    from bkg.report.html import render_index

    # every figure of the folder (sensitivity.png and reach_vs_mot.png are beside the JSON)
    figures = sorted(tmp.rglob("*.png"))
    fits = {
        p.stem: json.loads(p.read_text())
        for p in sorted(fits_dir.glob("*.json"))
        if not p.name.startswith(".")
    }
    write_text(
        tmp / "index.html",
        render_index(
            title=f"na64mu-bkg report: {name}", table1=table1, limits=limits_json, fits=fits,
            claims=claims, figures=figures, provenance=provenance, root=tmp,
            sensitivity=json.loads((tmp / "sensitivity.json").read_text()),
        ),
    )  # fmt: skip


def _manifest_seeds(samples_dir: Path) -> dict[str, Any]:
    from bkg.ntuple import read_manifest

    try:
        manifest = read_manifest(samples_dir, check_hashes=False)
    except SampleError:
        return {}
    return {entry["file"]: entry.get("seed") for entry in manifest["files"]}


def _figures(
    cfg: Config,
    *,
    samples_dir: Path,
    fits_dir: Path,
    out_dir: Path,
    fig2: Fig2Curves,
    beam_figures: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """Sample figures (Fig. 2 from its curves; Figs. 3 and 5 as ``beam_figures`` gives
    their files, :func:`bkg.sim.figures.render_beam_figures`, or drawn here) and a copy
    of each fit's diagnostic figure."""
    from bkg.sim import figures as simfig

    out_dir.mkdir(parents=True, exist_ok=True)
    if beam_figures is None:
        beam_figures = simfig.render_beam_figures(cfg, samples_dir)
    written = []
    for file_name, data in sorted(beam_figures.items()):
        with atomic_path(out_dir / file_name) as tmp:
            Path(tmp).write_bytes(data)
        written.append(out_dir / file_name)
    written += simfig.fig2_trigger_efficiency(cfg, out_dir, curves=fig2)
    from bkg.plotting import wants_pdf

    pdfs = [p for p in sorted(fits_dir.glob("*.pdf")) if wants_pdf(f"fit_{p.stem}")]
    for src in sorted(fits_dir.glob("*.png")) + pdfs:
        dst = out_dir / f"fit_{src.name}"
        shutil.copyfile(src, dst)
        written.append(dst)
    return written


def _hepdata(
    tmp: Path,
    *,
    table1: dict[str, Any],
    limits: dict[str, Any],
    sens: Any,
    cfg: Config,
    ws_files: Any,
) -> Path:
    from bkg.report.hepdata import write_hepdata

    ref = cfg.g_minus_2.chosen()
    band = {
        "delta_a_mu": ref.delta_a_mu, "sigma": ref.sigma, "reference": cfg.g_minus_2.reference,
        "band_sigmas": cfg.g_minus_2.band_sigmas, "masses_gev": sens.masses_gev.tolist(),
        "low": sens.g2_low.tolist(), "central": sens.g2_central.tolist(), "high": sens.g2_high.tolist(),
    }  # fmt: skip
    files = [tmp / "workspace" / "BkgOnly.json", tmp / "workspace" / "patchset.json"]
    return write_hepdata(
        tmp / "hepdata",
        table1=table1,
        limits=limits,
        g2_band=band,
        beam_energy_gev=cfg.beam.energy_gev,
        workspace_files=[f for f in files if f.exists()],
    )


def _fmt_claim_value(v: Any) -> str:
    """A claim's paper or reproduced value, floats to 3 significant digits."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_claim_value(x) for x in v) + "]"
    return str(v)


def _claims_markdown(claims: list[dict[str, Any]]) -> str:
    fmt = _fmt_claim_value
    n_ok = sum(c["verdict"] == "agrees" for c in claims)
    head = (
        "# Claims of PRD 105, 052006: not applicable (they describe its 160 GeV beam)"
        if none_applicable(claims)
        else f"# Claims of PRD 105, 052006 reproduced: {n_ok} of {len(claims)}"
    )
    lines = [
        head,
        "",
        "| statement | section | paper | reproduced | criterion | verdict |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c['statement']} | {c['section']} | {fmt(c['paper'])} | {fmt(c['reproduced'])} | {c['criterion']} | {c['verdict']}{': ' + c['note'] if c.get('note') else ''} |"
        for c in claims
    ]
    return "\n".join(lines)
