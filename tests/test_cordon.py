"""ANPR cordon on Knowsley's real roads (OS Meridian 2), and its certificate on random graphs (hypothesis).

Expected numbers: ../shared/notes/cordon.md (measured there with networkx.minimum_cut).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

import planner.cordon
from planner.cordon import CordonPlan, plan_cordon, plan_cordon_budget
from planner.data import load_boundary, load_road_graph_meridian
from planner.errors import DataError, PlannerError

SHARED = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DATA = SHARED / "data"
LSOA = DATA / "lsoa-2001" / "england_low_soa_2001.shp"
MERIDIAN = [DATA / "os-meridian2" / f"{name}_polyline.shp" for name in ("motorway", "a_road", "b_road")]

# notes/cordon.md: sinks -> (links in the minimum cut, cut capacity in lanes both ways)
NOTES_TABLE: list[tuple[str | float, int, float]] = [
    ("boundary", 22, 56.0),
    (500.0, 18, 48.0),
    (1500.0, 12, 28.0),
]


@pytest.fixture(scope="module")
def knowsley() -> Polygon | MultiPolygon:
    if not (LSOA.is_file() and all(path.is_file() for path in MERIDIAN)):
        pytest.fail(f"shared data not found in {DATA}; set CORDON_SHARED_DIR to the shared folder")
    return load_boundary(lsoa_shapefile=LSOA, name_prefix="Knowsley")


@pytest.fixture(scope="module")
def roads(knowsley: Polygon | MultiPolygon) -> nx.MultiGraph:
    return load_road_graph_meridian(MERIDIAN, clip=knowsley, buffer_m=5000)


@pytest.fixture(scope="module")
def plans(roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> dict[str | float, CordonPlan]:
    return {protected: plan_cordon(roads, knowsley, protected=protected) for protected, _, _ in NOTES_TABLE}


def link_ids(plan: CordonPlan) -> list[tuple[object, object, int]]:
    return [(chosen.link.u, chosen.link.v, chosen.link.key) for chosen in plan.links]


def test_public_api_is_pinned() -> None:
    assert set(planner.cordon.__all__) == {
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
    }


# ---------------------------------------------------------------------------------- Knowsley, real roads


@pytest.mark.parametrize(("protected", "links", "capacity"), NOTES_TABLE)
def test_cut_reproduces_the_notes(
    plans: dict[str | float, CordonPlan],
    roads: nx.MultiGraph,
    protected: str | float,
    links: int,
    capacity: float,
) -> None:
    plan = plans[protected]
    assert plan.method == "min_cut"
    assert plan.camera_count == links
    assert plan.cost == capacity
    assert plan.flow_value == capacity
    assert plan.seals
    assert sum(chosen.cost for chosen in plan.links) == plan.cost
    assert plan.captured_flow == plan.proxy_total == capacity
    certificate = plan.verify(roads)
    assert certificate.no_path
    assert certificate.leak is None
    assert certificate.flow_value == certificate.cut_capacity == capacity
    assert certificate.holds
    assert certificate.sources_checked == len(plan.sources) == 2_376  # nodes outside Knowsley
    assert certificate.nodes_reached >= certificate.sources_checked


@pytest.mark.parametrize(("protected", "links", "capacity"), NOTES_TABLE)
def test_saving_against_one_camera_per_crossing_road(
    plans: dict[str | float, CordonPlan], protected: str | float, links: int, capacity: float
) -> None:
    plan = plans[protected]
    assert plan.crossings.count == 22
    assert plan.crossings.cost == 56.0  # 3 motorway x 6 + 19 A/B x 2 lanes
    assert plan.saving == plan.crossings.cost - plan.cost == 56.0 - capacity
    assert plan.cameras_saved == 22 - links


def test_sealing_the_whole_borough_is_exactly_the_crossing_links(
    plans: dict[str | float, CordonPlan],
) -> None:
    plan = plans["boundary"]
    assert [chosen.link for chosen in plan.links] == list(plan.crossings.links)
    assert plan.saving == 0
    for chosen in plan.links:
        assert chosen.crossings == (chosen.link,)
    assert plan.blind_spots.ring_links == plan.blind_spots.unseen_links == 0
    assert plan.blind_spots.ring_length_m == plan.blind_spots.unseen_length_m == 0


@pytest.mark.parametrize("protected", [500.0, 1500.0])
def test_inner_cordon_reports_what_it_does_not_see(
    plans: dict[str | float, CordonPlan], protected: float
) -> None:
    blind = plans[protected].blind_spots
    assert blind.ring_links > 0
    assert blind.ring_length_m > 1_000
    assert 0 < blind.unseen_links <= blind.ring_links
    assert 0 < blind.unseen_length_m <= blind.ring_length_m
    assert plans[1500.0].blind_spots.ring_length_m > plans[500.0].blind_spots.ring_length_m


def test_chosen_links_name_the_routes_they_close(plans: dict[str | float, CordonPlan]) -> None:
    crossing = set(plans["boundary"].crossings.links)
    for protected in (500.0, 1500.0):
        plan = plans[protected]
        for chosen in plan.links:
            assert chosen.link.number
            assert chosen.link.label.startswith(chosen.link.number)
            assert set(chosen.crossings) <= crossing
            assert chosen.routes == tuple(sorted({c.label for c in chosen.crossings}))
        # Roads that merge before the zone share a camera: that is where the saving comes from.
        assert max(len(chosen.crossings) for chosen in plan.links) >= 2
    wide = plans[1500.0]
    m57 = [chosen for chosen in wide.links if chosen.link.number == "M57"]
    assert len(m57) == 1
    assert "M57" in m57[0].routes
    assert len(m57[0].routes) >= 3  # the M57 link inside the ring stands in for several crossing roads


def test_results_are_identical_run_to_run(
    plans: dict[str | float, CordonPlan], roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon
) -> None:
    again = plan_cordon(roads, knowsley, protected=500.0)
    assert again == plans[500.0]
    rebuilt = load_road_graph_meridian(list(reversed(MERIDIAN)), clip=knowsley, buffer_m=5000)
    assert plan_cordon(rebuilt, knowsley, protected=500.0) == plans[500.0]


def test_cut_nearest_the_zone_costs_the_same_and_sees_less(
    plans: dict[str | float, CordonPlan], roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon
) -> None:
    inner = plan_cordon(roads, knowsley, protected=500.0, nearest="zone")
    outer = plans[500.0]
    assert inner.cost == outer.cost == 48.0
    assert inner.camera_count == 18
    assert inner.verify(roads).holds
    assert inner.blind_spots.unseen_length_m > outer.blind_spots.unseen_length_m


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_one_direction_reads_the_same_links_at_half_the_lanes(
    plans: dict[str | float, CordonPlan],
    roads: nx.MultiGraph,
    knowsley: Polygon | MultiPolygon,
    direction: str,
) -> None:
    plan = plan_cordon(roads, knowsley, protected=500.0, directions=direction)  # type: ignore[arg-type]
    assert link_ids(plan) == link_ids(plans[500.0])
    assert plan.cost == 24.0
    assert plan.crossings.cost == 28.0
    assert plan.verify(roads).holds


def test_protected_polygon(roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> None:
    centre = knowsley.representative_point()
    zone = centre.buffer(2_000)
    plan = plan_cordon(roads, knowsley, protected=zone)
    assert plan.sinks
    assert all(zone.covers(Point(roads.nodes[n]["x"], roads.nodes[n]["y"])) for n in plan.sinks)
    certificate = plan.verify(roads)
    assert certificate.holds
    assert plan.seals
    assert plan.cost == certificate.flow_value


@pytest.mark.parametrize("proxy", ["maxflow", "shortest_paths"])
def test_budget_below_the_cut_does_not_seal(
    roads: nx.MultiGraph,
    knowsley: Polygon | MultiPolygon,
    proxy: str,
) -> None:
    budget_plans = {
        k: plan_cordon_budget(roads, knowsley, max_cameras=k, protected=1500.0, proxy=proxy)  # type: ignore[arg-type]
        for k in (1, 4)
    }
    for k, plan in budget_plans.items():
        assert plan.method == "budget_greedy"
        assert plan.max_cameras == k
        assert plan.camera_count <= k
        assert not plan.seals
        certificate = plan.verify(roads)
        assert not certificate.no_path
        assert certificate.leak is not None
        assert certificate.leak[0] in plan.sources
        assert certificate.leak[-1] in plan.sinks
        assert not certificate.holds
        assert plan.flow_value == 28.0
        assert 0 < plan.captured_flow <= plan.proxy_total + 1e-9
        assert sum(chosen.flow for chosen in plan.links) == pytest.approx(plan.captured_flow)
    one, four = budget_plans[1], budget_plans[4]
    assert [chosen.link.number for chosen in one.links] == ["M57"]  # the widest road into the zone
    assert link_ids(four)[:1] == link_ids(one)  # greedy: a bigger budget extends the smaller choice
    assert four.captured_flow > one.captured_flow
    assert one == plan_cordon_budget(roads, knowsley, max_cameras=1, protected=1500.0, proxy=proxy)  # type: ignore[arg-type]


def test_budget_that_affords_the_cut_returns_it(
    plans: dict[str | float, CordonPlan], roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon
) -> None:
    plan = plan_cordon_budget(roads, knowsley, max_cameras=12, protected=1500.0)
    assert plan.method == "min_cut"
    assert plan.seals
    assert link_ids(plan) == link_ids(plans[1500.0])
    assert plan.verify(roads).holds


def test_bad_input_is_rejected(roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> None:
    with pytest.raises(DataError, match="undirected"):
        plan_cordon(nx.MultiDiGraph(roads), knowsley)
    with pytest.raises(DataError, match="must be 'boundary', metres or a polygon"):
        plan_cordon(roads, knowsley, protected="centre")
    with pytest.raises(DataError, match="finite number >= 0"):
        plan_cordon(roads, knowsley, protected=-5.0)
    with pytest.raises(DataError, match="directions"):
        plan_cordon(roads, knowsley, directions="sideways")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="max_cameras"):
        plan_cordon_budget(roads, knowsley, max_cameras=-1)
    with pytest.raises(PlannerError, match="no road node lies outside"):
        plan_cordon(roads, knowsley.buffer(20_000))
    with pytest.raises(PlannerError, match="no road node lies in the protected zone"):
        plan_cordon(roads, knowsley, protected=50_000.0)
    broken = nx.MultiGraph(roads)
    first = next(iter(broken.edges(keys=True)))
    del broken.edges[first]["lanes"]
    with pytest.raises(DataError, match="1 link\\(s\\) lack a 'lanes' number"):
        plan_cordon(broken, knowsley)


def test_verify_refuses_a_plan_from_another_graph(
    plans: dict[str | float, CordonPlan], roads: nx.MultiGraph
) -> None:
    other = nx.MultiGraph(roads)
    link = plans[500.0].links[0].link
    other.remove_edge(link.u, link.v, link.key)
    with pytest.raises(PlannerError, match="not in the graph"):
        plans[500.0].verify(other)


# -------------------------------------------------------------------------- property test: random graphs

SQUARE = box(500.0, 500.0, 1_500.0, 1_500.0)  # the "boundary": a 1 km square, metres


@st.composite
def road_networks(draw: st.DrawFn) -> tuple[nx.MultiGraph, str | float]:
    """Up to 10 nodes on a 100 m grid over 2 km x 2 km; node 0 is outside the square, node 1 at its centre."""
    extra = draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=8))
    points = [(0, 0), (10, 10), *extra]
    graph = nx.MultiGraph()
    for node, (i, j) in enumerate(points):
        graph.add_node(node, x=100.0 * i, y=100.0 * j)
    n = len(points)
    edges = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from([1, 2, 3, 6])),
            max_size=25,
        )
    )
    for u, v, lanes in edges:
        graph.add_edge(u, v, lanes=float(lanes), length_m=1.0 + abs(u - v))
    protected = draw(st.one_of(st.just("boundary"), st.sampled_from([0.0, 200.0, 500.0])))
    return graph, protected


def max_flow_value(graph: nx.MultiGraph, sources: set[object], sinks: set[object]) -> float:
    """Max flow built here, independently of planner.cordon."""
    network = nx.DiGraph()
    for u, v, lanes in graph.edges(data="lanes"):
        if u == v:
            continue
        for a, b in ((u, v), (v, u)):
            previous = network.get_edge_data(a, b, {"capacity": 0.0})["capacity"]
            network.add_edge(a, b, capacity=previous + lanes)
    network.add_edges_from(("S*", s) for s in sources)
    network.add_edges_from((t, "T*") for t in sinks)
    return float(nx.maximum_flow_value(network, "S*", "T*"))


def brute_force_min_cut(graph: nx.MultiGraph, sources: set[object], sinks: set[object]) -> float:
    """Cheapest cut by trying every side for every node that is neither source nor sink."""
    free = [node for node in graph.nodes if node not in sources and node not in sinks]
    best = float("inf")
    for mask in range(2 ** len(free)):
        side = set(sources) | {node for bit, node in enumerate(free) if mask >> bit & 1}
        cost = sum(lanes for u, v, lanes in graph.edges(data="lanes") if (u in side) != (v in side))
        best = min(best, cost)
    return best


@settings(max_examples=150, deadline=None)
@given(network=road_networks())
def test_certificate_always_holds(network: tuple[nx.MultiGraph, str | float]) -> None:
    graph, protected = network
    plan = plan_cordon(graph, SQUARE, protected=protected)
    certificate = plan.verify(graph)
    assert certificate.no_path
    assert certificate.holds
    assert plan.seals
    sources, sinks = set(plan.sources), set(plan.sinks)
    assert 0 in sources
    assert 1 in sinks
    assert plan.cost == pytest.approx(max_flow_value(graph, sources, sinks))
    assert plan.cost == pytest.approx(brute_force_min_cut(graph, sources, sinks))
    assert plan.cost <= plan.crossings.cost + 1e-9
    assert plan == plan_cordon(graph, SQUARE, protected=protected)
    inner = plan_cordon(graph, SQUARE, protected=protected, nearest="zone")
    assert inner.cost == pytest.approx(plan.cost)
    assert inner.verify(graph).holds


@settings(max_examples=100, deadline=None)
@given(
    network=road_networks(),
    budget=st.integers(0, 4),
    proxy=st.sampled_from(["maxflow", "shortest_paths"]),
)
def test_budget_plan_is_honest(network: tuple[nx.MultiGraph, str | float], budget: int, proxy: str) -> None:
    graph, protected = network
    plan = plan_cordon_budget(graph, SQUARE, max_cameras=budget, protected=protected, proxy=proxy)  # type: ignore[arg-type]
    certificate = plan.verify(graph)
    assert plan.camera_count <= budget
    assert plan.seals == certificate.no_path
    assert certificate.cut_capacity == pytest.approx(plan.cost)
    assert plan.captured_flow <= plan.proxy_total + 1e-9
    if plan.method == "min_cut":
        assert certificate.holds
    cameras = {(c.link.u, c.link.v, c.link.key) for c in plan.links}
    assert len(cameras) == plan.camera_count


def test_parallel_links_and_simple_graphs() -> None:
    """Two parallel roads between the same junctions are both cut; a plain nx.Graph works too."""
    multi = nx.MultiGraph()
    multi.add_node("out", x=0.0, y=0.0)
    multi.add_node("in", x=1_000.0, y=1_000.0)
    multi.add_edge("out", "in", lanes=2.0)
    multi.add_edge("out", "in", lanes=6.0)
    plan = plan_cordon(multi, SQUARE, protected="boundary")
    assert plan.cost == 8.0
    assert sorted(chosen.link.key for chosen in plan.links) == [0, 1]
    assert plan.verify(multi).holds
    simple = nx.Graph()
    simple.add_nodes_from(multi.nodes(data=True))
    simple.add_edge("out", "in", lanes=4.0)
    plan = plan_cordon(simple, SQUARE, protected="boundary")
    assert plan.cost == 4.0
    assert plan.verify(simple).holds


def test_unreachable_zone_needs_no_camera() -> None:
    graph = nx.MultiGraph()
    graph.add_node(0, x=0.0, y=0.0)
    graph.add_node(1, x=1_000.0, y=1_000.0)
    graph.add_node(2, x=100.0, y=0.0)
    graph.add_edge(0, 2, lanes=2.0)
    plan = plan_cordon(graph, SQUARE, protected="boundary")
    assert plan.links == ()
    assert plan.cost == plan.flow_value == 0.0
    assert plan.verify(graph).holds


def test_mixed_node_types_are_ordered_repeatably() -> None:
    graph = nx.MultiGraph()
    for node, (x, y) in {"a": (0, 0), 7: (1_000, 1_000), (3, 4): (600, 600)}.items():
        graph.add_node(node, x=float(x), y=float(y))
    for u, v in itertools.combinations(list(graph.nodes), 2):
        graph.add_edge(u, v, lanes=2.0)
    plan = plan_cordon(graph, SQUARE, protected=300.0)
    assert plan.verify(graph).holds
    assert plan == plan_cordon(graph, SQUARE, protected=300.0)
