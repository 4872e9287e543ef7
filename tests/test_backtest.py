"""Back-test core: hit rate, PAI, KDE and random baselines, month split (by hand, properties, real data).

The hand-computed instances use a 1 km square study area (EPSG:27700 metres, area 1e6 m²) so that every
number can be checked on paper; the real-data test uses the police.uk Knowsley months 2019-09..2019-12.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon

import planner.backtest
from planner.backtest import (
    DISC_VERTICES,
    Backtest,
    Evaluation,
    Interval,
    MonthSplit,
    NotEnoughMonths,
    backtest,
    covered_region,
    evaluate_kde,
    evaluate_sites,
    kde_grid,
    random_baseline,
    split_months,
)
from planner.data import load_boundary, load_crimes
from planner.errors import DataError

SHARED = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DATA = SHARED / "data"
LSOA = DATA / "lsoa-2001" / "england_low_soa_2001.shp"
SQUARE = shapely.box(0, 0, 1000, 1000)


def crimes_frame(rows: Sequence[tuple[str, float, float, float]]) -> gpd.GeoDataFrame:
    """Crimes as load_crimes returns them, from (month, x, y, weight) in EPSG:27700."""
    return gpd.GeoDataFrame(
        {
            "month": [r[0] for r in rows],
            "crime_type": "Vehicle crime",
            "weight": [r[3] for r in rows],
        },
        geometry=gpd.points_from_xy([r[1] for r in rows], [r[2] for r in rows]),
        crs="EPSG:27700",
    )


def test_public_api_is_pinned() -> None:
    assert set(planner.backtest.__all__) == {
        "DISC_VERTICES",
        "Backtest",
        "DensityGrid",
        "Evaluation",
        "Interval",
        "MonthSplit",
        "NotEnoughMonths",
        "ProgressCallback",
        "RandomBaseline",
        "SiteChooser",
        "backtest",
        "covered_region",
        "evaluate_kde",
        "evaluate_sites",
        "kde_grid",
        "random_baseline",
        "split_months",
    }


# ------------------------------------------------------------------------------------------------- months


def test_split_holds_out_the_latest_months() -> None:
    months = ["2019-10", "2019-09", "2019-12", "2019-11", "2019-09"]
    assert split_months(months) == MonthSplit(train=("2019-09", "2019-10", "2019-11"), test=("2019-12",))
    assert split_months(months, test_months=2) == MonthSplit(
        train=("2019-09", "2019-10"), test=("2019-11", "2019-12")
    )
    assert split_months(months, test_months=["2019-10"]) == MonthSplit(
        train=("2019-09", "2019-11", "2019-12"), test=("2019-10",)
    )


def test_split_reports_too_few_months_instead_of_failing() -> None:
    one = split_months(["2014-04", "2014-04"])
    assert one == NotEnoughMonths(months=("2014-04",), needed=2)
    assert "not enough months" in one.message
    assert "2014-04" in one.message
    assert split_months(["2019-09", "2019-10"], test_months=2) == NotEnoughMonths(
        months=("2019-09", "2019-10"), needed=3
    )
    assert split_months(["2019-09"], test_months=["2019-09"]) == NotEnoughMonths(
        months=("2019-09",), needed=2
    )
    assert isinstance(split_months([]), NotEnoughMonths)


def test_split_rejects_bad_arguments() -> None:
    with pytest.raises(DataError, match="test_months = 0"):
        split_months(["2019-09", "2019-10"], test_months=0)
    with pytest.raises(DataError, match=r"\['2020-01'\] are not in the data"):
        split_months(["2019-09", "2019-10"], test_months=["2020-01"])
    with pytest.raises(DataError, match="number or a list"):
        split_months(["2019-09", "2019-10"], test_months="2019-10")


# -------------------------------------------------------------------------------------- hand computations


def test_two_discs_hit_rate_and_pai_by_hand() -> None:
    sites = [(200, 200), (700, 700)]
    points = [
        (200, 200),  # site A, weight 1
        (290, 200),  # 90 m from A, weight 2
        (200, 300),  # exactly 100 m from A: covered (distance <= radius), weight 1
        (700, 790),  # 90 m from B, weight 3
        (500, 500),  # 283 m from both: not covered, weight 1
        (900, 100),  # not covered, weight 2
        (1500, 500),  # outside the study area: ignored, weight 10
    ]
    weights = [1, 2, 1, 3, 1, 2, 10]
    result = evaluate_sites(points, weights, sites, radius_m=100, boundary=SQUARE)
    assert result.total == 10
    assert result.hits == 7
    assert result.count_total == 6
    assert result.count_hit == 4
    assert result.hit_rate == pytest.approx(0.7)
    # Two disjoint discs of radius 100 m inside the square: 2 π 100² m².
    assert result.area_m2 == pytest.approx(2 * math.pi * 100**2, rel=1e-12)
    assert result.area_share == pytest.approx(2 * math.pi * 0.01)
    assert result.pai == pytest.approx(0.7 / (2 * math.pi * 0.01))  # 11.14


def test_disc_at_a_corner_is_clipped_to_a_quarter() -> None:
    region = covered_region([(0, 0)], radius_m=100, boundary=SQUARE)
    assert region.area == pytest.approx(math.pi * 100**2 / 4, rel=1e-12)
    result = evaluate_sites([(10, 10), (-10, -10)], [1, 1], [(0, 0)], radius_m=100, boundary=SQUARE)
    assert (result.total, result.hits) == (1, 1)  # the crime outside the square is not in the study area
    assert result.pai == pytest.approx(1 / (math.pi * 100**2 / 4 / 1e6))


def test_overlapping_discs_count_their_lens_once() -> None:
    r, d = 300.0, 100.0
    lens = 2 * r * r * math.acos(d / (2 * r)) - (d / 2) * math.sqrt(4 * r * r - d * d)
    big = shapely.box(-10_000, -10_000, 10_000, 10_000)
    region = covered_region([(0, 0), (d, 0)], radius_m=r, boundary=big)
    assert region.area == pytest.approx(2 * math.pi * r * r - lens, rel=1e-5)
    # A crime in the lens is one crime, not two.
    result = evaluate_sites([(50, 0)], [1.0], [(0, 0), (d, 0)], radius_m=r, boundary=big)
    assert result.hits == 1
    assert result.hit_rate == 1


def test_no_sites_cover_nothing_and_pai_is_undefined() -> None:
    result = evaluate_sites([(10, 10)], [1.0], np.zeros((0, 2)), radius_m=100, boundary=SQUARE)
    assert (result.hits, result.area_m2, result.hit_rate) == (0, 0, 0)
    assert math.isnan(result.pai)
    empty = evaluate_sites(np.zeros((0, 2)), [], [(1, 1)], radius_m=100, boundary=SQUARE)
    assert empty.total == 0
    assert math.isnan(empty.hit_rate)
    assert math.isnan(empty.pai)


def test_kde_density_is_the_stated_gaussian() -> None:
    grid = kde_grid([(250, 260)], [2.0], boundary=SQUARE, cell_m=100, bandwidth_m=50)
    assert (grid.columns, grid.rows, len(grid.cells)) == (10, 10, 100)
    assert grid.area_m2.sum() == pytest.approx(1e6)
    cell = int(grid.cell_of([(250, 250)])[0])
    assert (grid.ix[cell], grid.iy[cell]) == (2, 2)
    # Centre (250, 250) is 10 m from the crime: 2 exp(-10² / (2 * 50²)) / (2 π 50²) crimes per m².
    assert grid.density[cell] == pytest.approx(2 * math.exp(-100 / 5000) / (2 * math.pi * 2500), rel=1e-12)


def test_kde_integrates_to_the_total_weight() -> None:
    """Deep inside a large area, density x area summed over cells is the crimes' total weight."""
    big = shapely.box(0, 0, 4000, 4000)
    grid = kde_grid([(2000, 2000), (1800, 2300)], [1.5, 0.5], boundary=big, cell_m=25, bandwidth_m=150)
    assert float((grid.density * grid.area_m2).sum()) == pytest.approx(2.0, rel=1e-6)


def test_kde_top_cells_by_hand() -> None:
    """One training crime at (250, 260): the densest cell is (col 2, row 2), the next (2, 3) 90 m away."""
    grid = kde_grid([(250, 260)], [1.0], boundary=SQUARE, cell_m=100, bandwidth_m=50)
    test_points = [(210, 210), (260, 360), (850, 850)]  # in cell (2, 2), in cell (2, 3), elsewhere
    result = evaluate_kde(test_points, [2, 4, 1], grid, area_m2=15_000, boundary=SQUARE)
    # 1.5 cells: all of (2, 2) and half of (2, 3): hits = 2 + 4 / 2.
    assert result.area_m2 == pytest.approx(15_000)
    assert result.hits == pytest.approx(4)
    assert result.count_hit == pytest.approx(1.5)
    assert result.hit_rate == pytest.approx(4 / 7)
    assert result.pai == pytest.approx((4 / 7) / 0.015)
    assert evaluate_kde(test_points, [2, 4, 1], grid, area_m2=10_000, boundary=SQUARE).hits == 2


def test_kde_cells_are_clipped_to_the_boundary() -> None:
    triangle = Polygon([(0, 0), (1000, 0), (0, 1000)])
    grid = kde_grid([(100, 100)], [1.0], boundary=triangle, cell_m=100)
    assert grid.area_m2.sum() == pytest.approx(triangle.area)
    # The 10 diagonal cells are half inside; the ones above the diagonal are not kept.
    assert len(grid.cells) == 55
    assert sorted(set(np.round(grid.area_m2))) == [5_000, 10_000]


def test_random_baseline_by_hand() -> None:
    """Two candidates, one covering every crime: one site per draw hits all or none, about half the time."""
    points = [(100, 100), (120, 100), (100, 130)]
    candidates = [(110, 110), (800, 800)]
    result = random_baseline(
        points, [1, 1, 1], candidates, sites=1, radius_m=50, boundary=SQUARE, draws=400, seed=7
    )
    assert result.draws == 400
    assert result.candidates == 2
    assert result.sites == 1
    assert set(result.hit_rates) == {0.0, 1.0}
    assert 0.4 < result.hit_rate.mean < 0.6
    assert (result.hit_rate.low, result.hit_rate.high) == (0.0, 1.0)
    assert set(np.round(result.areas_m2, 6)) == {round(math.pi * 50**2, 6)}
    both = random_baseline(points, [1, 1, 1], candidates, sites=2, radius_m=50, boundary=SQUARE, draws=5)
    assert both.hit_rates == (1.0,) * 5
    assert both.areas_m2 == pytest.approx([2 * math.pi * 50**2] * 5)
    assert both.share_below(1.0) == 0.0
    # Discs 199.9 m apart (radius 100 m) barely overlap: the overlap is counted once, as in the plain union.
    near = [(300.0, 500.0), (499.9, 500.0)]
    touching = random_baseline(points, [1, 1, 1], near, sites=2, radius_m=100, boundary=SQUARE, draws=1)
    assert touching.areas_m2[0] == pytest.approx(
        covered_region(near, radius_m=100, boundary=SQUARE).area, rel=1e-12
    )
    assert touching.areas_m2[0] < 2 * math.pi * 100**2 - 0.1
    assert both.share_below(1.01) == 1.0


def test_random_baseline_is_repeatable_by_seed() -> None:
    rng = np.random.default_rng(3)
    points, candidates = rng.uniform(0, 1000, (200, 2)), rng.uniform(0, 1000, (50, 2))
    weights = rng.uniform(0, 1, 200)

    def draw(seed: int) -> tuple[float, ...]:
        return random_baseline(
            points, weights, candidates, sites=5, radius_m=80, boundary=SQUARE, draws=30, seed=seed
        ).hit_rates

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_random_baseline_rejects_impossible_draws() -> None:
    with pytest.raises(DataError, match="sites = 3 must be an integer from 0 to the 2 candidates"):
        random_baseline([(1, 1)], [1], [(0, 0), (5, 5)], sites=3, radius_m=10, boundary=SQUARE)
    with pytest.raises(DataError, match="draws = 0"):
        random_baseline([(1, 1)], [1], [(0, 0)], sites=1, radius_m=10, boundary=SQUARE, draws=0)


def test_interval_of_draws() -> None:
    interval = Interval.of(np.arange(1001, dtype=float))
    assert interval == Interval(mean=500.0, low=25.0, high=975.0)
    assert math.isnan(Interval.of([math.nan]).mean)


def test_progress_is_reported_from_zero_to_total() -> None:
    calls: list[tuple[str, int, int]] = []
    grid = kde_grid(
        np.random.default_rng(0).uniform(0, 1000, (5000, 2)),
        np.ones(5000),
        boundary=SQUARE,
        cell_m=10,  # 10,000 cells x 5,000 crimes: several chunks
        progress=lambda step, done, total: calls.append((step, done, total)),
    )
    assert {step for step, _, _ in calls} == {"KDE density grid"}
    assert calls[0] == ("KDE density grid", 0, len(grid.cells))
    assert calls[-1] == ("KDE density grid", len(grid.cells), len(grid.cells))
    assert len(calls) > 3
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(calls))
    draws: list[int] = []
    random_baseline(
        [(1, 1)], [1], [(0, 0)], sites=1, radius_m=5, boundary=SQUARE, draws=4,
        progress=lambda _step, done, _total: draws.append(done),
    )  # fmt: skip
    assert draws == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------------------------------ whole back-test


def test_backtest_scores_the_held_out_months_only() -> None:
    rows = [("2019-09", 205, 205, 1.0)] * 5 + [("2019-10", 210, 200, 1.0)] * 3  # training: a hot spot
    rows += [("2019-11", 200, 210, 1.0), ("2019-11", 800, 800, 1.0), ("2019-11", 5000, 5000, 9.0)]
    seen: list[set[str]] = []

    def choose(train: gpd.GeoDataFrame) -> list[tuple[float, float]]:
        seen.append(set(train["month"]))
        return [(200.0, 200.0)]

    candidates = [(200.0, 200.0), (600.0, 600.0)]
    result = backtest(
        crimes_frame(rows), boundary=SQUARE, choose=choose, candidates=candidates, radius_m=50, draws=50
    )
    assert isinstance(result, Backtest)
    assert seen == [{"2019-09", "2019-10"}]
    assert result.split == MonthSplit(train=("2019-09", "2019-10"), test=("2019-11",))
    assert (result.train_crimes, result.test_crimes) == (8, 2)  # the crime at (5000, 5000) is outside
    assert result.sites == ((200.0, 200.0),)
    assert result.chosen == evaluate_sites(
        [(200, 210), (800, 800)], [1, 1], [(200, 200)], radius_m=50, boundary=SQUARE
    )
    assert result.chosen.hit_rate == 0.5
    assert result.kde.area_m2 == pytest.approx(result.chosen.area_m2)
    # The disc (π 50² m²) is π/4 of one 100 m cell: the KDE takes that share of the hot-spot cell, which
    # holds the held-out crime at (200, 210) of weight 1 out of 2: hit rate π/8.
    assert result.kde.hit_rate == pytest.approx(math.pi / 8)
    finer = backtest(
        crimes_frame(rows),
        boundary=SQUARE,
        choose=choose,
        candidates=candidates,
        radius_m=50,
        cell_m=25,
        draws=5,
    )
    assert isinstance(finer, Backtest)
    assert finer.kde.hit_rate == 0.5  # with 25 m cells the hot spot's 12.6 cells include the crime's cell
    assert result.random.draws == 50
    assert set(result.random.hit_rates) <= {0.0, 0.5}


def test_backtest_with_one_month_says_so_without_choosing() -> None:
    def choose(_train: gpd.GeoDataFrame) -> list[tuple[float, float]]:
        raise AssertionError("choose must not be called")

    result = backtest(
        crimes_frame([("2014-04", 10, 10, 1.0)]),
        boundary=SQUARE,
        choose=choose,
        candidates=[(0, 0)],
        radius_m=5,
    )
    assert result == NotEnoughMonths(months=("2014-04",), needed=2)


def test_backtest_accepts_sites_as_points_and_rejects_garbage() -> None:
    crimes = crimes_frame([("2019-09", 10, 10, 1.0), ("2019-10", 10, 10, 1.0)])

    def run(value: object) -> Backtest | NotEnoughMonths:
        return backtest(
            crimes, boundary=SQUARE, choose=lambda _: value, candidates=[(0, 0)], radius_m=50, draws=2
        )

    as_points = run(gpd.GeoSeries.from_xy([0], [0], crs="EPSG:27700"))
    assert isinstance(as_points, Backtest)
    assert as_points.chosen.hit_rate == 1
    with pytest.raises(DataError, match="must be in EPSG:27700"):
        run(gpd.GeoSeries.from_xy([0], [0], crs="EPSG:4326"))
    with pytest.raises(DataError, match=r"shape \(n, 2\)"):
        run([1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="non-finite"):
        run([(math.nan, 0.0)])


def test_backtest_checks_its_input() -> None:
    wgs = crimes_frame([("2019-09", 0, 0, 1.0)]).set_crs("EPSG:4326", allow_override=True)
    with pytest.raises(DataError) as info:
        backtest(wgs.drop(columns="weight"), boundary=SQUARE, choose=lambda _: [], candidates=[], radius_m=-1)
    message = str(info.value)
    assert "EPSG:27700" in message
    assert "['weight']" in message
    assert "radius_m = -1" in message


# --------------------------------------------------------------------------------------------- properties

coordinate = st.floats(min_value=-200, max_value=1200, allow_nan=False)
point_lists = st.lists(st.tuples(coordinate, coordinate), min_size=0, max_size=40)


@st.composite
def boundaries(draw: st.DrawFn) -> Polygon | MultiPolygon:
    """A rectangle, or the union of two (an L, a cross, or two separate pieces)."""
    boxes = []
    for _ in range(draw(st.integers(1, 2))):
        x0 = draw(st.floats(0, 600))
        y0 = draw(st.floats(0, 600))
        boxes.append(shapely.box(x0, y0, x0 + draw(st.floats(50, 400)), y0 + draw(st.floats(50, 400))))
    result = shapely.union_all(boxes)
    assert isinstance(result, Polygon | MultiPolygon)
    return result


@settings(max_examples=60, deadline=None)
@given(boundaries(), point_lists, point_lists, st.floats(1, 500), st.data())
def test_hit_rate_and_area_share_are_shares(
    boundary: Polygon | MultiPolygon,
    points: list[tuple[float, float]],
    sites: list[tuple[float, float]],
    radius: float,
    data: st.DataObject,
) -> None:
    weights = data.draw(st.lists(st.floats(0, 10), min_size=len(points), max_size=len(points)))
    result = evaluate_sites(points, weights, sites, radius_m=radius, boundary=boundary)
    if result.total > 0:
        assert 0 <= result.hit_rate <= 1
    else:
        assert math.isnan(result.hit_rate)
    assert 0 <= result.area_share <= 1 + 1e-9
    assert 0 <= result.count_hit <= result.count_total


@settings(max_examples=60, deadline=None)
@given(boundaries(), point_lists.filter(len), st.integers(1, 3))
def test_covering_the_whole_area_has_pai_one(
    boundary: Polygon | MultiPolygon, points: list[tuple[float, float]], copies: int
) -> None:
    centre = boundary.centroid
    reach = max(centre.distance(shapely.Point(xy)) for xy in shapely.get_coordinates(boundary))
    sites = [(centre.x, centre.y)] * copies
    result = evaluate_sites(points, np.ones(len(points)), sites, radius_m=1.01 * reach, boundary=boundary)
    assert result.area_m2 == pytest.approx(boundary.area, rel=1e-9)
    if result.total > 0:
        assert result.hit_rate == 1
        assert result.pai == pytest.approx(1.0, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(boundaries(), point_lists, point_lists.filter(len), st.floats(1, 300), st.data())
def test_more_sites_never_lower_the_hit_rate(
    boundary: Polygon | MultiPolygon,
    points: list[tuple[float, float]],
    sites: list[tuple[float, float]],
    radius: float,
    data: st.DataObject,
) -> None:
    k = data.draw(st.integers(0, len(sites)))
    weights = np.ones(len(points))
    fewer = evaluate_sites(points, weights, sites[:k], radius_m=radius, boundary=boundary)
    more = evaluate_sites(points, weights, sites, radius_m=radius, boundary=boundary)
    assert fewer.hits <= more.hits
    assert fewer.area_m2 <= more.area_m2 * (1 + 1e-9) + 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boundaries(), point_lists, point_lists, st.floats(20, 200), st.floats(0, 1), st.floats(0, 1))
def test_kde_area_is_matched_and_more_area_never_lowers_the_hit_rate(
    boundary: Polygon | MultiPolygon,
    train: list[tuple[float, float]],
    test: list[tuple[float, float]],
    cell: float,
    share_a: float,
    share_b: float,
) -> None:
    grid = kde_grid(train, np.ones(len(train)), boundary=boundary, cell_m=cell, bandwidth_m=100)
    total = float(grid.area_m2.sum())
    assert total == pytest.approx(boundary.area, rel=1e-9)
    small, large = sorted((share_a * total, share_b * total))
    weights = np.ones(len(test))
    low = evaluate_kde(test, weights, grid, area_m2=small, boundary=boundary)
    high = evaluate_kde(test, weights, grid, area_m2=large, boundary=boundary)
    assert low.area_m2 == pytest.approx(small, rel=1e-9, abs=1e-6)
    assert high.area_m2 == pytest.approx(large, rel=1e-9, abs=1e-6)
    assert low.hits <= high.hits + 1e-9
    whole = evaluate_kde(test, weights, grid, area_m2=2 * total, boundary=boundary)
    assert whole.area_m2 == pytest.approx(total)
    if whole.total > 0:
        assert whole.hit_rate == pytest.approx(1.0)
        assert whole.pai == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(point_lists.filter(lambda p: len(p) >= 3), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_random_draws_lie_between_nothing_and_everything(
    candidates: list[tuple[float, float]], sites: int, seed: int
) -> None:
    points = np.random.default_rng(seed).uniform(0, 1000, (30, 2))
    result = random_baseline(
        points, np.ones(30), candidates, sites=sites, radius_m=150, boundary=SQUARE, draws=10, seed=seed
    )
    assert all(0 <= h <= 1 for h in result.hit_rates)
    interval = result.hit_rate
    assert interval.low <= interval.mean + 1e-12
    assert interval.mean <= interval.high + 1e-12
    everything = evaluate_sites(points, np.ones(30), candidates, radius_m=150, boundary=SQUARE)
    assert max(result.hit_rates) <= everything.hit_rate


# ------------------------------------------------------------------------------------- real police.uk data


@pytest.fixture(scope="module")
def knowsley() -> Polygon | MultiPolygon:
    if not LSOA.is_file():
        pytest.fail(f"shared data not found in {DATA}; set CORDON_SHARED_DIR to the shared folder")
    return load_boundary(lsoa_shapefile=LSOA, name_prefix="Knowsley")


def police(*months: str) -> gpd.GeoDataFrame:
    return load_crimes([DATA / "police-uk" / f"police-uk-{month}-merseyside-street.csv" for month in months])


def test_knowsley_back_test_beats_random_sites(knowsley: Polygon | MultiPolygon) -> None:
    """Choose 20 sites with Sep-Nov 2019, score them on Dec 2019 (real police.uk crimes, Knowsley)."""
    crimes = police("2019-09", "2019-10", "2019-11", "2019-12")  # all of Merseyside; backtest clips
    radius = 200.0
    minx, miny, maxx, maxy = knowsley.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, 250.0), np.arange(miny, maxy, 250.0))
    lattice = np.column_stack([gx.ravel(), gy.ravel()])
    lattice = lattice[shapely.contains_xy(knowsley, lattice[:, 0], lattice[:, 1])]

    def greedy(train: gpd.GeoDataFrame) -> np.ndarray:
        """Greedy maximum coverage of the training crimes' weight by 20 lattice sites (simple but real)."""
        xy = shapely.get_coordinates(train.geometry.to_numpy())
        weight = train["weight"].to_numpy()
        members = cKDTree(xy).query_ball_point(lattice, r=radius)
        covered = np.zeros(len(xy), dtype=bool)
        chosen = []
        for _ in range(20):
            gains = [float(weight[m][~covered[m]].sum()) if m else 0.0 for m in members]
            best = int(np.argmax(gains))
            chosen.append(best)
            covered[members[best]] = True
        sites: np.ndarray = lattice[chosen]
        return sites

    result = backtest(
        crimes, boundary=knowsley, choose=greedy, candidates=lattice, radius_m=radius, draws=300, seed=1
    )
    assert isinstance(result, Backtest)
    assert result.split == MonthSplit(train=("2019-09", "2019-10", "2019-11"), test=("2019-12",))
    # README: Knowsley rows per month (every "Knowsley" row lies inside the dissolved boundary, no other).
    assert (result.train_crimes, result.test_crimes) == (1_319 + 1_657 + 1_309, 1_068)
    assert result.chosen.study_area_m2 / 1e6 == pytest.approx(86.5, abs=0.05)
    assert len(result.sites) == 20
    # Crime concentrates: sites chosen on past crime catch far more future crime than their area share ...
    assert result.chosen.pai > 3
    assert result.kde.pai > 3
    assert result.kde.area_m2 == pytest.approx(result.chosen.area_m2)
    # ... and more than any of the middle 95 % of random lattice sites, which catch about their area share.
    assert result.chosen.hit_rate > result.random.hit_rate.high
    assert result.beats_random_share == 1.0
    assert 0.7 < result.random.pai.mean < 1.4
    assert result.random.area_m2.mean == pytest.approx(result.chosen.area_m2, rel=0.15)


def test_one_real_month_is_not_enough(knowsley: Polygon | MultiPolygon) -> None:
    result = backtest(
        police("2014-04"), boundary=knowsley, choose=lambda _: [], candidates=[(0, 0)], radius_m=200
    )
    assert isinstance(result, NotEnoughMonths)
    assert result.months == ("2014-04",)
    assert result.message.startswith("not enough months for a back-test: 1 month(s) of crime (2014-04)")


def test_evaluation_is_a_value() -> None:
    a = Evaluation(hits=1, total=2, count_hit=1, count_total=2, area_m2=10, study_area_m2=100)
    assert a == Evaluation(hits=1, total=2, count_hit=1, count_total=2, area_m2=10, study_area_m2=100)
    assert (a.hit_rate, a.area_share, a.pai) == (0.5, 0.1, 5.0)
    assert DISC_VERTICES == 128


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=12), st.floats(10, 400))
def test_random_draw_area_is_the_union_of_the_drawn_discs(
    candidates: list[tuple[float, float]], radius: float
) -> None:
    """Drawing every candidate, each draw's area is the plain union of all discs (overlapping or not)."""
    result = random_baseline(
        [(500, 500)], [1], candidates, sites=len(candidates), radius_m=radius, boundary=SQUARE, draws=3
    )
    union = covered_region(candidates, radius_m=radius, boundary=SQUARE).area
    assert result.areas_m2 == pytest.approx([union] * 3, rel=1e-9, abs=1e-6)
