"""Planner coverage benchmark: lazy greedy vs HiGHS MILP vs PySAL spopt, synthetic 10k x 3k and real Knowsley.

Run from the repository root::

    python benchmarks/planner_bench.py [--demand 10000] [--candidates 3000] [--cameras 50,150]
        [--time-limit 30] [--no-baseline] [--spopt-timeout 180] [--spopt-memory-gb 4] [--small 2000x600]
        [--borough-cameras 20] [--shared DIR] [--seed 1] [--json PATH]

Goals (from the issue): the exact solver within 0.1 % gap in at most 30 s and greedy with its bound in at most
2 s on a 10,000 demand x 3,000 candidate instance; the whole borough end to end (load data, candidates,
coverage, both solvers) in at most 60 s and 2 GB.

Instances
    **Synthetic** (seeded): ``--demand`` crime snap points in a 10 km square, 80 % in 60 Gaussian clusters
    (sigma 100-500 m), 20 % uniform; each holds 1 + Poisson(1.5) crimes whose weights are drawn from
    :data:`planner.data.DEFAULT_CRIME_WEIGHTS`. ``--candidates`` sites, half uniform (road junctions
    everywhere) and half within ~50 m of a random demand point (junctions are denser where people are). The
    radius is the median distance from a demand point to its 5th nearest candidate, so a typical point has a
    handful (about 4-5) of sites that could see it. Straight-line coverage.
    **Small** (``--small``, same generator): only for spopt, which does not finish the big one.
    **Knowsley**: every police.uk crime of the 9 months in ../shared/data inside the 100 dissolved
    "Knowsley" LSOAs, as snap points; candidates = every OS Meridian 2 road node inside the borough; radius of
    a 1080p PTZ camera at "observe" (:data:`planner.coverage.PTZ_1080P_OBSERVE`, ~175 m); straight-line and
    along-road coverage; ``--borough-cameras`` new cameras.

Stages
    (a) Synthetic: :func:`planner.coverage.build_coverage` (timed), :func:`~planner.coverage.solve_greedy`
        (timed, with its posterior bound), the same with ``swaps=True`` (greedy improved by swap local
        search; timed) and :func:`~planner.coverage.solve_milp` (``--time-limit``, ``mip_rel_gap=1e-3``,
        default engine with its warm start; timed, HiGHS's status and the gap as reported) for each
        ``--cameras`` budget. Baseline, measured in the same run unless ``--no-baseline``: the same MILP
        through :func:`scipy.optimize.milp` without a warm start (the solver before the warm start existed);
        the report gives its time over ours.
    (b) spopt: ``scipy.spatial.distance.cdist`` + ``spopt.locate.MCLP.from_cost_matrix`` + pulp's CBC on the
        *same* instances (synthetic, small, Knowsley straight-line; the same sites fixed and the same count),
        each in its own process, killed at ``--spopt-timeout`` seconds or ``--spopt-memory-gb`` of resident
        memory (process and its CBC child, polled every 0.2 s). Reported: build and solve time, objective
        against ours, and the ratio of spopt's time to ours (coverage build + MILP) on the same instance.
    (c) Knowsley end to end in a fresh process (so its memory is its own): imports, loading crimes, boundary
        and roads, candidates, coverage (both modes), greedy and MILP; wall time and peak RSS (``VmHWM``).

Everything is measured in the run; nothing is hard-coded. ``--json PATH`` also writes the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psutil
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from scipy.spatial import cKDTree

from planner.coverage import (
    Budget,
    CandidateSites,
    CoverageProblem,
    MilpEngine,
    build_coverage,
    solve_greedy,
    solve_milp,
)
from planner.data import DEFAULT_CRIME_WEIGHTS

try:
    from benchmarks._machine import (
        add_load_rows,
        cpu_model,
        cpu_seconds,
        load_average,
        other_cpu_share,
        package_version,
        progress_bar,
        write_json,
    )
except ModuleNotFoundError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from _machine import (  # type: ignore[no-redef]
        add_load_rows,
        cpu_model,
        cpu_seconds,
        load_average,
        other_cpu_share,
        package_version,
        progress_bar,
        write_json,
    )

__all__ = [
    "BenchResult",
    "BoroughResult",
    "GreedyRun",
    "InstanceInfo",
    "MachineInfo",
    "MilpRun",
    "SpoptRun",
    "main",
    "run_benchmark",
    "synthetic_instance",
]

GOAL_MILP_GAP: Final = 1e-3
"""The exact solver's relative gap, at most (0.1 %)."""
GOAL_MILP_S: Final = 30.0
GOAL_GREEDY_S: Final = 2.0
GOAL_BOROUGH_S: Final = 60.0
GOAL_BOROUGH_MB: Final = 2048.0
SIDE_M: Final = 10_000.0
HANDFUL: Final = 5
"""The synthetic radius gives the median demand point this many candidate sites."""
_POLL_S: Final = 0.2

FloatArray = npt.NDArray[np.float64]


# --- Results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """Where the benchmark ran."""

    platform: str
    cpu_model: str
    cpu_count: int | None
    python: str
    numpy: str
    scipy: str
    highspy: str
    spopt: str
    pulp: str


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One coverage instance; distances in metres, weights dimensionless."""

    name: str
    demand: int
    candidates: int
    radius_m: float
    coverage_nnz: int
    sites_per_demand_median: float
    uncovered_demand: int
    total_weight: float
    coverable_weight: float
    build_s: float
    """:func:`planner.coverage.build_coverage` (sparse matrix from geometry)."""


@dataclass(frozen=True, slots=True)
class GreedyRun:
    """Lazy greedy with its posterior bound; seconds of wall time."""

    cameras: int
    seconds: float
    objective: float
    bound: float
    submodular_bound: float
    lagrangian_bound: float
    gap: float
    evaluations: int
    goal_met: bool
    swap_seconds: float
    """:func:`~planner.coverage.solve_greedy` with ``swaps=True``: greedy, its bound and the swap search."""
    swap_objective: float
    swap_moves: int


@dataclass(frozen=True, slots=True)
class MilpRun:
    """HiGHS on the reduced model; seconds of wall time (reductions, warm start, model building included)."""

    cameras: int
    engine: str
    warm_start: bool
    seconds: float
    start_seconds: float
    """Finding the warm start (greedy, swap searches, solution merging)."""
    highs_seconds: float
    start_objective: float | None
    found_by: str
    status: str
    summary: str
    is_optimal: bool
    objective: float | None
    dual_bound: float | None
    gap: float | None
    mip_gap: float | None
    model_rows: int
    model_binaries: int
    dominated_sites: int
    nodes: int | None
    greedy_share: float | None
    """Greedy's objective over the MILP's."""
    goal_met: bool


@dataclass(frozen=True, slots=True)
class SpoptRun:
    """spopt's MCLP (pulp + CBC) on an instance of ours, in its own process."""

    instance: str
    outcome: str
    """``"solved"``, ``"time limit"`` (killed), ``"memory cap"`` (killed) or ``"error: ..."``."""
    stage_reached: str
    """The last stage that finished: ``"started"``, ``"cost matrix"``, ``"model built"``, ``"solved"``."""
    cost_matrix_s: float | None
    build_s: float | None
    solve_s: float | None
    total_s: float
    """Wall time until solved or killed (process start-up excluded)."""
    peak_rss_mb: float
    """Largest resident memory seen (process + CBC), MB."""
    objective: float | None
    ours_s: float
    """Our coverage build + MILP on the same instance, seconds."""
    ours_objective: float | None
    objectives_match: bool | None
    ratio: float
    """spopt's total time over ours; a lower bound when spopt did not finish."""


@dataclass(frozen=True, slots=True)
class BoroughMode:
    """One coverage mode on the real borough."""

    mode: str
    coverage_s: float
    coverage_nnz: int
    greedy_s: float
    greedy_objective: float
    greedy_bound: float
    milp_s: float
    milp_summary: str
    milp_objective: float | None
    milp_dual_bound: float | None


@dataclass(frozen=True, slots=True)
class BoroughResult:
    """(c) Knowsley end to end, in a fresh process; seconds and MB."""

    crimes: int
    demand: int
    candidates: int
    radius_m: float
    cameras: int
    import_s: float
    """Process start-up and imports, until the pipeline starts."""
    load_s: float
    candidates_s: float
    modes: tuple[BoroughMode, ...]
    total_s: float
    """From the benchmark starting the process (start-up and imports included) to the last solver's answer."""
    peak_rss_mb: float
    """Peak resident memory of that process (``VmHWM``), MB."""
    goal_met: bool


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Everything one run measured."""

    started_at: str
    runtime_s: float
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]
    other_cpu_share: float | None
    """Share of the machine's CPU time used by other processes during the run, 0..1 (Linux only)."""
    peak_rss_mb: float
    machine: MachineInfo
    synthetic: InstanceInfo
    greedy: tuple[GreedyRun, ...]
    milp: tuple[MilpRun, ...]
    milp_baseline: tuple[MilpRun, ...]
    """scipy.optimize.milp without a warm start, same instances and limits (empty with ``--no-baseline``)."""
    small: InstanceInfo
    spopt: tuple[SpoptRun, ...]
    borough: BoroughResult | None
    borough_error: str | None
    goals_met: dict[str, bool]

    def to_dict(self) -> dict[str, Any]:
        """The results as plain JSON data, exactly as ``--json`` writes them."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data


# --- Instances --------------------------------------------------------------------------------------------


def synthetic_instance(
    n_demand: int, n_candidates: int, seed: int
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """A clustered synthetic instance (see the module docstring).

    Returns
    -------
    demand_xy, weights, site_xy, radius_m
        Positions in metres (a local grid), weights dimensionless, the coverage radius in metres.
    """
    rng = np.random.default_rng(seed)
    n_background = n_demand // 5
    centres = rng.uniform(0, SIDE_M, (60, 2))
    sigma = rng.uniform(100, 500, 60)
    counts = rng.multinomial(n_demand - n_background, rng.dirichlet(np.ones(60)))
    parts = [rng.uniform(0, SIDE_M, (n_background, 2))]
    parts += [rng.normal(c, s, (k, 2)) for c, s, k in zip(centres, sigma, counts, strict=True)]
    demand = np.clip(np.vstack(parts), 0, SIDE_M)
    type_weights = np.array(sorted(DEFAULT_CRIME_WEIGHTS.values()))
    crimes = 1 + rng.poisson(1.5, n_demand)
    weights = np.array([rng.choice(type_weights, k).sum() for k in crimes])
    n_uniform = n_candidates // 2
    near = demand[rng.choice(n_demand, n_candidates - n_uniform, replace=n_candidates - n_uniform > n_demand)]
    sites = np.vstack([rng.uniform(0, SIDE_M, (n_uniform, 2)), near + rng.normal(0, 50, near.shape)])
    k = min(HANDFUL, n_candidates)
    distances = cKDTree(sites).query(demand, k=k)[0].reshape(n_demand, -1)
    return demand, weights, sites, float(np.median(distances[:, -1]))


def _info(name: str, problem: CoverageProblem, radius: float, build_s: float) -> InstanceInfo:
    per_demand = np.diff(problem.coverage.indptr)
    return InstanceInfo(
        name=name,
        demand=problem.n_demand,
        candidates=problem.n_sites,
        radius_m=round(radius, 1),
        coverage_nnz=int(problem.coverage.nnz),
        sites_per_demand_median=float(np.median(per_demand)) if len(per_demand) else 0.0,
        uncovered_demand=int((per_demand == 0).sum()),
        total_weight=round(float(problem.weights.sum()), 3),
        coverable_weight=round(problem.coverable_weight, 3),
        build_s=round(build_s, 4),
    )


# --- Child processes --------------------------------------------------------------------------------------

Send = Callable[[tuple[Any, ...]], None]


def _child_main(target: Callable[..., None], args: tuple[Any, ...], conn: Connection, tmpdir: str) -> None:
    """Entry point of every child: own process group (so CBC dies with it), own temp dir, report errors."""
    os.setpgrp()
    tempfile.tempdir = tmpdir
    os.environ["TMPDIR"] = tmpdir
    try:
        target(conn.send, *args)
    except MemoryError:
        conn.send(("error", "MemoryError"))
    except Exception as exc:  # reported to the parent, which prints it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _run_child(
    target: Callable[..., None], args: tuple[Any, ...], *, timeout_s: float, memory_mb: float | None
) -> tuple[str, list[tuple[float, tuple[Any, ...]]], float, float]:
    """Run ``target(send, *args)`` in a fresh process; kill it (and its children) at the limits.

    Returns ``(outcome, messages, wall seconds, peak RSS MB seen)``: each message with the second it arrived
    (from the start); outcome is ``"done"``, ``"time limit"``, ``"memory cap"``, ``"error: ..."`` or
    ``"exited"``.
    """
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    messages: list[tuple[float, tuple[Any, ...]]] = []
    peak = 0.0
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as tmpdir:
        proc = ctx.Process(target=_child_main, args=(target, args, send, tmpdir))
        start = time.perf_counter()
        proc.start()
        send.close()
        pid = proc.pid
        assert pid is not None  # started
        outcome = "exited"
        try:
            watched = psutil.Process(pid)
            while True:
                peak = max(peak, _tree_rss_mb(watched))
                if time.perf_counter() - start > timeout_s:
                    outcome = "time limit"
                    break
                if memory_mb is not None and peak > memory_mb:
                    outcome = "memory cap"
                    break
                if receive.poll(_POLL_S):
                    try:
                        message = receive.recv()
                    except EOFError:
                        break
                    messages.append((time.perf_counter() - start, message))
                    if message[0] in ("done", "error"):
                        outcome = "done" if message[0] == "done" else f"error: {message[1]}"
                        break
                elif not proc.is_alive():
                    break
        finally:
            wall = time.perf_counter() - start
            if proc.is_alive() and outcome != "done":
                _kill_group(pid)
            proc.join(timeout=30)
            if proc.is_alive():
                _kill_group(pid)
                proc.join()
            receive.close()
            proc.close()
    return outcome, messages, wall, peak


def _tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and its children (e.g. CBC), MB; 0 once it is gone."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total / 2**20


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (the child made itself its leader), or the child alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _spopt_child(
    send: Send,
    demand: FloatArray,
    weights: FloatArray,
    sites: FloatArray,
    radius: float,
    p: int,
    existing: npt.NDArray[np.bool_],
    timeout_s: float,
) -> None:
    """spopt's own pipeline: dense cost matrix, ``MCLP.from_cost_matrix``, CBC; stage times to the parent."""
    import warnings

    # pulp 3.3 deprecates calls spopt makes; they are not what is measured here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulp
    from scipy.spatial.distance import cdist
    from spopt.locate import MCLP

    send(("stage", "started", 0.0))
    start = time.perf_counter()
    cost = cdist(demand, sites)
    send(("stage", "cost matrix", time.perf_counter() - start))
    t0 = time.perf_counter()
    model = MCLP.from_cost_matrix(
        cost, weights, service_radius=radius, p_facilities=p, predefined_facilities_arr=existing.astype(int)
    )
    send(("stage", "model built", time.perf_counter() - t0))
    t0 = time.perf_counter()
    left = max(1, int(timeout_s - (time.perf_counter() - start)))
    model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=left))
    solve_s = time.perf_counter() - t0
    send(("stage", "solved", solve_s))
    send(("done", float(pulp.value(model.problem.objective) or 0.0), pulp.LpStatus[model.problem.status]))


def run_spopt(
    name: str,
    demand: FloatArray,
    weights: FloatArray,
    sites: FloatArray,
    radius: float,
    existing: npt.NDArray[np.bool_],
    cameras: int,
    *,
    ours_s: float,
    ours_objective: float | None,
    timeout_s: float,
    memory_mb: float,
) -> SpoptRun:
    """spopt on the same instance, in its own process, with a time and memory limit."""
    p = min(int(existing.sum()) + cameras, len(sites))  # spopt fixes the total count, existing included
    outcome, messages, wall, peak = _run_child(
        _spopt_child,
        (demand, weights, sites, radius, p, existing, timeout_s),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
    )
    stages = {m[1]: float(m[2]) for _, m in messages if m[0] == "stage"}
    reached = [m[1] for _, m in messages if m[0] == "stage"]
    done = [m for _, m in messages if m[0] == "done"]
    objective = float(done[0][1]) if done else None
    # Time from spopt's first step (imports and process start-up excluded) to the answer or the kill.
    started = next((at for at, m in messages if m[0] == "stage" and m[1] == "started"), 0.0)
    total = sum(stages.values()) if done else wall - started
    matches = None
    if objective is not None and ours_objective is not None:
        matches = bool(abs(objective - ours_objective) <= 1e-6 * max(1.0, abs(ours_objective)))
    return SpoptRun(
        instance=name,
        outcome="solved" if outcome == "done" else outcome,
        stage_reached=reached[-1] if reached else "not started",
        cost_matrix_s=_round(stages.get("cost matrix")),
        build_s=_round(stages.get("model built")),
        solve_s=_round(stages.get("solved")),
        total_s=round(total, 3),
        peak_rss_mb=round(peak, 1),
        objective=objective,
        ours_s=round(ours_s, 3),
        ours_objective=ours_objective,
        objectives_match=matches,
        ratio=round(total / ours_s, 2) if ours_s > 0 else float("inf"),
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _borough_child(send: Send, shared: str, cameras: int, time_limit_s: float, start: float) -> None:
    """(c): the whole borough from files to both solvers' answers, in this fresh process."""
    # The spawned process imported this module (numpy, scipy, geopandas via planner) before calling here.
    import_s = time.time() - start
    import shapely

    from planner.coverage import (
        PTZ_1080P_OBSERVE,
        Budget,
        build_coverage,
        candidate_sites,
        crime_demand,
        solve_greedy,
        solve_milp,
    )
    from planner.data import load_boundary, load_crimes, load_road_graph_meridian

    data = Path(shared) / "data"
    t0 = time.perf_counter()
    boundary = load_boundary(
        lsoa_shapefile=data / "lsoa-2001" / "england_low_soa_2001.shp", name_prefix="Knowsley"
    )
    roads = load_road_graph_meridian(
        [data / "os-meridian2" / f"{name}_polyline.shp" for name in ("motorway", "a_road", "b_road")],
        clip=boundary,
        buffer_m=5000,
    )
    crimes = load_crimes(sorted((data / "police-uk").glob("police-uk-*-street.csv")))
    shapely.prepare(boundary)
    crimes = crimes[shapely.covers(boundary, crimes.geometry.to_numpy())]
    demand = crime_demand(crimes)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sites = candidate_sites(roads, boundary, min_degree=2, dead_ends=True)
    candidates_s = time.perf_counter() - t0
    radius = PTZ_1080P_OBSERVE.coverage_radius_m
    budget = Budget(cameras=cameras)
    modes = []
    for mode, network in (("straight-line", False), ("along roads", True)):
        t0 = time.perf_counter()
        problem = build_coverage(
            demand.xy,
            demand.weights,
            sites,
            radius,
            graph=roads,
            network=network,
            categories=demand.categories,
        )
        coverage_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        greedy = solve_greedy(problem, budget)
        greedy_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = solve_milp(problem, budget, time_limit_s=time_limit_s)
        milp_s = time.perf_counter() - t0
        modes.append(
            {
                "mode": mode,
                "coverage_s": round(coverage_s, 4),
                "coverage_nnz": int(problem.coverage.nnz),
                "greedy_s": round(greedy_s, 4),
                "greedy_objective": round(greedy.objective, 3),
                "greedy_bound": round(greedy.bound, 3),
                "milp_s": round(milp_s, 4),
                "milp_summary": exact.summary,
                "milp_objective": None if exact.objective is None else round(exact.objective, 3),
                "milp_dual_bound": None if exact.dual_bound is None else round(exact.dual_bound, 3),
            }
        )
    total_s = time.time() - start
    send(
        (
            "done",
            {
                "crimes": len(crimes),
                "demand": len(demand.weights),
                "candidates": len(sites),
                "radius_m": round(radius, 1),
                "cameras": cameras,
                "import_s": round(import_s, 3),
                "load_s": round(load_s, 3),
                "candidates_s": round(candidates_s, 4),
                "modes": modes,
                "total_s": round(total_s, 3),
                "peak_rss_mb": round(_own_peak_rss_mb(), 1),
            },
            # The straight-line instance, for spopt in the parent.
            (demand.xy, demand.weights, sites.xy, radius, sites.existing),
        )
    )


def _own_peak_rss_mb() -> float:
    """Peak resident memory of this process since it started its program, MB (``VmHWM``).

    Not ``ru_maxrss``: Linux keeps that across ``exec``, so a spawned child would report its parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Stages -----------------------------------------------------------------------------------------------


def _solve_all(
    problem: CoverageProblem,
    cameras: Sequence[int],
    time_limit_s: float,
    progress: Progress,
    label: str,
    *,
    baseline: bool,
) -> tuple[list[GreedyRun], list[MilpRun], list[MilpRun]]:
    greedy_runs, milp_runs, baseline_runs = [], [], []
    for k in cameras:
        task = progress.add_task(f"{label}: greedy + MILP, {k} cameras", total=None)
        budget = Budget(cameras=k)
        t0 = time.perf_counter()
        greedy = solve_greedy(problem, budget)
        greedy_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        swapped = solve_greedy(problem, budget, swaps=True)
        swap_s = time.perf_counter() - t0
        greedy_runs.append(
            GreedyRun(
                cameras=k,
                seconds=round(greedy_s, 4),
                objective=round(greedy.objective, 3),
                bound=round(greedy.bound, 3),
                submodular_bound=round(greedy.submodular_bound, 3),
                lagrangian_bound=round(greedy.lagrangian_bound, 3),
                gap=round(greedy.gap, 5),
                evaluations=greedy.evaluations,
                goal_met=greedy_s <= GOAL_GREEDY_S,
                swap_seconds=round(swap_s, 4),
                swap_objective=round(swapped.objective, 3),
                swap_moves=swapped.swap_moves,
            )
        )
        milp_runs.append(_milp_run(problem, budget, time_limit_s, greedy.objective, engine=None, warm=True))
        if baseline:
            baseline_runs.append(
                _milp_run(problem, budget, time_limit_s, greedy.objective, engine="scipy", warm=False)
            )
        progress.update(task, total=1, completed=1)
    return greedy_runs, milp_runs, baseline_runs


def _milp_run(
    problem: CoverageProblem,
    budget: Budget,
    time_limit_s: float,
    greedy_objective: float,
    *,
    engine: MilpEngine | None,
    warm: bool,
) -> MilpRun:
    t0 = time.perf_counter()
    exact = solve_milp(
        problem, budget, time_limit_s=time_limit_s, mip_rel_gap=GOAL_MILP_GAP, engine=engine, warm_start=warm
    )
    milp_s = time.perf_counter() - t0
    return MilpRun(
        cameras=budget.cameras or 0,
        engine=exact.engine,
        warm_start=warm,
        seconds=round(milp_s, 3),
        start_seconds=round(exact.start_s, 3),
        highs_seconds=round(exact.highs_s, 3),
        start_objective=None if exact.start_objective is None else round(exact.start_objective, 3),
        found_by=exact.found_by,
        status=exact.status,
        summary=exact.summary,
        is_optimal=exact.is_optimal,
        objective=None if exact.objective is None else round(exact.objective, 3),
        dual_bound=None if exact.dual_bound is None else round(exact.dual_bound, 3),
        gap=None if exact.gap is None else round(exact.gap, 6),
        mip_gap=None if exact.mip_gap is None else round(exact.mip_gap, 6),
        model_rows=exact.model_rows,
        model_binaries=exact.model_binaries,
        dominated_sites=exact.dominated_sites,
        nodes=exact.node_count,
        greedy_share=round(greedy_objective / exact.objective, 5) if exact.objective else None,
        goal_met=exact.gap is not None and exact.gap <= GOAL_MILP_GAP and milp_s <= GOAL_MILP_S,
    )


def _build(
    name: str, demand: FloatArray, weights: FloatArray, site_xy: FloatArray, radius: float
) -> tuple[CoverageProblem, InstanceInfo]:
    t0 = time.perf_counter()
    problem = build_coverage(demand, weights, CandidateSites.from_xy(site_xy), radius)
    return problem, _info(name, problem, radius, time.perf_counter() - t0)


def run_benchmark(
    *,
    demand: int,
    candidates: int,
    cameras: Sequence[int],
    time_limit_s: float,
    small: tuple[int, int],
    spopt_timeout_s: float,
    spopt_memory_mb: float,
    borough_cameras: int,
    shared: Path,
    seed: int,
    console: Console,
    baseline: bool = True,
) -> BenchResult:
    """Run every stage and return the results (see the module docstring).

    Parameters
    ----------
    demand, candidates
        Size of the synthetic instance.
    cameras
        Camera budgets solved on it.
    time_limit_s
        HiGHS's time limit per solve, seconds.
    small
        Demand points and candidates of the small synthetic instance for spopt.
    spopt_timeout_s, spopt_memory_mb
        Limits of each spopt process (seconds, MB of resident memory).
    borough_cameras
        New cameras on the real borough.
    shared
        The shared folder holding ``data/``.
    seed
        Generator seed.
    console
        Where progress goes.
    baseline
        Also solve each synthetic budget with the baseline MILP (scipy, no warm start).
    """
    started_at = datetime.now(UTC)
    load_start, cpu_start = load_average(), cpu_seconds()
    start = time.perf_counter()
    spopt_runs: list[SpoptRun] = []
    with progress_bar(console) as progress:
        task = progress.add_task(
            f"(a) synthetic {demand:,} x {candidates:,}: generate + coverage", total=None
        )
        d_xy, d_w, s_xy, radius = synthetic_instance(demand, candidates, seed)
        problem, synthetic = _build("synthetic", d_xy, d_w, s_xy, radius)
        progress.update(task, total=1, completed=1)
        greedy_runs, milp_runs, baseline_runs = _solve_all(
            problem, cameras, time_limit_s, progress, "(a)", baseline=baseline
        )

        task = progress.add_task(f"(b) spopt on the synthetic instance, {cameras[-1]} cameras", total=None)
        last = milp_runs[-1]
        spopt_runs.append(
            run_spopt(
                "synthetic",
                d_xy,
                d_w,
                s_xy,
                radius,
                problem.existing,
                cameras[-1],
                ours_s=synthetic.build_s + last.seconds,
                ours_objective=last.objective,
                timeout_s=spopt_timeout_s,
                memory_mb=spopt_memory_mb,
            )
        )
        progress.update(task, total=1, completed=1)

        task = progress.add_task(f"(b) spopt on a small {small[0]:,} x {small[1]:,} instance", total=None)
        sd_xy, sd_w, ss_xy, s_radius = synthetic_instance(small[0], small[1], seed + 1)
        small_problem, small_info = _build("small", sd_xy, sd_w, ss_xy, s_radius)
        k_small = max(1, small[1] // 20)
        t0 = time.perf_counter()
        exact = solve_milp(small_problem, Budget(cameras=k_small), time_limit_s=time_limit_s, mip_rel_gap=0.0)
        ours_small = small_info.build_s + time.perf_counter() - t0
        spopt_runs.append(
            run_spopt(
                f"small ({k_small} cameras, exact)",
                sd_xy,
                sd_w,
                ss_xy,
                s_radius,
                small_problem.existing,
                k_small,
                ours_s=ours_small,
                ours_objective=exact.objective if exact.is_optimal else None,
                timeout_s=spopt_timeout_s,
                memory_mb=spopt_memory_mb,
            )
        )
        progress.update(task, total=1, completed=1)

        task = progress.add_task("(c) Knowsley end to end (fresh process)", total=None)
        borough, borough_error, instance = _run_borough(shared, borough_cameras, time_limit_s)
        progress.update(task, total=1, completed=1)
        if instance is not None and borough is not None:
            task = progress.add_task("(b) spopt on Knowsley (straight-line)", total=None)
            b_xy, b_w, b_sites, b_radius, b_existing = instance
            t0 = time.perf_counter()
            b_problem = build_coverage(b_xy, b_w, CandidateSites.from_xy(b_sites), b_radius)
            b_exact = solve_milp(
                b_problem, Budget(cameras=borough_cameras), time_limit_s=time_limit_s, mip_rel_gap=0.0
            )
            ours_b = time.perf_counter() - t0
            spopt_runs.append(
                run_spopt(
                    f"Knowsley ({borough_cameras} cameras, exact)",
                    b_xy,
                    b_w,
                    b_sites,
                    b_radius,
                    b_existing,
                    borough_cameras,
                    ours_s=ours_b,
                    ours_objective=b_exact.objective if b_exact.is_optimal else None,
                    timeout_s=spopt_timeout_s,
                    memory_mb=spopt_memory_mb,
                )
            )
            progress.update(task, total=1, completed=1)
    runtime = time.perf_counter() - start
    goals = {
        "exact <= 0.1% gap in <= 30 s": all(run.goal_met for run in milp_runs),
        "greedy + bound <= 2 s": all(run.goal_met for run in greedy_runs),
        "borough end to end <= 60 s and <= 2 GB": borough is not None and borough.goal_met,
    }
    return BenchResult(
        started_at=started_at.isoformat(timespec="seconds"),
        runtime_s=round(runtime, 1),
        load_average_start=load_start,
        load_average_end=load_average(),
        other_cpu_share=other_cpu_share(cpu_start, runtime, os.cpu_count() or 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        machine=machine_info(),
        synthetic=synthetic,
        greedy=tuple(greedy_runs),
        milp=tuple(milp_runs),
        milp_baseline=tuple(baseline_runs),
        small=small_info,
        spopt=tuple(spopt_runs),
        borough=borough,
        borough_error=borough_error,
        goals_met=goals,
    )


def _run_borough(
    shared: Path, cameras: int, time_limit_s: float
) -> tuple[BoroughResult | None, str | None, tuple[Any, ...] | None]:
    outcome, messages, _, _ = _run_child(
        _borough_child,
        (str(shared), cameras, time_limit_s, time.time()),
        timeout_s=max(600.0, 4 * time_limit_s),
        memory_mb=None,
    )
    done = [m for _, m in messages if m[0] == "done"]
    if not done:
        return None, outcome, None
    data, instance = done[0][1], done[0][2]
    modes = tuple(BoroughMode(**mode) for mode in data.pop("modes"))
    goal = data["total_s"] <= GOAL_BOROUGH_S and data["peak_rss_mb"] <= GOAL_BOROUGH_MB
    return BoroughResult(**data, modes=modes, goal_met=goal), None, instance


def machine_info() -> MachineInfo:
    """Describe this machine and the versions of the engines being measured."""
    return MachineInfo(
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        numpy=package_version("numpy"),
        scipy=package_version("scipy"),
        highspy=package_version("highspy"),
        spopt=package_version("spopt"),
        pulp=package_version("pulp"),
    )


# --- Report -----------------------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "[bold green]PASS[/bold green]" if met else "[bold red]FAIL[/bold red]"


def _opt(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def _tables(result: BenchResult) -> list[Table]:
    m, s = result.machine, result.synthetic
    machine = Table(title="Machine", show_header=False)
    machine.add_column("what", style="bold")
    machine.add_column("value")
    machine.add_row("platform", m.platform)
    machine.add_row("CPU", f"{m.cpu_model}; {m.cpu_count} logical CPUs")
    machine.add_row(
        "versions",
        f"Python {m.python}, numpy {m.numpy}, scipy {m.scipy} (HiGHS), highspy {m.highspy}, spopt {m.spopt}, "
        f"pulp {m.pulp}",
    )
    add_load_rows(
        machine,
        result.load_average_start,
        result.load_average_end,
        result.other_cpu_share,
        measured="times",
    )

    instances = Table(title="Instances")
    for name in (
        "instance",
        "demand",
        "sites",
        "radius m",
        "sites/point (median)",
        "uncovered",
        "nnz",
        "build s",
    ):
        instances.add_column(name, justify="right")
    for info in (s, result.small):
        instances.add_row(
            info.name,
            f"{info.demand:,}",
            f"{info.candidates:,}",
            f"{info.radius_m:.0f}",
            f"{info.sites_per_demand_median:.0f}",
            f"{info.uncovered_demand:,}",
            f"{info.coverage_nnz:,}",
            f"{info.build_s:.3f}",
        )

    solvers = Table(title=f"(a) Synthetic {s.demand:,} demand x {s.candidates:,} candidates")
    for name in ("cameras", "solver", "seconds", "objective", "bound", "gap", "notes", "goal"):
        solvers.add_column(name, justify="right" if name not in ("solver", "notes") else "left")
    baselines: dict[int, MilpRun] = {run.cameras: run for run in result.milp_baseline}
    for g, x in zip(result.greedy, result.milp, strict=True):
        solvers.add_row(
            str(g.cameras),
            "lazy greedy",
            f"{g.seconds:.3f}",
            f"{g.objective:,.1f}",
            f"{g.bound:,.1f}",
            f"{g.gap:.2%}",
            f"{_opt(x.greedy_share, '.2%')} of the MILP's objective; bounds: submodular "
            f"{g.submodular_bound:,.1f}, Lagrangian {g.lagrangian_bound:,.1f}; "
            f"{g.evaluations:,} gains computed",
            f"<= {GOAL_GREEDY_S:g} s {_verdict(g.goal_met)}",
        )
        swap_gap = (g.bound - g.swap_objective) / g.bound if g.bound else 0.0
        share = f"{g.swap_objective / x.objective:.2%}" if x.objective else "-"
        solvers.add_row(
            "",
            "greedy + swaps",
            f"{g.swap_seconds:.3f}",
            f"{g.swap_objective:,.1f}",
            f"{g.bound:,.1f}",
            f"{swap_gap:.2%}",
            f"{share} of the MILP's objective; {g.swap_moves} swap moves (1-swap local optimum)",
            "",
        )
        rows = [(x, "HiGHS MILP")]
        if x.cameras in baselines:
            rows.append((baselines[x.cameras], "baseline MILP"))
        for mrun, label in rows:
            notes = (
                f"{mrun.summary}; {mrun.engine}"
                + (
                    f", warm start {_opt(mrun.start_objective)} in {mrun.start_seconds:.2f} s, HiGHS "
                    f"{mrun.highs_seconds:.2f} s, solution from {mrun.found_by}"
                    if mrun.warm_start
                    else ", no warm start"
                )
                + f"; HiGHS gap {_opt(mrun.mip_gap, '.3%')}; model {mrun.model_rows:,} rows x "
                f"{mrun.model_binaries:,} sites ({mrun.dominated_sites:,} dominated dropped); "
                f"{mrun.nodes} nodes"
            )
            if mrun is not x and x.seconds > 0:
                stopped = not mrun.is_optimal and mrun.status == "Time limit reached"
                notes += f"; {'> ' if stopped else ''}{mrun.seconds / x.seconds:.1f}x our time"
            solvers.add_row(
                "",
                label,
                f"{mrun.seconds:.2f}",
                _opt(mrun.objective),
                _opt(mrun.dual_bound),
                "-" if mrun.gap is None else f"{mrun.gap:.3%}",
                notes,
                f"<= {GOAL_MILP_GAP:.1%} in <= {GOAL_MILP_S:g} s {_verdict(mrun.goal_met)}",
            )

    spopt = Table(title="(b) PySAL spopt MCLP (cdist + from_cost_matrix + CBC) on the same instances")
    for name in (
        "instance",
        "outcome",
        "cost matrix s",
        "build s",
        "solve s",
        "total s",
        "peak MB",
        "ours s",
        "ratio",
        "objective",
    ):
        spopt.add_column(name, justify="right" if name not in ("instance", "outcome") else "left")
    for run in result.spopt:
        finished = run.outcome == "solved"
        if run.objectives_match is None:
            objective = f"spopt {_opt(run.objective)}; ours {_opt(run.ours_objective)}"
        else:
            objective = f"{_opt(run.objective)} ({'equal' if run.objectives_match else '[red]differs[/red]'})"
        spopt.add_row(
            run.instance,
            run.outcome if finished else f"{run.outcome} after '{run.stage_reached}'",
            _opt(run.cost_matrix_s, ".2f"),
            _opt(run.build_s, ".2f"),
            _opt(run.solve_s, ".2f"),
            f"{run.total_s:.1f}",
            f"{run.peak_rss_mb:,.0f}",
            f"{run.ours_s:.2f}",
            f"{run.ratio:,.1f}x" if finished else f"> {run.ratio:,.1f}x",
            objective,
        )
    tables = [machine, instances, solvers, spopt]

    b = result.borough
    borough = Table(title="(c) Knowsley end to end, fresh process", show_header=False)
    borough.add_column("what", style="bold")
    borough.add_column("value")
    if b is None:
        borough.add_row("failed", str(result.borough_error))
    else:
        borough.add_row(
            "data",
            f"{b.crimes:,} crimes -> {b.demand:,} snap points; {b.candidates:,} road-node sites; radius "
            f"{b.radius_m:.0f} m (1080p PTZ, observe); {b.cameras} new cameras",
        )
        borough.add_row(
            "stages",
            f"process start-up + imports {b.import_s:.2f} s, load files {b.load_s:.2f} s, candidates "
            f"{b.candidates_s:.3f} s",
        )
        for mode in b.modes:
            borough.add_row(
                mode.mode,
                f"coverage {mode.coverage_s:.3f} s ({mode.coverage_nnz:,} pairs); greedy "
                f"{mode.greedy_s:.3f} s -> {mode.greedy_objective:,.1f} (bound {mode.greedy_bound:,.1f}); "
                f"MILP {mode.milp_s:.2f} s -> {_opt(mode.milp_objective)} ({mode.milp_summary})",
            )
        borough.add_row(
            "total",
            f"{b.total_s:.1f} s, peak RSS {b.peak_rss_mb:,.0f} MB (goal <= {GOAL_BOROUGH_S:g} s, "
            f"<= {GOAL_BOROUGH_MB / 1024:g} GB): {_verdict(b.goal_met)}",
        )
    tables.append(borough)
    return tables


def print_report(result: BenchResult, console: Console) -> None:
    """Print the result tables and one line per goal."""
    for table in _tables(result):
        console.print(table)
    for goal, met in result.goals_met.items():
        console.print(f"{goal}: {_verdict(met)}")
    console.print(
        f"total {result.runtime_s:.0f} s, peak RSS of the benchmark process {result.peak_rss_mb:,.0f} MB"
    )


# --- Entry point ------------------------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    try:
        demand, sites = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected DEMANDxSITES such as 2000x600, got {text!r}") from exc
    if demand < 1 or sites < 1:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1, got {text!r}")
    return demand, sites


def _counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected counts >= 0, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    default_shared = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description="Planner coverage benchmark: greedy, HiGHS MILP and spopt.")
    parser.add_argument("--demand", type=int, default=10_000, help="synthetic demand points (default 10000)")
    parser.add_argument(
        "--candidates", type=int, default=3_000, help="synthetic candidate sites (default 3000)"
    )
    parser.add_argument(
        "--cameras", type=_counts, default=[50, 150], help="camera budgets, comma-separated (default 50,150)"
    )
    parser.add_argument(
        "--time-limit", type=float, default=GOAL_MILP_S, help="HiGHS time limit, s (default 30)"
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also solve with scipy.optimize.milp without a warm start, for comparison (default: yes)",
    )
    parser.add_argument(
        "--small", type=_size, default=(2_000, 600), help="spopt's small instance (default 2000x600)"
    )
    parser.add_argument("--spopt-timeout", type=float, default=180.0, help="per spopt run, s (default 180)")
    parser.add_argument(
        "--spopt-memory-gb", type=float, default=4.0, help="per spopt run, GB RSS (default 4)"
    )
    parser.add_argument(
        "--borough-cameras", type=int, default=20, help="new cameras in Knowsley (default 20)"
    )
    parser.add_argument(
        "--shared", type=Path, default=default_shared, help="folder holding data/ (../shared)"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark, print the report; return the results as a dict."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("demand", "candidates", "time_limit", "spopt_timeout", "spopt_memory_gb"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not (args.shared / "data").is_dir():
        parser.error(f"--shared {args.shared} has no data/ folder")
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # rich's 80 columns would wrap the tables
    result = run_benchmark(
        demand=args.demand,
        candidates=args.candidates,
        cameras=args.cameras,
        time_limit_s=args.time_limit,
        small=args.small,
        spopt_timeout_s=args.spopt_timeout,
        spopt_memory_mb=args.spopt_memory_gb * 1024,
        borough_cameras=args.borough_cameras,
        shared=args.shared,
        seed=args.seed,
        console=console,
        baseline=args.baseline,
    )
    print_report(result, console)
    data = result.to_dict()
    write_json(args.json, data, console)
    return data


if __name__ == "__main__":
    main()
