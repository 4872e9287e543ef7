"""Alert de-duplication: windows from the last sighting, deterministic ids, eviction (stream.alerts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stream.alerts
from stream.alerts import (
    ALERT_NAMESPACE,
    HIT_NAMESPACE,
    AlertDecision,
    AlertDeduper,
    alert_id_for,
    hit_id_for,
)

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def see(
    deduper: AlertDeduper, seconds: float, read: int, *, entry: str = "h:AB12CDE", plate: str = "AB12CDE"
) -> AlertDecision:
    return deduper.observe(entry_id=entry, plate=plate, read_id=rid(read), at=at(seconds))


def test_public_api_is_pinned() -> None:
    assert set(stream.alerts.__all__) == {
        "ALERT_NAMESPACE",
        "HIT_NAMESPACE",
        "AlertDecision",
        "AlertDeduper",
        "alert_id_for",
        "hit_id_for",
    }


def test_first_sighting_raises_a_deterministic_alert() -> None:
    decision = see(AlertDeduper(), 0, 1)
    assert decision == AlertDecision(uuid.uuid5(ALERT_NAMESPACE, f"h:AB12CDE/{rid(1)}"), 1, True)
    assert decision.alert_id == see(AlertDeduper(), 500, 1).alert_id  # depends on the read, not on time


def test_window_runs_from_the_last_sighting() -> None:
    deduper = AlertDeduper(window_s=300)
    first = see(deduper, 0, 1)
    assert see(deduper, 250, 2) == AlertDecision(first.alert_id, 2, False)
    assert see(deduper, 500, 3) == AlertDecision(
        first.alert_id, 3, False
    )  # 500 s after the first, 250 after the last
    assert see(deduper, 800, 4) == AlertDecision(first.alert_id, 4, False)  # a gap of exactly the window
    fresh = see(deduper, 1100.001, 5)
    assert fresh == AlertDecision(alert_id_for("h:AB12CDE", rid(5)), 1, True)
    assert see(deduper, 1200, 6) == AlertDecision(fresh.alert_id, 2, False)


def test_plate_and_entry_make_the_key() -> None:
    deduper = AlertDeduper()
    a = see(deduper, 0, 1)
    b = see(deduper, 1, 2, plate="AB12CDF")
    c = see(deduper, 2, 3, entry="other:AB12CDE")
    assert [a.is_new, b.is_new, c.is_new] == [True, True, True]
    assert len({a.alert_id, b.alert_id, c.alert_id}) == 3
    assert see(deduper, 3, 4).alert_id == a.alert_id
    assert len(deduper) == 3


def test_a_read_seen_again_gets_the_same_decision() -> None:
    deduper = AlertDeduper()
    first, second = see(deduper, 0, 1), see(deduper, 10, 2)
    assert see(deduper, 0, 1) == first
    assert see(deduper, 10, 2) == second
    assert see(deduper, 20, 3).sighting == 3


def test_out_of_order_reads() -> None:
    deduper = AlertDeduper(window_s=300)
    first = see(deduper, 1000, 1)
    # Earlier than the last sighting but within the window: the same alert; the last sighting stays at 1000.
    assert see(deduper, 800, 2) == AlertDecision(first.alert_id, 2, False)
    assert see(deduper, 1300, 3).alert_id == first.alert_id
    # A straggler from long before: an alert of its own, which does not replace the open one.
    straggler = see(deduper, 100, 4)
    assert straggler == AlertDecision(alert_id_for("h:AB12CDE", rid(4)), 1, True)
    assert see(deduper, 1400, 5) == AlertDecision(first.alert_id, 4, False)


def test_old_alerts_are_evicted_by_time() -> None:
    deduper = AlertDeduper(window_s=300, lateness_s=60)
    see(deduper, 0, 1)
    see(deduper, 300, 2, plate="XY99ZZZ")
    assert len(deduper) == 2
    see(deduper, 360, 3, plate="QQ11QQQ")  # 0 + 300 + 60 is not yet past
    assert len(deduper) == 3
    see(deduper, 361, 4, plate="QQ11QQQ")
    assert (len(deduper), deduper.evicted) == (2, 1)


def test_least_recently_sighted_alerts_are_evicted_beyond_max_keys() -> None:
    deduper = AlertDeduper(max_keys=2)
    a = see(deduper, 0, 1, plate="AAAA")
    see(deduper, 1, 2, plate="BBBB")
    see(deduper, 2, 3, plate="AAAA")  # AAAA is now the most recently sighted
    see(deduper, 3, 4, plate="CCCC")
    assert (len(deduper), deduper.evicted) == (2, 1)
    assert see(deduper, 4, 5, plate="AAAA").alert_id == a.alert_id
    assert see(deduper, 5, 6, plate="BBBB").is_new  # BBBB was dropped, so a new alert within the window


def test_hit_ids_are_deterministic_and_distinct() -> None:
    assert hit_id_for(rid(1), "h:AB12CDE") == uuid.uuid5(HIT_NAMESPACE, f"{rid(1)}/h:AB12CDE")
    assert hit_id_for(rid(1), "h:AB12CDE") == hit_id_for(rid(1), "h:AB12CDE")
    ids = {hit_id_for(rid(1), "h:AB12CDE"), hit_id_for(rid(2), "h:AB12CDE"), hit_id_for(rid(1), "g:AB12CDE")}
    assert len(ids) == 3
    assert hit_id_for(rid(1), "h:AB12CDE") != alert_id_for("h:AB12CDE", rid(1))


@given(st.uuids(), st.text(max_size=80))
def test_ids_are_the_standard_uuid5(read_id: uuid.UUID, entry_id: str) -> None:
    pairs = [
        (hit_id_for(read_id, entry_id), uuid.uuid5(HIT_NAMESPACE, f"{read_id}/{entry_id}")),
        (alert_id_for(entry_id, read_id), uuid.uuid5(ALERT_NAMESPACE, f"{entry_id}/{read_id}")),
    ]
    for made, standard in pairs:
        assert made == standard
        assert (str(made), made.version, made.variant, made.is_safe, hash(made)) == (
            str(standard),
            5,
            uuid.RFC_4122,
            standard.is_safe,
            hash(standard),
        )


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="window_s"):
        AlertDeduper(window_s=0)
    with pytest.raises(ValueError, match="max_keys"):
        AlertDeduper(max_keys=0)
    with pytest.raises(ValueError, match="lateness_s"):
        AlertDeduper(lateness_s=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        AlertDeduper().observe(entry_id="e", plate="P", read_id=rid(1), at=datetime(2025, 1, 1))


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 600),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 900)), min_size=1, max_size=60),
)
def test_alert_count_equals_gap_groups_per_key(window: int, steps: list[tuple[int, int]]) -> None:
    """Reads in capture order: a key's alerts are its runs of sightings separated by gaps > window."""
    deduper = AlertDeduper(window_s=window)
    now = 0
    times: dict[int, list[int]] = {}
    ids: dict[int, set[uuid.UUID]] = {}
    sightings: dict[int, list[int]] = {}
    for n, (key, advance) in enumerate(steps):
        now += advance
        decision = see(deduper, now, n, plate=f"PL{key}")
        times.setdefault(key, []).append(now)
        ids.setdefault(key, set()).add(decision.alert_id)
        sightings.setdefault(key, []).append(decision.sighting)
    for key, seen in times.items():
        starts = [0] + [i for i in range(1, len(seen)) if seen[i] - seen[i - 1] > window]
        assert len(ids[key]) == len(starts)
        expected: list[int] = []
        for i in range(len(seen)):
            expected.append(1 if i in starts else expected[-1] + 1)
        assert sightings[key] == expected
