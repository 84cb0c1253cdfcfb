"""Reports: the supervisor's figures of cases (bridge/report.py says what they are), read in a few
aggregate queries that the database answers from its indexes, whatever the number of cases stored.

    counts        a GROUP BY over the parts opened in the window (``ix_case_parts_report``), added up for all
    percentiles   PostgreSQL: ``percentile_cont``; SQLite, which has none: the durations of the window's
                  parts read once and ranked here (bridge/report.py's percentile interpolates as
                  ``percentile_cont`` does); durations are whole milliseconds on both, so that both
                  databases give the same figures
    overdue now   the running parts (``ix_case_parts_running``, partial), few whatever the history
    verified      the camera-found cases of the window, by category and camera in one GROUP BY
                  (``ix_incidents_source_opened``), by day in another when the report is by day
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Select, and_, bindparam, case, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from bridge.models import CasePartRow, IncidentRow, UtcDateTime
from bridge.report import BY, MEDIAN, P90, CaseReport, Clock, Group, Verified, every_day, percentile
from bridge.store.base import Database
from bridge.store.cases import RUNNING
from bridge.views import PartState, Verdict

Query = Select[*tuple[Any, ...]]
Spread = tuple[float | None, float | None]  # median, 90th percentile, in seconds

#: Each clock: the column that stops it and the due time that bounds it.
_CLOCKS = (("accept", CasePartRow.accepted_at, CasePartRow.accept_due),
           ("arrive", CasePartRow.arrived_at, CasePartRow.arrive_due),
           ("handle", CasePartRow.handled_at, CasePartRow.resolve_due))


class Reports(Database):
    """The supervisor's report of cases."""

    def case_report(self, since: datetime, by: str = "kind", now: datetime | None = None, *,
                    percentiles: bool = True) -> CaseReport:
        """The figures of the parts opened from ``since`` to ``now``, grouped ``by`` one of :data:`BY`
        (``percentiles=False``: the counts only, the medians and 90th percentiles left out: a chart of the
        counts per day need not read every duration again)."""
        if by not in BY:
            raise ValueError(f"by: expected one of {', '.join(BY)}, got {by!r}")
        now = now or self.clock()
        if since > now:
            raise ValueError(f"since: {since.isoformat()} is after now ({now.isoformat()})")
        with self._read() as s:
            groups, total = self._groups(s, by, since, now, percentiles)
            categories, cameras, days, verified = self._verified(s, since, now, by == "day")
            group_verified = {"kind": categories, "camera": cameras, "day": days}.get(by, {})
            untimed = {k: int(n) for k, n in s.execute(  # incidents of no configured kind have no parts
                select(IncidentRow.category, func.count()).group_by(IncidentRow.category)
                .where(IncidentRow.opened_at >= since, IncidentRow.opened_at <= now, IncidentRow.flow.is_(None)))}
        ordered = every_day(list(groups.values()), since, now) if by == "day" else \
            sorted(groups.values(), key=lambda g: (-g.opened, -g.overdue, g.key))
        return CaseReport(since, now, by, tuple(ordered), total,
                          tuple(sorted(categories.values(), key=lambda v: v.key)),
                          tuple(sorted(cameras.values(), key=lambda v: v.key)), verified, group_verified, untimed)

    # --- the parts of the window ---------------------------------------------------------------------

    def _day(self, column: Any) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
        return func.substr(column, 1, 10)  # SQLite keeps naive UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'

    def _key(self, by: str) -> SQLColumnExpression[Any]:
        """The group's expression. A part's camera is its case's, looked up by the case's key for each part
        of the window (a join would let PostgreSQL hash every case ever opened)."""
        if by == "kind":
            return CasePartRow.kind
        if by == "department":
            return CasePartRow.department
        if by == "unit":
            return func.coalesce(CasePartRow.unit, "")
        if by == "camera":
            camera = select(IncidentRow.camera).where(IncidentRow.id == CasePartRow.case_id).scalar_subquery()
            return func.coalesce(camera, "")
        if by == "day":
            return self._day(CasePartRow.opened_at)
        return literal_column("''")

    def _millis(self, done: Any) -> ColumnElement[Any]:
        """The time from the part's opening to ``done``, in whole milliseconds."""
        if self.dialect == "postgresql":  # date_part is double precision (extract's numeric is slower by far)
            return func.round(func.date_part("epoch", done - CasePartRow.opened_at) * 1000.0, type_=Float)
        return cast(func.round((func.julianday(done) - func.julianday(CasePartRow.opened_at)) * 86_400_000.0),
                    BigInteger)

    @staticmethod
    def _window(columns: list[Any], since: datetime, now: datetime) -> Query:
        return select(*columns).select_from(CasePartRow).where(CasePartRow.opened_at >= since,
                                                               CasePartRow.opened_at <= now)

    def _groups(self, s: Session, by: str, since: datetime, now: datetime, percentiles: bool = True
                ) -> tuple[dict[str, Group], Group]:
        """The groups' figures and those of all the parts together."""
        at = bindparam("now", now, type_=UtcDateTime())
        # A part closed with its case stopped being judged then (its last change); any other runs till now.
        stop = case((CasePartRow.state == PartState.CLOSED.value, CasePartRow.updated_at), else_=at)
        columns: list[Any] = [func.count().label("opened")]
        for name, done, due in _CLOCKS:
            columns += [func.count(done).label(f"{name}_done"),
                        func.sum(case((done <= due, 1), else_=0)).label(f"{name}_within"),
                        func.sum(case((due < func.coalesce(done, stop), 1), else_=0)).label(f"{name}_late")]
        key = self._key(by)
        counts = {r.key: {name: int(value or 0) for name, value in r._mapping.items() if name != "key"}
                  for r in s.execute(_grouped(self._window([key.label("key"), *columns], since, now), key, by))}
        total_counts = dict(sum((Counter(c) for c in counts.values()), Counter()))  # counts add up; percentiles not
        spreads, total_spreads = self._spreads(s, by, since, now) if percentiles else ({}, {})
        overdue = Counter(s.scalars(self._overdue(by), {"now": now}))
        groups = {k: _group(k, counts.get(k), spreads.get(k, {}), overdue[k]) for k in counts.keys() | overdue.keys()}
        return groups, _group("", total_counts, total_spreads, overdue.total())

    def _spreads(self, s: Session, by: str, since: datetime, now: datetime
                 ) -> tuple[dict[str, dict[str, Spread]], dict[str, Spread]]:
        """Each group's and all the parts' median and 90th percentile of each clock, in seconds."""
        key = self._key(by)
        ms = [self._millis(done).label(name) for name, done, _ in _CLOCKS]
        if self.dialect == "postgresql":  # percentile_cont leaves out the nulls: the parts not there yet
            columns = [func.percentile_cont(p).within_group(cast(m, Float)).label(f"{m.name}_{p}") for m in ms
                       for p in (MEDIAN, P90)]

            def spread(r: Any) -> dict[str, Spread]:
                return {m.name: (_seconds(r[i * 2]), _seconds(r[i * 2 + 1])) for i, m in enumerate(ms)}

            q = self._window(columns, since, now).where(CasePartRow.accepted_at.is_not(None))
            groups = {r[-1]: spread(r) for r in s.execute(_grouped(q.add_columns(key.label("key")), key, by))}
            return groups, spread(s.execute(q).one())
        # SQLite has no percentile_cont, and ranking by a window function costs four times reading the
        # durations: they are read once (the parts accepted; an arrival or a handling implies acceptance),
        # in whole milliseconds, and the ranks picked here, as percentile_cont does.
        values: dict[str, list[list[int]]] = {}
        every: list[list[int]] = [[] for _ in _CLOCKS]
        q = self._window([key.label("key"), *ms], since, now).where(CasePartRow.accepted_at.is_not(None))
        for k, *durations in s.execute(q):
            lists = values.setdefault(k, [[] for _ in _CLOCKS])
            for i, d in enumerate(durations):
                if d is not None:
                    lists[i].append(d)
                    every[i].append(d)
        return {k: _spread(lists) for k, lists in values.items()}, _spread(every)

    def _overdue(self, by: str) -> Query:
        """The group of each running part past a limit now, whenever it opened (few: running parts are).
        Read as rows, not grouped in SQL: a GROUP BY would tempt SQLite to walk the index of its key."""
        key = self._key(by)
        at = bindparam("now", type_=UtcDateTime())
        late = or_(*(and_(due < at, done.is_(None)) for _, done, due in _CLOCKS))
        q = select(key).select_from(CasePartRow)
        # The states as literals: a partial index of the running parts is used only for the very same terms.
        running = CasePartRow.state.in_(bindparam("running", RUNNING, expanding=True, literal_execute=True))
        return q.where(running, late)

    # --- camera-found cases ----------------------------------------------------------------------------

    def _verified(self, s: Session, since: datetime, now: datetime, by_day: bool
                  ) -> tuple[dict[str, Verified], dict[str, Verified], dict[str, Verified], Verified]:
        """The camera-found cases of the window by category, by camera, by day (``by_day``: else none) and all:
        one GROUP BY of category and camera (their combinations are few), added up here; days in another."""
        camera = func.coalesce(IncidentRow.camera, "")
        said = (func.sum(case((IncidentRow.verdict == Verdict.VALID.value, 1), else_=0)),
                func.sum(case((IncidentRow.verdict == Verdict.FALSE_DETECTION.value, 1), else_=0)),
                func.sum(case((IncidentRow.verdict.is_(None), 1), else_=0)))
        found = (IncidentRow.source == "camera", IncidentRow.opened_at >= since, IncidentRow.opened_at <= now)
        sums: list[dict[str, Counter[str]]] = [{}, {}]
        total: Counter[str] = Counter()
        for *keys, valid, false, unverified in s.execute(
                select(IncidentRow.category, camera, *said).where(*found).group_by(IncidentRow.category, camera)):
            counted = Counter(valid=int(valid), false=int(false), unverified=int(unverified))
            total.update(counted)
            for by_key, k in zip(sums, keys, strict=True):
                by_key.setdefault(k, Counter()).update(counted)

        def verified(k: str, c: Counter[str]) -> Verified:
            return Verified(k, c["valid"], c["false"], c["unverified"])

        categories, cameras = ({k: verified(k, c) for k, c in by_key.items()} for by_key in sums)
        days: dict[str, Verified] = {}
        if by_day:
            day = self._day(IncidentRow.opened_at)
            days = {k: Verified(k, int(v), int(f), int(u))
                    for k, v, f, u in s.execute(select(day, *said).where(*found).group_by(day))}
        return categories, cameras, days, verified("", total)


def _grouped(q: Query, key: SQLColumnExpression[Any], by: str) -> Query:
    """Grouped by the key; "all" is one group (a constant in GROUP BY is an error on PostgreSQL)."""
    return q if by == "all" else q.group_by(key)


def _spread(lists: list[list[int]]) -> dict[str, Spread]:
    out: dict[str, Spread] = {}
    for (name, _, _), values in zip(_CLOCKS, lists, strict=True):
        values.sort()
        out[name] = (_seconds(percentile(values, MEDIAN)), _seconds(percentile(values, P90)))
    return out


def _group(key: str, counts: Mapping[str, int] | None, spreads: dict[str, Spread], overdue: int) -> Group:
    c = counts or {}
    clocks = {name: Clock(c.get(f"{name}_done", 0), *spreads.get(name, (None, None)), c.get(f"{name}_within", 0),
                          c.get(f"{name}_within", 0) + c.get(f"{name}_late", 0)) for name, _, _ in _CLOCKS}
    return Group(key, c.get("opened", 0), clocks["accept"], clocks["arrive"], clocks["handle"], overdue)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms)) / 1000
