"""Reports: the supervisor's figures of cases (bridge/report.py says what they are), read in a few
aggregate queries that the database answers from its indexes, whatever the number of cases stored.

    counts        one GROUP BY over the parts opened in the window (``ix_case_parts_opened``)
    percentiles   PostgreSQL: ``percentile_cont``; SQLite, which has none: each group's durations ranked
                  by a window function, only the rows either side of each percentile read back and
                  interpolated here, as ``percentile_cont`` does; durations are whole milliseconds on
                  both, so that both databases give the same figures
    overdue now   the running parts (``ix_case_parts_state_opened``), few whatever the history
    verified      the camera-found cases of the window (``ix_incidents_source_opened``)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Select, and_, bindparam, case, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from bridge.models import CasePartRow, IncidentRow, UtcDateTime
from bridge.report import (
    BY,
    MEDIAN,
    P90,
    CaseReport,
    Clock,
    Group,
    Verified,
    every_day,
    interpolate,
    percentile_position,
)
from bridge.store.base import Database
from bridge.store.cases import RUNNING
from bridge.views import PartState, Verdict

Query = Select[*tuple[Any, ...]]

#: Each clock: the column that stops it and the due time that bounds it.
_CLOCKS = (("accept", CasePartRow.accepted_at, CasePartRow.accept_due),
           ("arrive", CasePartRow.arrived_at, CasePartRow.arrive_due),
           ("handle", CasePartRow.handled_at, CasePartRow.resolve_due))


class Reports(Database):
    """The supervisor's report of cases."""

    def case_report(self, since: datetime, by: str = "kind", now: datetime | None = None) -> CaseReport:
        """The figures of the parts opened from ``since`` to ``now``, grouped ``by`` one of :data:`BY`."""
        if by not in BY:
            raise ValueError(f"by: expected one of {', '.join(BY)}, got {by!r}")
        now = now or self.clock()
        if since > now:
            raise ValueError(f"since: {since.isoformat()} is after now ({now.isoformat()})")
        with self._read() as s:
            groups = self._groups(s, by, since, now)
            total = self._groups(s, "all", since, now).get("", Group(""))
            categories = self._verified(s, "kind", since, now)
            cameras = self._verified(s, "camera", since, now)
            verified = self._verified(s, "all", since, now).get("", Verified(""))
            group_verified = categories if by == "kind" else cameras if by == "camera" else \
                self._verified(s, "day", since, now) if by == "day" else {}
        ordered = every_day(list(groups.values()), since, now) if by == "day" else \
            sorted(groups.values(), key=lambda g: (-g.opened, -g.overdue, g.key))
        return CaseReport(since, now, by, tuple(ordered), Group("", total.opened, total.accept, total.arrive,
                                                                      total.handle, total.overdue),
                          tuple(sorted(categories.values(), key=lambda v: v.key)),
                          tuple(sorted(cameras.values(), key=lambda v: v.key)), verified, group_verified)

    # --- the parts of the window ---------------------------------------------------------------------

    def _day(self, column: Any) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
        return func.substr(column, 1, 10)  # SQLite keeps naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'

    def _key(self, by: str) -> tuple[SQLColumnExpression[Any], bool]:
        """The group's expression and whether it needs the case's row."""
        if by == "kind":
            return CasePartRow.kind, False
        if by == "department":
            return CasePartRow.department, False
        if by == "unit":
            return func.coalesce(CasePartRow.unit, ""), False
        if by == "camera":
            return func.coalesce(IncidentRow.camera, ""), True
        if by == "day":
            return self._day(CasePartRow.opened_at), False
        return literal_column("''"), False

    def _millis(self, done: Any) -> ColumnElement[Any]:
        """The time from the part's opening to ``done``, in whole milliseconds."""
        if self.dialect == "postgresql":
            return cast(func.round(func.extract("epoch", done - CasePartRow.opened_at) * 1000), BigInteger)
        return cast(func.round((func.julianday(done) - func.julianday(CasePartRow.opened_at)) * 86_400_000.0),
                    BigInteger)

    @staticmethod
    def _window(columns: list[Any], joined: bool, since: datetime, now: datetime) -> Query:
        q = select(*columns).select_from(CasePartRow)
        if joined:
            q = q.join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
        return q.where(CasePartRow.opened_at >= since, CasePartRow.opened_at <= now)

    def _groups(self, s: Session, by: str, since: datetime, now: datetime) -> dict[str, Group]:
        key, joined = self._key(by)
        at = bindparam("now", now, type_=UtcDateTime())
        # A part closed with its case stopped being judged then (its last change); any other runs till now.
        stop = case((CasePartRow.state == PartState.CLOSED.value, CasePartRow.updated_at), else_=at)
        columns: list[Any] = [key.label("key"), func.count().label("opened")]
        for name, done, due in _CLOCKS:
            columns += [func.count(done).label(f"{name}_done"),
                        func.sum(case((done <= due, 1), else_=0)).label(f"{name}_within"),
                        func.sum(case((due < func.coalesce(done, stop), 1), else_=0)).label(f"{name}_late")]
        counts = {r.key: r for r in s.execute(_grouped(self._window(columns, joined, since, now), key, by))}
        spreads = {name: self._percentiles(s, by, done, since, now) for name, done, _ in _CLOCKS}
        overdue = self._overdue(s, by, now)
        out: dict[str, Group] = {}
        for k in counts.keys() | overdue.keys():
            r = counts.get(k)
            clocks: dict[str, Clock] = {}
            for name, _, _ in _CLOCKS:
                median, p90 = spreads[name].get(k, (None, None))
                if r is None:
                    clocks[name] = Clock()
                else:
                    within, late = int(getattr(r, f"{name}_within") or 0), int(getattr(r, f"{name}_late") or 0)
                    clocks[name] = Clock(int(getattr(r, f"{name}_done")), median, p90, within, within + late)
            out[k] = Group(k, int(r.opened) if r is not None else 0, clocks["accept"], clocks["arrive"],
                           clocks["handle"], overdue.get(k, 0))
        return out

    def _percentiles(self, s: Session, by: str, done: Any, since: datetime, now: datetime
                     ) -> dict[str, tuple[float | None, float | None]]:
        """Each group's median and 90th percentile of the time to ``done``, in seconds (ms precision)."""
        key, joined = self._key(by)
        ms = self._millis(done)
        if self.dialect == "postgresql":
            q = self._window([key.label("key"),
                             func.percentile_cont(MEDIAN[0] / MEDIAN[1]).within_group(cast(ms, Float)).label("p50"),
                             func.percentile_cont(P90[0] / P90[1]).within_group(cast(ms, Float)).label("p90")],
                            joined, since, now).where(done.is_not(None))
            return {r.key: (_seconds(r.p50), _seconds(r.p90)) for r in s.execute(_grouped(q, key, by))}
        durations = self._window([key.label("key"), ms.label("ms")], joined, since, now) \
            .where(done.is_not(None)).subquery()
        ranked = select(durations.c.key, durations.c.ms,
                        (func.row_number().over(partition_by=durations.c.key, order_by=durations.c.ms) - 1)
                        .label("i"),
                        func.count().over(partition_by=durations.c.key).label("n")).subquery()
        wanted = []
        for num, den in (MEDIAN, P90):  # integer division in SQL, as percentile_position does in Python
            low = (ranked.c.n - 1).self_group().op("*")(num).self_group().op("/")(den)
            wanted += [ranked.c.i == low, ranked.c.i == low + 1]
        found: dict[str, dict[int, int]] = {}
        sizes: dict[str, int] = {}
        for k, value, i, n in s.execute(select(ranked.c.key, ranked.c.ms, ranked.c.i, ranked.c.n)
                                        .where(or_(*wanted))):
            found.setdefault(k, {})[int(i)] = int(value)
            sizes[k] = int(n)
        out: dict[str, tuple[float | None, float | None]] = {}
        for k, values in found.items():
            picks = []
            for p in (MEDIAN, P90):
                i, fraction = percentile_position(sizes[k], p)
                picks.append(_seconds(interpolate(values[i], values.get(i + 1), fraction)))
            out[k] = (picks[0], picks[1])
        return out

    def _overdue(self, s: Session, by: str, now: datetime) -> dict[str, int]:
        """Running parts past a limit now, whenever they opened, per group."""
        key, joined = self._key(by)
        late = or_(*(and_(due < now, done.is_(None)) for _, done, due in _CLOCKS))
        q: Query = select(key.label("key"), func.count().label("n")).select_from(CasePartRow)
        if joined:
            q = q.join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
        q = q.where(CasePartRow.state.in_(RUNNING), CasePartRow.opened_at <= now, late)
        return {r.key: int(r.n) for r in s.execute(_grouped(q, key, by)) if r.n}

    # --- camera-found cases ----------------------------------------------------------------------------

    def _verified(self, s: Session, by: str, since: datetime, now: datetime) -> dict[str, Verified]:
        key: SQLColumnExpression[Any] = {"kind": IncidentRow.category, "camera": func.coalesce(IncidentRow.camera, ""),
                                   "day": self._day(IncidentRow.opened_at)}.get(by, literal_column("''"))
        q: Query = select(key.label("key"),
                   func.sum(case((IncidentRow.verdict == Verdict.VALID.value, 1), else_=0)).label("valid"),
                   func.sum(case((IncidentRow.verdict == Verdict.FALSE_DETECTION.value, 1), else_=0)).label("false"),
                   func.sum(case((IncidentRow.verdict.is_(None), 1), else_=0)).label("unverified")) \
            .where(IncidentRow.source == "camera", IncidentRow.opened_at >= since, IncidentRow.opened_at <= now) \

        count: Callable[[Any], int] = lambda x: int(x or 0)  # noqa: E731 - SUM over no rows is NULL
        return {r.key: Verified(r.key, count(r.valid), count(r.false), count(r.unverified))
                for r in s.execute(_grouped(q, key, by)) if r.valid is not None}


def _grouped(q: Query, key: SQLColumnExpression[Any], by: str) -> Query:
    """Grouped by the key; "all" is one group (a constant in GROUP BY is an error on PostgreSQL)."""
    return q if by == "all" else q.group_by(key)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms)) / 1000
