"""Past incidents, calls and events, filtered and paged through the database without loading everything.

    History(engine).page(filters, after=cursor, limit=50) -> Page(rows, next_cursor)

Pages are keyset pages, newest first: ordered by ``(time, id)`` descending, the next page starts strictly
after the last row of this one (``time < t OR (time = t AND id < id)``), so rows with equal times are
neither repeated nor skipped, and rows written meanwhile do not shift the pages already read (an OFFSET
would). A page reads ``limit + 1`` rows at most: the extra one only says whether there is a next page.

    what     Filters.scope   rows                      time          id
    ------   -------------   -----------------------   -----------   ------------------
    incidents "incidents"    IncidentView              opened_at     incidents.id (int)
    calls     "calls"        CallEntry (event + clip)  events.time   events.id (UUIDv7)
    events    "events"       Event (of ``kind``)       events.time   events.id

Filters: ``unit``, ``gateway`` and ``channel`` are exact, or globs (``mdc:*``, ``patrol-?``: ``*`` and ``?``,
case-insensitive); ``since`` (inclusive) and ``until`` (exclusive) bound the time; ``text`` is a
case-insensitive substring of an incident's label, unit or operators' notes, or of an event's unit and
detail (the JSON as text). Everything is plain SQL (LIKE, lower, CAST to text): the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Engine, String, and_, cast, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, sessionmaker

from bridge.models import ClipRow, EventRow, IncidentHistoryRow, IncidentRow
from bridge.store import Store, event_from_row
from bridge.views import CallView, IncidentView
from gateway.events import Event, Kind

Scope = Literal["incidents", "calls", "events"]
SCOPES: tuple[Scope, ...] = ("incidents", "calls", "events")
MAX_LIMIT = 500  # a page is for a screen: more than this is a mistake, not a page

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Filters:
    scope: Scope = "incidents"
    kind: str | None = None  # events only: alert | beacon | ptt | status | call | io
    unit: str | None = None
    gateway: str | None = None
    channel: str | None = None
    since: datetime | None = None  # aware; inclusive
    until: datetime | None = None  # aware; exclusive
    text: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope: expected one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.kind is not None and self.kind not in {str(k) for k in Kind}:
            raise ValueError(f"kind: expected one of {', '.join(str(k) for k in Kind)}, got {self.kind!r}")
        for name in ("since", "until"):
            t = getattr(self, name)
            if t is not None and t.tzinfo is None:
                raise ValueError(f"{name}: a naive time; give it a time zone")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's time and id (an incident's id as text)."""

    time: datetime
    id: str


@dataclass(frozen=True, slots=True)
class CallEntry:
    """A call in the history: the call event (gateway, detail) and its clip's description."""

    event: Event
    call: CallView


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    next_cursor: Cursor | None  # None: this was the last page


# --- filters as SQL --------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def _glob_to_like(pattern: str) -> str:
    return _escape(pattern.lower()).replace("*", "%").replace("?", "_")


def _match(column: ColumnElement[Any] | InstrumentedAttribute[Any], pattern: str | None) -> ColumnElement[bool] | None:
    """Exact (an index can serve it), or a glob as a LIKE on both sides lowered (SQLite's LIKE ignores
    case, PostgreSQL's does not: lowering both makes them agree)."""
    if pattern is None or not pattern.strip():
        return None
    pattern = pattern.strip()
    if not is_glob(pattern):
        return column == pattern
    return func.lower(column).like(_glob_to_like(pattern), escape="\\")


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).like(f"%{_escape(text.lower())}%", escape="\\")


def _after(time_col: InstrumentedAttribute[Any], id_col: InstrumentedAttribute[Any], cursor: Cursor,
           cursor_id: object) -> ColumnElement[bool]:
    # Spelled out rather than a row-value comparison ((a, b) < (x, y)): the same on every SQLite.
    return or_(time_col < cursor.time, and_(time_col == cursor.time, id_col < cursor_id))


def _where(f: Filters, time_col: InstrumentedAttribute[Any], unit: Any, gateway: Any,
           channel: Any) -> list[ColumnElement[bool]]:
    out = [c for c in (_match(unit, f.unit), _match(gateway, f.gateway), _match(channel, f.channel)) if c is not None]
    if f.since is not None:
        out.append(time_col >= f.since)
    if f.until is not None:
        out.append(time_col < f.until)
    return out


class History:
    """Read-only queries over the bridge's database; thread-safe (a session per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)

    def page(self, filters: Filters, after: Cursor | None = None, limit: int = 50) -> Page[Any]:
        """A page of what ``filters.scope`` names, newest first."""
        if filters.scope == "incidents":
            return self.incidents(filters, after, limit)
        if filters.scope == "calls":
            return self.calls(filters, after, limit)
        return self.events(filters, after, limit)

    @staticmethod
    def _limit(limit: int) -> int:
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit: expected 1..{MAX_LIMIT}, got {limit}")
        return limit

    @staticmethod
    def _paged(rows: Sequence[T], limit: int, cursor_of: Any) -> tuple[list[T], Cursor | None]:
        if len(rows) > limit:
            kept = list(rows[:limit])
            return kept, cursor_of(kept[-1])
        return list(rows), None

    def incidents(self, filters: Filters, after: Cursor | None = None, limit: int = 50) -> Page[IncidentView]:
        limit = self._limit(limit)
        f = filters
        where = _where(f, IncidentRow.opened_at, IncidentRow.unit, IncidentRow.gateway, IncidentRow.channel)
        if f.text and f.text.strip():
            text = f.text.strip()
            noted = exists().where(IncidentHistoryRow.incident_id == IncidentRow.id,
                                   _contains(IncidentHistoryRow.note, text))
            where.append(or_(_contains(IncidentRow.label, text), _contains(IncidentRow.unit, text), noted))
        if after is not None:
            where.append(_after(IncidentRow.opened_at, IncidentRow.id, after, int(after.id)))
        q = (select(IncidentRow).where(*where)
             .order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc()).limit(limit + 1))
        with self._read() as s:
            rows, cursor = self._paged(s.scalars(q).all(), limit,
                                       lambda r: Cursor(r.opened_at, str(r.id)))
            return Page(Store._incident_views(s, rows), cursor)

    def _event_where(self, f: Filters, after: Cursor | None, kind: str | None) -> list[ColumnElement[bool]]:
        where = _where(f, EventRow.time, EventRow.unit, EventRow.gateway, EventRow.channel)
        if kind is not None:
            where.append(EventRow.kind == kind)
        if f.text and f.text.strip():
            text = f.text.strip()
            where.append(or_(_contains(EventRow.unit, text), _contains(cast(EventRow.detail, String), text)))
        if after is not None:
            where.append(_after(EventRow.time, EventRow.id, after, after.id))
        return where

    def events(self, filters: Filters, after: Cursor | None = None, limit: int = 50) -> Page[Event]:
        limit = self._limit(limit)
        where = self._event_where(filters, after, filters.kind)
        q = select(EventRow).where(*where).order_by(EventRow.time.desc(), EventRow.id.desc()).limit(limit + 1)
        with self._read() as s:
            rows, cursor = self._paged(s.scalars(q).all(), limit, lambda r: Cursor(r.time, r.id))
            return Page([event_from_row(r) for r in rows], cursor)

    def calls(self, filters: Filters, after: Cursor | None = None, limit: int = 50) -> Page[CallEntry]:
        """Call events with their clip's codec, size and hash (not its bytes: :meth:`Store.clip` has them)."""
        limit = self._limit(limit)
        where = self._event_where(filters, after, str(Kind.CALL))
        q = (select(EventRow, ClipRow.codec, ClipRow.size, ClipRow.sha256)
             .outerjoin(ClipRow, ClipRow.event_id == EventRow.id).where(*where)
             .order_by(EventRow.time.desc(), EventRow.id.desc()).limit(limit + 1))
        with self._read() as s:
            rows, cursor = self._paged(s.execute(q).all(), limit, lambda r: Cursor(r[0].time, r[0].id))
        out = []
        for row, codec, size, sha in rows:
            e = event_from_row(row)
            duration = e.detail.get("duration_s")
            out.append(CallEntry(e, CallView(e.id, e.time, e.unit, e.channel,
                                             float(duration) if isinstance(duration, int | float) else None,
                                             codec, size, sha)))
        return Page(out, cursor)

    def all_pages(self, filters: Filters, limit: int = 50) -> list[Any]:
        """Every row, page by page (for exports and tests; a screen reads one page at a time)."""
        out: list[Any] = []
        cursor: Cursor | None = None
        while True:
            page = self.page(filters, cursor, limit)
            out.extend(page.rows)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

