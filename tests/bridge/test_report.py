"""The supervisor's report on a hand-built set of cases and an injected clock, on SQLite and PostgreSQL:
counts, percentiles, shares within each limit, overdue now, the valid-case rate per category and camera;
and the two databases giving the same report of the same random cases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_cases import build_site, random_site
from support import create_database

from bridge.report import BY, CaseReport, Group, as_json, percentile, window_start
from bridge.store import Store

NOW = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)
WEEK = NOW - timedelta(days=7)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, clock=lambda: NOW)
    yield s
    s.close()


@pytest.fixture
def site(store: Store) -> Store:
    build_site(store, NOW)
    return store


def by_key(r: CaseReport) -> dict[str, Group]:
    return {g.key: g for g in r.groups}


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([60, 100, 180], 0.5) == 100
    assert percentile([60, 100, 180], 0.9) == pytest.approx(164)
    assert percentile([300, 500], 0.5) == 400
    assert percentile([7], 0.9) == 7
    assert percentile([], 0.5) is None


def test_figures_by_kind(site: Store) -> None:
    r = site.case_report(WEEK, "kind")
    noise, stall = by_key(r)["noise"], by_key(r)["street_stall"]
    assert [g.key for g in r.groups] == ["street_stall", "noise"]  # the most parts first
    assert (noise.opened, noise.accepted, noise.arrived, noise.handled, noise.overdue) == (4, 3, 2, 2, 2)
    assert noise.accept.median_s == 100
    assert noise.accept.p90_s == pytest.approx(164)
    assert (noise.accept.within, noise.accept.judged) == (2, 3)  # the 180 s one was late; the newest not judged
    assert (noise.arrive.median_s, noise.arrive.p90_s) == (400, 480)
    assert (noise.arrive.within, noise.arrive.judged) == (2, 3)  # one accepted but not there after 10 min
    assert (noise.handle.median_s, noise.handle.p90_s, noise.handle.judged) == (950, 990, 0)  # no resolve limit
    assert noise.handle.share is None

    assert (stall.opened, stall.accepted, stall.arrived, stall.handled, stall.overdue) == (5, 3, 2, 2, 1)
    assert (stall.accept.median_s, stall.accept.p90_s) == (200, 360)
    assert (stall.accept.within, stall.accept.judged) == (2, 5)  # late, closed unaccepted after, running past
    assert (stall.arrive.within, stall.arrive.judged) == (1, 2)  # closed before the limit: not judged
    assert (stall.handle.median_s, stall.handle.p90_s, stall.handle.share) == (2500, 2900, 1.0)

    assert (r.total.opened, r.total.overdue) == (9, 3)
    assert (r.total.accept.within, r.total.accept.judged) == (4, 8)
    assert r.total.accept.median_s == 140  # 60 100 100 180 200 400
    assert r.untimed == {"alert": 2}
    assert r.untimed_note() == ("not timed: 2 incidents of a kind with no [case_kinds] entry (alert 2): no department "
                                "parts, so no clocks to report; configure the kind to time its cases")


def test_valid_case_rate_per_category_and_camera(site: Store) -> None:
    r = site.case_report(WEEK, "camera")
    assert [(v.key, v.valid, v.false_detection, v.unverified) for v in r.categories] == [("street_stall", 2, 1, 1)]
    assert r.categories[0].rate == pytest.approx(2 / 3)
    assert {v.key: (v.valid, v.false_detection, v.rate) for v in r.cameras} == {
        "dome-3": (1, 1, 0.5), "cam-9": (1, 0, 1.0)}
    assert r.group_verified["dome-3"].rate == 0.5
    groups = by_key(r)
    assert (groups["dome-3"].opened, groups["cam-9"].opened, groups[""].opened) == (3, 2, 4)
    assert (groups["cam-9"].overdue, groups[""].overdue) == (1, 2)


def test_by_department_unit_and_day(site: Store) -> None:
    dept = by_key(site.case_report(WEEK, "department"))
    assert (dept["police"].opened, dept["police"].overdue) == (5, 2)
    assert (dept["urban-management"].opened, dept["urban-management"].overdue) == (4, 1)
    units = by_key(site.case_report(WEEK, "unit"))
    assert (units["mdc:200"].opened, units["mdc:200"].overdue) == (2, 1)  # its old case is overdue too
    assert units["fleetsync:100-1001"].accept.median_s == 150
    assert (units[""].opened, units[""].overdue) == (2, 1)  # parts no unit was sent to
    day = site.case_report(WEEK, "day")
    assert [g.key for g in day.groups][:2] == ["2026-11-21", "2026-11-24"]  # an old day with an overdue part
    assert [g.key for g in day.groups][-1] == "2026-12-01"
    assert len(day.groups) == 1 + 8  # every day of the window, those with nothing too
    assert [(g.opened, g.overdue) for g in day.groups if g.opened or g.overdue] == [(0, 1), (9, 2)]
    counts = site.case_report(WEEK, "day", percentiles=False)  # what the console's sparklines read
    assert [(g.key, g.opened, g.accept.within, g.accept.judged) for g in counts.groups] == [
        (g.key, g.opened, g.accept.within, g.accept.judged) for g in day.groups]
    assert counts.total.accept.median_s is None and day.total.accept.median_s == 140


def test_a_narrow_window_and_bad_arguments(site: Store) -> None:
    r = site.case_report(NOW - timedelta(minutes=20), "kind")
    assert {g.key: g.opened for g in r.groups} == {"noise": 1, "street_stall": 1}
    assert (r.verified.unverified, r.verified.valid) == (1, 0)
    with pytest.raises(ValueError, match="by: expected one of kind, department, unit, camera, day, got 'shift'"):
        site.case_report(WEEK, "shift")
    with pytest.raises(ValueError, match=r"since: .* is after now"):
        site.case_report(NOW + timedelta(days=1))


@given(st.text(max_size=40))
def test_any_since_is_a_time_or_a_clear_error(text: str) -> None:
    try:
        since = window_start(text, NOW)
    except ValueError as exc:
        assert repr(text) in str(exc) or "expected" in str(exc)
    else:
        assert since.tzinfo is not None and since <= NOW


def test_since_far_back_or_ahead() -> None:
    assert window_start("7d", NOW) == WEEK
    assert window_start("2026-11-30T08:00", NOW) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="'99999999999999d' is further back than the calendar goes"):
        window_start("99999999999999d", NOW)
    with pytest.raises(ValueError, match=r"'2027-01-01' is in the future \(2027-01-01 00:00 UTC\)"):
        window_start("2027-01-01", NOW)


def test_a_long_window_by_day_starts_at_its_first_case(site: Store) -> None:
    r = site.case_report(datetime(2001, 1, 1, tzinfo=UTC), "day")
    assert r.groups[0].key == "2026-11-21" and len(r.groups) == 11  # from the old case's day on


def test_an_empty_database_reports_zeros(store: Store) -> None:
    for by in BY:
        r = store.case_report(WEEK, by)
        assert (r.total.opened, r.total.overdue, r.total.accept.median_s, r.verified.rate) == (0, 0, None, None)
        assert r.groups == () or by == "day"


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_sqlite_and_postgresql_report_the_same(tmp_path: Path, postgres_admin_url: str, seed: int) -> None:
    answers = []
    for url in (f"sqlite:///{tmp_path / 'a.sqlite'}", create_database(postgres_admin_url, f"report_same_{seed}")):
        store = Store.open(url, clock=lambda: NOW)
        try:
            random_site(store, NOW, seed=seed)
            answers.append({by: as_json(store.case_report(WEEK, by)) for by in BY})
        finally:
            store.close()
    assert answers[0]["kind"]["total"]["opened"] > 100
    assert answers[0] == answers[1]
