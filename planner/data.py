"""Adapters from files to plain data: police.uk crimes, a boundary polygon and road graphs (EPSG:27700).

Everything returned here is in British National Grid (EPSG:27700, metres), so distances and areas can be
measured directly. Nothing here plans anything: :mod:`planner.cordon` consumes the graphs, later planner
stages consume the crimes.

Crimes
------
:func:`load_crimes` reads police.uk "street" CSV files (one file per force and month), however many months,
and :func:`snap_points` aggregates them to the anonymised "snap points" police.uk publishes (many crimes share
one coordinate), which are the demand points of site planning. Each crime gets a weight by crime type
(:data:`DEFAULT_CRIME_WEIGHTS`).

Boundary
--------
:func:`load_boundary` reads a polygon file (anything geopandas reads) or dissolves the census areas (LSOAs)
whose name starts with a prefix, e.g. the 100 "Knowsley ..." 2001 LSOAs (86.5 km²).

Road graphs
-----------
All loaders return an undirected :class:`networkx.MultiGraph` with the same schema, the input of
:func:`planner.cordon.plan_cordon`:

* graph attribute ``crs`` = ``"EPSG:27700"``;
* node attributes ``x``, ``y``: easting and northing in metres (EPSG:27700);
* edge attributes ``road_class`` (``"motorway"``, ``"a_road"``, ``"b_road"`` for Meridian 2; the OSM
  ``highway`` value for OSM), ``number`` (road number such as ``"M57"``, or ``None``), ``name`` (or
  ``None``), ``lanes`` (lanes **both ways** on this link), ``length_m`` (metres) and ``arterial`` (bool).

Why undirected: Meridian 2 carries no direction of travel (one centre-line for both carriageways of a
motorway), and an ANPR cordon reads both directions of the roads it instruments. A cut that separates the
undirected graph also separates every directed version of it (every directed path is an undirected path), so
one-way streets in OSM can only make the undirected answer conservative, never unsound.

* :func:`load_road_graph_meridian` — Ordnance Survey Meridian 2 road centre-lines (motorway, A and B roads).
* :func:`load_road_graph_osm` — a local ``.osm`` / ``.osm.bz2`` OpenStreetMap XML file through
  :func:`osmnx.graph_from_xml`. osmnx cannot read ``.osm.pbf``: convert it first (pyosmium's
  ``osmium.SimpleWriter`` over ``osmium.FileProcessor``, or ``osmium cat in.osm.pbf -o out.osm.bz2``) and
  keep only ``highway=*`` ways, because ``graph_from_xml`` turns every way in the file into edges.
* :func:`load_road_graph_overpass` — downloads OSM roads inside a polygon through Overpass
  (:func:`osmnx.graph_from_polygon`); needs internet, so tests never call it.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from planner.errors import DataError

__all__ = [
    "BNG",
    "CRIME_COLUMNS",
    "DEFAULT_ARTERIAL_HIGHWAYS",
    "DEFAULT_CRIME_WEIGHTS",
    "DEFAULT_DRIVE_HIGHWAYS",
    "DEFAULT_MERIDIAN_LANES",
    "DEFAULT_OSM_LANES_PER_DIRECTION",
    "MERIDIAN_ROAD_CLASSES",
    "SITE_COLUMNS",
    "load_boundary",
    "load_camera_sites",
    "load_crimes",
    "load_road_graph_meridian",
    "load_road_graph_osm",
    "load_road_graph_overpass",
    "snap_points",
]

log = logging.getLogger(__name__)

BNG: Final = "EPSG:27700"
"""British National Grid: every geometry the planner returns is in this CRS (metres)."""

WGS84: Final = "EPSG:4326"

CRIME_COLUMNS: Final = (
    "crime_id",
    "month",
    "crime_type",
    "lsoa_code",
    "lsoa_name",
    "location",
    "weight",
    "geometry",
)
"""Columns of :func:`load_crimes`' result, in order."""

DEFAULT_CRIME_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        # Vehicle crime: the strongest and most consistent CCTV effect (car parks, vehicle crime).
        "Vehicle crime": 1.0,
        # Acquisitive / property crime: significant but smaller effects.
        "Bicycle theft": 0.7,
        "Theft from the person": 0.6,
        "Other theft": 0.6,
        "Burglary": 0.6,
        "Robbery": 0.5,
        "Criminal damage and arson": 0.5,
        # Shops run their own CCTV; public-space cameras add little there.
        "Shoplifting": 0.4,
        # Recorded drug offences mostly reflect police activity, not where offending happens.
        "Drugs": 0.4,
        # Disorder and violence: no significant effect in the reviews.
        "Anti-social behaviour": 0.3,
        "Public order": 0.3,
        "Possession of weapons": 0.3,
        "Public disorder and weapons": 0.3,  # police.uk category until May 2013
        "Violence and sexual offences": 0.2,
        "Violent crime": 0.2,  # police.uk category until May 2013
        "Other crime": 0.2,
    }
)
"""Weight of one crime by police.uk crime type, for siting *public-space CCTV/ANPR* (0 to 1, dimensionless).

The ordering follows the systematic reviews of CCTV and crime: Welsh, B.C. & Farrington, D.P. (2008),
"Effects of closed circuit television surveillance on crime", *Campbell Systematic Reviews* 2008:17
(also *Justice Quarterly* 26(4), 2009), and its 40-year update Piza, E.L., Welsh, B.C., Farrington, D.P. &
Thomas, A.L. (2019), "CCTV surveillance for crime prevention: a 40-year systematic review with meta-analysis",
*Criminology & Public Policy* 18(1), 135-159. Both find the largest and most consistent effects in car parks
and on vehicle crime; the update adds smaller but significant effects on other property crime, and neither
finds a significant effect on violent crime. The numbers are planning judgements that encode that ordering,
not effect sizes from the reviews; pass your own ``weights=`` to :func:`load_crimes` to change them. Types
that police.uk used before May 2013 are included so that older files load too.
"""

MERIDIAN_ROAD_CLASSES: Final[Mapping[int, str]] = MappingProxyType(
    {3000: "motorway", 3001: "a_road", 3002: "b_road", 3004: "minor_road"}
)
"""Meridian 2 feature code (``CODE``) to road class (OS Meridian 2 user guide, feature codes)."""

DEFAULT_MERIDIAN_LANES: Final[Mapping[str, float]] = MappingProxyType(
    {"motorway": 6.0, "a_road": 2.0, "b_road": 2.0, "minor_road": 2.0}
)
"""Lanes **both ways** on a Meridian 2 link, by road class.

Meridian 2 has no lane counts. A motorway centre-line stands for a dual three-lane carriageway (6), an A or B
road (or minor road) for one lane each way (2); dual-carriageway A roads are not distinguishable in the data.
These are the cut capacities of :func:`planner.cordon.plan_cordon` (ANPR readers are priced per lane).
"""

DEFAULT_ARTERIAL_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"}
)
"""OSM ``highway`` values marked ``arterial=True`` by the OSM loaders."""

DEFAULT_DRIVE_HIGHWAYS: Final[frozenset[str]] = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
    }
)
"""OSM ``highway`` values kept by default: roads a vehicle can drive (service roads included, because a cordon
that a car can bypass through a car park or service road is not a cordon)."""

DEFAULT_OSM_LANES_PER_DIRECTION: Final[Mapping[str, float]] = MappingProxyType(
    {"motorway": 3.0, "trunk": 2.0}
)
"""Lanes per direction for OSM ways without a numeric ``lanes`` tag, by ``highway``; any other value: 1.

A two-way way gets twice this, a one-way way (one carriageway of a dual carriageway, a slip road) once, so a
dual motorway is 3 + 3 = 6 lanes like :data:`DEFAULT_MERIDIAN_LANES`. A numeric ``lanes`` tag wins: in OSM it
counts every lane of the way, both directions for a two-way way.
"""

# Ranking used to pick one road class for an OSM edge that merges ways of several classes.
_HIGHWAY_RANK: Final = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "motorway_link",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "road",
    "service",
)

_CSV_COLUMNS: Final[Mapping[str, str]] = {
    "Crime ID": "crime_id",
    "Month": "month",
    "Crime type": "crime_type",
    "LSOA code": "lsoa_code",
    "LSOA name": "lsoa_name",
    "Location": "location",
    "Longitude": "longitude",
    "Latitude": "latitude",
}
_REQUIRED_CSV: Final = ("Month", "Crime type", "Longitude", "Latitude")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


# --------------------------------------------------------------------------------------------------- crimes


def load_crimes(
    paths: Sequence[Path],
    *,
    weights: Mapping[str, float] | None = None,
) -> gpd.GeoDataFrame:
    """Read police.uk street-level crime CSV files into one table of crimes in EPSG:27700.

    Parameters
    ----------
    paths
        police.uk ``*-street.csv`` files (any number of months and forces), read in the order given.
    weights
        Weight of one crime by police.uk ``Crime type`` (dimensionless, >= 0); default
        :data:`DEFAULT_CRIME_WEIGHTS`. Every crime type present in the files must have a weight.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per crime, columns :data:`CRIME_COLUMNS`, CRS EPSG:27700 (points in metres). ``crime_id`` is
        ``""`` where police.uk gives none (anti-social behaviour rows, or files without the column);
        ``month`` is ``"YYYY-MM"``. ``attrs["dropped_no_location"]`` counts rows dropped for a missing or
        unreadable longitude/latitude (also logged at WARNING).

    Raises
    ------
    DataError
        A file cannot be read or decoded, lacks a required column (``Month``, ``Crime type``, ``Longitude``,
        ``Latitude``), has a malformed month, or holds a crime type without a weight. Every problem found in
        all files is listed in one error.

    Notes
    -----
    Handles the quirks of real police.uk downloads: bare-CR (old Mac) line endings, a byte-order mark, a
    missing ``Crime ID`` column (files edited by hand), empty Crime IDs, and rows without coordinates.
    Longitude and latitude are WGS84; they are projected to British National Grid with pyproj's default
    (Helmert) transformation, good to a few metres, far below police.uk's own anonymisation to snap points.
    """
    weight_of = dict(DEFAULT_CRIME_WEIGHTS if weights is None else weights)
    bad_weights = {k: v for k, v in weight_of.items() if not (math.isfinite(v) and v >= 0)}
    problems: list[str] = [
        f"weights[{k!r}] = {v!r} is not a finite number >= 0" for k, v in bad_weights.items()
    ]
    if not paths:
        problems.append("no crime files given")
    frames = [frame for path in paths if (frame := _read_crime_csv(Path(path), problems)) is not None]
    crimes = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(_CSV_COLUMNS.values()))
    )
    if frames:
        unknown = Counter(t for t in crimes["crime_type"] if t not in weight_of)
        for crime_type, count in sorted(unknown.items()):
            problems.append(f"crime type {crime_type!r} ({count} rows) has no weight")
    if problems:
        raise DataError("cannot load crimes:\n  " + "\n  ".join(problems))

    lon = pd.to_numeric(crimes.pop("longitude"), errors="coerce")
    lat = pd.to_numeric(crimes.pop("latitude"), errors="coerce")
    located = lon.notna() & lat.notna() & lon.between(-180, 180) & lat.between(-90, 90)
    dropped = int((~located).sum())
    if dropped:
        log.warning("dropped %d of %d crimes without a usable location", dropped, len(crimes))
    crimes = crimes.loc[located].reset_index(drop=True)
    crimes["weight"] = crimes["crime_type"].map(weight_of).astype(float)
    points = gpd.points_from_xy(lon[located].to_numpy(), lat[located].to_numpy(), crs=WGS84)
    result = gpd.GeoDataFrame(crimes, geometry=points.to_crs(BNG), crs=BNG)[list(CRIME_COLUMNS)]
    result.attrs["dropped_no_location"] = dropped
    return result


def _read_crime_csv(path: Path, problems: list[str]) -> pd.DataFrame | None:
    """One police.uk file as strings with our column names, or ``None`` after appending its problems."""
    try:
        # Text mode with universal newlines turns bare CR (and CRLF) into LF; utf-8-sig drops a BOM.
        with path.open(encoding="utf-8-sig", newline=None) as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.append(f"{path}: not a CSV file: {exc}")
        return None
    missing = [column for column in _REQUIRED_CSV if column not in raw.columns]
    if missing:
        problems.append(f"{path}: missing column(s) {', '.join(missing)}")
        return None
    frame = pd.DataFrame({ours: raw.get(theirs, "") for theirs, ours in _CSV_COLUMNS.items()})
    frame = frame.apply(lambda column: column.str.strip())
    bad_months = sorted(set(frame.loc[~frame["month"].str.match(_MONTH), "month"]))
    if bad_months:
        problems.append(f"{path}: malformed Month value(s) {bad_months[:5]!r} (expected YYYY-MM)")
        return None
    log.info("read %d crimes from %s", len(frame), path)
    return frame


def snap_points(crimes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Aggregate crimes to their police.uk snap points (unique coordinates): the demand points.

    Parameters
    ----------
    crimes
        Output of :func:`load_crimes` (EPSG:27700, with ``crime_type`` and ``weight``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per distinct point, sorted by easting then northing, CRS EPSG:27700, columns ``point_id``
        (0..n-1 in that order), ``x``, ``y`` (metres), ``n_crimes``, ``weight`` (sum of crime weights),
        ``lsoa_code`` (the most common LSOA at the point, ties to the smallest code), then one count column
        per crime type, ``n_<crime type in snake_case>`` (e.g. ``n_vehicle_crime``), sorted by name, and
        ``geometry``.

    Raises
    ------
    DataError
        The table is not in EPSG:27700, lacks a required column, or holds non-point geometry.
    """
    needed = {"crime_type", "weight", "lsoa_code"}
    if crimes.crs is None or crimes.crs.to_epsg() != 27700:
        raise DataError(f"snap_points needs crimes in EPSG:27700, got {crimes.crs}")
    if missing := needed - set(crimes.columns):
        raise DataError(f"snap_points: crimes lack column(s) {sorted(missing)}")
    if len(crimes) and not (crimes.geom_type == "Point").all():
        raise DataError("snap_points: every crime must be a point")
    table = pd.DataFrame(
        {
            "x": crimes.geometry.x.to_numpy(),
            "y": crimes.geometry.y.to_numpy(),
            "crime_type": crimes["crime_type"].to_numpy(),
            "weight": crimes["weight"].to_numpy(dtype=float),
            "lsoa_code": crimes["lsoa_code"].to_numpy(),
        }
    )
    keys = ["x", "y"]
    grouped = table.groupby(keys, sort=True)
    points = grouped.agg(n_crimes=("weight", "size"), weight=("weight", "sum"))
    lsoa = (
        table.groupby([*keys, "lsoa_code"], sort=True)
        .size()
        .rename("n")
        .reset_index()
        .sort_values([*keys, "n", "lsoa_code"], ascending=[True, True, False, True], kind="stable")
        .drop_duplicates(keys)
        .set_index(keys)["lsoa_code"]
    )
    points["lsoa_code"] = lsoa
    counts = table.pivot_table(
        index=keys, columns="crime_type", values="weight", aggfunc="size", fill_value=0
    )
    counts = counts.rename(columns=lambda crime_type: "n_" + _snake(str(crime_type)))
    counts = counts[sorted(counts.columns)].astype(np.int64)
    points = points.join(counts).reset_index()
    points.insert(0, "point_id", np.arange(len(points), dtype=np.int64))
    geometry = gpd.points_from_xy(points["x"], points["y"], crs=BNG)
    return gpd.GeoDataFrame(points, geometry=geometry, crs=BNG)


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# ------------------------------------------------------------------------------------------------- boundary


def load_boundary(
    *,
    polygon_file: Path | None = None,
    lsoa_shapefile: Path | None = None,
    name_prefix: str | None = None,
    name_column: str = "name",
) -> Polygon | MultiPolygon:
    """Read the area to protect as one (multi)polygon in EPSG:27700.

    Give either ``polygon_file`` or both ``lsoa_shapefile`` and ``name_prefix``.

    Parameters
    ----------
    polygon_file
        Any vector file geopandas reads (GeoPackage, GeoJSON, shapefile, ...) with a CRS; all its polygons are
        dissolved into one.
    lsoa_shapefile
        Census areas (e.g. the 2001 LSOA boundaries) with a name column.
    name_prefix
        Keep the areas whose name starts with this text (``"Knowsley"`` keeps "Knowsley 001A" ...), then
        dissolve them.
    name_column
        The column holding area names in ``lsoa_shapefile``.

    Returns
    -------
    shapely.Polygon or shapely.MultiPolygon
        The dissolved area, valid, in EPSG:27700 (metres; ``.area`` is in m²).

    Raises
    ------
    DataError
        Neither or both sources given, the file cannot be read, has no CRS, no area matches the prefix, or the
        result has no polygon.
    """
    if (polygon_file is None) == (lsoa_shapefile is None):
        raise DataError("load_boundary needs exactly one of polygon_file= or lsoa_shapefile=")
    if lsoa_shapefile is not None and not name_prefix:
        raise DataError("load_boundary: lsoa_shapefile= needs a non-empty name_prefix=")
    path = Path(polygon_file if polygon_file is not None else lsoa_shapefile)  # type: ignore[arg-type]
    frame = _read_vector(path)
    if lsoa_shapefile is not None:
        if name_column not in frame.columns:
            raise DataError(f"{path}: no column {name_column!r} (columns: {list(frame.columns)})")
        names = frame[name_column].astype(str)
        frame = frame[names.str.startswith(str(name_prefix))]
        if frame.empty:
            raise DataError(f"{path}: no area has a {name_column} starting with {name_prefix!r}")
        log.info("dissolving %d areas named %r... from %s", len(frame), name_prefix, path)
    merged = shapely.make_valid(frame.geometry.union_all())
    polygons = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon | MultiPolygon)]
    if not polygons:
        raise DataError(f"{path}: holds no polygon (got {merged.geom_type})")
    result = shapely.union_all(polygons)
    if not isinstance(result, Polygon | MultiPolygon) or result.is_empty:
        raise DataError(f"{path}: the dissolved boundary is empty")
    return result


def _read_vector(path: Path, *, bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    """A vector file in EPSG:27700; ``bbox`` (EPSG:27700) pre-filters features for speed."""
    try:
        frame = gpd.read_file(path, engine="pyogrio", bbox=bbox, mask=None)
    except Exception as exc:  # pyogrio raises its own DataSourceError/DataLayerError, OSError, ...
        raise DataError(f"{path}: cannot read as a vector file: {exc}") from exc
    if frame.crs is None:
        raise DataError(f"{path}: has no coordinate reference system (expected one, e.g. EPSG:27700)")
    return frame if frame.crs.to_epsg() == 27700 else frame.to_crs(BNG)


# ------------------------------------------------------------------------------------------- road graphs


def load_road_graph_meridian(
    shapefiles: Sequence[Path],
    *,
    clip: BaseGeometry,
    buffer_m: float = 5000.0,
    snap_m: float = 1.0,
    lanes: Mapping[str, float] = DEFAULT_MERIDIAN_LANES,
) -> nx.MultiGraph:
    """Build a road graph from OS Meridian 2 road centre-line shapefiles.

    Every road feature that intersects ``clip`` buffered by ``buffer_m`` is kept whole (not cut at the
    buffer edge), split at every vertex into straight links, and its vertices are snapped to a ``snap_m`` grid
    so that roads meeting at a junction share a node.

    Parameters
    ----------
    shapefiles
        Meridian 2 line files (``motorway_polyline.shp``, ``a_road_polyline.shp``, ``b_road_polyline.shp``...)
        with the ``CODE`` feature-code column (see :data:`MERIDIAN_ROAD_CLASSES`) and, if present, ``NUMBER``,
        ``ROAD_NAME`` and ``OSODR``.
    clip
        The area of interest (e.g. the borough boundary), EPSG:27700.
    buffer_m
        Roads within this distance of ``clip`` are kept (metres), so that routes around the area are in the
        graph too: the cordon needs the outside network to know where traffic can come from.
    snap_m
        Grid size vertices are rounded to (metres).
    lanes
        Lanes both ways by road class (default :data:`DEFAULT_MERIDIAN_LANES`); becomes the ``lanes`` edge
        attribute.

    Returns
    -------
    networkx.MultiGraph
        Undirected (see the module notes); nodes are integers ``0..n-1`` in (x, y) order with ``x``, ``y`` in
        metres (EPSG:27700); edges carry ``road_class``, ``number``, ``name``, ``lanes``, ``length_m``,
        ``arterial`` (always ``True``: Meridian 2 motorway/A/B roads are the arterial network) and ``osodr``
        (the feature id). Zero-length links (both ends snapped together) are dropped; so is a link duplicating
        one already present between the same nodes with the same class and number (both logged).

    Raises
    ------
    DataError
        A file cannot be read, lacks ``CODE``, holds an unknown feature code or a class without a lane count,
        or ``buffer_m``/``snap_m`` are invalid.
    """
    if not (math.isfinite(buffer_m) and buffer_m >= 0):
        raise DataError(f"buffer_m = {buffer_m!r} must be a finite number >= 0")
    if not (math.isfinite(snap_m) and snap_m > 0):
        raise DataError(f"snap_m = {snap_m!r} must be a finite number > 0")
    if not shapefiles:
        raise DataError("load_road_graph_meridian needs at least one shapefile")
    area = clip.buffer(buffer_m) if buffer_m > 0 else clip
    parts: list[gpd.GeoDataFrame] = []
    problems: list[str] = []
    for path in shapefiles:
        frame = _read_vector(Path(path), bbox=area.bounds)
        if "CODE" not in frame.columns:
            problems.append(f"{path}: no CODE column (is this a Meridian 2 road file?)")
            continue
        frame = frame[frame.intersects(area)]
        codes = sorted({int(c) for c in frame["CODE"]} - set(MERIDIAN_ROAD_CLASSES))
        if codes:
            problems.append(f"{path}: unknown Meridian feature code(s) {codes}")
            continue
        parts.append(frame)
    if problems:
        raise DataError("cannot load Meridian 2 roads:\n  " + "\n  ".join(problems))
    roads = pd.concat(parts, ignore_index=True) if parts else gpd.GeoDataFrame(geometry=[], crs=BNG)
    roads = roads[roads.geometry.notna() & ~roads.geometry.is_empty].explode(index_parts=False)
    classes = [MERIDIAN_ROAD_CLASSES[int(c)] for c in roads["CODE"]] if len(roads) else []
    if missing := sorted(set(classes) - set(lanes)):
        raise DataError(f"no lane count for road class(es) {missing}; add them to lanes=")

    segments: list[tuple[tuple[float, float], tuple[float, float], dict[str, Any]]] = []
    for geom, road_class, number, name, osodr in zip(
        roads.geometry,
        classes,
        _text_column(roads, "NUMBER"),
        _text_column(roads, "ROAD_NAME"),
        _text_column(roads, "OSODR"),
        strict=True,
    ):
        coords = np.round(shapely.get_coordinates(geom) / snap_m) * snap_m
        attrs = {
            "road_class": road_class,
            "number": number,
            "name": name,
            "lanes": float(lanes[road_class]),
            "arterial": True,
            "osodr": osodr,
        }
        for p, q in itertools.pairwise(coords):
            segments.append(((float(p[0]), float(p[1])), (float(q[0]), float(q[1])), attrs))
    graph, degenerate, duplicates = _graph_from_segments(segments)
    graph.graph.update(
        crs=BNG, source="OS Meridian 2", buffer_m=float(buffer_m), snap_m=float(snap_m), lanes=dict(lanes)
    )
    log.info(
        "Meridian 2 graph: %d features, %d nodes, %d links (%d zero-length and %d duplicate links dropped)",
        len(roads),
        graph.number_of_nodes(),
        graph.number_of_edges(),
        degenerate,
        duplicates,
    )
    return graph


def _text_column(frame: pd.DataFrame, column: str) -> list[str | None]:
    if column not in frame.columns:
        return [None] * len(frame)
    values: list[str | None] = []
    for value in frame[column]:
        text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
        values.append(text or None)
    return values


def _graph_from_segments(
    segments: Sequence[tuple[tuple[float, float], tuple[float, float], Mapping[str, Any]]],
) -> tuple[nx.MultiGraph, int, int]:
    """An undirected graph with integer nodes in (x, y) order; returns it and the dropped link counts."""
    points = sorted({p for p, _, _ in segments} | {q for _, q, _ in segments})
    index = {p: i for i, p in enumerate(points)}
    graph = nx.MultiGraph()
    for i, (x, y) in enumerate(points):
        graph.add_node(i, x=x, y=y)
    degenerate = duplicates = 0
    seen: set[tuple[int, int, str, str | None]] = set()
    links: list[tuple[int, int, Mapping[str, Any]]] = []
    for p, q, attrs in segments:
        if p == q:
            degenerate += 1
            continue
        u, v = sorted((index[p], index[q]))
        key = (u, v, attrs["road_class"], attrs["number"])
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        links.append((u, v, attrs))
    # Sorted insertion makes node adjacency, edge keys and therefore every later result repeatable.
    for u, v, attrs in sorted(links, key=lambda link: (link[0], link[1])):
        length = math.hypot(points[v][0] - points[u][0], points[v][1] - points[u][1])
        graph.add_edge(u, v, **attrs, length_m=length)
    return graph, degenerate, duplicates


def load_road_graph_osm(
    path: Path,
    *,
    keep_highways: Collection[str] | None = DEFAULT_DRIVE_HIGHWAYS,
    arterial_highways: Collection[str] = DEFAULT_ARTERIAL_HIGHWAYS,
    lanes_per_direction: Mapping[str, float] = DEFAULT_OSM_LANES_PER_DIRECTION,
    retain_all: bool = False,
) -> nx.MultiGraph:
    """Build a road graph from a local OpenStreetMap XML file (``.osm`` or ``.osm.bz2``).

    Parameters
    ----------
    path
        OSM XML, optionally bz2-compressed; ideally only ``highway=*`` ways and their nodes (osmnx turns every
        way in the file into edges). ``.osm.pbf`` is not readable by osmnx: convert it first (module notes).
    keep_highways
        Keep edges whose ``highway`` tag (any of them, for edges merged from several ways) is in this set;
        ``None`` keeps every edge osmnx builds. Default :data:`DEFAULT_DRIVE_HIGHWAYS`.
    arterial_highways
        ``highway`` values marked ``arterial=True`` (default :data:`DEFAULT_ARTERIAL_HIGHWAYS`:
        motorway/trunk/primary and their links).
    lanes_per_direction
        Lanes per direction by ``highway`` for ways without a numeric ``lanes`` tag (others: 1); see
        :data:`DEFAULT_OSM_LANES_PER_DIRECTION`.
    retain_all
        Keep every connected piece osmnx finds; by default (as in osmnx) only the largest weakly connected
        one, which drops fragments such as ways cut at the edge of an extract.

    Returns
    -------
    networkx.MultiGraph
        Undirected, projected to EPSG:27700 (node ``x``, ``y`` in metres), with the module's edge schema:
        ``road_class`` (the most important ``highway`` value of the edge), ``number`` (OSM ``ref``), ``name``,
        ``lanes`` (both ways), ``length_m`` (osmnx's great-circle length, metres), ``arterial``; osmnx's own
        attributes (``osmid``, ``highway``, ``oneway``, ``geometry`` in EPSG:27700 ...) are kept. Nodes are
        OSM node ids. Isolated nodes left by ``keep_highways`` are removed.

    Raises
    ------
    DataError
        The file is missing, is a ``.pbf``, or osmnx cannot parse it.
    """
    import osmnx as ox  # imported here: osmnx is slow to import and only the OSM loaders need it

    path = Path(path)
    if path.name.endswith(".pbf"):
        raise DataError(
            f"{path}: osmnx cannot read .osm.pbf; convert it to .osm/.osm.bz2 XML first "
            "(e.g. `osmium cat in.osm.pbf -o out.osm.bz2`, keeping only highway=* ways)"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        directed = ox.graph_from_xml(path, bidirectional=False, simplify=True, retain_all=retain_all)
    except Exception as exc:  # osmnx/xml raise ValueError, ParseError, EOFError, OSError ...
        raise DataError(f"{path}: osmnx cannot build a graph from it: {exc}") from exc
    graph = _normalise_osm(
        directed,
        keep_highways=keep_highways,
        arterial_highways=arterial_highways,
        lanes_per_direction=lanes_per_direction,
    )
    graph.graph["source"] = f"OpenStreetMap XML {path.name}"
    return graph


def load_road_graph_overpass(
    polygon: Polygon | MultiPolygon,
    *,
    polygon_crs: str = BNG,
    custom_filter: str | None = None,
    arterial_highways: Collection[str] = DEFAULT_ARTERIAL_HIGHWAYS,
    lanes_per_direction: Mapping[str, float] = DEFAULT_OSM_LANES_PER_DIRECTION,
) -> nx.MultiGraph:
    """Download the drivable OSM roads inside a polygon from Overpass (needs internet; never used in tests).

    Parameters
    ----------
    polygon
        The area to download, e.g. the boundary buffered by 5 km; in ``polygon_crs``.
    polygon_crs
        CRS of ``polygon`` (default EPSG:27700).
    custom_filter
        An Overpass way filter such as ``'["highway"~"motorway|trunk|primary"]'``; default osmnx's ``"drive"``
        network.
    arterial_highways, lanes_per_direction
        As in :func:`load_road_graph_osm`.

    Returns
    -------
    networkx.MultiGraph
        Same schema as :func:`load_road_graph_osm`, EPSG:27700.

    Raises
    ------
    DataError
        The download failed (no network, Overpass error); the message names the cause.
    """
    import osmnx as ox

    area = gpd.GeoSeries([polygon], crs=polygon_crs).to_crs(WGS84).iloc[0]
    try:
        directed = ox.graph_from_polygon(
            area,
            network_type="drive",
            simplify=True,
            retain_all=True,
            truncate_by_edge=True,
            custom_filter=custom_filter,
        )
    except Exception as exc:  # requests errors, osmnx InsufficientResponseError/ResponseStatusCodeError ...
        raise DataError(f"Overpass download failed: {exc}") from exc
    graph = _normalise_osm(
        directed,
        keep_highways=None,
        arterial_highways=arterial_highways,
        lanes_per_direction=lanes_per_direction,
    )
    graph.graph["source"] = "OpenStreetMap via Overpass"
    return graph


def _normalise_osm(
    directed: nx.MultiDiGraph,
    *,
    keep_highways: Collection[str] | None,
    arterial_highways: Collection[str],
    lanes_per_direction: Mapping[str, float],
) -> nx.MultiGraph:
    """Filter, project to EPSG:27700, make undirected and add the planner's edge schema."""
    import osmnx as ox

    if keep_highways is not None:
        keep = set(keep_highways)
        drop = [
            (u, v, k)
            for u, v, k, hw in directed.edges(keys=True, data="highway")
            if not keep & set(_as_list(hw))
        ]
        directed.remove_edges_from(drop)
        directed.remove_nodes_from([n for n in list(directed.nodes) if directed.degree(n) == 0])
    projected = ox.project_graph(directed, to_crs=BNG)
    graph = ox.convert.to_undirected(projected)
    arterial = set(arterial_highways)
    rank = {hw: i for i, hw in enumerate(_HIGHWAY_RANK)}
    for _, _, data in graph.edges(data=True):
        highways = sorted(set(_as_list(data.get("highway"))), key=lambda hw: (rank.get(hw, len(rank)), hw))
        road_class = highways[0] if highways else "road"
        oneway = bool(data.get("oneway", False))
        data["road_class"] = road_class
        data["number"] = _join(data.get("ref"))
        data["name"] = _join(data.get("name"))
        data["arterial"] = road_class in arterial
        data["lanes"] = _osm_lanes(
            data.get("lanes"), road_class, oneway=oneway, per_direction=lanes_per_direction
        )
        data["length_m"] = float(data.get("length", 0.0))
    graph.graph["crs"] = BNG
    return graph


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)]


def _join(value: object) -> str | None:
    items = sorted(set(_as_list(value)))
    return "; ".join(items) if items else None


def _osm_lanes(tag: object, road_class: str, *, oneway: bool, per_direction: Mapping[str, float]) -> float:
    """Lanes both ways on an undirected OSM edge: the largest numeric ``lanes`` tag, else the default."""
    numbers = []
    for text in _as_list(tag):
        try:
            number = float(text.split(";")[0])
        except ValueError:
            continue
        if math.isfinite(number) and number > 0:
            numbers.append(number)
    if numbers:
        return max(numbers)
    return float(per_direction.get(road_class, 1.0)) * (1 if oneway else 2)


# ------------------------------------------------------------------------------------------- camera sites

_SITE_ID_COLUMNS: Final = ("site_id", "camera_id", "name", "id")
_LON_COLUMNS: Final = ("lon", "longitude", "long")
_LAT_COLUMNS: Final = ("lat", "latitude")
_EASTING_COLUMNS: Final = ("x", "easting")
_NORTHING_COLUMNS: Final = ("y", "northing")
SITE_COLUMNS: Final = ("site_id", "x", "y", "lanes", "rows", "geometry")
"""Columns of :func:`load_camera_sites`' result, in order."""


def load_camera_sites(path: Path, *, id_column: str | None = None) -> gpd.GeoDataFrame:
    """Read camera positions (existing cameras, or a user's candidate sites) into EPSG:27700 points.

    Parameters
    ----------
    path
        A CSV with WGS84 ``lon``/``lat`` (or ``longitude``/``latitude``) or British National Grid
        ``x``/``y`` (or ``easting``/``northing``, metres) columns, or any point file geopandas reads with a
        CRS (GeoJSON, GeoPackage ...). An optional ``lanes`` column gives the lanes an ANPR camera there
        reads.
    id_column
        Column identifying each site; default the first of ``site_id``, ``camera_id``, ``name``, ``id``
        present, else the row number (from 1).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`SITE_COLUMNS`: ``site_id`` (text), ``x``, ``y`` (EPSG:27700 metres), ``lanes``
        (0 where not given), ``rows`` (input rows at this position: files listing one row per camera
        direction, such as ANPR survey sites, are merged to one site, keeping the first row's id) and the
        point geometry; in the order positions first appear.

    Raises
    ------
    DataError
        The file cannot be read, has no coordinate columns or CRS, holds a non-point geometry or a row without
        coordinates, lacks ``id_column``, or two different positions share an id. Every problem is listed.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        try:
            table = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
        lower = {column.strip().lower(): column for column in table.columns}
        lon = next((lower[c] for c in _LON_COLUMNS if c in lower), None)
        lat = next((lower[c] for c in _LAT_COLUMNS if c in lower), None)
        east = next((lower[c] for c in _EASTING_COLUMNS if c in lower), None)
        north = next((lower[c] for c in _NORTHING_COLUMNS if c in lower), None)
        if lon is not None and lat is not None:
            xs, ys, crs = table[lon], table[lat], WGS84
        elif east is not None and north is not None:
            xs, ys, crs = table[east], table[north], BNG
        else:
            raise DataError(
                f"{path}: no coordinate columns (lon/lat, longitude/latitude, x/y or easting/northing); "
                f"columns: {list(table.columns)}"
            )
        x = pd.to_numeric(xs.str.strip(), errors="coerce")
        y = pd.to_numeric(ys.str.strip(), errors="coerce")
        bad = table.index[x.isna() | y.isna()].tolist()
        if bad:
            raise DataError(f"{path}: row(s) {[i + 2 for i in bad[:10]]} have no usable coordinates")
        points = gpd.GeoSeries(gpd.points_from_xy(x.to_numpy(), y.to_numpy()), crs=crs).to_crs(BNG)
        frame = gpd.GeoDataFrame(table, geometry=points.to_numpy(), crs=BNG)
    else:
        frame = _read_vector(path)
        if len(frame) and not (frame.geom_type == "Point").all():
            raise DataError(f"{path}: every feature must be a point, got {sorted(set(frame.geom_type))}")
    return _camera_sites(frame, path, id_column)


def _site_id(value: object) -> str:
    """An id as text; whole numbers read as floats (GeoJSON ``1001`` -> ``1001.0``) lose the ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _camera_sites(frame: gpd.GeoDataFrame, path: Path, id_column: str | None) -> gpd.GeoDataFrame:
    """One row per distinct position with the schema of :data:`SITE_COLUMNS`."""
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"{path}: no column {id_column!r} (columns: {list(frame.columns)})")
    column = id_column or next((c for c in _SITE_ID_COLUMNS if c in frame.columns), None)
    ids = (
        [_site_id(value) for value in frame[column]]
        if column is not None
        else [str(i + 1) for i in range(len(frame))]
    )
    lanes = (
        pd.to_numeric(frame["lanes"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        if "lanes" in frame.columns
        else np.zeros(len(frame))
    )
    table = pd.DataFrame(
        {"site_id": ids, "x": frame.geometry.x.to_numpy(), "y": frame.geometry.y.to_numpy(), "lanes": lanes}
    )
    grouped = table.groupby(["x", "y"], sort=False)
    sites = grouped.agg(site_id=("site_id", "first"), lanes=("lanes", "max"), rows=("site_id", "size"))
    sites = sites.reset_index()[["site_id", "x", "y", "lanes", "rows"]]
    problems = [
        f"id {site_id!r} is used at {count} positions"
        for site_id, count in Counter(sites["site_id"]).items()
        if count > 1
    ]
    if problems:
        raise DataError(f"{path}: " + "; ".join(sorted(problems)))
    sites["rows"] = sites["rows"].astype(np.int64)
    geometry = gpd.points_from_xy(sites["x"], sites["y"], crs=BNG)
    return gpd.GeoDataFrame(sites, geometry=geometry, crs=BNG)[list(SITE_COLUMNS)]
