"""Hotlist files, versions and their chunked publication (pure; the only I/O is reading a hotlist file).

Files
-----
:func:`load_hotlist_file` reads a CSV file (a header row, then one entry per row) or a JSON file (a list of
entry objects, or ``{"hotlist": name, "entries": [...]}``), chosen by the ``.csv``/``.json`` suffix. Columns
(CSV) and keys (JSON) are those of :data:`COLUMNS`:

``plate``, ``category``, ``priority``, ``action``
    Required. ``priority`` is an integer 1 (most urgent) to 4; ``action`` must not be blank.
``hotlist``
    Required unless the loader is given ``hotlist=`` (or a JSON file names it at the top). A row that names
    a different hotlist than the one it is loaded as is an error, not an override.
``source``, ``valid_from``, ``expires_at``, ``information``, ``added_by``, ``entry_id``
    Optional; a blank cell (or JSON ``null``) means "not given". ``added_by`` defaults to the loader's
    ``added_by=``; ``entry_id`` to ``"<hotlist>:<plate>"``.

Rules, each reported as a :class:`stream.errors.HotlistProblem` naming the row and field:

* The file must be UTF-8 (a leading byte-order mark, as Excel writes, is allowed). Bytes that are not are
  reported with their byte offset and line, and the file is not parsed further: its text cannot be trusted.
* Plates: upper-cased, with whitespace and hyphens removed, they must be 2 to 8 characters A-Z/0-9. No OCR
  confusion correction is applied: a hotlist plate was typed by a person, and fuzzy matching of reads
  against it is the matcher's job (:mod:`stream.matching`).
* Timestamps are ISO 8601 (``2025-03-01T14:30:00Z``, ``2025-03-01T14:30+01:00``, ``2025-03-01 14:30``,
  ``2025-03-01``). One without an offset is UK local time (Europe/London, GMT or BST as the date dictates)
  and is converted to UTC; a date alone means 00:00 UK time at the start of that day, so
  ``expires_at=2025-03-31`` stops matching as 31 March begins. A local time that does not exist (clocks
  going forward) or happens twice (clocks going back) is rejected: give an offset. All times are stored in
  UTC, truncated to milliseconds.
* ``expires_at`` must be after ``valid_from``, and after the load time ``now``: an entry that has already
  expired is almost always a mistyped year, and would silently never match.
* Duplicates: two rows with the same hotlist and plate, or the same ``entry_id``, are merged if they describe
  the same entry and rejected, naming both rows, if they differ.
* Unknown columns, missing required columns, rows with the wrong number of cells, and files without entries
  are rejected. Rows whose cells are all blank (as spreadsheets export) are skipped.

The file is accepted or rejected as a whole: every problem is collected, then one
:class:`~stream.errors.HotlistValidationError` lists them all.

Versions and chunks
-------------------
A :class:`HotlistVersion` is the complete set of active entries at one moment, sorted by ``entry_id``, with a
SHA-256 digest (:func:`digest_entries`). The publisher makes new versions with :func:`next_version` and
:func:`expire_entries`, splits them with :func:`chunk_version` into :class:`cordon.events.HotlistChunk` s,
and a matcher rebuilds them with :class:`VersionAssembler`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from itertools import pairwise
from operator import attrgetter
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from cordon.events import HotlistChunk, HotlistEntry, utc_now
from stream.errors import HotlistFileError, HotlistProblem, HotlistValidationError

__all__ = [
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "UK_TIMEZONE",
    "HotlistVersion",
    "VersionAssembler",
    "chunk_version",
    "digest_entries",
    "expire_entries",
    "load_hotlist_file",
    "next_version",
    "normalise_hotlist_plate",
    "parse_uk_timestamp",
]

UK_TIMEZONE: Final = ZoneInfo("Europe/London")
"""Time zone of timestamps written without an offset."""

REQUIRED_COLUMNS: Final = ("plate", "hotlist", "category", "priority", "action")
"""Columns every file needs (``hotlist`` only if the loader is not told the hotlist's name)."""

OPTIONAL_COLUMNS: Final = ("source", "valid_from", "expires_at", "information", "added_by", "entry_id")
"""Columns a file may leave out."""

COLUMNS: Final = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
"""Every column (CSV) or key (JSON) a hotlist file may have."""

log = logging.getLogger(__name__)

_PLATE = re.compile(r"[A-Z0-9]{2,8}")
_PRIORITY = re.compile(r"[1-4]")
_MAX_ENCODING_PROBLEMS = 100


# ---------------------------------------------------------------------------------------------------------
# Field rules, usable on their own (e.g. for an entry typed into a form).
# ---------------------------------------------------------------------------------------------------------


def normalise_hotlist_plate(text: str) -> str:
    """Normalise a plate typed into a hotlist.

    Parameters
    ----------
    text
        The plate as written, e.g. ``"ab12 cde"`` or ``"AB12-CDE"``.

    Returns
    -------
    str
        Upper-case, whitespace and hyphens removed, e.g. ``"AB12CDE"``. No OCR confusion correction.

    Raises
    ------
    ValueError
        The result is not 2 to 8 characters A-Z/0-9.
    """
    plate = "".join(text.split()).replace("-", "")
    # Check ASCII before upper-casing: str.upper() turns some non-ASCII letters into ASCII ones ("ß" -> "SS").
    if not plate.isascii() or not _PLATE.fullmatch(plate.upper()):
        raise ValueError("plate must be 2 to 8 letters A-Z or digits 0-9 once spaces and hyphens are removed")
    return plate.upper()


def _utc_ms(value: datetime) -> datetime:
    """Convert an aware datetime to UTC, truncated to whole milliseconds (as :class:`HotlistEntry` stores)."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def parse_uk_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; one without an offset is UK local time (Europe/London).

    Parameters
    ----------
    text
        E.g. ``"2025-03-01T14:30:00Z"``, ``"2025-07-01T09:00+01:00"``, ``"2025-07-01 09:00"`` (BST, so
        08:00 UTC) or ``"2025-03-01"`` (00:00 UK time).

    Returns
    -------
    datetime
        The instant in UTC, truncated to milliseconds.

    Raises
    ------
    ValueError
        Not ISO 8601, or a local time that does not exist or is ambiguous at a clock change.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            "not an ISO 8601 timestamp (e.g. 2025-03-01T14:30:00Z, or 2025-03-01 14:30 for UK local time)"
        ) from None
    if value.tzinfo is None:
        first = value.replace(tzinfo=UK_TIMEZONE, fold=0)
        second = value.replace(tzinfo=UK_TIMEZONE, fold=1)
        if first.utcoffset() != second.utcoffset():
            if first.astimezone(UTC).astimezone(UK_TIMEZONE).replace(tzinfo=None) != value:
                raise ValueError(
                    "this UK local time does not exist (the clocks go forward then); give a UTC offset"
                )
            raise ValueError("this UK local time happens twice (the clocks go back then); give a UTC offset")
        value = first
    return _utc_ms(value)


# ---------------------------------------------------------------------------------------------------------
# Reading files.
# ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One entry as read from a file: cells by column name (str, or int/None from JSON)."""

    number: int
    cells: dict[str, object]


def _decode(data: bytes) -> tuple[str | None, list[HotlistProblem]]:
    """Strictly decode UTF-8; on failure list every bad byte sequence with its offset and line."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    problems: list[HotlistProblem] = []
    offset = start
    # b"\n" never occurs inside a multi-byte UTF-8 sequence, so decoding line by line finds the same errors.
    for line_number, line in enumerate(data[start:].split(b"\n"), start=1):
        pos = 0
        while pos < len(line):
            try:
                line[pos:].decode("utf-8")
                break
            except UnicodeDecodeError as exc:
                bad = line[pos + exc.start : pos + exc.end].hex(" ")
                message = (
                    f"byte(s) {bad} at byte offset {offset + pos + exc.start} (line {line_number}) are not "
                    "UTF-8; save the file as UTF-8"
                )
                problems.append(HotlistProblem(row=line_number, field=None, value=None, message=message))
                pos += exc.end
            if len(problems) >= _MAX_ENCODING_PROBLEMS:
                problems.append(
                    HotlistProblem(
                        None, None, None, "more bytes are not UTF-8; only the first ones are listed"
                    )
                )
                return None, problems
        offset += len(line) + 1
    return None, problems


def _read_csv(text: str, *, problems: list[HotlistProblem]) -> tuple[list[_Row], set[str]]:
    """Rows of a CSV text and the set of columns it has; header problems go into ``problems``."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        problems.append(HotlistProblem(reader.line_num, None, None, f"not valid CSV: {exc}"))
        return [], set()
    if not records:
        return [], set()
    header = [name.strip().lower() for name in records[0]]
    columns: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append(HotlistProblem(1, None, None, f"column {position} has no name"))
        elif name in columns:
            problems.append(HotlistProblem(1, name, None, "column appears more than once"))
        elif name not in COLUMNS:
            problems.append(
                HotlistProblem(1, name, None, f"unknown column; the columns are {', '.join(COLUMNS)}")
            )
        columns.add(name)
    rows: list[_Row] = []
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(
                HotlistProblem(
                    number, None, None, f"row has {len(record)} cells but the header has {len(header)}"
                )
            )
            continue
        rows.append(_Row(number, dict(zip(header, record, strict=True))))
    return rows, columns & set(COLUMNS)


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers keys given more than once (json keeps only the last)."""

    duplicates: list[str]


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    counts: dict[str, int] = {}
    for key, _ in pairs:
        counts[key] = counts.get(key, 0) + 1
    obj.duplicates = [key for key, count in counts.items() if count > 1]
    return obj


def _read_json(text: str, *, problems: list[HotlistProblem]) -> tuple[list[_Row], str | None]:
    """Rows of a JSON text and the hotlist name it gives at the top, if any."""
    try:
        document = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        problems.append(
            HotlistProblem(
                exc.lineno, None, None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            )
        )
        return [], None
    named: str | None = None
    if isinstance(document, dict):
        for key in sorted(set(document) - {"hotlist", "entries"}):
            problems.append(
                HotlistProblem(None, key, None, "unknown top-level key; use 'hotlist' and 'entries'")
            )
        top = document.get("hotlist")
        if top is not None and not isinstance(top, str):
            problems.append(HotlistProblem(None, "hotlist", repr(top), "must be a string"))
        elif top is not None:
            named = top.strip()
        if "entries" not in document:
            problems.append(HotlistProblem(None, "entries", None, "required top-level key is missing"))
        items = document.get("entries", [])
    else:
        items = document
    if not isinstance(items, list):
        problems.append(
            HotlistProblem(
                None, None, None, "must be a list of entries, or an object with 'hotlist' and 'entries'"
            )
        )
        return [], named
    rows: list[_Row] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(HotlistProblem(number, None, None, "entry must be a JSON object"))
            continue
        for key in getattr(item, "duplicates", []):
            problems.append(HotlistProblem(number, key, None, "key appears more than once in the entry"))
        for key in sorted(set(item) - set(COLUMNS)):
            problems.append(
                HotlistProblem(number, key, None, f"unknown key; the keys are {', '.join(COLUMNS)}")
            )
        rows.append(_Row(number, {k: v for k, v in item.items() if k in COLUMNS}))
    return rows, named


# ---------------------------------------------------------------------------------------------------------
# Validating rows.
# ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _RowChecker:
    """Turns rows into entries, collecting problems."""

    default_hotlist: str | None
    default_is_bad: bool
    added_by: str
    now: datetime
    skip_missing: frozenset[str]
    problems: list[HotlistProblem] = field(default_factory=list)

    def _problem(self, row: int, name: str, value: str | None, message: str) -> None:
        self.problems.append(HotlistProblem(row, name, value, message))

    def _cells(self, row: _Row) -> tuple[dict[str, str], set[str]]:
        """Non-blank cells as stripped text, and the names of cells of the wrong JSON type (reported)."""
        cells: dict[str, str] = {}
        wrong: set[str] = set()
        for name, value in row.cells.items():
            if isinstance(value, str):
                if value.strip():
                    cells[name] = value.strip()
            elif name == "priority" and isinstance(value, int) and not isinstance(value, bool):
                cells[name] = str(value)
            elif value is not None:
                expected = "an integer 1-4" if name == "priority" else "a string"
                self._problem(row.number, name, json.dumps(value), f"must be {expected}")
                wrong.add(name)
        return cells, wrong

    def _timestamp(self, number: int, cells: dict[str, str], name: str, flagged: set[str]) -> datetime | None:
        text = cells.get(name)
        if text is None:
            return None
        try:
            return parse_uk_timestamp(text)
        except ValueError as exc:
            self._problem(number, name, text, str(exc))
            flagged.add(name)
            return None

    def entry(self, row: _Row) -> HotlistEntry | None:
        """The entry of one row, or None (with every problem of the row recorded)."""
        number = row.number
        cells, flagged = self._cells(row)
        for name in REQUIRED_COLUMNS:
            if name == "hotlist" and self.default_hotlist is not None:
                continue
            if name not in cells and name not in flagged and name not in self.skip_missing:
                self._problem(number, name, None, "required; must not be empty")
                flagged.add(name)

        plate: str | None = None
        if "plate" in cells:
            try:
                plate = normalise_hotlist_plate(cells["plate"])
            except ValueError as exc:
                self._problem(number, "plate", cells["plate"], str(exc))
                flagged.add("plate")
        hotlist = cells.get("hotlist", self.default_hotlist)
        if "hotlist" not in cells and self.default_is_bad:
            flagged.add("hotlist")  # reported once for the file
        if self.default_hotlist is not None and hotlist != self.default_hotlist:
            message = f"the file is loaded as hotlist {self.default_hotlist!r}"
            self._problem(number, "hotlist", hotlist, message)
            flagged.add("hotlist")
        priority: int | None = None
        if "priority" in cells:
            if _PRIORITY.fullmatch(cells["priority"]):
                priority = int(cells["priority"])
            else:
                self._problem(number, "priority", cells["priority"], "must be an integer 1-4")
                flagged.add("priority")
        valid_from = self._timestamp(number, cells, "valid_from", flagged)
        expires_at = self._timestamp(number, cells, "expires_at", flagged)
        if valid_from is not None and expires_at is not None and expires_at <= valid_from:
            message = f"must be after valid_from ({valid_from.isoformat()})"
            self._problem(number, "expires_at", cells["expires_at"], message)
            flagged.add("expires_at")
        elif expires_at is not None and expires_at <= self.now:
            message = (
                f"the entry has already expired (loaded at {self.now.isoformat()}); remove the row or "
                "correct the date"
            )
            self._problem(number, "expires_at", cells["expires_at"], message)
            flagged.add("expires_at")
        return self._validated(number, cells, flagged, plate, hotlist, priority, valid_from, expires_at)

    def _validated(
        self,
        number: int,
        cells: dict[str, str],
        flagged: set[str],
        plate: str | None,
        hotlist: str | None,
        priority: int | None,
        valid_from: datetime | None,
        expires_at: datetime | None,
    ) -> HotlistEntry | None:
        """Validate the row against :class:`HotlistEntry` itself, so the model's own rules (lengths, the
        hotlist name pattern) are reported too. Fields already reported get valid placeholders, so each
        problem is reported once; an ``entry_id`` the file does not give is not reported (it is derived)."""
        placeholders: dict[str, object] = {"plate": "AA", "hotlist": "x", "category": "x", "action": "x"}
        fields: dict[str, object] = {
            "plate": plate,
            "hotlist": hotlist,
            "source": cells.get("source", ""),
            "category": cells.get("category"),
            "priority": priority or 1,
            "action": cells.get("action"),
            "valid_from": valid_from,
            "expires_at": expires_at,
            "information": cells.get("information", ""),
            "added_by": cells.get("added_by", self.added_by),
        }
        for name, placeholder in placeholders.items():
            if fields[name] is None or name in flagged:
                fields[name] = placeholder
        for name in ("valid_from", "expires_at"):
            if name in flagged:
                fields[name] = None
        if "entry_id" in cells:
            fields["entry_id"] = cells["entry_id"]
        elif plate is not None and hotlist is not None:
            fields["entry_id"] = f"{hotlist}:{plate}"
        else:
            fields["entry_id"] = "x"
        try:
            entry = HotlistEntry.model_validate(fields)
        except ValidationError as exc:
            for error in exc.errors():
                loc = str(error["loc"][0]) if error["loc"] else None
                if loc == "entry_id" and "entry_id" not in cells:
                    continue
                value = cells.get(loc) if loc is not None else None
                self.problems.append(HotlistProblem(number, loc, value, error["msg"]))
            return None
        return None if flagged else entry


def _hotlist_name_problem(name: str) -> str | None:
    """Why ``name`` is no valid hotlist name, or None; the rules live on the model, so ask it."""
    try:
        HotlistEntry(entry_id="x", plate="AB", hotlist=name, category="c", priority=1, action="a")
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    return None


def _differing_fields(a: HotlistEntry, b: HotlistEntry) -> str:
    return ", ".join(name for name in HotlistEntry.model_fields if getattr(a, name) != getattr(b, name))


def _merge_duplicates(
    numbered: Iterable[tuple[int | None, HotlistEntry]], *, problems: list[HotlistProblem]
) -> list[HotlistEntry]:
    """Drop exact duplicates; record conflicting ones (same hotlist and plate, or same entry_id)."""
    by_key: dict[tuple[str, str], tuple[int | None, HotlistEntry]] = {}
    by_id: dict[str, tuple[int | None, HotlistEntry]] = {}
    kept: list[HotlistEntry] = []
    for number, entry in numbered:
        first = by_key.get((entry.hotlist, entry.plate))
        if first is not None and first[1] != entry:
            where = f"row {first[0]}" if first[0] is not None else "another entry"
            problems.append(
                HotlistProblem(
                    number,
                    "plate",
                    entry.plate,
                    f"hotlist {entry.hotlist!r} already has this plate at {where}, with different "
                    f"{_differing_fields(first[1], entry)}",
                )
            )
            continue
        same_id = by_id.get(entry.entry_id)
        if same_id is not None and same_id[1] != entry:
            where = f"row {same_id[0]}" if same_id[0] is not None else "another entry"
            problems.append(
                HotlistProblem(
                    number,
                    "entry_id",
                    entry.entry_id,
                    f"entry_id already used at {where}, with different "
                    f"{_differing_fields(same_id[1], entry)}",
                )
            )
            continue
        if first is None and same_id is None:
            by_key[(entry.hotlist, entry.plate)] = (number, entry)
            by_id[entry.entry_id] = (number, entry)
            kept.append(entry)
    return kept


def load_hotlist_file(
    path: Path,
    *,
    hotlist: str | None = None,
    added_by: str = "",
    now: datetime | None = None,
) -> tuple[HotlistEntry, ...]:
    """Read and validate a hotlist file (CSV or JSON, by suffix); see the module docstring for the rules.

    Parameters
    ----------
    path
        A ``.csv`` or ``.json`` file, UTF-8.
    hotlist
        Name of the hotlist the file is loaded as. Then the ``hotlist`` column may be left out, and a row
        naming another hotlist is an error.
    added_by
        Recorded on entries whose ``added_by`` is blank.
    now
        Load time (aware); entries that expire at or before it are rejected. Default: the current time.

    Returns
    -------
    tuple of HotlistEntry
        In file order, identical duplicates merged.

    Raises
    ------
    HotlistValidationError
        Listing every problem found, each naming its row and field.
    HotlistFileError
        The file cannot be read.
    """
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise HotlistValidationError(
            [HotlistProblem(None, None, path.suffix, "unsupported file type; use .csv or .json")],
            source=source,
        )
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HotlistFileError(f"cannot read hotlist file {source}: {exc}") from exc

    problems: list[HotlistProblem] = []
    default_hotlist = hotlist
    if hotlist is not None and (message := _hotlist_name_problem(hotlist)) is not None:
        problems.append(HotlistProblem(None, "hotlist", hotlist, message))
    text, encoding_problems = _decode(data)
    if text is None:
        raise HotlistValidationError(problems + encoding_problems, source=source)
    if not text.strip():
        problems.append(HotlistProblem(None, None, None, "the file is empty"))
        raise HotlistValidationError(problems, source=source)

    if suffix == ".csv":
        rows, columns = _read_csv(text, problems=problems)
        required = [name for name in REQUIRED_COLUMNS if name != "hotlist" or hotlist is None]
        missing = frozenset(name for name in required if name not in columns) if columns else frozenset()
        for name in REQUIRED_COLUMNS:
            if name in missing:
                problems.append(HotlistProblem(1, name, None, "required column is missing"))
    else:
        rows, named = _read_json(text, problems=problems)
        missing = frozenset()
        if named is not None and hotlist is not None and named != hotlist:
            problems.append(
                HotlistProblem(None, "hotlist", named, f"the file is loaded as hotlist {hotlist!r}")
            )
        elif named is not None and hotlist is None:
            default_hotlist = named
            if (message := _hotlist_name_problem(named)) is not None:
                problems.append(HotlistProblem(None, "hotlist", named, message))

    checker = _RowChecker(
        default_hotlist=default_hotlist,
        default_is_bad=any(p.row is None and p.field == "hotlist" for p in problems),
        added_by=added_by,
        now=_utc_ms(now) if now is not None else utc_now(),
        skip_missing=missing,
        problems=problems,
    )
    numbered: list[tuple[int | None, HotlistEntry]] = []
    for row in rows:
        entry = checker.entry(row)
        if entry is not None:
            numbered.append((row.number, entry))
    entries = _merge_duplicates(numbered, problems=problems)
    if not rows and not problems:
        problems.append(HotlistProblem(None, None, None, "the file has no entries"))
    if problems:
        # By row, file-level problems first; stable, so a row's problems keep their column order.
        problems.sort(key=lambda problem: problem.row or 0)
        raise HotlistValidationError(problems, source=source)
    return tuple(entries)


# ---------------------------------------------------------------------------------------------------------
# Versions.
# ---------------------------------------------------------------------------------------------------------

_DIGEST_FIELDS: Final = tuple(sorted(HotlistEntry.model_fields))
_TIME_FIELDS: Final = frozenset(
    name for name, info in HotlistEntry.model_fields.items() if "Datetime" in repr(info.annotation)
)
_DIGEST_HEADER: Final = b"cordon-hotlist-entries/2\n"
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _canonical(entry: HotlistEntry) -> str:
    """One entry as canonical JSON (keys sorted, UTC millisecond timestamps): the tie-break of equal ids."""
    values = {name: getattr(entry, name) for name in _DIGEST_FIELDS}
    return _JSON.encode({name: _utc_text(v) if name in _TIME_FIELDS else v for name, v in values.items()})


def digest_entries(entries: Iterable[HotlistEntry]) -> str:
    """SHA-256 of a canonical, columnar encoding of a set of entries; publisher and matchers compute the same.

    The entries are sorted by ``entry_id`` (then by their canonical JSON, should ids repeat), and encoded
    column by column: the bytes ``cordon-hotlist-entries/2`` and a newline, then for every
    :class:`HotlistEntry` field in name order, ``<field>=`` and a JSON array of that field's values in entry
    order, then a newline. Strings are JSON strings (non-ASCII characters unescaped), ``priority`` JSON
    integers, timestamps UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ`` strings or ``null``; no whitespace (``,`` and ``:``
    separators); the whole is UTF-8. The order of ``entries`` does not matter.

    A column at a time keeps the per-entry work to a few C-level steps: about 1.6 s for a million entries,
    against 3.8 s for the JSON object per entry this format replaced (version 1, which a matcher of that
    version still expects: upgrade publishers and matchers together).

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    items = list(entries)
    ids = list(map(attrgetter("entry_id"), items))
    if len(set(ids)) != len(ids):
        items.sort(key=lambda entry: (entry.entry_id, _canonical(entry)))
    elif any(a > b for a, b in pairwise(ids)):
        items.sort(key=attrgetter("entry_id"))
    digest = sha256(_DIGEST_HEADER)
    for name in _DIGEST_FIELDS:
        column: list[Any] = list(map(attrgetter(name), items))
        if name in _TIME_FIELDS:
            column = [None if value is None else _utc_text(value) for value in column]
        digest.update(f"{name}=".encode())
        digest.update(_JSON.encode(column).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class HotlistVersion:
    """The complete set of hotlist entries at one moment.

    Build one with :meth:`of` (which sorts, checks and digests); the constructor trusts its arguments.

    Attributes
    ----------
    version
        1, 2, 3, ...: increases with every change.
    entries
        Every entry, sorted by ``entry_id`` (ids are unique).
    sha256
        :func:`digest_entries` of ``entries``.
    created_at
        When the version was made (UTC, milliseconds).
    """

    version: int
    entries: tuple[HotlistEntry, ...]
    sha256: str
    created_at: datetime

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError(f"version must be >= 1, got {self.version}")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        object.__setattr__(self, "created_at", _utc_ms(self.created_at))

    @classmethod
    def of(cls, entries: Iterable[HotlistEntry], *, version: int, created_at: datetime) -> HotlistVersion:
        """Make a version from entries in any order.

        Raises
        ------
        HotlistValidationError
            Two entries share an ``entry_id``, or a hotlist and plate, with different data (identical ones
            are merged).
        """
        problems: list[HotlistProblem] = []
        unique = _merge_duplicates(((None, entry) for entry in entries), problems=problems)
        if problems:
            raise HotlistValidationError(problems, source=f"hotlist version {version}")
        ordered = tuple(sorted(unique, key=lambda entry: entry.entry_id))
        return cls(version=version, entries=ordered, sha256=digest_entries(ordered), created_at=created_at)

    def hotlists(self) -> dict[str, int]:
        """Number of entries per hotlist name."""
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry.hotlist] = counts.get(entry.hotlist, 0) + 1
        return counts


def _check_next(current: HotlistVersion | None, version: int) -> None:
    if current is not None and version <= current.version:
        raise ValueError(f"version {version} is not after the current version {current.version}")


def next_version(
    current: HotlistVersion | None,
    *,
    replace_hotlists: Mapping[str, Sequence[HotlistEntry]],
    version: int,
    now: datetime | None = None,
) -> HotlistVersion:
    """A new version in which each named hotlist's entries are wholly replaced; other hotlists are kept.

    Parameters
    ----------
    current
        The version in force, or None for the first one.
    replace_hotlists
        Hotlist name to its complete new entries (as :func:`load_hotlist_file` returns them). An empty
        sequence removes the hotlist.
    version
        The new version number, above ``current.version``.
    now
        ``created_at`` of the new version. Default: the current time.

    Raises
    ------
    HotlistValidationError
        An entry is not in the hotlist it is given for, or clashes with a kept entry's ``entry_id``.
    ValueError
        ``version`` does not increase.
    """
    _check_next(current, version)
    problems: list[HotlistProblem] = []
    kept = [] if current is None else [e for e in current.entries if e.hotlist not in replace_hotlists]
    added: list[HotlistEntry] = []
    for name, entries in replace_hotlists.items():
        for entry in entries:
            if entry.hotlist != name:
                problems.append(
                    HotlistProblem(
                        None, "hotlist", entry.hotlist, f"entry {entry.entry_id!r} given for {name!r}"
                    )
                )
            added.append(entry)
    if problems:
        raise HotlistValidationError(problems, source=f"hotlist version {version}")
    return HotlistVersion.of([*kept, *added], version=version, created_at=now or utc_now())


def expire_entries(
    current: HotlistVersion,
    entry_ids: Iterable[str],
    *,
    at: datetime,
    version: int,
    now: datetime | None = None,
) -> HotlistVersion:
    """A new version in which the given entries expire at ``at``.

    An entry that already expires at or before ``at`` keeps its expiry (expiring never extends an entry). An
    entry that only becomes valid at or after ``at`` would never match, and is removed.

    Parameters
    ----------
    current
        The version in force.
    entry_ids
        Ids of the entries to expire.
    at
        When they stop matching (aware; stored in UTC, milliseconds).
    version
        The new version number, above ``current.version``.
    now
        ``created_at`` of the new version. Default: the current time.

    Raises
    ------
    HotlistValidationError
        An id is not in ``current``.
    ValueError
        ``version`` does not increase, or ``at`` is naive.
    """
    _check_next(current, version)
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    at = _utc_ms(at)
    wanted = set(entry_ids)
    unknown = wanted - {entry.entry_id for entry in current.entries}
    if unknown:
        raise HotlistValidationError(
            [
                HotlistProblem(None, "entry_id", i, "no such entry in the current version")
                for i in sorted(unknown)
            ],
            source=f"hotlist version {version}",
        )
    entries: list[HotlistEntry] = []
    for entry in current.entries:
        if entry.entry_id not in wanted or (entry.expires_at is not None and entry.expires_at <= at):
            entries.append(entry)
        elif entry.valid_from is None or entry.valid_from < at:
            entries.append(HotlistEntry.model_validate({**entry.model_dump(), "expires_at": at}))
    return HotlistVersion.of(entries, version=version, created_at=now or utc_now())


# ---------------------------------------------------------------------------------------------------------
# Chunks.
# ---------------------------------------------------------------------------------------------------------


def chunk_version(v: HotlistVersion, *, chunk_size: int = 2000, published_by: str = "") -> list[HotlistChunk]:
    """Split a version into chunks for ``cordon.hotlists``.

    Every chunk carries the version's number, digest, entry count and ``created_at`` (as ``published_at``),
    so :class:`VersionAssembler` rebuilds an identical :class:`HotlistVersion`. An empty version is one chunk
    with no entries.

    Parameters
    ----------
    v
        The version to publish.
    chunk_size
        Most entries per chunk (>= 1). Keep chunks under the broker's message size limit: an entry with a long
        ``information`` text is a few kB of JSON.
    published_by
        Recorded on every chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = [v.entries[i : i + chunk_size] for i in range(0, len(v.entries), chunk_size)] or [()]
    return [
        HotlistChunk(
            version=v.version,
            chunk_index=index,
            chunk_count=len(parts),
            entry_count=len(v.entries),
            sha256=v.sha256,
            published_at=v.created_at,
            published_by=published_by,
            entries=part,
        )
        for index, part in enumerate(parts)
    ]


@dataclass(slots=True)
class _Pending:
    """Chunks received so far of one version, per chunk layout (``chunk_count``)."""

    sha256: str
    entry_count: int
    published_at: datetime
    layouts: dict[int, dict[int, tuple[HotlistEntry, ...]]] = field(default_factory=dict)


class VersionAssembler:
    """Rebuilds hotlist versions from their chunks, received in any order.

    :meth:`add` returns a version once all of its chunks are present and their entries match the digest, and
    never one older than or equal to the newest version it has returned. Chunks may arrive shuffled,
    repeated, or interleaved with those of other versions; a version missing a chunk is simply never
    returned. The same version republished with another chunk size is accepted from either layout.

    A version whose chunks are inconsistent (a digest or entry-count mismatch, an ``entry_id`` twice, two
    different chunks under one index, one version number with two digests) is **rejected**: :meth:`add`
    returns None, logs an error, and appends a :class:`~stream.errors.HotlistValidationError` to
    :attr:`errors`; later chunks of that version are ignored. Not raising keeps a consumer loop that does not
    expect an exception alive on a corrupt publication: the matcher keeps its current index, and the next good
    version replaces it.

    Parameters
    ----------
    max_pending_versions
        Most incomplete versions held at once; beyond it the lowest-numbered one is dropped.
    max_errors
        How many recent rejections :attr:`errors` keeps.
    """

    def __init__(self, *, max_pending_versions: int = 4, max_errors: int = 16) -> None:
        if max_pending_versions < 1:
            raise ValueError(f"max_pending_versions must be >= 1, got {max_pending_versions}")
        self._max_pending = max_pending_versions
        self._pending: dict[int, _Pending] = {}
        self._rejected: set[int] = set()
        self._newest: int | None = None
        self._errors: deque[HotlistValidationError] = deque(maxlen=max(1, max_errors))
        self.rejected_count = 0
        """Versions rejected since start (a counter for metrics)."""

    @property
    def newest(self) -> int | None:
        """The number of the newest version returned, or None."""
        return self._newest

    @property
    def pending_versions(self) -> tuple[int, ...]:
        """Numbers of versions with some chunks held, ascending."""
        return tuple(sorted(self._pending))

    @property
    def errors(self) -> tuple[HotlistValidationError, ...]:
        """The most recent rejections, oldest first."""
        return tuple(self._errors)

    def _reject(self, version: int, problems: list[HotlistProblem]) -> None:
        self._pending.pop(version, None)
        self._rejected.add(version)
        error = HotlistValidationError(problems, source=f"hotlist version {version}")
        self._errors.append(error)
        self.rejected_count += 1
        log.error("hotlist version rejected", extra={"version": version, "error": str(error)})

    def add(self, chunk: HotlistChunk) -> HotlistVersion | None:
        """Take one chunk; return the version it completes, if it completes a newer, valid one."""
        number = chunk.version
        if (self._newest is not None and number <= self._newest) or number in self._rejected:
            return None
        pending = self._pending.get(number)
        if pending is None:
            pending = _Pending(chunk.sha256, chunk.entry_count, chunk.published_at)
            self._pending[number] = pending
            while len(self._pending) > self._max_pending:
                del self._pending[min(self._pending)]
            if number not in self._pending:
                return None
        elif (pending.sha256, pending.entry_count) != (chunk.sha256, chunk.entry_count):
            self._reject(
                number,
                [
                    HotlistProblem(
                        None,
                        "sha256",
                        chunk.sha256,
                        f"chunks of one version disagree: sha256 {pending.sha256} with {pending.entry_count} "
                        f"entries, and {chunk.sha256} with {chunk.entry_count}",
                    )
                ],
            )
            return None
        pending.published_at = min(pending.published_at, chunk.published_at)
        layout = pending.layouts.setdefault(chunk.chunk_count, {})
        held = layout.get(chunk.chunk_index)
        if held is not None:
            if held != chunk.entries:
                message = f"two different chunks {chunk.chunk_index} of {chunk.chunk_count}"
                self._reject(number, [HotlistProblem(None, "chunk_index", str(chunk.chunk_index), message)])
            return None
        layout[chunk.chunk_index] = chunk.entries
        if len(layout) < chunk.chunk_count:
            return None
        return self._complete(number, pending, layout)

    def _complete(
        self, number: int, pending: _Pending, layout: dict[int, tuple[HotlistEntry, ...]]
    ) -> HotlistVersion | None:
        entries = [entry for index in range(len(layout)) for entry in layout[index]]
        problems: list[HotlistProblem] = []
        if len(entries) != pending.entry_count:
            message = f"the chunks hold {len(entries)} entries"
            problems.append(HotlistProblem(None, "entry_count", str(pending.entry_count), message))
        if len({entry.entry_id for entry in entries}) != len(entries):
            problems.append(HotlistProblem(None, "entry_id", None, "the chunks hold an entry_id twice"))
        digest = digest_entries(entries)
        if digest != pending.sha256:
            message = f"the entries received digest to {digest}"
            problems.append(HotlistProblem(None, "sha256", pending.sha256, message))
        if problems:
            self._reject(number, problems)
            return None
        ordered = tuple(sorted(entries, key=lambda entry: entry.entry_id))
        version = HotlistVersion(
            version=number, entries=ordered, sha256=digest, created_at=pending.published_at
        )
        self._newest = number
        self._pending = {n: p for n, p in self._pending.items() if n > number}
        self._rejected = {n for n in self._rejected if n > number}
        return version
