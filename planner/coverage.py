"""CCTV coverage: which camera sites cover the most weighted crime (maximal covering location problem).

Pure core: functions over plain data, no file is read here. Coordinates are British National Grid
(EPSG:27700, metres) throughout; crime weights are dimensionless (see
:data:`planner.data.DEFAULT_CRIME_WEIGHTS`); money is in the currency the :class:`SiteCost` is given in.

Geometry first, then the solver
-------------------------------
:func:`build_coverage` turns geometry into a sparse 0/1 coverage matrix ``A`` (demand points x candidate
sites): ``A[i, j]`` is true when site ``j`` sees demand point ``i``, either within a straight-line radius
(:class:`scipy.spatial.cKDTree`) or within that distance *along the road network* (Dijkstra with a distance
limit from each site's node, demand points snapped to their nearest node; the snapping offsets count towards
the distance). The radius comes from the camera class: the distance at which its image still has the pixel
density of the DORI level asked for (:class:`CameraClass`). Every solver works on the matrix only
(:class:`CoverageProblem`).

Model (Church & ReVelle 1974, "The maximal covering location problem")
----------------------------------------------------------------------
Choose sites ``S`` (every existing camera is in ``S`` and costs nothing) to maximise the covered weight
``f(S) = sum_i w_i [A[i, S] has a true entry]`` subject to a :class:`Budget` on the *new* sites: at most
``cameras`` of them and/or a total :class:`SiteCost` of at most ``money``.

* :func:`solve_greedy` — lazy greedy (Minoux 1978; "CELF", Leskovec et al. 2007): cost-blind for camera
  budgets; for money budgets both the gain-per-cost and the cost-blind greedy are run and the better kept
  (the "better-of" rule, which guarantees ``(1 - 1/e)/2`` of the optimum; Khuller, Moss & Naor 1999). It
  reports a posterior, data-dependent upper bound on the optimum: for every prefix ``S_t`` of the picks,
  ``OPT <= f(S_t) + (best completion of S_t by marginal gains)``, where the completion is the ``k`` largest
  marginal gains (camera budget; Nemhauser, Wolsey & Fisher 1978) or the fractional knapsack over them (money
  budget), the smallest over all prefixes. That bound is loose when many sites have similar gains (25 % on a
  10k x 3k instance whose greedy is within 3.5 % of optimal), so a Lagrangian bound is also computed
  (relaxing ``y_i <= sum_j a_ij x_j`` with multipliers ``lambda >= 0``: ``OPT <= sum_i max(0, w_i - lambda_i)
  + completion(v)``, ``v_j = sum_i a_ij lambda_i``, for every ``lambda``; Galvão & ReVelle 1996), improved by
  a few hundred subgradient steps from ``lambda = w``; it approaches the linear programming bound. The lesser
  of the two is reported, with ``gap = (bound - f(S)) / bound``. ``swaps=True`` improves the picks by
  best-improvement interchange (Teitz & Bart 1968): one site out and one in while that gains, every move
  priced at once with sparse products; the bound still holds.
* :func:`solve_milp` — the exact model, solved by HiGHS on a sparse matrix after exact reductions (rows
  covered by existing cameras and rows no site covers leave the model, dominated sites are dropped, demand
  points with the same covering sites are merged). HiGHS's dual bound closes early on large instances but it
  finds good solutions slowly, so a warm start comes first: swap local search from greedy's picks and from
  the sets a Lagrangian relaxation picks along its subgradient steps (the Lagrangian heuristic), then the
  best local optima merged by solving the model restricted to their sites (solution merging). HiGHS's own
  package ``highspy`` takes it as the first incumbent; :func:`scipy.optimize.milp` cannot take a start, so
  with that engine the start only stands in when HiGHS's own solution is worse. It reports HiGHS's status
  text and dual bound, the best solution known and the gap between them; only a solve that HiGHS finished
  within the requested gap is called optimal. ``backup=True`` adds Hogan & ReVelle's (1986) backup coverage:
  demand seen by two or more sites earns ``backup_weight`` times its weight again.
* :func:`explain_sites` — for each chosen site: crimes covered by type, coverage unique to it versus shared
  with other chosen sites, its marginal gain in pick order and the objective lost if it were removed.

Determinism: every tie is broken by the lower site index and every loop runs in index order, so identical
input gives identical output, run to run.
"""

from __future__ import annotations

import heapq
import importlib.util
import math
import re
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import networkx as nx
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import shapely
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon

from planner.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
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
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

_TOL: Final = 1e-9
_HAVE_HIGHSPY: Final = importlib.util.find_spec("highspy") is not None

# ------------------------------------------------------------------------------------------ camera classes

Dori = Literal["detect", "observe", "recognise", "identify"]
"""DORI level of IEC 62676-4: what the operator must be able to do with a person in the image."""

DORI_PX_PER_M: Final[Mapping[Dori, float]] = MappingProxyType(
    {"detect": 25.0, "observe": 62.5, "recognise": 125.0, "identify": 250.0}
)
"""Pixels per metre of scene width each DORI level needs at the target (IEC 62676-4:2014, Annex A)."""


@dataclass(frozen=True, slots=True)
class CameraClass:
    """A camera model and lens setting, and the DORI level it must reach.

    Attributes
    ----------
    name
        Label for reports.
    sensor_px
        Horizontal resolution of the image (pixels), e.g. 1920 for 1080p, 3840 for 4K.
    hfov_deg
        Horizontal field of view of the lens at the setting used (degrees, 0 < hfov < 180); a PTZ camera's
        at the zoom it would be used at.
    dori
        The level required at the edge of coverage (:data:`DORI_PX_PER_M`).
    mount_height_m
        Height of the camera above the ground (metres); the coverage radius is measured on the ground.

    Notes
    -----
    The scene width at slant distance ``d`` is ``2 d tan(hfov / 2)``, so the pixel density there is
    ``sensor_px / (2 d tan(hfov / 2))`` pixels per metre; the DORI range is the ``d`` at which this equals
    the level's density, and the ground radius is ``sqrt(d² - mount_height²)`` (0 if the camera is mounted
    higher than its DORI range). A disc of that radius is what a camera that can pan (PTZ, or several fixed
    heads on one pole) sees at that level; a fixed lens sees only a sector of it.
    """

    name: str
    sensor_px: int
    hfov_deg: float
    dori: Dori
    mount_height_m: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.sensor_px, int) and self.sensor_px >= 1):
            problems.append(f"sensor_px = {self.sensor_px!r} must be an integer >= 1")
        if not (math.isfinite(self.hfov_deg) and 0 < self.hfov_deg < 180):
            problems.append(f"hfov_deg = {self.hfov_deg!r} must be within (0, 180) degrees")
        if self.dori not in DORI_PX_PER_M:
            problems.append(f"dori = {self.dori!r} must be one of {sorted(DORI_PX_PER_M)}")
        if not (math.isfinite(self.mount_height_m) and self.mount_height_m >= 0):
            problems.append(f"mount_height_m = {self.mount_height_m!r} must be a finite number >= 0")
        if problems:
            raise DataError(f"camera class {self.name!r}: " + "; ".join(problems))

    @property
    def px_per_m(self) -> float:
        """Pixel density the DORI level needs (pixels per metre of scene width)."""
        return DORI_PX_PER_M[self.dori]

    def density_at(self, distance_m: float) -> float:
        """Pixel density (pixels per metre of scene width) at slant distance ``distance_m`` (metres, > 0)."""
        return self.sensor_px / (2.0 * distance_m * math.tan(math.radians(self.hfov_deg) / 2.0))

    @property
    def dori_range_m(self) -> float:
        """Slant distance (metres) at which the image has exactly the DORI level's pixel density."""
        return self.sensor_px / (2.0 * self.px_per_m * math.tan(math.radians(self.hfov_deg) / 2.0))

    @property
    def coverage_radius_m(self) -> float:
        """Ground distance (metres) from the pole within which the DORI level is reached."""
        return math.sqrt(max(self.dori_range_m**2 - self.mount_height_m**2, 0.0))


DOME_1080P_OBSERVE: Final = CameraClass(
    name="1080p dome, 90° lens, observe", sensor_px=1920, hfov_deg=90.0, dori="observe", mount_height_m=4.0
)
"""A 1080p wide-angle dome at 4 m: observe (62.5 px/m) out to about 15 m."""

BULLET_4K_RECOGNISE: Final = CameraClass(
    name="4K bullet, 30° lens, recognise", sensor_px=3840, hfov_deg=30.0, dori="recognise", mount_height_m=6.0
)
"""A 4K bullet with a 30° lens at 6 m: recognise (125 px/m) out to about 57 m."""

PTZ_1080P_OBSERVE: Final = CameraClass(
    name="1080p PTZ at 10° zoom, observe", sensor_px=1920, hfov_deg=10.0, dori="observe", mount_height_m=8.0
)
"""A 1080p public-space PTZ camera on an 8 m column, zoomed to a 10° field: observe out to about 175 m."""

ANPR_1080P_IDENTIFY: Final = CameraClass(
    name="ANPR 1080p, 12° lens, identify", sensor_px=1920, hfov_deg=12.0, dori="identify", mount_height_m=6.0
)
"""A 1080p ANPR camera with a narrow 12° lens at 6 m: identify (250 px/m) out to about 36 m."""

CAMERA_PRESETS: Final[Mapping[str, CameraClass]] = MappingProxyType(
    {
        "dome-1080p-observe": DOME_1080P_OBSERVE,
        "bullet-4k-recognise": BULLET_4K_RECOGNISE,
        "ptz-1080p-observe": PTZ_1080P_OBSERVE,
        "anpr-1080p-identify": ANPR_1080P_IDENTIFY,
    }
)
"""The named camera classes, by key."""


# --------------------------------------------------------------------------------------------------- sites

SiteKind = Literal["junction", "dead_end", "road", "user", "existing"]
"""Where a candidate site comes from: a road node (junction: degree >= 3, dead end: degree 1, road: a node
along a road), a user-supplied site, or an existing camera (always kept)."""


@dataclass(frozen=True, slots=True)
class SitePoint:
    """A site given as a point: an existing camera or a user's candidate site.

    Attributes
    ----------
    site_id
        Identifier, unique among sites of the same kind.
    x, y
        Position, EPSG:27700 metres.
    lanes
        Lanes an ANPR camera here would read (for :class:`SiteCost`); 0 if not an ANPR site.
    """

    site_id: str
    x: float
    y: float
    lanes: float = 0.0


def site_points(frame: pd.DataFrame) -> tuple[SitePoint, ...]:
    """Sites from a table with columns ``site_id``, ``x``, ``y`` (EPSG:27700 metres) and optional ``lanes``.

    The table of :func:`planner.data.load_camera_sites` has this shape.

    Raises
    ------
    DataError
        A column is missing or a coordinate is not finite.
    """
    missing = {"site_id", "x", "y"} - set(frame.columns)
    if missing:
        raise DataError(f"site table lacks column(s) {sorted(missing)}")
    lanes = frame["lanes"] if "lanes" in frame.columns else [0.0] * len(frame)
    points = tuple(
        SitePoint(str(site_id), float(x), float(y), float(lane))
        for site_id, x, y, lane in zip(frame["site_id"], frame["x"], frame["y"], lanes, strict=True)
    )
    bad = [p.site_id for p in points if not (math.isfinite(p.x) and math.isfinite(p.y))]
    if bad:
        raise DataError(f"site(s) {bad[:5]} have no finite x/y")
    return points


@dataclass(frozen=True, slots=True)
class SiteCost:
    """What one new camera site costs: ``camera + pole + power + anpr_per_lane * lanes`` (money, >= 0).

    Attributes
    ----------
    camera
        The camera (head, housing, installation).
    pole
        A column or wall bracket.
    power
        Power (and network) connection.
    anpr_per_lane
        ANPR reader per lane read (0 for CCTV only); a road-node site reads every lane entering the node.
    """

    camera: float
    pole: float
    power: float
    anpr_per_lane: float = 0.0

    def __post_init__(self) -> None:
        bad = {
            name: value
            for name, value in (
                ("camera", self.camera),
                ("pole", self.pole),
                ("power", self.power),
                ("anpr_per_lane", self.anpr_per_lane),
            )
            if not (math.isfinite(value) and value >= 0)
        }
        if bad:
            raise DataError(f"site cost: {bad} must be finite numbers >= 0")

    def of(self, lanes: float) -> float:
        """Cost of a site whose ANPR would read ``lanes`` lanes."""
        return self.camera + self.pole + self.power + self.anpr_per_lane * lanes


@dataclass(frozen=True, eq=False)
class CandidateSites:
    """Candidate camera sites, in index order (the order every result refers to).

    Attributes
    ----------
    ids
        Unique identifiers, e.g. ``"node:1234"``, ``"user:A12"``, ``"existing:1001"``.
    x, y
        Positions, EPSG:27700 metres (read-only arrays).
    kind
        Where each site comes from (:data:`SiteKind`); ``"existing"`` sites are always selected.
    cost
        Money cost of each site (0 for existing cameras).
    lanes
        Lanes an ANPR reader at each site would read.
    node
        The road-graph node of each road-node site, ``None`` for other sites (they are snapped to the nearest
        node for network coverage).
    """

    ids: tuple[str, ...]
    x: FloatArray
    y: FloatArray
    kind: tuple[SiteKind, ...]
    cost: FloatArray
    lanes: FloatArray
    node: tuple[Hashable | None, ...]

    def __post_init__(self) -> None:
        m = len(self.ids)
        for name in ("x", "y", "cost", "lanes"):
            array = np.array(getattr(self, name), dtype=np.float64)
            if array.shape != (m,):
                raise DataError(f"candidate sites: {name} has shape {array.shape}, expected ({m},)")
            if not np.isfinite(array).all():
                raise DataError(f"candidate sites: {name} holds a value that is not finite")
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        if len(self.kind) != m or len(self.node) != m:
            raise DataError(f"candidate sites: kind and node must have {m} entries")
        if len(set(self.ids)) != m:
            raise DataError("candidate sites: ids must be unique")
        if (self.cost < 0).any() or (self.lanes < 0).any():
            raise DataError("candidate sites: costs and lanes must be >= 0")
        bad_kinds = sorted(set(self.kind) - {"junction", "dead_end", "road", "user", "existing"})
        if bad_kinds:
            raise DataError(f"candidate sites: unknown kind(s) {bad_kinds}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def xy(self) -> FloatArray:
        """Positions as an ``(m, 2)`` array, EPSG:27700 metres."""
        return np.column_stack([self.x, self.y])

    @property
    def existing(self) -> BoolArray:
        """Which sites are existing cameras."""
        return np.array([kind == "existing" for kind in self.kind], dtype=bool)

    @classmethod
    def from_xy(
        cls,
        xy: npt.ArrayLike,
        *,
        ids: Sequence[str] | None = None,
        kind: SiteKind | Sequence[SiteKind] = "user",
        cost: npt.ArrayLike | float = 1.0,
        lanes: npt.ArrayLike | float = 0.0,
    ) -> CandidateSites:
        """Sites at given positions (EPSG:27700 metres, shape ``(m, 2)``), without road nodes.

        ``ids`` default to ``"site:0"``, ``"site:1"`` ...; ``kind``, ``cost`` and ``lanes`` are one value for
        all or one per site.
        """
        points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        m = len(points)
        kinds: tuple[SiteKind, ...] = (kind,) * m if isinstance(kind, str) else tuple(kind)
        return cls(
            ids=tuple(ids) if ids is not None else tuple(f"site:{j}" for j in range(m)),
            x=points[:, 0],
            y=points[:, 1],
            kind=kinds,
            cost=np.broadcast_to(np.asarray(cost, dtype=np.float64), (m,)),
            lanes=np.broadcast_to(np.asarray(lanes, dtype=np.float64), (m,)),
            node=(None,) * m,
        )


def candidate_sites(
    graph: nx.Graph,
    boundary: Polygon | MultiPolygon,
    *,
    existing: Sequence[SitePoint] | None = None,
    user_sites: Sequence[SitePoint] | None = None,
    min_degree: int = 3,
    dead_ends: bool = False,
    site_cost: SiteCost | None = None,
) -> CandidateSites:
    """Candidate camera sites: road nodes inside the boundary, the user's own sites and existing cameras.

    Parameters
    ----------
    graph
        Road graph with node ``x``, ``y`` (EPSG:27700 metres) and, for ANPR costs, edge ``lanes`` (lanes both
        ways), e.g. from :func:`planner.data.load_road_graph_meridian`.
    boundary
        Only road nodes inside it (or on its edge) become candidates, EPSG:27700.
    existing
        Existing cameras: always selected, cost 0, kept wherever they are (also outside the boundary).
    user_sites
        Extra candidates (e.g. lamp columns with power), kept as given.
    min_degree
        Road nodes with at least this many links are candidates: 3 (default) = junctions; 2 adds every node
        along a road (for Meridian 2, its shape vertices).
    dead_ends
        Also nodes with one link (the end of a road).
    site_cost
        Cost of a new site; ``None`` = every new site costs 1 (so a money budget counts cameras).

    Returns
    -------
    CandidateSites
        Existing cameras first (``"existing:<id>"``), then road nodes in node order (``"node:<node>"``, kind
        ``junction``/``road``/``dead_end``), then user sites (``"user:<id>"``). A road node's ``lanes`` are
        the lanes entering it: half the lanes both ways of each of its links.

    Raises
    ------
    DataError
        A node lacks coordinates, ``min_degree`` < 1, ids repeat, or ANPR costs are asked for and a link
        next to a candidate node has no ``lanes``.
    """
    if min_degree < 1:
        raise DataError(f"min_degree = {min_degree!r} must be >= 1")
    cost_of: Callable[[float], float] = site_cost.of if site_cost is not None else (lambda _lanes: 1.0)
    needs_lanes = site_cost is not None and site_cost.anpr_per_lane > 0
    ids: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    kinds: list[SiteKind] = []
    costs: list[float] = []
    lanes: list[float] = []
    nodes: list[Hashable | None] = []

    def add(
        site_id: str, x: float, y: float, kind: SiteKind, cost: float, lane: float, node: Hashable | None
    ) -> None:
        ids.append(site_id)
        xs.append(x)
        ys.append(y)
        kinds.append(kind)
        costs.append(cost)
        lanes.append(lane)
        nodes.append(node)

    for point in existing or ():
        add(f"existing:{point.site_id}", point.x, point.y, "existing", 0.0, point.lanes, None)

    ordered = _ordered_nodes(graph)
    node_xy = _node_xy(graph, ordered)
    shapely.prepare(boundary)
    inside = shapely.covers(boundary, shapely.points(node_xy)) if len(ordered) else np.zeros(0, bool)
    for node, (x, y), is_inside in zip(ordered, node_xy, inside, strict=True):
        degree = graph.degree(node)
        if not is_inside or not (degree >= min_degree or (dead_ends and degree == 1)):
            continue
        kind: SiteKind = "junction" if degree >= 3 else "road" if degree == 2 else "dead_end"
        lane = 0.0
        for _, _, value in graph.edges(node, data="lanes"):
            if value is None:
                if needs_lanes:
                    raise DataError(f"a link at node {node!r} has no 'lanes' (needed for ANPR costs)")
                continue
            lane += float(value) / 2.0
        add(f"node:{node}", float(x), float(y), kind, cost_of(lane), lane, node)

    for point in user_sites or ():
        add(f"user:{point.site_id}", point.x, point.y, "user", cost_of(point.lanes), point.lanes, None)

    return CandidateSites(
        ids=tuple(ids),
        x=np.array(xs, dtype=np.float64),
        y=np.array(ys, dtype=np.float64),
        kind=tuple(kinds),
        cost=np.array(costs, dtype=np.float64),
        lanes=np.array(lanes, dtype=np.float64),
        node=tuple(nodes),
    )


def _ordered_nodes(graph: nx.Graph) -> list[Hashable]:
    """Graph nodes sorted by value, or by ``repr`` when values do not compare (for repeatable results)."""
    try:
        return sorted(graph.nodes)
    except TypeError:
        return sorted(graph.nodes, key=repr)


def _node_xy(graph: nx.Graph, nodes: Sequence[Hashable]) -> FloatArray:
    try:
        xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes], dtype=np.float64)
    except KeyError as exc:
        raise DataError(f"every graph node needs 'x' and 'y' (EPSG:27700 metres); missing {exc}") from exc
    return xy.reshape(-1, 2)


# -------------------------------------------------------------------------------------------------- budget


@dataclass(frozen=True, slots=True)
class Budget:
    """How many *new* sites may be chosen: a camera count, a money total, or both (existing sites are free).

    Attributes
    ----------
    cameras
        At most this many new sites (>= 0), or ``None`` for no count limit.
    money
        At most this total :attr:`CandidateSites.cost` of new sites (>= 0), or ``None``.
    """

    cameras: int | None = None
    money: float | None = None

    def __post_init__(self) -> None:
        if self.cameras is None and self.money is None:
            raise DataError("a budget needs cameras= or money= (or both)")
        if self.cameras is not None and not (isinstance(self.cameras, int) and self.cameras >= 0):
            raise DataError(f"budget cameras = {self.cameras!r} must be an integer >= 0")
        if self.money is not None and not (math.isfinite(self.money) and self.money >= 0):
            raise DataError(f"budget money = {self.money!r} must be a finite number >= 0")


# -------------------------------------------------------------------------------------------------- demand


@dataclass(frozen=True, eq=False)
class DemandCategories:
    """What each demand point holds, by category (crime type), for explanations.

    Attributes
    ----------
    names
        Category names, e.g. police.uk crime types.
    counts
        ``(n, T)`` crimes of each category at each demand point.
    weights
        ``(n, T)`` their weight; each row sums to the demand point's weight.
    """

    names: tuple[str, ...]
    counts: IntArray
    weights: FloatArray

    def __post_init__(self) -> None:
        counts = np.array(self.counts, dtype=np.int64)
        weights = np.array(self.weights, dtype=np.float64)
        t = len(self.names)
        if counts.ndim != 2 or counts.shape[1] != t or weights.shape != counts.shape:
            raise DataError(
                f"demand categories: counts {counts.shape} and weights {weights.shape} must be (n, {t})"
            )
        if len(set(self.names)) != t:
            raise DataError("demand categories: names must be unique")
        if (counts < 0).any() or not np.isfinite(weights).all() or (weights < 0).any():
            raise DataError("demand categories: counts and weights must be finite and >= 0")
        counts.setflags(write=False)
        weights.setflags(write=False)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "weights", weights)


@dataclass(frozen=True, eq=False)
class Demand:
    """Demand points: where crimes happened and how much they count.

    Attributes
    ----------
    xy
        ``(n, 2)`` positions, EPSG:27700 metres.
    weights
        ``(n,)`` weight of each point (sum of its crimes' weights).
    categories
        Crimes per category at each point.
    """

    xy: FloatArray
    weights: FloatArray
    categories: DemandCategories


def crime_demand(crimes: pd.DataFrame) -> Demand:
    """Demand points from crimes: one per police.uk snap point, with crimes counted by type.

    Parameters
    ----------
    crimes
        The table of :func:`planner.data.load_crimes` (EPSG:27700 points with ``crime_type`` and ``weight``),
        usually filtered to the area planned for.

    Returns
    -------
    Demand
        Points in (x, y) order, the same points and weights as :func:`planner.data.snap_points`; categories
        are the crime types present, sorted by name.

    Raises
    ------
    DataError
        Not EPSG:27700, a column is missing, or a geometry is not a point.
    """
    if getattr(crimes, "crs", None) is None or crimes.crs.to_epsg() != 27700:
        raise DataError(f"crime_demand needs crimes in EPSG:27700, got {getattr(crimes, 'crs', None)}")
    if missing := {"crime_type", "weight"} - set(crimes.columns):
        raise DataError(f"crime_demand: crimes lack column(s) {sorted(missing)}")
    if len(crimes) and not (crimes.geom_type == "Point").all():
        raise DataError("crime_demand: every crime must be a point")
    import pandas as pd  # here: only this adapter-like helper needs pandas

    table = pd.DataFrame(
        {
            "x": crimes.geometry.x.to_numpy(dtype=np.float64),
            "y": crimes.geometry.y.to_numpy(dtype=np.float64),
            "crime_type": crimes["crime_type"].astype(str).to_numpy(),
            "weight": crimes["weight"].to_numpy(dtype=np.float64),
        }
    )
    counts = table.pivot_table(
        index=["x", "y"], columns="crime_type", values="weight", aggfunc="size", fill_value=0
    ).sort_index()
    sums = table.pivot_table(
        index=["x", "y"], columns="crime_type", values="weight", aggfunc="sum", fill_value=0.0
    ).sort_index()
    names = sorted(str(name) for name in counts.columns)
    counts = counts[names]
    sums = sums[names]
    xy = np.array(counts.index.to_list(), dtype=np.float64).reshape(-1, 2)
    weight_table = sums.to_numpy(dtype=np.float64)
    # Row totals from the crimes themselves (summed in crime order, as snap_points does).
    totals = table.groupby(["x", "y"], sort=True)["weight"].sum().to_numpy(dtype=np.float64)
    return Demand(
        xy=xy,
        weights=totals,
        categories=DemandCategories(
            names=tuple(names), counts=counts.to_numpy(dtype=np.int64), weights=weight_table
        ),
    )


# ------------------------------------------------------------------------------------------------ problem


@dataclass(frozen=True, eq=False)
class CoverageProblem:
    """A maximal covering problem as plain arrays: what every solver here takes.

    Attributes
    ----------
    weights
        ``(n,)`` weight of each demand point (>= 0).
    costs
        ``(m,)`` money cost of each site (>= 0; existing sites' costs are ignored).
    coverage
        ``(n, m)`` boolean :class:`scipy.sparse.csr_matrix`: site ``j`` covers demand point ``i``.
    existing
        ``(m,)`` which sites are existing cameras (always selected, outside the budget).
    site_ids
        Identifier of each site (default ``"site:<j>"``).
    categories
        Crimes by category at each demand point, for :func:`explain_sites`; optional.
    """

    weights: FloatArray
    costs: FloatArray
    coverage: sp.csr_matrix
    existing: BoolArray
    site_ids: tuple[str, ...] = ()
    categories: DemandCategories | None = None

    def __post_init__(self) -> None:
        weights = np.array(self.weights, dtype=np.float64).reshape(-1)
        costs = np.array(self.costs, dtype=np.float64).reshape(-1)
        existing = np.array(self.existing, dtype=bool).reshape(-1)
        n, m = len(weights), len(costs)
        problems = []
        if not np.isfinite(weights).all() or (weights < 0).any():
            problems.append("weights must be finite and >= 0")
        if not np.isfinite(costs).all() or (costs < 0).any():
            problems.append("costs must be finite and >= 0")
        if existing.shape != (m,):
            problems.append(f"existing has {existing.shape[0]} entries, expected {m}")
        coverage = sp.csr_matrix(self.coverage, dtype=bool, copy=True)
        if coverage.shape != (n, m):
            problems.append(f"coverage has shape {coverage.shape}, expected ({n}, {m})")
        site_ids = tuple(self.site_ids) or tuple(f"site:{j}" for j in range(m))
        if len(site_ids) != m or len(set(site_ids)) != m:
            problems.append(f"site_ids must be {m} unique identifiers")
        if self.categories is not None:
            if self.categories.weights.shape[0] != n:
                problems.append(f"categories cover {self.categories.weights.shape[0]} demand points, not {n}")
            elif not np.allclose(self.categories.weights.sum(axis=1), weights, rtol=1e-9, atol=1e-9):
                problems.append("categories' weights do not add up to the demand weights")
        if problems:
            raise DataError("coverage problem: " + "; ".join(problems))
        coverage.sum_duplicates()
        coverage.eliminate_zeros()
        coverage.sort_indices()
        for array in (weights, costs, existing):
            array.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "costs", costs)
        object.__setattr__(self, "existing", existing)
        object.__setattr__(self, "coverage", coverage)
        object.__setattr__(self, "site_ids", site_ids)

    @property
    def n_demand(self) -> int:
        """Number of demand points."""
        return int(self.weights.shape[0])

    @property
    def n_sites(self) -> int:
        """Number of candidate sites."""
        return int(self.costs.shape[0])

    @cached_property
    def csc(self) -> sp.csc_matrix:
        """The coverage matrix by column (site -> demand points), for fast per-site access."""
        matrix = self.coverage.tocsc()
        matrix.sort_indices()
        return matrix

    @cached_property
    def coverable_weight(self) -> float:
        """Weight of the demand points that at least one site covers: an upper bound on any objective."""
        return float(self.weights[np.diff(self.coverage.indptr) > 0].sum())

    def rows_of(self, site: int) -> IntArray:
        """Demand points site ``site`` covers, in index order."""
        csc = self.csc
        rows: IntArray = csc.indices[csc.indptr[site] : csc.indptr[site + 1]].astype(np.int64)
        return rows


def build_coverage(
    demand_xy: npt.ArrayLike,
    weights: npt.ArrayLike,
    sites: CandidateSites,
    radius_m: float | npt.ArrayLike,
    *,
    graph: nx.Graph | None = None,
    network: bool = False,
    categories: DemandCategories | None = None,
) -> CoverageProblem:
    """Which sites cover which demand points: the sparse matrix every solver works on.

    Parameters
    ----------
    demand_xy
        ``(n, 2)`` demand points, EPSG:27700 metres.
    weights
        ``(n,)`` their weights (>= 0).
    sites
        Candidate sites (:func:`candidate_sites` or :meth:`CandidateSites.from_xy`).
    radius_m
        Coverage radius in metres, one for all sites or one per site (e.g.
        :attr:`CameraClass.coverage_radius_m`).
    graph
        Road graph (node ``x``, ``y`` in EPSG:27700; edge ``length_m`` in metres) for ``network=True``.
    network
        ``False``: straight-line distance. ``True``: distance along the road network, plus the straight-line
        offsets of the demand point and of the site from their nearest nodes (road-node sites sit on their
        node); a point is covered if that total is within the radius.
    categories
        Crimes by category at each demand point (kept for :func:`explain_sites`).

    Returns
    -------
    CoverageProblem
        With the sites' costs, existing mask and ids.

    Raises
    ------
    DataError
        Shapes disagree, a radius is negative or not finite, ``network=True`` without a graph, or the graph
        lacks coordinates or link lengths.
    """
    points = np.asarray(demand_xy, dtype=np.float64).reshape(-1, 2)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    n, m = len(points), len(sites)
    if len(w) != n:
        raise DataError(f"{n} demand points but {len(w)} weights")
    if not np.isfinite(points).all():
        raise DataError("demand points must have finite coordinates")
    radius = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), (m,)).copy()
    if not (np.isfinite(radius).all() and (radius >= 0).all()):
        raise DataError("radius_m must be finite and >= 0")
    if network:
        if graph is None:
            raise DataError("network coverage needs graph=")
        rows, cols = _network_pairs(points, sites, radius, graph)
    else:
        rows, cols = _straight_pairs(points, sites.xy, radius)
    coverage = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, m))
    return CoverageProblem(
        weights=w,
        costs=np.where(sites.existing, 0.0, sites.cost),
        coverage=coverage,
        existing=sites.existing,
        site_ids=sites.ids,
        categories=categories,
    )


def _straight_pairs(points: FloatArray, site_xy: FloatArray, radius: FloatArray) -> tuple[IntArray, IntArray]:
    """(demand, site) index pairs within each site's radius, straight-line."""
    if len(points) == 0 or len(site_xy) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = cKDTree(points).sparse_distance_matrix(
        cKDTree(site_xy), float(radius.max()), output_type="ndarray"
    )
    rows = pairs["i"].astype(np.int64)
    cols = pairs["j"].astype(np.int64)
    keep = pairs["v"] <= radius[cols]
    return rows[keep], cols[keep]


def _network_pairs(
    points: FloatArray, sites: CandidateSites, radius: FloatArray, graph: nx.Graph
) -> tuple[IntArray, IntArray]:
    """(demand, site) pairs whose network distance plus snapping offsets is within the site's radius."""
    nodes = _ordered_nodes(graph)
    if not nodes:
        raise DataError("network coverage needs a graph with nodes")
    index = {node: k for k, node in enumerate(nodes)}
    node_xy = _node_xy(graph, nodes)
    big_n = len(nodes)
    us, vs, lengths = [], [], []
    for u, v, length in graph.edges(data="length_m"):
        if length is None or not math.isfinite(float(length)) or float(length) < 0:
            raise DataError(f"link {u!r}-{v!r} needs a finite length_m >= 0 (metres)")
        us.append(index[u])
        vs.append(index[v])
        lengths.append(float(length))
    a = np.array(us + vs, dtype=np.int64)
    b = np.array(vs + us, dtype=np.int64)
    d = np.array(lengths + lengths, dtype=np.float64)
    # Parallel links: keep the shortest (a sparse matrix would add them up).
    order = np.lexsort((d, b, a))
    a, b, d = a[order], b[order], d[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    network = sp.csr_matrix((d[first], (a[first], b[first])), shape=(big_n, big_n))

    tree = cKDTree(node_xy)
    demand_offset, demand_node = tree.query(points) if len(points) else (np.zeros(0), np.zeros(0, np.int64))
    site_node = np.empty(len(sites), dtype=np.int64)
    site_offset = np.zeros(len(sites), dtype=np.float64)
    for j, node in enumerate(sites.node):
        if node is not None and node in index:
            site_node[j] = index[node]
        else:
            offset, nearest = tree.query(sites.xy[j])
            site_node[j], site_offset[j] = int(nearest), float(offset)
    demand_node = np.asarray(demand_node, dtype=np.int64)
    demand_offset = np.asarray(demand_offset, dtype=np.float64)

    rows_out: list[IntArray] = []
    cols_out: list[IntArray] = []
    # Dijkstra returns a dense (sources x nodes) array: bound it to about 32 MB per chunk.
    chunk = max(1, 4_000_000 // max(big_n, len(points), 1))
    candidates = np.flatnonzero(site_offset <= radius)
    for start in range(0, len(candidates), chunk):
        js = candidates[start : start + chunk]
        limit = float((radius[js] - site_offset[js]).max())
        dist = dijkstra(network, directed=True, indices=site_node[js], limit=limit)
        total = dist[:, demand_node] + demand_offset[None, :] + site_offset[js, None]
        hit_j, hit_i = np.nonzero(total <= radius[js, None])
        rows_out.append(hit_i.astype(np.int64))
        cols_out.append(js[hit_j].astype(np.int64))
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows_out), np.concatenate(cols_out)


# ------------------------------------------------------------------------------------------------- helpers


def covered_weight(problem: CoverageProblem, sites: Iterable[int]) -> float:
    """Weight of the demand points that at least one of ``sites`` covers (the objective ``f``)."""
    covered = _covered_mask(problem, sites)
    return float(problem.weights[covered].sum())


def _covered_mask(problem: CoverageProblem, sites: Iterable[int]) -> BoolArray:
    covered = np.zeros(problem.n_demand, dtype=bool)
    for j in sites:
        covered[problem.rows_of(j)] = True
    return covered


def _cover_counts(problem: CoverageProblem, sites: Iterable[int]) -> IntArray:
    counts = np.zeros(problem.n_demand, dtype=np.int64)
    for j in sites:
        counts[problem.rows_of(j)] += 1
    return counts


def _check_sites(problem: CoverageProblem, sites: Sequence[int]) -> list[int]:
    chosen = [int(j) for j in sites]
    if len(set(chosen)) != len(chosen):
        raise DataError("sites repeat")
    if any(not 0 <= j < problem.n_sites for j in chosen):
        raise DataError(f"a site index is outside 0..{problem.n_sites - 1}")
    return chosen


def greedy_order(problem: CoverageProblem, sites: Iterable[int]) -> tuple[int, ...]:
    """``sites`` in the order greedy would pick them: existing cameras first (by index), then by largest
    marginal gain (ties: lower index)."""
    chosen = _check_sites(problem, sorted(int(j) for j in sites))
    first = [j for j in chosen if problem.existing[j]]
    rest = [j for j in chosen if not problem.existing[j]]
    covered = _covered_mask(problem, first)
    order = list(first)
    while rest:
        gains = [_gain(problem, j, covered) for j in rest]
        best = max(range(len(rest)), key=lambda k: (gains[k], -rest[k]))
        j = rest.pop(best)
        covered[problem.rows_of(j)] = True
        order.append(j)
    return tuple(order)


def _gain(problem: CoverageProblem, site: int, covered: BoolArray) -> float:
    """Weight site ``site`` would add to ``covered`` (summed in row order, the same way every time)."""
    rows = problem.rows_of(site)
    return float(problem.weights[rows[~covered[rows]]].sum())


# -------------------------------------------------------------------------------------------------- greedy

GreedyRule = Literal["gain", "gain_per_cost"]
"""Which greedy made the picks: largest marginal gain, or largest marginal gain per unit cost."""


@dataclass(frozen=True, slots=True)
class GreedyResult:
    """Lazy greedy's picks and its posterior bound.

    Attributes
    ----------
    existing
        Existing sites (always selected), by index.
    picks
        New sites in the order picked.
    gains
        Marginal gain (weight) of each pick when it was picked.
    existing_objective
        Weight covered by the existing sites alone.
    objective
        Weight covered by existing sites and picks (``f``).
    bound
        Upper bound on the optimum: the least of ``submodular_bound`` and ``lagrangian_bound``.
    submodular_bound
        The least over all prefixes of the picks of ``f(prefix) + best completion by marginal gains`` (the
        Nemhauser-Wolsey-Fisher / Minoux bound; its knapsack analogue for money).
    lagrangian_bound
        The best Lagrangian bound found by subgradient steps (see the module notes), which tends to the linear
        programming bound; ``inf`` if not computed.
    gap
        ``(bound - objective) / bound`` (0 if the bound is 0): how far from optimal the picks can be.
    cost
        Total cost of the picks.
    rule
        Which greedy's picks these are (for money budgets: the better of the two).
    other_objective
        For money budgets, the objective of the greedy not kept; ``None`` otherwise.
    evaluations
        Marginal gains computed (lazy evaluation saves most of ``picks x sites``).

    With ``swaps=True`` the picks are greedy's improved by swap local search: ``picks`` are then in greedy
    order (:func:`greedy_order`) with their marginal gains, and ``rule`` says which greedy the search
    started from.
    """

    existing: tuple[int, ...]
    picks: tuple[int, ...]
    gains: tuple[float, ...]
    existing_objective: float
    objective: float
    bound: float
    submodular_bound: float
    lagrangian_bound: float
    gap: float
    cost: float
    rule: GreedyRule
    other_objective: float | None
    evaluations: int
    greedy_objective: float | None = None
    """Greedy's own objective, before any swaps (equals ``objective`` without ``swaps=True``)."""
    swap_moves: int = 0
    """Improving moves the swap local search made (0 without ``swaps=True``)."""

    @property
    def sites(self) -> tuple[int, ...]:
        """All selected sites: existing, then picks in pick order."""
        return self.existing + self.picks


@dataclass(slots=True)
class _Run:
    picks: list[int] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    cost: float = 0.0
    bound: float = math.inf
    evaluations: int = 0
    covered: BoolArray = field(default_factory=lambda: np.zeros(0, bool))


def solve_greedy(
    problem: CoverageProblem, budget: Budget, *, lagrangian_steps: int = 300, swaps: bool = False
) -> GreedyResult:
    """Lazy (CELF) greedy for the budget, with a posterior upper bound on the optimum.

    Parameters
    ----------
    problem
        The coverage matrix and weights.
    budget
        New sites allowed: a count (cost-blind greedy), money (better of gain-per-cost and cost-blind greedy,
        each keeping within the money), or both.
    lagrangian_steps
        Most subgradient steps for the Lagrangian bound (0: only the submodular bound).
    swaps
        Improve the picks by best-improvement swap local search (Teitz & Bart 1968; one site out and one in,
        or one in while the budget has room) until no single swap gains: a 1-swap local optimum, never worse
        than greedy, still within the same bound. Deterministic; typically tens of milliseconds.

    Returns
    -------
    GreedyResult
        Picks stop early when nothing affordable adds weight.
    """
    existing = tuple(int(j) for j in np.flatnonzero(problem.existing))
    start = _covered_mask(problem, existing)
    existing_objective = float(problem.weights[start].sum())
    rules: list[GreedyRule] = ["gain"] if budget.money is None else ["gain_per_cost", "gain"]
    runs = {rule: _celf(problem, budget, start, rule) for rule in rules}
    objectives = {rule: float(problem.weights[run.covered].sum()) for rule, run in runs.items()}
    # Better-of rule: the higher objective; on a tie, the first rule listed.
    kept = max(rules, key=lambda rule: (objectives[rule], -rules.index(rule)))
    run = runs[kept]
    objective = objectives[kept]
    # Rounding: no bound is reported below what was reached.
    submodular = max(min([run.bound for run in runs.values()] + [problem.coverable_weight]), objective)
    lagrangian = max(_lagrangian_bound(problem, budget, start, objective, lagrangian_steps), objective)
    bound = min(submodular, lagrangian)
    other = [objectives[rule] for rule in rules if rule != kept]
    picks, gains, cost, moves = tuple(run.picks), tuple(run.gains), run.cost, 0
    if swaps:
        improved, moves = _swapped(problem, budget, existing, picks)
        value = covered_weight(problem, existing + improved)
        if value > objective:
            picks = improved
            explained = explain_sites(problem, existing + improved)[len(existing) :]
            gains = tuple(explanation.marginal_gain for explanation in explained)
            cost = float(problem.costs[list(picks)].sum())
            objective = value
            bound = max(bound, objective)  # rounding only: the bound holds for every solution
    return GreedyResult(
        existing=existing,
        picks=picks,
        gains=gains,
        existing_objective=existing_objective,
        objective=objective,
        bound=bound,
        submodular_bound=submodular,
        lagrangian_bound=lagrangian,
        gap=(bound - objective) / bound if bound > 0 else 0.0,
        cost=cost,
        rule=kept,
        other_objective=other[0] if other else None,
        evaluations=sum(r.evaluations for r in runs.values()),
        greedy_objective=objectives[kept],
        swap_moves=moves,
    )


def _swapped(
    problem: CoverageProblem, budget: Budget, existing: tuple[int, ...], picks: Sequence[int]
) -> tuple[tuple[int, ...], int]:
    """``picks`` improved by :func:`_swap_search` on the reduced model, in greedy order; and the moves made.

    Dominated picks first give way to the site dominating them (never a loss); idle picks are dropped.
    """
    model = _reduce(problem, budget)
    if model.matrix.shape[0] == 0 or model.matrix.shape[1] == 0:
        return tuple(picks), 0
    space = _Space.of(model, problem, budget)
    first = model.stand_in[list(picks)] if picks else np.zeros(0, np.int64)
    columns, moves = _swap_search(space, _within(space, first[first >= 0]))
    chosen = _prune(problem, existing, [int(j) for j in model.columns[columns]], 0.0)
    return greedy_order(problem, [*existing, *chosen])[len(existing) :], moves


def _celf(problem: CoverageProblem, budget: Budget, start: BoolArray, rule: GreedyRule) -> _Run:
    """One lazy greedy run from the covered mask ``start``; also the least prefix bound along the way."""
    costs = problem.costs
    new = ~problem.existing
    money_left = math.inf if budget.money is None else float(budget.money)
    max_picks = problem.n_sites if budget.cameras is None else budget.cameras
    run = _Run(covered=start.copy())
    covered = run.covered
    csc_t = problem.csc.T.tocsr()
    affordable = new & (costs <= money_left + _TOL)

    def key(gain: float, j: int) -> float:
        if rule == "gain":
            return gain
        return gain / costs[j] if costs[j] > 0 else (math.inf if gain > 0 else 0.0)

    stamp = np.zeros(problem.n_sites, dtype=np.int64)
    gain_of = np.zeros(problem.n_sites, dtype=np.float64)
    heap: list[tuple[float, int]] = []
    for site in np.flatnonzero(affordable).tolist():
        g = _gain(problem, site, covered)
        run.evaluations += 1
        gain_of[site] = g
        if g > 0:
            heap.append((-key(g, site), site))
    heapq.heapify(heap)
    run.bound = _prefix_bound(problem, budget, csc_t, covered, affordable)
    while heap and len(run.picks) < max_picks:
        _, j = heap[0]
        if costs[j] > money_left + _TOL:
            heapq.heappop(heap)  # money only goes down: never affordable again
            continue
        if stamp[j] != len(run.picks):
            g = _gain(problem, j, covered)
            run.evaluations += 1
            gain_of[j] = g
            stamp[j] = len(run.picks)
            heapq.heapreplace(heap, (-key(g, j), j))
            continue
        if gain_of[j] <= 0:
            break  # the best fresh gain is 0: nothing left adds weight
        heapq.heappop(heap)
        covered[problem.rows_of(j)] = True
        run.picks.append(j)
        run.gains.append(float(gain_of[j]))
        run.cost += float(costs[j])
        money_left -= float(costs[j])
        run.bound = min(run.bound, _prefix_bound(problem, budget, csc_t, covered, affordable))
    return run


def _prefix_bound(
    problem: CoverageProblem, budget: Budget, csc_t: sp.csr_matrix, covered: BoolArray, eligible: BoolArray
) -> float:
    """``f(S)`` plus the best completion by marginal gains w.r.t. ``S``: an upper bound on the optimum."""
    base = float(problem.weights[covered].sum())
    delta = np.asarray(csc_t @ np.where(covered, 0.0, problem.weights), dtype=np.float64).reshape(-1)
    delta = np.where(eligible, delta, 0.0)
    completions = []
    if budget.cameras is not None:
        k = min(budget.cameras, len(delta))
        completions.append(float(np.sort(delta)[len(delta) - k :].sum()) if k > 0 else 0.0)
    if budget.money is not None:
        completions.append(_fractional_knapsack(delta, problem.costs, float(budget.money))[0])
    return base + min(completions)


def _fractional_knapsack(values: FloatArray, costs: FloatArray, capacity: float) -> tuple[float, FloatArray]:
    """Largest ``sum v_j x_j`` with ``sum c_j x_j <= capacity``, ``0 <= x <= 1`` (Dantzig): value and x."""
    x = np.zeros(len(values), dtype=np.float64)
    positive = values > 0
    x[positive & (costs <= 0)] = 1.0
    paid = np.flatnonzero(positive & (costs > 0))
    if len(paid) and capacity > 0:
        order = paid[np.argsort(-(values[paid] / costs[paid]), kind="stable")]
        spent = np.cumsum(costs[order])
        whole = int(np.searchsorted(spent, capacity, side="right"))
        x[order[:whole]] = 1.0
        if whole < len(order):
            left = capacity - (float(spent[whole - 1]) if whole > 0 else 0.0)
            x[order[whole]] = left / float(costs[order[whole]])
    return float(values @ x), x


def _top_k(values: FloatArray, k: int) -> tuple[float, FloatArray]:
    """Largest ``sum v_j x_j`` with at most ``k`` of ``x`` at 1 (ties: lower index): value, x."""
    x = np.zeros(len(values), dtype=np.float64)
    x[np.argsort(-values, kind="stable")[: max(k, 0)]] = 1.0
    x[values <= 0] = 0.0
    return float(values @ x), x


def _relaxed_choice(
    v: FloatArray, cameras: int | None, costs: FloatArray, money: float | None
) -> tuple[float, FloatArray]:
    """The Lagrangian relaxation's choice for column values ``v``: the weaker of the budgets' bounds.

    ``(value, x)``: the best ``cameras`` columns, or the fractional knapsack within ``money``, whichever is
    lower (None: no such budget).
    """
    completions = []
    if cameras is not None:
        completions.append(_top_k(v, cameras))
    if money is not None:
        completions.append(_fractional_knapsack(v, costs, money))
    return min(completions, key=lambda pair: pair[0])


@dataclass(slots=True)
class _Subgradient:
    """Polyak subgradient steps on the multipliers ``lam`` of the coverage rows, towards ``target``.

    The step factor starts at 2 and halves after ten steps without a better (lower) value; the steps stop
    when the best value is within 1e-6 of ``target``, the factor falls below 1e-4, or the subgradient is 0.
    """

    a: Any
    """Rows x columns coverage matrix (CSR)."""
    w: FloatArray
    target: float
    lam: FloatArray
    best: float = math.inf
    theta: float = 2.0
    stall: int = 0

    def step(self, value: float, x: FloatArray) -> bool:
        """Record ``value`` (the relaxation at ``lam``, choosing ``x``) and move ``lam``; False: stop here."""
        if value < self.best * (1 - 1e-12):  # best >= 0; inf * (1 - 1e-12) is inf
            self.best, self.stall = value, 0
        else:
            self.stall += 1
            if self.stall >= 10:
                self.theta, self.stall = self.theta / 2, 0
        if self.best - self.target <= 1e-6 * self.best or self.theta < 1e-4:
            return False
        g = np.asarray(self.a @ x, dtype=np.float64) - (self.w > self.lam)
        norm = float(g @ g)
        if norm == 0:
            return False
        self.lam = np.maximum(self.lam - self.theta * max(value - self.target, 0.0) / norm * g, 0.0)
        return True


def _lagrangian_bound(
    problem: CoverageProblem, budget: Budget, start: BoolArray, target: float, steps: int
) -> float:
    """Best Lagrangian upper bound found by ``steps`` subgradient steps (the module notes give the bound).

    ``target`` (a value reached, e.g. greedy's) sets the Polyak step length; the step factor halves after ten
    steps without a better bound. Starting from ``lambda = w`` the first bound is the submodular bound of
    the empty prefix.
    """
    if steps <= 0:
        return math.inf
    rows = np.flatnonzero(~start & (problem.weights > 0))
    money = math.inf if budget.money is None else float(budget.money)
    sites = np.flatnonzero(~problem.existing & (problem.costs <= money + _TOL))
    constant = float(problem.weights[start].sum())
    if len(rows) == 0 or len(sites) == 0 or budget.cameras == 0:
        return constant
    a = problem.coverage[rows][:, sites].astype(np.float64).tocsr()
    a_t = a.T.tocsr()
    w = problem.weights[rows]
    costs = problem.costs[sites]
    descent = _Subgradient(a, w, target, w.copy())
    for _ in range(steps):
        v = np.asarray(a_t @ descent.lam, dtype=np.float64)
        completion, x = _relaxed_choice(v, budget.cameras, costs, None if budget.money is None else money)
        if not descent.step(constant + float(np.maximum(w - descent.lam, 0.0).sum()) + completion, x):
            break
    return descent.best


# ------------------------------------------------------------------------------------------- local search

_LAGRANGIAN_STARTS: Final = 60
"""Local searches started from the sets the Lagrangian relaxation picks along its subgradient steps."""
_MERGE_POOL: Final = 20
"""Best distinct local optima whose sites the restricted MILP may choose from (solution merging)."""
_MERGE_ROUNDS: Final = 1


@dataclass(frozen=True, eq=False)
class _Space:
    """The reduced model as the local search sees it: indices are model columns, not site indices."""

    a: sp.csr_matrix  # merged rows x model columns, float64 0/1
    a_t: sp.csr_matrix  # model columns x merged rows
    weight: FloatArray
    cost: FloatArray
    cameras: int | None
    money: float | None
    tol: float
    """Smallest improvement taken (rounding in sums of weights is far smaller)."""

    @classmethod
    def of(cls, model: _Model, problem: CoverageProblem, budget: Budget) -> _Space:
        a = model.matrix.astype(np.float64).tocsr()
        weight = model.row_weight
        return cls(
            a=a,
            a_t=a.T.tocsr(),
            weight=weight,
            # Costs only matter to a money budget (and would otherwise reorder ties).
            cost=problem.costs[model.columns] if budget.money is not None else np.zeros(len(model.columns)),
            cameras=budget.cameras,
            money=budget.money,
            tol=1e-9 * max(1.0, float(weight.sum())),
        )

    @property
    def n_columns(self) -> int:
        return int(self.a.shape[1])

    def indicator(self, columns: IntArray) -> FloatArray:
        x = np.zeros(self.n_columns, dtype=np.float64)
        x[columns] = 1.0
        return x

    def value(self, columns: IntArray) -> float:
        """Weight of the model rows the columns cover."""
        return float(self.weight[self.a @ self.indicator(columns) > 0.5].sum())

    def rows_of(self, column: int) -> IntArray:
        rows: IntArray = self.a_t.indices[self.a_t.indptr[column] : self.a_t.indptr[column + 1]]
        return rows


def _within(space: _Space, columns: IntArray) -> IntArray:
    """Columns (sorted, unique), keeping the first ones in the order given while the budget allows."""
    kept = np.asarray(columns, dtype=np.int64)
    _, first = np.unique(kept, return_index=True)
    kept = kept[np.sort(first)]
    if space.cameras is not None:
        kept = kept[: space.cameras]
    if space.money is not None:
        kept = kept[np.cumsum(space.cost[kept]) <= space.money + _TOL]
    return np.sort(kept)


def _swap_search(space: _Space, start: IntArray) -> tuple[IntArray, int]:
    """Best-improvement interchange (Teitz & Bart 1968) from ``start``: a 1-swap local optimum.

    A move takes one column out and puts one in, or puts one in while the budget has room; the best move
    (largest gain in covered weight; ties broken by position, so the search is deterministic) is made until
    none gains more than ``space.tol``. Every move of a round is priced at once with sparse
    products: with ``c_i`` the chosen columns covering row ``i``, putting ``k`` in gains ``g_k = sum_{i in k,
    c_i = 0} w_i``, taking ``j`` out loses ``l_j = sum_{i in j, c_i = 1} w_i``, and the swap gains ``g_k -
    l_j + o_jk`` where ``o_jk`` is the weight only ``j`` covers that ``k`` covers too. ``o`` is sparse, so the
    best swap for ``k`` is either at a nonzero ``o_jk`` or the cheapest removal the budget allows with ``k``.

    Returns
    -------
    columns, moves
        The local optimum (sorted) and the number of moves made.
    """
    a, a_t, w = space.a, space.a_t, space.weight
    n_rows, m = a.shape
    chosen = np.zeros(m, dtype=bool)
    chosen[start] = True
    x = chosen.astype(np.float64)
    counts = np.asarray(a @ x, dtype=np.float64)
    # For a row covered once, the sum of the covering chosen columns' indices is that column.
    owner_sum = np.asarray(a @ (x * np.arange(m, dtype=np.float64)), dtype=np.float64)
    moves = 0
    while True:
        members = np.flatnonzero(chosen)
        room = space.cameras is None or len(members) < space.cameras
        if not room and len(members) == 0:
            break
        once = np.flatnonzero(counts == 1)
        gain = np.asarray(a_t @ np.where(counts == 0, w, 0.0), dtype=np.float64)
        owner = np.rint(owner_sum[once]).astype(np.int64)
        loss = np.bincount(owner, weights=w[once], minlength=m)
        # "Out" options r: the empty slot first (if the budget has room), then the chosen columns.
        out = np.concatenate([[-1] if room else [], members]).astype(np.int64)
        out_loss = np.where(out >= 0, loss[np.maximum(out, 0)], 0.0)
        out_cost = np.where(out >= 0, space.cost[np.maximum(out, 0)], 0.0)
        slack = math.inf if space.money is None else space.money - float(space.cost[members].sum())
        cand = np.flatnonzero(~chosen & (gain > 0))
        # The cheapest removal the budget allows with each k: a prefix of the outs by falling cost.
        by_cost = np.lexsort((np.arange(len(out)), -out_cost))
        running = np.minimum.accumulate(out_loss[by_cost])
        first_min = np.flatnonzero(np.r_[True, running[1:] < running[:-1]])
        holder = by_cost[first_min[np.searchsorted(first_min, np.arange(len(out)), side="right") - 1]]
        allowed = np.searchsorted(-out_cost[by_cost], -(space.cost[cand] - slack) + _TOL, side="right")
        fits = allowed > 0
        base_r = holder[np.maximum(allowed - 1, 0)][fits]
        base_k = cand[fits]
        base = gain[base_k] - out_loss[base_r]
        # Swaps that keep some of what j alone covered.
        slot = np.zeros(m, dtype=np.int64)
        slot[members] = np.arange(len(members)) + int(room)
        overlap = (sp.csr_matrix((w[once], (slot[owner], once)), shape=(len(out), n_rows)) @ a).tocoo()
        r, k = overlap.row.astype(np.int64), overlap.col.astype(np.int64)
        keep = ~chosen[k] & (space.cost[k] <= slack + out_cost[r] + _TOL)
        r, k = r[keep], k[keep]
        swap = gain[k] + overlap.data[keep] - out_loss[r]
        deltas = np.concatenate([base, swap])
        if len(deltas) == 0:
            break
        top = float(deltas.max())
        if not top > space.tol:
            break
        rs, ks = np.concatenate([base_r, r]), np.concatenate([base_k, k])
        ties = np.flatnonzero(deltas == top)
        best = int(ties[np.lexsort((ks[ties], rs[ties]))[0]])
        j, k_in = int(out[rs[best]]), int(ks[best])
        if j >= 0:
            rows = space.rows_of(j)
            counts[rows] -= 1.0
            owner_sum[rows] -= j
            chosen[j] = False
        rows = space.rows_of(k_in)
        counts[rows] += 1.0
        owner_sum[rows] += k_in
        chosen[k_in] = True
        moves += 1
    return np.flatnonzero(chosen).astype(np.int64), moves


def _lagrangian_starts(space: _Space, target: float, steps: int) -> list[IntArray]:
    """Sets the Lagrangian relaxation picks along ``steps`` subgradient steps, best covering first.

    The relaxation of :func:`_lagrangian_bound` (on the reduced model) chooses the columns with the largest
    ``v_j = sum_i a_ij lambda_i`` (per cost for money budgets) that fit the budget; near good multipliers
    those are good, diverse starting points for :func:`_swap_search` (the Lagrangian heuristic). Distinct
    sets only; ties in value: the earlier step first.
    """
    a, a_t, w = space.a, space.a_t, space.weight
    descent = _Subgradient(a, w, target, w.copy())
    found: dict[bytes, tuple[float, int, IntArray]] = {}
    for step in range(steps):
        v = np.asarray(a_t @ descent.lam, dtype=np.float64)
        completion, x = _relaxed_choice(v, space.cameras, space.cost, space.money)
        key = v if space.money is None else np.where(space.cost > 0, v / np.maximum(space.cost, _TOL), np.inf)
        order = np.argsort(-key, kind="stable")
        columns = _within(space, order[v[order] > 0])
        tag = columns.tobytes()
        if tag not in found:
            found[tag] = (space.value(columns), step, columns)
        if not descent.step(float(np.maximum(w - descent.lam, 0.0).sum()) + completion, x):
            break
    ranked = sorted(found.values(), key=lambda item: (-item[0], item[1]))
    return [columns for _, _, columns in ranked]


def _merge(space: _Space, pool: Sequence[IntArray], time_limit_s: float) -> IntArray | None:
    """The best solution using only the columns of ``pool`` (solution merging), by HiGHS; ``None`` if none.

    The restricted model is small (a few hundred columns for a pool of local optima), so HiGHS usually proves
    it optimal in well under a second; stopped by ``time_limit_s`` it returns what it has.
    """
    columns = np.unique(np.concatenate(list(pool))) if pool else np.zeros(0, np.int64)
    if len(columns) == 0 or time_limit_s <= 0:
        return None
    sub = space.a[:, columns].tocsr()
    rows = np.flatnonzero(np.diff(sub.indptr) > 0)
    arrays = _model_arrays(sub[rows], space.weight[rows], space.cost[columns], space.cameras, space.money)
    res = milp(
        arrays.c,
        integrality=arrays.integrality,
        bounds=Bounds(arrays.lower_bounds, arrays.upper_bounds),
        constraints=[LinearConstraint(arrays.matrix, arrays.row_lower, arrays.row_upper)],
        options={"time_limit": float(time_limit_s), "mip_rel_gap": 0.0, "disp": False},
    )
    x: Any = getattr(res, "x", None)
    if x is None:
        return None
    return _within(space, columns[np.asarray(x[: len(columns)]) > 0.5])


def _incumbent(space: _Space, first: IntArray, deadline: float) -> IntArray:
    """A strong feasible solution of the plain model, found before HiGHS starts (and handed to it).

    1. :func:`_swap_search` from ``first`` (the greedy picks);
    2. :func:`_swap_search` from the best :data:`_LAGRANGIAN_STARTS` sets of :func:`_lagrangian_starts`;
    3. up to :data:`_MERGE_ROUNDS` rounds of :func:`_merge` over the best :data:`_MERGE_POOL` local optima,
       each followed by a swap search, while they improve.

    The work is a fixed amount (so the answer does not depend on the machine's speed) unless ``deadline``
    (a :func:`time.perf_counter` value) passes first, which stops it where it is.
    """
    pool: dict[bytes, tuple[float, IntArray]] = {}

    def keep(columns: IntArray) -> float:
        local, _ = _swap_search(space, columns)
        value = space.value(local)
        pool.setdefault(local.tobytes(), (value, local))
        return value

    def ranked() -> list[IntArray]:
        # Best value first; ties by the sets' bytes, so the order never depends on arrival.
        return [c for _, c in sorted(pool.values(), key=lambda item: (-item[0], item[1].tobytes()))]

    target = keep(_within(space, first))
    for columns in _lagrangian_starts(space, target, steps=300)[:_LAGRANGIAN_STARTS]:
        if time.perf_counter() >= deadline:
            break
        keep(columns)
    for _ in range(_MERGE_ROUNDS):
        best = ranked()[0]
        merged = _merge(space, ranked()[:_MERGE_POOL], deadline - time.perf_counter())
        if merged is None or keep(merged) <= space.value(best) + space.tol:
            break
    return ranked()[0]


# ---------------------------------------------------------------------------------------------------- MILP


MilpEngine = Literal["highspy", "scipy"]
"""Which HiGHS binding solves the MILP: ``highspy`` (HiGHS's own package; takes the warm start) or
:func:`scipy.optimize.milp` (cannot take a starting solution)."""

_HIGHSPY_OPTIONS: Final[Mapping[str, bool | float]] = MappingProxyType(
    {
        # With the local-search incumbent handed in, HiGHS's own primal heuristics rarely beat it and are
        # costly: on the benchmark's 150-camera instance HiGHS took 18.5 s with them and 11.6 s without.
        # Branching still finds better solutions when there are any.
        "mip_heuristic_effort": 0.0,
        "mip_heuristic_run_feasibility_jump": False,
        "mip_heuristic_run_rins": False,
        "mip_heuristic_run_rens": False,
        "mip_heuristic_run_root_reduced_cost": False,
    }
)
"""HiGHS options the ``highspy`` engine sets when it hands HiGHS a warm start."""


@dataclass(frozen=True, slots=True)
class MilpResult:
    """The exact model's answer, reported as HiGHS gave it.

    Attributes
    ----------
    status
        HiGHS's model status text, e.g. ``"Optimal"``, ``"Time limit reached"``, ``"Infeasible"``, or
        ``"Not run"`` when the reductions left nothing to decide.
    message
        The engine's full message (:func:`scipy.optimize.milp`'s includes HiGHS's status code).
    is_optimal
        True only if HiGHS finished with status Optimal, i.e. proved the solution within ``mip_rel_gap``.
    has_solution
        Whether a feasible solution is known: HiGHS's, or the warm start (a time-limited run may have none).
    existing, picks
        Existing sites (by index) and the chosen new sites in greedy order (:func:`greedy_order`); picks whose
        removal loses nothing are dropped. Without a solution ``picks`` is empty.
    objective
        Weight covered by the selected sites (``f``); ``None`` without a solution.
    backup_objective
        With ``backup=True``: weight of the demand points covered at least twice; else ``None``.
    model_objective
        What was maximised: ``objective + backup_weight * backup_objective`` (or just ``objective``).
    dual_bound
        HiGHS's upper bound on ``model_objective`` (with the reduced-away constant added back).
    mip_gap
        HiGHS's relative gap as HiGHS measured it, against its incumbent: with ``highspy`` on the whole
        objective (the constant is the model's objective offset); with ``scipy`` on the reduced model
        (constant left out, so never smaller than ``gap``).
    gap
        ``(dual_bound - model_objective) / dual_bound`` on the whole objective, with the best solution known
        (HiGHS's or the warm start, whichever is better).
    cost
        Total cost of the picks.
    model_rows, model_binaries
        Size of the model handed to HiGHS (coverage rows after merging, site variables after dropping
        dominated sites).
    dominated_sites
        Sites dropped because another site covers a superset for no more cost.
    node_count
        Branch-and-bound nodes HiGHS explored.
    engine
        The HiGHS binding used (:data:`MilpEngine`), or ``"none"`` when HiGHS was not run.
    start_objective
        ``model_objective`` of the warm start (greedy improved by local search and solution merging) found
        before HiGHS ran; ``None`` without one.
    found_by
        Who found the solution reported: ``"HiGHS"``, ``"local search"`` (HiGHS found nothing better than
        the warm start) or ``"none"``.
    start_s, highs_s
        Wall-clock seconds spent finding the warm start, and in HiGHS (not compared: they vary run to run).
    """

    status: str
    message: str
    is_optimal: bool
    has_solution: bool
    existing: tuple[int, ...]
    picks: tuple[int, ...]
    objective: float | None
    backup_objective: float | None
    model_objective: float | None
    dual_bound: float | None
    mip_gap: float | None
    gap: float | None
    cost: float
    model_rows: int
    model_binaries: int
    dominated_sites: int
    node_count: int | None
    engine: str = "none"
    start_objective: float | None = None
    found_by: str = "none"
    start_s: float = field(default=0.0, compare=False)
    highs_s: float = field(default=0.0, compare=False)

    @property
    def sites(self) -> tuple[int, ...]:
        """All selected sites: existing, then picks."""
        return self.existing + self.picks

    @property
    def summary(self) -> str:
        """One line: status, whether a solution exists, and the gap."""
        if self.is_optimal:
            text = "optimal"
        elif self.has_solution:
            text = f"{self.status.lower()} with a feasible solution"
        else:
            text = f"{self.status.lower()} without a solution"
        return text if self.gap is None else f"{text}, gap {self.gap:.3%}"


@dataclass(frozen=True, slots=True)
class _Model:
    """The reduced model: which original sites the binaries are, the merged rows and the constant."""

    columns: IntArray
    matrix: sp.csr_matrix  # merged rows x columns
    row_weight: FloatArray
    row_existing: IntArray  # existing cameras covering each merged row (backup model only)
    constant: float
    dominated: int
    stand_in: IntArray
    """For every site: the model column that can replace it without loss (itself, or the best site
    dominating it), or ``-1`` (existing, or it covers nothing the model counts)."""


@dataclass(frozen=True, eq=False)
class _Arrays:
    """A model as HiGHS takes it: minimise ``c @ v`` s.t. ``row_lower <= matrix @ v <= row_upper``,
    ``lower_bounds <= v <= upper_bounds``, ``v_j`` integer where ``integrality_j`` is 1; ``v = [x, y(, u)]``.
    """

    c: FloatArray
    integrality: FloatArray
    lower_bounds: FloatArray
    upper_bounds: FloatArray
    matrix: sp.csr_matrix
    row_lower: FloatArray
    row_upper: FloatArray


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What an engine returned, in the terms of the original objective (maximised)."""

    status: str
    message: str
    optimal: bool
    x: FloatArray | None
    dual_bound: float | None
    mip_gap: float | None
    nodes: int | None


def solve_milp(
    problem: CoverageProblem,
    budget: Budget,
    *,
    time_limit_s: float,
    mip_rel_gap: float = 1e-3,
    backup: bool = False,
    backup_weight: float = 0.5,
    engine: MilpEngine | None = None,
    warm_start: bool = True,
) -> MilpResult:
    """Solve the maximal covering model exactly with HiGHS (``highspy`` or :func:`scipy.optimize.milp`).

    Model: binaries ``x_j`` (new site ``j`` chosen), ``0 <= y_i <= 1`` (demand row ``i`` covered);
    maximise ``sum w_i y_i`` subject to ``y_i <= sum_j a_ij x_j``, ``sum x_j <= cameras``,
    ``sum c_j x_j <= money``; existing sites are fixed chosen and leave the model with the rows they cover.
    With ``backup``: also ``0 <= u_i <= y_i``, ``y_i + u_i <= e_i + sum_j a_ij x_j`` (``e_i`` existing
    cameras covering ``i``), maximising ``sum w_i y_i + backup_weight * sum w_i u_i``.

    Warm start: HiGHS finds good solutions slowly on large instances, so first the greedy picks are improved
    by swap local search from several starts (greedy's, and the sets the Lagrangian relaxation picks), and
    the best local optima are merged by solving the model restricted to their sites. ``highspy`` takes the
    result as its starting incumbent (and then skips its own costly primal heuristics); :func:`scipy.optimize.
    milp` cannot take one, so with ``scipy`` it is only the fallback. Either way the better of HiGHS's
    solution and the start is reported, with the gap to HiGHS's dual bound. (An objective cut-off row
    ``sum w_i y_i >= start`` is the scipy-only alternative; it made HiGHS slower on the benchmark.)

    Parameters
    ----------
    problem, budget
        As for :func:`solve_greedy`.
    time_limit_s
        Wall-clock limit for the warm start and HiGHS together (seconds, > 0); the warm start stops by
        half of it.
    mip_rel_gap
        HiGHS stops when its relative gap is at most this (default 0.1 %); 0 asks for a proof of optimality.
    backup
        Add backup (second) coverage to the objective (Hogan & ReVelle 1986); the warm start is then the
        plain model's, used only as a fallback answer: it is not handed to HiGHS.
    backup_weight
        Weight of backup coverage relative to first coverage (> 0).
    engine
        :data:`MilpEngine`; ``None`` (default): ``highspy`` when it is installed, else ``scipy``.
    warm_start
        Find and use the warm start (default); ``False`` hands HiGHS the bare model.

    Returns
    -------
    MilpResult
        Never optimal unless HiGHS said Optimal.

    Raises
    ------
    DataError
        ``time_limit_s``, ``mip_rel_gap`` or ``backup_weight`` is invalid, or ``engine="highspy"`` is asked
        for and highspy is not installed.
    """
    started = time.perf_counter()
    if not (math.isfinite(time_limit_s) and time_limit_s > 0):
        raise DataError(f"time_limit_s = {time_limit_s!r} must be a finite number > 0")
    if not (math.isfinite(mip_rel_gap) and 0 <= mip_rel_gap < 1):
        raise DataError(f"mip_rel_gap = {mip_rel_gap!r} must be within [0, 1)")
    if backup and not (math.isfinite(backup_weight) and backup_weight > 0):
        raise DataError(f"backup_weight = {backup_weight!r} must be a finite number > 0")
    if engine is None:
        engine = "highspy" if _HAVE_HIGHSPY else "scipy"
    if engine not in ("highspy", "scipy"):
        raise DataError(f"engine = {engine!r} must be 'highspy' or 'scipy'")
    if engine == "highspy" and not _HAVE_HIGHSPY:
        raise DataError("engine='highspy' needs the highspy package (pip install highspy)")
    existing = tuple(int(j) for j in np.flatnonzero(problem.existing))
    lam = backup_weight if backup else 0.0
    model = _reduce_backup(problem, lam) if backup else _reduce(problem, budget)
    n_rows, n_cols = model.matrix.shape
    size = {"model_rows": n_rows, "model_binaries": n_cols, "dominated_sites": model.dominated}
    if n_rows == 0 or n_cols == 0 or budget.cameras == 0:
        fixed_value = _model_value(problem, existing, lam)
        return MilpResult(
            status="Not run",
            message="nothing to decide: no new site can add to the objective",
            is_optimal=True,
            has_solution=True,
            existing=existing,
            picks=(),
            objective=covered_weight(problem, existing),
            backup_objective=_backup_weight(problem, existing) if backup else None,
            model_objective=fixed_value,
            dual_bound=fixed_value,
            mip_gap=0.0,
            gap=0.0,
            cost=0.0,
            node_count=0,
            **size,
        )
    start: list[int] | None = None
    start_value: float | None = None
    if warm_start:
        start = _warm_start(problem, budget, model if not backup else None, started + time_limit_s / 2)
        start = _prune(problem, existing, start, lam)
        start_value = _model_value(problem, [*existing, *start], lam)
    start_s = time.perf_counter() - started
    arrays = _model_arrays(
        model.matrix,
        model.row_weight,
        problem.costs[model.columns],
        budget.cameras,
        budget.money,
        backup_weight=lam,
        row_existing=model.row_existing,
    )
    left = max(time_limit_s - (time.perf_counter() - started), 1e-3)
    t0 = time.perf_counter()
    if engine == "highspy":
        # With backup coverage HiGHS is not given the start: property tests found it then proving a
        # worse solution "Optimal" (the start still counts as a fallback below, valued exactly).
        start_x = None if start is None or backup else _start_vector(model, start, lam)
        outcome = _run_highspy(arrays, model.constant, left, mip_rel_gap, start_x)
    else:
        outcome = _run_scipy(arrays, model.constant, left, mip_rel_gap)
    highs_s = time.perf_counter() - t0
    chosen: list[int] | None = None
    value: float | None = None
    if outcome.x is not None:
        chosen = _prune(problem, existing, [int(j) for j in model.columns[outcome.x[:n_cols] > 0.5]], lam)
        value = _model_value(problem, [*existing, *chosen], lam)
    found_by = "none" if chosen is None else "HiGHS"
    if start is not None and start_value is not None and (value is None or start_value >= value - _TOL):
        # HiGHS found nothing better than the start it was given (or could not be given it).
        chosen, value, found_by = start, start_value, "local search"
    picks: tuple[int, ...] = ()
    objective: float | None = None
    backup_objective: float | None = None
    if chosen is not None:
        picks = greedy_order(problem, [*existing, *chosen])[len(existing) :]
        objective = covered_weight(problem, existing + picks)
        backup_objective = _backup_weight(problem, existing + picks) if backup else None
    dual_bound = outcome.dual_bound
    if dual_bound is not None and value is not None:
        dual_bound = max(dual_bound, value)  # HiGHS's bound is within its tolerance of the primal value
    gap = None
    if dual_bound is not None and value is not None:
        gap = (dual_bound - value) / dual_bound if dual_bound > 0 else 0.0
    return MilpResult(
        status=outcome.status,
        message=outcome.message,
        is_optimal=outcome.optimal and chosen is not None,
        has_solution=chosen is not None,
        existing=existing,
        picks=picks,
        objective=objective,
        backup_objective=backup_objective,
        model_objective=value,
        dual_bound=dual_bound,
        mip_gap=outcome.mip_gap,
        gap=gap,
        cost=float(problem.costs[list(picks)].sum()),
        node_count=outcome.nodes,
        engine=engine,
        start_objective=start_value,
        found_by=found_by,
        start_s=start_s,
        highs_s=highs_s,
        **size,
    )


def _warm_start(problem: CoverageProblem, budget: Budget, model: _Model | None, deadline: float) -> list[int]:
    """New sites of a strong feasible solution of the plain model (:func:`_incumbent` from greedy's picks).

    ``model`` is the plain model if already reduced (``None``: reduce it here, e.g. for the backup model).
    """
    plain = model if model is not None else _reduce(problem, budget)
    if plain.matrix.shape[0] == 0 or plain.matrix.shape[1] == 0:
        return []
    greedy = solve_greedy(problem, budget, lagrangian_steps=0)
    first = plain.stand_in[list(greedy.picks)] if greedy.picks else np.zeros(0, np.int64)
    space = _Space.of(plain, problem, budget)
    columns = _incumbent(space, first[first >= 0], deadline)
    return [int(j) for j in plain.columns[columns]]


def _start_vector(model: _Model, sites: Sequence[int], lam: float) -> FloatArray:
    """The model's variables ``[x, y(, u)]`` for the new sites ``sites`` (each must be a model column)."""
    x = np.zeros(model.matrix.shape[1], dtype=np.float64)
    columns = model.stand_in[list(sites)] if sites else np.zeros(0, np.int64)
    if (columns < 0).any():
        raise ValueError("a warm-start site is not a column of the model")  # a bug, not bad input
    x[columns] = 1.0
    reach = np.asarray(model.matrix.astype(np.float64) @ x, dtype=np.float64) + model.row_existing
    y = np.minimum(reach, 1.0)
    if lam == 0:
        return np.concatenate([x, y])
    return np.concatenate([x, y, np.clip(reach - 1.0, 0.0, 1.0)])


def _model_arrays(
    matrix: sp.csr_matrix,
    row_weight: FloatArray,
    cost: FloatArray,
    cameras: int | None,
    money: float | None,
    *,
    backup_weight: float = 0.0,
    row_existing: IntArray | None = None,
) -> _Arrays:
    """The sparse model (see :func:`solve_milp`) over ``matrix``'s rows and columns."""
    n_rows, n_cols = matrix.shape
    a = matrix.astype(np.float64)
    eye = sp.identity(n_rows, format="csr", dtype=np.float64)
    w = row_weight
    e = np.zeros(n_rows, np.int64) if row_existing is None else row_existing
    if backup_weight == 0:
        # variables [x (n_cols), y (n_rows)]; y_i - sum_j a_ij x_j <= 0
        blocks = [sp.hstack([-a, eye], format="csr")]
        upper = [np.zeros(n_rows)]
        c = np.concatenate([np.zeros(n_cols), -w])
        lower_bounds = np.zeros(n_cols + n_rows)
        n_extra = n_rows
    else:
        # variables [x, y, u]; y + u - sum a x <= e; u - y <= 0; y >= 1 where e >= 1
        blocks = [
            sp.hstack([-a, eye, eye], format="csr"),
            sp.hstack([sp.csr_matrix((n_rows, n_cols)), -eye, eye], format="csr"),
        ]
        upper = [e.astype(np.float64), np.zeros(n_rows)]
        c = np.concatenate([np.zeros(n_cols), -w, -backup_weight * w])
        lower_bounds = np.concatenate([np.zeros(n_cols), (e >= 1).astype(np.float64), np.zeros(n_rows)])
        n_extra = 2 * n_rows
    lower = [np.full(block.shape[0], -np.inf) for block in blocks]
    pad = sp.csr_matrix((1, n_extra), dtype=np.float64)
    if cameras is not None:
        blocks.append(sp.hstack([sp.csr_matrix(np.ones((1, n_cols))), pad], format="csr"))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([float(cameras)]))
    if money is not None:
        blocks.append(sp.hstack([sp.csr_matrix(cost.reshape(1, -1)), pad], format="csr"))
        lower.append(np.array([-np.inf]))
        upper.append(np.array([float(money)]))
    return _Arrays(
        c=c,
        integrality=np.concatenate([np.ones(n_cols), np.zeros(n_extra)]),
        lower_bounds=lower_bounds,
        upper_bounds=np.ones(n_cols + n_extra),
        matrix=sp.vstack(blocks, format="csr"),
        row_lower=np.concatenate(lower),
        row_upper=np.concatenate(upper),
    )


def _run_scipy(arrays: _Arrays, constant: float, time_limit_s: float, gap: float) -> _Outcome:
    """HiGHS through :func:`scipy.optimize.milp` (no warm start possible)."""
    res = milp(
        arrays.c,
        integrality=arrays.integrality,
        bounds=Bounds(arrays.lower_bounds, arrays.upper_bounds),
        constraints=[LinearConstraint(arrays.matrix, arrays.row_lower, arrays.row_upper)],
        options={"time_limit": float(time_limit_s), "mip_rel_gap": float(gap), "disp": False},
    )
    x: Any = getattr(res, "x", None)
    dual = getattr(res, "mip_dual_bound", None)
    mip_gap = getattr(res, "mip_gap", None)
    nodes = getattr(res, "mip_node_count", None)
    return _Outcome(
        status=_highs_status(str(res.message)),
        message=str(res.message),
        optimal=bool(res.status == 0),
        x=None if x is None else np.asarray(x, dtype=np.float64),
        dual_bound=None if dual is None or not math.isfinite(dual) else constant - float(dual),
        mip_gap=None if mip_gap is None or not math.isfinite(mip_gap) else float(mip_gap),
        nodes=None if nodes is None else int(nodes),
    )


def _quiet_highs(highspy: Any) -> Any:
    """A ``highspy.Highs`` that prints nothing, not even HiGHS's banner.

    ``highspy.Highs()`` sets up its callbacks while constructing, and that prints the banner (the first time
    in a process, from C++, to the process's standard output: past ``sys.stdout``, into a CLI's JSON), before
    any option can be set. Output is turned off just before that set-up. Should highspy change how it
    constructs, the banner may come back; nothing else changes.
    """

    class QuietHighs(highspy.Highs):  # type: ignore[misc]
        def enableCallbacks(self) -> Any:  # noqa: N802 - highspy's name
            self.setOptionValue("output_flag", False)
            return super().enableCallbacks()

    return QuietHighs()


def _run_highspy(
    arrays: _Arrays, constant: float, time_limit_s: float, gap: float, start: FloatArray | None
) -> _Outcome:
    """HiGHS through its own package, with ``start`` (the model's variables) as the first incumbent."""
    import highspy

    a = arrays.matrix.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_ = a.shape[1]
    lp.num_row_ = a.shape[0]
    lp.offset_ = -constant  # so HiGHS's gap is on the whole objective
    lp.col_cost_ = arrays.c
    lp.col_lower_ = arrays.lower_bounds
    lp.col_upper_ = arrays.upper_bounds
    lp.row_lower_ = arrays.row_lower
    lp.row_upper_ = arrays.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = a.shape[1]
    lp.a_matrix_.num_row_ = a.shape[0]
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if v else highspy.HighsVarType.kContinuous for v in arrays.integrality
    ]
    h = _quiet_highs(highspy)  # output off
    try:
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(gap))
        h.passModel(lp)
        if start is not None:
            for name, option in _HIGHSPY_OPTIONS.items():
                h.setOptionValue(name, option)
            solution = highspy.HighsSolution()
            solution.col_value = start.tolist()
            solution.value_valid = True
            h.setSolution(solution)
        h.run()
        status = h.getModelStatus()
        text = h.modelStatusToString(status)
        info = h.getInfo()
        has_x = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_x else None
        dual = float(info.mip_dual_bound)
        mip_gap = float(info.mip_gap)
        nodes = int(info.mip_node_count)
        version = h.version()
    finally:
        h.clear()
    return _Outcome(
        status=text,
        message=f"HiGHS {version} (highspy): {text}; primal solution {'feasible' if has_x else 'none'}",
        optimal=status == highspy.HighsModelStatus.kOptimal,
        x=x,
        dual_bound=-dual if math.isfinite(dual) else None,
        mip_gap=mip_gap if math.isfinite(mip_gap) else None,
        nodes=nodes,
    )


_HIGHS_STATUS = re.compile(r"HiGHS Status (\d+): (.*)\)\s*$")
_MODEL_STATUS = re.compile(r"model_status is ([^;]*)")


def _highs_status(message: str) -> str:
    """HiGHS's model status text from scipy's message, e.g. ``"Time limit reached"``."""
    found = _HIGHS_STATUS.search(message)
    if found is None:
        return message
    text = found.group(2)
    detail = _MODEL_STATUS.search(text)
    return (detail.group(1) if detail else text).strip()


def _reduce(problem: CoverageProblem, budget: Budget) -> _Model:
    """Exact reductions of the plain model: fixed rows out, dominated sites out, identical rows merged."""
    new_cols = np.flatnonzero(~problem.existing)
    covered = _covered_mask(problem, np.flatnonzero(problem.existing))
    constant = float(problem.weights[covered].sum())
    rows = np.flatnonzero(~covered & (problem.weights > 0))
    a = problem.coverage[rows][:, new_cols].tocsc()
    used = np.diff(a.indptr) > 0
    cost = problem.costs[new_cols] if budget.money is not None else np.zeros(len(new_cols))
    dominated, by = _dominated_columns(a, cost)
    dominated &= used
    keep = used & ~dominated
    a = a[:, np.flatnonzero(keep)].tocsr()
    matrix, row_weight, _ = _merge_rows(a, problem.weights[rows], np.zeros(len(rows), np.int64))
    position = np.cumsum(keep) - 1  # column of each kept new site in the model
    stand_in = np.full(problem.n_sites, -1, dtype=np.int64)
    stand_in[new_cols[keep]] = position[keep]
    stand_in[new_cols[dominated]] = position[by[dominated]]
    return _Model(
        columns=new_cols[keep],
        matrix=matrix,
        row_weight=row_weight,
        row_existing=np.zeros(matrix.shape[0], np.int64),
        constant=constant,
        dominated=int(dominated.sum()),
        stand_in=stand_in,
    )


def _reduce_backup(problem: CoverageProblem, lam: float) -> _Model:
    """Reductions valid with backup coverage: rows with two existing cameras out, identical rows merged."""
    new_cols = np.flatnonzero(~problem.existing)
    e = _cover_counts(problem, np.flatnonzero(problem.existing))
    w = problem.weights
    a_new = problem.coverage[:, new_cols].tocsr()
    reach = np.diff(a_new.indptr) > 0
    # Rows at their maximum already (two existing cameras) or that no new site reaches leave the model.
    fixed = (e >= 2) | ~reach
    constant = float((w * ((e >= 1) + lam * (e >= 2)))[fixed].sum())
    rows = np.flatnonzero(~fixed & (w > 0))
    a = a_new[rows].tocsc()
    used = np.diff(a.indptr) > 0
    a = a[:, np.flatnonzero(used)].tocsr()
    matrix, row_weight, row_existing = _merge_rows(a, w[rows], e[rows])
    stand_in = np.full(problem.n_sites, -1, dtype=np.int64)
    stand_in[new_cols[used]] = np.arange(int(used.sum()))
    return _Model(
        columns=new_cols[used],
        matrix=matrix,
        row_weight=row_weight,
        row_existing=row_existing,
        constant=constant,
        dominated=0,
        stand_in=stand_in,
    )


def _dominated_columns(a: sp.csc_matrix, cost: FloatArray) -> tuple[BoolArray, IntArray]:
    """Sites whose rows another site covers too, for no more cost (ties: the lower index survives).

    ``j`` is dominated by ``k`` when ``rows(j) ⊆ rows(k)`` and ``(cost_k, -|rows(k)|, k) < (cost_j,
    -|rows(j)|, j)``: swapping ``j`` for ``k`` never loses weight nor breaks the budget, and the order is
    strict, so an undominated site dominates every site it outranks: dropping all dominated sites is exact.

    Returns
    -------
    dominated, by
        Which columns are dominated, and for each the best-ranked column dominating it (``-1`` if none). That
        column is itself undominated: anything dominating it would dominate the first and rank better.
    """
    m = a.shape[1]
    binary = a.astype(np.int32)
    overlap = (binary.T @ binary).tocoo()
    size = np.diff(a.indptr)
    j, k, shared = overlap.row, overlap.col, overlap.data
    subset = (j != k) & (shared == size[j])
    better = (cost[k] < cost[j]) | (
        (cost[k] == cost[j]) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
    )
    pick = subset & better
    dj, dk = j[pick], k[pick]
    dominated = np.zeros(m, dtype=bool)
    dominated[dj] = True
    by = np.full(m, -1, dtype=np.int64)
    # Best rank first within each dominated column, then keep the first row of each.
    order = np.lexsort((dk, -size[dk], cost[dk], dj))
    dj, dk = dj[order], dk[order]
    first = np.ones(len(dj), dtype=bool)
    first[1:] = dj[1:] != dj[:-1]
    by[dj[first]] = dk[first]
    return dominated, by


def _merge_rows(
    a: sp.csr_matrix, weights: FloatArray, existing: IntArray
) -> tuple[sp.csr_matrix, FloatArray, IntArray]:
    """Merge rows with the same sites (and existing count), adding their weights; first occurrence order."""
    a = a.tocsr()
    a.sort_indices()
    groups: dict[tuple[int, bytes], int] = {}
    first: list[int] = []
    group_of = np.empty(a.shape[0], dtype=np.int64)
    indptr, indices = a.indptr, a.indices
    for i in range(a.shape[0]):
        key = (int(existing[i]), indices[indptr[i] : indptr[i + 1]].tobytes())
        g = groups.setdefault(key, len(first))
        if g == len(first):
            first.append(i)
        group_of[i] = g
    merged = np.zeros(len(first), dtype=np.float64)
    np.add.at(merged, group_of, weights)
    rows = np.array(first, dtype=np.int64)
    return a[rows], merged, existing[rows].astype(np.int64)


def _backup_weight(problem: CoverageProblem, sites: Sequence[int]) -> float:
    return float(problem.weights[_cover_counts(problem, sites) >= 2].sum())


def _model_value(problem: CoverageProblem, sites: Sequence[int], lam: float) -> float:
    counts = _cover_counts(problem, sites)
    w = problem.weights
    return float(w[counts >= 1].sum() + lam * w[counts >= 2].sum()) if lam else float(w[counts >= 1].sum())


def _prune(problem: CoverageProblem, existing: Sequence[int], chosen: Sequence[int], lam: float) -> list[int]:
    """Drop chosen sites whose removal loses nothing, in index order (the solver may switch on idle sites)."""
    kept = sorted(chosen)
    value = _model_value(problem, [*existing, *kept], lam)
    for j in sorted(chosen):
        trial = [k for k in kept if k != j]
        if _model_value(problem, [*existing, *trial], lam) >= value:
            kept = trial
    return kept


# ---------------------------------------------------------------------------------------------- explaining


@dataclass(frozen=True, slots=True)
class CategoryCover:
    """Crimes of one category that a site covers.

    Attributes
    ----------
    category
        The category (crime type).
    crimes
        How many crimes of it the site's demand points hold.
    weight
        Their weight.
    """

    category: str
    crimes: int
    weight: float


@dataclass(frozen=True, slots=True)
class SiteExplanation:
    """Why a selected site is there.

    Attributes
    ----------
    site, site_id
        Index and identifier.
    existing
        Whether it is an existing camera.
    rank
        Position in the order given (0 first).
    demand_points
        Demand points it covers.
    covered_weight
        Their weight.
    unique_weight
        Weight it alone covers among the selected sites.
    shared_weight
        ``covered_weight - unique_weight``: also covered by another selected site.
    marginal_gain
        Weight it added when picked, in the order given.
    removal_loss
        Objective lost if it alone were removed from the selection (equals ``unique_weight``).
    by_category
        Crimes covered by category, largest weight first (empty without categories).
    """

    site: int
    site_id: str
    existing: bool
    rank: int
    demand_points: int
    covered_weight: float
    unique_weight: float
    shared_weight: float
    marginal_gain: float
    removal_loss: float
    by_category: tuple[CategoryCover, ...]


def explain_sites(problem: CoverageProblem, selected: Sequence[int]) -> tuple[SiteExplanation, ...]:
    """Explain each selected site, in the order given (e.g. :attr:`GreedyResult.sites`).

    Parameters
    ----------
    problem
        The problem the sites were selected for.
    selected
        Site indices in pick order; use :func:`greedy_order` to order a set.

    Returns
    -------
    tuple of SiteExplanation
        One per site, in the order given. Marginal gains add up to the objective of the whole selection.

    Raises
    ------
    DataError
        An index repeats or is out of range.
    """
    chosen = _check_sites(problem, selected)
    w = problem.weights
    counts = _cover_counts(problem, chosen)
    total = float(w[counts >= 1].sum())
    covered = np.zeros(problem.n_demand, dtype=bool)
    cats = problem.categories
    out = []
    for rank, j in enumerate(chosen):
        rows = problem.rows_of(j)
        gain = _gain(problem, j, covered)
        covered[rows] = True
        unique = rows[counts[rows] == 1]
        without = covered_weight(problem, [k for k in chosen if k != j])
        by_category: tuple[CategoryCover, ...] = ()
        if cats is not None:
            crimes = cats.counts[rows].sum(axis=0)
            weights = cats.weights[rows].sum(axis=0)
            order = sorted(range(len(cats.names)), key=lambda t: (-weights[t], cats.names[t]))
            by_category = tuple(
                CategoryCover(cats.names[t], int(crimes[t]), float(weights[t]))
                for t in order
                if crimes[t] > 0
            )
        covered_w = float(w[rows].sum())
        unique_w = float(w[unique].sum())
        out.append(
            SiteExplanation(
                site=j,
                site_id=problem.site_ids[j],
                existing=bool(problem.existing[j]),
                rank=rank,
                demand_points=len(rows),
                covered_weight=covered_w,
                unique_weight=unique_w,
                shared_weight=covered_w - unique_w,
                marginal_gain=gain,
                removal_loss=total - without,
                by_category=by_category,
            )
        )
    return tuple(out)
