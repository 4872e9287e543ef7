"""Errors of the stream matcher; hotlist validation collects every problem, then raises once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cordon.errors import CordonError

__all__ = [
    "MAX_PROBLEMS_SHOWN",
    "HotlistFileError",
    "HotlistProblem",
    "HotlistValidationError",
    "RegistryError",
    "StreamError",
]

MAX_PROBLEMS_SHOWN = 50
"""Most problems :class:`HotlistValidationError` spells out in its message; the rest are counted."""


class StreamError(CordonError):
    """Base class of stream matcher errors."""


class RegistryError(StreamError, ValueError):
    """The camera registry cannot be read or is invalid; the message names the camera and the field."""


class HotlistFileError(StreamError, OSError):
    """A hotlist file cannot be read at all (missing, unreadable); its contents are never the cause."""


@dataclass(frozen=True, slots=True)
class HotlistProblem:
    """One thing wrong with a hotlist file or version.

    Attributes
    ----------
    row
        Where the problem is, numbered as a person sees the file, or None if it concerns the whole file.
        CSV: the spreadsheet row, so the header is row 1 and the first entry is row 2 (a quoted cell that
        spans lines still counts as one row). JSON: the 1-based position of the entry in the list of
        entries, except for syntax and encoding problems, where it is the line of the file.
    field
        The column or key concerned, or None.
    value
        The offending value as found in the file (stripped), or None.
    message
        What is wrong, phrased so that whoever owns the file can fix it.
    """

    row: int | None
    field: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        parts: list[str] = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        where = ", ".join(parts)
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            where = f"{where}: value {shown!r}" if where else f"value {shown!r}"
        return f"{where}: {self.message}" if where else self.message


class HotlistValidationError(StreamError, ValueError):
    """A hotlist file, version or chunk set is invalid; :attr:`problems` lists every problem found.

    ``str()`` gives one problem per line, at most :data:`MAX_PROBLEMS_SHOWN`, then ``... and N more``.
    """

    def __init__(self, problems: Iterable[HotlistProblem], *, source: str = "") -> None:
        self.problems: list[HotlistProblem] = list(problems)
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: " if self.source else ""
        head += f"{count} problem{'s' if count != 1 else ''}"
        lines = [str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if count > MAX_PROBLEMS_SHOWN:
            lines.append(f"... and {count - MAX_PROBLEMS_SHOWN} more")
        return "\n  ".join([head + ":", *lines])
