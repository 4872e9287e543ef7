"""Smoke test of the planner coverage benchmark: tiny sizes, real engines (HiGHS, spopt + CBC, Knowsley)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.planner_bench import main, synthetic_instance


def test_synthetic_instance_is_seeded_and_gives_each_point_a_handful_of_sites() -> None:
    demand, weights, sites, radius = synthetic_instance(2_000, 600, seed=4)
    again = synthetic_instance(2_000, 600, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((demand, weights, sites), again[:3], strict=True))
    assert radius == again[3]
    assert demand.shape == (2_000, 2)
    assert sites.shape == (600, 2)
    assert (weights >= 0.2).all()  # at least one crime each, the lightest type weighs 0.2
    within = (np.hypot(*(demand[:, None, :] - sites[None, :, :]).transpose(2, 0, 1)) <= radius).sum(axis=1)
    # The radius is the median distance to the 5th nearest site: half the points have at least 5 in reach.
    assert (within >= 5).sum() == 1_000
    assert np.median(within) == 4.5


@pytest.mark.slow
def test_planner_bench_runs_every_stage_and_spopt_agrees(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = main(
        [
            *("--demand", "1500", "--candidates", "450", "--cameras", "10,30", "--time-limit", "20"),
            *("--small", "600x180", "--spopt-timeout", "120", "--borough-cameras", "15", "--json", str(out)),
        ]
    )

    assert result["synthetic"]["demand"] == 1500
    assert result["synthetic"]["candidates"] == 450
    for greedy, milp, baseline in zip(result["greedy"], result["milp"], result["milp_baseline"], strict=True):
        assert greedy["seconds"] > 0
        assert milp["is_optimal"]
        assert greedy["objective"] <= milp["dual_bound"] + 1e-6
        assert milp["objective"] <= greedy["bound"] + 1e-6
        assert 0 < milp["greedy_share"] <= 1.001
        # Swaps only improve greedy, within the same bounds.
        assert greedy["objective"] <= greedy["swap_objective"] <= milp["dual_bound"] + 1e-6
        assert greedy["swap_seconds"] > 0
        # Ours: highspy with the warm start; the baseline: scipy's milp without one, on the same budget.
        assert (milp["engine"], milp["warm_start"]) == ("highspy", True)
        assert milp["start_objective"] <= milp["objective"] + 1e-6
        assert milp["found_by"] in {"HiGHS", "local search"}
        assert milp["seconds"] >= milp["start_seconds"] + milp["highs_seconds"] > 0
        assert (baseline["engine"], baseline["warm_start"]) == ("scipy", False)
        assert baseline["start_objective"] is None
        assert baseline["cameras"] == milp["cameras"]
        assert baseline["is_optimal"]
        assert baseline["objective"] <= milp["dual_bound"] + 1e-6  # both within 0.1 % of the same optimum
        assert milp["objective"] <= baseline["dual_bound"] + 1e-6
    # spopt finishes these small instances and finds the same optimum (ours exact on the last two).
    assert [run["outcome"] for run in result["spopt"]] == ["solved"] * 3
    assert all(run["objectives_match"] for run in result["spopt"][1:])
    assert all(run["ratio"] > 0 and run["build_s"] > 0 for run in result["spopt"])
    borough = result["borough"]
    assert borough is not None
    assert borough["demand"] == 1_721
    assert borough["crimes"] == 11_571
    assert borough["cameras"] == 15
    assert [mode["mode"] for mode in borough["modes"]] == ["straight-line", "along roads"]
    for mode in borough["modes"]:
        assert mode["milp_summary"].startswith("optimal")
        assert mode["greedy_objective"] <= mode["milp_objective"] + 1e-6 <= mode["greedy_bound"] + 2e-6
    assert 0 < borough["peak_rss_mb"] < 4096
    assert borough["total_s"] > borough["load_s"] > 0
    assert set(result["goals_met"]) == {
        "exact <= 0.1% gap in <= 30 s",
        "greedy + bound <= 2 s",
        "borough end to end <= 60 s and <= 2 GB",
    }
    assert json.loads(out.read_text(encoding="utf-8")) == result
