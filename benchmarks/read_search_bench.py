"""Read search benchmark: the API's fuzzy plate search by search keys, against a scan of the time range.

Run from the repository root::

    python benchmarks/read_search_bench.py [--reads 300000] [--days 31] [--searches 40] [--scan-searches 5]
        [--database-url URL] [--seed 1] [--json PATH]

An operator's fuzzy search (:func:`api.queries.search_reads`, ``mode="fuzzy"``) finds reads whose plate is one
OCR confusion or one edit from the searched one. It looks the reads up by their search keys
(:class:`api.tables.ReadPlateKey`); before the keys it read every read of the time range (up to 31 days) and
checked each plate's distance. This measures both, in the same run, on the same store.

Workload
    ``--reads`` reads over the last ``--days`` days from 12 cameras: random UK plates
    (:func:`benchmarks.match_core_bench.random_plate`), and ``--searches`` plates that are searched for, each
    read 10 times as itself, with one OCR confusion or with one genuine edit. No crops (a crop makes every
    row the scan reads larger; the keys' lookup reads only the page's rows).

Stages
    (a) **Ingest** — :func:`api.queries.store_events` in batches of 1,000 reads (the ingestor's poll size),
        storing each read's search keys too: reads/s. Baseline, the first ``--baseline-reads`` of the same
        reads into a second, fresh store with :func:`api.queries.store_read_keys` replaced by a no-op (the
        store before the keys): reads/s. The ratio, of the same first reads with and without their keys, is
        what the keys cost the ingest.
    (b) **Fuzzy search** — each of the ``--searches`` plates searched over the whole time range (a page of
        up to 100 reads, newest first): ms per search, median and max. Baseline: the first
        ``--scan-searches`` of them by the scan the search used before the keys (every read of the range, as
        rows, newest first, each plate's distance checked, stopping at a full page); each must find exactly
        what the keyed search found. The ratio is the scan's median time over the keyed search's.

Everything is measured in the run; nothing is hard-coded. ``--json PATH`` also writes the results.
The store is SQLite in a temporary directory (the API's embedded default) unless ``--database-url`` names one
(e.g. PostgreSQL); a named store must be empty, and is left with the reads in it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, Final
from unittest import mock

from rapidfuzz.distance import Levenshtein
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import queries
from api.db import make_engine, migrate, session_factory, session_scope
from api.tables import ReadPlateKey, ReadRow
from cordon.events import BBox, PlateRead, utc_now
from stream.matching import canonical

try:
    from benchmarks._machine import (
        add_load_rows,
        cpu_model,
        cpu_seconds,
        load_average,
        other_cpu_share,
        progress_bar,
        write_json,
    )
    from benchmarks.match_core_bench import confuse, edit, random_plate
except ModuleNotFoundError:  # run as a script: benchmarks/ is on sys.path, the repository root is not
    from _machine import (  # type: ignore[no-redef]
        add_load_rows,
        cpu_model,
        cpu_seconds,
        load_average,
        other_cpu_share,
        progress_bar,
        write_json,
    )
    from match_core_bench import confuse, edit, random_plate  # type: ignore[no-redef]

__all__ = ["BenchResult", "main", "run_benchmark"]

CAMERAS: Final = tuple(f"cam-{n:02d}" for n in range(12))
SIGHTINGS: Final = 10
"""Reads of each searched plate: as itself, confused or edited."""
INGEST_BATCH: Final = 1000
PAGE: Final = 100


@dataclass(frozen=True, slots=True)
class IngestResult:
    """(a) Storing reads; rates in reads per second."""

    reads: int
    seconds: float
    rate: float
    key_rows: int
    baseline_reads: int
    baseline_seconds: float
    baseline_rate: float
    first_rate: float
    """Rate with the keys over the same first ``baseline_reads`` reads (into a store as empty)."""
    ratio_to_baseline: float
    """``first_rate`` over ``baseline_rate``: the same reads stored with and without their keys."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """(b) Fuzzy searches over the whole time range; times in milliseconds."""

    searches: int
    found_per_search: float
    """Mean reads found by a keyed search."""
    median_ms: float
    max_ms: float
    scan_searches: int
    scan_median_ms: float
    scan_max_ms: float
    scan_agrees: bool
    """Whether every scan found exactly the reads the keyed search found, in the same order."""
    ratio_scan_to_keyed: float


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Everything one run measured."""

    started_at: str
    runtime_s: float
    database: str
    cpu: str
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]
    other_cpu_share: float | None
    days: int
    ingest: IngestResult
    search: SearchResult

    def to_dict(self) -> dict[str, Any]:
        """The results as plain JSON data, exactly as ``--json`` writes them."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data


def make_reads(
    count: int, searched: Sequence[str], days: int, rng: random.Random, now: datetime
) -> list[PlateRead]:
    """``count`` reads, newest last: :data:`SIGHTINGS` of each searched plate, the rest random plates."""
    plates = [random_plate(rng) for _ in range(count - SIGHTINGS * len(searched))]
    for plate in searched:
        plates += [plate, plate, plate, plate] + [confuse(plate, rng) for _ in range(3)]
        plates += [edit(plate, rng) for _ in range(SIGHTINGS - 7)]
    rng.shuffle(plates)
    span = days * 86400.0
    times = sorted(rng.uniform(0, span) for _ in plates)
    return [
        PlateRead(
            read_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            camera_id=rng.choice(CAMERAS),
            edge_box_id="box-bench",
            captured_at=now - timedelta(seconds=span - t),
            plate_raw=plate,
            plate=plate,
            confidence=0.9,
            bbox=BBox(x1=10, y1=10, x2=120, y2=40),
        )
        for plate, t in zip(plates, times, strict=True)
    ]


@contextmanager
def store(url: str | None) -> Iterator[tuple[sessionmaker[Session], str]]:
    """A migrated store, ``url`` or SQLite in a temporary directory: its sessions and its name."""
    with tempfile.TemporaryDirectory(prefix="cordon-read-search-") as workdir:
        name = url or f"sqlite:///{Path(workdir) / 'store.db'}"
        engine = make_engine(name)
        try:
            migrate(engine)
            yield session_factory(engine), engine.url.render_as_string(hide_password=True)
        finally:
            engine.dispose()


def ingest(
    sessions: sessionmaker[Session],
    reads: Sequence[PlateRead],
    *,
    progress: Progress,
    label: str,
    first: int = 0,
) -> tuple[float, float]:
    """Store ``reads`` in batches as the ingestor does; return the seconds it took, for all of them and for
    the batches that hold the first ``first`` (0 if none)."""
    task = progress.add_task(label, total=len(reads))
    started = time.perf_counter()
    first_s = 0.0
    for start in range(0, len(reads), INGEST_BATCH):
        with session_scope(sessions) as session:
            queries.store_events(session, reads=reads[start : start + INGEST_BATCH])
        if start < first <= start + INGEST_BATCH:
            first_s = time.perf_counter() - started
        progress.advance(task, min(INGEST_BATCH, len(reads) - start))
    return time.perf_counter() - started, first_s


def keyed_search(session: Session, plate: str, since: datetime, until: datetime) -> list[int]:
    """The API's fuzzy search: one page, the reads' seqs."""
    rows, _ = queries.search_reads(
        session, plate=plate, mode="fuzzy", camera_id=None, since=since, until=until, cursor=None, limit=PAGE
    )
    return [row.seq for row in rows]


def scanned_search(session: Session, plate: str, since: datetime, until: datetime) -> list[int]:
    """The fuzzy search before the keys: every read of the range, newest first, until a page is full."""
    key = canonical(plate)
    query = (
        select(ReadRow)
        .where(ReadRow.captured_at >= since, ReadRow.captured_at < until)
        .order_by(ReadRow.seq.desc())
        .execution_options(yield_per=1000)
    )
    found: list[int] = []
    with session.execute(query).scalars() as rows:  # closed when left early, as a page fills
        for row in rows:
            if Levenshtein.distance(row.plate_canonical, key, score_cutoff=1) <= 1:
                found.append(row.seq)
                if len(found) == PAGE:
                    break
    return found


def timed_ms(run: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = run()
    return (time.perf_counter() - started) * 1000, value


def run_benchmark(
    *,
    reads: int,
    days: int,
    searches: int,
    scan_searches: int,
    baseline_reads: int,
    database_url: str | None,
    seed: int,
    console: Console,
) -> BenchResult:
    """Run both stages and return the results (see the module docstring)."""
    started_at, started = utc_now(), time.perf_counter()
    load_start, cpu_start = load_average(), cpu_seconds()
    rng = random.Random(seed)
    searched = sorted({random_plate(rng) for _ in range(searches)})
    now = utc_now()
    all_reads = make_reads(reads, searched, days, rng, now)
    since, until = now - timedelta(days=days), now + timedelta(seconds=1)
    with progress_bar(console) as progress:
        with store(None) as (baseline_sessions, _), mock.patch.object(queries, "store_read_keys"):
            baseline = all_reads[:baseline_reads]
            baseline_s, _ = ingest(
                baseline_sessions, baseline, progress=progress, label="(a) ingest, no keys"
            )
        with store(database_url) as (sessions, database):
            ingest_s, first_s = ingest(
                sessions, all_reads, progress=progress, label="(a) ingest with keys", first=len(baseline)
            )
            with session_scope(sessions) as session:
                key_rows = session.scalar(select(func.count()).select_from(ReadPlateKey)) or 0
            task = progress.add_task("(b) keyed fuzzy search", total=len(searched))
            keyed: list[tuple[float, list[int]]] = []
            for plate in searched:
                with session_scope(sessions) as session:
                    keyed.append(timed_ms(lambda p=plate, s=session: keyed_search(s, p, since, until)))
                progress.advance(task)
            task = progress.add_task("(b) scanned fuzzy search", total=scan_searches)
            scanned: list[tuple[float, list[int]]] = []
            for plate in searched[:scan_searches]:
                with session_scope(sessions) as session:
                    scanned.append(timed_ms(lambda p=plate, s=session: scanned_search(s, p, since, until)))
                progress.advance(task)
    keyed_ms = [ms for ms, _ in keyed]
    scan_ms = [ms for ms, _ in scanned]
    agrees = all(found == keyed[n][1] for n, (_, found) in enumerate(scanned))
    ingest_rate, baseline_rate = len(all_reads) / ingest_s, len(baseline) / baseline_s
    first_rate = len(baseline) / first_s
    runtime = time.perf_counter() - started
    return BenchResult(
        started_at=started_at.isoformat(timespec="seconds"),
        runtime_s=round(runtime, 1),
        database=database,
        cpu=cpu_model(),
        load_average_start=load_start,
        load_average_end=load_average(),
        other_cpu_share=other_cpu_share(cpu_start, runtime, len(os.sched_getaffinity(0))),
        days=days,
        ingest=IngestResult(
            reads=len(all_reads),
            seconds=round(ingest_s, 2),
            rate=round(ingest_rate),
            key_rows=key_rows,
            baseline_reads=len(baseline),
            baseline_seconds=round(baseline_s, 2),
            baseline_rate=round(baseline_rate),
            first_rate=round(first_rate),
            ratio_to_baseline=round(first_rate / baseline_rate, 3),
        ),
        search=SearchResult(
            searches=len(keyed),
            found_per_search=round(sum(len(found) for _, found in keyed) / len(keyed), 1),
            median_ms=round(median(keyed_ms), 2),
            max_ms=round(max(keyed_ms), 2),
            scan_searches=len(scanned),
            scan_median_ms=round(median(scan_ms), 1) if scan_ms else 0.0,
            scan_max_ms=round(max(scan_ms), 1) if scan_ms else 0.0,
            scan_agrees=agrees,
            ratio_scan_to_keyed=round(median(scan_ms) / median(keyed_ms), 1) if scan_ms else 0.0,
        ),
    )


def print_report(result: BenchResult, console: Console) -> None:
    """Print the results table."""
    a, b = result.ingest, result.search
    machine = Table(title="Machine", show_header=False)
    machine.add_row("CPU", result.cpu)
    machine.add_row("store", result.database)
    add_load_rows(machine, result.load_average_start, result.load_average_end, result.other_cpu_share)
    console.print(machine)
    table = Table(title=f"Fuzzy read search over {result.days} days of {a.reads:,} reads")
    table.add_column("stage")
    table.add_column("figure", justify="right")
    table.add_column("notes")
    table.add_row(
        "(a) ingest with keys",
        f"{a.rate:,.0f}/s",
        f"{a.reads:,} reads in {a.seconds:.1f} s; {a.key_rows:,} key rows "
        f"({a.key_rows / a.reads:.1f} a read)",
    )
    table.add_row(
        "(a) ingest without keys (baseline)",
        f"{a.baseline_rate:,.0f}/s",
        f"the first {a.baseline_reads:,} reads in {a.baseline_seconds:.1f} s, into another fresh store",
    )
    table.add_row(
        "(a) with/without keys",
        f"{a.ratio_to_baseline:.3f}",
        f"the same first {a.baseline_reads:,} reads: {a.first_rate:,.0f}/s with keys; what the keys cost",
    )
    table.add_row(
        "(b) keyed fuzzy search",
        f"{b.median_ms:.1f} ms",
        f"median of {b.searches} searches (max {b.max_ms:.1f} ms); {b.found_per_search:.1f} reads found each",
    )
    table.add_row(
        "(b) scanned fuzzy search (baseline)",
        f"{b.scan_median_ms:,.1f} ms",
        f"median of {b.scan_searches} (max {b.scan_max_ms:,.1f} ms); same reads found: "
        + ("yes" if b.scan_agrees else "[bold red]NO[/bold red]"),
    )
    table.add_row(
        "(b) scanned/keyed", f"{b.ratio_scan_to_keyed:,.1f}x", "how much faster the keyed search is"
    )
    console.print(table)
    console.print(f"total {result.runtime_s:.0f} s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fuzzy read search: search keys vs a scan of the range.")
    parser.add_argument("--reads", type=int, default=300_000, help="reads stored (default 300000)")
    parser.add_argument(
        "--days", type=int, default=31, help="days they span and a search covers (default 31)"
    )
    parser.add_argument("--searches", type=int, default=40, help="plates searched for (default 40)")
    parser.add_argument(
        "--scan-searches", type=int, default=5, help="of them, searched by the scan too (default 5)"
    )
    parser.add_argument(
        "--baseline-reads", type=int, default=50_000, help="reads ingested without keys (default 50000)"
    )
    parser.add_argument("--database-url", default=None, help="an empty store (default: SQLite, temporary)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run the benchmark, print the report; return the results as a dict."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("reads", "days", "searches", "baseline_reads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.scan_searches < 0:
        parser.error(f"--scan-searches must be >= 0, got {args.scan_searches}")
    if args.reads < SIGHTINGS * args.searches:
        parser.error(f"--reads must be at least {SIGHTINGS} x --searches, got {args.reads}")
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    result = run_benchmark(
        reads=args.reads,
        days=args.days,
        searches=args.searches,
        scan_searches=min(args.scan_searches, args.searches),
        baseline_reads=min(args.baseline_reads, args.reads),
        database_url=args.database_url,
        seed=args.seed,
        console=console,
    )
    print_report(result, console)
    data = result.to_dict()
    write_json(args.json, data, console)
    return data


if __name__ == "__main__":
    main()
