"""CCTV coverage (maximal covering): geometry, greedy, HiGHS MILP, explanations; spopt as an oracle; Knowsley.

Small random instances (hypothesis) are checked against brute force over every subset of sites and against
PySAL spopt's MCLP (a different model builder and solver: pulp + CBC); the real borough (police.uk crimes,
Knowsley LSOAs, OS Meridian 2 roads from ../shared/data) checks greedy against the exact optimum.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from shapely.geometry import MultiPolygon, Polygon, box

import planner.coverage
from planner.coverage import (
    ANPR_1080P_IDENTIFY,
    BULLET_4K_RECOGNISE,
    CAMERA_PRESETS,
    DOME_1080P_OBSERVE,
    DORI_PX_PER_M,
    PTZ_1080P_OBSERVE,
    Budget,
    CameraClass,
    CandidateSites,
    CoverageProblem,
    Demand,
    MilpEngine,
    SiteCost,
    SiteKind,
    SitePoint,
    build_coverage,
    candidate_sites,
    covered_weight,
    crime_demand,
    explain_sites,
    greedy_order,
    site_points,
    solve_greedy,
    solve_milp,
)
from planner.data import load_boundary, load_camera_sites, load_crimes, load_road_graph_meridian, snap_points
from planner.errors import DataError

SHARED = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DATA = SHARED / "data"
POLICE = DATA / "police-uk"
LSOA = DATA / "lsoa-2001" / "england_low_soa_2001.shp"
MERIDIAN = [DATA / "os-meridian2" / f"{name}_polyline.shp" for name in ("motorway", "a_road", "b_road")]
CAMERAS = DATA / "existing-cameras"

# pulp 3.3 (used by spopt) deprecates the calls spopt makes; the oracle tests ignore exactly those warnings.
SPOPT_WARNINGS = (
    pytest.mark.filterwarnings("ignore:Constructing LpVariable:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:PULP_CBC_CMD is deprecated:DeprecationWarning"),
)
EPS = 1e-7


def test_public_api_is_pinned() -> None:
    assert set(planner.coverage.__all__) == {
        "ANPR_1080P_IDENTIFY",
        "BULLET_4K_RECOGNISE",
        "CAMERA_PRESETS",
        "DOME_1080P_OBSERVE",
        "DORI_PX_PER_M",
        "PTZ_1080P_OBSERVE",
        "Budget",
        "CameraClass",
        "CandidateSites",
        "CategoryCover",
        "CoverageProblem",
        "Demand",
        "DemandCategories",
        "Dori",
        "GreedyResult",
        "GreedyRule",
        "MilpEngine",
        "MilpResult",
        "SiteCost",
        "SiteExplanation",
        "SiteKind",
        "SitePoint",
        "build_coverage",
        "candidate_sites",
        "covered_weight",
        "crime_demand",
        "explain_sites",
        "greedy_order",
        "site_points",
        "solve_greedy",
        "solve_milp",
    }


# ------------------------------------------------------------------------------------------ camera classes


@given(
    sensor_px=st.integers(320, 8000),
    hfov=st.floats(1.0, 170.0),
    dori=st.sampled_from(sorted(DORI_PX_PER_M)),
    height=st.floats(0.0, 20.0),
)
def test_dori_range_is_where_the_image_has_the_required_density(
    sensor_px: int, hfov: float, dori: str, height: float
) -> None:
    camera = CameraClass("c", sensor_px, hfov, dori, height)  # type: ignore[arg-type]
    assert camera.density_at(camera.dori_range_m) == pytest.approx(DORI_PX_PER_M[camera.dori], rel=1e-9)
    # Nearer than the range the image is sharper than needed, farther it is not sharp enough.
    assert camera.density_at(0.9 * camera.dori_range_m) > camera.px_per_m
    assert camera.density_at(1.1 * camera.dori_range_m) < camera.px_per_m
    radius = camera.coverage_radius_m
    assert radius <= camera.dori_range_m
    assert math.hypot(radius, height) == pytest.approx(max(camera.dori_range_m, height), rel=1e-9)
    sharper = CameraClass("c", sensor_px * 2, hfov, dori, height)  # type: ignore[arg-type]
    assert sharper.dori_range_m == pytest.approx(2 * camera.dori_range_m)


def test_presets_reach_the_documented_distances() -> None:
    # 1920 / (62.5 px/m * 2 tan 45°) = 15.36 m slant; at 4 m height 14.83 m on the ground.
    assert DOME_1080P_OBSERVE.dori_range_m == pytest.approx(15.36)
    assert DOME_1080P_OBSERVE.coverage_radius_m == pytest.approx(math.sqrt(15.36**2 - 16), rel=1e-9)
    assert BULLET_4K_RECOGNISE.coverage_radius_m == pytest.approx(57.0, abs=0.5)
    assert PTZ_1080P_OBSERVE.coverage_radius_m == pytest.approx(175.4, abs=0.5)
    assert ANPR_1080P_IDENTIFY.coverage_radius_m == pytest.approx(36.0, abs=0.5)
    # The same camera needs to be 10x nearer to identify than to detect (250 vs 25 px/m).
    detect = CameraClass("d", 1920, 12.0, "detect")
    identify = CameraClass("i", 1920, 12.0, "identify")
    assert detect.dori_range_m == pytest.approx(10 * identify.dori_range_m)
    assert set(CAMERA_PRESETS.values()) == {
        DOME_1080P_OBSERVE,
        BULLET_4K_RECOGNISE,
        PTZ_1080P_OBSERVE,
        ANPR_1080P_IDENTIFY,
    }


def test_bad_camera_costs_and_budgets_are_rejected() -> None:
    with pytest.raises(DataError, match="hfov_deg"):
        CameraClass("wide", 1920, 180.0, "observe")
    with pytest.raises(DataError, match="dori"):
        CameraClass("x", 1920, 90.0, "spot")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="sensor_px"):
        CameraClass("x", 0, 90.0, "observe")
    with pytest.raises(DataError, match="pole"):
        SiteCost(camera=1.0, pole=-1.0, power=0.0)
    assert SiteCost(camera=2500, pole=3000, power=1500, anpr_per_lane=4000).of(3.0) == 19_000
    with pytest.raises(DataError, match="cameras= or money="):
        Budget()
    with pytest.raises(DataError, match="cameras"):
        Budget(cameras=-1)
    with pytest.raises(DataError, match="money"):
        Budget(money=math.inf)


# ------------------------------------------------------------------------------------------------ geometry

coordinates = st.integers(0, 40).map(lambda v: v / 4.0)
points = st.lists(st.tuples(coordinates, coordinates), min_size=0, max_size=15)


@given(
    demand=points, sites=points.filter(bool), radii=st.lists(st.floats(0.0, 6.0), min_size=15, max_size=15)
)
def test_straight_line_coverage_is_the_distance_matrix_within_each_radius(
    demand: list[tuple[float, float]], sites: list[tuple[float, float]], radii: list[float]
) -> None:
    radius = np.array(radii[: len(sites)])
    candidates = CandidateSites.from_xy(sites)
    problem = build_coverage(np.array(demand).reshape(-1, 2), np.ones(len(demand)), candidates, radius)
    expected = cdist(np.array(demand).reshape(-1, 2), np.array(sites)) <= radius[None, :]
    assert problem.coverage.dtype == bool
    assert (problem.coverage.toarray() == expected).all()
    assert problem.site_ids == tuple(f"site:{j}" for j in range(len(sites)))


@st.composite
def road_networks(draw: st.DrawFn) -> tuple[nx.MultiGraph, np.ndarray, CandidateSites, float]:
    """A random road graph (links as long as or longer than the straight line), demand and sites."""
    n_nodes = draw(st.integers(1, 9))
    xy = draw(st.lists(st.tuples(coordinates, coordinates), min_size=n_nodes, max_size=n_nodes, unique=True))
    graph = nx.MultiGraph()
    for k, (x, y) in enumerate(xy):
        graph.add_node(k, x=x, y=y)
    links = draw(
        st.lists(st.tuples(st.integers(0, n_nodes - 1), st.integers(0, n_nodes - 1), st.floats(1.0, 2.0)))
    )
    for u, v, detour in links:
        graph.add_edge(u, v, length_m=math.dist(xy[u], xy[v]) * detour)
    demand = np.array(draw(points)).reshape(-1, 2)
    on_nodes = draw(st.lists(st.integers(0, n_nodes - 1), unique=True))
    free = draw(st.lists(st.tuples(coordinates, coordinates), max_size=4))
    junction: SiteKind = "junction"
    user: SiteKind = "user"
    kinds = (junction,) * len(on_nodes) + (user,) * len(free)
    sites = CandidateSites(
        ids=tuple(f"s{j}" for j in range(len(on_nodes) + len(free))),
        x=np.array([xy[k][0] for k in on_nodes] + [p[0] for p in free]),
        y=np.array([xy[k][1] for k in on_nodes] + [p[1] for p in free]),
        kind=kinds,
        cost=np.ones(len(on_nodes) + len(free)),
        lanes=np.zeros(len(on_nodes) + len(free)),
        node=tuple(on_nodes) + (None,) * len(free),
    )
    return graph, demand, sites, draw(st.floats(0.0, 15.0))


@given(road_networks())
def test_network_coverage_is_road_distance_plus_snapping_offsets(
    case: tuple[nx.MultiGraph, np.ndarray, CandidateSites, float],
) -> None:
    graph, demand, sites, radius = case
    node_xy = np.array([(graph.nodes[k]["x"], graph.nodes[k]["y"]) for k in sorted(graph.nodes)])
    lengths = dict(nx.all_pairs_dijkstra_path_length(graph, weight="length_m"))

    def nearest(point: np.ndarray) -> tuple[int, float]:
        d = np.hypot(*(node_xy - point).T)
        assume(np.sum(np.isclose(d, d.min())) == 1)  # a tie would make "the nearest node" ambiguous
        return int(np.argmin(d)), float(d.min())

    expected = np.zeros((len(demand), len(sites)), dtype=bool)
    for j in range(len(sites)):
        if sites.node[j] is not None:
            site_node, site_offset = int(sites.node[j]), 0.0  # type: ignore[call-overload]
        else:
            site_node, site_offset = nearest(sites.xy[j])
        for i, point in enumerate(demand):
            demand_node, demand_offset = nearest(point)
            road = lengths[site_node].get(demand_node, math.inf)
            total = road + demand_offset + site_offset
            assume(not math.isclose(total, radius, rel_tol=1e-9, abs_tol=1e-9))
            expected[i, j] = total <= radius
    problem = build_coverage(demand, np.ones(len(demand)), sites, radius, graph=graph, network=True)
    assert (problem.coverage.toarray() == expected).all()


def test_geometry_arguments_are_checked() -> None:
    sites = CandidateSites.from_xy([(0.0, 0.0)])
    with pytest.raises(DataError, match="needs graph="):
        build_coverage([(0.0, 0.0)], [1.0], sites, 5.0, network=True)
    with pytest.raises(DataError, match="radius_m"):
        build_coverage([(0.0, 0.0)], [1.0], sites, -1.0)
    with pytest.raises(DataError, match="1 demand points but 2 weights"):
        build_coverage([(0.0, 0.0)], [1.0, 2.0], sites, 5.0)
    graph = nx.MultiGraph()
    graph.add_node(0, x=0.0, y=0.0)
    graph.add_node(1, x=1.0, y=0.0)
    graph.add_edge(0, 1)
    with pytest.raises(DataError, match="length_m"):
        build_coverage([(0.0, 0.0)], [1.0], sites, 5.0, graph=graph, network=True)
    with pytest.raises(DataError, match="coverage has shape"):
        CoverageProblem(np.ones(2), np.ones(1), sp.csr_matrix((3, 1), dtype=bool), np.zeros(1, bool))
    with pytest.raises(DataError, match="weights must be finite"):
        CoverageProblem(np.array([-1.0]), np.ones(1), sp.csr_matrix((1, 1), dtype=bool), np.zeros(1, bool))
    with pytest.raises(DataError, match="ids must be unique"):
        CandidateSites.from_xy([(0.0, 0.0), (1.0, 1.0)], ids=["a", "a"])


# ------------------------------------------------------------------------ solvers on small random problems


@st.composite
def problems(draw: st.DrawFn, max_n: int = 14, max_m: int = 7) -> CoverageProblem:
    """A random coverage problem with integer weights and costs (so sums are exact)."""
    n = draw(st.integers(0, max_n))
    m = draw(st.integers(1, max_m))
    cover = draw(st.lists(st.lists(st.booleans(), min_size=m, max_size=m), min_size=n, max_size=n))
    weights = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    costs = draw(st.lists(st.integers(0, 9), min_size=m, max_size=m))
    existing = draw(st.lists(st.booleans(), min_size=m, max_size=m))
    return CoverageProblem(
        weights=np.array(weights, dtype=float),
        costs=np.array(costs, dtype=float),
        coverage=sp.csr_matrix(np.array(cover, dtype=bool).reshape(n, m)),
        existing=np.array(existing, dtype=bool),
    )


budgets = st.one_of(
    st.builds(Budget, cameras=st.integers(0, 7)),
    st.builds(Budget, money=st.integers(0, 25).map(float)),
    st.builds(Budget, cameras=st.integers(0, 7), money=st.integers(0, 25).map(float)),
)


def model_value(problem: CoverageProblem, sites: Sequence[int], backup_weight: float = 0.0) -> float:
    counts = np.asarray(problem.coverage[:, list(sites)].sum(axis=1)).reshape(-1)
    return float(problem.weights @ (counts >= 1) + backup_weight * problem.weights @ (counts >= 2))


def brute_force(problem: CoverageProblem, budget: Budget, backup_weight: float = 0.0) -> float:
    """The optimum over every subset of new sites within the budget."""
    existing = [int(j) for j in np.flatnonzero(problem.existing)]
    new = [int(j) for j in np.flatnonzero(~problem.existing)]
    best = -math.inf
    for size in range(len(new) + 1):
        if budget.cameras is not None and size > budget.cameras:
            break
        for subset in itertools.combinations(new, size):
            if budget.money is not None and problem.costs[list(subset)].sum() > budget.money + EPS:
                continue
            best = max(best, model_value(problem, existing + list(subset), backup_weight))
    return best


def assert_within_budget(problem: CoverageProblem, picks: Sequence[int], budget: Budget) -> None:
    assert not problem.existing[list(picks)].any()
    if budget.cameras is not None:
        assert len(picks) <= budget.cameras
    if budget.money is not None:
        assert problem.costs[list(picks)].sum() <= budget.money + EPS


ENGINES: tuple[MilpEngine, ...] = ("highspy", "scipy")


@settings(max_examples=150, deadline=None)
@given(problem=problems(), budget=budgets, engine=st.sampled_from(ENGINES), warm_start=st.booleans())
def test_greedy_objective_le_milp_optimum_le_greedy_bound(
    problem: CoverageProblem, budget: Budget, engine: MilpEngine, warm_start: bool
) -> None:
    optimum = brute_force(problem, budget)
    greedy = solve_greedy(problem, budget)
    exact = solve_milp(
        problem, budget, time_limit_s=30, mip_rel_gap=0.0, engine=engine, warm_start=warm_start
    )

    assert exact.is_optimal
    assert exact.status in {"Optimal", "Not run"}
    if exact.status == "Optimal":
        assert exact.engine == engine
        # The warm start is a feasible solution: never better than the optimum; HiGHS's answer is kept
        # unless the start is at least as good, and then the start is said to be the source.
        assert (exact.start_objective is not None) == warm_start
        if exact.start_objective is not None:
            assert greedy.objective - EPS <= exact.start_objective <= optimum + EPS
            assert (exact.found_by == "local search") == (exact.start_objective >= optimum - EPS)
        else:
            assert exact.found_by == "HiGHS"
    assert exact.objective == pytest.approx(optimum, abs=EPS)
    assert exact.dual_bound is not None
    assert exact.dual_bound == pytest.approx(optimum, abs=EPS)  # proved: bound and solution meet
    assert greedy.objective <= optimum + EPS
    assert optimum <= greedy.bound + EPS
    assert greedy.bound == min(greedy.submodular_bound, greedy.lagrangian_bound)
    assert greedy.gap == pytest.approx(
        (greedy.bound - greedy.objective) / greedy.bound if greedy.bound else 0
    )
    for result in (greedy, exact):
        existing = tuple(int(j) for j in np.flatnonzero(problem.existing))
        assert result.existing == existing  # existing cameras are always selected
        assert result.sites[: len(existing)] == existing
        assert_within_budget(problem, result.picks, budget)
        assert model_value(problem, result.sites) == pytest.approx(result.objective)
    assert greedy.objective == pytest.approx(greedy.existing_objective + sum(greedy.gains))
    assert all(gain > 0 for gain in greedy.gains)
    # The exact solver keeps no idle site: each pick loses weight when removed.
    for j in exact.picks:
        assert model_value(problem, [k for k in exact.sites if k != j]) < optimum


# Sites A = {r0, r1}, B = {r2, r3}, C = {r0, r2, r4}; weights 1, 1, 1, 1, 0.5: greedy takes C then A (3.5),
# the optimum is A + B (4), one swap away.
GREEDY_TRAP = CoverageProblem(
    np.array([1, 1, 1, 1, 0.5]),
    np.array([2.0, 2.0, 1.0]),
    sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 0, 1]], dtype=bool)),
    np.zeros(3, bool),
)


@settings(max_examples=150, deadline=None)
@given(problem=problems(max_n=16, max_m=8), budget=budgets)
@example(problem=GREEDY_TRAP, budget=Budget(cameras=2))
@example(problem=GREEDY_TRAP, budget=Budget(cameras=2, money=4.0))
def test_swaps_reach_a_one_swap_local_optimum(problem: CoverageProblem, budget: Budget) -> None:
    plain = solve_greedy(problem, budget)
    swapped = solve_greedy(problem, budget, swaps=True)
    optimum = brute_force(problem, budget)

    assert swapped.greedy_objective == plain.objective == plain.greedy_objective
    assert plain.swap_moves == 0
    assert plain.objective - EPS <= swapped.objective <= optimum + EPS <= swapped.bound + 2 * EPS
    assert swapped.bound == pytest.approx(plain.bound)
    assert swapped.gap == pytest.approx(
        (swapped.bound - swapped.objective) / swapped.bound if swapped.bound else 0
    )
    if swapped.objective > plain.objective + EPS:
        assert swapped.swap_moves > 0
        assert list(swapped.picks) == list(greedy_order(problem, swapped.sites)[len(swapped.existing) :])
    assert_within_budget(problem, swapped.picks, budget)
    assert model_value(problem, swapped.sites) == pytest.approx(swapped.objective)
    assert swapped.objective == pytest.approx(swapped.existing_objective + sum(swapped.gains))
    assert swapped.cost == pytest.approx(problem.costs[list(swapped.picks)].sum())
    # No single move gains: take one pick out (or none, if the budget has room) and put one new site in.
    picks = list(swapped.picks)
    outs: list[int | None] = [*picks, None]
    for out in outs:
        kept = [j for j in picks if j != out]
        for k in np.flatnonzero(~problem.existing):
            trial = [*kept, int(k)]
            if int(k) in picks or (
                out is None and budget.cameras is not None and len(trial) > budget.cameras
            ):
                continue
            if budget.money is not None and problem.costs[trial].sum() > budget.money + EPS:
                continue
            assert model_value(problem, [*swapped.existing, *trial]) <= swapped.objective + EPS


def naive_greedy(problem: CoverageProblem, k: int) -> list[int]:
    """Textbook greedy: recompute every gain each round, largest gain first, ties to the lower index."""
    covered = np.zeros(problem.n_demand, dtype=bool)
    for j in np.flatnonzero(problem.existing):
        covered |= problem.coverage[:, j].toarray().reshape(-1)
    picks: list[int] = []
    while len(picks) < k:
        gains = [
            -1.0
            if problem.existing[j] or j in picks
            else float(problem.weights[~covered & column(problem, j)].sum())
            for j in range(problem.n_sites)
        ]
        best = int(np.argmax(gains))  # the first maximum: the lowest index
        if gains[best] <= 0:
            break
        picks.append(best)
        covered |= column(problem, best)
    return picks


def column(problem: CoverageProblem, j: int) -> np.ndarray:
    return np.asarray(problem.coverage[:, j].toarray()).reshape(-1)


@settings(max_examples=150, deadline=None)
@given(problem=problems(max_n=25, max_m=10), k=st.integers(0, 10))
def test_lazy_greedy_picks_what_plain_greedy_picks(problem: CoverageProblem, k: int) -> None:
    result = solve_greedy(problem, Budget(cameras=k))
    assert list(result.picks) == naive_greedy(problem, k)
    assert result.rule == "gain"
    assert result.other_objective is None


# Gain per cost takes the cheap site (2 for 1), then cannot afford the other (15 for 10): cost-blind wins.
CHEAP_OR_BIG = CoverageProblem(
    np.array([2.0, 15.0]), np.array([1.0, 10.0]), sp.identity(2, format="csr"), np.zeros(2, bool)
)


@settings(max_examples=100, deadline=None)
@given(problem=problems(), money=st.integers(0, 25).map(float))
@example(problem=CHEAP_OR_BIG, money=10.0)
def test_money_greedy_keeps_the_better_of_two_rules(problem: CoverageProblem, money: float) -> None:
    result = solve_greedy(problem, Budget(money=money))
    assert result.other_objective is not None
    assert result.objective >= result.other_objective
    assert result.cost == pytest.approx(problem.costs[list(result.picks)].sum())
    # The cost-blind greedy's first pick is the best affordable single site, so the better-of rule is at
    # least as good as any one site (the half of the (1 - 1/e)/2 guarantee that needs it).
    base = covered_weight(problem, result.existing)
    for j in np.flatnonzero(~problem.existing & (problem.costs <= money)):
        assert result.objective >= covered_weight(problem, [*result.existing, int(j)]) - EPS
    assert result.objective >= base


@settings(max_examples=100, deadline=None)
@given(problem=problems(), budget=budgets, weight=st.sampled_from([0.25, 0.5, 1.0]))
def test_backup_coverage_milp_matches_brute_force(
    problem: CoverageProblem, budget: Budget, weight: float
) -> None:
    result = solve_milp(problem, budget, time_limit_s=30, mip_rel_gap=0.0, backup=True, backup_weight=weight)
    assert result.is_optimal
    optimum = brute_force(problem, budget, weight)
    assert result.model_objective == pytest.approx(optimum, abs=EPS)
    assert result.dual_bound == pytest.approx(optimum, abs=EPS)
    assert result.objective == pytest.approx(model_value(problem, result.sites))
    counts = np.asarray(problem.coverage[:, list(result.sites)].sum(axis=1)).reshape(-1)
    assert result.backup_objective == pytest.approx(float(problem.weights[counts >= 2].sum()))
    assert result.objective is not None
    assert result.backup_objective is not None
    assert result.model_objective == pytest.approx(result.objective + weight * result.backup_objective)
    assert_within_budget(problem, result.picks, budget)


@settings(max_examples=150, deadline=None)
@given(problem=problems(), data=st.data())
def test_explanations_add_up(problem: CoverageProblem, data: st.DataObject) -> None:
    sites = data.draw(st.lists(st.integers(0, problem.n_sites - 1), unique=True))
    explained = explain_sites(problem, sites)
    total = covered_weight(problem, sites)
    assert [e.site for e in explained] == sites
    assert [e.rank for e in explained] == list(range(len(sites)))
    assert sum(e.marginal_gain for e in explained) == pytest.approx(total)
    for e in explained:
        assert e.removal_loss == pytest.approx(e.unique_weight)
        assert e.covered_weight == pytest.approx(e.unique_weight + e.shared_weight)
        assert 0 <= e.marginal_gain <= e.covered_weight + EPS
        assert e.unique_weight <= e.marginal_gain + EPS  # what only it covers was new when it was picked
        assert e.demand_points == problem.coverage[:, e.site].nnz
    # Greedy order: existing first, then gains never increase (submodularity makes greedy gains shrink).
    ordered = greedy_order(problem, sites)
    assert sorted(ordered) == sorted(sites)
    gains = [e.marginal_gain for e in explain_sites(problem, ordered) if not e.existing]
    assert all(a >= b - EPS for a, b in itertools.pairwise(gains))
    assert [problem.existing[j] for j in ordered] == sorted(
        (problem.existing[j] for j in sites), reverse=True
    )


def test_results_never_change_run_to_run() -> None:
    rng = np.random.default_rng(7)
    demand = rng.uniform(0, 2000, (800, 2))
    sites = CandidateSites.from_xy(rng.uniform(0, 2000, (150, 2)), cost=rng.integers(1, 5, 150).astype(float))
    problem = build_coverage(demand, rng.uniform(0, 3, 800), sites, 150.0)
    for budget in (Budget(cameras=12), Budget(money=30.0)):
        assert solve_greedy(problem, budget) == solve_greedy(problem, budget)
        assert solve_greedy(problem, budget, swaps=True) == solve_greedy(problem, budget, swaps=True)
        for engine in ENGINES:
            first = solve_milp(problem, budget, time_limit_s=30, engine=engine)
            assert first == solve_milp(problem, budget, time_limit_s=30, engine=engine)
            assert first.is_optimal
            assert first.start_objective is not None


# ----------------------------------------------------------------------------------------- the spopt oracle


def spopt_optimum(
    dist: np.ndarray, weights: np.ndarray, radius: float, p: int, existing: np.ndarray
) -> float:
    """Optimum of PySAL spopt's MCLP (its own model, pulp + CBC): exactly ``p`` sites incl. existing."""
    import pulp
    from spopt.locate import MCLP

    model = MCLP.from_cost_matrix(
        dist, weights, service_radius=radius, p_facilities=p, predefined_facilities_arr=existing.astype(int)
    )
    highs = pulp.HiGHS(msg=False) if hasattr(pulp, "HiGHS") else None
    model.solve(highs if highs is not None and highs.available() else pulp.PULP_CBC_CMD(msg=False))
    return float(pulp.value(model.problem.objective) or 0.0)


@SPOPT_WARNINGS[0]
@SPOPT_WARNINGS[1]
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    demand=st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=30),
    sites=st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=10),
    weights=st.lists(st.integers(1, 9), min_size=30, max_size=30),
    existing=st.lists(st.booleans(), min_size=10, max_size=10),
    radius=st.sampled_from([1.1, 1.6, 2.3, 3.1]),
    k=st.integers(0, 5),
)
def test_milp_optimum_equals_spopt_mclp(
    demand: list[tuple[float, float]],
    sites: list[tuple[float, float]],
    weights: list[int],
    existing: list[bool],
    radius: float,
    k: int,
) -> None:
    d, s = np.array(demand), np.array(sites)
    w = np.array(weights[: len(demand)], dtype=float)
    is_existing = np.array(existing[: len(sites)])
    dist = cdist(d, s)
    assume(np.abs(dist - radius).min() > 1e-6)  # no point on a circle's edge (rounding would decide)
    kinds: tuple[SiteKind, ...] = tuple("existing" if e else "user" for e in is_existing)
    problem = build_coverage(d, w, CandidateSites.from_xy(s, kind=kinds), radius)
    ours = solve_milp(problem, Budget(cameras=k), time_limit_s=30, mip_rel_gap=0.0)
    # spopt fixes the total number of sites (existing ones included); more sites never cover less.
    p = min(int(is_existing.sum()) + k, len(sites))
    assert ours.objective == pytest.approx(spopt_optimum(dist, w, radius, p, is_existing), abs=1e-6)
    assert ours.objective is not None
    assert solve_greedy(problem, Budget(cameras=k)).bound >= ours.objective - EPS


@pytest.mark.parametrize(
    ("engine", "warm_start"), [("scipy", False), ("scipy", True), ("highspy", False), ("highspy", True)]
)
def test_time_limited_solve_is_not_called_optimal(engine: MilpEngine, warm_start: bool) -> None:
    """A 10k x 3k clustered instance that HiGHS needs far longer than a second for (about 30 s here)."""
    rng = np.random.default_rng(11)
    centres = rng.uniform(0, 10_000, (60, 2))
    clusters = [rng.normal(c, rng.uniform(100, 500), (130, 2)) for c in centres]
    demand = np.vstack([*clusters, rng.uniform(0, 10_000, (2000, 2))])
    near = demand[rng.choice(len(demand), 1500, replace=False)] + rng.normal(0, 50, (1500, 2))
    sites = CandidateSites.from_xy(np.vstack([rng.uniform(0, 10_000, (1500, 2)), near]))
    problem = build_coverage(demand, rng.integers(1, 6, len(demand)).astype(float), sites, 190.0)
    # Until there is a solution and a bound (HiGHS's first heuristics and its root LP take < 1 s).
    for limit in (0.5, 1.0, 2.0, 4.0):
        result = solve_milp(
            problem, Budget(cameras=150), time_limit_s=limit, engine=engine, warm_start=warm_start
        )
        if result.has_solution and result.dual_bound is not None:
            break
    assert result.has_solution
    assert result.engine == engine
    assert result.status == "Time limit reached"
    assert "Time limit reached" in result.message
    assert not result.is_optimal
    assert result.summary.startswith("time limit reached with a feasible solution, gap ")
    assert result.objective is not None
    assert result.dual_bound is not None
    assert result.gap is not None
    assert result.objective <= result.dual_bound
    assert result.gap == pytest.approx((result.dual_bound - result.objective) / result.dual_bound)
    assert result.gap > 1e-3  # stopped short of the requested gap, whoever found the solution
    assert_within_budget(problem, result.picks, Budget(cameras=150))
    if warm_start:
        # The start (greedy improved by swaps and merging) is known before HiGHS runs, so there is always a
        # solution; it is reported when HiGHS found nothing better, and said to be the local search's.
        assert result.start_objective is not None
        assert result.objective >= result.start_objective - EPS
        assert (result.found_by == "local search") == (result.objective <= result.start_objective + EPS)
        assert result.start_objective >= solve_greedy(problem, Budget(cameras=150)).objective
    else:
        assert result.start_objective is None
        assert result.found_by == "HiGHS"
        assert result.mip_gap is not None
        assert result.mip_gap > 1e-3  # HiGHS stopped short of the requested gap
    with pytest.raises(DataError, match="time_limit_s"):
        solve_milp(problem, Budget(cameras=1), time_limit_s=0)
    with pytest.raises(DataError, match="mip_rel_gap"):
        solve_milp(problem, Budget(cameras=1), time_limit_s=1, mip_rel_gap=1.5)
    with pytest.raises(DataError, match="engine"):
        solve_milp(problem, Budget(cameras=1), time_limit_s=1, engine="cplex")  # type: ignore[arg-type]


def test_posterior_bounds_on_a_problem_greedy_gets_wrong() -> None:
    """Sites A = {r0, r1}, B = {r2, r3}, C = {r0, r2, r4}; weights 1, 1, 1, 1, 0.5.

    Greedy takes C (2.5) then A or B (+1) = 3.5; the optimum is A + B = 4. Nemhauser's bound at the empty
    prefix is the two largest gains, 2.5 + 2 = 4.5; after C it is 2.5 + 1 + 1 = 4.5; after C, A it is 3.5 + 1
    = 4.5. The linear relaxation's optimum is 4 (A + B), and the Lagrangian bound reaches it.
    """
    problem = GREEDY_TRAP
    greedy = solve_greedy(problem, Budget(cameras=2))
    assert greedy.picks == (2, 0)
    assert greedy.gains == (2.5, 1.0)
    assert greedy.objective == 3.5
    assert greedy.submodular_bound == 4.5
    assert greedy.lagrangian_bound == pytest.approx(4.0, abs=1e-6)
    assert greedy.bound == greedy.lagrangian_bound
    assert greedy.gap == pytest.approx(0.5 / 4.0, abs=1e-6)
    assert solve_greedy(problem, Budget(cameras=2), lagrangian_steps=0).bound == 4.5
    # One swap (C out, B in) reaches the optimum, within the same bound.
    swapped = solve_greedy(problem, Budget(cameras=2), swaps=True)
    assert (swapped.picks, swapped.gains, swapped.objective) == ((0, 1), (2.0, 2.0), 4.0)
    assert (swapped.greedy_objective, swapped.swap_moves, swapped.bound) == (3.5, 1, greedy.bound)
    assert swapped.gap == pytest.approx(0.0, abs=1e-6)
    exact = solve_milp(problem, Budget(cameras=2), time_limit_s=10, mip_rel_gap=0.0)
    assert exact.sites == (0, 1)
    assert exact.objective == exact.dual_bound == 4.0
    # Money 3: C (cost 1) then A (cost 2, the lower index of the tie with B) fit: 3.5, which is optimal
    # (A + B would cost 4). Fractional knapsack bounds (over the whole money, as the optimum may drop every
    # pick): empty prefix C + A = 4.5; after C, A whole and half of B: 2.5 + 1 + 0.5 = 4.0; after C and A,
    # B: 3.5 + 1 = 4.5. The least is 4.0.
    money = solve_greedy(problem, Budget(money=3.0))
    assert money.picks == (2, 0)
    assert money.rule == "gain_per_cost"
    assert money.objective == money.other_objective == 3.5
    assert money.submodular_bound == 4.0
    assert 3.5 <= money.bound <= 4.0
    assert solve_milp(problem, Budget(money=3.0), time_limit_s=10, mip_rel_gap=0.0).objective == 3.5


def test_dominated_and_idle_sites_leave_the_model() -> None:
    # Site 1 covers a subset of site 0's points; site 2 covers nothing; site 3 is existing.
    cover = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 1]], dtype=bool)
    problem = CoverageProblem(
        np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4), sp.csr_matrix(cover), np.eye(4)[3] > 0
    )
    result = solve_milp(problem, Budget(cameras=2), time_limit_s=10, mip_rel_gap=0.0)
    assert result.dominated_sites == 1
    assert result.model_binaries == 1
    # Rows 2 and 3 are covered by the existing site; rows 0 and 1, once site 1 is gone, both only by site 0.
    assert result.model_rows == 1
    assert result.sites == (3, 0)
    assert result.objective == 10.0


# ------------------------------------------------------------------------------------------- real Knowsley


@pytest.fixture(scope="module")
def knowsley() -> Polygon | MultiPolygon:
    if not (POLICE.is_dir() and LSOA.is_file() and all(path.is_file() for path in MERIDIAN)):
        pytest.fail(f"shared data not found in {DATA}; set CORDON_SHARED_DIR to the shared folder")
    return load_boundary(lsoa_shapefile=LSOA, name_prefix="Knowsley")


@pytest.fixture(scope="module")
def roads(knowsley: Polygon | MultiPolygon) -> nx.MultiGraph:
    return load_road_graph_meridian(MERIDIAN, clip=knowsley, buffer_m=5000)


@pytest.fixture(scope="module")
def knowsley_crimes(knowsley: Polygon | MultiPolygon) -> gpd.GeoDataFrame:
    crimes = load_crimes(sorted(POLICE.glob("police-uk-*-merseyside-street.csv")))
    shapely.prepare(knowsley)
    return crimes[shapely.covers(knowsley, crimes.geometry.to_numpy())].reset_index(drop=True)


@pytest.fixture(scope="module")
def demand(knowsley_crimes: gpd.GeoDataFrame) -> Demand:
    return crime_demand(knowsley_crimes)


def test_crime_demand_is_the_snap_points_with_types(
    knowsley_crimes: gpd.GeoDataFrame, demand: Demand
) -> None:
    points = snap_points(knowsley_crimes)
    assert len(knowsley_crimes) == 11_571  # README: Knowsley rows over the 9 months
    assert len(demand.weights) == len(points) == 1_721
    assert np.array_equal(demand.xy, points[["x", "y"]].to_numpy())
    assert np.array_equal(demand.weights, points["weight"].to_numpy())
    cats = demand.categories
    assert len(cats.names) == 14
    assert cats.counts.sum() == len(knowsley_crimes)
    assert np.array_equal(cats.counts.sum(axis=1), points["n_crimes"].to_numpy())
    vehicle = cats.names.index("Vehicle crime")
    assert np.array_equal(cats.counts[:, vehicle], points["n_vehicle_crime"].to_numpy())
    assert np.allclose(cats.weights.sum(axis=1), demand.weights)


def test_candidate_sites_on_knowsley_roads(roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> None:
    shapely.prepare(knowsley)
    inside = {n for n, d in roads.nodes(data=True) if knowsley.covers(shapely.Point(d["x"], d["y"]))}
    junctions = candidate_sites(roads, knowsley)
    expected = sorted(n for n in inside if roads.degree(n) >= 3)
    assert len(expected) == 38  # Meridian 2 motorway/A/B junctions inside the borough
    assert junctions.ids == tuple(f"node:{n}" for n in expected)
    assert set(junctions.kind) == {"junction"}
    assert (junctions.cost == 1.0).all()

    cost = SiteCost(camera=2_500, pole=3_000, power=1_500, anpr_per_lane=4_000)
    everything = candidate_sites(roads, knowsley, min_degree=2, dead_ends=True, site_cost=cost)
    assert len(everything) == len(inside)
    for j, node in enumerate(everything.node):
        entering = sum(lanes / 2 for _, _, lanes in roads.edges(node, data="lanes"))
        assert everything.lanes[j] == entering
        assert everything.cost[j] == cost.of(entering)
        assert everything.kind[j] == {1: "dead_end", 2: "road"}.get(roads.degree(node), "junction")


def test_camera_site_files_load(
    roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon, tmp_path: Path
) -> None:
    trafford = load_camera_sites(CAMERAS / "trafford_cctv_cameras.csv")
    assert len(trafford) == 163
    assert trafford.crs.to_epsg() == 27700
    assert (trafford["rows"] == 1).all()
    # Trafford (Greater Manchester) in British National Grid metres.
    assert trafford["x"].between(370_000, 384_000).all()
    assert trafford["y"].between(386_000, 398_000).all()
    again = load_camera_sites(CAMERAS / "trafford_cctv_cameras.geojson")
    assert list(again["site_id"]) == list(trafford["site_id"])
    assert np.allclose(again[["x", "y"]].to_numpy(), trafford[["x", "y"]].to_numpy(), atol=0.01)

    banes = load_camera_sites(CAMERAS / "banes_2017_anpr_survey_sites.csv")
    assert len(banes) == 39  # 67 rows = 39 locations x direction of travel
    assert banes["rows"].sum() == 67
    assert banes["site_id"].is_unique

    # Existing cameras are kept (free) even outside the boundary; here they are 40 km away from Knowsley.
    existing = site_points(trafford)
    sites = candidate_sites(roads, knowsley, existing=existing)
    assert sites.ids[:163] == tuple(f"existing:{p.site_id}" for p in existing)
    assert sites.existing.sum() == 163
    assert (sites.cost[sites.existing] == 0).all()

    bad = tmp_path / "bad.csv"
    bad.write_text("camera_id,where\n1,here\n", encoding="utf-8")
    with pytest.raises(DataError, match="no coordinate columns"):
        load_camera_sites(bad)
    bad.write_text("camera_id,x,y\n1,350000,390000\n1,351000,390000\n2,,390000\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row\(s\) \[4\] have no usable coordinates"):
        load_camera_sites(bad)
    bad.write_text("camera_id,x,y\n1,350000,390000\n1,351000,390000\n", encoding="utf-8")
    with pytest.raises(DataError, match="id '1' is used at 2 positions"):
        load_camera_sites(bad)
    user = pd.DataFrame({"site_id": ["lamp-7"], "x": [345_000.0], "y": [392_000.0], "lanes": [2.0]})
    with_user = candidate_sites(roads, box(0, 0, 1, 1), user_sites=site_points(user))
    assert with_user.ids == ("user:lamp-7",)
    assert with_user.kind == ("user",)


@pytest.mark.parametrize("network", [False, True], ids=["straight-line", "along-roads"])
@pytest.mark.parametrize("budget", [Budget(cameras=20), Budget(money=150_000.0)], ids=["20-cameras", "money"])
def test_knowsley_greedy_is_within_its_bound_of_the_optimum(
    roads: nx.MultiGraph,
    knowsley: Polygon | MultiPolygon,
    demand: Demand,
    network: bool,
    budget: Budget,
) -> None:
    cost = SiteCost(camera=2_500, pole=3_000, power=1_500, anpr_per_lane=1_000)
    sites = candidate_sites(roads, knowsley, min_degree=2, dead_ends=True, site_cost=cost)
    problem = build_coverage(
        demand.xy,
        demand.weights,
        sites,
        PTZ_1080P_OBSERVE.coverage_radius_m,
        graph=roads,
        network=network,
        categories=demand.categories,
    )
    greedy = solve_greedy(problem, budget)
    exact = solve_milp(problem, budget, time_limit_s=60)

    assert exact.is_optimal
    assert exact.status == "Optimal"
    assert exact.objective is not None
    assert exact.dual_bound is not None
    assert greedy.objective <= exact.dual_bound + EPS  # greedy <= OPT <= HiGHS's bound
    assert exact.objective <= greedy.bound + EPS  # HiGHS's solution <= OPT <= greedy's bound
    assert exact.objective >= greedy.objective * (1 - 1e-3) - EPS  # within HiGHS's requested gap of OPT
    assert greedy.objective > 0.1 * problem.weights.sum()  # a real plan, not an empty one
    for result in (greedy, exact):
        assert_within_budget(problem, result.picks, budget)
    # Identical run to run.
    assert solve_greedy(problem, budget) == greedy
    assert solve_milp(problem, budget, time_limit_s=60) == exact

    explained = explain_sites(problem, exact.sites)
    assert sum(e.marginal_gain for e in explained) == pytest.approx(exact.objective)
    for e in explained:
        assert e.removal_loss == pytest.approx(e.unique_weight)
        assert e.removal_loss > 0  # no idle camera
        assert sum(c.weight for c in e.by_category) == pytest.approx(e.covered_weight)
        assert sum(c.crimes for c in e.by_category) == demand.categories.counts[problem.rows_of(e.site)].sum()
        assert e.site_id.startswith("node:")


def test_knowsley_existing_cameras_stay_and_the_plan_builds_on_them(
    roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon, demand: Demand
) -> None:
    radius = PTZ_1080P_OBSERVE.coverage_radius_m
    plain = candidate_sites(roads, knowsley, min_degree=2, dead_ends=True)
    problem = build_coverage(demand.xy, demand.weights, plain, radius)
    first = solve_milp(problem, Budget(cameras=5), time_limit_s=60)
    # Last year's five cameras, at the sites that plan chose, are now existing cameras (off the road nodes).
    installed = [
        SitePoint(f"cam{r}", float(plain.x[j]) + 1.0, float(plain.y[j])) for r, j in enumerate(first.picks)
    ]
    sites = candidate_sites(roads, knowsley, existing=installed, min_degree=2, dead_ends=True)
    with_existing = build_coverage(demand.xy, demand.weights, sites, radius)
    greedy = solve_greedy(with_existing, Budget(cameras=10))
    exact = solve_milp(with_existing, Budget(cameras=10), time_limit_s=60)
    assert exact.existing == greedy.existing == (0, 1, 2, 3, 4)
    assert greedy.existing_objective == pytest.approx(covered_weight(with_existing, range(5)))
    assert exact.objective is not None
    assert greedy.objective <= exact.objective + EPS <= greedy.bound + 2 * EPS
    # Fifteen cameras, five of them fixed, cover no more than the best fifteen chosen freely.
    free = solve_milp(problem, Budget(cameras=15), time_limit_s=60)
    assert free.dual_bound is not None
    assert exact.objective is not None
    assert exact.objective <= free.dual_bound + EPS
    assert all(e.existing for e in explain_sites(with_existing, exact.sites)[:5])


def test_solving_with_highspy_prints_nothing() -> None:
    """HiGHS's banner (printed from C++, once a process) must not reach stdout, e.g. a CLI's JSON."""
    script = (
        "import numpy as np\n"
        "from planner.coverage import Budget, CandidateSites, build_coverage, solve_milp\n"
        "sites = CandidateSites.from_xy(np.array([[0.0, 0.0], [100.0, 0.0]]))\n"
        "problem = build_coverage(np.array([[0.0, 1.0], [100.0, 1.0]]), np.ones(2), sites, 10.0)\n"
        "result = solve_milp(problem, Budget(cameras=1), time_limit_s=10, engine='highspy')\n"
        "print('objective', result.objective)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout == "objective 1.0\n"
