"""ANPR cordon: the fewest reader-lanes that every road route into a protected zone must pass (pure core).

The input is an undirected road graph with the schema of :mod:`planner.data` (node ``x``, ``y`` in metres,
EPSG:27700; edge ``lanes`` = lanes both ways, ``length_m``, optional ``road_class``/``number``/``name``/
``geometry``) and a boundary polygon in EPSG:27700. No file is read here.

Model
-----
* **Sources**: every node outside the boundary (where traffic comes from).
* **Sinks** (the *protected zone*): every node inside the boundary (``protected="boundary"``), the nodes at
  least ``X`` metres inside it (``protected=X``), or the nodes inside a given polygon (clipped to the
  boundary).
* **Capacity** of a link: its lanes both ways (``directions="both"``: a reader per lane, inbound and
  outbound), or one direction's lanes (``"inbound"``/``"outbound"``: half, as the graph is undirected and
  roads are assumed symmetric). On an undirected graph inbound and outbound cordons therefore choose the same
  links; only the cost halves.
* :func:`plan_cordon` finds a minimum s-t cut (super-source to every source, every sink to a super-sink,
  :func:`networkx.maximum_flow`): the links to instrument so that no route from outside reaches the
  protected zone without passing a reader, at the least total lane cost. When several cuts have that cost it
  returns the one nearest the boundary (the nodes reachable from the super-source in the residual network),
  or on request the one nearest the zone (all but the nodes that can still reach the super-sink); each is the
  same for every maximum flow, so the answer depends neither on the max-flow algorithm nor on run order.
  (:func:`networkx.minimum_cut` itself returns the one nearest the zone.)
* The **certificate** (:meth:`CordonPlan.verify`) does not trust the solver: it deletes the chosen links and
  searches breadth-first from every source for any sink (there must be none), and recomputes the maximum flow
  with a different algorithm (Edmonds-Karp); a separating link set whose capacity equals the maximum flow is a
  minimum cut (max-flow/min-cut duality).
* **Baseline**: "one camera per crossing road" instruments every link with one end outside the boundary and
  one inside; :attr:`CordonPlan.saving` is its cost minus the plan's.
* **Blind spots** (:class:`BlindSpots`): a cordon around a zone smaller than the boundary does not see traffic
  that enters the boundary but stays in the ring outside the zone; the plan reports that road length.
* :func:`plan_cordon_budget`: when fewer cameras are affordable than the cut needs, pick at most ``k`` links
  that capture the most of a flow proxy (greedy maximum coverage). Such a plan does **not** seal the zone;
  ``CordonPlan.seals`` says so.

Determinism: nodes are ordered by value (or ``repr`` if values do not compare), links by their end nodes and
key, networks are built in that order and ties are broken by that order, so identical input gives identical
output, run to run.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections import deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import networkx as nx
import numpy as np
import shapely
from networkx.algorithms.flow import edmonds_karp
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from planner.errors import DataError, PlannerError

__all__ = [
    "BlindSpots",
    "ChosenLink",
    "CordonCertificate",
    "CordonPlan",
    "Crossings",
    "Directions",
    "FlowProxy",
    "Nearest",
    "Protected",
    "RoadLink",
    "plan_cordon",
    "plan_cordon_budget",
]

Directions = Literal["both", "inbound", "outbound"]
"""Which directions of travel the readers on a chosen link must see."""

Protected: TypeAlias = Literal["boundary"] | float | Polygon | MultiPolygon
"""The zone to seal: ``"boundary"``, a ring width in metres inside the boundary, or a polygon (EPSG:27700)."""

Nearest = Literal["boundary", "zone"]
"""Which minimum cut to return when several have the same cost: nearest the boundary or the protected zone."""

FlowProxy = Literal["maxflow", "shortest_paths"]
"""How :func:`plan_cordon_budget` estimates which links carry the traffic (see there)."""

_EPS: Final = 1e-9


@dataclass(frozen=True, slots=True)
class _Terminal:
    """The super-source / super-sink of the flow network (never equal to a road node)."""

    name: str


_SOURCE: Final = _Terminal("source")
_SINK: Final = _Terminal("sink")


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class RoadLink:
    """One link (edge) of the road graph.

    Attributes
    ----------
    u, v, key
        The edge in the graph (``u`` before ``v`` in node order; ``key`` 0 for a simple graph).
    road_class, number, name
        From the edge attributes (``None`` when absent), e.g. ``"motorway"``, ``"M57"``.
    lanes
        Lanes both ways.
    length_m
        Length in metres.
    x, y
        Midpoint of the link, EPSG:27700 metres (where a camera would go).
    """

    u: Hashable
    v: Hashable
    key: int
    road_class: str | None
    number: str | None
    name: str | None
    lanes: float
    length_m: float
    x: float
    y: float

    @property
    def label(self) -> str:
        """Road number and name, e.g. ``"A580 EAST LANCASHIRE ROAD"``; else the class, or "unnamed road"."""
        text = " ".join(part for part in (self.number, self.name) if part)
        return text or self.road_class or "unnamed road"


@dataclass(frozen=True, slots=True)
class ChosenLink:
    """A link to instrument, with what it stands in for.

    Attributes
    ----------
    link
        The road link.
    cost
        Reader-lanes on it: lanes both ways, or one direction's lanes (``directions`` not ``"both"``).
    flow
        Flow it captures that no link chosen before it captures, in lane units of the flow proxy. For a
        minimum cut this is its saturated capacity (= ``cost``); the values sum to
        ``CordonPlan.captured_flow``.
    crossings
        The boundary-crossing links whose traffic can reach this link inside the boundary without passing
        another chosen link: the routes it closes (itself, if it crosses the boundary).
    """

    link: RoadLink
    cost: float
    flow: float
    crossings: tuple[RoadLink, ...]

    @property
    def routes(self) -> tuple[str, ...]:
        """Distinct labels of :attr:`crossings` (e.g. ``("A57", "M62")``), sorted."""
        return tuple(sorted({crossing.label for crossing in self.crossings}))


@dataclass(frozen=True, slots=True)
class Crossings:
    """The baseline "one camera per crossing road": every link with one end outside the boundary, one inside.

    Attributes
    ----------
    links
        The crossing links, in link order.
    cost
        Their total reader-lanes (same rule as the plan's cost).
    """

    links: tuple[RoadLink, ...]
    cost: float

    @property
    def count(self) -> int:
        """Number of crossing links (cameras in the baseline)."""
        return len(self.links)


@dataclass(frozen=True, slots=True)
class BlindSpots:
    """What the chosen links do not see.

    Attributes
    ----------
    ring_links, ring_length_m
        Links (count) and road length (metres) inside the boundary but outside the protected zone: traffic
        that only touches this ring is not what the plan protects (0 for ``protected="boundary"``).
    unseen_links, unseen_length_m
        Links (count) and road length inside the boundary (metres) that a vehicle from outside can drive on
        without passing a chosen link. For a sealing plan these all lie in the ring; for a budget plan they
        include roads into the protected zone itself.
    """

    ring_links: int
    ring_length_m: float
    unseen_links: int
    unseen_length_m: float


@dataclass(frozen=True, slots=True)
class CordonCertificate:
    """Solver-independent evidence about a plan (:meth:`CordonPlan.verify`).

    Attributes
    ----------
    no_path
        After removing the chosen links, no source reaches any sink (breadth-first search from every source).
    flow_value
        Maximum flow from the sources to the sinks, recomputed with Edmonds-Karp (lane units).
    cut_capacity
        Total capacity of the chosen links, recomputed from the graph (lane units).
    sources_checked, sinks_checked
        How many source nodes the search started from and how many sink nodes it looked for.
    nodes_reached
        Nodes the search reached from the sources.
    leak
        If ``no_path`` is false, one route (nodes from a source to a sink) that avoids every chosen link.
    """

    no_path: bool
    flow_value: float
    cut_capacity: float
    sources_checked: int
    sinks_checked: int
    nodes_reached: int
    leak: tuple[Hashable, ...] | None

    @property
    def holds(self) -> bool:
        """True if the chosen links seal the zone and their capacity equals the max flow (a minimum cut)."""
        return self.no_path and math.isclose(self.flow_value, self.cut_capacity, rel_tol=1e-9, abs_tol=1e-9)


@dataclass(frozen=True, slots=True)
class CordonPlan:
    """Links to instrument with ANPR so that traffic into a protected zone is read.

    Attributes
    ----------
    method
        ``"min_cut"`` (a minimum cut: seals the zone at least cost) or ``"budget_greedy"`` (at most
        ``max_cameras`` links by greedy flow capture: does not seal the zone).
    protected
        The protected zone in words, e.g. ``"nodes at least 500 m inside the boundary"``.
    directions
        Directions the readers cover (see :data:`Directions`).
    sources, sinks
        Source nodes (outside the boundary) and sink nodes (the protected zone), in node order.
    links
        The chosen links, in link order (min cut) or in the order picked (budget).
    cost
        Total reader-lanes of the chosen links.
    flow_value
        Maximum flow from sources to sinks (lane units): the cost of sealing the zone.
    seals
        True if no route from a source reaches a sink without passing a chosen link.
    crossings
        The "one camera per crossing road" baseline.
    blind_spots
        What the chosen links do not see.
    proxy
        The flow proxy used to value links (``"maxflow"`` for min-cut plans).
    captured_flow, proxy_total
        Flow captured by the chosen links and total flow, in the proxy's lane units.
    max_cameras
        The budget, for budget plans; ``None`` otherwise.
    """

    method: Literal["min_cut", "budget_greedy"]
    protected: str
    directions: Directions
    sources: tuple[Hashable, ...]
    sinks: tuple[Hashable, ...]
    links: tuple[ChosenLink, ...]
    cost: float
    flow_value: float
    seals: bool
    crossings: Crossings
    blind_spots: BlindSpots
    proxy: FlowProxy
    captured_flow: float
    proxy_total: float
    max_cameras: int | None = None

    @property
    def camera_count(self) -> int:
        """Number of chosen links (one camera site each, reading the directions asked)."""
        return len(self.links)

    @property
    def saving(self) -> float:
        """Reader-lanes saved against one camera per crossing road (``crossings.cost - cost``)."""
        return self.crossings.cost - self.cost

    @property
    def cameras_saved(self) -> int:
        """Camera sites saved against one camera per crossing road."""
        return self.crossings.count - self.camera_count

    def verify(self, graph: nx.Graph) -> CordonCertificate:
        """Check the plan against ``graph`` without trusting the solver that made it.

        Parameters
        ----------
        graph
            The road graph the plan was made from.

        Returns
        -------
        CordonCertificate
            ``holds`` is true for a correct minimum-cut plan.

        Raises
        ------
        PlannerError
            A chosen link is not in ``graph`` (the plan was made from another graph).
        """
        factor = _direction_factor(self.directions)
        removed: set[tuple[Hashable, Hashable, int]] = set()
        capacity = 0.0
        for chosen in self.links:
            link = chosen.link
            data = _edge_data(graph, link.u, link.v, link.key)
            if data is None:
                raise PlannerError(f"chosen link {link.u}-{link.v} (key {link.key}) is not in the graph")
            capacity += float(data["lanes"]) * factor
            removed.add((link.u, link.v, link.key))
            removed.add((link.v, link.u, link.key))
        sinks = set(self.sinks)
        parent: dict[Hashable, Hashable | None] = dict.fromkeys(self.sources)
        queue = deque(self.sources)
        found: Hashable | None = next((s for s in self.sources if s in sinks), None)
        while queue and found is None:
            node = queue.popleft()
            for neighbour, key in _neighbours(graph, node):
                if neighbour in parent or (node, neighbour, key) in removed:
                    continue
                parent[neighbour] = node
                if neighbour in sinks:
                    found = neighbour
                    break
                queue.append(neighbour)
        leak: tuple[Hashable, ...] | None = None
        if found is not None:
            route = [found]
            while (previous := parent[route[-1]]) is not None:
                route.append(previous)
            leak = tuple(reversed(route))
        network = _flow_network(graph, _ordered_links(graph), self.sources, self.sinks, factor)
        flow_value = float(nx.maximum_flow_value(network, _SOURCE, _SINK, flow_func=edmonds_karp))
        return CordonCertificate(
            no_path=found is None,
            flow_value=flow_value,
            cut_capacity=capacity,
            sources_checked=len(self.sources),
            sinks_checked=len(sinks),
            nodes_reached=len(parent),
            leak=leak,
        )


# ----------------------------------------------------------------------------------------------- planning


def plan_cordon(
    graph: nx.Graph,
    boundary: Polygon | MultiPolygon,
    *,
    protected: Protected = 500.0,
    directions: Directions = "both",
    nearest: Nearest = "boundary",
) -> CordonPlan:
    """The cheapest set of links that every route from outside ``boundary`` into the protected zone passes.

    Parameters
    ----------
    graph
        Undirected road graph (:class:`networkx.Graph` or :class:`networkx.MultiGraph`) with node ``x``, ``y``
        (EPSG:27700, metres) and edge ``lanes`` (lanes both ways, > 0); ``length_m``, ``road_class``,
        ``number``, ``name`` and ``geometry`` (EPSG:27700) are used when present. It must extend beyond the
        boundary (e.g. :func:`planner.data.load_road_graph_meridian` with ``buffer_m=5000``).
    boundary
        The area whose roads are considered inside, EPSG:27700.
    protected
        The zone to seal: ``"boundary"`` (every node inside the boundary: the cut is then the crossing links),
        a distance in metres (nodes at least that far inside the boundary; default 500 m) or a polygon in
        EPSG:27700 (nodes inside it and inside the boundary).
    directions
        ``"both"`` (readers for both directions: capacity = lanes both ways) or ``"inbound"``/``"outbound"``
        (one direction's lanes, half the lanes both ways).
    nearest
        Which of several minimum cuts (all of the same cost) to return: the one nearest the boundary
        (default; it leaves the least road unseen) or the one nearest the protected zone.

    Returns
    -------
    CordonPlan
        ``method="min_cut"``, ``seals=True`` unless no sink is reachable at all (then no link is needed).

    Raises
    ------
    DataError
        The graph is directed or lacks node coordinates or lane counts, or an argument is invalid.
    PlannerError
        No node lies outside the boundary or none lies in the protected zone.
    """
    setup = _setup(graph, boundary, protected, directions, nearest)
    value, _, chosen = _min_cut(setup, nearest)
    flows = [setup.capacity[i] for i in chosen]
    return _make_plan(
        setup,
        chosen,
        flows,
        method="min_cut",
        flow_value=value,
        proxy="maxflow",
        captured=float(sum(flows)),
        proxy_total=float(value),
        max_cameras=None,
    )


def plan_cordon_budget(
    graph: nx.Graph,
    boundary: Polygon | MultiPolygon,
    *,
    max_cameras: int,
    protected: Protected = 500.0,
    directions: Directions = "both",
    proxy: FlowProxy = "maxflow",
    nearest: Nearest = "boundary",
) -> CordonPlan:
    """At most ``max_cameras`` links that capture the most traffic into the zone (does not seal it).

    If the minimum cut needs no more than ``max_cameras`` links it is returned (``method="min_cut"``); else
    links are picked greedily (``method="budget_greedy"``, ``seals`` normally false): each step takes the
    candidate link that captures the most proxy flow not yet captured (ties: lower cost, then link order), and
    stops early when no link captures more. Candidates are the links with at least one end inside the boundary
    (cameras go in the borough).

    Flow proxies (``proxy``), in lane units:

    ``"maxflow"`` (default)
        The maximum flow from outside into the zone at lane capacity, decomposed into source-to-sink paths:
        the most traffic the roads can carry into the zone, spread the way a max-flow routes it. The greedy is
        Hodgson's flow-capturing location model on these paths.
    ``"shortest_paths"``
        Each crossing link sends its capacity in equal shares along the shortest routes (by ``length_m``,
        inside the boundary) to every sink it can reach: drivers take the shortest way once inside.

    Greedy maximum coverage is within a factor 1 - 1/e of the best choice of links for the proxy; neither
    proxy is observed traffic.

    Parameters
    ----------
    graph, boundary, protected, directions, nearest
        As in :func:`plan_cordon`.
    max_cameras
        Most links to choose (>= 0).
    proxy
        See above.

    Returns
    -------
    CordonPlan
        ``captured_flow`` / ``proxy_total`` say how much of the proxy flow is read.

    Raises
    ------
    DataError, PlannerError
        As :func:`plan_cordon`, or ``max_cameras`` < 0 or an unknown ``proxy``.
    """
    if isinstance(max_cameras, bool) or not isinstance(max_cameras, int) or max_cameras < 0:
        raise DataError(f"max_cameras = {max_cameras!r} must be an integer >= 0")
    if proxy not in ("maxflow", "shortest_paths"):
        raise DataError(f"proxy = {proxy!r} must be 'maxflow' or 'shortest_paths'")
    setup = _setup(graph, boundary, protected, directions, nearest)
    flow_value, flow_dict, cut = _min_cut(setup, nearest)
    if len(cut) <= max_cameras and proxy == "maxflow":
        flows = [setup.capacity[i] for i in cut]
        return _make_plan(
            setup,
            cut,
            flows,
            method="min_cut",
            flow_value=flow_value,
            proxy=proxy,
            captured=float(sum(flows)),
            proxy_total=float(flow_value),
            max_cameras=max_cameras,
        )
    if proxy == "maxflow":
        paths = [(nodes[1:-1], amount) for nodes, amount in _decompose(flow_dict)]
    else:
        paths = _shortest_path_flows(setup)
    if len(cut) <= max_cameras:  # shortest-path proxy: the min cut still captures every route
        captured, flows = _captured_by(setup, paths, cut)
        return _make_plan(
            setup,
            cut,
            flows,
            method="min_cut",
            flow_value=flow_value,
            proxy=proxy,
            captured=captured,
            proxy_total=float(sum(w for _, w in paths)),
            max_cameras=max_cameras,
        )
    chosen, flows = _greedy_capture(setup, paths, max_cameras)
    return _make_plan(
        setup,
        chosen,
        flows,
        method="budget_greedy",
        flow_value=flow_value,
        proxy=proxy,
        captured=float(sum(flows)),
        proxy_total=float(sum(w for _, w in paths)),
        max_cameras=max_cameras,
    )


# ------------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True, slots=True)
class _Link:
    u: Hashable
    v: Hashable
    key: int
    data: Mapping[str, Any]


@dataclass(slots=True)
class _Setup:
    graph: nx.Graph
    boundary: BaseGeometry
    zone: BaseGeometry
    description: str
    directions: Directions
    order: dict[Hashable, int]
    links: list[_Link]
    capacity: list[float]
    outside: set[Hashable]
    sources: tuple[Hashable, ...]
    sinks: tuple[Hashable, ...]
    network: nx.DiGraph


def _setup(
    graph: nx.Graph, boundary: BaseGeometry, protected: Protected, directions: Directions, nearest: Nearest
) -> _Setup:
    """Validate the input, classify nodes, list links and build the flow network."""
    problems: list[str] = []
    if graph.is_directed():
        problems.append("the road graph must be undirected (e.g. osmnx.convert.to_undirected)")
    if not isinstance(boundary, Polygon | MultiPolygon) or boundary.is_empty or not boundary.is_valid:
        problems.append(f"boundary must be a valid, non-empty (Multi)Polygon, got {type(boundary).__name__}")
    if directions not in ("both", "inbound", "outbound"):
        problems.append(f"directions = {directions!r} must be 'both', 'inbound' or 'outbound'")
    if nearest not in ("boundary", "zone"):
        problems.append(f"nearest = {nearest!r} must be 'boundary' or 'zone'")
    if graph.number_of_nodes() == 0:
        problems.append("the road graph has no nodes")
    order = _node_order(graph)
    coords = np.zeros((len(order), 2))
    bad_nodes = []
    for node, i in order.items():
        data = graph.nodes[node]
        try:
            coords[i] = (float(data["x"]), float(data["y"]))
        except (KeyError, TypeError, ValueError):
            bad_nodes.append(node)
            continue
        if not np.isfinite(coords[i]).all():
            bad_nodes.append(node)
    if bad_nodes:
        problems.append(
            f"{len(bad_nodes)} node(s) lack finite x/y (EPSG:27700 metres), e.g. {bad_nodes[:3]!r}"
        )
    links = [] if graph.is_directed() else _ordered_links(graph, order)
    bad_links = [(link.u, link.v, link.key) for link in links if not _positive(link.data.get("lanes"))]
    if bad_links:
        problems.append(f"{len(bad_links)} link(s) lack a 'lanes' number > 0, e.g. {bad_links[:3]!r}")
    zone, description, problem = _zone(boundary, protected) if not problems else (boundary, "", None)
    if problem:
        problems.append(problem)
    if problems:
        raise DataError("cannot plan a cordon:\n  " + "\n  ".join(problems))

    points = shapely.points(coords)
    shapely.prepare(boundary)
    inside = shapely.covers(boundary, points)
    if isinstance(protected, str):
        in_zone = inside
    elif isinstance(protected, int | float):
        in_zone = inside & _at_least(boundary.boundary, points, float(protected))
    else:
        shapely.prepare(zone)
        in_zone = inside & shapely.covers(zone, points)
    nodes = list(order)
    sources = tuple(node for node, flag in zip(nodes, inside, strict=True) if not flag)
    sinks = tuple(node for node, flag in zip(nodes, in_zone, strict=True) if flag)
    if not sources:
        raise PlannerError("no road node lies outside the boundary: the graph must extend beyond it")
    if not sinks:
        raise PlannerError(f"no road node lies in the protected zone ({description})")
    factor = _direction_factor(directions)
    capacity = [float(link.data["lanes"]) * factor for link in links]
    network = _flow_network(graph, links, sources, sinks, factor)
    return _Setup(
        graph=graph,
        boundary=boundary,
        zone=zone,
        description=description,
        directions=directions,
        order=order,
        links=links,
        capacity=capacity,
        outside=set(sources),
        sources=sources,
        sinks=sinks,
        network=network,
    )


def _at_least(line: BaseGeometry, points: np.ndarray, distance: float) -> np.ndarray:
    """Which points are at least ``distance`` metres from ``line`` (exact; prepared ``dwithin`` for speed)."""
    shapely.prepare(line)
    far: np.ndarray = ~shapely.dwithin(line, points, distance)
    # dwithin means "<= distance"; points exactly at the distance are settled with an exact measurement.
    edge = ~far & ~shapely.dwithin(line, points, distance * (1 - 1e-9) - 1e-9)
    far[edge] = shapely.distance(line, points[edge]) >= distance
    return far


def _lengths_within(lines: np.ndarray, area: BaseGeometry) -> np.ndarray:
    """Length (metres) of each line inside ``area``; only lines crossing its edge are intersected."""
    if area.is_empty or not len(lines):
        return np.zeros(len(lines))
    shapely.prepare(area)
    lengths = np.where(shapely.covers(area, lines), shapely.length(lines), 0.0)
    partial = shapely.intersects(area, lines) & (lengths == 0.0)
    lengths[partial] = shapely.length(shapely.intersection(lines[partial], area))
    return lengths


def _zone(boundary: BaseGeometry, protected: Protected) -> tuple[BaseGeometry, str, str | None]:
    """The protected zone's polygon (for ring lengths), its description, and a problem if invalid."""
    if isinstance(protected, str):
        if protected != "boundary":
            return boundary, "", f"protected = {protected!r} must be 'boundary', metres or a polygon"
        return boundary, "every node inside the boundary", None
    if isinstance(protected, bool):
        return boundary, "", f"protected = {protected!r} must be 'boundary', metres or a polygon"
    if isinstance(protected, int | float):
        if not (math.isfinite(protected) and protected >= 0):
            return boundary, "", f"protected = {protected!r} metres must be a finite number >= 0"
        zone = boundary.buffer(-float(protected), quad_segs=16) if protected > 0 else boundary
        return zone, f"nodes at least {float(protected):g} m inside the boundary", None
    if isinstance(protected, Polygon | MultiPolygon) and protected.is_valid and not protected.is_empty:
        return protected.intersection(boundary), "nodes inside the protected polygon (and the boundary)", None
    return boundary, "", f"protected polygon must be a valid, non-empty (Multi)Polygon, got {protected!r:.60}"


def _positive(value: object) -> bool:
    """A finite real number > 0 (numpy numbers included, booleans not)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
        and float(value) > 0
    )


def _direction_factor(directions: Directions) -> float:
    return 1.0 if directions == "both" else 0.5


def _node_order(graph: nx.Graph) -> dict[Hashable, int]:
    try:
        nodes = sorted(graph.nodes)
    except TypeError:  # mixed node types: order by text, still repeatable
        nodes = sorted(graph.nodes, key=repr)
    return {node: i for i, node in enumerate(nodes)}


def _ordered_links(graph: nx.Graph, order: Mapping[Hashable, int] | None = None) -> list[_Link]:
    """Every non-loop edge as ``u`` before ``v`` in node order, sorted by (u, v, key)."""
    order = _node_order(graph) if order is None else order
    raw: Iterable[tuple[Hashable, Hashable, Any, Mapping[str, Any]]]
    if graph.is_multigraph():
        raw = graph.edges(keys=True, data=True)
    else:
        raw = ((u, v, 0, data) for u, v, data in graph.edges(data=True))
    links = []
    for u, v, key, data in raw:
        if u == v:
            continue  # a loop never separates anything
        a, b = (u, v) if order[u] < order[v] else (v, u)
        links.append(_Link(a, b, key, data))
    links.sort(key=lambda link: (order[link.u], order[link.v], _key_order(link.key)))
    return links


def _key_order(key: Any) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int) else (1, repr(key))


def _flow_network(
    graph: nx.Graph,
    links: Sequence[_Link],
    sources: Sequence[Hashable],
    sinks: Sequence[Hashable],
    factor: float,
) -> nx.DiGraph:
    """Each undirected link becomes two arcs of its capacity (parallel links add up); terminal arcs are
    infinite."""
    network = nx.DiGraph()
    network.add_node(_SOURCE)
    network.add_nodes_from(sorted(graph.nodes, key=_node_order(graph).__getitem__))
    network.add_node(_SINK)
    for link in links:
        capacity = float(link.data["lanes"]) * factor
        for a, b in ((link.u, link.v), (link.v, link.u)):
            if network.has_edge(a, b):
                network[a][b]["capacity"] += capacity
            else:
                network.add_edge(a, b, capacity=capacity)
    # No "capacity" attribute means infinite capacity in networkx.
    network.add_edges_from((_SOURCE, node) for node in sources)
    network.add_edges_from((node, _SINK) for node in sinks)
    return network


def _edge_data(graph: nx.Graph, u: Hashable, v: Hashable, key: int) -> Mapping[str, Any] | None:
    if not graph.has_node(u) or not graph.has_node(v):
        return None
    if graph.is_multigraph():
        data = graph.get_edge_data(u, v, key)
    else:
        data = graph.get_edge_data(u, v) if key == 0 else None
    return data  # type: ignore[no-any-return]


def _neighbours(graph: nx.Graph, node: Hashable) -> Iterable[tuple[Hashable, int]]:
    if graph.is_multigraph():
        for neighbour, keyed in graph.adj[node].items():
            for key in keyed:
                yield neighbour, key
    else:
        for neighbour in graph.adj[node]:
            yield neighbour, 0


def _residual_side(
    network: nx.DiGraph, flow: Mapping[Hashable, Mapping[Hashable, float]], nearest: Nearest
) -> set[Hashable]:
    """The source side of the minimum cut nearest the boundary or nearest the zone.

    ``"boundary"``: the nodes reachable from the super-source in the residual network; ``"zone"``: all but
    the nodes that can reach the super-sink in it. Either set is the same for every maximum flow.
    """

    def residual(a: Hashable, b: Hashable) -> bool:
        """Can one more unit go from ``a`` to ``b``?"""
        forward = network.succ[a].get(b)
        if forward is not None and flow[a][b] < forward.get("capacity", math.inf) - _EPS:
            return True
        return network.has_edge(b, a) and flow[b][a] > _EPS

    outward = nearest == "boundary"
    start = _SOURCE if outward else _SINK
    seen: set[Hashable] = {start}
    queue: deque[Hashable] = deque([start])
    while queue:
        node = queue.popleft()
        for other in itertools.chain(network.succ[node], network.pred[node]):
            if other not in seen and (residual(node, other) if outward else residual(other, node)):
                seen.add(other)
                queue.append(other)
    return seen if outward else set(network) - seen


def _min_cut(
    setup: _Setup, nearest: Nearest
) -> tuple[float, dict[Hashable, dict[Hashable, float]], list[int]]:
    """Maximum flow value, its flow, and the indices of the links in the chosen minimum cut."""
    value, flow = nx.maximum_flow(setup.network, _SOURCE, _SINK, capacity="capacity")
    side = _residual_side(setup.network, flow, nearest)
    cut = [i for i, link in enumerate(setup.links) if (link.u in side) != (link.v in side)]
    return float(value), flow, cut


def _decompose(flow: Mapping[Hashable, Mapping[Hashable, float]]) -> list[tuple[list[Hashable], float]]:
    """Split a source-to-sink flow into paths (cycles are cancelled); deterministic in adjacency order."""
    residual = {u: {v: f for v, f in arcs.items() if f > _EPS} for u, arcs in flow.items()}
    paths: list[tuple[list[Hashable], float]] = []
    while residual[_SOURCE]:
        path: list[Hashable] = [_SOURCE]
        position: dict[Hashable, int] = {_SOURCE: 0}
        while path[-1] != _SINK:
            out = residual[path[-1]]
            if not out:  # cannot happen for a conserved flow; stop rather than loop
                raise PlannerError("internal error: the maximum flow does not conserve flow")
            nxt = next(iter(out))
            if nxt in position:  # a cycle: cancel it and carry on from where it started
                cycle = [*path[position[nxt] :], nxt]
                _subtract(residual, cycle, min(residual[a][b] for a, b in itertools.pairwise(cycle)))
                for node in path[position[nxt] + 1 :]:
                    del position[node]
                del path[position[nxt] + 1 :]
                continue
            position[nxt] = len(path)
            path.append(nxt)
        amount = min(residual[a][b] for a, b in itertools.pairwise(path))
        _subtract(residual, path, amount)
        paths.append((path, amount))
    return paths


def _subtract(
    residual: dict[Hashable, dict[Hashable, float]], nodes: Sequence[Hashable], amount: float
) -> None:
    for a, b in itertools.pairwise(nodes):
        residual[a][b] -= amount
        if residual[a][b] <= _EPS:
            del residual[a][b]


def _shortest_path_flows(setup: _Setup) -> list[tuple[list[Hashable], float]]:
    """Shortest routes (by length_m, inside the boundary) from each crossing link to every sink it reaches."""
    inside = nx.Graph()
    inside.add_nodes_from(node for node in setup.order if node not in setup.outside)
    for link in setup.links:
        if link.u in setup.outside or link.v in setup.outside:
            continue
        length = _length(setup.graph, link)
        if not inside.has_edge(link.u, link.v) or inside[link.u][link.v]["length_m"] > length:
            inside.add_edge(link.u, link.v, length_m=length)
    paths: list[tuple[list[Hashable], float]] = []
    for i, link in enumerate(setup.links):
        if (link.u in setup.outside) == (link.v in setup.outside):
            continue
        outer, inner = (link.u, link.v) if link.u in setup.outside else (link.v, link.u)
        routes = nx.single_source_dijkstra_path(inside, inner, weight="length_m")
        targets = [sink for sink in setup.sinks if sink in routes]
        for sink in targets:
            paths.append(([outer, *routes[sink]], setup.capacity[i] / len(targets)))
    return paths


@dataclass(frozen=True, slots=True)
class _Incidence:
    """Which candidate camera sites each proxy path passes (a sparse 0/1 paths x sites matrix, by entries)."""

    rows: np.ndarray  # path index of each entry
    cols: np.ndarray  # site index of each entry (entries sorted by site)
    starts: np.ndarray  # entries of site j are [starts[j], starts[j + 1])
    weights: np.ndarray  # proxy flow of each path, lane units
    groups: list[list[int]]  # link indices of each site (parallel links between the same nodes)

    def paths_through(self, site: int) -> np.ndarray:
        return self.rows[self.starts[site] : self.starts[site + 1]]

    def scores(self, uncaptured: np.ndarray) -> np.ndarray:
        """Uncaptured proxy flow through each site."""
        live = (self.weights * uncaptured)[self.rows]
        return np.bincount(self.cols, weights=live, minlength=len(self.groups)).astype(float)


def _incidence(setup: _Setup, paths: Sequence[tuple[Sequence[Hashable], float]]) -> _Incidence:
    """Candidate sites are links with at least one end inside the boundary (cameras go in the borough)."""
    sites: dict[tuple[Hashable, Hashable], list[int]] = {}
    for i, link in enumerate(setup.links):
        if link.u in setup.outside and link.v in setup.outside:
            continue
        sites.setdefault((link.u, link.v), []).append(i)
    column = {pair: j for j, pair in enumerate(sites)}
    rows: list[int] = []
    cols: list[int] = []
    for r, (nodes, _) in enumerate(paths):
        hit: set[int] = set()
        for a, b in itertools.pairwise(nodes):
            pair = (a, b) if setup.order[a] < setup.order[b] else (b, a)
            if (j := column.get(pair)) is not None and j not in hit:
                hit.add(j)
                rows.append(r)
                cols.append(j)
    row_array = np.array(rows, dtype=np.int64)
    col_array = np.array(cols, dtype=np.int64)
    by_site = np.argsort(col_array, kind="stable")
    col_array = col_array[by_site]
    return _Incidence(
        rows=row_array[by_site],
        cols=col_array,
        starts=np.searchsorted(col_array, np.arange(len(sites) + 1)),
        weights=np.array([w for _, w in paths], dtype=float),
        groups=list(sites.values()),
    )


def _greedy_capture(
    setup: _Setup, paths: Sequence[tuple[Sequence[Hashable], float]], budget: int
) -> tuple[list[int], list[float]]:
    """Greedy maximum coverage of path weight by at most ``budget`` links (parallel links go together)."""
    incidence = _incidence(setup, paths)
    groups = incidence.groups
    uncaptured = np.ones(len(incidence.weights), dtype=bool)
    cost = np.array([sum(setup.capacity[i] for i in group) for group in groups], dtype=float)
    size = np.array([len(group) for group in groups], dtype=np.int64)
    used = np.zeros(len(groups), dtype=bool)
    chosen: list[int] = []
    flows: list[float] = []
    remaining = budget
    while remaining > 0 and len(groups):
        score = incidence.scores(uncaptured)
        score[used | (size > remaining)] = -1.0
        best = float(score.max())
        if best <= _EPS:
            break  # no site captures anything more
        ties = np.flatnonzero(score >= best - _EPS)
        site = int(ties[np.argmin(cost[ties])])  # ties: cheapest, then first in link order
        used[site] = True
        remaining -= int(size[site])
        rows = incidence.paths_through(site)
        gain = float(incidence.weights[rows][uncaptured[rows]].sum())
        uncaptured[rows] = False
        for n, i in enumerate(groups[site]):
            chosen.append(i)
            flows.append(gain if n == 0 else 0.0)
    return chosen, flows


def _captured_by(
    setup: _Setup, paths: Sequence[tuple[Sequence[Hashable], float]], chosen: Sequence[int]
) -> tuple[float, list[float]]:
    """Proxy flow captured by ``chosen`` links (in that order, each counting only what is new)."""
    incidence = _incidence(setup, paths)
    site_of = {i: j for j, group in enumerate(incidence.groups) for i in group}
    uncaptured = np.ones(len(incidence.weights), dtype=bool)
    flows = []
    for i in chosen:
        rows = incidence.paths_through(site_of[i]) if i in site_of else np.zeros(0, dtype=np.int64)
        flows.append(float(incidence.weights[rows][uncaptured[rows]].sum()))
        uncaptured[rows] = False
    return float(sum(flows)), flows


def _make_plan(
    setup: _Setup,
    chosen: Sequence[int],
    flows: Sequence[float],
    *,
    method: Literal["min_cut", "budget_greedy"],
    flow_value: float,
    proxy: FlowProxy,
    captured: float,
    proxy_total: float,
    max_cameras: int | None,
) -> CordonPlan:
    """Describe the chosen links: crossings they stand in for, baseline, blind spots, whether they seal."""
    graph, outside = setup.graph, setup.outside
    chosen_set = set(chosen)
    crossing = [i for i, link in enumerate(setup.links) if (link.u in outside) != (link.v in outside)]
    road_links: dict[int, RoadLink] = {}

    def road(i: int) -> RoadLink:
        if i not in road_links:
            road_links[i] = _road_link(graph, setup.links[i])
        return road_links[i]

    # Components of the inside network once the chosen links are removed.
    component = _UnionFind(node for node in setup.order if node not in outside)
    adjacency: dict[Hashable, list[tuple[Hashable, int]]] = {node: [] for node in setup.order}
    for i, link in enumerate(setup.links):
        if i in chosen_set:
            continue
        adjacency[link.u].append((link.v, i))
        adjacency[link.v].append((link.u, i))
        if link.u not in outside and link.v not in outside:
            component.union(link.u, link.v)
    entries: dict[Hashable, list[int]] = {}
    for i in crossing:
        if i not in chosen_set:
            link = setup.links[i]
            inner = link.v if link.u in outside else link.u
            entries.setdefault(component.find(inner), []).append(i)
    chosen_links = []
    for i, flow in zip(chosen, flows, strict=True):
        link = setup.links[i]
        roots = {component.find(node) for node in (link.u, link.v) if node not in outside}
        stands_for = sorted({j for root in roots for j in entries.get(root, [])} | ({i} & set(crossing)))
        chosen_links.append(
            ChosenLink(
                link=road(i),
                cost=setup.capacity[i],
                flow=float(flow),
                crossings=tuple(road(j) for j in stands_for),
            )
        )

    # What a vehicle from outside can reach without passing a chosen link.
    reached = set(setup.sources)
    queue = deque(setup.sources)
    while queue:
        node = queue.popleft()
        for neighbour, _ in adjacency[node]:
            if neighbour not in reached:
                reached.add(neighbour)
                queue.append(neighbour)
    seals = not reached.intersection(setup.sinks)

    lines = np.array([_geometry(graph, link) for link in setup.links], dtype=object)
    ring_lengths = _lengths_within(lines, setup.boundary.difference(setup.zone))
    inside_lengths = _lengths_within(lines, setup.boundary)
    unseen = [
        i
        for i, link in enumerate(setup.links)
        if i not in chosen_set
        and not (link.u in outside and link.v in outside)
        and (link.u in reached or link.v in reached)
    ]
    blind = BlindSpots(
        ring_links=int((ring_lengths > 1e-6).sum()),
        ring_length_m=float(ring_lengths.sum()),
        unseen_links=len(unseen),
        unseen_length_m=float(sum(inside_lengths[i] for i in unseen)),
    )
    return CordonPlan(
        method=method,
        protected=setup.description,
        directions=setup.directions,
        sources=setup.sources,
        sinks=setup.sinks,
        links=tuple(chosen_links),
        cost=float(sum(setup.capacity[i] for i in chosen)),
        flow_value=flow_value,
        seals=seals,
        crossings=Crossings(
            links=tuple(road(i) for i in crossing),
            cost=float(sum(setup.capacity[i] for i in crossing)),
        ),
        blind_spots=blind,
        proxy=proxy,
        captured_flow=captured,
        proxy_total=proxy_total,
        max_cameras=max_cameras,
    )


def _geometry(graph: nx.Graph, link: _Link) -> BaseGeometry:
    geometry = link.data.get("geometry")
    if isinstance(geometry, BaseGeometry) and not geometry.is_empty:
        return geometry
    a, b = graph.nodes[link.u], graph.nodes[link.v]
    return LineString([(float(a["x"]), float(a["y"])), (float(b["x"]), float(b["y"]))])


def _length(graph: nx.Graph, link: _Link) -> float:
    length = link.data.get("length_m")
    if isinstance(length, numbers.Real) and math.isfinite(float(length)) and float(length) >= 0:
        return float(length)
    return float(_geometry(graph, link).length)


def _road_link(graph: nx.Graph, link: _Link) -> RoadLink:
    middle = _geometry(graph, link).interpolate(0.5, normalized=True)

    def text(name: str) -> str | None:
        value = link.data.get(name)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)

    return RoadLink(
        u=link.u,
        v=link.v,
        key=link.key,
        road_class=text("road_class"),
        number=text("number"),
        name=text("name"),
        lanes=float(link.data["lanes"]),
        length_m=_length(graph, link),
        x=float(middle.x),
        y=float(middle.y),
    )


class _UnionFind:
    """Disjoint sets over hashable items; ``find`` of an unknown item is the item itself."""

    def __init__(self, items: Iterable[Hashable]) -> None:
        self._parent: dict[Hashable, Hashable] = {item: item for item in items}

    def find(self, item: Hashable) -> Hashable:
        parent = self._parent
        root = item
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(item, item) != root:
            parent[item], item = root, parent[item]
        return root

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[rb] = ra
