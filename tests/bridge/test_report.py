"""The supervisor's report on a hand-built set of cases and an injected clock, on SQLite and PostgreSQL:
counts, percentiles, shares within each limit, overdue now, the valid-case rate per category and camera;
and the two databases giving the same report of the same random cases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from bridge.models import CasePartRow, IncidentRow
from bridge.report import BY, CaseReport, Group, as_json, percentile
from bridge.store import Store

NOW = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
WEEK = NOW - timedelta(days=7)
LIMITS = {"noise": (120, 600, None), "street_stall": (300, 900, 3600)}


class Cases:
    """Cases written as rows, each part with its times in seconds from its opening."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.next_id = 1

    def case(self, kind: str, opened: datetime, *, camera: str | None = None, verdict: str | None = None,
             resolved: bool = False) -> int:
        case_id, self.next_id = self.next_id, self.next_id + 1
        with self.store.engine.begin() as c:
            c.execute(insert(IncidentRow), [{
                "id": case_id, "unit": None, "gateway": "camera" if camera else "dispatcher",
                "channel": camera or "map", "state": "resolved" if resolved else "acknowledged", "opened_at": opened,
                "first_event_id": f"e{case_id}", "last_event_id": f"e{case_id}", "last_alert_at": opened,
                "alert_count": 1, "updated_at": opened, "category": kind,
                "source": "camera" if camera else "dispatcher", "flow": "lead", "camera": camera, "verdict": verdict}])
        return case_id

    def part(self, case_id: int, kind: str, department: str, opened: datetime, state: str, *,
             unit: str | None = None, accept: float | None = None, arrive: float | None = None,
             handle: float | None = None, closed: float | None = None) -> None:
        accept_s, arrive_s, resolve_s = LIMITS[kind]

        def at(s: float | None) -> datetime | None:
            return None if s is None else opened + timedelta(seconds=s)

        with self.store.engine.begin() as c:
            c.execute(insert(CasePartRow), [{
                "case_id": case_id, "kind": kind, "department": department, "role": "lead", "state": state,
                "unit": unit, "opened_at": opened, "accepted_at": at(accept), "arrived_at": at(arrive),
                "handled_at": at(handle), "accept_due": at(accept_s), "arrive_due": at(arrive_s),
                "resolve_due": at(resolve_s), "updated_at": at(closed) or opened}])


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, clock=lambda: NOW)
    yield s
    s.close()


@pytest.fixture
def site(store: Store) -> Store:
    """Police noise cases (accept 2 min, arrive 10 min) and camera-found street stalls that urban
    management leads (accept 5 min, arrive 15 min, handled within 1 h)."""
    w = Cases(store)
    h = timedelta(hours=1)
    for i, (accept, arrive, handle, state) in enumerate([(60, 300, 900, "handled"), (180, 500, 1000, "handled"),
                                                          (100, None, None, "accepted")]):
        w.part(w.case("noise", T0 + i * h), "noise", "police", T0 + i * h, state, unit=f"mdc:20{i}",
               accept=accept, arrive=arrive, handle=handle)
    w.part(w.case("noise", NOW - timedelta(seconds=30)), "noise", "police", NOW - timedelta(seconds=30),
           "dispatched", unit="mdc:209")  # its limits still ahead: not judged, not overdue
    old = NOW - timedelta(days=10)  # before the window, still running past its limits: overdue now only
    w.part(w.case("noise", old), "noise", "police", old, "dispatched", unit="mdc:200")
    w.case("street_stall", old, camera="dome-3", verdict="false_detection", resolved=True)  # not in the window

    c5 = w.case("street_stall", T0 + 3 * h, camera="dome-3", verdict="valid", resolved=True)
    w.part(c5, "street_stall", "urban-management", T0 + 3 * h, "handled", unit="fleetsync:100-1001",
           accept=200, arrive=800, handle=3000)
    w.part(c5, "street_stall", "police", T0 + 3 * h, "handled", unit="mdc:200", accept=400, arrive=1000, handle=2000)
    c6 = w.case("street_stall", T0 + 4 * h, camera="dome-3", verdict="false_detection", resolved=True)
    w.part(c6, "street_stall", "urban-management", T0 + 4 * h, "closed", unit="fleetsync:100-1001", accept=100,
           closed=200)  # closed before its arrive limit: judged on accepting only
    c7 = w.case("street_stall", T0 + 5 * h, camera="cam-9", verdict="valid", resolved=True)
    w.part(c7, "street_stall", "urban-management", T0 + 5 * h, "closed", closed=400)  # closed after accept_due
    c8 = w.case("street_stall", NOW - timedelta(minutes=10), camera="cam-9")
    w.part(c8, "street_stall", "urban-management", NOW - timedelta(minutes=10), "new")  # not accepted in 5 min
    return store


def by_key(r: CaseReport) -> dict[str, Group]:
    return {g.key: g for g in r.groups}


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([60, 100, 180], (1, 2)) == 100
    assert percentile([60, 100, 180], (9, 10)) == pytest.approx(164)
    assert percentile([300, 500], (1, 2)) == 400
    assert percentile([7], (9, 10)) == 7
    assert percentile([], (1, 2)) is None


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


def test_a_narrow_window_and_bad_arguments(site: Store) -> None:
    r = site.case_report(NOW - timedelta(minutes=20), "kind")
    assert {g.key: g.opened for g in r.groups} == {"noise": 1, "street_stall": 1}
    assert (r.verified.unverified, r.verified.valid) == (1, 0)
    with pytest.raises(ValueError, match="by: expected one of kind, department, unit, camera, day, got 'shift'"):
        site.case_report(WEEK, "shift")
    with pytest.raises(ValueError, match=r"since: .* is after now"):
        site.case_report(NOW + timedelta(days=1))


def test_an_empty_database_reports_zeros(store: Store) -> None:
    for by in BY:
        r = store.case_report(WEEK, by)
        assert (r.total.opened, r.total.overdue, r.total.accept.median_s, r.verified.rate) == (0, 0, None, None)
        assert r.groups == () or by == "day"


def random_site(store: Store, seed: int, n: int = 400) -> None:
    rng = random.Random(seed)
    w = Cases(store)
    for _ in range(n):
        kind = rng.choice(list(LIMITS))
        opened = NOW - timedelta(seconds=rng.randrange(0, 9 * 86400))
        camera = rng.choice(["dome-3", "cam-9", None])
        verdict = rng.choice(["valid", "false_detection", None]) if camera else None
        case_id = w.case(kind, opened, camera=camera, verdict=verdict, resolved=verdict is not None)
        for department in rng.sample(["police", "urban-management", "sanitation"], rng.randint(1, 2)):
            steps = sorted(rng.uniform(1, 4000) for _ in range(3))
            reached = rng.randint(0, 3)
            times: list[Any] = [round(t, 3) if i < reached else None for i, t in enumerate(steps)]
            state = rng.choice(["closed", "new", "dispatched"]) if reached == 0 else \
                ["accepted", "arrived", "handled"][reached - 1]
            w.part(case_id, kind, department, opened, state, unit=rng.choice([None, "mdc:201", "aprs:BG5ABC-9"]),
                   accept=times[0], arrive=times[1], handle=times[2],
                   closed=rng.uniform(1, 5000) if state == "closed" else None)


def test_sqlite_and_postgresql_report_the_same(tmp_path: Path, postgres_admin_url: str) -> None:
    from tests.support import create_database

    answers = []
    for url in (f"sqlite:///{tmp_path / 'a.sqlite'}", create_database(postgres_admin_url, "report_same")):
        store = Store.open(url, clock=lambda: NOW)
        try:
            random_site(store, seed=7)
            answers.append({by: as_json(store.case_report(WEEK, by)) for by in BY})
        finally:
            store.close()
    assert answers[0]["kind"]["total"]["opened"] > 100
    assert answers[0] == answers[1]
