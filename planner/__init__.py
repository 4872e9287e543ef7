"""Planner: ranks CCTV/ANPR camera sites from crime density and road coverage (issue "# 3").

Modules
-------
:mod:`planner.data`
    Adapters from files to plain data, all in EPSG:27700 (metres): police.uk crimes and their snap points,
    a boundary polygon, and road graphs from OS Meridian 2, a local OSM XML file or Overpass.
:mod:`planner.cordon`
    Pure core: the ANPR cordon (a minimum cut of the road graph around a protected zone), its
    solver-independent certificate, the one-camera-per-crossing-road baseline, and a budgeted variant.
:mod:`planner.coverage`
    Pure core: CCTV coverage as a maximal covering problem on a sparse matrix: camera classes (DORI),
    candidate sites and costs, lazy greedy (CELF) with posterior bounds, exact MILP (HiGHS via scipy),
    per-site explanations.
:mod:`planner.pipeline`
    A whole run (``cordon plan`` and the API's plan jobs): data, coverage, cordon, combined ranking, files.
:mod:`planner.backtest`
    Pure core: hold out months, hit rate and PAI of chosen sites against a KDE top-area baseline and random
    sites.
:mod:`planner.report`
    Adapters to files: ranked sites as GeoJSON (EPSG:4326) and CSV, and a self-contained HTML map (Leaflet
    inlined, no CDN).
:mod:`planner.errors`
    :class:`~planner.errors.PlannerError` and :class:`~planner.errors.DataError`.
"""
