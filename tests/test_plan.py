"""A whole planning run on the real Knowsley data: files, combined ranking, determinism, and `cordon plan`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from planner.pipeline import run_plan
from planner.settings import PlannerSettings
from tests.conftest import REPO, SHARED


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("plan")
    steps: list[tuple[float, str]] = []
    summary = run_plan(
        PlannerSettings.load(data_dir=SHARED / "data", cameras=8),
        out_dir=out,
        progress=lambda f, m: steps.append((f, m)),
    )
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions)
    assert steps[-1] == (1.0, "done")
    return out, summary


def test_plan_files_and_summary(planned: tuple[Path, dict[str, object]]) -> None:
    out, summary = planned
    assert {p.name for p in out.iterdir()} >= {"sites.geojson", "sites.csv", "map.html", "summary.json"}
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary, default=str))
    cctv, anpr = summary["cctv"], summary["anpr"]
    assert isinstance(cctv, dict)
    assert isinstance(anpr, dict)
    assert cctv["cameras"] == 8
    assert cctv["greedy_objective"] <= cctv["milp_objective"] + 1e-9 <= cctv["greedy_bound"] + 2e-9
    assert anpr["certificate_holds"] is True
    assert (anpr["cameras"], anpr["reader_lanes"]) == (18, 48.0)  # notes/cordon.md, 500 m zone
    assert summary["boundary_km2"] == 86.47


def test_ranking_is_one_list_by_score_with_explanations(planned: tuple[Path, dict[str, object]]) -> None:
    out, summary = planned
    sites = gpd.read_file(out / "sites.geojson")
    assert len(sites) == summary["ranked_sites"] == 8 + 18
    assert list(sites["rank"]) == list(range(1, len(sites) + 1))
    assert list(sites["score"]) == sorted(sites["score"], reverse=True)
    assert set(sites["kind"]) == {"cctv", "anpr"}
    details = [json.loads(d) for d in sites["details"]]
    cctv = [d for d, k in zip(details, sites["kind"], strict=True) if k == "cctv"]
    assert all(d["unique_weight"] <= d["covered_weight"] + 1e-9 for d in cctv)
    assert all(d["loss_if_removed"] == pytest.approx(d["unique_weight"], abs=1e-6) for d in cctv)
    assert all(
        sum(d["weight_by_type"].values()) == pytest.approx(d["covered_weight"], abs=0.01) for d in cctv
    )
    anpr = [d for d, k in zip(details, sites["kind"], strict=True) if k == "anpr"]
    assert all(d["routes"] for d in anpr)
    assert all(sites["explanation"].str.len() > 20)
    html = (out / "map.html").read_text()
    assert "<script src=" not in html  # Leaflet is inlined (tests/test_report.py checks every source)


def test_same_data_same_plan(planned: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    out, _ = planned
    run_plan(PlannerSettings.load(data_dir=SHARED / "data", cameras=8), out_dir=tmp_path)
    first = pd.read_csv(out / "sites.csv")
    again = pd.read_csv(tmp_path / "sites.csv")
    pd.testing.assert_frame_equal(first, again)


def test_cordon_plan_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    env["CORDON_DATA_DIR"] = str(SHARED / "data")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cordon",
            "plan",
            "--out",
            str(tmp_path),
            "--cameras",
            "4",
            "--anpr-budget",
            "6",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cctv"]["cameras"] == 4
    assert summary["anpr"]["cameras"] <= 6
    assert summary["anpr"]["method"] == "budget_greedy"
    bad = subprocess.run(
        [sys.executable, "-m", "cordon", "plan", "--out", str(tmp_path), "--cameras", "-3"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "cameras" in bad.stderr


def test_user_sites_existing_cameras_and_backup_coverage(tmp_path: Path) -> None:
    """A user's candidate sites are candidates, existing cameras are kept, backup coverage is reported."""
    sites = tmp_path / "lamp-columns.csv"
    sites.write_text(
        "site_id,x,y\nlamp-1,342700,392600\nlamp-2,345200,394500\n"
    )  # Huyton, Kirkby (EPSG:27700)
    existing = tmp_path / "existing.csv"
    existing.write_text("camera_id,x,y\ncctv-huyton-village,341990,391280\n")
    summary = run_plan(
        PlannerSettings.load(
            data_dir=SHARED / "data",
            cameras=5,
            user_sites=sites,
            existing_cameras=existing,
            backup_coverage=True,
            backtest_draws=20,
        ),
        out_dir=tmp_path / "out",
    )
    ranked = gpd.read_file(tmp_path / "out" / "sites.geojson")
    assert "existing:cctv-huyton-village" in set(ranked["site_id"])
    assert summary["candidate_sites"] == 476 + 2 + 1
    cctv = summary["cctv"]
    assert isinstance(cctv, dict)
    assert cctv["cameras"] == 5 + 1
    assert cctv["backup_covered_weight"] is not None
