"""Smoke test of the read search benchmark: tiny sizes, the API's real store (PostgreSQL and SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.read_search_bench import SIGHTINGS, main


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_read_search_bench_finds_what_the_scan_finds(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "bench.json"
    argv = ["--reads", "4000", "--searches", "8", "--scan-searches", "3", "--baseline-reads", "1500"]
    if store == "postgresql":
        argv += ["--database-url", request.getfixturevalue("pg_url")]
    result = main([*argv, "--json", str(out)])

    ingest, search = result["ingest"], result["search"]
    assert result["database"].startswith(store)
    assert ingest["reads"] == 4000
    assert ingest["baseline_reads"] == 1500
    assert 4000 * 6 <= ingest["key_rows"] <= 4000 * 11  # the plate and its one-deletion strings, deduplicated
    assert min(ingest["rate"], ingest["baseline_rate"], ingest["ratio_to_baseline"]) > 0
    assert (search["searches"], search["scan_searches"]) == (8, 3)
    assert search["scan_agrees"] is True
    # Each searched plate was read SIGHTINGS times, as itself, confused or one edit away: all of them found.
    assert search["found_per_search"] >= SIGHTINGS
    assert 0 < search["median_ms"] <= search["max_ms"]
    assert search["ratio_scan_to_keyed"] > 0
    assert json.loads(out.read_text(encoding="utf-8")) == result
