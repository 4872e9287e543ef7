"""Smoke test of the edge benchmark: tiny sizes, real components (renderer, plate models, Tansu)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.edge_bench import main


@pytest.mark.slow
def test_edge_bench_measures_positive_rates(tmp_path: Path, models_dir: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["--seconds", "3", "--height", "720", "--reads", "500"]
    result = main([*argv, "--models", str(models_dir), "--workdir", str(tmp_path), "--json", str(out)])

    assert result["decode"]["fps"] > 0
    for key in ("pipeline_gated", "pipeline_ungated"):
        pipeline = result[key]
        assert pipeline["fps"] > 0
        assert 0 < pipeline["ratio_to_decode"] < 1
        assert pipeline["frames"] == result["decode"]["frames"] == result["video"]["frames"]
        assert pipeline["recognise_ms_per_call"] > 0
    assert result["pipeline_ungated"]["frames_recognised"] == result["pipeline_ungated"]["frames"]
    producer = result["producer"]
    assert producer["reads"] == 500
    assert producer["spool_off_failed"] == 0
    for rate in ("spool_off_rate", "spool_on_rate", "append_rate", "drain_rate", "ratio_spool_on_to_off"):
        assert producer[rate] > 0
    assert json.loads(out.read_text(encoding="utf-8")) == result
