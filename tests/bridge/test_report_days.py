"""The report's day summaries (report_days) against the live queries, on SQLite and PostgreSQL: random
sites on an injected clock, every grouping and several windows, the summarised report equal to the live
one; then each kind of change to a summarised day (a part reopened, a late accept, a verdict changed, a
camera changed, a part added, a case deleted, a part handled a month later) forgets that day and the next
report is still the live one; and a later "now" summarises the days that settle, not before their last
limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from report_cases import Cases, random_site
from sqlalchemy import delete, func, insert, select, update
from support import Mosquitto, wait_until

from bridge.models import CasePartRow, IncidentRow, ReportDayRow
from bridge.report import BY, as_json
from bridge.service import Bridge
from bridge.store import Store
from config.schema import parse_config

NOW = datetime(2026, 12, 1, 16, 0, 0, tzinfo=UTC)
#: Windows: a week, the whole site and more, from an odd minute, one day and a bit, an hour.
SINCE = (timedelta(days=7), timedelta(days=12), timedelta(days=4, hours=5, minutes=17), timedelta(hours=30),
         timedelta(hours=1))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, clock=lambda: NOW)
    yield s
    s.close()


def same_as_live(store: Store, now: datetime) -> None:
    """Every grouping over every window: the summarised report equals the live one, to the millisecond."""
    for back in SINCE:
        for by in BY:
            since = now - back
            summarised = as_json(store.case_report(since, by, now))
            assert summarised == as_json(store.case_report(since, by, now, live=True)), (back, by)
    counts = store.case_report(now - SINCE[0], "day", now, percentiles=False)
    assert as_json(counts) == as_json(store.case_report(now - SINCE[0], "day", now, percentiles=False, live=True))


def summarised_days(store: Store) -> dict[str, datetime]:
    with store.engine.connect() as c:
        return {day: built for day, built in c.execute(select(ReportDayRow.day, ReportDayRow.built_at))}


def change(store: Store, statement: Any) -> None:
    with store.engine.begin() as c:
        c.execute(statement)


def a_part(store: Store, *where: Any) -> Any:
    with store.engine.connect() as c:
        return c.execute(select(CasePartRow.__table__).where(*where).order_by(CasePartRow.id).limit(1)).one()


def day_of(t: datetime) -> str:
    return t.astimezone(UTC).date().isoformat()


@pytest.mark.parametrize("seed", [3, 5])
def test_summarised_reports_equal_the_live_ones(store: Store, seed: int) -> None:
    random_site(store, NOW, seed=seed)
    cases = Cases(store)
    cases.next_id = 10_000
    opened = NOW - timedelta(hours=1)
    change(store, insert(CasePartRow).values(  # running, its accept limit a day and a half ahead
        case_id=cases.case("noise", opened, camera="cam-9"), kind="noise", department="police", role="lead",
        state="new", opened_at=opened, accept_due=NOW + timedelta(hours=36), updated_at=opened))
    same_as_live(store, NOW)
    # The site's 9 days: the whole days before today are summarised; today, not over, is not.
    assert sorted(summarised_days(store)) == [day_of(NOW - timedelta(days=d)) for d in range(9, 0, -1)]

    tomorrow = NOW + timedelta(hours=9)  # today is over, but a limit of it has not passed: read live
    same_as_live(store, tomorrow)
    assert day_of(NOW) not in summarised_days(store)
    same_as_live(store, NOW + timedelta(days=2))  # every limit past: summarised
    assert day_of(NOW) in summarised_days(store)
    same_as_live(store, tomorrow)  # an earlier "now" again: the summary waits for its limit, read live


def test_a_changed_day_is_read_again(store: Store) -> None:
    random_site(store, NOW, seed=13)
    same_as_live(store, NOW)
    old = NOW - timedelta(days=5)
    lo, hi = old.replace(hour=0, minute=0, second=0), old.replace(hour=23, minute=59, second=59)
    in_day = (CasePartRow.opened_at >= lo, CasePartRow.opened_at <= hi)

    def changed(statement: Any, *days: str) -> None:
        before = summarised_days(store)
        assert all(d in before for d in days)
        change(store, statement)
        after = summarised_days(store)
        assert [d for d in days if d in after] == []  # forgotten by the database itself
        assert after.keys() == before.keys() - set(days)  # and only those days
        same_as_live(store, NOW)
        assert all(d in summarised_days(store) for d in days)  # summarised again

    handled = a_part(store, *in_day, CasePartRow.state == "handled")
    changed(update(CasePartRow).where(CasePartRow.id == handled.id)  # reopened
            .values(state="arrived", handled_at=None), day_of(old))
    closed = a_part(store, *in_day, CasePartRow.state == "closed", CasePartRow.accepted_at.is_(None))
    changed(update(CasePartRow).where(CasePartRow.id == closed.id)  # a late accept, after its case closed
            .values(accepted_at=closed.opened_at + timedelta(hours=3)), day_of(old))
    with store.engine.connect() as c:
        camera_case = c.execute(select(IncidentRow.id, IncidentRow.opened_at).where(
            IncidentRow.source == "camera", IncidentRow.verdict == "valid", IncidentRow.opened_at >= lo,
            IncidentRow.opened_at <= hi).limit(1)).one()
    changed(update(IncidentRow).where(IncidentRow.id == camera_case.id)  # a verdict changed later
            .values(verdict="false_detection"), day_of(camera_case.opened_at))
    changed(update(IncidentRow).where(IncidentRow.id == camera_case.id)  # its camera named differently
            .values(camera="dome-7"), day_of(camera_case.opened_at))
    changed(insert(CasePartRow).values(  # a part added to a case of that day, opened then
        case_id=camera_case.id, kind="noise", department="fire", role="assist", state="handled", unit="mdc:209",
        opened_at=camera_case.opened_at, accepted_at=camera_case.opened_at + timedelta(seconds=61.5),
        updated_at=camera_case.opened_at), day_of(camera_case.opened_at))
    changed(delete(IncidentRow).where(IncidentRow.id == camera_case.id), day_of(camera_case.opened_at))
    changed(update(CasePartRow).where(CasePartRow.id == handled.id)  # handled a month on: 64-bit milliseconds
            .values(state="handled", handled_at=handled.opened_at + timedelta(days=30, milliseconds=1)), day_of(old))
    two_days = (CasePartRow.opened_at >= lo - timedelta(days=1), CasePartRow.opened_at < lo)
    moved = a_part(store, *two_days)  # a part's opening moved to another day: both days change
    changed(update(CasePartRow).where(CasePartRow.id == moved.id).values(opened_at=moved.opened_at + timedelta(days=1)),
            day_of(moved.opened_at), day_of(moved.opened_at + timedelta(days=1)))


def test_writes_of_the_case_loop_leave_other_days(store: Store) -> None:
    """A change of today's running parts (the case loop's writes) touches no summary."""
    random_site(store, NOW, seed=17)
    same_as_live(store, NOW)
    before = summarised_days(store)
    running = a_part(store, CasePartRow.state.in_(["new", "accepted", "arrived"]))
    change(store, update(CasePartRow).where(CasePartRow.id == running.id).values(state="handled", handled_at=NOW))
    assert summarised_days(store) == before
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(ReportDayRow)).scalar_one() == len(before) > 0


def test_a_database_that_refuses_writes_is_read_live(tmp_path: Path) -> None:
    """A console's store on a file it may only read: no summary written, the days read live, the same report."""
    path = tmp_path / "bridge.sqlite"
    writer = Store.open(f"sqlite:///{path}", clock=lambda: NOW)
    random_site(writer, NOW, seed=19)
    reader = Store.open(f"sqlite:///file:{path}?mode=ro&uri=true", migrate_schema=False, clock=lambda: NOW)
    try:
        same_as_live(reader, NOW)
        assert summarised_days(writer) == {}
        same_as_live(writer, NOW)  # the writer summarises them
        assert len(summarised_days(writer)) == 9
        same_as_live(reader, NOW)  # and the reader reads those summaries
    finally:
        reader.close()
        writer.close()


def test_the_bridge_summarises_settled_days_so_a_console_that_may_only_read_finds_them(tmp_path: Path) -> None:
    """``summarise_settled`` (the bridge's hourly round) summarises every day settled by now and nothing
    else; a second round has nothing left; the console's read-only store then reads those summaries and
    gives the live report."""
    path = tmp_path / "bridge.sqlite"
    writer = Store.open(f"sqlite:///{path}", clock=lambda: NOW)
    random_site(writer, NOW, seed=23)
    try:
        with writer.engine.connect() as c:
            first = c.execute(select(func.min(CasePartRow.opened_at))).scalar_one()
        days = writer.summarise_settled(NOW)
        summarised = summarised_days(writer)
        assert days == len(summarised) > 0
        yesterday = (NOW - timedelta(days=1)).date().isoformat()
        assert min(summarised) == first.date().isoformat() and max(summarised) <= yesterday
        assert NOW.date().isoformat() not in summarised  # today is still going
        assert writer.summarise_settled(NOW) == 0
        assert summarised_days(writer) == summarised  # nothing built again
        reader = Store.open(f"sqlite:///file:{path}?mode=ro&uri=true", migrate_schema=False, clock=lambda: NOW)
        try:
            same_as_live(reader, NOW)
        finally:
            reader.close()
    finally:
        writer.close()


def test_a_running_bridge_summarises_the_settled_days(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = tmp_path / "bridge.sqlite"
    store = Store.open(f"sqlite:///{path}")
    random_site(store, datetime.now(UTC), seed=29, n=100)
    store.close()
    bridge = Bridge(parse_config({"mqtt": {"url": mosquitto.url}, "data_dir": str(tmp_path),
                                  "bridge": {"database_url": f"sqlite:///{path}", "report_summary_s": 0.2}}))
    bridge.start()
    try:
        assert bridge.store is not None
        wait_until(lambda: len(summarised_days(bridge.store)) >= 8, 30, "the settled days summarised")  # type: ignore[arg-type]
    finally:
        bridge.stop()
