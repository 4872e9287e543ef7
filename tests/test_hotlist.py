"""Hotlist files, versions, chunking and reassembly (stream.hotlist, stream.errors)."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stream.errors
import stream.hotlist
from cordon.errors import CordonError
from cordon.events import HotlistChunk, HotlistEntry, decode, encode
from stream.errors import HotlistFileError, HotlistProblem, HotlistValidationError
from stream.hotlist import (
    HotlistVersion,
    VersionAssembler,
    chunk_version,
    digest_entries,
    expire_entries,
    load_hotlist_file,
    next_version,
    normalise_hotlist_plate,
    parse_uk_timestamp,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = "plate,hotlist,category,priority,action"


def write(tmp_path: Path, text: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def load(path: Path, **kwargs: object) -> tuple[HotlistEntry, ...]:
    return load_hotlist_file(path, now=NOW, **kwargs)  # type: ignore[arg-type]


def problems_of(path: Path, **kwargs: object) -> HotlistValidationError:
    with pytest.raises(HotlistValidationError) as info:
        load(path, **kwargs)
    return info.value


def entry(plate: str = "AB12CDE", hotlist: str = "pnc-stolen", **fields: object) -> HotlistEntry:
    data: dict[str, object] = {
        "entry_id": f"{hotlist}:{plate}",
        "plate": plate,
        "hotlist": hotlist,
        "category": "stolen",
        "priority": 2,
        "action": "Stop and inform control",
    }
    data.update(fields)
    return HotlistEntry.model_validate(data)


def test_public_api_is_pinned() -> None:
    assert set(stream.hotlist.__all__) == {
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
    }
    assert set(stream.errors.__all__) == {
        "MAX_PROBLEMS_SHOWN",
        "HotlistFileError",
        "HotlistProblem",
        "HotlistValidationError",
        "RegistryError",
        "StreamError",
    }


# --- loading: accepted files ------------------------------------------------------------------------------


def test_csv_entries_are_normalised_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plate,hotlist,category,priority,action,source,information,entry_id\r\n"
        "ab12 cde,pnc-stolen,stolen,1,Stop,PNC,blue Focus,\r\n"
        " x1-23 ,local-intel,drugs,3, Note only ,,,intel-7\r\n",
    )
    first, second = load(path, added_by="j.smith")
    assert first == HotlistEntry(
        entry_id="pnc-stolen:AB12CDE",
        plate="AB12CDE",
        hotlist="pnc-stolen",
        source="PNC",
        category="stolen",
        priority=1,
        action="Stop",
        information="blue Focus",
        added_by="j.smith",
    )
    assert (second.plate, second.entry_id, second.action, second.source) == (
        "X123",
        "intel-7",
        "Note only",
        "",
    )


def test_hotlist_argument_replaces_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, "plate,category,priority,action,added_by\nAB12CDE,stolen,2,Stop,ops\n")
    (only,) = load(path, hotlist="pnc-stolen", added_by="loader")
    assert (only.hotlist, only.entry_id, only.added_by) == ("pnc-stolen", "pnc-stolen:AB12CDE", "ops")


def test_byte_order_mark_and_blank_rows_are_accepted(tmp_path: Path) -> None:
    text = f"{HEADER}\nAB12CDE,h,stolen,2,Stop\n\n,,,,\n  ,, ,,\nXY99ZZZ,h,stolen,4,Log\n"
    entries = load(write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert [e.plate for e in entries] == ["AB12CDE", "XY99ZZZ"]


def test_identical_duplicates_are_merged(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"{HEADER}\nAB12CDE,h,stolen,2,Stop\nab12-cde,h,stolen,2,Stop\nAB12CDE,g,stolen,2,Stop\n"
    )
    assert [e.entry_id for e in load(path)] == ["h:AB12CDE", "g:AB12CDE"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-01 09:00", datetime(2025, 7, 1, 8, 0, tzinfo=UTC)),  # BST: UTC+1
        ("2025-01-15T09:00", datetime(2025, 1, 15, 9, 0, tzinfo=UTC)),  # GMT
        ("2025-07-01", datetime(2025, 6, 30, 23, 0, tzinfo=UTC)),  # midnight UK time
        ("2025-07-01T09:00:00Z", datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ("2025-07-01T09:00:00-05:00", datetime(2025, 7, 1, 14, 0, tzinfo=UTC)),
        ("2025-03-30 00:59:59", datetime(2025, 3, 30, 0, 59, 59, tzinfo=UTC)),  # last GMT second
        ("2025-03-30 02:00", datetime(2025, 3, 30, 1, 0, tzinfo=UTC)),  # first BST minute
        ("2025-10-26 02:00", datetime(2025, 10, 26, 2, 0, tzinfo=UTC)),  # GMT again
        ("2025-07-01T09:00:00.123999Z", datetime(2025, 7, 1, 9, 0, 0, 123000, tzinfo=UTC)),
    ],
)
def test_timestamps_without_offset_are_uk_local_time(text: str, expected: datetime) -> None:
    assert parse_uk_timestamp(text) == expected


def test_file_timestamps_are_converted_to_utc(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"{HEADER},valid_from,expires_at\nAB12CDE,h,stolen,2,Stop,2025-07-01 09:00,2025-12-01\n"
    )
    (only,) = load(path)
    assert only.valid_from == datetime(2025, 7, 1, 8, tzinfo=UTC)
    assert only.expires_at == datetime(2025, 12, 1, tzinfo=UTC)


def test_json_list_of_entries(tmp_path: Path) -> None:
    items = [
        {"plate": "AB12CDE", "hotlist": "h", "category": "stolen", "priority": 1, "action": "Stop"},
        {"plate": "X1", "hotlist": "h", "category": "c", "priority": "3", "action": "Log", "source": None},
    ]
    entries = load(write(tmp_path, json.dumps(items), "list.json"))
    assert [(e.plate, e.priority, e.source) for e in entries] == [("AB12CDE", 1, ""), ("X1", 3, "")]


def test_json_object_names_the_hotlist(tmp_path: Path) -> None:
    doc = {
        "hotlist": "local",
        "entries": [{"plate": "ab 12", "category": "c", "priority": 4, "action": "Log"}],
    }
    (only,) = load(write(tmp_path, json.dumps(doc), "list.JSON"))
    assert (only.hotlist, only.entry_id) == ("local", "local:AB12")
    (again,) = load(write(tmp_path, json.dumps(doc), "list.json"), hotlist="local")
    assert again == only


# --- loading: rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("X,h,stolen,2,Stop", "row 2, field 'plate': value 'X': plate must be 2 to 8"),
        ("AB12CDEFG,h,stolen,2,Stop", "row 2, field 'plate': value 'AB12CDEFG': plate must be 2 to 8"),
        ("AB_12,h,stolen,2,Stop", "row 2, field 'plate': value 'AB_12': plate must be 2 to 8"),
        ("ÄB12,h,stolen,2,Stop", "row 2, field 'plate': value 'ÄB12': plate must be 2 to 8"),
        ("straße,h,stolen,2,Stop", "row 2, field 'plate': value 'straße': plate must be 2 to 8"),
        (",h,stolen,2,Stop", "row 2, field 'plate': required; must not be empty"),
        ("AB12,h,stolen,9,Stop", "row 2, field 'priority': value '9': must be an integer 1-4"),
        ("AB12,h,stolen,0,Stop", "row 2, field 'priority': value '0': must be an integer 1-4"),
        ("AB12,h,stolen,1.0,Stop", "row 2, field 'priority': value '1.0': must be an integer 1-4"),
        ("AB12,h,stolen,high,Stop", "row 2, field 'priority': value 'high': must be an integer 1-4"),
        ("AB12,h,stolen,,Stop", "row 2, field 'priority': required; must not be empty"),
        ("AB12,h,stolen,2,  ", "row 2, field 'action': required; must not be empty"),
        ("AB12,h,,2,Stop", "row 2, field 'category': required; must not be empty"),
        ("AB12,,stolen,2,Stop", "row 2, field 'hotlist': required; must not be empty"),
        ("AB12,PNC Stolen,stolen,2,Stop", "row 2, field 'hotlist': value 'PNC Stolen': String should match"),
        (f"AB12,h,{'c' * 65},2,Stop", "row 2, field 'category': value '" + "c" * 57 + "...': String should"),
    ],
)
def test_bad_cells_are_reported_with_row_and_field(tmp_path: Path, row: str, expected: str) -> None:
    error = problems_of(write(tmp_path, f"{HEADER}\n{row}\n"))
    assert len(error.problems) == 1, str(error)
    assert expected in str(error)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ("yesterday,", "row 2, field 'valid_from': value 'yesterday': not an ISO 8601 timestamp"),
        ("2025-13-01,", "row 2, field 'valid_from': value '2025-13-01': not an ISO 8601 timestamp"),
        (
            "2025-03-30 01:30,",
            "row 2, field 'valid_from': value '2025-03-30 01:30': this UK local time does not",
        ),
        (
            ",2025-10-26 01:30",
            "row 2, field 'expires_at': value '2025-10-26 01:30': this UK local time happens",
        ),
        ("2025-06-01,2025-06-01", "row 2, field 'expires_at': value '2025-06-01': must be after valid_from"),
        ("2025-06-02,2025-06-01", "row 2, field 'expires_at': value '2025-06-01': must be after valid_from"),
        (",2024-12-31T23:59Z", "row 2, field 'expires_at': value '2024-12-31T23:59Z': the entry has already"),
        (",2025-01-01T00:00Z", "row 2, field 'expires_at': value '2025-01-01T00:00Z': the entry has already"),
    ],
)
def test_bad_timestamps_are_reported(tmp_path: Path, cells: str, expected: str) -> None:
    error = problems_of(write(tmp_path, f"{HEADER},valid_from,expires_at\nAB12,h,c,2,Stop,{cells}\n"))
    assert len(error.problems) == 1, str(error)
    assert expected in str(error)


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, "plate,colour,category,action,Notes\nAB12,red,c,Stop,x\n"))
    text = str(error)
    for line in (
        "row 1, field 'colour': unknown column",
        "row 1, field 'notes': unknown column",
        "row 1, field 'hotlist': required column is missing",
        "row 1, field 'priority': required column is missing",
    ):
        assert line in text
    assert len(error.problems) == 4  # the rows are not blamed for the missing columns


def test_hotlist_column_not_needed_when_named(tmp_path: Path) -> None:
    path = write(tmp_path, "plate,category,priority,action\nAB12,c,2,Stop\n")
    assert "row 1, field 'hotlist': required column is missing" in str(problems_of(path))
    assert load(path, hotlist="h")[0].hotlist == "h"


def test_row_naming_another_hotlist_is_rejected(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, f"{HEADER}\nAB12,other,c,2,Stop\n"), hotlist="h")
    assert "row 2, field 'hotlist': value 'other': the file is loaded as hotlist 'h'" in str(error)


def test_invalid_hotlist_argument_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "plate,category,priority,action\nAB12,c,2,Stop\nCD34,c,0,Stop\n")
    error = problems_of(path, hotlist="Bad Name")
    assert [(p.row, p.field, p.value) for p in error.problems] == [
        (None, "hotlist", "Bad Name"),
        (3, "priority", "0"),
    ]


@pytest.mark.parametrize("text", ["", "  \r\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    error = problems_of(write(tmp_path, text))
    assert [p.message for p in error.problems] == ["the file is empty"]


def test_header_without_rows_has_no_entries(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, f"{HEADER}\n,,,,\n"))
    assert [p.message for p in error.problems] == ["the file has no entries"]


def test_wrong_cell_count(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, f"{HEADER}\nAB12,h,c,2,Stop,extra\nCD34,h,c,2\n"))
    assert "row 2: row has 6 cells but the header has 5" in str(error)
    assert "row 3: row has 4 cells but the header has 5" in str(error)


def test_not_utf8_reports_offset_and_line(tmp_path: Path) -> None:
    data = f"{HEADER}\nAB12,h,c,2,Stop\n".encode() + b"CD34,h,caf\xe9,2,Stop\n\xff\xfe,h,c,2,Stop\n"
    error = problems_of(write(tmp_path, data))
    offset = data.index(b"\xe9")
    assert [str(p) for p in error.problems] == [
        f"row 3: byte(s) e9 at byte offset {offset} (line 3) are not UTF-8; save the file as UTF-8",
        f"row 4: byte(s) ff at byte offset {offset + 9} (line 4) are not UTF-8; save the file as UTF-8",
        f"row 4: byte(s) fe at byte offset {offset + 10} (line 4) are not UTF-8; save the file as UTF-8",
    ]


def test_conflicting_duplicates_name_both_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{HEADER},entry_id\n"
        "AB12CDE,h,stolen,2,Stop,\n"
        "AB12CDE,h,stolen,1,Stop,\n"
        "XY99ZZZ,h,stolen,2,Stop,e-1\n"
        "QQ11QQQ,h,stolen,2,Stop,e-1\n",
    )
    error = problems_of(path)
    assert [str(p) for p in error.problems] == [
        "row 3, field 'plate': value 'AB12CDE': hotlist 'h' already has this plate at row 2, with different "
        "priority",
        "row 5, field 'entry_id': value 'e-1': entry_id already used at row 4, with different plate",
    ]


def test_every_problem_is_collected_in_row_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plate,hotlist,category,priority,action,valid_from,colour\n"
        "AB12CDE,h,stolen,2,Stop,,red\n"
        "X,h,stolen,7,,not-a-date,\n"
        "AB12CDE,h,stolen,3,Stop,,\n",
    )
    error = problems_of(path)
    rows = [(p.row, p.field) for p in error.problems]
    assert rows == [
        (1, "colour"),
        (3, "action"),
        (3, "plate"),
        (3, "priority"),
        (3, "valid_from"),
        (4, "plate"),
    ]


def test_message_lists_at_most_fifty_problems(tmp_path: Path) -> None:
    rows = "".join(f"AB{i:02d},h,c,9,Stop\n" for i in range(60))
    error = problems_of(write(tmp_path, f"{HEADER}\n{rows}"))
    assert len(error.problems) == 60
    lines = str(error).splitlines()
    assert lines[0].endswith("60 problems:")
    assert len(lines) == 1 + 50 + 1
    assert lines[-1].strip() == "... and 10 more"
    assert lines[1].strip() == "row 2, field 'priority': value '9': must be an integer 1-4"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            '[{"plate": 1234, "hotlist": "h", "category": "c", "priority": 2, "action": "a"}]',
            "row 1, field 'plate': value '1234': must be a string",
        ),
        (
            '[{"plate": "AB12", "hotlist": "h", "category": "c", "priority": true, "action": "a"}]',
            "row 1, field 'priority': value 'true': must be an integer 1-4",
        ),
        (
            '[{"plate": "AB12", "plate": "CD34", "hotlist": "h", "category": "c", "priority": 2, '
            '"action": "a"}]',
            "row 1, field 'plate': key appears more than once in the entry",
        ),
        (
            '[{"plate": "AB12", "hotlist": "h", "category": "c", "priority": 2, "action": "a", "x": 1}]',
            "row 1, field 'x': unknown key",
        ),
        (
            '[{"plate": "AB12", "hotlist": "h", "category": "c", "priority": 2}]',
            "row 1, field 'action': required; must not be empty",
        ),
        (
            '[{"plate": "AB12", "hotlist": "h", "category": "c", "priority": 2, "action": "a"}, 7]',
            "row 2: entry must be a JSON object",
        ),
        ('{"hotlist": "h", "entries": {}}', "must be a list of entries"),
        ('{"hotlist": "h", "rows": []}', "field 'rows': unknown top-level key"),
        ('{"hotlist": "h"}', "field 'entries': required top-level key is missing"),
        (
            '[\n{"plate": "AB12",\n}\n]',
            "row 3: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("[]", "the file has no entries"),
    ],
)
def test_json_rejections(tmp_path: Path, document: str, expected: str) -> None:
    assert expected in str(problems_of(write(tmp_path, document, "list.json")))


def test_json_top_level_hotlist_must_agree_with_argument(tmp_path: Path) -> None:
    doc = {"hotlist": "a", "entries": [{"plate": "AB12", "category": "c", "priority": 2, "action": "x"}]}
    error = problems_of(write(tmp_path, json.dumps(doc), "list.json"), hotlist="b")
    assert "field 'hotlist': value 'a': the file is loaded as hotlist 'b'" in str(error)


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, f"{HEADER}\nAB12,h,c,2,Stop\n", "list.txt"))
    assert "unsupported file type" in str(error)
    with pytest.raises(HotlistFileError, match="cannot read hotlist file"):
        load(tmp_path / "absent.csv")


def test_error_types_and_problem_text() -> None:
    error = HotlistValidationError([HotlistProblem(7, "priority", "9", "must be 1-4")], source="f.csv")
    assert isinstance(error, ValueError)
    assert isinstance(error, CordonError)
    assert str(error) == "f.csv: 1 problem:\n  row 7, field 'priority': value '9': must be 1-4"
    assert str(HotlistProblem(None, None, None, "the file is empty")) == "the file is empty"
    assert issubclass(HotlistFileError, OSError)


@pytest.mark.parametrize(
    ("text", "plate"), [("ab12 cde", "AB12CDE"), ("A-1", "A1"), ("\tx 9\u00a0z ", "X9Z")]
)
def test_normalise_hotlist_plate_applies_no_confusion_correction(text: str, plate: str) -> None:
    assert normalise_hotlist_plate(text) == plate
    assert normalise_hotlist_plate("AB12C0E") == "AB12C0E"  # a 0 where a letter belongs stays a 0


# --- versions ---------------------------------------------------------------------------------------------


def test_version_sorts_entries_and_digest_ignores_order() -> None:
    entries = [entry("ZZ99ZZZ"), entry("AA11AAA"), entry("MM55MMM", hotlist="local")]
    version = HotlistVersion.of(entries, version=3, created_at=NOW)
    assert [e.entry_id for e in version.entries] == [
        "local:MM55MMM",
        "pnc-stolen:AA11AAA",
        "pnc-stolen:ZZ99ZZZ",
    ]
    assert version.sha256 == digest_entries(reversed(entries)) == digest_entries(version.entries)
    assert version.hotlists() == {"local": 1, "pnc-stolen": 2}


def test_digest_is_the_documented_columnar_encoding() -> None:
    item = entry(
        "AB12CDE", information="Zoë's car", valid_from=datetime(2025, 7, 1, 8, 0, 0, 5000, tzinfo=UTC)
    )
    other = entry("AA11AAA", hotlist="local", priority=1, source="PNC")
    # Written out by hand: entries sorted by entry_id, one JSON array per field in name order, UTC
    # millisecond "Z" timestamps, no whitespace, non-ASCII unescaped.
    text = (
        "cordon-hotlist-entries/2\n"
        'action=["Stop and inform control","Stop and inform control"]\n'
        'added_by=["",""]\n'
        'category=["stolen","stolen"]\n'
        'entry_id=["local:AA11AAA","pnc-stolen:AB12CDE"]\n'
        "expires_at=[null,null]\n"
        'hotlist=["local","pnc-stolen"]\n'
        'information=["","Zoë\'s car"]\n'
        'plate=["AA11AAA","AB12CDE"]\n'
        "priority=[1,2]\n"
        'source=["PNC",""]\n'
        'valid_from=[null,"2025-07-01T08:00:00.005Z"]\n'
    )
    assert digest_entries([item, other]) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_digest_of_repeated_ids_does_not_depend_on_order() -> None:
    first, second = entry(priority=1), entry(priority=3)  # one entry_id, different data
    assert digest_entries([first, second]) == digest_entries([second, first])
    assert digest_entries([first, second]) != digest_entries([first, first])


@pytest.mark.parametrize("field", ["priority", "action", "information", "expires_at", "category"])
def test_digest_changes_with_any_field(field: str) -> None:
    base = entry()
    changed = {
        "priority": 3,
        "action": "Do not stop",
        "information": "x",
        "expires_at": NOW + timedelta(days=1),
        "category": "x",
    }[field]
    assert digest_entries([base]) != digest_entries([base.model_copy(update={field: changed})])


def test_version_rejects_conflicting_entries() -> None:
    with pytest.raises(HotlistValidationError, match="entry_id already used"):
        HotlistVersion.of(
            [entry(), entry(entry_id="pnc-stolen:AB12CDE", plate="XY99ZZZ")], version=1, created_at=NOW
        )
    with pytest.raises(ValueError, match="version must be >= 1"):
        HotlistVersion.of([], version=0, created_at=NOW)


def test_next_version_replaces_named_hotlists_only() -> None:
    first = next_version(
        None,
        replace_hotlists={"a": [entry("AA11AAA", "a"), entry("BB22BBB", "a")], "b": [entry("CC33CCC", "b")]},
        version=1,
        now=NOW,
    )
    second = next_version(first, replace_hotlists={"a": [entry("DD44DDD", "a")]}, version=2, now=NOW)
    assert [e.entry_id for e in second.entries] == ["a:DD44DDD", "b:CC33CCC"]
    assert (second.version, second.created_at) == (2, NOW)
    third = next_version(second, replace_hotlists={"b": []}, version=5, now=NOW)
    assert [e.entry_id for e in third.entries] == ["a:DD44DDD"]


def test_next_version_checks_version_and_hotlist_names() -> None:
    first = next_version(None, replace_hotlists={"a": [entry("AA11AAA", "a")]}, version=1, now=NOW)
    with pytest.raises(ValueError, match="not after the current version 1"):
        next_version(first, replace_hotlists={}, version=1, now=NOW)
    with pytest.raises(HotlistValidationError, match="given for 'b'"):
        next_version(first, replace_hotlists={"b": [entry("AA11AAA", "a")]}, version=2, now=NOW)
    clash = entry("ZZ11ZZZ", "b", entry_id="a:AA11AAA")
    with pytest.raises(HotlistValidationError, match="entry_id already used"):
        next_version(first, replace_hotlists={"b": [clash]}, version=2, now=NOW)


def test_expire_entries() -> None:
    at = datetime(2025, 6, 1, 12, tzinfo=UTC)
    items = [
        entry("AA11AAA"),
        entry("BB22BBB", expires_at=at - timedelta(hours=1)),  # already expires earlier: kept as is
        entry("CC33CCC", valid_from=at + timedelta(days=1)),  # would never be active: removed
        entry("DD44DDD"),  # not named: untouched
    ]
    current = HotlistVersion.of(items, version=4, created_at=NOW)
    ids = ["pnc-stolen:AA11AAA", "pnc-stolen:BB22BBB", "pnc-stolen:CC33CCC"]
    new = expire_entries(current, ids, at=at, version=5, now=NOW)
    by_id = {e.entry_id: e for e in new.entries}
    assert set(by_id) == {"pnc-stolen:AA11AAA", "pnc-stolen:BB22BBB", "pnc-stolen:DD44DDD"}
    assert by_id["pnc-stolen:AA11AAA"].expires_at == at
    assert by_id["pnc-stolen:AA11AAA"].active_at(at - timedelta(milliseconds=1))
    assert not by_id["pnc-stolen:AA11AAA"].active_at(at)
    assert by_id["pnc-stolen:BB22BBB"].expires_at == at - timedelta(hours=1)
    assert by_id["pnc-stolen:DD44DDD"] == items[3]
    assert new.sha256 == digest_entries(new.entries) != current.sha256
    with pytest.raises(HotlistValidationError, match="no such entry"):
        expire_entries(current, ["nope"], at=at, version=5)
    with pytest.raises(ValueError, match="not after"):
        expire_entries(current, [], at=at, version=4)


# --- chunks and reassembly --------------------------------------------------------------------------------

PLATES = st.text("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=2, max_size=8)


def make_version(plates: list[str], number: int, priority: int = 2) -> HotlistVersion:
    return HotlistVersion.of(
        [entry(p, priority=priority) for p in plates],
        version=number,
        created_at=NOW + timedelta(minutes=number),
    )


def test_chunk_version_round_trips_through_the_wire_format() -> None:
    version = make_version([f"AB{i:02d}CDE" for i in range(25)], 7)
    chunks = chunk_version(version, chunk_size=10, published_by="loader")
    assert [(c.chunk_index, c.chunk_count, len(c.entries)) for c in chunks] == [
        (0, 3, 10),
        (1, 3, 10),
        (2, 3, 5),
    ]
    assert all(c.published_by == "loader" and c.entry_count == 25 for c in chunks)
    assembler = VersionAssembler()
    received = [decode(encode(c)) for c in chunks]
    assert all(isinstance(c, HotlistChunk) for c in received)
    results = [assembler.add(c) for c in received if isinstance(c, HotlistChunk)]
    assert results[:2] == [None, None]
    assert results[2] == version


def test_empty_version_is_one_chunk() -> None:
    version = HotlistVersion.of([], version=1, created_at=NOW)
    (chunk,) = chunk_version(version)
    assert (chunk.chunk_count, chunk.entries) == (1, ())
    assert VersionAssembler().add(chunk) == version
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_version(version, chunk_size=0)


@settings(max_examples=60, deadline=None)
@given(
    plates=st.lists(PLATES, max_size=40, unique=True),
    older_plates=st.lists(PLATES, max_size=15, unique=True),
    chunk_size=st.integers(1, 12),
    older_chunk_size=st.integers(1, 12),
    duplicates=st.lists(st.integers(0, 1000), max_size=8),
    drop_one=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_assembler_rebuilds_versions_from_shuffled_chunks(
    plates: list[str],
    older_plates: list[str],
    chunk_size: int,
    older_chunk_size: int,
    duplicates: list[int],
    drop_one: bool,
    seed: int,
) -> None:
    rng = random.Random(seed)
    newer = make_version(plates, 5)
    older = make_version(older_plates, 4, priority=3)
    newer_chunks = chunk_version(newer, chunk_size=chunk_size)
    if drop_one:
        newer_chunks.pop(rng.randrange(len(newer_chunks)))
    stream_ = newer_chunks + chunk_version(older, chunk_size=older_chunk_size)
    stream_ += [stream_[i % len(stream_)] for i in duplicates]
    rng.shuffle(stream_)

    assembler = VersionAssembler()
    returned = [v for v in map(assembler.add, stream_) if v is not None]

    numbers = [v.version for v in returned]
    assert numbers == sorted(set(numbers)), "versions must strictly increase"
    for version in returned:
        assert version == {4: older, 5: newer}[version.version]
    if drop_one:
        assert 5 not in numbers
        assert 5 in assembler.pending_versions or not newer_chunks
    else:
        assert numbers[-1] == 5
    assert assembler.errors == ()


def test_older_version_is_ignored_once_a_newer_one_is_returned() -> None:
    older, newer = make_version(["AA11AAA"], 1), make_version(["BB22BBB"], 2)
    assembler = VersionAssembler()
    assert assembler.add(chunk_version(newer)[0]) == newer
    assert assembler.add(chunk_version(older)[0]) is None
    assert assembler.add(chunk_version(newer)[0]) is None
    assert assembler.newest == 2


def test_republished_version_with_other_chunk_size_is_accepted() -> None:
    version = make_version([f"AB{i:02d}CDE" for i in range(6)], 3)
    small, large = chunk_version(version, chunk_size=2), chunk_version(version, chunk_size=4)
    assembler = VersionAssembler()
    assert [assembler.add(c) for c in [small[0], large[0], small[1]]] == [None, None, None]
    assert assembler.add(large[1]) == version


def tampered(chunk: HotlistChunk) -> HotlistChunk:
    changed = chunk.entries[0].model_copy(update={"priority": 4 if chunk.entries[0].priority != 4 else 1})
    return chunk.model_copy(update={"entries": (changed, *chunk.entries[1:])})


def test_digest_mismatch_rejects_the_version() -> None:
    version = make_version([f"AB{i:02d}CDE" for i in range(4)], 2)
    chunks = chunk_version(version, chunk_size=2)
    assembler = VersionAssembler()
    assert assembler.add(tampered(chunks[0])) is None
    assert assembler.add(chunks[1]) is None
    (error,) = assembler.errors
    assert error.problems[0].field == "sha256"
    assert "digest" in str(error)
    assert assembler.rejected_count == 1
    assert assembler.add(chunks[0]) is None, "a rejected version stays rejected"
    good = make_version(["ZZ99ZZZ"], 3)
    assert assembler.add(chunk_version(good)[0]) == good


def test_conflicting_chunks_of_one_version_are_rejected() -> None:
    version = make_version([f"AB{i:02d}CDE" for i in range(4)], 2)
    chunks = chunk_version(version, chunk_size=2)
    assembler = VersionAssembler()
    assembler.add(chunks[0])
    assert assembler.add(tampered(chunks[0])) is None
    assert "two different chunks 0 of 2" in str(assembler.errors[-1])
    assert assembler.add(chunks[1]) is None

    other = make_version(["XY11ZZZ"], 2)
    assembler = VersionAssembler()
    assembler.add(chunks[0])
    assert assembler.add(chunk_version(other)[0]) is None
    assert "chunks of one version disagree" in str(assembler.errors[-1])


def test_entry_count_mismatch_is_rejected() -> None:
    version = make_version(["AA11AAA", "BB22BBB"], 2)
    (chunk,) = chunk_version(version)
    lying = chunk.model_copy(update={"entry_count": 3})
    assembler = VersionAssembler()
    assert assembler.add(lying) is None
    assert {p.field for p in assembler.errors[-1].problems} == {"entry_count"}


def test_pending_versions_are_bounded() -> None:
    assembler = VersionAssembler(max_pending_versions=2)
    for number in (3, 4, 5):
        assembler.add(chunk_version(make_version(["AA11AAA", "BB22BBB"], number), chunk_size=1)[0])
    assert assembler.pending_versions == (4, 5)
    assert assembler.add(chunk_version(make_version(["AA11AAA"], 2))[0]) is None
    assert assembler.pending_versions == (4, 5)


def test_invalid_hotlist_name_in_json_is_one_problem(tmp_path: Path) -> None:
    items = [{"plate": p, "category": "c", "priority": 2, "action": "x"} for p in ("AB12", "CD34", "X")]
    error = problems_of(write(tmp_path, json.dumps({"hotlist": "Bad Name", "entries": items}), "list.json"))
    assert [(p.row, p.field) for p in error.problems] == [(None, "hotlist"), (3, "plate")]
