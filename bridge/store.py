"""The bridge's storage: idempotent event ingest, unit state, seq gaps, incidents, and the console's queries.

    Store.ingest(events)        one transaction per batch: insert ... on conflict (id) do nothing, then for
                                the events that were new: units, incidents; for all: each gateway's seq
    Store.missing_ranges(gw)    the holes in a gateway's seq, for replay requests
    Store.acknowledge/resolve/add_note/set_alias     what dispatchers do, each by a named operator
    Store.request_radio_ack                          the radio is asked to acknowledge; its result comes
                                                     back as a gateway io event and lands in the history
    Store.add_clip / clip                            the audio of call events, with its SHA-256
    Store.open_incidents/units/incident_detail/...   what a console shows

Idempotency is the point: the broker redelivers whatever was not acknowledged, a gateway re-sends what it
is not sure of, and a replay repeats a range. An event id seen before changes nothing: no second row, no
second alert on an incident, no unit update. Everything a batch does commits together, so a crash between
the insert and the incident update cannot leave one without the other.

SQLite (default, WAL) and PostgreSQL behave the same here. On PostgreSQL several bridges may share one
database: rows that a batch changes are locked (``SELECT ... FOR UPDATE``, gateways then units, in name
order) so that two bridges cannot both open an incident for one unit. SQLite write transactions start
with ``BEGIN IMMEDIATE`` for the same reason.

Schema changes go through Alembic (``bridge/migrations``); :func:`migrate` applies them on start.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, Table, bindparam, case, create_engine, event, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bridge.cameras.correlation import CameraStore
from bridge.cameras.geometry import box_deg, haversine_m
from bridge.commands import INCIDENT_ID_MAX, operator_problem
from bridge.models import (
    ACKNOWLEDGED,
    BRIDGE_ACTOR,
    NEW,
    RESOLUTIONS,
    RESOLVED,
    ClipRow,
    EventRow,
    GatewayRow,
    IncidentHistoryRow,
    IncidentRow,
    UnitRow,
)
from bridge.views import CallView, GatewayView, HistoryEntry, IncidentDetail, IncidentView, UnitView
from config.private import private_sqlite
from config.schema import Config
from gateway.events import INT64_MAX, Event, Kind, Position, format_time

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x7074_7462  # "ptbr": one bridge migrates at a time on a shared PostgreSQL


class IncidentError(ValueError):
    """A command that cannot be applied to an incident; the message says why, for the operator."""


class ClipError(ValueError):
    """An audio clip that cannot be stored: not audio we know, too big, or not the one its event names."""


#: Protocols whose radios understand an emergency acknowledgement sent back to them (gateway/answer.py).
ANSWERABLE = ("mdc:", "fleetsync:")

#: Audio a clip may be, by its first bytes.
CLIP_MAGIC = {b"fLaC": "flac", b"OggS": "opus"}


# --- connection ------------------------------------------------------------------------------


def database_url(config: Config) -> str:
    """``PTTBRIDGE_DATABASE_URL``, else ``bridge.database_url``, else SQLite at ``{data_dir}/bridge.sqlite``."""
    env = os.environ.get("PTTBRIDGE_DATABASE_URL")
    if env:
        return env
    if config.bridge.database_url:
        return config.bridge.database_url
    return f"sqlite:///{config.data_dir / 'bridge.sqlite'}"


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL, full sync, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        private_sqlite(Path(parsed.database))  # positions, names, voice: the owner's alone, whatever the umask
    # One pool shared by the ingest thread and whoever queries: connections move between threads.
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite, which would BEGIN late and not at all for DDL
        # (SQLAlchemy's documented recipe); SQLAlchemy's "begin" event below emits BEGIN instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers (consoles) never block the writer
        cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the broker gets its ack
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the lock at once: a deferred one that read first could not upgrade
        # once another writer had committed (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("pttbridge_write") else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; run by every bridge on start)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def new_revision(message: str) -> None:
    """Write a new migration into ``bridge/migrations/versions`` from what the models say now
    (for developers; compared against a scratch SQLite database at the current head)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.sqlite")
        migrate(engine)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True)
        engine.dispose()


# --- what the store hands out ----------------------------------------------------------------


def _iso(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


@dataclass(frozen=True, slots=True)
class GapReport:
    gateway: str
    contiguous_seq: int  # everything up to here is stored (or given up)
    last_seq: int  # the highest seq stored
    holes: list[tuple[int, int]]  # inclusive ranges missing between the two, lowest first


@dataclass(slots=True)
class IngestResult:
    stored: list[str] = field(default_factory=list)  # ids of events new to the database
    duplicates: int = 0  # events already stored (redeliveries, replays)
    units: list[UnitView] = field(default_factory=list)  # units whose state changed
    incidents: list[tuple[IncidentView, str]] = field(default_factory=list)  # (incident, "opened" | "alert" | ...)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # seq jumps seen in this batch
    # Events whose id is stored already (or came twice in this batch) with other content: not stored, an
    # anomaly (a gateway numbering wrong, or a forgery). A redelivery of the same content is not one.
    conflicts: list[Event] = field(default_factory=list)


# --- the store -------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _event_row(e: Event, received_at: datetime) -> dict[str, Any]:
    p = e.position
    return {
        "id": e.id,
        "gateway": e.gateway,
        "seq": e.seq,
        "channel": e.channel,
        "kind": str(e.kind),
        "time": e.time,
        "unit": e.unit,
        "lat": p.lat if p else None,
        "lon": p.lon if p else None,
        "alt_m": p.alt_m if p else None,
        "speed_mps": p.speed_mps if p else None,
        "course_deg": p.course_deg if p else None,
        "fix_time": p.fix_time if p else None,
        "position_source": p.source if p else None,
        "detail": dict(e.detail),
        "received_at": received_at,
    }


def _event_from_row(r: EventRow) -> Event:
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


def _label(e: Event) -> str | None:
    """What raised the alert, in a dispatcher's words: the channel rule's label, else the protocol's."""
    for key in ("rule", "label", "text"):
        value = e.detail.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    # The decoder's own word for it (Kenwood "meaning", a Mic-E message), said with what carried it.
    protocol = e.detail.get("protocol")
    for key in ("meaning", "mic_e_message"):
        value = e.detail.get(key)
        if isinstance(value, str) and value:
            return f"{protocol or ''} {value.replace('_', ' ')}".strip()[:200]
    return protocol if isinstance(protocol, str) else None


def _operator(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise IncidentError("operator: every change is made by a named operator, got none")
    problem = operator_problem(name)
    if problem is not None:
        raise IncidentError(f"operator: {problem}")
    return name.strip()


class Store:
    """The bridge's database. Thread-safe: every method runs in its own session and transaction."""

    def __init__(self, engine: Engine, *, incident_window_s: float = 600.0,
                 limits: Mapping[str, tuple[float | None, float | None]] | None = None,
                 future_s: float = 300.0) -> None:
        self.engine = engine
        self.window = timedelta(seconds=incident_window_s)
        #: An event stamped further than this ahead of the batch's arrival is not believed about its unit.
        self.future = timedelta(seconds=future_s)
        #: category -> (acknowledge within s, resolve within s); either may be None (no limit)
        self.limits = dict(limits or {})
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(pttbridge_write=True), expire_on_commit=False)
        self.dialect = engine.dialect.name

    @classmethod
    def open(cls, url: str, *, incident_window_s: float = 600.0, migrate_schema: bool = True,
             limits: Mapping[str, tuple[float | None, float | None]] | None = None, future_s: float = 300.0) -> Store:
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine, incident_window_s=incident_window_s, limits=limits, future_s=future_s)

    def _dues(self, category: str, opened: datetime) -> tuple[datetime | None, datetime | None]:
        ack_s, resolve_s = self.limits.get(category, (None, None))
        return (opened + timedelta(seconds=ack_s) if ack_s else None,
                opened + timedelta(seconds=resolve_s) if resolve_s else None)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write.begin() as s:
            yield s

    def _insert(self, model: Any) -> Any:
        """INSERT with ON CONFLICT support for this database (of a model class or its table)."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(model)

    # --- ingest ------------------------------------------------------------------------------

    def ingest(self, events: Sequence[Event], received_at: datetime | None = None) -> IngestResult:
        """Store a batch of valid events in one transaction; the result says what changed."""
        now = received_at or _utcnow()
        result = IngestResult()
        firsts: dict[str, Event] = {}
        for e in events:  # a redelivery may repeat an id within a batch; the first of them counts
            held = firsts.setdefault(e.id, e)
            if held != e:
                result.conflicts.append(e)
        unique = list(firsts.values())
        if not unique:
            return result
        with self._writing() as s:
            # The gateways' rows are locked first: two bridges handed the same event (a redelivery to
            # a shared group) take turns here, and the second finds it already stored.
            gateways = self._lock_gateways(s, [e.gateway for e in unique], now)
            known = set(s.scalars(select(EventRow.id).where(EventRow.id.in_([e.id for e in unique]))))
            if known:  # rare (redeliveries, replays): is it the same event, or an id used again?
                for row in s.scalars(select(EventRow).where(EventRow.id.in_(known))):
                    if _event_from_row(row) != firsts[row.id]:
                        result.conflicts.append(firsts[row.id])
            new = [e for e in unique if e.id not in known]
            if new:
                # A plain executemany: SQLite and psycopg each batch one prepared statement. (A RETURNING
                # insert goes through a huge multi-row VALUES that psycopg re-parses on every batch.)
                s.execute(
                    self._insert(EventRow.__table__).on_conflict_do_nothing(index_elements=["id"]),
                    [_event_row(e, now) for e in new],
                )
            result.stored = [e.id for e in new]
            result.duplicates = len(events) - len(new)
            result.gaps = self._track_seq(gateways, unique, now)
            result.units = self._update_units(s, new, now)
            result.incidents = self._update_incidents(s, [e for e in new if e.kind == Kind.ALERT], now)
            result.incidents += self._radio_answers(s, [e for e in new if e.kind == Kind.IO], now)
            result.incidents += [(i, "position") for i in self._follow_units(s, result.units, now)]
        return result

    def _follow_units(self, s: Session, units: Sequence[UnitView], now: datetime) -> list[IncidentView]:
        """Open incidents of these units whose position is older than the unit's newest one take it: a
        beacon after the alert says better where the officer is. In the ingest's own transaction, one
        query for the batch, and none when no unit moved."""
        fixes = {u.unit: u.position for u in units if u.position is not None and u.position.fix_time is not None}
        if not fixes:
            return []
        out = []
        rows = s.scalars(select(IncidentRow).where(IncidentRow.unit.in_(list(fixes)),
                                                   IncidentRow.state != RESOLVED).with_for_update()).all()
        for row in rows:
            p = fixes[row.unit or ""]
            assert p is not None and p.fix_time is not None
            if row.position_time is None or row.position_time < p.fix_time:
                row.lat, row.lon, row.position_time = p.lat, p.lon, p.fix_time
                row.updated_at = now
                s.flush()
                out.append(self._incident_view(s, row))
        return out

    def _radio_answers(self, s: Session, events: Sequence[Event], now: datetime) -> list[tuple[IncidentView, str]]:
        """A gateway's report of the acknowledgement it transmitted goes into the incident's history."""
        out = []
        for e in events:
            incident_id = e.detail.get("incident")
            if e.detail.get("command") != "ack_emergency" or isinstance(incident_id, bool) \
                    or not isinstance(incident_id, int) or not 0 < incident_id <= INCIDENT_ID_MAX:
                continue
            row = s.get(IncidentRow, incident_id)
            if row is None:
                log.warning("gateway %s answered for incident %s, which does not exist", e.gateway, incident_id)
                continue
            result, reason = e.detail.get("result"), e.detail.get("reason")
            note = f"{result} by {e.gateway}/{e.channel}" + (f": {reason}" if reason else "")
            s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="radio_ack",
                                     note=note[:4000], event_id=e.id))
            row.updated_at = now
            s.flush()
            out.append((self._incident_view(s, row), "radio_ack"))
        return out

    def _lock_gateways(self, s: Session, names: Sequence[str], now: datetime) -> dict[str, GatewayRow]:
        names = sorted(set(names))
        s.execute(
            self._insert(GatewayRow.__table__).on_conflict_do_nothing(index_elements=["name"]),
            [{"name": n, "online": False, "last_seq": 0, "contiguous_seq": 0, "lost": 0, "updated_at": now}
             for n in names],
        )
        rows = s.scalars(
            select(GatewayRow).where(GatewayRow.name.in_(names)).order_by(GatewayRow.name).with_for_update()
        )
        return {r.name: r for r in rows}

    @staticmethod
    def _track_seq(
        locked: Mapping[str, GatewayRow], events: Sequence[Event], now: datetime
    ) -> dict[str, list[tuple[int, int]]]:
        by_gateway: dict[str, set[int]] = {}
        for e in events:
            by_gateway.setdefault(e.gateway, set()).add(e.seq)
        gaps: dict[str, list[tuple[int, int]]] = {}
        for name, row in locked.items():
            seqs = sorted(by_gateway[name])
            last = row.last_seq
            for q in seqs:
                if q > last + 1:
                    gaps.setdefault(name, []).append((last + 1, q - 1))
                last = max(last, q)
            # The usual case, events in order with nothing missing, advances here without a query;
            # a hole filled by a replay is noticed by missing_ranges().
            contiguous = row.contiguous_seq
            for q in seqs:
                if q == contiguous + 1:
                    contiguous = q
                elif q > contiguous + 1:
                    break
            row.last_seq = last
            row.contiguous_seq = contiguous
            row.updated_at = now
        return gaps

    def _update_units(self, s: Session, events: Sequence[Event], now: datetime) -> list[UnitView]:
        """Each unit's newest state. An event's time is its gateway's word, and no time past ``now`` (the
        bridge's clock when the batch arrived) is taken, neither from an event nor from what is stored: a
        gateway whose clock runs ahead, or a beacon dated 9999, would otherwise hold a unit's state against
        every later beacon of the real radio. An event stamped more than ``future`` ahead is not believed
        about its unit at all (it is stored, and counted by the bridge): its clock, or its sender, is wrong."""
        heard = sorted((e for e in events if e.unit and e.time <= now + self.future),
                       key=lambda e: (min(e.time, now), e.seq))
        if not heard:
            return []
        names = sorted({e.unit for e in heard if e.unit})
        s.execute(
            self._insert(UnitRow.__table__).on_conflict_do_nothing(index_elements=["unit"]),
            [{"unit": n, "updated_at": now} for n in names],
        )
        # Plain rows and one executemany UPDATE: the ORM's per-object flush cost more than the insert.
        units = cast(Table, UnitRow.__table__)
        rows = {r["unit"]: dict(r) for r in s.execute(
            select(units).where(units.c.unit.in_(names)).order_by(units.c.unit).with_for_update()
        ).mappings()}
        changed: set[str] = set()
        for e in heard:
            assert e.unit is not None
            r = rows[e.unit]
            # Replays and redeliveries arrive late: an older event never overwrites newer state.
            heard_at = min(e.time, now)
            if r["last_heard"] is None or r["last_heard"] > now or heard_at >= r["last_heard"]:
                r.update(last_heard=heard_at, last_kind=str(e.kind), last_channel=e.channel, last_gateway=e.gateway,
                         last_event_id=e.id)
                changed.add(e.unit)
            p = e.position
            fix = min(p.fix_time or e.time, now) if p else None
            if p is not None and fix is not None and (r["fix_time"] is None or r["fix_time"] > now
                                                      or fix >= r["fix_time"]):
                r.update(lat=p.lat, lon=p.lon, alt_m=p.alt_m, speed_mps=p.speed_mps, course_deg=p.course_deg,
                         position_source=p.source, fix_time=fix)
                changed.add(e.unit)
        if changed:
            columns = [c.key for c in units.c if c.key not in ("unit", "alias")]
            s.execute(
                update(units).where(units.c.unit == bindparam("key")).values({c: bindparam(c) for c in columns}),
                [{"key": n, **{c: rows[n][c] for c in columns if c != "updated_at"}, "updated_at": now}
                 for n in sorted(changed)],
            )
        online = self._gateway_online(s, {rows[n]["last_gateway"] for n in changed})
        return [self._unit_view(SimpleNamespace(**rows[n]), online) for n in sorted(changed)]

    @staticmethod
    def _gateway_online(s: Session, names: set[str | None]) -> dict[str, bool]:
        wanted = [n for n in names if n]
        if not wanted:
            return {}
        return {name: online for name, online in s.execute(
            select(GatewayRow.name, GatewayRow.online).where(GatewayRow.name.in_(wanted))
        )}

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

    def _update_incidents(self, s: Session, alerts: Sequence[Event], now: datetime) -> list[tuple[IncidentView, str]]:
        changes: dict[int, str] = {}
        rows: dict[int, IncidentRow] = {}
        # Callers hold the unit's row lock (or, for an alert with no unit, the gateway's), taken in
        # _update_units / _track_seq: two bridges cannot both open an incident for one unit.
        for e in sorted(alerts, key=lambda e: (e.time, e.seq)):
            # A gateway whose clock runs ahead must not open incidents in the future: their deadlines
            # would pass hours late. A clock behind only makes an alert look older, which is safe.
            when = min(e.time, now)
            q = select(IncidentRow).where(IncidentRow.state != RESOLVED)
            if e.unit is not None:
                q = q.where(IncidentRow.unit == e.unit)
            else:  # a wired input: no radio identity, so the same input is the same gateway and channel
                q = q.where(IncidentRow.unit.is_(None), IncidentRow.gateway == e.gateway,
                            IncidentRow.channel == e.channel)
            # An alert joins an open incident whose alerts are within the window of its own time.
            q = q.where(IncidentRow.last_alert_at >= when - self.window,
                        IncidentRow.opened_at <= when + self.window)
            row = s.scalars(q.order_by(IncidentRow.last_alert_at.desc()).limit(1)).first()
            position = self._alert_position(s, e, now)
            if row is None:
                ack_due, resolve_due = self._dues("alert", when)
                row = IncidentRow(
                    category="alert",
                    ack_due=ack_due,
                    resolve_due=resolve_due,
                    unit=e.unit,
                    gateway=e.gateway,
                    channel=e.channel,
                    state=NEW,
                    label=_label(e),
                    opened_at=when,
                    first_event_id=e.id,
                    last_event_id=e.id,
                    last_alert_at=when,
                    alert_count=1,
                    lat=position[0] if position else None,
                    lon=position[1] if position else None,
                    position_time=position[2] if position else None,
                    last_announced=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()  # the id, and the next alert of this unit in this batch finds it
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="opened",
                                         note=row.label, event_id=e.id))
                changes[row.id] = "opened"
            else:
                row.alert_count += 1
                if when >= row.last_alert_at:
                    row.last_alert_at = when
                    row.last_event_id = e.id
                    row.gateway, row.channel = e.gateway, e.channel
                if when < row.opened_at:  # a replayed alert older than the first one seen
                    row.opened_at = when
                    row.first_event_id = e.id
                if position and (row.position_time is None or position[2] >= row.position_time):
                    row.lat, row.lon, row.position_time = position
                row.last_announced = now
                row.updated_at = now
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="alert",
                                         event_id=e.id))
                changes.setdefault(row.id, "alert")
            rows[row.id] = row
        s.flush()
        views = dict(zip(changes, self._incident_views(s, [rows[i] for i in changes]), strict=True))
        return [(views[i], change) for i, change in changes.items()]

    @staticmethod
    def _alert_position(s: Session, e: Event, now: datetime) -> tuple[float, float, datetime] | None:
        """Where the alert came from: its own position (its time no later than now, as for units), else the
        unit's last known one."""
        if e.position is not None:
            return e.position.lat, e.position.lon, min(e.position.fix_time or e.time, now)
        if e.unit is not None:
            unit = s.get(UnitRow, e.unit)
            if unit is not None and unit.lat is not None and unit.lon is not None and unit.fix_time is not None:
                return unit.lat, unit.lon, unit.fix_time
        return None

    @classmethod
    def _incident_view(cls, s: Session, r: IncidentRow) -> IncidentView:
        return cls._incident_views(s, [r])[0]

    @classmethod
    def _incident_views(cls, s: Session, rows: Sequence[IncidentRow]) -> list[IncidentView]:
        """Views of several incidents with their units' aliases read in one query, not one each."""
        units = {r.unit for r in rows if r.unit}
        aliases: dict[str, str | None] = {}
        if units:
            found = s.execute(select(UnitRow.unit, UnitRow.alias).where(UnitRow.unit.in_(units)))
            aliases = {unit: alias for unit, alias in found}
        return [cls._view_of(r, aliases.get(r.unit) if r.unit else None) for r in rows]

    @staticmethod
    def _view_of(r: IncidentRow, alias: str | None) -> IncidentView:
        return IncidentView(
            id=r.id,
            state=r.state,
            resolution=r.resolution,
            unit=r.unit,
            alias=alias,
            gateway=r.gateway,
            channel=r.channel,
            label=r.label,
            opened_at=r.opened_at,
            acknowledged_at=r.acknowledged_at,
            acknowledged_by=r.acknowledged_by,
            resolved_at=r.resolved_at,
            resolved_by=r.resolved_by,
            first_event_id=r.first_event_id,
            last_event_id=r.last_event_id,
            last_alert_at=r.last_alert_at,
            alert_count=r.alert_count,
            lat=r.lat,
            lon=r.lon,
            position_time=r.position_time,
            updated_at=r.updated_at,
            category=r.category or "alert",
            ack_due=r.ack_due,
            resolve_due=r.resolve_due,
            escalated=r.escalated,
            escalated_at=r.escalated_at,
            suggested=tuple(r.suggested or ()),
            assigned_unit=r.assigned_unit,
        )

    # --- gateways and gaps -------------------------------------------------------------------

    def note_gateway_state(self, name: str, payload: Mapping[str, Any], now: datetime | None = None) -> GatewayView:
        """Record a gateway's retained state message (``online`` true or false, and its health)."""
        now = now or _utcnow()
        with self._writing() as s:
            row = self._lock_gateways(s, [name], now)[name]
            row.online = payload.get("online") is True
            row.state = dict(payload)
            row.updated_at = now
            return self._gateway_view(row)

    def missing_ranges(self, gateway: str, *, limit: int = 1000) -> GapReport:
        """The holes in ``gateway``'s seq between what is known complete and the highest stored.

        Advances the gateway's contiguous mark past whatever replays have filled meanwhile.
        """
        with self._writing() as s:
            row = s.scalars(select(GatewayRow).where(GatewayRow.name == gateway).with_for_update()).first()
            if row is None:
                return GapReport(gateway, 0, 0, [])
            lo, hi = row.contiguous_seq, row.last_seq
            if hi <= lo:
                return GapReport(gateway, lo, hi, [])
            window = (EventRow.gateway == gateway, EventRow.seq > lo, EventRow.seq <= hi)
            first = s.scalar(select(func.min(EventRow.seq)).where(*window))
            holes: list[tuple[int, int]] = []
            if first is None:
                holes.append((lo + 1, hi))
            else:
                if first > lo + 1:
                    holes.append((lo + 1, first - 1))
                # Each stored seq followed by a jump: one index scan over the window, in the database.
                ordered = select(
                    EventRow.seq.label("seq"), func.lead(EventRow.seq).over(order_by=EventRow.seq).label("nxt")
                ).where(*window).subquery()
                jumps = s.execute(
                    select(ordered.c.seq, ordered.c.nxt)
                    .where(ordered.c.nxt > ordered.c.seq + 1)
                    .order_by(ordered.c.seq)
                    .limit(limit)
                )
                holes.extend((a + 1, b - 1) for a, b in jumps)
            row.contiguous_seq = holes[0][0] - 1 if holes else hi
            return GapReport(gateway, row.contiguous_seq, hi, holes[:limit])

    def mark_lost(self, gateway: str, first: int, last: int) -> int:
        """Give up on ``first..last`` (no replay brought them); returns how many of them are not stored."""
        now = _utcnow()
        with self._writing() as s:
            row = self._lock_gateways(s, [gateway], now)[gateway]
            stored = s.scalar(
                select(func.count(func.distinct(EventRow.seq))).where(
                    EventRow.gateway == gateway, EventRow.seq >= first, EventRow.seq <= last
                )
            ) or 0
            missing = (last - first + 1) - stored
            row.lost = min(row.lost + missing, INT64_MAX)  # a BIGINT, like every seq
            row.last_seq = max(row.last_seq, last)
            if first <= row.contiguous_seq + 1:
                row.contiguous_seq = max(row.contiguous_seq, last)
            row.updated_at = now
            return missing

    def gateways(self) -> list[GatewayView]:
        with self._read() as s:
            return [self._gateway_view(r) for r in s.scalars(select(GatewayRow).order_by(GatewayRow.name))]

    @staticmethod
    def _gateway_view(r: GatewayRow) -> GatewayView:
        return GatewayView(r.name, r.online, r.state, r.last_seq, r.contiguous_seq, r.lost, r.updated_at)

    # --- what operators do -------------------------------------------------------------------

    def acknowledge(self, incident_id: int, operator: str, note: str | None = None) -> IncidentView:
        """new -> acknowledged, by ``operator``."""
        return self._change(incident_id, "ack", operator, note=note)

    def resolve(self, incident_id: int, operator: str, resolution: str, note: str | None = None) -> IncidentView:
        """new or acknowledged -> resolved, with a resolution (handled | false_alarm), by ``operator``."""
        if resolution not in RESOLUTIONS:
            raise IncidentError(f"resolution: expected one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
        return self._change(incident_id, "resolve", operator, resolution=resolution, note=note)

    def assign(self, incident_id: int, operator: str, unit: str) -> IncidentView:
        """Send ``unit`` to the incident (acknowledging it on the way: who sends someone has seen it)."""
        if not isinstance(unit, str) or not unit.strip() or len(unit) > 64:
            raise IncidentError("unit: expected the unit sent, e.g. mdc:1234 or a patrol car's name")
        return self._change(incident_id, "assign", operator, note=unit.strip())

    def add_note(self, incident_id: int, operator: str, note: str) -> IncidentView:
        if not isinstance(note, str) or not note.strip():
            raise IncidentError("note: expected some text")
        return self._change(incident_id, "note", operator, note=note)

    # (action, state) -> new state; an action not listed for a state is refused.
    _TRANSITIONS: Mapping[tuple[str, str], str] = {
        ("ack", NEW): ACKNOWLEDGED,
        # Resolving a new incident acknowledges it on the way: the operator who closes it has seen it.
        ("resolve", NEW): RESOLVED,
        ("resolve", ACKNOWLEDGED): RESOLVED,
        ("assign", NEW): ACKNOWLEDGED,
        ("assign", ACKNOWLEDGED): ACKNOWLEDGED,
        ("note", NEW): NEW,
        ("note", ACKNOWLEDGED): ACKNOWLEDGED,
        ("note", RESOLVED): RESOLVED,
    }

    def _change(
        self, incident_id: int, action: str, operator: str, *, resolution: str | None = None, note: str | None = None
    ) -> IncidentView:
        who = _operator(operator)
        if note is not None and (not isinstance(note, str) or len(note) > 4000):
            raise IncidentError("note: expected text of at most 4000 characters")
        now = _utcnow()
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise IncidentError(f"incident {incident_id}: no such incident")
            target = self._TRANSITIONS.get((action, row.state))
            if target is None:
                verb = {"ack": "acknowledged", "resolve": "resolved", "assign": "assigned a unit"}[action]
                raise IncidentError(f"incident {incident_id} is {row.state}; it cannot be {verb}")
            if target in (ACKNOWLEDGED, RESOLVED) and row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = now, who
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="acknowledged",
                                         note=note if action == "ack" else None))
            if target == RESOLVED:
                row.resolved_at, row.resolved_by, row.resolution = now, who, resolution
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="resolved",
                                         note=f"{resolution}: {note}" if note else resolution))
            if action == "note":
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="note", note=note))
            if action == "assign":
                row.assigned_unit = note
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="assigned", note=note))
            row.state = target
            row.updated_at = now
            s.flush()
            return self._incident_view(s, row)

    def request_radio_ack(self, incident_id: int, operator: str) -> tuple[IncidentView, dict[str, Any]] | None:
        """If the incident's radio can be told its emergency was acknowledged, record that it is being
        asked and return the command for the gateway that heard the last alert (gateway, channel, unit)."""
        who = _operator(operator)
        now = _utcnow()
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None or row.unit is None or not row.unit.startswith(ANSWERABLE):
                return None
            s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="radio_ack",
                                     note=f"requested from {row.gateway}/{row.channel}"))
            row.updated_at = now
            s.flush()
            command = {"incident": row.id, "unit": row.unit, "gateway": row.gateway, "channel": row.channel,
                       "operator": who}
            # How the unit signalled (e.g. FleetSync I or II, 1200 or 2400 bps): answer it the same way.
            last = s.get(EventRow, row.last_event_id)
            if last is not None and isinstance(last.detail, dict):
                command["signalling"] = {k: last.detail[k] for k in ("protocol", "version", "baud") if k in last.detail}
            return self._incident_view(s, row), command

    def add_clip(self, gateway: str, event_id: str, data: bytes, *, max_bytes: int = 8 << 20) -> CallView:
        """Store the audio of a call event (idempotent). The clip must be FLAC or Ogg Opus, and when its
        event is already stored and names a hash, the bytes must have that hash."""
        codec = CLIP_MAGIC.get(data[:4])
        if codec is None:
            raise ClipError(f"not FLAC or Ogg audio (starts {data[:8].hex(' ')})")
        if len(data) > max_bytes:
            raise ClipError(f"{len(data)} bytes exceeds the {max_bytes}-byte limit")
        digest = hashlib.sha256(data).hexdigest()
        with self._writing() as s:
            event_row = s.get(EventRow, event_id)
            if event_row is not None:
                if event_row.gateway != gateway:
                    raise ClipError(f"event {event_id} is from gateway {event_row.gateway}, not {gateway}")
                audio = event_row.detail.get("audio") if isinstance(event_row.detail, dict) else None
                named = audio.get("sha256") if isinstance(audio, dict) else None
                if named is not None and named != digest:
                    raise ClipError(f"SHA-256 {digest[:16]}... is not the {str(named)[:16]}... its call event names")
            s.execute(
                self._insert(ClipRow.__table__).on_conflict_do_nothing(index_elements=["event_id"]),
                [{"event_id": event_id, "gateway": gateway, "codec": codec, "size": len(data), "sha256": digest,
                  "data": data, "received_at": _utcnow()}],
            )
            calls = self._calls(s, [event_id])
        return calls[0] if calls else CallView(event_id, _utcnow(), None, "", None, codec, len(data), digest)

    def clip(self, event_id: str) -> tuple[str, bytes] | None:
        """(codec, bytes) of a call's audio."""
        with self._read() as s:
            row = s.get(ClipRow, event_id)
            return (row.codec, row.data) if row is not None else None

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
            duration = e.detail.get("duration_s") if isinstance(e.detail, dict) else None
            out.append(CallView(e.id, e.time, e.unit, e.channel,
                                float(duration) if isinstance(duration, int | float) else None, codec, size, sha))
        return out

    # --- street events, nearest units, time limits ---------------------------------------------

    def add_history(self, incident_id: int, action: str, note: str, actor: str = BRIDGE_ACTOR) -> IncidentView | None:
        """Something the bridge did for an incident (fetched evidence, say), in its history."""
        now = _utcnow()
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                return None
            s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=actor, action=action, note=note[:4000]))
            row.updated_at = now
            s.flush()
            return self._incident_view(s, row)

    def open_street_incident(self, category: str, camera: str, label: str, at: datetime, lat: float | None,
                             lon: float | None, detection_id: int) -> tuple[IncidentView, str]:
        """A camera's detection of a street event: a new incident, or another sighting of the open one of
        that category at that camera (within the incident window). Street incidents have no unit; their
        place is the camera (gateway "camera", channel = the camera id)."""
        now = _utcnow()
        with self._writing() as s:
            row = s.scalars(
                select(IncidentRow).where(IncidentRow.state != RESOLVED, IncidentRow.category == category,
                                          IncidentRow.gateway == "camera", IncidentRow.channel == camera,
                                          IncidentRow.last_alert_at >= at - self.window)
                .order_by(IncidentRow.last_alert_at.desc()).limit(1).with_for_update()
            ).first()
            note = f"{category.replace('_', ' ')} seen by {camera} ({label})"
            if row is None:
                ack_due, resolve_due = self._dues(category, at)
                row = IncidentRow(unit=None, gateway="camera", channel=camera, state=NEW, label=note[:200],
                                  category=category, opened_at=at, first_event_id=f"det-{detection_id}",
                                  last_event_id=f"det-{detection_id}", last_alert_at=at, alert_count=1, lat=lat,
                                  lon=lon, position_time=at if lat is not None else None, last_announced=now,
                                  ack_due=ack_due, resolve_due=resolve_due, updated_at=now)
                s.add(row)
                s.flush()
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="opened", note=note))
                change = "opened"
            else:
                row.alert_count += 1
                row.last_alert_at = max(row.last_alert_at, at)
                row.last_event_id = f"det-{detection_id}"
                row.updated_at = now
                change = "alert"
            s.flush()
            return self._incident_view(s, row), change

    def open_incidents_near(self, lat: float, lon: float, at: datetime, *, near_m: float,
                            window_s: float) -> list[IncidentView]:
        """Open incidents with a position within ``near_m`` whose last alert is within ``window_s`` of ``at``:
        the ones a new detection there may concern."""
        window = timedelta(seconds=window_s)
        dlat, dlon = box_deg(lat, near_m)
        with self._read() as s:
            rows = s.scalars(select(IncidentRow).where(
                IncidentRow.state != RESOLVED, IncidentRow.last_alert_at.between(at - window, at + window),
                IncidentRow.lat.between(lat - dlat, lat + dlat), IncidentRow.lon.between(lon - dlon, lon + dlon),
            )).all()
            near = [r for r in rows if r.lat is not None and r.lon is not None
                    and haversine_m(lat, lon, r.lat, r.lon) <= near_m]
            return self._incident_views(s, near)

    def nearest_units(self, lat: float, lon: float, *, limit: int = 3, max_age_s: float = 900.0,
                      now: datetime | None = None) -> list[dict[str, Any]]:
        """Units heard recently with a position, nearest first: whom to send."""
        now = now or _utcnow()
        with self._read() as s:
            rows = s.execute(
                select(UnitRow.unit, UnitRow.alias, UnitRow.lat, UnitRow.lon, UnitRow.last_heard)
                .where(UnitRow.lat.is_not(None), UnitRow.lon.is_not(None),
                       UnitRow.last_heard >= now - timedelta(seconds=max_age_s))
            ).all()
        ranked = sorted((haversine_m(lat, lon, r.lat, r.lon), r) for r in rows)
        return [{"unit": r.unit, "alias": r.alias, "distance_m": round(d, 1), "heard": _iso(r.last_heard)}
                for d, r in ranked[:limit]]

    def suggest(self, incident_id: int, units: list[dict[str, Any]]) -> IncidentView | None:
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                return None
            row.suggested = units
            row.updated_at = _utcnow()
            s.flush()
            return self._incident_view(s, row)

    def escalate_due(self, now: datetime | None = None) -> list[IncidentView]:
        """Incidents past their time limit: marked, written into the history, returned once per limit."""
        now = now or _utcnow()
        out = []
        with self._writing() as s:
            ack_late = (IncidentRow.state == NEW) & (IncidentRow.ack_due < now) & IncidentRow.escalated.is_(None)
            resolve_late = (IncidentRow.state != RESOLVED) & (IncidentRow.resolve_due < now) & or_(
                IncidentRow.escalated.is_(None), IncidentRow.escalated != "resolve")
            for row in s.scalars(select(IncidentRow).where(or_(ack_late, resolve_late)).with_for_update()).all():
                late = "resolve" if row.resolve_due is not None and row.resolve_due < now else "ack"
                if row.escalated == late:
                    continue
                due = row.resolve_due if late == "resolve" else row.ack_due
                assert due is not None
                limit_s = (due - row.opened_at).total_seconds()
                verb = "resolved" if late == "resolve" else "acknowledged"
                row.escalated, row.escalated_at, row.updated_at = late, now, now
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="escalated",
                                         note=f"not {verb} within {limit_s:g} s"))
                s.flush()
                out.append(self._incident_view(s, row))
        return out

    def set_alias(self, unit: str, alias: str | None) -> UnitView:
        """Name the officer or vehicle behind a radio identity (None clears it)."""
        now = _utcnow()
        with self._writing() as s:
            s.execute(
                self._insert(UnitRow).values([{"unit": unit, "updated_at": now}])
                .on_conflict_do_nothing(index_elements=["unit"])
            )
            row = s.get(UnitRow, unit, with_for_update=True)
            assert row is not None
            row.alias = (alias.strip() or None) if alias else None
            row.updated_at = now
            return self._unit_view(row, self._gateway_online(s, {row.last_gateway}))

    def due_announcements(self, every_s: float, now: datetime | None = None) -> list[IncidentView]:
        """New (unacknowledged) incidents not announced for ``every_s``; each is claimed, so that of
        several bridges on one database only one re-announces it."""
        now = now or _utcnow()
        cutoff = now - timedelta(seconds=every_s)
        due_when = or_(IncidentRow.last_announced.is_(None), IncidentRow.last_announced <= cutoff)
        out = []
        with self._writing() as s:
            ids = s.scalars(select(IncidentRow.id).where(IncidentRow.state == NEW, due_when).order_by(IncidentRow.id))
            for incident_id in list(ids):
                claimed = s.execute(
                    update(IncidentRow)
                    .where(IncidentRow.id == incident_id, IncidentRow.state == NEW, due_when)
                    .values(last_announced=now)
                    .execution_options(synchronize_session=False)
                )
                if getattr(claimed, "rowcount", 0) == 1:
                    row = s.get(IncidentRow, incident_id, populate_existing=True)
                    if row is not None:
                        out.append(self._incident_view(s, row))
        return out

    # --- what consoles show ------------------------------------------------------------------

    def unacknowledged(self) -> int:
        """How many incidents nobody has acknowledged yet (the command-center beacon is lit while any)."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.state == NEW)) or 0)

    def open_incidents(self, limit: int = 200) -> list[IncidentView]:
        """Incidents not yet resolved, newest first."""
        return self.incidents(include_resolved=False, limit=limit)

    def incidents(self, *, include_resolved: bool = True, limit: int = 200) -> list[IncidentView]:
        """Incidents, newest first."""
        with self._read() as s:
            q = select(IncidentRow)
            if not include_resolved:
                q = q.where(IncidentRow.state != RESOLVED)
            rows = s.scalars(q.order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc()).limit(limit)).all()
            return self._incident_views(s, rows)

    def incident(self, incident_id: int) -> IncidentView | None:
        with self._read() as s:
            row = s.get(IncidentRow, incident_id)
            return self._incident_view(s, row) if row is not None else None

    def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        """An incident with its history (oldest first) and its alert events (oldest first)."""
        with self._read() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                return None
            history = s.scalars(
                select(IncidentHistoryRow)
                .where(IncidentHistoryRow.incident_id == incident_id)
                .order_by(IncidentHistoryRow.at, IncidentHistoryRow.id)
            ).all()
            alert_ids = [h.event_id for h in history if h.event_id]
            alerts = s.scalars(
                select(EventRow).where(EventRow.id.in_(alert_ids), EventRow.kind == str(Kind.ALERT))
                .order_by(EventRow.time, EventRow.id)
            ).all() if alert_ids else []
            call_ids = {str(a.detail["call"]) for a in alerts if isinstance(a.detail, dict) and a.detail.get("call")}
            return IncidentDetail(
                incident=self._incident_view(s, row),
                history=[HistoryEntry(h.at, h.actor, h.action, h.note, h.event_id) for h in history],
                alerts=[_event_from_row(e) for e in alerts],
                calls=self._calls(s, sorted(call_ids)) if call_ids else [],
                correlation=CameraStore(self.engine).correlation(incident_id),
            )

    def units(self, limit: int | None = None) -> list[UnitView]:
        """Every unit heard, most recently heard first."""
        with self._read() as s:
            q = select(UnitRow, GatewayRow.online).outerjoin(GatewayRow, GatewayRow.name == UnitRow.last_gateway)
            q = q.order_by(case((UnitRow.last_heard.is_(None), 1), else_=0), UnitRow.last_heard.desc(), UnitRow.unit)
            rows = s.execute(q.limit(limit)).all()
            return [self._unit_view(r, {r.last_gateway: online} if r.last_gateway and online is not None else {})
                    for r, online in rows]

    def unit(self, unit: str) -> UnitView | None:
        with self._read() as s:
            row = s.get(UnitRow, unit)
            return self._unit_view(row, self._gateway_online(s, {row.last_gateway})) if row is not None else None

    def recent_events(self, limit: int = 100, *, unit: str | None = None) -> list[Event]:
        """The latest events (newest first), of one unit if given."""
        with self._read() as s:
            q = select(EventRow)
            if unit is not None:
                q = q.where(EventRow.unit == unit)
            rows = s.scalars(q.order_by(EventRow.time.desc(), EventRow.id.desc()).limit(limit))
            return [_event_from_row(r) for r in rows]

    def count_events(self, gateway: str | None = None) -> int:
        with self._read() as s:
            q = select(func.count()).select_from(EventRow)
            if gateway is not None:
                q = q.where(EventRow.gateway == gateway)
            return int(s.scalar(q) or 0)
