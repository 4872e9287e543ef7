"""Planner adapters against the real shared data: police.uk crimes, Knowsley LSOAs, Meridian 2, Rutland OSM.

The expected numbers come from ../shared/data/README.md and ../shared/notes/cordon.md (measured there).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

import planner.data
import planner.errors
from cordon.errors import CordonError
from planner.data import (
    CRIME_COLUMNS,
    DEFAULT_CRIME_WEIGHTS,
    DEFAULT_MERIDIAN_LANES,
    load_boundary,
    load_crimes,
    load_road_graph_meridian,
    load_road_graph_osm,
    snap_points,
)
from planner.errors import DataError, PlannerError

# Read at import: the autouse clean_environ fixture removes CORDON_* variables before each test runs.
SHARED = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DATA = SHARED / "data"
POLICE = DATA / "police-uk"
LSOA = DATA / "lsoa-2001" / "england_low_soa_2001.shp"
MERIDIAN = [DATA / "os-meridian2" / f"{name}_polyline.shp" for name in ("motorway", "a_road", "b_road")]
RUTLAND_OSM = DATA / "osm-uk-fallback-rutland" / "rutland-2018-02-27-highways.osm.bz2"

# month: (rows, rows whose LSOA name starts "Knowsley", rows with an empty Crime ID or None if not listed)
CRIME_FILES = {
    "2014-04": (12_925, 1_281, None),
    "2017-01": (12_444, 1_133, 3_420),
    "2018-06": (14_576, 1_407, None),
    "2018-12": (12_636, 1_109, 2_020),
    "2019-09": (13_350, 1_319, 2_317),
    "2019-10": (15_523, 1_657, 3_319),
    "2019-11": (14_060, 1_309, 2_228),
    "2019-12": (12_743, 1_068, 1_648),
    "2021-12": (14_018, 1_288, 1_144),
}


def crime_file(month: str) -> Path:
    return POLICE / f"police-uk-{month}-merseyside-street.csv"


@pytest.fixture(scope="module", autouse=True)
def _shared_data() -> None:
    """The real data in ../shared/data (never copied into the repo) must be there."""
    if not (POLICE.is_dir() and LSOA.is_file() and all(path.is_file() for path in MERIDIAN)):
        pytest.fail(f"shared data not found in {DATA}; set CORDON_SHARED_DIR to the shared folder")


@pytest.fixture(scope="module")
def all_crimes() -> gpd.GeoDataFrame:
    return load_crimes([crime_file(month) for month in CRIME_FILES])


@pytest.fixture(scope="module")
def knowsley() -> Polygon | MultiPolygon:
    return load_boundary(lsoa_shapefile=LSOA, name_prefix="Knowsley")


@pytest.fixture(scope="module")
def meridian(knowsley: Polygon | MultiPolygon) -> nx.MultiGraph:
    return load_road_graph_meridian(MERIDIAN, clip=knowsley, buffer_m=5000)


def test_public_api_is_pinned() -> None:
    assert set(planner.errors.__all__) == {"DataError", "PlannerError"}
    assert set(planner.data.__all__) == {
        "BNG",
        "CRIME_COLUMNS",
        "DEFAULT_ARTERIAL_HIGHWAYS",
        "DEFAULT_CRIME_WEIGHTS",
        "DEFAULT_DRIVE_HIGHWAYS",
        "DEFAULT_MERIDIAN_LANES",
        "DEFAULT_OSM_LANES_PER_DIRECTION",
        "MERIDIAN_ROAD_CLASSES",
        "load_boundary",
        "load_crimes",
        "load_road_graph_meridian",
        "load_road_graph_osm",
        "load_road_graph_overpass",
        "SITE_COLUMNS",
        "load_camera_sites",
        "snap_points",
    }


def test_errors_refine_cordon_and_builtin_errors() -> None:
    assert issubclass(PlannerError, CordonError)
    assert issubclass(DataError, PlannerError)
    assert issubclass(DataError, ValueError)


# ------------------------------------------------------------------------------------------------- crimes


@pytest.mark.parametrize("month", list(CRIME_FILES))
def test_each_crime_file_loads_with_readme_counts(month: str) -> None:
    rows, in_knowsley, empty_ids = CRIME_FILES[month]
    crimes = load_crimes([crime_file(month)])
    assert len(crimes) == rows
    assert crimes["lsoa_name"].str.startswith("Knowsley").sum() == in_knowsley
    assert tuple(crimes.columns) == CRIME_COLUMNS
    assert crimes.crs.to_epsg() == 27700
    assert set(crimes["month"]) == {month}
    assert crimes.attrs["dropped_no_location"] == 0
    assert crimes["crime_type"].nunique() == 14
    if empty_ids is not None:
        assert (crimes["crime_id"] == "").sum() == empty_ids
    # Merseyside in British National Grid (metres): eastings ~300-360 km, northings ~370-420 km.
    x, y = crimes.geometry.x, crimes.geometry.y
    assert x.between(300_000, 370_000).all()
    assert y.between(360_000, 430_000).all()


def test_bare_cr_line_endings_are_read_as_rows() -> None:
    path = crime_file("2014-04")
    raw = path.read_bytes()
    assert b"\r" in raw
    assert b"\n" not in raw  # the quirk under test: old-Mac line endings only
    crimes = load_crimes([path])
    assert len(crimes) == 12_925
    first = crimes.iloc[0]
    assert (first["crime_id"], first["month"], first["crime_type"]) == (
        "",
        "2014-04",
        "Anti-social behaviour",
    )
    assert (first["lsoa_code"], first["lsoa_name"]) == ("E01012393", "Halton 001B")
    assert crimes["crime_id"].str.len().isin([0, 64]).all()  # no header or line-ending debris in any cell


def test_file_without_crime_id_column_loads_with_empty_ids() -> None:
    path = crime_file("2018-06")
    assert "Crime ID" not in path.read_text(encoding="utf-8").splitlines()[0]
    crimes = load_crimes([path])
    assert len(crimes) == 14_576
    assert (crimes["crime_id"] == "").all()


def test_empty_crime_ids_are_anti_social_behaviour() -> None:
    crimes = load_crimes([crime_file("2019-10")])
    empty = crimes["crime_id"] == ""
    assert set(crimes.loc[empty, "crime_type"]) == {"Anti-social behaviour"}


def test_all_nine_months_load_together(all_crimes: gpd.GeoDataFrame) -> None:
    assert len(all_crimes) == 122_275
    assert all_crimes["lsoa_name"].str.startswith("Knowsley").sum() == 11_571
    assert Counter(all_crimes["month"]) == {month: rows for month, (rows, _, _) in CRIME_FILES.items()}


def test_knowsley_names_and_boundary_agree(
    all_crimes: gpd.GeoDataFrame, knowsley: Polygon | MultiPolygon
) -> None:
    """README: name-based and point-in-polygon counts agree exactly (so the projection is right)."""
    named = all_crimes["lsoa_name"].str.startswith("Knowsley").to_numpy()
    shapely.prepare(knowsley)
    inside = shapely.covers(knowsley, all_crimes.geometry.to_numpy())
    assert (named == inside).all()


def test_default_weights_follow_the_cctv_evidence(all_crimes: gpd.GeoDataFrame) -> None:
    weights = DEFAULT_CRIME_WEIGHTS
    assert weights["Vehicle crime"] == max(weights.values()) == 1.0
    assert (
        weights["Violence and sexual offences"] < weights["Theft from the person"] < weights["Vehicle crime"]
    )
    assert weights["Anti-social behaviour"] < weights["Burglary"]
    expected = all_crimes["crime_type"].map(weights)
    assert (all_crimes["weight"] == expected).all()
    assert set(all_crimes["crime_type"]) <= set(weights)


def test_custom_weights_are_applied() -> None:
    types = set(load_crimes([crime_file("2019-12")])["crime_type"])
    weights = dict.fromkeys(types, 0.0) | {"Vehicle crime": 5.0}
    crimes = load_crimes([crime_file("2019-12")], weights=weights)
    assert set(crimes.loc[crimes["crime_type"] == "Vehicle crime", "weight"]) == {5.0}
    assert set(crimes.loc[crimes["crime_type"] != "Vehicle crime", "weight"]) == {0.0}


def test_crime_type_without_weight_is_rejected() -> None:
    with pytest.raises(DataError, match=r"'Drugs' \(\d+ rows\) has no weight"):
        load_crimes([crime_file("2019-12")], weights={"Vehicle crime": 1.0})
    with pytest.raises(DataError, match="finite number >= 0"):
        load_crimes([crime_file("2019-12")], weights=dict(DEFAULT_CRIME_WEIGHTS) | {"Drugs": -1.0})


def test_rows_without_coordinates_are_dropped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = crime_file("2019-10").read_text(encoding="utf-8").splitlines()[:51]
    header = lines[0].split(",")
    lon, lat = header.index("Longitude"), header.index("Latitude")
    for row in (1, 7, 30):  # police.uk leaves both blank for crimes it cannot place
        cells = lines[row].split(",")
        cells[lon] = cells[lat] = ""
        lines[row] = ",".join(cells)
    path = tmp_path / "with-gaps.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="planner.data"):
        crimes = load_crimes([path])
    assert len(crimes) == 47
    assert crimes.attrs["dropped_no_location"] == 3
    assert "dropped 3 of 50 crimes" in caplog.text
    assert crimes.geometry.notna().all()


def test_unreadable_crime_files_are_reported_together(tmp_path: Path) -> None:
    missing_column = tmp_path / "no-month.csv"
    missing_column.write_text("Crime type,Longitude,Latitude\nDrugs,-2.8,53.4\n", encoding="utf-8")
    bad_month = tmp_path / "bad-month.csv"
    bad_month.write_text("Month,Crime type,Longitude,Latitude\n04/2019,Drugs,-2.8,53.4\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_crimes([missing_column, bad_month, tmp_path / "absent.csv"])
    message = str(info.value)
    assert "no-month.csv: missing column(s) Month" in message
    assert "bad-month.csv: malformed Month" in message
    assert "absent.csv: cannot read" in message
    with pytest.raises(DataError, match="no crime files"):
        load_crimes([])


def test_snap_points_aggregate_crimes(all_crimes: gpd.GeoDataFrame) -> None:
    crimes = all_crimes[all_crimes["lsoa_name"].str.startswith("Knowsley")]
    points = snap_points(crimes)
    assert points.crs.to_epsg() == 27700
    assert len(points) < len(crimes) / 3  # police.uk anonymises to shared snap points
    assert points["n_crimes"].sum() == len(crimes)
    assert points["weight"].sum() == pytest.approx(crimes["weight"].sum())
    assert not points[["x", "y"]].duplicated().any()
    assert list(points["point_id"]) == list(range(len(points)))
    assert points[["x", "y"]].apply(tuple, axis=1).is_monotonic_increasing
    type_columns = [column for column in points.columns if column.startswith("n_") and column != "n_crimes"]
    assert len(type_columns) == 14
    assert "n_vehicle_crime" in type_columns
    assert (points[type_columns].sum(axis=1) == points["n_crimes"]).all()
    assert points["n_vehicle_crime"].sum() == (crimes["crime_type"] == "Vehicle crime").sum()
    assert points["lsoa_code"].str.startswith("E01").all()
    assert snap_points(crimes).equals(points)  # deterministic


def test_snap_points_need_british_national_grid(all_crimes: gpd.GeoDataFrame) -> None:
    with pytest.raises(DataError, match="EPSG:27700"):
        snap_points(all_crimes.head(10).to_crs("EPSG:4326"))


# ----------------------------------------------------------------------------------------------- boundary


def test_knowsley_boundary_from_lsoas(knowsley: Polygon | MultiPolygon) -> None:
    assert isinstance(knowsley, Polygon | MultiPolygon)
    assert knowsley.is_valid
    assert knowsley.area / 1e6 == pytest.approx(86.5, abs=0.5)
    # Knowsley lies east of Liverpool: its centre is near (345 km E, 392 km N).
    centre = knowsley.centroid
    assert 340_000 < centre.x < 350_000
    assert 385_000 < centre.y < 400_000


def test_boundary_from_polygon_file_is_reprojected(knowsley: Polygon | MultiPolygon, tmp_path: Path) -> None:
    path = tmp_path / "knowsley.gpkg"
    gpd.GeoSeries([knowsley], crs="EPSG:27700").to_crs("EPSG:4326").to_file(path)
    again = load_boundary(polygon_file=path)
    assert again.area == pytest.approx(knowsley.area, rel=1e-4)
    assert again.symmetric_difference(knowsley).area < 1e-4 * knowsley.area


def test_boundary_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="exactly one"):
        load_boundary()
    with pytest.raises(DataError, match="exactly one"):
        load_boundary(polygon_file=LSOA, lsoa_shapefile=LSOA, name_prefix="Knowsley")
    with pytest.raises(DataError, match="name_prefix"):
        load_boundary(lsoa_shapefile=LSOA)
    with pytest.raises(DataError, match="starting with 'Atlantis'"):
        load_boundary(lsoa_shapefile=LSOA, name_prefix="Atlantis")
    with pytest.raises(DataError, match="cannot read"):
        load_boundary(polygon_file=tmp_path / "absent.gpkg")


# ----------------------------------------------------------------------------------------- Meridian graph


def test_meridian_graph_matches_the_notes(meridian: nx.MultiGraph) -> None:
    """notes/cordon.md: 2,852 nodes, 2,972 links, one connected component."""
    assert isinstance(meridian, nx.MultiGraph)
    assert not meridian.is_directed()
    assert meridian.number_of_nodes() == 2_852
    assert meridian.number_of_edges() == 2_972
    assert nx.number_connected_components(meridian) == 1
    assert meridian.graph["crs"] == "EPSG:27700"
    assert list(meridian.nodes) == list(range(2_852))
    coords = np.array([(data["x"], data["y"]) for _, data in meridian.nodes(data=True)])
    assert (coords == np.round(coords)).all()  # snapped to 1 m
    assert [tuple(row) for row in coords] == sorted(tuple(row) for row in coords)


def test_meridian_links_carry_class_lanes_and_length(meridian: nx.MultiGraph) -> None:
    classes = Counter(data["road_class"] for _, _, data in meridian.edges(data=True))
    assert set(classes) == {"motorway", "a_road", "b_road"}
    for u, v, data in meridian.edges(data=True):
        assert data["lanes"] == DEFAULT_MERIDIAN_LANES[data["road_class"]]
        a, b = meridian.nodes[u], meridian.nodes[v]
        assert data["length_m"] == pytest.approx(np.hypot(a["x"] - b["x"], a["y"] - b["y"]))
        assert data["length_m"] > 0
        assert data["number"]  # every Meridian road has a number (M57, A580, B5201 ...)
    numbers = {data["number"] for _, _, data in meridian.edges(data=True)}
    assert {"M57", "M62", "A580", "A57", "A5300", "A58"} <= numbers
    names = {data["name"] for _, _, data in meridian.edges(data=True)}
    assert "EAST LANCASHIRE ROAD" in names


def test_meridian_boundary_crossings(meridian: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> None:
    """README: 22 road segments touch or cross the boundary: 3 motorway, 12 A-road, 7 B-road."""
    shapely.prepare(knowsley)
    inside = {node: knowsley.covers(shapely.Point(d["x"], d["y"])) for node, d in meridian.nodes(data=True)}
    crossing = [(u, v, d) for u, v, d in meridian.edges(data=True) if inside[u] != inside[v]]
    assert len(crossing) == 22
    assert Counter(d["road_class"] for _, _, d in crossing) == {"motorway": 3, "a_road": 12, "b_road": 7}
    # One more link meets the boundary line without changing side: a 122 m piece of the B5201 (Old Lane)
    # whose two ends are both inside; its straight line leaves Knowsley for ~17 m and comes back.
    line = knowsley.boundary
    touching = [
        (u, v, d)
        for u, v, d in meridian.edges(data=True)
        if shapely.LineString([(meridian.nodes[n]["x"], meridian.nodes[n]["y"]) for n in (u, v)]).intersects(
            line
        )
    ]
    extra = [(u, v, d) for u, v, d in touching if inside[u] == inside[v]]
    assert len(touching) == 23
    assert [(d["number"], inside[u]) for u, _, d in extra] == [("B5201", True)]


def test_meridian_lanes_mapping_is_configurable(knowsley: Polygon | MultiPolygon) -> None:
    lanes = {"motorway": 8.0, "a_road": 4.0, "b_road": 2.0}
    graph = load_road_graph_meridian(MERIDIAN[:1], clip=knowsley, lanes=lanes)
    assert {data["lanes"] for _, _, data in graph.edges(data=True)} == {8.0}
    with pytest.raises(DataError, match=r"no lane count for road class\(es\) \['b_road'\]"):
        load_road_graph_meridian(MERIDIAN[2:], clip=knowsley, lanes={"motorway": 6.0})


def test_meridian_rejects_files_that_are_not_roads(knowsley: Polygon | MultiPolygon) -> None:
    with pytest.raises(DataError, match="no CODE column"):
        load_road_graph_meridian([LSOA], clip=knowsley)
    with pytest.raises(DataError, match="buffer_m"):
        load_road_graph_meridian(MERIDIAN, clip=knowsley, buffer_m=-1)


# ---------------------------------------------------------------------------------------------- OSM graph


@pytest.fixture(scope="module")
def rutland() -> nx.MultiGraph:
    if not RUTLAND_OSM.is_file():
        pytest.fail(f"OSM fixture not found: {RUTLAND_OSM}")
    return load_road_graph_osm(RUTLAND_OSM, keep_highways=None)


def test_osm_fixture_loads_like_the_readme(rutland: nx.MultiGraph) -> None:
    """README: osmnx gives 5,624 nodes and 13,862 directed edges; undirected, those are 7,115 links."""
    assert isinstance(rutland, nx.MultiGraph)
    assert not rutland.is_directed()
    assert rutland.number_of_nodes() == 5_624
    assert rutland.number_of_edges() == 7_115
    assert rutland.graph["crs"] == "EPSG:27700"
    xs = np.array([data["x"] for _, data in rutland.nodes(data=True)])
    ys = np.array([data["y"] for _, data in rutland.nodes(data=True)])
    # Rutland (lon -0.85..-0.39, lat 52.52..52.77) in British National Grid metres.
    assert 470_000 < xs.min() < xs.max() < 515_000
    assert 285_000 < ys.min() < ys.max() < 325_000
    for _, _, data in rutland.edges(data=True):
        assert data["lanes"] > 0
        assert data["length_m"] > 0


def test_osm_marks_arterial_roads(rutland: nx.MultiGraph) -> None:
    classes = Counter((data["road_class"], data["arterial"]) for _, _, data in rutland.edges(data=True))
    arterial = {road_class for (road_class, flag) in classes if flag}
    assert arterial == {"trunk", "trunk_link", "primary", "primary_link"}  # no motorway in Rutland
    assert classes[("residential", False)] > 1000
    a1 = [data for _, _, data in rutland.edges(data=True) if data["number"] == "A1"]
    assert a1
    assert all(data["arterial"] for data in a1)
    # The A1 is a dual carriageway: each one-way carriageway is tagged lanes=2.
    assert Counter(data["lanes"] for data in a1).most_common(1)[0][0] == 2.0


@pytest.mark.slow
def test_osm_default_keeps_drivable_roads(rutland: nx.MultiGraph) -> None:
    driven = load_road_graph_osm(RUTLAND_OSM)
    kept = {data["road_class"] for _, _, data in driven.edges(data=True)}
    assert not kept & {"footway", "cycleway", "bridleway", "path", "track", "steps", "pedestrian"}
    assert 0.6 * rutland.number_of_edges() < driven.number_of_edges() < rutland.number_of_edges()
    assert all(driven.degree(node) > 0 for node in driven.nodes)


def test_osm_pbf_is_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot read \.osm\.pbf"):
        load_road_graph_osm(DATA / "osm-uk-fallback-rutland" / "rutland-2018-02-27.osm.pbf")
    with pytest.raises(DataError, match="no such file"):
        load_road_graph_osm(tmp_path / "absent.osm")
