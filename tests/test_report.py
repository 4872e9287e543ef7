"""Planner outputs: GeoJSON/CSV round trips, the offline HTML map on real Knowsley data, summaries, progress.

The map page is parsed here (no browser): it must load nothing from the network, carry its layers as GeoJSON
with the right feature counts, and escape what it embeds. Browser rendering is checked elsewhere.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import math
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from rich.console import Console
from shapely.geometry import MultiPolygon, Polygon

import planner.report
from planner.backtest import NotEnoughMonths, backtest, kde_grid
from planner.cordon import CordonPlan, plan_cordon
from planner.data import load_boundary, load_crimes, load_road_graph_meridian
from planner.errors import DataError, PlannerError
from planner.report import (
    ATTRIBUTIONS,
    DENSITY_COLOURS,
    LEAFLET_VERSION,
    format_backtest,
    rich_progress,
    road_lines,
    write_map_html,
    write_sites_csv,
    write_sites_geojson,
)

SHARED = Path(os.environ.get("CORDON_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))
DATA = SHARED / "data"
LSOA = DATA / "lsoa-2001" / "england_low_soa_2001.shp"
MERIDIAN = [DATA / "os-meridian2" / f"{name}_polyline.shp" for name in ("motorway", "a_road", "b_road")]
CRIMES_2019_12 = DATA / "police-uk" / "police-uk-2019-12-merseyside-street.csv"
BNG = "EPSG:27700"

# sha256 of the vendored Leaflet 1.9.4 files, as unpacked from `npm pack leaflet@1.9.4`.
LEAFLET_SHA256 = {
    "leaflet.js": "db49d009c841f5ca34a888c96511ae936fd9f5533e90d8b2c4d57596f4e5641a",
    "leaflet.css": "a7837102824184820dfa198d1ebcd109ff6d0ff9a2672a074b9a1b4d147d04c6",
    "images/layers.png": "1dbbe9d028e292f36fcba8f8b3a28d5e8932754fc2215b9ac69e4cdecf5107c6",
    "images/layers-2x.png": "066daca850d8ffbef007af00b06eac0015728dee279c51f3cb6c716df7c42edf",
    "images/marker-icon.png": "574c3a5cca85f4114085b6841596d62f00d7c892c7b03f28cbfa301deb1dc437",
    "images/marker-icon-2x.png": "00179c4c1ee830d3a108412ae0d294f55776cfeb085c60129a39aa6fc4ae2528",
    "images/marker-shadow.png": "264f5c640339f042dd729062cfc04c17f8ea0f29882b538e3848ed8f10edb4da",
}


def test_public_api_is_pinned() -> None:
    assert set(planner.report.__all__) == {
        "ATTRIBUTIONS",
        "DENSITY_COLOURS",
        "LEAFLET_VERSION",
        "format_backtest",
        "rich_progress",
        "road_lines",
        "write_map_html",
        "write_sites_csv",
        "write_sites_geojson",
    }


def test_vendored_leaflet_is_the_released_1_9_4_with_its_licence() -> None:
    leaflet = importlib.resources.files("planner") / "static" / "leaflet"
    for name, digest in LEAFLET_SHA256.items():
        assert hashlib.sha256(leaflet.joinpath(name).read_bytes()).hexdigest() == digest, name
    licence = leaflet.joinpath("LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("BSD 2-Clause License")
    assert "Volodymyr Agafonkin" in licence
    assert f't.version="{LEAFLET_VERSION}"' in leaflet.joinpath("leaflet.js").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ sites


def sample_sites() -> gpd.GeoDataFrame:
    """Five ranked sites in Knowsley (EPSG:27700) with the kinds of columns a ranking has."""
    return gpd.GeoDataFrame(
        {
            "rank": np.arange(1, 6, dtype=np.int64),
            "score": [0.91, 0.75, math.nan, 0.4, 0.125],
            "crimes_covered": np.array([52, 31, 20, 12, 7], dtype=np.int64),
            "on_arterial": [True, False, True, False, False],
            "explanation": ["Huyton town centre", "A57 junction", "Kirkby, near \u00c9cole", "", "car park"],
            "components": [[0.5, 0.41], [0.4, 0.35], [0.1, 0.0], [0.2, 0.2], [0.1, 0.025]],
        },
        geometry=gpd.points_from_xy(
            [341_820.0, 339_114.0, 347_833.0, 346_842.0, 343_000.5],
            [400_559.0, 397_425.0, 391_762.0, 392_519.1, 395_000.25],
        ),
        crs=BNG,
    )


def test_sites_geojson_round_trips_through_pyogrio(tmp_path: Path) -> None:
    sites = sample_sites()
    path = write_sites_geojson(tmp_path / "sites.geojson", sites)
    back = gpd.read_file(path, engine="pyogrio")
    assert back.crs.to_epsg() == 4326
    scalar = ["rank", "score", "crimes_covered", "on_arterial", "explanation"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(back[scalar]), pd.DataFrame(sites[scalar]), check_dtype=False, check_exact=True
    )
    expected = sites.geometry.to_crs("EPSG:4326")
    assert np.abs(back.geometry.x - expected.x).max() <= 5e-7
    assert np.abs(back.geometry.y - expected.y).max() <= 5e-7
    # Back in British National Grid the rounding to 6 decimals costs at most about 0.1 m.
    assert back.geometry.to_crs(BNG).distance(sites.geometry).max() < 0.1


def test_sites_geojson_follows_rfc_7946(tmp_path: Path) -> None:
    raw = json.loads(write_sites_geojson(tmp_path / "s.geojson", sample_sites()).read_text(encoding="utf-8"))
    assert raw["type"] == "FeatureCollection"
    assert "crs" not in raw  # RFC 7946: WGS84 implied, no crs member
    assert len(raw["features"]) == 5
    first = raw["features"][0]
    lon, lat = first["geometry"]["coordinates"]
    assert -3.0 < lon < -2.7
    assert 53.3 < lat < 53.6
    assert round(lon, 6) == lon
    assert round(lat, 6) == lat
    assert first["properties"]["components"] == [0.5, 0.41]
    assert raw["features"][2]["properties"]["score"] is None  # NaN is not JSON
    assert raw["features"][2]["properties"]["explanation"] == "Kirkby, near \u00c9cole"


def test_polygons_are_written_with_anticlockwise_exterior_rings(tmp_path: Path) -> None:
    clockwise = Polygon([(340_000, 395_000), (340_000, 396_000), (341_000, 396_000), (341_000, 395_000)])
    assert not clockwise.exterior.is_ccw
    frame = gpd.GeoDataFrame({"name": ["area"]}, geometry=[clockwise], crs=BNG)
    raw = json.loads(write_sites_geojson(tmp_path / "a.geojson", frame).read_text(encoding="utf-8"))
    ring = raw["features"][0]["geometry"]["coordinates"][0]
    assert shapely.LinearRing(ring).is_ccw


def test_sites_csv_has_both_coordinate_systems(tmp_path: Path) -> None:
    sites = sample_sites()
    path = write_sites_csv(tmp_path / "sites.csv", sites)
    text = path.read_text(encoding="utf-8")
    assert "\r" not in text
    table = pd.read_csv(path)
    assert list(table.columns) == [*sites.columns.drop("geometry"), "lon", "lat", "easting", "northing"]
    assert table["easting"].tolist() == [341_820.0, 339_114.0, 347_833.0, 346_842.0, 343_000.5]
    assert table["northing"].tolist() == [400_559.0, 397_425.0, 391_762.0, 392_519.1, 395_000.2]
    wgs = sites.geometry.to_crs("EPSG:4326")
    assert np.abs(table["lon"] - wgs.x).max() <= 5e-7
    assert np.abs(table["lat"] - wgs.y).max() <= 5e-7
    assert json.loads(table["components"][0]) == [0.5, 0.41]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]


def test_site_writers_reject_what_they_cannot_write(tmp_path: Path) -> None:
    no_crs = sample_sites().set_crs(None, allow_override=True)
    with pytest.raises(DataError, match="no CRS"):
        write_sites_geojson(tmp_path / "x.geojson", no_crs)
    with pytest.raises(DataError, match="no CRS"):
        write_sites_csv(tmp_path / "x.csv", no_crs)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=BNG)
    with pytest.raises(DataError, match="must be a point"):
        write_sites_csv(tmp_path / "x.csv", lines)
    with pytest.raises(DataError, match=r"\['lat'\]"):
        write_sites_csv(tmp_path / "x.csv", sample_sites().assign(lat=1.0))
    with pytest.raises(PlannerError, match="cannot write"):
        write_sites_geojson(tmp_path / "missing" / "x.geojson", sample_sites())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written


# ------------------------------------------------------------------------------------------------- map


class Page(HTMLParser):
    """Collects elements, their attributes and script/style text, and checks that tags are balanced."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "source", "area", "base", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: dict[str, list[str]] = {"script": [], "style": [], "title": []}
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] in self.text:
            self.text[self.stack[-1]].append(data)

    def element(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse(path: Path) -> tuple[Page, dict[str, Any]]:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.errors == []
    assert page.stack == []
    data_scripts = page.element("script", type="application/json", id="cordon-data")
    assert len(data_scripts) == 1
    scripts = page.text["script"]
    data = json.loads(next(s for s in scripts if s.lstrip().startswith("{")))
    return page, data


def external_references(page: Page) -> list[str]:
    """Every URL the page would fetch by itself: element sources/links and CSS urls that are not data URIs."""
    found = []
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "data", "poster"):
            value = attrs.get(name)
            if value is not None and tag in ("script", "link", "img", "iframe", "source", "embed", "object"):
                found.append(f"<{tag} {name}={value}>")
    for css in page.text["style"]:
        found += [u for u in re.findall(r"url\(['\"]?([^'\")]+)", css) if not u.startswith(("data:", "#"))]
        found += re.findall(r"@import[^;]+", css)
    return found


def coordinates(geometry: dict[str, Any]) -> list[float]:
    values: list[float] = []

    def walk(item: Any) -> None:
        if isinstance(item, list) and item and isinstance(item[0], int | float):
            values.extend(item)
        elif isinstance(item, list):
            for part in item:
                walk(part)

    walk(geometry["coordinates"])
    return values


@pytest.fixture(scope="module")
def knowsley() -> Polygon | MultiPolygon:
    if not LSOA.is_file():
        pytest.fail(f"shared data not found in {DATA}; set CORDON_SHARED_DIR to the shared folder")
    return load_boundary(lsoa_shapefile=LSOA, name_prefix="Knowsley")


@pytest.fixture(scope="module")
def roads(knowsley: Polygon | MultiPolygon) -> nx.MultiGraph:
    return load_road_graph_meridian(MERIDIAN, clip=knowsley, buffer_m=5000)


@pytest.fixture(scope="module")
def plan(roads: nx.MultiGraph, knowsley: Polygon | MultiPolygon) -> CordonPlan:
    return plan_cordon(roads, knowsley, protected=500.0)


@pytest.fixture(scope="module")
def knowsley_map(
    tmp_path_factory: pytest.TempPathFactory,
    knowsley: Polygon | MultiPolygon,
    roads: nx.MultiGraph,
    plan: CordonPlan,
) -> tuple[Path, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    crimes = load_crimes([CRIMES_2019_12])
    crimes = crimes[crimes["lsoa_name"].str.startswith("Knowsley")]
    sites = sample_sites()
    sites.loc[0, "explanation"] = "</script><script>alert('x')</script> & <b>bold</b>"
    arterial = road_lines(roads)
    path = write_map_html(
        tmp_path_factory.mktemp("map") / "knowsley.html",
        boundary=knowsley,
        crimes=crimes,
        arterial_roads=arterial,
        sites=sites,
        cordon_links=plan.links,
        title='Knowsley <CCTV> & "ANPR" plan',
        coverage_radius_m=200,
        attribution=[ATTRIBUTIONS[k] for k in ("police-uk", "os-meridian2", "lsoa-2001")],
    )
    return path, sites, arterial


def test_map_loads_nothing_from_the_network(
    knowsley_map: tuple[Path, gpd.GeoDataFrame, gpd.GeoDataFrame],
) -> None:
    path, _, _ = knowsley_map
    page, data = parse(path)
    assert external_references(page) == []
    assert page.element("link") == []
    assert all("src" not in attrs for attrs in page.element("script"))
    html_text = path.read_text(encoding="utf-8")
    assert "tile.openstreetmap.org" not in html_text
    assert "sourceMappingURL" not in html_text
    assert not re.search(r"https?://", json.dumps(data))
    assert f'version="{LEAFLET_VERSION}"' in html_text  # Leaflet itself is inlined
    assert path.stat().st_size < 1_000_000


def test_map_layers_have_the_right_features(
    knowsley_map: tuple[Path, gpd.GeoDataFrame, gpd.GeoDataFrame], plan: CordonPlan
) -> None:
    path, sites, arterial = knowsley_map
    _, data = parse(path)
    assert len(data["boundary"]["features"]) == 1
    assert len(data["sites"]["features"]) == len(sites) == 5
    assert len(data["cordon"]["features"]) == plan.camera_count == 18  # notes/cordon.md: 500 m zone
    assert len(data["roads"]["features"]) == len(arterial)
    assert [c["colour"] for c in data["density_classes"]] == list(DENSITY_COLOURS)
    assert 1 <= len(data["density"]["features"]) <= 5
    assert data["coverage_radius_m"] == 200
    assert data["attribution"][2].startswith("Boundary: This work is based on data provided through EDINA")
    cordon = data["cordon"]["features"]
    assert {f["properties"]["label"] for f in cordon} == {c.link.label for c in plan.links}
    assert all(f["properties"]["routes_closed"] for f in cordon)
    assert sum(f["properties"]["reader_lanes"] for f in cordon) == plan.cost
    site = data["sites"]["features"][1]["properties"]
    assert site == {
        "rank": 2,
        "score": 0.75,
        "crimes_covered": 31,
        "on_arterial": False,
        "explanation": "A57 junction",
        "components": [0.4, 0.35],
    }
    for layer in ("boundary", "density", "roads", "sites", "cordon"):
        for feature in data[layer]["features"]:
            values = coordinates(feature["geometry"])
            assert all(round(v, 6) == v for v in values), layer
            assert all(-3.1 < lon < -2.6 for lon in values[0::2]), layer  # lon first, Merseyside
            assert all(53.3 < lat < 53.6 for lat in values[1::2]), layer


def test_map_density_layer_is_the_kde_of_the_crimes(
    knowsley_map: tuple[Path, gpd.GeoDataFrame, gpd.GeoDataFrame], knowsley: Polygon | MultiPolygon
) -> None:
    """The class polygons cover exactly the cells at or above the mean density (within simplification)."""
    path, _, _ = knowsley_map
    _, data = parse(path)
    crimes = load_crimes([CRIMES_2019_12])
    crimes = crimes[crimes["lsoa_name"].str.startswith("Knowsley")]
    grid = kde_grid(
        shapely.get_coordinates(crimes.geometry.to_numpy()),
        crimes["weight"].to_numpy(),
        boundary=knowsley,
        cell_m=150,
        bandwidth_m=200,
    )
    mean = float((grid.density * grid.area_m2).sum() / grid.area_m2.sum())
    hot_area = float(grid.area_m2[grid.density >= mean].sum())
    drawn = gpd.GeoDataFrame.from_features(data["density"]["features"], crs="EPSG:4326").to_crs(BNG)
    assert drawn.area.sum() == pytest.approx(hot_area, rel=0.01)
    assert drawn["class"].tolist() == sorted(drawn["class"])
    top = drawn[drawn["class"] == drawn["class"].max()]
    assert float(top.area.sum()) < 0.2 * hot_area  # the hottest class is a small part of the hot area


def test_map_escapes_what_it_embeds(knowsley_map: tuple[Path, gpd.GeoDataFrame, gpd.GeoDataFrame]) -> None:
    path, sites, _ = knowsley_map
    page, data = parse(path)
    assert len(page.element("script")) == 3  # data, Leaflet, the map code: the injected tags did not open one
    assert data["sites"]["features"][0]["properties"]["explanation"] == sites.loc[0, "explanation"]
    assert "".join(page.text["title"]) == 'Knowsley <CCTV> & "ANPR" plan'
    assert data["title"] == 'Knowsley <CCTV> & "ANPR" plan'
    assert "<CCTV>" not in path.read_text(encoding="utf-8")


def small_map(tmp_path: Path, **options: Any) -> Path:
    boundary = shapely.box(340_000, 392_000, 342_000, 394_000)
    empty_points = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=BNG))
    road = gpd.GeoDataFrame(
        {"number": ["A57"], "name": [None], "road_class": ["a_road"]},
        geometry=[shapely.LineString([(339_000, 393_000), (343_000, 393_100)])],
        crs=BNG,
    )
    return write_map_html(
        tmp_path / "small.html",
        boundary=boundary,
        crimes=empty_points,
        arterial_roads=road,
        sites=empty_points,
        title="empty",
        **options,
    )


def test_map_with_nothing_to_show_is_still_a_page(tmp_path: Path) -> None:
    page, data = parse(small_map(tmp_path))
    assert external_references(page) == []
    assert [len(data[k]["features"]) for k in ("boundary", "density", "roads", "sites", "cordon")] == [
        1,
        0,
        1,
        0,
        0,
    ]
    assert data["density_note"] == "no crimes in the area"


def test_osm_tiles_only_when_asked(tmp_path: Path) -> None:
    page, _ = parse(small_map(tmp_path, osm_tiles=True))
    text = (tmp_path / "small.html").read_text(encoding="utf-8")
    assert 'L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in text
    assert external_references(page) == []  # still no script or stylesheet from the network


def test_map_checks_its_input(tmp_path: Path) -> None:
    no_crs = gpd.GeoDataFrame(geometry=gpd.GeoSeries([]))
    with pytest.raises(DataError) as info:
        write_map_html(
            tmp_path / "x.html",
            boundary=shapely.LineString([(0, 0), (1, 1)]),
            crimes=no_crs,
            arterial_roads=no_crs,
            sites=no_crs,
            title="x",
            coverage_radius_m=-5,
        )
    message = str(info.value)
    for part in ("boundary must be", "coverage_radius_m = -5", "crimes has no CRS", "sites has no CRS"):
        assert part in message


# ------------------------------------------------------------------------------------------------ roads


def test_road_lines_merge_the_links_of_each_road() -> None:
    graph = nx.MultiGraph()
    for node, (x, y) in enumerate([(0, 0), (100, 0), (200, 0), (300, 0), (100, 100)]):
        graph.add_node(node, x=float(x), y=float(y))
    a57 = {"road_class": "a_road", "number": "A57", "name": None, "lanes": 2.0, "arterial": True}
    for u, v in ((0, 1), (1, 2), (2, 3)):
        graph.add_edge(u, v, **a57, length_m=100.0)
    graph.add_edge(1, 4, road_class="residential", number=None, name="Side St", lanes=2.0, arterial=False)
    lines = road_lines(graph)
    assert lines.crs.to_epsg() == 27700
    assert len(lines) == 1
    row = lines.iloc[0]
    assert (row["number"], row["links"], row["length_m"], row["lanes"]) == ("A57", 3, 300.0, 2.0)
    assert row.geometry.equals(shapely.LineString([(0, 0), (300, 0)]))
    every = road_lines(graph, arterial_only=False)
    assert sorted(every["road_class"]) == ["a_road", "residential"]
    assert every.set_index("road_class").loc["residential", "length_m"] == pytest.approx(100.0)


def test_knowsley_arterial_roads(roads: nx.MultiGraph) -> None:
    lines = road_lines(roads)
    assert {"motorway", "a_road", "b_road"} == set(lines["road_class"])
    assert {"M57", "M62", "A580"} <= set(lines["number"].dropna())
    assert lines["links"].sum() == roads.number_of_edges()
    assert lines["length_m"].sum() == pytest.approx(sum(d["length_m"] for *_, d in roads.edges(data=True)))


# -------------------------------------------------------------------------------------- summary, progress


def test_format_backtest() -> None:
    crimes = gpd.GeoDataFrame(
        {"month": ["2019-09", "2019-09", "2019-10", "2019-10"], "weight": [1.0, 1.0, 1.0, 1.0]},
        geometry=gpd.points_from_xy([100, 110, 105, 900], [100, 100, 100, 900]),
        crs=BNG,
    )
    square = shapely.box(0, 0, 1000, 1000)
    result = backtest(
        crimes,
        boundary=square,
        choose=lambda _: [(100, 100)],
        candidates=[(100, 100), (500, 500)],
        radius_m=50,
    )
    text = format_backtest(result)
    lines = text.splitlines()
    assert lines[0] == "Back-test: sites chosen with 2019-09 (2 crimes), scored on 2019-10 (2 crimes)"
    assert lines[1] == "1 sites, coverage radius 50 m; study area 1.00 km\u00b2"
    assert re.search(r"chosen sites\s+50\.0 %\s+0\.008\s+63\.66$", lines[3])
    assert "random sites, mean of 1000 draws" in text
    assert format_backtest(NotEnoughMonths(months=("2014-04",), needed=2)).startswith("not enough months")


def test_rich_progress_draws_each_step() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with rich_progress(console) as progress:
        grid = kde_grid([(5, 5)], [1.0], boundary=shapely.box(0, 0, 1000, 1000), cell_m=50, progress=progress)
        progress("random site draws", 0, 3)
        progress("random site draws", 3, 3)
    text = out.getvalue()
    assert "KDE density grid" in text
    assert f"{len(grid.cells)}/{len(grid.cells)}" in text
    assert "random site draws" in text
    assert "3/3" in text
