"""Describe the machine this process runs on: CPU, memory, ONNX Runtime providers and engine versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import socket
from pathlib import Path

__all__ = [
    "cpu_model",
    "hostname",
    "logical_cpus",
    "onnx_providers_available",
    "package_version",
    "ram_gb",
]


def package_version(dist: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; Arm boards name it in ``Model`` or the device tree)."""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
        for key in ("model name", "Model", "Hardware"):
            for line in lines:
                if line.split(":", 1)[0].strip() == key and ":" in line:
                    return line.split(":", 1)[1].strip()
    with contextlib.suppress(OSError):
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode("utf-8", "replace")
        if model:
            return model
    return platform.processor() or platform.machine() or "unknown"


def logical_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's logical CPU count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ram_gb() -> float:
    """Total physical memory, GB (10^9 bytes)."""
    import psutil

    total: int = psutil.virtual_memory().total
    return round(total / 1e9, 2)


def onnx_providers_available() -> tuple[str, ...]:
    """Execution providers this machine's ONNX Runtime build offers (what fast-alpr can run on)."""
    import onnxruntime

    return tuple(str(p) for p in onnxruntime.get_available_providers())


def hostname() -> str:
    """This machine's host name."""
    return socket.gethostname()
