"""The strict plate-read screen (cordon.events.screen_plate_reads) against the decoder it stands in for."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cordon.events import (
    BBox,
    EventDecodeError,
    Heartbeat,
    PlateRead,
    ReadFields,
    _uuid_texts,
    decode,
    encode,
    screen_plate_reads,
    screen_plate_reads_active,
    screened_read_fields,
)
from tests.conftest import make_read

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)

# Printable ASCII but quote and backslash: what the screen takes in strings (other text is decoded in full).
plain = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'))
any_text = st.text()
unit = st.floats(0.0, 1.0)


@st.composite
def plate_reads(draw: st.DrawFn, *, text: st.SearchStrategy[str] = any_text) -> PlateRead:
    plate = draw(st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True))
    x1, y1 = draw(st.integers(0, 4000)), draw(st.integers(0, 3000))
    offset = draw(st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))]))
    return PlateRead(
        read_id=draw(st.uuids()),
        camera_id=draw(text.filter(lambda t: 1 <= len(t) <= 64)),
        edge_box_id=draw(text.filter(lambda t: 1 <= len(t) <= 64)),
        captured_at=draw(st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1), timezones=st.just(offset))),
        plate_raw=draw(text.filter(lambda t: len(t) <= 16)),
        plate=plate,
        plate_format=draw(st.none() | text),
        confidence=draw(unit),
        char_confidences=draw(st.none() | st.tuples(*[unit] * len(plate))),
        bbox=BBox(x1=x1, y1=y1, x2=x1 + draw(st.integers(0, 500)), y2=y1 + draw(st.integers(0, 200))),
        direction=draw(st.sampled_from([None, "in", "out"])),
        frames=draw(st.integers(1, 10**6)),
        crop_jpeg=draw(st.none() | st.binary(max_size=64)),
        crop_ref=draw(st.none() | text.filter(lambda t: len(t) <= 512)),
    )


def test_screen_is_written_for_the_current_plate_read() -> None:
    """If this fails, PlateRead, BBox or _to_utc_ms changed: check the screen against them, then re-pin."""
    assert screen_plate_reads_active()


@settings(max_examples=300, deadline=None)
@given(read=plate_reads())
def test_whatever_the_screen_accepts_decodes_to_the_same_plate_and_confidence(read: PlateRead) -> None:
    value = encode(read)
    (screened,) = screen_plate_reads([value])
    if screened is not None:
        assert screened == (read.plate, read.confidence)


@settings(max_examples=200, deadline=None)
@given(read=plate_reads())
def test_every_encoded_read_is_screened(read: PlateRead) -> None:
    assert screen_plate_reads([encode(read)]) == [(read.plate, read.confidence)]


@settings(max_examples=200, deadline=None)
@given(
    reads=st.lists(plate_reads(text=plain), max_size=6),
    others=st.lists(
        st.sampled_from([None, b"", b"\n", b"{}", b"not json", b"[]", b"null"]) | st.binary(max_size=20),
        max_size=4,
    ),
    data=st.data(),
)
def test_a_batch_is_screened_as_its_messages_are_one_by_one(
    reads: list[PlateRead], others: list[bytes | None], data: st.DataObject
) -> None:
    values: list[bytes | None] = [encode(read) for read in reads]
    values += others
    values = data.draw(st.permutations(values))
    spaced = [v.replace(b",", b",\n") if v is not None and data.draw(st.booleans()) else v for v in values]
    for batch in (values, spaced):
        assert screen_plate_reads(batch) == [screen_plate_reads([value])[0] for value in batch]


def _mutations() -> st.SearchStrategy[tuple[str, int, bytes]]:
    interesting = st.sampled_from(
        [
            b"",
            b"0",
            b"1",
            b"9",
            b"-",
            b".",
            b",",
            b'"',
            b"\\",
            b"x",
            b"null",
            b"2",
            b"}",
            b"]",
            b"e",
            b"\xc3\xa9",
        ]
    )
    return st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, 10_000), interesting)


def _mutated(read: PlateRead, edits: list[tuple[str, int, bytes]]) -> bytes:
    """``read`` encoded, then edited: a byte replaced, inserted or deleted at each place (modulo length)."""
    value = bytearray(encode(read))
    for how, where, text in edits:
        at = where % (len(value) + 1)
        if how == "replace":
            value[at : at + 1] = text
        elif how == "insert":
            value[at:at] = text
        else:
            del value[at : at + len(text) + 1]
    return bytes(value)


@settings(max_examples=1000, deadline=None)
@given(read=plate_reads(text=plain), edits=st.lists(_mutations(), min_size=1, max_size=3))
@example(read=make_read(), edits=[("replace", 0, b"")]).via("a plain read")
def test_the_screen_never_accepts_what_decode_rejects(
    read: PlateRead, edits: list[tuple[str, int, bytes]]
) -> None:
    value = _mutated(read, edits)
    (screened,) = screen_plate_reads([value])
    if screened is not None:
        decoded = decode(value)  # must not raise: the screen only vouches for valid reads
        assert isinstance(decoded, PlateRead)
        assert screened == (decoded.plate, decoded.confidence)


@settings(max_examples=300, deadline=None)
@given(
    reads=st.lists(plate_reads(text=plain), max_size=4),
    mutated=st.lists(
        st.tuples(plate_reads(text=plain), st.lists(_mutations(), min_size=1, max_size=3)), max_size=3
    ),
    data=st.data(),
)
def test_a_batch_with_broken_reads_is_screened_as_its_reads_are_one_by_one(
    reads: list[PlateRead], mutated: list[tuple[PlateRead, list[tuple[str, int, bytes]]]], data: st.DataObject
) -> None:
    values: list[bytes | None] = [encode(read) for read in reads]
    values += [_mutated(read, edits) for read, edits in mutated]
    values = data.draw(st.permutations(values))
    assert screen_plate_reads(values) == [screen_plate_reads([value])[0] for value in values]


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("a lowercase plate", b'"plate":"AB12CDE"', b'"plate":"ab12cde"'),
        ("a plate with a space", b'"plate":"AB12CDE"', b'"plate":"AB12 DE"'),
        ("confidences for another length", b'"char_confidences":[0.9,', b'"char_confidences":['),
        ("a box with x2 before x1", b'"x2":220', b'"x2":10'),
        ("a box with y2 before y1", b'"y2":230', b'"y2":10'),
        ("a crop with unused bits set", b'"crop_jpeg":null', b'"crop_jpeg":"_x=="'),
    ],
)
def test_a_read_breaking_a_rule_is_not_screened_and_the_rest_of_its_batch_is(
    what: str, old: bytes, new: bytes
) -> None:
    read = make_read("AB12CDE").model_copy(
        update={"char_confidences": (0.9,) * 7, "bbox": BBox(x1=100, y1=200, x2=220, y2=230)}
    )
    good = encode(read)
    assert old in good, what
    broken = good.replace(old, new, 1)
    assert screen_plate_reads([good, broken, good]) == [
        ("AB12CDE", read.confidence),
        None,
        ("AB12CDE", read.confidence),
    ]
    if (
        "crop" not in what
    ):  # decode rejects these too (a crop's base64 is one of the screen's stricter corners)
        with pytest.raises(EventDecodeError):
            decode(broken)


def _replace(read: PlateRead, old: bytes, new: bytes) -> bytes:
    value = encode(read)
    assert old in value
    return value.replace(old, new, 1)


def test_values_only_a_decoder_can_judge_are_left_to_it() -> None:
    read = make_read("AB12CDE").model_copy(
        update={"captured_at": AT, "char_confidences": (0.9,) * 7, "crop_jpeg": b"\xff\xd8"}
    )
    valid = encode(read)
    assert screen_plate_reads([valid]) == [("AB12CDE", 0.9)]
    cases = {
        "30 February": _replace(read, b"2025-06-01T12:00:00Z", b"2025-02-30T12:00:00Z"),
        "bbox corners out of order": _replace(read, b'"x2":120', b'"x2":5'),
        "one confidence too few": _replace(read, b"[0.9,0.9,", b"[0.9,"),
        "confidence above 1": _replace(read, b'"confidence":0.9', b'"confidence":1.5'),
        "unused base64 bits set": _replace(read, b'"_9g="', b'"_9h="'),
        "unknown key": _replace(read, b'"crop_ref":null', b'"crop_ref":null,"x":1'),
        "plate in lower case": _replace(read, b'"plate":"AB12CDE"', b'"plate":"ab12cde"'),
        "other schema version": _replace(read, b'"schema_version":1', b'"schema_version":2'),
    }
    for name, value in cases.items():
        assert screen_plate_reads([value]) == [None], name
    # Valid, but not as encode() writes it: screened all the same.
    spaced = valid.replace(b'"plate":', b'"plate": ')
    assert screen_plate_reads([spaced]) == [("AB12CDE", 0.9)]
    assert isinstance(decode(spaced), PlateRead)


def test_invalid_utf8_in_a_text_field_is_left_to_decode_and_does_not_stop_the_batch() -> None:
    # msgspec raises UnicodeDecodeError (not one of its own errors) for invalid UTF-8 inside a string.
    read, other = make_read("AB12CDE"), make_read("LV70XKM")
    broken = {
        "read id": _replace(read, str(read.read_id)[:2].encode(), b"\xa9\xa9"),
        "camera id": _replace(read, b'"camera_id":"', b'"camera_id":"\xa9'),
    }
    for name, value in broken.items():
        assert screen_plate_reads([value, encode(other)]) == [None, ("LV70XKM", other.confidence)], name
        with pytest.raises(EventDecodeError):
            decode(value)


def test_read_ids_are_screened_only_as_encode_writes_them() -> None:
    read = make_read("AB12CDE")
    text = str(read.read_id)
    forms = {
        "upper case": text.upper(),
        "no hyphens": text.replace("-", ""),
        "braces": "{" + text[1:-1] + "}",
        "hyphen moved": text[:7] + "-" + text[7] + text[9:],
        "not hex": "g" + text[1:],
    }
    for name, form in forms.items():
        value = _replace(read, text.encode(), form.encode())
        assert screen_plate_reads([value, encode(read)]) == [None, ("AB12CDE", read.confidence)], name
    fields = screened_read_fields([encode(read)])
    assert fields == [_fields(read)]
    assert fields[0] is not None
    assert isinstance(fields[0].read_id, uuid.UUID)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.uuids(), max_size=5), bad=st.lists(st.text(min_size=36, max_size=36), max_size=3))
def test_the_batch_read_id_check_agrees_with_a_regular_expression(
    ids: list[uuid.UUID], bad: list[str]
) -> None:
    texts = [str(value) for value in ids] + bad
    expected = [
        re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", text) is not None for text in texts
    ]
    assert _uuid_texts(texts) == expected
    assert _uuid_texts(texts[::-1]) == expected[::-1]


def test_other_messages_are_not_screened() -> None:
    heartbeat = Heartbeat(edge_box_id="box", sent_at=AT, heartbeat_id=uuid.uuid4())
    values = [encode(heartbeat), b"", b"\x00\x01 not json", b"[]", encode(make_read())]
    assert screen_plate_reads(values)[:4] == [None, None, None, None]
    assert screen_plate_reads(values)[4] is not None


def _fields(read: PlateRead) -> ReadFields:
    return ReadFields(
        read.read_id,
        read.camera_id,
        read.captured_at,
        read.plate,
        read.confidence,
        read.char_confidences,
        read.direction,
        read.crop_jpeg,
    )


@settings(max_examples=300, deadline=None)
@given(reads=st.lists(plate_reads(), min_size=1, max_size=4))
def test_read_fields_of_encoded_reads_are_what_decode_gives(reads: list[PlateRead]) -> None:
    values = [encode(read) for read in reads]
    assert screened_read_fields(values) == [_fields(read) for read in reads]
    for value, fields in zip(values, screened_read_fields(values), strict=True):
        decoded = decode(value)
        assert isinstance(decoded, PlateRead)
        assert fields == _fields(decoded)
        assert fields is not None
        assert fields.captured_at.tzinfo is UTC


@settings(max_examples=1000, deadline=None)
@given(read=plate_reads(text=plain), edits=st.lists(_mutations(), min_size=1, max_size=3))
def test_read_fields_are_given_only_where_decode_gives_the_same(
    read: PlateRead, edits: list[tuple[str, int, bytes]]
) -> None:
    value = _mutated(read, edits)
    (fields,) = screened_read_fields([value])
    if fields is not None:
        decoded = decode(value)
        assert isinstance(decoded, PlateRead)
        assert fields == _fields(decoded)


@given(
    millis=st.integers(0, 999),
    extra=st.text(st.sampled_from("0123456789"), min_size=1, max_size=6),
    offset=st.sampled_from(["Z", "+01:00", "-05:30"]),
)
def test_read_fields_leave_times_beyond_microseconds_to_decode(millis: int, extra: str, offset: str) -> None:
    """msgspec rounds digits beyond microseconds, pydantic truncates: such times are decoded in full."""
    read = make_read("AB12CDE")
    value = encode(read)
    start = value.index(b'"captured_at":"') + len(b'"captured_at":"')
    end = value.index(b'"', start)
    cases = [(f"{millis:03d}", True), (f"{millis:03d}999", True), (f"{millis:03d}999{extra}", False)]
    for digits, screened in cases:
        text = f"2025-06-01T12:00:59.{digits}{offset}".encode()
        changed = value[:start] + text + value[end:]
        decoded = decode(changed)
        assert isinstance(decoded, PlateRead)
        assert screened_read_fields([changed]) == ([_fields(decoded)] if screened else [None])


def test_read_fields_of_messages_written_otherwise_are_left_to_decode() -> None:
    read = make_read("AB12CDE").model_copy(update={"crop_jpeg": b"\xff\xd8\xff"})
    value = encode(read)
    assert screened_read_fields([value]) == [_fields(read)]
    spaced = value.replace(b'"captured_at":', b'"captured_at": ')
    twice = value.replace(b'{"type"', b'{"captured_at":"2025-06-01T12:00:00Z","type"', 1)
    assert isinstance(decode(spaced), PlateRead)
    assert screened_read_fields([spaced, twice, b"not json"]) == [None, None, None]
