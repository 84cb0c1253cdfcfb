"""What every part of the store shares: the engine and its sessions, the clock, the settings that
incidents are opened with, and the rows turned into views (bridge/views.py).

Each part (:mod:`.ingest`, :mod:`.incidents`, :mod:`.queries`) is a :class:`Database` with the methods of
its concern; every method runs in its own session and transaction, so each part is thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bridge.models import CasePartRow, ClipRow, EventRow, GatewayRow, IncidentRow, UnitRow, among, among_bound
from bridge.store.rules import CaseRules
from bridge.views import CallView, GatewayView, IncidentView, PartView, UnitView
from gateway.events import Event, Kind, Position

#: The fields of an incident's view that are its row's columns as they are.
_INCIDENT_COLUMNS = tuple(f.name for f in fields(IncidentView)
                          if f.name not in ("alias", "category", "suggested", "source", "parts"))
#: The fields of a part's view that are its row's columns as they are.
_PART_COLUMNS = tuple(f.name for f in fields(PartView))


class IncidentError(ValueError):
    """A command that cannot be applied to an incident; the message says why, for the operator."""


class ClipError(ValueError):
    """An audio clip that cannot be stored: not audio we know, too big, or not the one its event names."""


# SQLSTATE classes of a database that cannot store anything now, whatever the event: read-only
# transaction (a database switched read-only, or a standby), insufficient resources (disk full),
# operator intervention (shutting down), connection exceptions, serialization failures.
_UNAVAILABLE_SQLSTATES = ("25006", "53", "57P", "08", "40001", "40P01")


def read_only(exc: DBAPIError) -> bool:
    """The database refused to write: a session opened read-only stays so, and new ones must be opened."""
    return getattr(exc.orig, "sqlstate", None) == "25006" or "readonly database" in str(exc.orig)


def unavailable(exc: DBAPIError) -> bool:
    """The database cannot store now (and may later), as opposed to refusing one event for what it holds."""
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return True  # SQLite: locked, read-only file, disk full; PostgreSQL: connection lost, disk full
    state = getattr(exc.orig, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)


def utcnow() -> datetime:
    return datetime.now(UTC)


def call_duration(detail: object) -> float | None:
    """A call event's ``detail.duration_s`` in seconds, or None where it has none (or not a number)."""
    duration = detail.get("duration_s") if isinstance(detail, Mapping) else None
    return float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None


def event_from_row(r: EventRow) -> Event:
    position = None
    if r.lat is not None and r.lon is not None:
        position = Position(
            lat=r.lat,
            lon=r.lon,
            alt_m=r.alt_m,
            speed_mps=r.speed_mps,
            course_deg=r.course_deg,
            fix_time=r.fix_time,
            source=r.position_source or "unknown",
        )
    return Event(
        id=r.id,
        seq=r.seq,
        gateway=r.gateway,
        channel=r.channel,
        kind=Kind(r.kind),
        time=r.time,
        unit=r.unit,
        position=position,
        detail=r.detail,
    )


@cache
def _aliases_statement(dialect: str) -> Any:
    """Units' aliases, built once (incidents' views are made for every batch that moves incidents)."""
    return select(UnitRow.unit, UnitRow.alias).where(among_bound(dialect, UnitRow.unit, "units"))


class Database:
    """The engine, its sessions and the clock; the base of each part of the store."""

    def __init__(self, engine: Engine, *, incident_window_s: float = 600.0,
                 limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                 future_s: float = 300.0, clock: Callable[[], datetime] = utcnow,
                 rules: CaseRules | None = None) -> None:
        self.engine = engine
        #: The departments, case kinds and radio answers of the configuration (bridge/store/cases.py).
        self.rules = rules or CaseRules()
        #: What the store stamps its own changes with (history, updated_at, received clips): UTC.
        self.clock = clock
        self.window = timedelta(seconds=incident_window_s)
        #: An event stamped further than this ahead of the batch's arrival is not believed about its unit.
        self.future = timedelta(seconds=future_s)
        #: category -> (acknowledge within s, resolve within s); either may be None (no limit)
        self.limits = dict(limits or {})
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(pttbridge_write=True), expire_on_commit=False)
        self.dialect = engine.dialect.name
        #: gateway -> seqs above its contiguous seq that this store committed (an alert sent ahead of its
        #: gateway's beacons): the beacons that fill the hole below carry the contiguous seq past them.
        self._ahead: dict[str, frozenset[int]] = {}
        self._ahead_lock = threading.Lock()
        #: Gateways whose row this store has seen committed (rows are never deleted): no need to make it.
        self._gateways_made: set[str] = set()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write.begin() as s:
            yield s

    def _insert(self, model: Any) -> Any:
        """INSERT with ON CONFLICT support for this database (of a model class or its table)."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)

    def _dues(self, category: str, opened: datetime) -> tuple[datetime | None, datetime | None]:
        ack_s, resolve_s = self.limits.get(category, (None, None))
        return (opened + timedelta(seconds=ack_s) if ack_s else None,
                opened + timedelta(seconds=resolve_s) if resolve_s else None)

    @classmethod
    def _incident_view(cls, s: Session, r: IncidentRow) -> IncidentView:
        return cls._incident_views(s, [r])[0]

    @classmethod
    def _incident_views(cls, s: Session, rows: Sequence[IncidentRow],
                        known: Mapping[str, str | None] | None = None) -> list[IncidentView]:
        """Views of several incidents with their units' aliases read in one query, not one each; ``known``:
        aliases already read in this transaction (the ingest's locked units), not asked again."""
        aliases: dict[str, str | None] = dict(known or {})
        units = {r.unit for r in rows if r.unit and r.unit not in aliases}
        if units:
            found = s.execute(_aliases_statement(s.get_bind().dialect.name), {"units": list(units)})
            aliases.update({unit: alias for unit, alias in found})
        parts: dict[int, list[PartView]] = {}
        ids = [r.id for r in rows if r.flow is not None]  # a kind with no configured flow has no parts
        if ids:
            for p in s.scalars(select(CasePartRow).where(CasePartRow.case_id.in_(ids)).order_by(CasePartRow.id)):
                parts.setdefault(p.case_id, []).append(PartView(**{name: getattr(p, name) for name in _PART_COLUMNS}))
        return [cls._view_of(r, aliases.get(r.unit) if r.unit else None, tuple(parts.get(r.id, ()))) for r in rows]

    @staticmethod
    def _view_of(r: IncidentRow, alias: str | None, parts: tuple[PartView, ...] = ()) -> IncidentView:
        # Every field of the view is a column of the same name, but the unit's alias (from its row), the
        # parts (from theirs) and those that the database may hold as null or as a list.
        return IncidentView(**{name: getattr(r, name) for name in _INCIDENT_COLUMNS}, alias=alias,
                            category=r.category or "alert", suggested=tuple(r.suggested or ()),
                            source=r.source or "radio", parts=parts)

    @staticmethod
    def _unit_view(r: UnitRow | SimpleNamespace, online: Mapping[str, bool]) -> UnitView:
        position = None
        if r.lat is not None and r.lon is not None:
            position = Position(r.lat, r.lon, r.alt_m, r.speed_mps, r.course_deg, r.fix_time,
                                r.position_source or "unknown")
        return UnitView(
            unit=r.unit,
            alias=r.alias,
            position=position,
            last_heard=r.last_heard,
            last_kind=r.last_kind,
            last_channel=r.last_channel,
            last_gateway=r.last_gateway,
            last_event_id=r.last_event_id,
            gateway_online=online.get(r.last_gateway) if r.last_gateway else None,
        )

    @staticmethod
    def _gateway_online(s: Session, names: set[str | None]) -> dict[str, bool]:
        wanted = [n for n in names if n]
        if not wanted:
            return {}
        return {name: online for name, online in s.execute(
            select(GatewayRow.name, GatewayRow.online).where(among(s, GatewayRow.name, wanted))
        )}

    @staticmethod
    def _gateway_view(r: GatewayRow) -> GatewayView:
        return GatewayView(r.name, r.online, r.state, r.last_seq, r.contiguous_seq, r.lost, r.updated_at)

    @staticmethod
    def _calls(s: Session, ids: Sequence[str]) -> list[CallView]:
        rows = s.execute(
            select(EventRow, ClipRow.codec, ClipRow.size, ClipRow.sha256)
            .outerjoin(ClipRow, ClipRow.event_id == EventRow.id)
            .where(EventRow.id.in_(list(ids)), EventRow.kind == str(Kind.CALL))
            .order_by(EventRow.time)
        ).all()
        out = []
        for e, codec, size, sha in rows:
            out.append(CallView(e.id, e.time, e.unit, e.channel, call_duration(e.detail), codec, size, sha))
        return out
