"""Hotlist matching: kinds, scores, activity windows, and the index against a brute-force oracle."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

import stream.matching
from benchmarks.match_core_bench import main
from cordon.events import HotlistEntry, MatchKind
from stream.hotlist import HotlistVersion
from stream.matching import (
    CONFUSION_CLASSES,
    HotlistIndex,
    Match,
    canonical,
    confusion_score,
    edit_window,
    effective_priority,
    search_keys,
)

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)


def entry(plate: str, hotlist: str = "pnc-stolen", priority: int = 2, **fields: object) -> HotlistEntry:
    data: dict[str, object] = {
        "entry_id": f"{hotlist}:{plate}",
        "plate": plate,
        "hotlist": hotlist,
        "category": "stolen",
        "priority": priority,
        "action": "Stop",
    }
    data.update(fields)
    return HotlistEntry.model_validate(data)


def kinds(matches: list[Match]) -> dict[str, tuple[MatchKind, float, int]]:
    return {m.entry.entry_id: (m.kind, m.score, m.edits) for m in matches}


def test_public_api_is_pinned() -> None:
    assert set(stream.matching.__all__) == {
        "CONFUSION_CLASSES",
        "HotlistIndex",
        "HotlistPrefilter",
        "Match",
        "canonical",
        "confusion_score",
        "edit_window",
        "effective_priority",
        "search_keys",
    }


def test_canonical_maps_each_class_to_one_character() -> None:
    assert canonical("AB12CDE") == "A812C0E"
    assert canonical("OIBSZGDQL") == "018526001"
    for members in CONFUSION_CLASSES:
        assert len({canonical(ch) for ch in members}) == 1
    assert len({canonical(members[0]) for members in CONFUSION_CLASSES}) == len(CONFUSION_CLASSES)
    assert canonical("UVWXY") == "UVWXY"  # not confusion classes


@pytest.mark.parametrize(
    ("query", "kind", "score", "edits"),
    [
        ("AB12CDE", "exact", 1.0, 0),
        ("A812CDE", "confusion", 0.9, 0),  # B -> 8
        ("A8I2CDE", "confusion", 0.85, 0),  # B -> 8, 1 -> I
        ("A8IZC0E", "confusion", 0.75, 0),  # four confusions
        ("48IZC0E", "edit", 0.6, 1),  # A -> 4 is not a confusion: one genuine edit
        ("AB12CDF", "edit", 0.6, 1),  # substitution
        ("AB12CDEX", "edit", 0.6, 1),  # insertion
        ("AB12CD", "edit", 0.6, 1),  # deletion
        ("B12CDE", "edit", 0.6, 1),  # deletion at the start
        ("A812CD", "edit", 0.6, 1),  # a confusion plus a deletion
    ],
)
def test_match_kinds_and_scores(query: str, kind: MatchKind, score: float, edits: int) -> None:
    index = HotlistIndex.build([entry("AB12CDE")], version=1)
    (match,) = index.match(query, at=AT)
    assert (match.kind, match.score, match.edits) == (kind, score, edits)


@pytest.mark.parametrize("query", ["AB12CXY", "XB12CDF", "AB1CD", "AB12CDEXY", "ZZ99ZZZ", ""])
def test_two_or_more_edits_do_not_match(query: str) -> None:
    assert HotlistIndex.build([entry("AB12CDE")], version=1).match(query, at=AT) == []


def test_confusion_score_floor() -> None:
    assert [confusion_score(n) for n in range(1, 8)] == [0.9, 0.85, 0.8, 0.75, 0.7, 0.7, 0.7]
    index = HotlistIndex.build([entry("OOOOOOO")], version=1)
    assert kinds(index.match("0DQ0DQ0", at=AT)) == {"pnc-stolen:OOOOOOO": ("confusion", 0.7, 0)}


def test_max_edits_zero_keeps_exact_and_confusion_only() -> None:
    index = HotlistIndex.build([entry("AB12CDE"), entry("AB12CDF")], version=1)
    assert kinds(index.match("A812CDE", at=AT, max_edits=0)) == {"pnc-stolen:AB12CDE": ("confusion", 0.9, 0)}
    assert len(index.match("A812CDE", at=AT, max_edits=1)) == 2
    with pytest.raises(ValueError, match="max_edits"):
        index.match("AB12CDE", at=AT, max_edits=2)
    with pytest.raises(ValueError, match="timezone-aware"):
        index.match("AB12CDE", at=datetime(2025, 1, 1))


def test_results_are_ordered_and_one_per_entry() -> None:
    entries = [
        entry("AB12CDE", "zeta", priority=3),
        entry("AB12CDE", "alpha", priority=3),
        entry("AB12CDE", "beta", priority=1),
        entry("A812CDE", "gamma", priority=1),
        entry("AB12CDF", "delta", priority=1),
    ]
    index = HotlistIndex.build(entries, version=1)
    matches = index.match("AB12CDE", at=AT)
    assert [(m.entry.entry_id, m.kind) for m in matches] == [
        ("beta:AB12CDE", "exact"),
        ("alpha:AB12CDE", "exact"),
        ("zeta:AB12CDE", "exact"),
        ("gamma:A812CDE", "confusion"),
        ("delta:AB12CDF", "edit"),
    ]


def test_entry_stops_matching_exactly_at_expiry_and_starts_at_valid_from() -> None:
    start, end = AT, AT + timedelta(hours=1)
    index = HotlistIndex.build([entry("AB12CDE", valid_from=start, expires_at=end)], version=1)
    ms = timedelta(milliseconds=1)
    assert index.match("AB12CDE", at=start - ms) == []
    assert len(index.match("AB12CDE", at=start)) == 1
    assert len(index.match("A812CDF", at=end - ms)) == 1
    assert index.match("AB12CDE", at=end) == []
    assert index.match("A812CDE", at=end) == []


def test_index_properties_and_immutability() -> None:
    entries = [entry("AB12CDE"), entry("XY99ZZZ")]
    index = HotlistIndex.build(entries, version=7)
    assert (index.version, len(index), index.size, index.entries) == (7, 2, 2, tuple(entries))
    # AB12CDE: itself and 7 deletions; XY99ZZZ (canonical XY99222): itself and one deletion per run of 4.
    assert index.neighbourhood_size == 8 + 5
    assert index.nbytes > 0
    with pytest.raises(AttributeError, match="immutable"):
        index.version = 8  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        index._entries = ()  # type: ignore[assignment]
    with pytest.raises(TypeError, match="build"):
        HotlistIndex()
    with pytest.raises(ValueError, match="unique"):
        HotlistIndex.build([entry("AB12CDE"), entry("AB12CDE")], version=1)
    with pytest.raises(ValueError, match="version"):
        HotlistIndex.build([], version=-1)
    empty = HotlistIndex.build((), version=0)
    assert (len(empty), empty.version, empty.match("AB12CDE", at=AT)) == (0, 0, [])


def test_from_version() -> None:
    version = HotlistVersion.of([entry("AB12CDE")], version=3, created_at=AT)
    index = HotlistIndex.from_version(version)
    assert (index.version, [m.kind for m in index.match("AB12CDE", at=AT)]) == (3, ["exact"])


# --- the index against a brute-force oracle ---------------------------------------------------------------

# Rich in confusable characters, so that random plates often collide after canonicalisation.
ALPHABET = "O0DQI1LB8S5Z2G6AXK"
plates = st.text(ALPHABET, min_size=2, max_size=8)
SWAPS = {ch: [o for o in members if o != ch] for members in CONFUSION_CLASSES for ch in members}


def oracle(entries: list[HotlistEntry], query: str, at: datetime, max_edits: int) -> dict[str, MatchKind]:
    found: dict[str, MatchKind] = {}
    for item in entries:
        if not item.active_at(at):
            continue
        distance = Levenshtein.distance(canonical(query), canonical(item.plate))
        if distance <= max_edits:
            kind: MatchKind = "exact" if query == item.plate else "confusion" if distance == 0 else "edit"
            found[item.entry_id] = kind
    return found


@st.composite
def query_for(draw: st.DrawFn, hotlist: list[str]) -> str:
    how = draw(st.sampled_from(["same", "confuse", "edit", "confuse+edit", "random"]))
    if how == "random" or not hotlist:
        return draw(st.text(ALPHABET, min_size=0, max_size=9))
    plate = list(draw(st.sampled_from(hotlist)))
    if "confuse" in how:
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(plate) - 1))
            if SWAPS.get(plate[i]):
                plate[i] = draw(st.sampled_from(SWAPS[plate[i]]))
    if "edit" in how:
        op = draw(st.sampled_from(["sub", "ins", "del"]))
        i = draw(st.integers(0, len(plate) - 1))
        ch = draw(st.sampled_from(ALPHABET))
        if op == "sub":
            plate[i] = ch
        elif op == "ins":
            plate.insert(i, ch)
        else:
            del plate[i]
    return "".join(plate)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_index_agrees_with_brute_force_oracle(data: st.DataObject) -> None:
    hotlist_plates = data.draw(st.lists(plates, min_size=0, max_size=40, unique=True), label="hotlist")
    entries = []
    for number, plate in enumerate(hotlist_plates):
        # Some plates on two lists, some entries not active at AT.
        entries.append(entry(plate, "a", priority=1 + number % 4))
        if number % 5 == 0:
            entries.append(entry(plate, "b", expires_at=AT if number % 10 == 0 else None))
    index = HotlistIndex.build(entries, version=1)
    for _ in range(5):
        query = data.draw(query_for(hotlist_plates), label="query")
        for max_edits in (0, 1):
            matches = index.match(query, at=AT, max_edits=max_edits)
            assert {m.entry.entry_id: m.kind for m in matches} == oracle(entries, query, AT, max_edits)
            assert len(matches) == len({m.entry.entry_id for m in matches})
            assert matches == sorted(matches, key=lambda m: (-m.score, m.entry.priority, m.entry.entry_id))
            for m in matches:
                expected_score = {"exact": 1.0, "edit": 0.6}.get(m.kind) or confusion_score(
                    sum(a != b for a, b in zip(query, m.entry.plate, strict=True))
                )
                assert m.score == expected_score
                assert m.edits == (1 if m.kind == "edit" else 0)


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_plates_one_edit_apart_share_a_search_key(data: st.DataObject) -> None:
    """The API's fuzzy read search finds a read by its keys: plates a fuzzy match apart must share one."""
    plate = data.draw(plates, label="plate")
    other = data.draw(st.one_of(plates, query_for([plate])), label="other")
    distance = Levenshtein.distance(canonical(plate), canonical(other))
    shared = search_keys(plate) & search_keys(other)
    if distance <= 1:
        assert shared
    if shared:
        assert distance <= 2
    assert canonical(plate) in search_keys(plate)
    assert all(len(key) >= len(plate) - 1 for key in search_keys(plate))


# --- the batch path against the one-plate path and the oracle -----------------------------------------------

# Queries the batch path must hand to the one-plate path: lower case, symbols, too long, empty.
odd_plates = st.sampled_from(
    ["", "ab12cde", "AB12CD!", "AB-12CDE", "AB12CDEFGHJ", "ÄB12CDE", "A B", "\x00AB"]
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_match_batch_is_match_per_plate_and_agrees_with_oracle(data: st.DataObject) -> None:
    hotlist_plates = data.draw(st.lists(plates, min_size=0, max_size=30, unique=True), label="hotlist")
    windows = [(None, None), (AT - timedelta(hours=1), AT), (AT, None), (None, AT + timedelta(seconds=1))]
    entries = []
    for number, plate in enumerate(hotlist_plates):
        valid_from, expires_at = windows[number % len(windows)]
        entries.append(
            entry(plate, "a", priority=1 + number % 4, valid_from=valid_from, expires_at=expires_at)
        )
        if number % 3 == 0:
            entries.append(entry(plate, "b", entry_id=f"b-{number}", information="Zoë"))
    index = HotlistIndex.build(entries, version=1)
    queries = data.draw(
        st.lists(st.one_of(query_for(hotlist_plates), odd_plates), min_size=0, max_size=12), label="queries"
    )
    times = [AT + timedelta(milliseconds=data.draw(st.integers(-2, 2)) * 1800_000) for _ in queries]
    edits = data.draw(
        st.lists(st.integers(0, 1), min_size=len(queries), max_size=len(queries)), label="edits"
    )

    batch = index.match_batch(queries, at=times, max_edits=edits)

    assert batch == [
        index.match(query, at=when, max_edits=e) for query, when, e in zip(queries, times, edits, strict=True)
    ]
    for query, when, e, matches in zip(queries, times, edits, batch, strict=True):
        assert {m.entry.entry_id: m.kind for m in matches} == oracle(entries, query, when, e)
    possible = index.could_match(queries, max_edits=edits)
    assert all(maybe for maybe, matches in zip(possible, batch, strict=True) if matches)
    # The prefilter the fetcher process gets (pickled, as it travels) answers as the index does.
    prefilter = pickle.loads(pickle.dumps(index.prefilter(), protocol=pickle.HIGHEST_PROTOCOL))
    assert prefilter.version == 1
    assert prefilter.could_match(queries, max_edits=edits) == possible


def test_match_batch_with_one_time_and_edit_setting_and_its_argument_checks() -> None:
    index = HotlistIndex.build([entry("AB12CDE"), entry("XY99ZZZ")], version=1)
    queries = ["AB12CDE", "A812CDE", "AB12CDF", "QQ11QQQ"]
    assert index.match_batch(queries, at=AT) == [index.match(q, at=AT) for q in queries]
    assert index.match_batch(queries, at=AT, max_edits=0) == [
        index.match(q, at=AT, max_edits=0) for q in queries
    ]
    assert index.match_batch([], at=AT) == []
    assert index.could_match(queries) == [True, True, True, False]
    assert HotlistIndex.build([], version=0).match_batch(queries, at=AT) == [[], [], [], []]
    assert HotlistIndex.build([], version=0).prefilter().could_match([*queries, "a-b"]) == [False] * 5
    with pytest.raises(ValueError, match="one at and one max_edits per plate"):
        index.match_batch(queries, at=[AT])
    with pytest.raises(ValueError, match="max_edits must be 0 or 1"):
        index.match_batch(queries, at=AT, max_edits=[0, 1, 2, 1])
    with pytest.raises(ValueError, match="timezone-aware"):
        index.match_batch(queries, at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="one max_edits per plate"):
        index.could_match(queries, max_edits=[1])


def test_entries_are_kept_as_columns_and_rebuilt_equal() -> None:
    entries = [
        entry("AB12CDE", valid_from=AT, expires_at=AT + timedelta(days=1), information="blue Focus, Zoë"),
        entry("AB12CDE", "local-intel", priority=4, entry_id="intel-7", source="CSP", added_by="j.smith"),
        entry("X1", "local-intel", expires_at=AT + timedelta(milliseconds=1)),
    ]
    index = HotlistIndex.build(entries, version=2)
    assert index.entries == tuple(entries)
    assert [e.model_dump_json() for e in index.entries] == [e.model_dump_json() for e in entries]
    assert index.entries_nbytes == 3 * (10 + 1 + 8 + 8 + 6 * 4)
    with pytest.raises(ValueError, match="1 to 10 characters"):
        HotlistIndex.build(
            [HotlistEntry.model_construct(**{**entries[0].model_dump(), "plate": "ab"})], version=1
        )


@st.composite
def hotlist_entries(draw: st.DrawFn) -> HotlistEntry:
    """Valid entries of any shape: optional window (any UTC offset given), any text in the free fields."""
    plate = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=10))
    hotlist = draw(st.sampled_from(["pnc-stolen", "local-intel", "no.insurance_2"]))
    zone = timezone(timedelta(minutes=draw(st.integers(-720, 720))))
    start = draw(st.none() | st.integers(0, 10**12).map(lambda ms: AT + timedelta(milliseconds=ms)))
    length = draw(st.integers(1, 10**11).map(lambda ms: timedelta(milliseconds=ms)))
    end = draw(st.none() | st.just((start or AT) + length))
    return entry(
        plate,
        hotlist,
        priority=draw(st.integers(1, 4)),
        entry_id=draw(st.none() | st.text(min_size=1, max_size=20)) or f"{hotlist}:{plate}",
        source=draw(st.text(max_size=8)),
        category=draw(st.text(min_size=1, max_size=8)),
        action=draw(st.text(min_size=1, max_size=8)),
        information=draw(st.text(max_size=12)),
        added_by=draw(st.text(max_size=8)),
        valid_from=None if start is None else start.astimezone(zone),
        expires_at=None if end is None else end.astimezone(zone),
    )


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(hotlist_entries(), max_size=6, unique_by=lambda e: e.entry_id))
def test_entries_rebuilt_without_validation_equal_the_validated_ones(entries: list[HotlistEntry]) -> None:
    rebuilt = HotlistIndex.build(entries, version=1).entries
    assert rebuilt == tuple(entries)
    assert [e.model_dump_json() for e in rebuilt] == [e.model_dump_json() for e in entries]
    # Each is what validating it again gives: nothing of it is outside the schema.
    assert [HotlistEntry.model_validate(e.model_dump()) for e in rebuilt] == entries


# --- effective priority -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "kind", "score", "confidence", "expected"),
    [
        (1, "exact", 1.0, 0.1, 1),  # an exact plate is never downgraded
        (1, "confusion", 0.9, 0.9, 1),  # 0.81 >= 0.6
        (1, "confusion", 0.9, 0.6, 2),  # 0.54 < 0.6
        (2, "edit", 0.6, 1.0, 2),  # 0.6 is not below 0.6
        (2, "edit", 0.6, 0.99, 3),
        (4, "edit", 0.6, 0.1, 4),  # already the lowest
    ],
)
def test_effective_priority(
    priority: int, kind: MatchKind, score: float, confidence: float, expected: int
) -> None:
    assert effective_priority(priority, kind, score, confidence) == expected


def test_effective_priority_threshold_and_ranges() -> None:
    assert effective_priority(1, "edit", 0.6, 0.9, low_confidence_threshold=0.5) == 1
    assert effective_priority(1, "edit", 0.6, 0.9, low_confidence_threshold=0.55) == 2
    for args in [
        (0, "exact", 1.0, 1.0),
        (5, "exact", 1.0, 1.0),
        (1, "edit", 1.1, 1.0),
        (1, "edit", 0.5, -0.1),
    ]:
        with pytest.raises(ValueError, match="must be"):
            effective_priority(*args)  # type: ignore[arg-type]


def test_benchmark_script_runs_and_finds_every_planted_read(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = main(["--entries", "3000", "--reads", "3000", "--hit-rate", "0.2", "--json", str(out)])
    assert result["entries"] == 3000
    assert result["planted_hotlist_reads"] > 400
    assert result["planted_missed"] == 0
    assert result["batch_agrees"] is True
    assert result["exact_matched_reads"]["any"] >= result["planted_hotlist_reads"] * 0.85
    for key in (
        "fuzzy_rate",
        "exact_rate",
        "fuzzy_batch_rate",
        "exact_batch_rate",
        "baseline_dict_rate",
        "index_array_mb",
        "build_s",
    ):
        assert result[key] > 0
    assert json.loads(out.read_text(encoding="utf-8")) == result


def _places(read: str, listed: str) -> set[int]:
    """Brute force: every read character some single edit turning ``read`` into ``listed`` touches."""
    touched: set[int] = set()
    for i in range(len(read) + 1):
        if len(read) == len(listed) and i < len(read) and read[:i] + listed[i] + read[i + 1 :] == listed:
            touched.add(i)  # substitution
        if len(read) == len(listed) + 1 and i < len(read) and read[:i] + read[i + 1 :] == listed:
            touched.add(i)  # an extra character in the read
        if len(read) + 1 == len(listed) and read[:i] + listed[i] + read[i:] == listed:
            touched.update(j for j in (i - 1, i) if 0 <= j < len(read))  # a character missing at i
    return touched


@settings(max_examples=500, deadline=None)
@given(
    plate=st.text("AB1", min_size=1, max_size=7),
    op=st.sampled_from(["sub", "ins", "del"]),
    where=st.integers(0, 7),
    char=st.sampled_from("AB1"),
)
def test_edit_window_spans_every_place_the_edit_can_be(plate: str, op: str, where: int, char: str) -> None:
    i = where % len(plate)
    listed = {"sub": plate[:i] + char + plate[i + 1 :], "ins": plate[:i] + char + plate[i:]}.get(
        op, plate[:i] + plate[i + 1 :]
    )
    if listed == plate:
        with pytest.raises(ValueError, match="one edit"):
            edit_window(plate, listed)
        return
    assume(listed)  # listed plates have a character at least
    start, stop = edit_window(plate, listed)
    places = _places(plate, listed)
    assert (start, stop) == (min(places), max(places) + 1)


def test_edit_window_of_each_kind_of_edit() -> None:
    assert edit_window("AB12CDF", "AB12CDE") == (6, 7)  # the last character read wrongly
    assert edit_window("AB12XCDE", "AB12CDE") == (4, 5)  # an extra character read
    assert edit_window("AB2CDE", "AB12CDE") == (1, 3)  # "1" missed between B and 2
    assert edit_window("AAB", "AB") == (0, 2)  # either A is the extra one
    with pytest.raises(ValueError, match="one edit"):
        edit_window("AB12CDE", "XY12CDE")
