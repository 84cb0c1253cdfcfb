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

That is the live reading (``live=True``), the reference. A report reads a settled day instead from its
summary (``report_days``, migration 0011): every part of the day packed once into one row (its kind,
department, unit and camera as codes, each clock's whole milliseconds, within/late flags) with the day's
camera verdicts and untimed incidents, so a year is 365 rows. A day is summarised the first time a report
covers it whole once its figures cannot change by time alone (each part stopped, closed, or past every
limit it has not stopped: ``settled_after``); the database deletes the summary when anything of the day
changes (triggers), and the next report summarises it again. The window's edges, the days not settled and
those changed since are read live, the same way, part by part; the figures are then counted and ranked
here with numpy, the percentiles to the bit as ``percentile_cont`` gives them (bridge/report.py's
arithmetic), so a summarised report equals the live one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Float,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    inspect,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from bridge.models import REPORT_DAYS_LOCK, CasePartRow, IncidentRow, ReportDayRow, UtcDateTime
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
    percentile,
    percentile_position,
)
from bridge.store.base import Database
from bridge.store.cases import RUNNING
from bridge.views import PartState, Verdict

log = logging.getLogger(__name__)

Query = Select[*tuple[Any, ...]]
Spread = tuple[float | None, float | None]  # median, 90th percentile, in seconds

#: Each clock: the column that stops it and the due time that bounds it.
_CLOCKS = (("accept", CasePartRow.accepted_at, CasePartRow.accept_due),
           ("arrive", CasePartRow.arrived_at, CasePartRow.arrive_due),
           ("handle", CasePartRow.handled_at, CasePartRow.resolve_due))


class Reports(Database):
    """The supervisor's report of cases."""

    _has_summaries = False

    def case_report(self, since: datetime, by: str = "kind", now: datetime | None = None, *,
                    percentiles: bool = True, live: bool = False) -> CaseReport:
        """The figures of the parts opened from ``since`` to ``now``, grouped ``by`` one of :data:`BY`
        (``percentiles=False``: the counts only, the medians and 90th percentiles left out: a chart of the
        counts per day need not read every duration again). Settled days come from their summaries
        (``live``: every part read from the indexes instead; the same figures, slower over long windows)."""
        if by not in BY:
            raise ValueError(f"by: expected one of {', '.join(BY)}, got {by!r}")
        now = now or self.clock()
        if since > now:
            raise ValueError(f"since: {since.isoformat()} is after now ({now.isoformat()})")
        if not live and self._summarised():
            return self._summarised_report(since, by, now, percentiles)
        with self._read() as s:
            groups, total = self._groups(s, by, since, now, percentiles)
            categories, cameras, days, verified = self._verified(s, since, now, by == "day")
            untimed = {k: int(n) for k, n in s.execute(  # incidents of no configured kind have no parts
                select(IncidentRow.category, func.count()).group_by(IncidentRow.category)
                .where(IncidentRow.opened_at >= since, IncidentRow.opened_at <= now, IncidentRow.flow.is_(None)))}
        return _report(since, now, by, groups, total, categories, cameras, days, verified, untimed)

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
        said = _said()
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


    # --- summarised days ----------------------------------------------------------------------------

    def _summarised(self) -> bool:
        """Whether the schema has the day summaries (a console may read a database not yet migrated)."""
        if not self._has_summaries:
            self._has_summaries = inspect(self.engine).has_table(ReportDayRow.__tablename__)
        return self._has_summaries

    def _summarised_report(self, since: datetime, by: str, now: datetime, percentiles: bool) -> CaseReport:
        first, last = _midnight(since, up=True), _midnight(now)
        with self._read() as s:
            overdue = Counter(s.scalars(self._overdue(by), {"now": now}))
            days: list[_Day] = []
            if first < last:  # whole days in the window: settled ones from their summaries
                days = [_Day.unpack(*r) for r in self._summaries(s, _iso(first), _iso(last))
                        if r[1] is None or r[1] < now]
            # The others, those with a case or part stored (a window back to 2001 is not 25 years of days,
            # nor a quiet month a transaction a week to summarise nothing).
            stored = _stored_span(s)
        summarised = {d.key for d in days}
        whole = []
        if stored is not None:
            to = min(last, _midnight(stored[1]) + timedelta(days=1))
            whole = [d for d in _every_day(max(first, _midnight(stored[0])), to) if _iso(d) not in summarised]
        read, covered = self._summarise(whole, now)
        with self._read() as s:  # the window's edges, and the days that could not be summarised, live
            lo = since
            for day in [*sorted(summarised | covered), None]:
                hi = datetime.fromisoformat(day).replace(tzinfo=UTC) if day else now
                if lo < hi or day is None:
                    read += self._read_days(s, lo, hi, day is None, now)
                lo = hi + timedelta(days=1) if day else lo
        return _count(since, now, by, days + read, overdue, percentiles)

    def summarise_settled(self, now: datetime | None = None) -> int:
        """Summarise every settled day not summarised yet, from the first case stored to yesterday; how many
        were. The bridge does it now and then, so that a console, which may only read, finds a year's
        days summarised instead of reading them part by part."""
        now = now or self.clock()
        if not self._summarised():
            return 0
        with self._read() as s:
            stored = _stored_span(s)
            done = set(s.scalars(select(ReportDayRow.day)))
        if stored is None:
            return 0
        to = min(_midnight(now), _midnight(stored[1]) + timedelta(days=1))
        whole = [d for d in _every_day(_midnight(stored[0]), to) if _iso(d) not in done]
        read, _ = self._summarise(whole, now)
        return sum(1 for d in read if d.settled(now))

    def _summaries(self, s: Session, first: str, last: str) -> list[Any]:
        """The summaries of the days from ``first`` up to ``last``: day, settled_after, parts, names."""
        columns = (ReportDayRow.day, ReportDayRow.settled_after, ReportDayRow.parts, ReportDayRow.names)
        if self.dialect != "postgresql":
            return list(s.connection().execute(select(*columns).where(ReportDayRow.day >= first,
                                                                      ReportDayRow.day < last)))
        # psycopg reads bytea as hex text unless asked for binary: a year's 27 MB would be 54 MB to decode.
        with s.connection().connection.driver_connection.cursor(binary=True) as cursor:  # type: ignore[union-attr]
            cursor.execute("SELECT day, settled_after, parts, names FROM report_days WHERE day >= %s AND day < %s",
                           (first, last))
            return [(day, settled.astimezone(UTC) if settled else None, bytes(parts), names)
                    for day, settled, parts, names in cursor.fetchall()]

    def _read_days(self, s: Session, lo: datetime, hi: datetime, to_end: bool, now: datetime) -> list[_Day]:
        """The days of the parts and cases opened from ``lo`` to ``hi`` (``to_end``: included), read live."""
        at = bindparam("now", now, type_=UtcDateTime())
        stop = case((CasePartRow.state == PartState.CLOSED.value, CasePartRow.updated_at), else_=at)
        flags: Any = literal_column("0")
        pending = []  # the limits a part's figures still wait for: not stopped, not closed, maybe not passed yet
        for i, (_, done, due) in enumerate(_CLOCKS):
            flags = flags + case((done <= due, 1 << i), else_=0) + \
                case((due < func.coalesce(done, stop), 1 << (3 + i)), else_=0)
            pending.append(func.max(case((and_(done.is_(None), CasePartRow.state != PartState.CLOSED.value), due))))
        opened_parts = (CasePartRow.opened_at >= lo,
                        CasePartRow.opened_at <= hi if to_end else CasePartRow.opened_at < hi)
        c = s.connection()  # rows as tuples: no ORM on a million of them
        day = self._day(CasePartRow.opened_at)
        parts: dict[str, list[Any]] = {}
        for row in c.execute(select(day, *(self._key(f) for f in _FIELDS), *(self._millis(done) for _, done, _ in
                                                                             _CLOCKS), flags).where(*opened_parts)):
            parts.setdefault(row[0], []).append(row)
        waiting = {d: max((t for t in dues if t is not None), default=None)
                   for d, *dues in c.execute(select(day, *pending).where(*opened_parts).group_by(day))}
        day = self._day(IncidentRow.opened_at)
        opened = (IncidentRow.opened_at >= lo, IncidentRow.opened_at <= hi if to_end else IncidentRow.opened_at < hi)
        verified: dict[str, dict[str, dict[str, list[int]]]] = {}  # day -> category | camera -> name -> counts
        camera = func.coalesce(IncidentRow.camera, "")
        for d, category, cam, *said in c.execute(select(day, IncidentRow.category, camera, *_said())
                                                 .where(IncidentRow.source == "camera", *opened)
                                                 .group_by(day, IncidentRow.category, camera)):
            of = verified.setdefault(d, {"category": {}, "camera": {}})
            for sums in (of["category"].setdefault(category, [0, 0, 0]), of["camera"].setdefault(cam, [0, 0, 0])):
                for i, n in enumerate(said):
                    sums[i] += int(n)
        untimed: dict[str, dict[str, int]] = {}
        for d, category, n in c.execute(select(day, IncidentRow.category, func.count())
                                        .where(IncidentRow.flow.is_(None), *opened)
                                        .group_by(day, IncidentRow.category)):
            untimed.setdefault(d, {})[category] = int(n)
        return [_Day.of(d, parts.get(d, []), verified.get(d, {"category": {}, "camera": {}}), untimed.get(d, {}),
                        waiting.get(d)) for d in sorted(parts.keys() | verified.keys() | untimed.keys())]

    def _summarise(self, whole: list[datetime], now: datetime) -> tuple[list[_Day], set[str]]:
        """Read these whole days of the window, and store the summaries of those settled: in transactions
        that no change of their days can overlap (SQLite: the write lock; PostgreSQL: the triggers' advisory
        lock), so that a change committed meanwhile still deletes its summary; a week of days at most in each,
        so that the case loop's writes wait no longer than that takes. The days read, and the keys of all
        those covered (a database that refuses to write, read only, has its days read live instead)."""
        batches: list[list[datetime]] = []
        for start in whole:
            if batches and start - batches[-1][0] < _SUMMARISED_AT_ONCE and \
                    start - batches[-1][-1] == timedelta(days=1):
                batches[-1].append(start)
            else:
                batches.append([start])
        read: list[_Day] = []
        covered: set[str] = set()
        for batch in batches:
            try:
                with self._writing() as s:
                    if self.dialect == "postgresql":
                        s.execute(select(func.pg_advisory_xact_lock(REPORT_DAYS_LOCK)))
                    days = self._read_days(s, batch[0], batch[-1] + timedelta(days=1), False, now)
                    rows = [d.pack(self.clock()) for d in days if d.settled(now)]
                    if rows:
                        insert = self._insert(ReportDayRow)
                        s.execute(insert.on_conflict_do_update(index_elements=[ReportDayRow.day], set_={
                            c: insert.excluded[c] for c in ("settled_after", "parts", "names", "built_at")}), rows)
            except DBAPIError as exc:
                log.info("report: days from %s not summarised, read live (%s)", _iso(batch[0]), exc.orig)
                return read, covered
            read += days
            covered.update(_iso(d) for d in batch)
        return read, covered


def _stored_span(s: Session) -> tuple[datetime, datetime] | None:
    """When the first and the last case or part stored opened (None: nothing stored). Each min and max
    alone: SQLite reads one end of the index only for a lone min() or max(), and scans it for both."""
    opened = [t for t in (s.scalar(select(f(t.opened_at))) for t in (IncidentRow, CasePartRow)
                          for f in (func.min, func.max)) if t is not None]
    return (min(opened), max(opened)) if opened else None


def _report(since: datetime, now: datetime, by: str, groups: dict[str, Group], total: Group,
            categories: dict[str, Verified], cameras: dict[str, Verified], days: dict[str, Verified],
            verified: Verified, untimed: dict[str, int]) -> CaseReport:
    group_verified = {"kind": categories, "camera": cameras, "day": days}.get(by, {})
    ordered = every_day(list(groups.values()), since, now) if by == "day" else \
        sorted(groups.values(), key=lambda g: (-g.opened, -g.overdue, g.key))
    return CaseReport(since, now, by, tuple(ordered), total, tuple(sorted(categories.values(), key=lambda v: v.key)),
                      tuple(sorted(cameras.values(), key=lambda v: v.key)), verified, group_verified, untimed)


#: The most days summarised in one transaction (the case loop's writes wait while they are read).
_SUMMARISED_AT_ONCE = timedelta(days=7)

#: A summarised part's codes: indexes into its day's names of each.
_FIELDS = ("kind", "department", "unit", "camera")


def _record(wide: bool, many: bool = False) -> np.dtype[Any]:
    """One part, packed: its codes, each clock's whole milliseconds (:func:`_none` if it has not stopped;
    64-bit only on a day with a clock of 25 days or more) and its flags (bit i: clock i within its limit;
    bit 3 + i: past it). 21 bytes a part, 75 kB a day of 3,500 parts; 32-bit codes on a day of more than
    65,535 units or cameras (``many``)."""
    ms = "<i8" if wide else "<i4"
    codes = "<u4" if many else "<u2"
    return np.dtype([*((f, codes) for f in _FIELDS), *((name, ms) for name, _, _ in _CLOCKS), ("flags", "u1")])


def _wide(record: np.dtype[Any]) -> bool:
    return bool(record[_CLOCKS[0][0]] == np.int64)


def _none(record: np.dtype[Any]) -> int:
    return int(np.iinfo(record[_CLOCKS[0][0]]).min)


@dataclass
class _Day:
    """One UTC day (or the part of it in the window) of parts and camera-found cases."""

    key: str  # YYYY-MM-DD
    names: dict[str, list[str]]  # each field's codes' names
    parts: np.ndarray[Any, Any]  # one :func:`_record` per part
    #: Camera-found cases by "category" and by "camera": [valid, false detection, not verified] of each
    verified: dict[str, dict[str, list[int]]]
    untimed: dict[str, int]  # incidents of no configured kind, by kind
    settled_after: datetime | None  # the last limit its figures wait for (None: none)

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.key).replace(tzinfo=UTC)

    def settled(self, now: datetime) -> bool:
        return self.settled_after is None or self.settled_after < now

    @classmethod
    def of(cls, key: str, rows: list[Any], verified: dict[str, dict[str, list[int]]], untimed: dict[str, int],
           settled_after: datetime | None) -> _Day:
        """From the rows :meth:`Reports._read_days` reads: the day, the codes' names, the milliseconds
        (integers on SQLite, whole floats on PostgreSQL), the flags."""
        columns: list[Any] = list(zip(*rows, strict=True))[1:] if rows else [()] * (len(_FIELDS) + len(_CLOCKS) + 1)
        names: dict[str, list[str]] = {}
        record_fields: dict[str, Any] = {}
        for field, values in zip(_FIELDS, columns, strict=False):
            index: dict[str, int] = {}
            record_fields[field] = np.fromiter((index.setdefault(v, len(index)) for v in values), np.uint32,
                                               len(values))
            names[field] = list(index)
        ms = {name: np.array(columns[len(_FIELDS) + i], dtype=np.float64) for i, (name, _, _) in enumerate(_CLOCKS)}
        wide = any(np.nanmax(np.abs(m), initial=0) >= 2**31 - 1 for m in ms.values())
        record = _record(wide, any(len(n) > 2**16 - 1 for n in names.values()))
        parts = np.zeros(len(rows), record)
        for field in _FIELDS:
            parts[field] = record_fields[field]
        for name, m in ms.items():
            parts[name] = np.where(np.isnan(m), _none(record), np.nan_to_num(m))
        parts["flags"] = np.array(columns[-1], dtype=np.uint8)
        return cls(key, names, parts, verified, untimed, settled_after)

    def pack(self, built_at: datetime) -> dict[str, Any]:
        wide, many = _wide(self.parts.dtype), self.parts.dtype[_FIELDS[0]] == np.uint32
        return {"day": self.key, "settled_after": self.settled_after, "parts": self.parts.tobytes(),
                "names": {**self.names, "wide": wide, "many": many, "verified": self.verified, "untimed": self.untimed},
                "built_at": built_at}

    @classmethod
    def unpack(cls, day: str, settled_after: datetime | None, parts: bytes, names: dict[str, Any]) -> _Day:
        """From its ``report_days`` row."""
        names = dict(names)
        record = _record(bool(names.pop("wide")), bool(names.pop("many")))
        verified, untimed = names.pop("verified"), names.pop("untimed")
        return cls(day, names, np.frombuffer(parts, record), verified, untimed, settled_after)


def _count(since: datetime, now: datetime, by: str, days: list[_Day], overdue: Counter[str],
           percentiles: bool) -> CaseReport:
    """The report of these days' parts and cases, counted and ranked as the live queries do."""
    labels: dict[str, int] = {}  # the group keys, by their number
    pieces: list[np.ndarray[Any, Any]] = []
    for d in days:
        if not len(d.parts):
            continue
        if by == "day":
            pieces.append(np.full(len(d.parts), labels.setdefault(d.key, len(labels)), np.uint32))
        else:
            codes = np.array([labels.setdefault(name, len(labels)) for name in d.names[by]], np.uint32)
            pieces.append(codes[d.parts[by]])
    keys = np.concatenate(pieces) if pieces else np.zeros(0, np.uint32)
    n = len(labels)
    if n < 2**16:
        keys = keys.astype(np.uint16)  # a stable sort of 16-bit keys is a radix sort
    record = _record(any(_wide(d.parts.dtype) for d in days))
    none = _none(record)

    def widened(d: _Day, name: str) -> np.ndarray[Any, Any]:
        values = d.parts[name].astype(record[name])
        if d.parts.dtype[name] != record[name]:  # a narrow day's "not stopped" is the wide one's
            values[d.parts[name] == _none(d.parts.dtype)] = none
        return values

    ms = {name: np.concatenate([widened(d, name) for d in days] or [np.zeros(0, record[name])])
          for name, _, _ in _CLOCKS}
    flags = np.concatenate([d.parts["flags"] for d in days] or [np.zeros(0, np.uint8)])
    # Each part's nine bits (within and past each limit, each clock stopped) counted per group in one pass:
    # the parts of each group with each combination, then summed over the combinations with a bit set.
    bits = flags.astype(np.int64)
    for i, (name, _, _) in enumerate(_CLOCKS):
        bits |= (ms[name] != none).astype(np.int64) << (6 + i)
    combinations = np.bincount(keys.astype(np.int64) * 512 + bits, minlength=n * 512).reshape(n, 512)
    has = (np.arange(512)[:, None] >> np.arange(9)) & 1  # combination x bit
    per_bit = combinations @ has  # group x bit
    counts: dict[str, np.ndarray[Any, Any]] = {"opened": combinations.sum(axis=1)}
    for i, (name, _, _) in enumerate(_CLOCKS):
        counts[f"{name}_within"], counts[f"{name}_late"] = per_bit[:, i], per_bit[:, 3 + i]
        counts[f"{name}_done"] = per_bit[:, 6 + i]
    names = list(labels)
    by_key = {names[g]: {c: int(v[g]) for c, v in counts.items()} for g in range(n) if counts["opened"][g]}
    total_counts = {c: int(v.sum()) for c, v in counts.items()}
    spreads: dict[str, dict[str, Spread]] = {}
    total_spreads: dict[str, Spread] = {}
    if percentiles:
        accepted = ms[_CLOCKS[0][0]] != none  # as the live queries: the durations of the parts accepted
        for name, _, _ in _CLOCKS:
            stopped = accepted & (ms[name] != none)
            k, v = keys[stopped], ms[name][stopped]
            total_spreads[name] = _ranked(v)
            order = np.argsort(k, kind="stable")
            k, v = k[order], v[order]
            bounds = np.searchsorted(k, np.arange(n + 1))
            for g in range(n):
                if bounds[g] < bounds[g + 1]:
                    spreads.setdefault(names[g], {})[name] = _ranked(v[bounds[g]:bounds[g + 1]])
    groups = {k: _group(k, by_key.get(k), spreads.get(k, {}), overdue[k]) for k in by_key.keys() | overdue.keys()}
    total = _group("", total_counts if total_counts["opened"] else None, total_spreads, overdue.total())

    categories, cameras, by_day, every = _verified_of(days)
    untimed: Counter[str] = Counter()
    for d in days:
        untimed.update(d.untimed)
    return _report(since, now, by, groups, total, categories, cameras, by_day if by == "day" else {}, every,
                   dict(untimed))


def _verified_of(days: list[_Day]) -> tuple[dict[str, Verified], dict[str, Verified], dict[str, Verified], Verified]:
    """The days' camera-found cases by category, by camera, by day and all."""
    said: dict[str, dict[str, list[int]]] = {"category": {}, "camera": {}, "day": {}}
    for d in days:
        for of in ("category", "camera"):
            for k, counted in d.verified[of].items():
                sums = said[of].setdefault(k, [0, 0, 0])
                for i, n in enumerate(counted):
                    sums[i] += n
        if d.verified["category"]:
            said["day"][d.key] = [sum(c) for c in zip(*d.verified["category"].values(), strict=True)]
    categories, cameras, by_day = ({k: Verified(k, *c) for k, c in said[of].items()}
                                   for of in ("category", "camera", "day"))
    return categories, cameras, by_day, Verified("", *(sum(c) for c in zip(*said["day"].values(), strict=True)))


def _ranked(values: np.ndarray[Any, Any]) -> Spread:
    """The median and 90th percentile of these milliseconds, in seconds: :func:`bridge.report.percentile`'s
    arithmetic on the two values around each rank, found without sorting the rest."""
    n = len(values)
    if not n:
        return None, None
    at = [percentile_position(n, p) for p in (MEDIAN, P90)]
    ranks = sorted({r for i, _ in at for r in (i, i + 1) if r < n})
    ordered = np.partition(values, ranks)
    out = [interpolate(int(ordered[i]), int(ordered[i + 1]) if i + 1 < n else None, fraction) for i, fraction in at]
    return _seconds(out[0]), _seconds(out[1])


def _every_day(first: datetime, last: datetime) -> list[datetime]:
    """The midnights from ``first`` up to ``last``, not included."""
    return [first + timedelta(days=i) for i in range((last - first).days)]


def _midnight(t: datetime, up: bool = False) -> datetime:
    """The UTC midnight at or before ``t`` (``up``: at or after)."""
    day = datetime.combine(t.astimezone(UTC).date(), datetime.min.time(), UTC)
    return day + timedelta(days=1) if up and day < t else day


def _iso(day: datetime) -> str:
    return day.date().isoformat()


def _said() -> tuple[ColumnElement[Any], ...]:
    """A group's camera-found cases said valid, said false detections, not said."""
    return (func.sum(case((IncidentRow.verdict == Verdict.VALID.value, 1), else_=0)),
            func.sum(case((IncidentRow.verdict == Verdict.FALSE_DETECTION.value, 1), else_=0)),
            func.sum(case((IncidentRow.verdict.is_(None), 1), else_=0)))

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
