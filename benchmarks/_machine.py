"""What every benchmark reports about the machine it ran on, and its progress bars (shared helpers)."""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Shared with ``cordon hardware bench``, which describes the box it measures the same way.
from hardware.bench import progress_bar
from hardware.machine import cpu_model, package_version

__all__ = [
    "add_load_rows",
    "cpu_model",
    "cpu_seconds",
    "kafka_crc32c",
    "load_average",
    "other_cpu_share",
    "package_version",
    "progress_bar",
    "write_json",
]


def kafka_crc32c() -> str:
    """Which CRC32C kafka-python checksums record batches with: C (package ``crc32c``) or pure Python."""
    try:
        from kafka.record import util
    except ImportError:
        return "unknown"
    if getattr(util, "crc32c_c", None) is not None:
        return f"C (crc32c {package_version('crc32c')})"
    return "pure Python (package crc32c not installed)"


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (runnable processes), or zeros where the OS has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return 0.0, 0.0, 0.0
    return round(one, 2), round(five, 2), round(fifteen, 2)


def cpu_seconds() -> tuple[float, float] | None:
    """``(busy CPU seconds of the whole machine, CPU seconds of this process and its reaped children)``."""
    try:
        line = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0]
        fields = [int(v) for v in line.split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(
        u.ru_utime + u.ru_stime
        for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )
    return busy, own


def other_cpu_share(
    before: tuple[float, float] | None, wall_s: float, cpus: int, *, exclude_cpu_s: float = 0.0
) -> float | None:
    """Share of all CPU time over ``wall_s`` used by other processes, less ``exclude_cpu_s`` (a broker)."""
    after = cpu_seconds()
    if before is None or after is None or wall_s <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1]) - exclude_cpu_s
    return round(min(max(others / (wall_s * cpus), 0.0), 1.0), 3)


def add_load_rows(
    table: Table,
    start: tuple[float, float, float],
    end: tuple[float, float, float],
    other_share: float | None,
    *,
    measured: str = "rates",
) -> None:
    """Add the load-average row and, if known, how much CPU other processes used (and a noise warning)."""
    table.add_row(
        "load average", f"start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f}; end {end[0]:.2f} {end[1]:.2f}"
    )
    if other_share is not None:
        busy = other_share > 0.1
        table.add_row(
            "other processes",
            f"used {other_share:.0%} of all CPU time during the run"
            + (f" [yellow](busy machine: {measured} are noisy)[/yellow]" if busy else ""),
        )


def write_json(path: Path | None, data: object, console: Console) -> None:
    """Write a benchmark's results as JSON, if a path was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    console.print(f"results written to {path}")
