"""Smoke test of the matcher benchmark: tiny sizes, real components (Tansu, the matcher service)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.matcher_bench import ProcessesResult, combine_process_runs, main
from stream.settings import MatcherSettings

READS = 60_000
"""Enough for stage (f): two bare consumers in a group read 30,000 before its clock saw the group whole."""


@pytest.mark.slow
def test_matcher_bench_measures_positive_rates_and_every_planted_hit(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = main(
        [
            *("--entries", "20000", "--core-entries", "20000", "--reads", str(READS)),
            *("--latency-seconds", "3", "--hit-rate", "0.02", "--processes", "2", "--repeats", "2"),
            *("--process-repeats", "1"),
            *("--json", str(out)),
        ]
    )

    bare, matcher, core, latency = result["bare"], result["matcher"], result["core"], result["latency"]
    assert bare["records"] == result["bare_compiled"]["records"] == READS
    assert bare["rate"] > 0
    assert result["bare_compiled"]["rate"] > 0
    assert matcher["rate"] > 0
    assert matcher["ratio_to_bare"] > 0
    # Two interleaved runs of (a) and of (b): the rates are their medians, the checks hold for each run.
    for runs in (bare["runs"], matcher["runs"], matcher["run_ratios"]):
        assert len(runs) == 2
        assert all(value > 0 for value in runs)
    assert min(bare["runs"]) <= bare["rate"] <= max(bare["runs"])
    # Each run of (a) is the faster of a bare consumer at the matcher's poll size and at 2,000 records.
    by_poll = bare["runs_by_poll_records"]
    assert sorted(by_poll) == sorted({"2000", str(MatcherSettings.load().max_poll_records)})
    assert all(len(rates) == 2 for rates in by_poll.values())
    assert bare["runs"] == [max(rates) for rates in zip(*by_poll.values(), strict=True)]
    assert min(matcher["runs"]) <= matcher["rate"] <= max(matcher["runs"])
    assert matcher["ratio_to_bare"] == round(matcher["rate"] / bare["rate"], 3)
    assert matcher["run_planted_missed"] == matcher["run_dead_letters"] == [0, 0]
    assert matcher["run_hits"][0] == matcher["run_hits"][1] > 0
    assert bare["details_run"] in (1, 2)
    assert matcher["details_run"] in (1, 2)
    assert core["rate"] > 0
    assert core["rate_cpu"] > 0
    assert core["batch_rate_cpu"] > 0
    assert core["batch_agrees"] is True
    assert core["entries_columns_mb"] > 0
    assert core["entries"] == 20000
    assert core["index_array_mb"] > 0
    planted = result["produce"]["planted"]
    assert planted > 0
    assert matcher["planted_with_hit"] == planted
    assert matcher["planted_missed"] == core["planted_missed"] == 0
    assert matcher["dead_letters"] == 0
    assert matcher["fetcher_rss_mb"] > 0
    # The prefilter held back most reads the fetcher process screened (2 % planted, a 20k-entry list); the
    # batches it left for the matcher to screen (polled while the matcher had little to do) hold none back.
    fetcher_screened = READS - matcher["reads_screened_here"]
    assert 0.5 * fetcher_screened <= matcher["reads_held_back"] <= fetcher_screened
    assert latency["planted_sent"] > 0
    assert latency["planted_with_hit"] == latency["planted_sent"]
    assert latency["p50_ms"] is not None
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    several = result["processes"]
    assert several["processes"] == 2
    assert several["records"] == READS + latency["reads_sent"]
    assert several["bare_rate"] > 0
    assert several["matcher_rate"] > 0
    assert sorted(several["matcher_partitions"]) == sorted(several["bare_partitions"]) == [3, 3]
    assert several["dead_letters"] == 0
    assert several["matcher_runs"] == [several["matcher_rate"]]
    assert several["bare_runs"] == [several["bare_rate"]]
    assert several["ratio_to_bare_one"] == round(several["matcher_rate"] / bare["rate"], 3)
    assert all(mb > 0 for mb in several["matcher_rss_mb"])
    assert json.loads(out.read_text(encoding="utf-8")) == result


def _processes_run(
    bare_rate: float, matcher_rate: float, *, hits: int = 100, dead: int = 0
) -> ProcessesResult:
    return ProcessesResult(
        processes=2,
        records=1000,
        bare_seconds=1.0,
        bare_reads_timed=1000,
        bare_rate=bare_rate,
        bare_cpu_s=1.0,
        bare_broker_cpu_s=0.1,
        bare_partitions=[3, 3],
        matcher_load_s=1.0,
        matcher_seconds=1000 / matcher_rate,
        matcher_reads_timed=1000,
        matcher_rate=matcher_rate,
        matcher_cpu_s=1.0,
        matcher_broker_cpu_s=0.1,
        matcher_partitions=[3, 3],
        matcher_rss_mb=[100.0, 100.0],
        ratio_to_bare_one=0.0,
        ratio_to_bare_same=round(matcher_rate / bare_rate, 3),
        hits=hits,
        dead_letters=dead,
        restarts=0,
        bare_runs=[bare_rate],
        matcher_runs=[matcher_rate],
        run_ratios_same=[round(matcher_rate / bare_rate, 3)],
        details_run=1,
    )


def test_runs_of_several_processes_are_combined_by_their_medians() -> None:
    runs = [
        _processes_run(100_000, 90_000, hits=100),
        _processes_run(120_000, 60_000, hits=99, dead=2),
        _processes_run(80_000, 100_000, hits=100),
    ]

    combined = combine_process_runs(runs, bare_one_rate=100_000)

    assert combined.matcher_runs == [90_000, 60_000, 100_000]
    assert combined.bare_runs == [100_000, 120_000, 80_000]
    assert (combined.matcher_rate, combined.bare_rate) == (90_000, 100_000)
    assert combined.ratio_to_bare_one == 0.9
    assert combined.ratio_to_bare_same == 0.9
    assert combined.run_ratios_same == [0.9, 0.5, 1.25]
    # The other figures are the median (g) run's; the checks are the worst run's.
    assert combined.details_run == 1
    assert combined.matcher_seconds == runs[0].matcher_seconds
    assert (combined.hits, combined.dead_letters) == (99, 2)
