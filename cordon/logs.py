"""Structured logging: one JSON object per line (machine-readable) or rich console output (people)."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["json", "console"]


def configure_logging(*, level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Configure the root logger once for a process.

    ``extra={...}`` fields passed to a log call become JSON keys, so logs can be filtered by camera, topic or
    read id. Secrets never go into ``extra``.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if fmt == "console":
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"}
            )
        )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO about every reconnect; its warnings are enough.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
