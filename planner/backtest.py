"""Back-test of a site choice: choose with some months of crime, score on held-out months (pure core).

Everything is in British National Grid (EPSG:27700, metres; areas in m²). No file is read here; the crimes
are the table :func:`planner.data.load_crimes` returns (``month`` ``"YYYY-MM"``, ``weight``, point geometry).

Measures
--------
The *study area* is the boundary polygon; only crimes inside it count, in training and in testing.

* **Hit rate** = weighted held-out crimes inside the covered area / all weighted held-out crimes in the study
  area (0 to 1). A crime is covered by a site if it lies within ``radius_m`` of it (distance <= radius).
* **Covered area** = the union of the sites' coverage discs, clipped to the boundary (m²). Discs are regular
  128-gons with the same area as the circle, so an isolated disc has the exact area π r²; unions of
  overlapping discs are exact to about 1e-4 relative.
* **PAI** (Prediction Accuracy Index, Chainey, S., Tompson, L. & Uhlig, S. (2008), "The utility of hotspot
  mapping for predicting spatial patterns of crime", *Security Journal* 21, 4-28) = hit rate / (covered area /
  study area). PAI 1 is what covering a random share of the area achieves on average; the whole area has
  PAI 1 exactly.

Baselines
---------
* **KDE top area** (:func:`kde_grid`, :func:`evaluate_kde`): a Gaussian kernel density of the *training*
  crimes (fixed bandwidth in metres, weighted) on a square grid clipped to the boundary; the densest cells are
  taken until their area equals the chosen sites' covered area (the last cell counts with the fraction of its
  area needed, and its crimes with the same fraction). This is the hot-spot map an analyst would draw with the
  same area to patrol.
* **Random sites** (:func:`random_baseline`): the same number of sites drawn uniformly without replacement
  from the candidate sites, many seeded draws; mean and central 95 % interval (2.5th and 97.5th percentiles)
  of hit rate, PAI and covered area. Random discs overlap, so their covered area varies around the chosen
  set's; PAI corrects for that.

:func:`backtest` ties it together: it splits the months (:func:`split_months`), calls the site selection
``choose(train_crimes)`` it is given (so the real solver is plugged in by the caller) and scores the chosen
sites and both baselines on the held-out months. With fewer than two months it returns
:class:`NotEnoughMonths` instead of raising.

Progress of long steps (the KDE over the grid, the random draws) is reported through an optional callback
``progress(step, done, total)``; :func:`planner.report.rich_progress` draws it as rich progress bars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from planner.errors import DataError

__all__ = [
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
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]

ProgressCallback: TypeAlias = Callable[[str, int, int], None]
"""``progress(step, done, total)``: ``done`` of ``total`` units of the step named ``step`` are finished.

Called with ``done = 0`` when a step starts and with ``done = total`` when it ends.
"""

SiteChooser: TypeAlias = Callable[[gpd.GeoDataFrame], object]
"""``choose(train_crimes) -> sites``: the site selection under test.

It receives the training crimes inside the boundary (columns of :func:`planner.data.load_crimes`, EPSG:27700)
and returns site coordinates in EPSG:27700 metres: an ``(k, 2)`` array-like of (easting, northing), or a
GeoSeries/GeoDataFrame of points in EPSG:27700.
"""

DISC_VERTICES: Final = 128
"""Vertices of the polygon standing for a coverage disc (it has the circle's area)."""

_QUAD_SEGS: Final = DISC_VERTICES // 4
# A regular n-gon of circumradius R has area (n/2) R² sin(2π/n); this factor gives it the area π r².
_AREA_RADIUS: Final = math.sqrt(2 * math.pi / (DISC_VERTICES * math.sin(2 * math.pi / DISC_VERTICES)))
_CHUNK_ENTRIES: Final = 2_000_000  # kernel evaluations per KDE chunk (about 16 MB of float64)


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How much held-out crime a covered area catches.

    Attributes
    ----------
    hits
        Weighted held-out crimes in the covered area (crime weights, see :func:`planner.data.load_crimes`).
    total
        Weighted held-out crimes in the study area.
    count_hit
        Held-out crimes (not weighted) in the covered area; fractional for a KDE area whose last cell is
        taken in part.
    count_total
        Held-out crimes (not weighted) in the study area.
    area_m2
        Covered area (m², clipped to the boundary).
    study_area_m2
        Area of the boundary (m²).
    """

    hits: float
    total: float
    count_hit: float
    count_total: int
    area_m2: float
    study_area_m2: float

    @property
    def hit_rate(self) -> float:
        """Weighted share of held-out crimes covered, 0 to 1 (NaN if there are none)."""
        return self.hits / self.total if self.total > 0 else math.nan

    @property
    def area_share(self) -> float:
        """Covered area / study area, 0 to 1."""
        return self.area_m2 / self.study_area_m2

    @property
    def pai(self) -> float:
        """Prediction Accuracy Index: hit rate / area share (NaN if no crime or no area)."""
        return self.hit_rate / self.area_share if self.area_m2 > 0 and self.total > 0 else math.nan


@dataclass(frozen=True, slots=True)
class Interval:
    """Mean and central 95 % interval of a quantity over random draws.

    Attributes
    ----------
    mean
        Mean over the draws.
    low, high
        2.5th and 97.5th percentiles (linear interpolation between draws).
    """

    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Interval:
        """The interval of ``values`` (NaN values are ignored; all NaN gives NaN)."""
        array = np.asarray(values, dtype=float)
        array = array[~np.isnan(array)]
        if not len(array):
            return cls(math.nan, math.nan, math.nan)
        low, high = np.percentile(array, [2.5, 97.5])
        return cls(float(array.mean()), float(low), float(high))


@dataclass(frozen=True, slots=True)
class RandomBaseline:
    """Random sites drawn from the candidates, scored like the chosen ones.

    Attributes
    ----------
    sites
        Sites per draw (the chosen set's size).
    candidates
        Number of candidate sites drawn from.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same draws.
    hit_rates, pais, areas_m2
        Per draw: hit rate, PAI and covered area (m²).
    """

    sites: int
    candidates: int
    seed: int
    hit_rates: tuple[float, ...]
    pais: tuple[float, ...]
    areas_m2: tuple[float, ...]

    @property
    def draws(self) -> int:
        """Number of draws."""
        return len(self.hit_rates)

    @property
    def hit_rate(self) -> Interval:
        """Mean and 95 % interval of the hit rate."""
        return Interval.of(self.hit_rates)

    @property
    def pai(self) -> Interval:
        """Mean and 95 % interval of the PAI."""
        return Interval.of(self.pais)

    @property
    def area_m2(self) -> Interval:
        """Mean and 95 % interval of the covered area (m²)."""
        return Interval.of(self.areas_m2)

    def share_below(self, hit_rate: float) -> float:
        """Share of draws whose hit rate is strictly below ``hit_rate`` (0 to 1; how often it beats luck)."""
        if not self.hit_rates:
            return math.nan
        return float(np.mean(np.asarray(self.hit_rates) < hit_rate))


@dataclass(frozen=True, slots=True)
class MonthSplit:
    """Which months choose the sites and which score them (``"YYYY-MM"``, sorted)."""

    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotEnoughMonths:
    """The crimes do not span enough months for a back-test (nothing was chosen or scored).

    Attributes
    ----------
    months
        The months present in the crimes, sorted.
    needed
        Months a back-test with the requested split needs (at least one to train and one to test).
    """

    months: tuple[str, ...]
    needed: int

    @property
    def message(self) -> str:
        """Why there is no back-test, in words."""
        have = ", ".join(self.months) if self.months else "none"
        return (
            f"not enough months for a back-test: {len(self.months)} month(s) of crime ({have}), "
            f"{self.needed} needed (sites are chosen with some months and scored on others)"
        )


@dataclass(frozen=True, slots=True)
class Backtest:
    """Chosen sites scored on held-out months, next to the KDE and random baselines.

    Attributes
    ----------
    split
        Training and held-out months.
    sites
        The chosen sites as (easting, northing), EPSG:27700 metres.
    radius_m
        Coverage radius of a site (metres).
    chosen
        The chosen sites on the held-out months.
    kde
        KDE top cells with the chosen sites' covered area, on the held-out months.
    random
        Random sites from the candidates, on the held-out months.
    train_crimes, test_crimes
        Crimes (not weighted) inside the boundary in the training and held-out months.
    cell_m, bandwidth_m
        KDE grid cell size and Gaussian bandwidth (metres).
    """

    split: MonthSplit
    sites: tuple[tuple[float, float], ...]
    radius_m: float
    chosen: Evaluation
    kde: Evaluation
    random: RandomBaseline
    train_crimes: int
    test_crimes: int
    cell_m: float
    bandwidth_m: float

    @property
    def beats_random_share(self) -> float:
        """Share of random draws whose hit rate is below the chosen sites' (0 to 1)."""
        return self.random.share_below(self.chosen.hit_rate)


# ------------------------------------------------------------------------------------------------- months


def split_months(
    months: Sequence[str], *, test_months: int | Sequence[str] = 1
) -> MonthSplit | NotEnoughMonths:
    """Split the distinct months of a crime table into training and held-out months.

    Parameters
    ----------
    months
        Month of each crime (``"YYYY-MM"``, any order, repeats allowed), e.g. ``crimes["month"]``.
    test_months
        A number ``k``: hold out the latest ``k`` months and train on the others (default: the latest month);
        or the held-out months themselves (each must occur in ``months``).

    Returns
    -------
    MonthSplit or NotEnoughMonths
        :class:`NotEnoughMonths` when no month would be left to train on or to test.

    Raises
    ------
    DataError
        ``test_months`` is a number < 1, or names a month that is not in the data.
    """
    present = tuple(sorted(set(months)))
    if isinstance(test_months, int) and not isinstance(test_months, bool):
        if test_months < 1:
            raise DataError(f"test_months = {test_months!r} must be >= 1")
        if len(present) < test_months + 1:
            return NotEnoughMonths(months=present, needed=test_months + 1)
        return MonthSplit(train=present[:-test_months], test=present[-test_months:])
    if isinstance(test_months, str | bool):
        raise DataError(f"test_months = {test_months!r} must be a number or a list of months")
    wanted = tuple(sorted(set(test_months)))
    if missing := [month for month in wanted if month not in present]:
        raise DataError(f"test_months {missing} are not in the data (months present: {list(present)})")
    train = tuple(month for month in present if month not in wanted)
    if not wanted or not train:
        return NotEnoughMonths(months=present, needed=len(wanted) + 1)
    return MonthSplit(train=train, test=wanted)


# --------------------------------------------------------------------------------------------- coverage


def covered_region(sites: npt.ArrayLike, *, radius_m: float, boundary: BaseGeometry) -> BaseGeometry:
    """The union of the sites' coverage discs, clipped to the boundary.

    Parameters
    ----------
    sites
        ``(k, 2)`` easting/northing of the sites, EPSG:27700 metres (``k`` may be 0).
    radius_m
        Coverage radius (metres, > 0).
    boundary
        Study area, EPSG:27700.

    Returns
    -------
    shapely geometry
        Polygonal (possibly empty); each disc is a :data:`DISC_VERTICES`-gon with the circle's area.
    """
    xy = _xy(sites, "sites")
    _check_radius(radius_m)
    if not len(xy):
        return Polygon()
    return shapely.union_all(_discs(xy, radius_m)).intersection(boundary)


def evaluate_sites(
    points: npt.ArrayLike,
    weights: npt.ArrayLike,
    sites: npt.ArrayLike,
    *,
    radius_m: float,
    boundary: BaseGeometry,
) -> Evaluation:
    """Hit rate, covered area and PAI of coverage discs around ``sites``.

    Parameters
    ----------
    points
        ``(n, 2)`` easting/northing of the held-out crimes, EPSG:27700 metres; those outside ``boundary`` are
        ignored.
    weights
        ``(n,)`` weight of each crime (>= 0).
    sites
        ``(k, 2)`` site easting/northing, EPSG:27700 metres.
    radius_m
        Coverage radius (metres); a crime at distance <= ``radius_m`` from a site is covered.
    boundary
        Study area polygon, EPSG:27700.

    Returns
    -------
    Evaluation
    """
    xy, w = _points(points, weights, boundary)
    site_xy = _xy(sites, "sites")
    _check_radius(radius_m)
    covered = np.zeros(len(xy), dtype=bool)
    for members in _within(xy, site_xy, radius_m):
        covered[members] = True
    region = covered_region(site_xy, radius_m=radius_m, boundary=boundary)
    return Evaluation(
        hits=float(w[covered].sum()),
        total=float(w.sum()),
        count_hit=float(covered.sum()),
        count_total=len(xy),
        area_m2=float(region.area),
        study_area_m2=_study_area(boundary),
    )


# --------------------------------------------------------------------------------------------------- KDE


@dataclass(frozen=True, slots=True, eq=False)
class DensityGrid:
    """A Gaussian kernel density of crimes on a square grid clipped to a boundary (EPSG:27700).

    Cell ``i`` is the square with lower-left corner ``(x0 + ix[i] * cell_m, y0 + iy[i] * cell_m)``, clipped
    to the boundary; only cells with a positive area inside the boundary are kept, in row-major order (``iy``
    then ``ix``).

    Attributes
    ----------
    x0, y0
        Lower-left corner of the grid (the boundary's bounding box), metres.
    cell_m
        Cell side (metres).
    columns, rows
        Grid size in cells.
    ix, iy
        ``(c,)`` column and row of each kept cell.
    cells
        ``(c,)`` the clipped cell polygons (shapely geometries).
    area_m2
        ``(c,)`` area of each clipped cell (m²).
    density
        ``(c,)`` kernel density at each square's centre: weighted crimes per m²,
        ``sum_i w_i exp(-d_i² / (2 h²)) / (2 π h²)`` with ``h`` = ``bandwidth_m``.
    bandwidth_m
        Gaussian bandwidth ``h`` (standard deviation of the kernel, metres).
    """

    x0: float
    y0: float
    cell_m: float
    columns: int
    rows: int
    ix: IntArray
    iy: IntArray
    cells: npt.NDArray[np.object_]
    area_m2: FloatArray
    density: FloatArray
    bandwidth_m: float

    @property
    def centres(self) -> FloatArray:
        """``(c, 2)`` centres of the (unclipped) squares, EPSG:27700 metres."""
        return np.column_stack(
            [self.x0 + (self.ix + 0.5) * self.cell_m, self.y0 + (self.iy + 0.5) * self.cell_m]
        )

    def cell_of(self, points: npt.ArrayLike) -> IntArray:
        """Index of the kept cell holding each point (``(n, 2)`` EPSG:27700), or -1 outside every cell.

        Points on a shared cell edge go to the cell above/right of it, except on the grid's own top and
        right edges.
        """
        xy = _xy(points, "points")
        col = np.floor((xy[:, 0] - self.x0) / self.cell_m).astype(np.int64)
        row = np.floor((xy[:, 1] - self.y0) / self.cell_m).astype(np.int64)
        col = np.where(col == self.columns, self.columns - 1, col)
        row = np.where(row == self.rows, self.rows - 1, row)
        inside = (col >= 0) & (col < self.columns) & (row >= 0) & (row < self.rows)
        lookup = np.full(self.rows * self.columns, -1, dtype=np.int64)
        lookup[self.iy * self.columns + self.ix] = np.arange(len(self.ix))
        result = np.full(len(xy), -1, dtype=np.int64)
        result[inside] = lookup[row[inside] * self.columns + col[inside]]
        return result


def kde_grid(
    points: npt.ArrayLike,
    weights: npt.ArrayLike,
    *,
    boundary: Polygon | MultiPolygon,
    cell_m: float = 100.0,
    bandwidth_m: float = 200.0,
    progress: ProgressCallback | None = None,
) -> DensityGrid:
    """Gaussian kernel density of weighted crimes on a grid over the boundary.

    Parameters
    ----------
    points
        ``(n, 2)`` crime easting/northing, EPSG:27700 metres (all are used, also those outside the boundary:
        they add density near its edge).
    weights
        ``(n,)`` crime weights (>= 0).
    boundary
        Polygon the grid covers, EPSG:27700.
    cell_m
        Cell side (metres, > 0). Hart & Zandbergen (2014, *Policing* 37(2)) found cell size matters little to
        how well a KDE hot-spot map predicts; 100 m resolves a street block.
    bandwidth_m
        Kernel standard deviation (metres, > 0); the default 200 m is about a CCTV site's coverage radius.
    progress
        Called as ``progress("KDE density grid", done, total)`` over chunks of cells.

    Returns
    -------
    DensityGrid
        Density evaluated exactly (no truncation of the kernel) at each cell centre.
    """
    problems = []
    if not (math.isfinite(cell_m) and cell_m > 0):
        problems.append(f"cell_m = {cell_m!r} must be a finite number > 0")
    if not (math.isfinite(bandwidth_m) and bandwidth_m > 0):
        problems.append(f"bandwidth_m = {bandwidth_m!r} must be a finite number > 0")
    if not isinstance(boundary, Polygon | MultiPolygon) or boundary.is_empty:
        problems.append(f"boundary must be a non-empty (Multi)Polygon, got {type(boundary).__name__}")
    if problems:
        raise DataError("cannot build a density grid:\n  " + "\n  ".join(problems))
    xy = _xy(points, "points")
    w = _weights(weights, len(xy))

    minx, miny, maxx, maxy = boundary.bounds
    columns = max(1, math.ceil((maxx - minx) / cell_m))
    rows = max(1, math.ceil((maxy - miny) / cell_m))
    iy_all, ix_all = np.divmod(np.arange(rows * columns, dtype=np.int64), columns)
    squares = shapely.box(
        minx + ix_all * cell_m,
        miny + iy_all * cell_m,
        minx + (ix_all + 1) * cell_m,
        miny + (iy_all + 1) * cell_m,
    )
    shapely.prepare(boundary)
    whole = shapely.contains_properly(boundary, squares)
    partial = ~whole & shapely.intersects(boundary, squares)
    cells = squares.copy()
    cells[partial] = shapely.intersection(squares[partial], boundary)
    area = np.where(whole, cell_m * cell_m, 0.0)
    area[partial] = shapely.area(cells[partial])
    keep = area > 0
    ix, iy = ix_all[keep], iy_all[keep]
    centres = np.column_stack([minx + (ix + 0.5) * cell_m, miny + (iy + 0.5) * cell_m])

    density = np.zeros(len(centres))
    step = "KDE density grid"
    chunk = max(1, _CHUNK_ENTRIES // max(1, len(xy)))
    total = len(centres)
    if progress is not None:
        progress(step, 0, total)
    norm = 1.0 / (2 * math.pi * bandwidth_m * bandwidth_m)
    for start in range(0, total, chunk):
        part = centres[start : start + chunk]
        if len(xy):
            d2 = (part[:, None, 0] - xy[None, :, 0]) ** 2 + (part[:, None, 1] - xy[None, :, 1]) ** 2
            density[start : start + chunk] = np.exp(d2 / (-2 * bandwidth_m * bandwidth_m)) @ w * norm
        if progress is not None:
            progress(step, min(start + chunk, total), total)
    return DensityGrid(
        x0=float(minx),
        y0=float(miny),
        cell_m=float(cell_m),
        columns=columns,
        rows=rows,
        ix=ix,
        iy=iy,
        cells=cells[keep],
        area_m2=area[keep],
        density=density,
        bandwidth_m=float(bandwidth_m),
    )


def evaluate_kde(
    points: npt.ArrayLike,
    weights: npt.ArrayLike,
    grid: DensityGrid,
    *,
    area_m2: float,
    boundary: BaseGeometry,
) -> Evaluation:
    """Hit rate and PAI of the densest cells of ``grid`` whose area adds up to ``area_m2``.

    Cells are taken by density, highest first (ties: lower row, then lower column), until their area reaches
    ``area_m2``; the last cell counts with the fraction of its area still needed, and the crimes in it with
    the same fraction (their expected share if they are spread evenly in the cell). So the covered area is
    exactly ``area_m2`` (at most the grid's area).

    Parameters
    ----------
    points, weights
        Held-out crimes, as in :func:`evaluate_sites` (those outside ``boundary`` are ignored).
    grid
        Density of the *training* crimes (:func:`kde_grid`) over ``boundary``.
    area_m2
        Area to cover (m², >= 0), normally the chosen sites' covered area.
    boundary
        Study area, EPSG:27700 (the one ``grid`` was built on).

    Returns
    -------
    Evaluation
    """
    if not (math.isfinite(area_m2) and area_m2 >= 0):
        raise DataError(f"area_m2 = {area_m2!r} must be a finite number >= 0")
    xy, w = _points(points, weights, boundary)
    share = _cell_shares(grid, area_m2)
    cell = grid.cell_of(xy)
    taken = np.where(cell >= 0, share[np.maximum(cell, 0)], 0.0)
    return Evaluation(
        hits=float((taken * w).sum()),
        total=float(w.sum()),
        count_hit=float(taken.sum()),
        count_total=len(xy),
        area_m2=float((share * grid.area_m2).sum()),
        study_area_m2=_study_area(boundary),
    )


def _cell_shares(grid: DensityGrid, area_m2: float) -> FloatArray:
    """Share (0 to 1) of each cell taken when the densest cells fill ``area_m2``."""
    order = np.lexsort((np.arange(len(grid.density)), -grid.density))
    cumulative = np.cumsum(grid.area_m2[order])
    share = np.zeros(len(order))
    full = int(np.searchsorted(cumulative, area_m2, side="right"))
    share[order[:full]] = 1.0
    if full < len(order):
        before = float(cumulative[full - 1]) if full else 0.0
        share[order[full]] = (area_m2 - before) / float(grid.area_m2[order[full]])
    return share


# ------------------------------------------------------------------------------------------------ random


def random_baseline(
    points: npt.ArrayLike,
    weights: npt.ArrayLike,
    candidates: npt.ArrayLike,
    *,
    sites: int,
    radius_m: float,
    boundary: BaseGeometry,
    draws: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> RandomBaseline:
    """Score ``draws`` random choices of ``sites`` sites from ``candidates`` like :func:`evaluate_sites`.

    Parameters
    ----------
    points, weights
        Held-out crimes, as in :func:`evaluate_sites`.
    candidates
        ``(m, 2)`` candidate site easting/northing, EPSG:27700 metres; each draw takes ``sites`` distinct
        candidates uniformly at random.
    sites
        Sites per draw (0 <= sites <= m).
    radius_m, boundary
        As in :func:`evaluate_sites`.
    draws
        Number of draws (>= 1).
    seed
        Seed of :func:`numpy.random.default_rng`.
    progress
        Called as ``progress("random site draws", done, draws)``.

    Returns
    -------
    RandomBaseline
    """
    xy, w = _points(points, weights, boundary)
    pool = _xy(candidates, "candidates")
    _check_radius(radius_m)
    problems = []
    if isinstance(sites, bool) or not isinstance(sites, int) or not 0 <= sites <= len(pool):
        problems.append(f"sites = {sites!r} must be an integer from 0 to the {len(pool)} candidates")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        problems.append(f"draws = {draws!r} must be an integer >= 1")
    if problems:
        raise DataError("cannot draw random sites:\n  " + "\n  ".join(problems))
    rng = np.random.default_rng(seed)
    members = _within(xy, pool, radius_m)
    discs = _DiscCache(pool, radius_m, boundary)
    study = _study_area(boundary)
    total = float(w.sum())
    hit_rates: list[float] = []
    pais: list[float] = []
    areas: list[float] = []
    step = "random site draws"
    if progress is not None:
        progress(step, 0, draws)
    for done in range(1, draws + 1):
        chosen = rng.choice(len(pool), size=sites, replace=False) if sites else np.zeros(0, dtype=np.int64)
        covered = np.zeros(len(xy), dtype=bool)
        for j in chosen:
            covered[members[int(j)]] = True
        area = discs.union_area([int(j) for j in chosen])
        evaluation = Evaluation(
            hits=float(w[covered].sum()),
            total=total,
            count_hit=float(covered.sum()),
            count_total=len(xy),
            area_m2=area,
            study_area_m2=study,
        )
        hit_rates.append(evaluation.hit_rate)
        pais.append(evaluation.pai)
        areas.append(area)
        if progress is not None:
            progress(step, done, draws)
    return RandomBaseline(
        sites=sites,
        candidates=len(pool),
        seed=seed,
        hit_rates=tuple(hit_rates),
        pais=tuple(pais),
        areas_m2=tuple(areas),
    )


# ------------------------------------------------------------------------------------------------ backtest


def backtest(
    crimes: gpd.GeoDataFrame,
    *,
    boundary: Polygon | MultiPolygon,
    choose: SiteChooser,
    candidates: npt.ArrayLike,
    radius_m: float,
    test_months: int | Sequence[str] = 1,
    cell_m: float = 100.0,
    bandwidth_m: float = 200.0,
    draws: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Backtest | NotEnoughMonths:
    """Choose sites with the training months and score them on the held-out months against two baselines.

    Parameters
    ----------
    crimes
        Crimes as :func:`planner.data.load_crimes` returns them: EPSG:27700 points with ``month``
        (``"YYYY-MM"``) and ``weight``. Only those inside ``boundary`` are used.
    boundary
        The study area, EPSG:27700.
    choose
        The site selection under test (see :data:`SiteChooser`); called once, with the training crimes.
    candidates
        ``(m, 2)`` candidate sites (EPSG:27700 metres) the random baseline draws from, normally those
        ``choose`` picks from.
    radius_m
        Coverage radius of a site (metres).
    test_months
        Held-out months: the latest ``k`` (a number, default 1) or the months themselves.
    cell_m, bandwidth_m
        KDE grid cell and Gaussian bandwidth (metres), see :func:`kde_grid`.
    draws, seed
        Random baseline draws and seed, see :func:`random_baseline`.
    progress
        Progress callback for the KDE and the random draws.

    Returns
    -------
    Backtest or NotEnoughMonths
        :class:`NotEnoughMonths` (``choose`` is not called) if the crimes inside the boundary span too few
        months for the split.

    Raises
    ------
    DataError
        The crimes are not in EPSG:27700, lack ``month``/``weight``, are not points, an argument is invalid,
        or ``choose`` returns something that is not ``(k, 2)`` finite coordinates.
    """
    problems = []
    if crimes.crs is None or crimes.crs.to_epsg() != 27700:
        problems.append(f"crimes must be in EPSG:27700, got {crimes.crs}")
    if missing := {"month", "weight"} - set(crimes.columns):
        problems.append(f"crimes lack column(s) {sorted(missing)}")
    if len(crimes) and not (crimes.geom_type == "Point").all():
        problems.append("every crime must be a point")
    if not isinstance(boundary, Polygon | MultiPolygon) or boundary.is_empty or not boundary.is_valid:
        problems.append(f"boundary must be a valid, non-empty (Multi)Polygon, got {type(boundary).__name__}")
    if not (isinstance(radius_m, int | float) and math.isfinite(radius_m) and radius_m > 0):
        problems.append(f"radius_m = {radius_m!r} must be a finite number > 0")
    if problems:
        raise DataError("cannot back-test:\n  " + "\n  ".join(problems))
    xy_all = shapely.get_coordinates(crimes.geometry.to_numpy())
    shapely.prepare(boundary)
    inside = shapely.covers(boundary, shapely.points(xy_all)) if len(xy_all) else np.zeros(0, dtype=bool)
    crimes = crimes.loc[inside]
    split = split_months(crimes["month"].astype(str).tolist(), test_months=test_months)
    if isinstance(split, NotEnoughMonths):
        return split
    train = crimes[crimes["month"].isin(split.train)]
    test = crimes[crimes["month"].isin(split.test)]
    sites = _site_coordinates(choose(train.copy()))
    test_xy = shapely.get_coordinates(test.geometry.to_numpy())
    test_w = test["weight"].to_numpy(dtype=float)
    chosen = evaluate_sites(test_xy, test_w, sites, radius_m=radius_m, boundary=boundary)
    grid = kde_grid(
        shapely.get_coordinates(train.geometry.to_numpy()),
        train["weight"].to_numpy(dtype=float),
        boundary=boundary,
        cell_m=cell_m,
        bandwidth_m=bandwidth_m,
        progress=progress,
    )
    kde = evaluate_kde(test_xy, test_w, grid, area_m2=chosen.area_m2, boundary=boundary)
    rand = random_baseline(
        test_xy,
        test_w,
        candidates,
        sites=len(sites),
        radius_m=radius_m,
        boundary=boundary,
        draws=draws,
        seed=seed,
        progress=progress,
    )
    return Backtest(
        split=split,
        sites=tuple((float(x), float(y)) for x, y in sites),
        radius_m=float(radius_m),
        chosen=chosen,
        kde=kde,
        random=rand,
        train_crimes=len(train),
        test_crimes=len(test),
        cell_m=float(cell_m),
        bandwidth_m=float(bandwidth_m),
    )


# ------------------------------------------------------------------------------------------------ helpers


def _site_coordinates(value: object) -> FloatArray:
    """What ``choose`` returned, as ``(k, 2)`` EPSG:27700 coordinates."""
    if isinstance(value, gpd.GeoDataFrame):
        value = value.geometry
    if isinstance(value, gpd.GeoSeries):
        if value.crs is not None and value.crs.to_epsg() != 27700:
            raise DataError(f"choose returned sites in {value.crs}; they must be in EPSG:27700")
        if len(value) and not (value.geom_type == "Point").all():
            raise DataError("choose returned geometries that are not all points")
        coordinates: FloatArray = shapely.get_coordinates(value.to_numpy()).astype(float)
        return coordinates
    if isinstance(value, pd.DataFrame | pd.Series):
        value = value.to_numpy()
    try:
        return _xy(value, "the sites choose returned")  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise DataError(f"choose returned {type(value).__name__}, not (k, 2) coordinates: {exc}") from exc


def _xy(values: npt.ArrayLike, name: str) -> FloatArray:
    """``(n, 2)`` finite float coordinates; an empty input gives shape ``(0, 2)``."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise DataError(f"{name} must have shape (n, 2), got {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(f"{name} hold non-finite coordinates")
    return array


def _weights(values: npt.ArrayLike, n: int) -> FloatArray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.shape != (n,):
        raise DataError(f"weights must have one value per point ({n}), got shape {array.shape}")
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise DataError("weights must be finite numbers >= 0")
    return array


def _points(
    points: npt.ArrayLike, weights: npt.ArrayLike, boundary: BaseGeometry
) -> tuple[FloatArray, FloatArray]:
    """The crimes inside (or on) the boundary and their weights."""
    xy = _xy(points, "points")
    w = _weights(weights, len(xy))
    if not len(xy):
        return xy, w
    shapely.prepare(boundary)
    inside = shapely.covers(boundary, shapely.points(xy))
    return xy[inside], w[inside]


def _check_radius(radius_m: float) -> None:
    if not (isinstance(radius_m, int | float) and math.isfinite(radius_m) and radius_m > 0):
        raise DataError(f"radius_m = {radius_m!r} must be a finite number > 0")


def _discs(xy: FloatArray, radius_m: float) -> npt.NDArray[np.object_]:
    """Polygons with the area of circles of ``radius_m`` around each point."""
    result: npt.NDArray[np.object_] = shapely.buffer(
        shapely.points(xy), radius_m * _AREA_RADIUS, quad_segs=_QUAD_SEGS
    )
    return result


class _DiscCache:
    """Candidate discs clipped to the boundary (made when first drawn) and the area of unions of them."""

    def __init__(self, pool: FloatArray, radius_m: float, boundary: BaseGeometry) -> None:
        self._pool = pool
        self._radius = radius_m
        self._boundary = boundary
        shapely.prepare(boundary)
        # Two disc polygons can only meet if their centres are closer than twice the polygon's circumradius.
        self._reach = 2 * radius_m * _AREA_RADIUS
        self._clipped: dict[int, tuple[BaseGeometry, float]] = {}

    def _disc(self, j: int) -> tuple[BaseGeometry, float]:
        if j not in self._clipped:
            disc = _discs(self._pool[[j]], self._radius)[0]
            # Most discs lie wholly inside: a prepared containment test is far cheaper than an overlay.
            if not shapely.contains_properly(self._boundary, disc):
                disc = disc.intersection(self._boundary)
            self._clipped[j] = (disc, float(disc.area))
        return self._clipped[j]

    def union_area(self, chosen: Sequence[int]) -> float:
        """Area (m²) of the union of the chosen candidates' clipped discs.

        Only groups of discs that can overlap are unioned; a disc that meets no other adds its own area,
        which is the same number and much faster for scattered random sites.
        """
        if not chosen:
            return 0.0
        pairs = cKDTree(self._pool[list(chosen)]).query_pairs(self._reach, output_type="ndarray")
        group = list(range(len(chosen)))

        def root(i: int) -> int:
            while group[i] != i:
                group[i] = group[group[i]]
                i = group[i]
            return i

        for a, b in pairs:
            group[root(int(a))] = root(int(b))
        members: dict[int, list[int]] = {}
        for i, j in enumerate(chosen):
            members.setdefault(root(i), []).append(j)
        area = 0.0
        for together in members.values():
            if len(together) == 1:
                area += self._disc(together[0])[1]
            else:
                area += float(shapely.union_all([self._disc(j)[0] for j in together]).area)
        return area


def _within(points: FloatArray, sites: FloatArray, radius_m: float) -> list[IntArray]:
    """For each site, the indices of the points within ``radius_m`` (distance <= radius), sorted."""
    if not len(points) or not len(sites):
        return [np.zeros(0, dtype=np.int64) for _ in range(len(sites))]
    tree = cKDTree(points)
    found = tree.query_ball_point(sites, r=radius_m, return_sorted=True)
    return [np.asarray(members, dtype=np.int64) for members in found]


def _study_area(boundary: BaseGeometry) -> float:
    area = float(boundary.area)
    if not area > 0:
        raise DataError("the boundary has no area")
    return area
