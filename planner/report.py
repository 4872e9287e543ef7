"""Planner outputs: ranked sites as GeoJSON and CSV, an offline HTML map, a back-test summary, progress bars.

These are the adapters at the planner's edge: they write files and draw progress; the numbers come from the
pure cores (:mod:`planner.backtest`, :mod:`planner.cordon`). Inputs are in EPSG:27700 unless a GeoDataFrame
says otherwise (any CRS is reprojected).

* :func:`write_sites_geojson` — RFC 7946 GeoJSON (WGS84 longitude/latitude, 6 decimals, no ``crs`` member);
  every non-geometry column becomes a property. Opens in QGIS.
* :func:`write_sites_csv` — the same table with ``lon``, ``lat`` (WGS84) and ``easting``, ``northing``
  (EPSG:27700 metres) columns.
* :func:`write_map_html` — one self-contained HTML page: Leaflet 1.9.4 (vendored in
  ``planner/static/leaflet``, BSD-2-Clause) is inlined with its images as data URIs, so the page loads
  nothing from the network unless ``osm_tiles=True`` adds an OpenStreetMap base layer. Layers: crime
  density (a Gaussian KDE, classes of multiples of the mean cell density), boundary, arterial roads, chosen
  sites (and their coverage discs) and ANPR cordon links, with a legend and a layer control.
* :func:`road_lines` — the road graph of :mod:`planner.data` as merged lines, for the map.
* :func:`format_backtest` — a back-test result as a text table.
* :func:`rich_progress` — a :data:`planner.backtest.ProgressCallback` drawn as rich progress bars.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.resources
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import geopandas as gpd
import jinja2
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from planner.backtest import Backtest, NotEnoughMonths, ProgressCallback, kde_grid
from planner.cordon import ChosenLink
from planner.errors import DataError, PlannerError

__all__ = [
    "ATTRIBUTIONS",
    "DENSITY_COLOURS",
    "LEAFLET_VERSION",
    "format_backtest",
    "rich_progress",
    "road_lines",
    "write_map_html",
    "write_sites_csv",
    "write_sites_geojson",
]

BNG: Final = "EPSG:27700"
WGS84: Final = "EPSG:4326"
LEAFLET_VERSION: Final = "1.9.4"
"""Version of the Leaflet copy in ``planner/static/leaflet``."""

ATTRIBUTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "police-uk": "Crimes: police.uk. Contains public sector information licensed under the Open "
        "Government Licence v3.0",
        "os-meridian2": "Roads: OS Meridian 2. Contains Ordnance Survey data \u00a9 Crown copyright and "
        "database right",
        "lsoa-2001": "Boundary: This work is based on data provided through EDINA UKBORDERS with the support "
        "of the ESRC and JISC and uses boundary material which is copyright of the Crown.",
        "openstreetmap": "Roads: \u00a9 OpenStreetMap contributors (ODbL)",
    }
)
"""Statements the data licences require on maps made from the shared data sets, by data set; pass the ones
used as ``attribution=`` to :func:`write_map_html`."""

DENSITY_COLOURS: Final = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
"""Fill colours of the density classes, lowest first (ColorBrewer YlOrRd, 5 classes)."""

_COORDINATE_DECIMALS: Final = 6  # degrees: about 0.1 m, the precision RFC 7946 section 11.2 suggests
_STATIC: Final = importlib.resources.files("planner") / "static"
_CSS_URL = re.compile(r"url\((['\"]?)images/([A-Za-z0-9_.-]+\.png)\1\)")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


# ------------------------------------------------------------------------------------------------ sites


def write_sites_geojson(path: Path, sites: gpd.GeoDataFrame) -> Path:
    """Write ranked sites (or any features) as an RFC 7946 GeoJSON FeatureCollection.

    Parameters
    ----------
    path
        The file to write (replaced atomically if it exists).
    sites
        Features with a CRS (EPSG:27700 normally); every non-geometry column (scores, rank, explanation...)
        becomes a property. Missing numbers (NaN) become ``null``; lists and mappings stay JSON arrays and
        objects; other values are written as text.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        ``sites`` has no CRS or a column named like a GeoJSON member it would clash with.
    PlannerError
        The file cannot be written.

    Notes
    -----
    RFC 7946: coordinates are WGS84 longitude, latitude (rounded to 6 decimals, about 0.1 m), polygon
    exterior rings run anticlockwise, and there is no ``crs`` member.
    """
    collection = _feature_collection(_checked(sites, "sites"))
    _write_text(path, json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def write_sites_csv(path: Path, sites: gpd.GeoDataFrame) -> Path:
    """Write ranked point sites as CSV with WGS84 and British National Grid coordinates.

    Parameters
    ----------
    path
        The file to write (UTF-8, LF line ends; replaced atomically if it exists).
    sites
        Point features with a CRS. Columns come first in their order, then ``lon``, ``lat`` (WGS84 degrees,
        6 decimals) and ``easting``, ``northing`` (EPSG:27700 metres, 1 decimal). Lists and mappings are
        written as JSON text.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        No CRS, a geometry that is not a point, or a column already named ``lon``, ``lat``, ``easting`` or
        ``northing``.
    PlannerError
        The file cannot be written.
    """
    frame = _checked(sites, "sites")
    problems = []
    if len(frame) and not (frame.geom_type == "Point").all():
        problems.append(f"every site must be a point, got {sorted(set(frame.geom_type.dropna()))}")
    if clash := [name for name in ("lon", "lat", "easting", "northing") if name in frame.columns]:
        problems.append(f"sites already have column(s) {clash}; rename them")
    if problems:
        raise DataError("cannot write sites CSV:\n  " + "\n  ".join(problems))
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = [_csv_value(value) for value in table[column]]
    wgs = frame.geometry.to_crs(WGS84)
    bng = frame.geometry.to_crs(BNG)
    table["lon"] = np.round(wgs.x.to_numpy(), _COORDINATE_DECIMALS)
    table["lat"] = np.round(wgs.y.to_numpy(), _COORDINATE_DECIMALS)
    table["easting"] = np.round(bng.x.to_numpy(), 1)
    table["northing"] = np.round(bng.y.to_numpy(), 1)
    _write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


# -------------------------------------------------------------------------------------------------- map


def write_map_html(
    path: Path,
    *,
    boundary: Polygon | MultiPolygon,
    crimes: gpd.GeoDataFrame,
    arterial_roads: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame,
    cordon_links: Sequence[ChosenLink] = (),
    title: str,
    coverage_radius_m: float | None = None,
    attribution: Sequence[str] = (),
    osm_tiles: bool = False,
    density_cell_m: float = 150.0,
    density_bandwidth_m: float = 200.0,
    simplify_m: float = 5.0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write a self-contained HTML map of the plan (works offline; Leaflet inlined, no CDN).

    Parameters
    ----------
    path
        The HTML file to write (replaced atomically if it exists).
    boundary
        Study area, EPSG:27700.
    crimes
        Crime points with a CRS and, optionally, a ``weight`` column (default weight 1): drawn as a Gaussian
        kernel density on a grid over the boundary, in five classes of 1-2, 2-3, 3-4, 4-5 and 5 or more times
        the mean cell density (cells below the mean are not drawn).
    arterial_roads
        Road lines with a CRS (e.g. :func:`road_lines`); ``number``, ``name``, ``road_class`` are shown when
        present (``road_class == "motorway"`` is drawn heavier).
    sites
        Chosen sites, points with a CRS; every column appears in the site's popup (an ``explanation`` column
        as a sentence, ``rank`` or ``site_id`` in its heading).
    cordon_links
        ANPR cordon links (:attr:`planner.cordon.CordonPlan.links`), drawn at the link's midpoint; the popup
        names the routes each closes.
    title
        Page and map title.
    coverage_radius_m
        If given, a disc of this radius (metres) is drawn around each site.
    attribution
        Plain-text statements shown in the map's attribution line, e.g. values of :data:`ATTRIBUTIONS`.
    osm_tiles
        Add an OpenStreetMap tile base layer (loads tiles from tile.openstreetmap.org; off by default so
        that the page makes no network request).
    density_cell_m, density_bandwidth_m
        Grid cell and Gaussian bandwidth of the density layer (metres), see
        :func:`planner.backtest.kde_grid`.
    simplify_m
        Tolerance (metres) to simplify the boundary, roads and density outlines with; 0 keeps every vertex.
    progress
        Progress callback for the density grid.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        A frame has no CRS, the boundary is not a polygon, or a number is out of range.
    PlannerError
        The file cannot be written, or the vendored Leaflet files are missing.
    """
    problems = []
    if not isinstance(boundary, Polygon | MultiPolygon) or boundary.is_empty:
        problems.append(f"boundary must be a non-empty (Multi)Polygon, got {type(boundary).__name__}")
    if coverage_radius_m is not None and not (math.isfinite(coverage_radius_m) and coverage_radius_m > 0):
        problems.append(f"coverage_radius_m = {coverage_radius_m!r} must be a finite number > 0")
    if not (math.isfinite(simplify_m) and simplify_m >= 0):
        problems.append(f"simplify_m = {simplify_m!r} must be a finite number >= 0")
    for name, frame in (("crimes", crimes), ("arterial_roads", arterial_roads), ("sites", sites)):
        if frame.crs is None:
            problems.append(f"{name} has no CRS")
    if problems:
        raise DataError("cannot write the map:\n  " + "\n  ".join(problems))

    crime_points = crimes.geometry.to_crs(BNG)
    crime_weights = (
        crimes["weight"].to_numpy(dtype=float) if "weight" in crimes.columns else np.ones(len(crimes))
    )
    grid = kde_grid(
        shapely.get_coordinates(crime_points.to_numpy()),
        crime_weights,
        boundary=boundary,
        cell_m=density_cell_m,
        bandwidth_m=density_bandwidth_m,
        progress=progress,
    )
    density, classes, note = _density_layer(grid.cells, grid.density, grid.area_m2, simplify_m)
    boundary_frame = gpd.GeoDataFrame(geometry=[_simplified(boundary, simplify_m)], crs=BNG)
    roads = arterial_roads.to_crs(BNG)
    roads = roads.set_geometry(
        shapely.simplify(roads.geometry.to_numpy(), simplify_m) if simplify_m else roads.geometry
    )
    data = {
        "title": title,
        "boundary": _feature_collection(boundary_frame),
        "density": _feature_collection(density),
        "density_classes": classes,
        "density_note": note,
        "roads": _feature_collection(
            roads[[c for c in ("road_class", "number", "name") if c in roads] + [roads.geometry.name]]
        ),
        "sites": _feature_collection(_checked(sites, "sites")),
        "coverage_radius_m": None if coverage_radius_m is None else float(coverage_radius_m),
        "cordon": _feature_collection(_cordon_frame(cordon_links)),
        "attribution": list(attribution),
    }
    page = _render(title=title, data=data, osm_tiles=osm_tiles)
    _write_text(path, page)
    return path


def _density_layer(
    cells: np.ndarray, density: np.ndarray, area: np.ndarray, simplify_m: float
) -> tuple[gpd.GeoDataFrame, list[dict[str, str]], str]:
    """Cells dissolved into classes of multiples of the area-weighted mean density (per km²)."""
    per_km2 = density * 1e6
    total_area = float(area.sum())
    mean = float((per_km2 * area).sum() / total_area) if total_area > 0 else 0.0
    classes: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    geometries: list[BaseGeometry] = []
    if mean > 0:
        edges = [mean * k for k in (1, 2, 3, 4, 5)] + [math.inf]
        for i, colour in enumerate(DENSITY_COLOURS):
            low, high = edges[i], edges[i + 1]
            label = (
                f"{low:,.0f}\u2013{high:,.0f} ({i + 1}\u2013{i + 2}\u00d7 mean)"
                if math.isfinite(high)
                else f"\u2265 {low:,.0f} (\u2265 {i + 1}\u00d7 mean)"
            )
            classes.append({"colour": colour, "label": label})
            members = (per_km2 >= low) & (per_km2 < high)
            if not members.any():
                continue
            merged = _simplified(shapely.union_all(cells[members]), simplify_m)
            rows.append({"class": i + 1, "colour": colour, "label": label})
            geometries.append(merged)
    note = (
        f"weighted crimes per km\u00b2; mean {mean:,.0f}; below the mean not drawn"
        if mean > 0
        else "no crimes in the area"
    )
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["class", "colour", "label"]), geometry=geometries, crs=BNG
    )
    return frame, classes, note


def _cordon_frame(links: Sequence[ChosenLink]) -> gpd.GeoDataFrame:
    rows = [
        {
            "label": chosen.link.label,
            "road_class": chosen.link.road_class,
            "lanes": chosen.link.lanes,
            "reader_lanes": chosen.cost,
            "flow_captured": chosen.flow,
            "routes_closed": list(chosen.routes),
            "crossing_links": len(chosen.crossings),
        }
        for chosen in links
    ]
    points = gpd.points_from_xy([c.link.x for c in links], [c.link.y for c in links], crs=BNG)
    columns = [
        "label",
        "road_class",
        "lanes",
        "reader_lanes",
        "flow_captured",
        "routes_closed",
        "crossing_links",
    ]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=points, crs=BNG)


def _render(*, title: str, data: Mapping[str, Any], osm_tiles: bool) -> str:
    """The map page: template with Leaflet's CSS (images inlined) and JS inlined."""
    leaflet = _STATIC / "leaflet"
    try:
        template_text = (_STATIC / "map.html.j2").read_text(encoding="utf-8")
        css = (leaflet / "leaflet.css").read_text(encoding="utf-8")
        js = (leaflet / "leaflet.js").read_text(encoding="utf-8")
        images = {
            name: (leaflet / "images" / name).read_bytes()
            for name in sorted({match.group(2) for match in _CSS_URL.finditer(css)})
        }
    except OSError as exc:
        raise PlannerError(f"the vendored Leaflet files in planner/static are missing: {exc}") from exc

    def data_uri(match: re.Match[str]) -> str:
        encoded = base64.b64encode(images[match.group(2)]).decode("ascii")
        return f'url("data:image/png;base64,{encoded}")'

    css = _CSS_URL.sub(data_uri, css)
    # The source map is not shipped; without the comment a browser's developer tools do not look for it.
    js = _SOURCE_MAP.sub("", js)
    if re.search(r"</script", js, re.IGNORECASE) or re.search(r"</style", css, re.IGNORECASE):
        raise PlannerError("the vendored Leaflet files cannot be inlined (they close their own tag)")
    # In a <script> element only "</" could end it early; \u escapes keep the JSON identical once parsed.
    data_json = (
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.from_string(template_text).render(
        title=title,
        leaflet_version=LEAFLET_VERSION,
        leaflet_css=css,
        leaflet_js=js,
        data_json=data_json,
        osm_tiles=osm_tiles,
    )


# ------------------------------------------------------------------------------------------------ roads


def road_lines(graph: nx.Graph, *, arterial_only: bool = True) -> gpd.GeoDataFrame:
    """The links of a road graph (schema of :mod:`planner.data`) merged into one line feature per road.

    Parameters
    ----------
    graph
        Road graph with node ``x``, ``y`` (EPSG:27700) and edge ``road_class``, ``number``, ``name``,
        ``lanes``, ``arterial`` and optionally ``geometry`` (EPSG:27700).
    arterial_only
        Keep only links with ``arterial`` true.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:27700, one row per (``road_class``, ``number``, ``name``) with columns ``road_class``,
        ``number``, ``name``, ``lanes`` (the most on any of its links), ``length_m`` (total, metres),
        ``links`` (count) and the merged (Multi)LineString, sorted by those three keys.
    """
    groups: dict[tuple[str, str, str], list[tuple[BaseGeometry, float, float]]] = {}
    for u, v, data in graph.edges(data=True):
        if arterial_only and not data.get("arterial", False):
            continue
        geometry = data.get("geometry")
        if not isinstance(geometry, BaseGeometry) or geometry.is_empty:
            a, b = graph.nodes[u], graph.nodes[v]
            geometry = LineString([(float(a["x"]), float(a["y"])), (float(b["x"]), float(b["y"]))])
        key = (_text(data.get("road_class")), _text(data.get("number")), _text(data.get("name")))
        length = data.get("length_m")
        length_m = float(length) if isinstance(length, int | float) else float(geometry.length)
        groups.setdefault(key, []).append((geometry, float(data.get("lanes", math.nan)), length_m))
    rows = []
    geometries = []
    for (road_class, number, name), parts in sorted(groups.items()):
        rows.append(
            {
                "road_class": road_class or None,
                "number": number or None,
                "name": name or None,
                "lanes": max(lanes for _, lanes, _ in parts),
                "length_m": sum(length for _, _, length in parts),
                "links": len(parts),
            }
        )
        geometries.append(shapely.line_merge(shapely.union_all([g for g, _, _ in parts])))
    columns = ["road_class", "number", "name", "lanes", "length_m", "links"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=geometries, crs=BNG)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


# ------------------------------------------------------------------------------------------- back-test


def format_backtest(result: Backtest | NotEnoughMonths) -> str:
    """A back-test result as a short plain-text table (or the reason there is none)."""
    if isinstance(result, NotEnoughMonths):
        return result.message
    chosen, kde, rand = result.chosen, result.kde, result.random
    hit, pai, area = rand.hit_rate, rand.pai, rand.area_m2

    def pct(value: float) -> str:
        return f"{100 * value:.1f} %" if math.isfinite(value) else "n/a"

    def num(value: float) -> str:
        return f"{value:.2f}" if math.isfinite(value) else "n/a"

    def row(label: str, hit_rate: str, area_km2: str, pai_text: str) -> str:
        return f"{label:<36} {hit_rate:>13} {area_km2:>9} {pai_text:>11}"

    km2 = "km\u00b2"
    lines = [
        f"Back-test: sites chosen with {', '.join(result.split.train)} ({result.train_crimes:,} crimes), "
        f"scored on {', '.join(result.split.test)} ({result.test_crimes:,} crimes)",
        f"{len(result.sites)} sites, coverage radius {result.radius_m:g} m; "
        f"study area {chosen.study_area_m2 / 1e6:.2f} {km2}",
        row("", "hit rate", f"area {km2}", "PAI"),
        row("chosen sites", pct(chosen.hit_rate), f"{chosen.area_m2 / 1e6:.3f}", num(chosen.pai)),
        row(
            f"KDE top cells ({result.cell_m:g} m, h {result.bandwidth_m:g} m)",
            pct(kde.hit_rate),
            f"{kde.area_m2 / 1e6:.3f}",
            num(kde.pai),
        ),
        row(
            f"random sites, mean of {rand.draws} draws",
            pct(hit.mean),
            f"{area.mean / 1e6:.3f}",
            num(pai.mean),
        ),
        row(
            "random sites, 95 % interval",
            f"{pct(hit.low)}\u2013{pct(hit.high)}",
            "",
            f"{num(pai.low)}\u2013{num(pai.high)}",
        ),
        f"chosen sites beat {100 * result.beats_random_share:.1f} % of the random draws on hit rate",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- progress


@contextlib.contextmanager
def rich_progress(console: Console | None = None, *, transient: bool = False) -> Iterator[ProgressCallback]:
    """Rich progress bars for the planner's long steps, as a :data:`~planner.backtest.ProgressCallback`.

    Each distinct step name gets its own bar; the bars stop when the ``with`` block ends.

    Parameters
    ----------
    console
        Where to draw (default: a new console on standard error).
    transient
        Remove the bars when done.
    """
    bars = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console if console is not None else Console(stderr=True),
        transient=transient,
    )
    tasks: dict[str, TaskID] = {}

    def update(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = bars.add_task(step, total=total)
        bars.update(tasks[step], completed=done, total=total)

    with bars:
        yield update


# -------------------------------------------------------------------------------------------- helpers


def _checked(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DataError(f"{name} must be a GeoDataFrame, got {type(frame).__name__}")
    if frame.crs is None:
        raise DataError(f"{name} has no CRS (expected e.g. EPSG:27700)")
    if clash := [c for c in frame.columns if c != frame.geometry.name and c in ("type", "geometry")]:
        raise DataError(f"{name} has column(s) {clash} that clash with GeoJSON members; rename them")
    return frame


def _simplified(geometry: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    simplified: BaseGeometry = shapely.simplify(geometry, tolerance_m) if tolerance_m > 0 else geometry
    return simplified


def _feature_collection(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """RFC 7946 FeatureCollection: WGS84 lon/lat rounded to 6 decimals, anticlockwise exterior rings."""
    geometries = frame.geometry.to_crs(WGS84).to_numpy() if len(frame) else np.zeros(0, dtype=object)
    geometries = shapely.transform(geometries, lambda xy: np.round(xy, _COORDINATE_DECIMALS))
    geometries = shapely.orient_polygons(geometries, exterior_cw=False)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    features = []
    for i, geometry in enumerate(geometries):
        properties = {str(c): _json_value(frame[c].iloc[i]) for c in columns}
        shape = None if geometry is None or geometry.is_empty else shapely.geometry.mapping(geometry)
        features.append({"type": "Feature", "properties": properties, "geometry": shape})
    return {"type": "FeatureCollection", "features": features}


def _json_value(value: object) -> Any:
    """A property value as JSON: NaN and missing as null, numpy scalars as Python numbers."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_value(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def _csv_value(value: object) -> object:
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return json.dumps(_json_value(value), ensure_ascii=False)
    return value


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder (no half-written files)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8", newline="\n")
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise PlannerError(f"{path}: cannot write: {exc}") from exc
