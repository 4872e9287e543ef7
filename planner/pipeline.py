"""A whole planning run: data -> CCTV coverage (greedy + exact) and ANPR cordon -> one ranked list -> files.

This is the adapter that ``cordon plan`` and the API's plan jobs call; the models it strings together are the
pure cores in :mod:`planner.coverage`, :mod:`planner.cordon` and :mod:`planner.backtest`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import MultiPolygon, Point, Polygon

from planner.backtest import Backtest, NotEnoughMonths, backtest
from planner.cordon import CordonPlan, plan_cordon, plan_cordon_budget
from planner.coverage import (
    CAMERA_PRESETS,
    Budget,
    CandidateSites,
    CoverageProblem,
    SiteCost,
    build_coverage,
    candidate_sites,
    crime_demand,
    explain_sites,
    site_points,
    solve_greedy,
    solve_milp,
)
from planner.data import (
    load_boundary,
    load_camera_sites,
    load_crimes,
    load_road_graph_meridian,
    load_road_graph_osm,
)
from planner.errors import DataError
from planner.report import ATTRIBUTIONS, road_lines, write_map_html, write_sites_csv, write_sites_geojson
from planner.settings import PlannerSettings

__all__ = ["Progress", "RankedSite", "rank_sites", "run_plan"]

Progress = Callable[[float, str], None]
"""Called with (fraction done 0..1, what is happening)."""


@dataclass(frozen=True, slots=True)
class RankedSite:
    """One entry of the combined ranking.

    Attributes
    ----------
    rank
        1 = first to build.
    site_id, kind
        ``kind`` is ``cctv`` (a new coverage site), ``existing`` (kept camera) or ``anpr`` (a cordon link).
    x, y
        EPSG:27700 metres.
    score
        ``cctv_weight * coverage_share + (1 - cctv_weight) * flow_share``.
    coverage_share, flow_share
        Share of the coverable crime weight this site adds (its marginal gain in pick order) and share of the
        cordon's captured flow this link captures.
    explanation
        Plain-language reason, shown in the map and CSV.
    details
        Further components (crimes covered by type, unique vs shared, loss if removed, routes closed).
    """

    rank: int
    site_id: str
    kind: str
    x: float
    y: float
    score: float
    coverage_share: float
    flow_share: float
    explanation: str
    details: dict[str, Any]


def rank_sites(
    problem: CoverageProblem,
    sites: CandidateSites,
    selected: Sequence[int],
    cordon: CordonPlan | None,
    *,
    cctv_weight: float,
) -> list[RankedSite]:
    """One ordered list of CCTV sites and ANPR links with their score components (pure)."""
    total = problem.coverable_weight or 1.0
    entries: list[RankedSite] = []
    for item in explain_sites(problem, selected):
        share = item.marginal_gain / total
        by_type = {c.category: round(c.weight, 3) for c in item.by_category if c.weight > 0}
        top = ", ".join(f"{name} {w:g}" for name, w in sorted(by_type.items(), key=lambda kv: -kv[1])[:3])
        entries.append(
            RankedSite(
                rank=0,
                site_id=item.site_id,
                kind="existing" if item.existing else "cctv",
                x=float(sites.x[item.site]),
                y=float(sites.y[item.site]),
                score=cctv_weight * share,
                coverage_share=share,
                flow_share=0.0,
                explanation=(
                    f"{'kept camera' if item.existing else 'CCTV'}: adds {item.marginal_gain:.1f} weighted "
                    f"crimes ({share:.1%}); {item.unique_weight:.1f} seen by no other chosen site; "
                    f"top types: {top or 'none'}"
                ),
                details={
                    "weight_by_type": by_type,
                    "crimes_by_type": {c.category: c.crimes for c in item.by_category if c.crimes},
                    "demand_points": item.demand_points,
                    "covered_weight": round(item.covered_weight, 3),
                    "unique_weight": round(item.unique_weight, 3),
                    "shared_weight": round(item.shared_weight, 3),
                    "marginal_gain": round(item.marginal_gain, 3),
                    "loss_if_removed": round(item.removal_loss, 3),
                },
            )
        )
    if cordon is not None:
        flow_total = cordon.captured_flow or 1.0
        for chosen in cordon.links:
            share = chosen.flow / flow_total
            link = chosen.link
            entries.append(
                RankedSite(
                    rank=0,
                    site_id=f"anpr:{link.u}-{link.v}-{link.key}",
                    kind="anpr",
                    x=link.x,
                    y=link.y,
                    score=(1 - cctv_weight) * share,
                    coverage_share=0.0,
                    flow_share=share,
                    explanation=(
                        f"ANPR on {link.label}: {chosen.cost:g} reader-lanes, captures {share:.1%} of the "
                        f"cordon's flow, closes {', '.join(chosen.routes) or 'its own crossing'}"
                    ),
                    details={"routes": list(chosen.routes), "lanes": chosen.cost, "flow": chosen.flow},
                )
            )
    entries.sort(key=lambda e: (-e.score, e.kind, e.site_id))
    return [dataclasses.replace(e, rank=i + 1) for i, e in enumerate(entries)]


def _frame(ranked: Sequence[RankedSite]) -> gpd.GeoDataFrame:
    rows = [
        {
            "rank": r.rank,
            "site_id": r.site_id,
            "kind": r.kind,
            "score": round(r.score, 6),
            "coverage_share": round(r.coverage_share, 6),
            "flow_share": round(r.flow_share, 6),
            "explanation": r.explanation,
            "details": json.dumps(r.details, sort_keys=True),
        }
        for r in ranked
    ]
    geometry = [Point(r.x, r.y) for r in ranked]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometry, crs="EPSG:27700")


def run_plan(settings: PlannerSettings, *, out_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole plan and write ``sites.geojson``, ``sites.csv``, ``map.html`` and ``summary.json``.

    Returns
    -------
    dict
        The summary also written to ``summary.json``: counts, objectives, greedy bound and gap, HiGHS status
        and gap, cordon size and certificate, saving against one camera per crossing road, back-test.

    Raises
    ------
    DataError
        Data missing or invalid (the message names the file and field).
    """
    report = progress or (lambda _f, _m: None)
    started = time.monotonic()
    data = settings.data_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    report(0.02, "loading the boundary")
    if settings.boundary_file is not None:
        boundary: Polygon | MultiPolygon = load_boundary(polygon_file=settings.boundary_file)
    else:
        boundary = load_boundary(
            lsoa_shapefile=data / settings.lsoa_file, name_prefix=settings.boundary_prefix
        )
    report(0.08, "loading crimes")
    crime_paths = sorted(data.glob(settings.crime_files))
    if not crime_paths:
        raise DataError(f"crime_files: no file matches {settings.crime_files!r} in {data}")
    all_crimes = load_crimes(crime_paths)
    crimes = all_crimes[all_crimes.within(boundary)]
    report(0.2, "loading roads")
    if settings.osm_file is not None:
        graph = load_road_graph_osm(settings.osm_file)
    else:
        graph = load_road_graph_meridian([data / f for f in settings.meridian_files], clip=boundary)

    report(0.35, "candidate sites and coverage")
    existing = (
        site_points(load_camera_sites(settings.existing_cameras)) if settings.existing_cameras else None
    )
    user_sites = site_points(load_camera_sites(settings.user_sites)) if settings.user_sites else None
    sites = candidate_sites(
        graph,
        boundary,
        existing=existing,
        user_sites=user_sites,
        min_degree=settings.candidate_min_degree,
        site_cost=SiteCost(camera=settings.camera_cost, pole=settings.pole_cost, power=settings.power_cost),
    )
    camera = CAMERA_PRESETS[settings.camera_class]
    radius = settings.radius_m or camera.coverage_radius_m
    demand = crime_demand(crimes)
    problem = build_coverage(
        demand.xy,
        demand.weights,
        sites,
        radius,
        graph=graph if settings.network_coverage else None,
        network=settings.network_coverage,
        categories=demand.categories,
    )
    budget = Budget(cameras=settings.cameras, money=settings.money)
    report(0.45, "greedy (CELF) with its bound")
    t0 = time.monotonic()
    greedy = solve_greedy(problem, budget)
    greedy_s = time.monotonic() - t0
    report(0.5, "exact MILP (HiGHS)")
    t0 = time.monotonic()
    exact = solve_milp(
        problem, budget, time_limit_s=settings.milp_time_limit_s, backup=settings.backup_coverage
    )
    milp_s = time.monotonic() - t0
    chosen = (
        exact.sites if exact.has_solution and (exact.objective or 0) >= greedy.objective else greedy.sites
    )

    report(0.65, "ANPR cordon")
    if settings.anpr_budget is None:
        cordon = plan_cordon(graph, boundary, protected=settings.protected)
    else:
        cordon = plan_cordon_budget(
            graph, boundary, max_cameras=settings.anpr_budget, protected=settings.protected
        )
    certificate = cordon.verify(graph)

    report(0.75, "ranking")
    ranked = rank_sites(problem, sites, chosen, cordon, cctv_weight=settings.cctv_weight)
    frame = _frame(ranked)
    write_sites_geojson(out_dir / "sites.geojson", frame)
    write_sites_csv(out_dir / "sites.csv", frame)

    report(0.8, "back-test on held-out months")
    candidate_xy = np.column_stack([sites.x, sites.y])

    def choose(train: gpd.GeoDataFrame) -> np.ndarray:
        train_demand = crime_demand(train)
        train_problem = build_coverage(train_demand.xy, train_demand.weights, sites, radius)
        picked = solve_greedy(train_problem, budget).sites
        return candidate_xy[list(picked)]

    tested: Backtest | NotEnoughMonths = backtest(
        all_crimes,
        boundary=boundary,
        choose=choose,
        candidates=candidate_xy,
        radius_m=float(np.max(radius)),
        test_months=settings.backtest_months,
        draws=settings.backtest_draws,
    )
    report(0.9, "map")
    write_map_html(
        out_dir / "map.html",
        boundary=boundary,
        crimes=crimes,
        arterial_roads=road_lines(graph),
        sites=frame[frame["kind"] != "anpr"],  # ANPR links are their own layer
        cordon_links=cordon.links,
        title=f"Cordon plan: {settings.boundary_prefix}",
        coverage_radius_m=float(np.max(radius)),
        attribution=list(ATTRIBUTIONS.values()),
    )
    summary: dict[str, Any] = {
        "boundary_km2": round(boundary.area / 1e6, 2),
        "crimes": len(crimes),
        "demand_points": problem.n_demand,
        "candidate_sites": problem.n_sites,
        "radius_m": round(float(np.max(radius)), 1),
        "cctv": {
            "cameras": len(chosen),
            "covered_weight": round(max(greedy.objective, exact.objective or 0.0), 3),
            "coverable_weight": round(problem.coverable_weight, 3),
            "greedy_objective": round(greedy.objective, 3),
            "greedy_bound": round(greedy.bound, 3),
            "greedy_gap": round(greedy.gap, 6),
            "greedy_s": round(greedy_s, 3),
            "milp_status": exact.status,
            "milp_is_optimal": exact.is_optimal,
            "milp_objective": exact.objective,
            "milp_gap": exact.gap,
            "milp_s": round(milp_s, 3),
            "milp_found_by": exact.found_by,
            "backup_covered_weight": exact.backup_objective,
        },
        "anpr": {
            "method": cordon.method,
            "cameras": cordon.camera_count,
            "reader_lanes": cordon.cost,
            "seals": cordon.seals,
            "certificate_holds": certificate.holds,
            "max_flow": certificate.flow_value,
            "crossing_roads": cordon.crossings.count,
            "cameras_saved_vs_one_per_crossing": cordon.cameras_saved,
        },
        "backtest": _backtest_summary(tested),
        "ranked_sites": len(ranked),
        "seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    report(1.0, "done")
    return summary


def _backtest_summary(result: Backtest | NotEnoughMonths) -> dict[str, Any]:
    if isinstance(result, NotEnoughMonths):
        return {"skipped": result.message}
    return {
        "train_months": list(result.split.train),
        "test_months": list(result.split.test),
        "chosen": {"hit_rate": result.chosen.hit_rate, "pai": result.chosen.pai},
        "kde": {"hit_rate": result.kde.hit_rate, "pai": result.kde.pai},
        "random_mean": {"hit_rate": result.random.hit_rate.mean, "pai": result.random.pai.mean},
    }
