"""Matcher core benchmark: index build time and memory, and pure match rate on one core.

Run from the repository root::

    python benchmarks/match_core_bench.py [--entries 1000000] [--reads 200000] [--seed 1] [--json PATH]

1. **Hotlist** — ``--entries`` distinct random UK plates (85 % current ``AB12CDE`` style, 10 % prefix, 5 %
   suffix) as validated :class:`cordon.events.HotlistEntry` s.
2. **Index** — :meth:`stream.matching.HotlistIndex.build`, timed; memory as the process RSS delta (psutil if
   installed, else ``VmRSS`` from ``/proc/self/status``), reported separately for the entries and the index,
   with the index's own array bytes and the peak RSS. The index's RSS delta is given as measured and again
   after ``malloc_trim`` hands the build's freed temporaries back to the OS (glibc only).
3. **Reads** — ``--reads`` plates: 1 % taken from the hotlist (of those, 20 % with one OCR confusion swap and
   10 % with one genuine edit), the rest random plates not on the hotlist.
4. **Match rate** — :meth:`~stream.matching.HotlistIndex.match` over every read in one thread, fuzzy
   (``max_edits=1``) and exact/confusion only (``max_edits=0``), in reads per second of wall time and of CPU
   time (one core), against a naive baseline measured in the same run: an exact ``dict.get`` per read on a
   plate -> entries dict. Then the same with :meth:`~stream.matching.HotlistIndex.match_batch` over batches
   of ``--batch`` reads (the matcher's poll batch), with its speed-up over one-at-a-time and whether it
   returned exactly the same matches. Also reported: how many reads matched anything, by kind, and whether
   every planted hotlist read was found.

Everything is measured in the run; nothing is hard-coded. ``--json PATH`` also writes the results.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import json
import platform
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cordon.events import HotlistEntry
from stream.matching import CONFUSION_CLASSES, HotlistIndex, Match

_TAG = "ABCDEFGHJKLMNOPRSTUVWXY"  # memory tag letters: no I, Q, Z
_RANDOM = "ABCDEFGHJKLMNOPRSTUVWXYZ"  # random letters: no I, Q
_PREFIX_YEAR = "ABCDEFGHJKLMNPRSTVWXY"
_DIGITS = "0123456789"
_SWAPS = {ch: [o for o in members if o != ch] for members in CONFUSION_CLASSES for ch in members}
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    if importlib.util.find_spec("psutil") is not None:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("cannot read the RSS: no psutil and no /proc/self/status")


def trim_heap() -> bool:
    """Return freed heap memory to the OS (glibc ``malloc_trim``), so the RSS shows what is still held."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (``ru_maxrss`` is in kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_plate(rng: random.Random) -> str:
    """A random UK plate: mostly current-style, some prefix and suffix marks."""
    kind = rng.random()
    if kind < 0.85:
        age = rng.choice([f"{y:02d}" for y in range(2, 26)] + [f"{y:02d}" for y in range(51, 75)])
        return rng.choice(_TAG) + rng.choice(_TAG) + age + "".join(rng.choices(_RANDOM, k=3))
    if kind < 0.95:
        return rng.choice(_PREFIX_YEAR) + str(rng.randint(1, 999)) + "".join(rng.choices(_RANDOM, k=3))
    return "".join(rng.choices(_RANDOM, k=3)) + str(rng.randint(1, 999)) + rng.choice(_PREFIX_YEAR)


def confuse(plate: str, rng: random.Random) -> str:
    """``plate`` with one character swapped for a confusable one (unchanged if none is confusable)."""
    positions = [i for i, ch in enumerate(plate) if ch in _SWAPS]
    if not positions:
        return plate
    i = rng.choice(positions)
    return plate[:i] + rng.choice(_SWAPS[plate[i]]) + plate[i + 1 :]


def edit(plate: str, rng: random.Random) -> str:
    """``plate`` with one genuine substitution, insertion or deletion."""
    i = rng.randrange(len(plate))
    op = rng.choice(["sub", "ins", "del"])
    if op == "del":
        return plate[:i] + plate[i + 1 :]
    new = rng.choice([c for c in "AEHKMNPRTUVWXY3479" if c != plate[i]])
    return plate[:i] + new + plate[i + (op == "sub") :]


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the results; return them as a dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000, help="hotlist entries")
    parser.add_argument("--reads", type=int, default=200_000, help="reads to match")
    parser.add_argument(
        "--hit-rate", type=float, default=0.01, help="fraction of reads taken from the hotlist"
    )
    parser.add_argument("--batch", type=int, default=2000, help="reads per match_batch call")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    say = print

    gc.collect()
    rss_start = rss_mb()
    started = time.perf_counter()
    plates: set[str] = set()
    while len(plates) < args.entries:
        plates.add(random_plate(rng))
    ordered = sorted(plates)
    entries = [
        HotlistEntry(
            entry_id=f"pnc-stolen:{plate}",
            plate=plate,
            hotlist="pnc-stolen",
            category="stolen",
            priority=1 + i % 4,
            action="Stop and inform control",
        )
        for i, plate in enumerate(ordered)
    ]
    entries_s = time.perf_counter() - started
    gc.collect()
    trim_heap()
    rss_entries = rss_mb()
    say(f"hotlist: {len(entries):,} entries made in {entries_s:.1f} s, {rss_entries - rss_start:.0f} MB RSS")

    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    index = HotlistIndex.build(entries, version=1)
    build_s, build_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    gc.collect()
    rss_index_untrimmed = rss_mb()
    trimmed = trim_heap()
    rss_index = rss_mb()
    say(
        f"index: built in {build_s:.2f} s ({build_cpu_s:.2f} s CPU), {index.neighbourhood_size:,} rows, "
        f"{index.nbytes / 2**20:.0f} MB arrays, RSS +{rss_index_untrimmed - rss_entries:.0f} MB"
        + (f" (+{rss_index - rss_entries:.0f} MB once freed heap is returned)" if trimmed else "")
    )

    planted: list[tuple[str, str, str]] = []  # (read plate, entry id, how)
    reads: list[str] = []
    for _ in range(args.reads):
        if rng.random() < args.hit_rate:
            plate = rng.choice(ordered)
            roll = rng.random()
            how = "confusion" if roll < 0.2 else "edit" if roll < 0.3 else "exact"
            read = confuse(plate, rng) if how == "confusion" else edit(plate, rng) if how == "edit" else plate
            planted.append((read, f"pnc-stolen:{plate}", how))
        else:
            read = random_plate(rng)
            while read in plates:
                read = random_plate(rng)
        reads.append(read)

    baseline: dict[str, list[HotlistEntry]] = {}
    for item in entries:
        baseline.setdefault(item.plate, []).append(item)

    def run_baseline() -> None:
        get = baseline.get
        for read in reads:
            get(read)

    fuzzy_kinds: Counter[str] = Counter()
    exact_kinds: Counter[str] = Counter()

    def run_index(max_edits: int, kinds: Counter[str]) -> Callable[[], None]:
        def run() -> None:
            match = index.match
            for read in reads:
                found = match(read, at=AT, max_edits=max_edits)
                if found:
                    kinds["any"] += 1
                    kinds[found[0].kind] += 1

        return run

    batches: dict[int, list[list[Match]]] = {}

    def run_batch(max_edits: int) -> Callable[[], None]:
        def run() -> None:
            found = batches[max_edits] = []
            for start in range(0, len(reads), args.batch):
                found.extend(index.match_batch(reads[start : start + args.batch], at=AT, max_edits=max_edits))

        return run

    gc.collect()
    gc.disable()  # the loops allocate little; keep collector pauses out of the timings
    try:
        base_wall, _ = timed(run_baseline)
        fuzzy_wall, fuzzy_cpu = timed(run_index(1, fuzzy_kinds))
        exact_wall, exact_cpu = timed(run_index(0, exact_kinds))
        fuzzy_batch_wall, fuzzy_batch_cpu = timed(run_batch(1))
        exact_batch_wall, exact_batch_cpu = timed(run_batch(0))
    finally:
        gc.enable()
    # The batch path must return exactly what one-at-a-time matching returns.
    batch_agrees = all(
        batches[max_edits] == [index.match(read, at=AT, max_edits=max_edits) for read in reads]
        for max_edits in (0, 1)
    )

    missed = [
        (read, entry_id, how)
        for read, entry_id, how in planted
        if entry_id not in {m.entry.entry_id for m in index.match(read, at=AT)}
    ]
    n = len(reads)
    result: dict[str, Any] = {
        "platform": {"python": sys.version.split()[0], "machine": platform.machine()},
        "entries": len(entries),
        "reads": n,
        "planted_hotlist_reads": len(planted),
        "planted_missed": len(missed),
        "make_entries_s": round(entries_s, 2),
        "build_s": round(build_s, 4),
        "build_cpu_s": round(build_cpu_s, 4),
        "neighbourhood_rows": index.neighbourhood_size,
        "index_array_mb": round(index.nbytes / 2**20, 1),
        "rss_entries_mb": round(rss_entries - rss_start, 1),
        "rss_index_mb": round(rss_index_untrimmed - rss_entries, 1),
        "rss_index_trimmed_mb": round(rss_index - rss_entries, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "baseline_dict_rate": round(n / base_wall),
        "fuzzy_rate": round(n / fuzzy_wall),
        "fuzzy_rate_cpu": round(n / fuzzy_cpu),
        "exact_rate": round(n / exact_wall),
        "exact_rate_cpu": round(n / exact_cpu),
        "batch_size": args.batch,
        "fuzzy_batch_rate": round(n / fuzzy_batch_wall),
        "fuzzy_batch_rate_cpu": round(n / fuzzy_batch_cpu),
        "exact_batch_rate": round(n / exact_batch_wall),
        "exact_batch_rate_cpu": round(n / exact_batch_cpu),
        "batch_agrees": batch_agrees,
        "fuzzy_ratio_to_baseline": round((n / fuzzy_wall) / (n / base_wall), 4),
        "exact_ratio_to_baseline": round((n / exact_wall) / (n / base_wall), 4),
        "fuzzy_matched_reads": dict(fuzzy_kinds),
        "exact_matched_reads": dict(exact_kinds),
    }
    say(f"reads: {n:,}, {len(planted):,} from the hotlist; planted reads missed: {len(missed)}")
    say(f"baseline dict.get (exact only): {result['baseline_dict_rate']:,} reads/s")
    for mode, kinds in (("fuzzy", fuzzy_kinds), ("exact", exact_kinds)):
        say(
            f"{mode:>5} (max_edits={1 if mode == 'fuzzy' else 0}): {result[f'{mode}_rate']:,} reads/s wall, "
            f"{result[f'{mode}_rate_cpu']:,} reads/s CPU, "
            f"{result[f'{mode}_ratio_to_baseline']:.3f} x baseline; "
            f"reads matching anything: {kinds['any']:,} ({kinds['any'] / n:.1%}); best kind: "
            + ", ".join(f"{k} {kinds[k]:,}" for k in ("exact", "confusion", "edit"))
        )
    for mode in ("fuzzy", "exact"):
        say(
            f"{mode:>5} match_batch (batches of {args.batch:,}): {result[f'{mode}_batch_rate']:,} reads/s "
            f"wall, {result[f'{mode}_batch_rate_cpu']:,} reads/s CPU, "
            f"{result[f'{mode}_batch_rate_cpu'] / result[f'{mode}_rate_cpu']:.1f} x one at a time"
        )
    say(f"match_batch returned exactly what match returned: {'yes' if batch_agrees else 'NO'}")
    say(f"peak RSS {result['peak_rss_mb']:.0f} MB")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
