"""Ingest: events stored idempotently in one transaction per batch, and what they change: each unit's
last state, incidents opened and joined by alerts, radios' answers, each gateway's seq; gateways' states,
the holes in their seq, and the audio clips of calls.

    Ingest.ingest(events)        insert ... on conflict (id) do nothing, then for the events that were new:
                                 units, incidents; for all: each gateway's seq
    Ingest.missing_ranges(gw)    the holes in a gateway's seq, for replay requests
    Ingest.add_clip              the audio of a call event, with its SHA-256

Idempotency is the point: the broker redelivers whatever was not acknowledged, a gateway re-sends what it
is not sure of, and a replay repeats a range. An event id seen before changes nothing: no second row, no
second alert on an incident, no unit update. Everything a batch does commits together, so a crash between
the insert and the incident update cannot leave one without the other.

On PostgreSQL several bridges may share one database: rows that a batch changes are locked (``SELECT ...
FOR UPDATE``, gateways then units, in name order) so that two bridges cannot both open an incident for
one unit. SQLite write transactions start with ``BEGIN IMMEDIATE`` for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

from sqlalchemy import JSON, Table, TextClause, TextualSelect, bindparam, column, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bridge.commands import INCIDENT_ID_MAX
from bridge.models import (
    BRIDGE_ACTOR,
    NEW,
    RESOLVED,
    ClipRow,
    EventRow,
    GatewayRow,
    IncidentHistoryRow,
    IncidentRow,
    UnitRow,
    UtcDateTime,
    among_bound,
)
from bridge.store.base import ClipError, call_duration, event_from_row
from bridge.store.cases import AnswerResult, Cases
from bridge.views import CallView, Change, GatewayView, IncidentView, UnitView
from gateway.events import INT64_MAX, Event, Kind, Position

log = logging.getLogger(__name__)

#: Audio a clip may be, by its first bytes.
CLIP_MAGIC = {b"fLaC": "flac", b"OggS": "opus"}
# How far before a transmission's start and after its end an alert decoded in it may be timed (a decoder
# answers up to about 0.1 s after its audio, and the recorder may open the call a little back).
TRANSMISSION_SLACK = timedelta(seconds=5)


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
    # Gateways of this batch with every seq up to their newest stored (or given up): gateway -> that seq.
    settled: dict[str, int] = field(default_factory=dict)
    # Events whose id is stored already (or came twice in this batch) with other content: not stored, an
    # anomaly (a gateway numbering wrong, or a forgery). A redelivery of the same content is not one.
    conflicts: list[Event] = field(default_factory=list)
    # Answers from radios (bridge/store/cases.py), each applied to a case part or kept with why not.
    answers: list[AnswerResult] = field(default_factory=list)


def _event_row(e: Event, received_at: str | None, time: Callable[[datetime | None], str | None]) -> dict[str, Any]:
    """An event as its row's plain values, as the database reads them: times as ``time`` writes them (see
    _utc_text, _sqlite_time; ``received_at`` written already), the detail as its JSON text. Made in one go:
    converting each row's values column by column afterwards took 3-4% of the ingest's CPU per event."""
    p = e.position
    return {
        "id": e.id,
        "gateway": e.gateway,
        "seq": e.seq,
        "channel": e.channel,
        "kind": str(e.kind),
        "time": time(e.time),
        "unit": e.unit,
        "lat": p.lat if p else None,
        "lon": p.lon if p else None,
        "alt_m": p.alt_m if p else None,
        "speed_mps": p.speed_mps if p else None,
        "course_deg": p.course_deg if p else None,
        "fix_time": time(p.fix_time) if p else None,
        "position_source": p.source if p else None,
        "detail": json.dumps(dict(e.detail)),
        "received_at": received_at,
    }


_POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
_SQLITE: Dialect = sqlite.dialect()

@dataclass(frozen=True)
class _Queries:
    """The ingest's statements whose lists are bound at execution, built once per database: a statement built
    anew every batch is compiled and keyed again, which cost more than running it."""

    lock_gateways: Any  # names
    known_events: Any  # ids
    lock_units: Any  # names
    follow_units: Any  # units: their open incidents
    open_of_units: Any  # units, since, until: the open incidents alerts of those units may join
    open_of_inputs: Any  # gateways, since, until: the same for wired inputs' alerts (no unit)

    @staticmethod
    @cache
    def of(dialect: str) -> _Queries:
        gateways, units = cast(Table, GatewayRow.__table__), cast(Table, UnitRow.__table__)
        return _Queries(
            lock_gateways=select(gateways.c.name, gateways.c.last_seq, gateways.c.contiguous_seq, gateways.c.online)
            .where(among_bound(dialect, gateways.c.name, "names")).order_by(gateways.c.name).with_for_update(),
            known_events=select(EventRow.id).where(among_bound(dialect, EventRow.id, "ids")),
            lock_units=select(units).where(among_bound(dialect, units.c.unit, "names")).order_by(units.c.unit)
            .with_for_update(),
            follow_units=select(IncidentRow).where(among_bound(dialect, IncidentRow.unit, "units"),
                                                   IncidentRow.state != RESOLVED).with_for_update(),
            open_of_units=_open_within(among_bound(dialect, IncidentRow.unit, "units")),
            open_of_inputs=_open_within(IncidentRow.unit.is_(None),
                                        among_bound(dialect, IncidentRow.gateway, "gateways")),
        )


#: Most seqs past a gateway's contiguous seq remembered (Ingest._remember_ahead): a gateway that far ahead
#: of its holes has them found by queries.
AHEAD_MAX = 10_000

#: What a batch changes of each of its gateways' rows.
_SEQ_COLUMNS = ("last_seq", "contiguous_seq", "updated_at")

#: What an alert changes of the incident it joins (Ingest._update_incidents).
_JOINING = ("alert_count", "last_alert_at", "last_event_id", "gateway", "channel", "opened_at", "first_event_id",
            "lat", "lon", "position_time", "last_announced", "updated_at")

#: An incident's history row as a plain insert: an alert's, written at once (the ORM's unit of work cost several
#: times the statement for an object nobody reads back).
_HISTORY = cast(Table, IncidentHistoryRow.__table__).insert()


def _open_within(*where: Any) -> Any:
    """Open incidents that alerts of a batch may join: those whose alerts reach into the window around the
    batch's alerts (``since``: the earliest alert less the window, ``until``: the latest plus the window).
    Which one each alert joins is :func:`_joined`'s choice among them."""
    return select(IncidentRow).where(IncidentRow.state != RESOLVED, *where,
                                     IncidentRow.last_alert_at >= bindparam("since"),
                                     IncidentRow.opened_at <= bindparam("until"))


def _joined(candidates: Sequence[IncidentRow], e: Event, when: datetime, window: timedelta) -> IncidentRow | None:
    """The open incident an alert joins: of its unit (a wired input, with no radio identity: of its gateway
    and channel), the latest whose alerts are within the window of the alert's own time."""
    found = [r for r in candidates if r.last_alert_at >= when - window
             and r.opened_at <= when + window
             and (r.unit == e.unit if e.unit is not None else
                  r.unit is None and r.gateway == e.gateway and r.channel == e.channel)]
    return max(found, key=lambda r: r.last_alert_at, default=None)


@cache
def _recordset_insert(table: Table, names: tuple[str, ...]) -> TextClause:
    """PostgreSQL: insert rows given as one JSON text unless their key is taken; returns the keys inserted."""
    q = _POSTGRESQL.identifier_preparer.quote
    (key,) = [c.key for c in table.primary_key.columns]
    listed = ", ".join(map(q, names))
    return text(f"INSERT INTO {q(table.name)} ({listed}) SELECT {', '.join(_record_value(table, n) for n in names)} "
                f"FROM json_to_recordset(CAST(:rows AS json)) AS v({_record_fields(table, names)}) "
                f"ON CONFLICT ({q(key)}) DO NOTHING RETURNING {q(key)}")


@cache
def _recordset_update(table: Table, columns: tuple[str, ...], rows: str = "rows") -> TextClause:
    """PostgreSQL: set ``columns`` of the rows given as one JSON text (bound as ``rows``), found by their key."""
    q = _POSTGRESQL.identifier_preparer.quote
    (key,) = [c.key for c in table.primary_key.columns]
    return text(f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = {_record_value(table, c)}' for c in columns)} "
                f"FROM json_to_recordset(CAST(:{rows} AS json)) AS v({_record_fields(table, (key, *columns))}) "
                f"WHERE {q(table.name)}.{q(key)} = v.{q(key)}")


@cache
def _recordset_insert_updating(table: Table, names: tuple[str, ...], other: Table,
                               columns: tuple[str, ...]) -> TextClause:
    """PostgreSQL: :func:`_recordset_insert` of ``rows`` that also sets ``columns`` of ``other``'s rows given as
    ``updates``, in the same round trip (a data-modifying WITH runs once, whether or not it is read)."""
    update = _recordset_update(other, columns, "updates").text
    return text(f"WITH updated AS ({update}) {_recordset_insert(table, names).text}")


def _new_gateways(names: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """The rows of gateways heard for the first time: offline, nothing stored yet."""
    return [{"name": n, "online": False, "last_seq": 0, "contiguous_seq": 0, "lost": 0, "updated_at": now}
            for n in names]


def _jumps(last: int, seqs: set[int]) -> list[tuple[int, int]]:
    """The seqs skipped by these, coming after ``last`` (as ranges, lowest first): a hole, or seqs that
    another batch brings (an alert sent ahead of its beacons)."""
    jumps = []
    for q in sorted(seqs):
        if q > last + 1:
            jumps.append((last + 1, q - 1))
        last = max(last, q)
    return jumps


def _runs(seqs: set[int]) -> list[list[int]]:
    """These seqs as runs of consecutive ones, [lowest, highest] each: a gateway's contiguous seq c moves on
    to the highest of the run that holds c + 1, if one does (_insert_locking), as in _track_seq."""
    runs: list[list[int]] = []
    for q in sorted(seqs):
        if runs and q == runs[-1][1] + 1:
            runs[-1][1] = q
        else:
            runs.append([q, q])
    return runs


@cache
def _insert_locking(names: tuple[str, ...]) -> TextualSelect:
    """PostgreSQL: lock the batch's gateways' rows, move their seqs on, and insert its events (``rows``:
    _recordset_insert's) in one statement. ``seqs``: a JSON array of each gateway's name, its highest seq in
    the batch (``top``) and the ``runs`` of seqs it has stored past its contiguous seq, this batch's and
    those remembered (_runs). Its first row has each gateway's [name, last_seq before, last_seq,
    contiguous_seq, online] as JSON (``seqs``) and the ids inserted (``inserted``). The insert reads the
    update's count, so the locks are taken before any event is inserted, as the separate statements did.

    The units' news too (``units``: _units_upsert's rows), if every event was new (``expected`` of them
    inserted: the news is of them all, and a redelivered event's news is not news), after the insert: its
    rows follow the first, as _units_upsert returns them (the first row's unit is null)."""
    q = _POSTGRESQL.identifier_preparer.quote
    events, units = cast(Table, EventRow.__table__), cast(Table, UnitRow.__table__)
    insert = _recordset_insert(events, names).text.replace(
        " ON CONFLICT", " WHERE (SELECT count(*) FROM advanced) >= 0 ON CONFLICT")
    # "lo - 1 <= contiguous", not "lo <= contiguous + 1": a seq may be BIGINT's highest (a gateway's hole
    # up to it given up), and contiguous + 1 would then be out of range.
    return text(
        "WITH held AS (SELECT name, last_seq, contiguous_seq FROM gateways "
        "WHERE name IN (SELECT s.name FROM json_to_recordset(CAST(:seqs AS json)) AS s(name text)) "
        "ORDER BY name FOR UPDATE), "
        "batch AS (SELECT s.name, s.top, s.runs FROM json_to_recordset(CAST(:seqs AS json)) "
        "AS s(name text, top bigint, runs json)), "
        "advanced AS (UPDATE gateways AS g SET last_seq = GREATEST(held.last_seq, batch.top), "
        "contiguous_seq = COALESCE((SELECT (r ->> 1)::bigint FROM json_array_elements(batch.runs) AS r "
        "WHERE (r ->> 0)::bigint - 1 <= held.contiguous_seq AND (r ->> 1)::bigint > held.contiguous_seq), "
        "held.contiguous_seq), updated_at = CAST(:now AS timestamptz) "
        "FROM held JOIN batch ON batch.name = held.name WHERE g.name = held.name "
        "RETURNING g.name, held.last_seq AS was, g.last_seq, g.contiguous_seq, g.online), "
        f"inserted AS ({insert}), "
        f"{_units_news('units', '(SELECT count(*) FROM inserted) = CAST(:expected AS integer)')} "
        f"SELECT {', '.join(f'NULL AS {q(c.key)}' for c in units.c)}, NULL AS moved, "
        "(SELECT json_agg(json_build_array(name, was, last_seq, contiguous_seq, online) ORDER BY name) "
        f"FROM advanced) AS seqs, ARRAY(SELECT {q(events.primary_key.columns.keys()[0])} FROM inserted) AS inserted "
        f"UNION ALL SELECT {', '.join(q(c.key) for c in units.c)}, "
        "ARRAY(SELECT moved.id FROM moved WHERE moved.unit = news.unit), NULL, NULL FROM news"
    ).columns(*units.c, column("moved"), column("seqs"), column("inserted"))


#: What an event says of its unit: that it was heard (when, how, where), and where it is (its position).
_HEARD = ("last_heard", "last_kind", "last_channel", "last_gateway", "last_event_id")
_FIX = ("lat", "lon", "alt_m", "speed_mps", "course_deg", "position_source", "fix_time")
_NEWS = ("unit", *_HEARD, *_FIX, "updated_at")  # a unit's news (_newest_news's rows)


class _Inserted(NamedTuple):
    """What Ingest._insert_events_locking did."""

    locked: dict[str, list[int]]  # gateway -> [last_seq, contiguous_seq], moved on
    online: dict[str, bool]  # gateway -> online, read with its lock
    known: set[str]  # ids stored already
    gaps: dict[str, list[tuple[int, int]]]  # the jumps, as _track_seq says
    units: tuple[dict[str, dict[str, Any]], list[int]] | None  # _units_upsert's rows and moves, if done


@cache
def _units_upsert() -> TextualSelect:
    """PostgreSQL: each unit's newest news of a batch (rows as one JSON text: unit, _HEARD, _FIX, updated_at,
    the batch's now), taken as :meth:`Ingest._update_units` says; a unit's row is made if new and locked
    either way, and returned if it changed, with the ids of its open incidents that took its position (as
    :meth:`Ingest._follow_units` says). One round trip, where reading the rows with their lock, writing them
    back and finding the incidents to follow took three (five for new units)."""
    units = cast(Table, UnitRow.__table__)
    columns = ", ".join(_POSTGRESQL.identifier_preparer.quote(c.key) for c in units.c)
    return text(f"WITH {_units_news('rows')} SELECT {columns}, "
                "ARRAY(SELECT moved.id FROM moved WHERE moved.unit = news.unit) AS moved "
                "FROM news").columns(*units.c, column("moved"))


def _units_news(rows: str, only_if: str = "") -> str:
    """_units_upsert's work as two WITH queries, ``news`` (the units changed) and ``moved`` (their incidents
    that followed), its rows bound as ``rows``; ``only_if``: a condition for doing it at all."""
    units, incidents = cast(Table, UnitRow.__table__), cast(Table, IncidentRow.__table__)
    q = _POSTGRESQL.identifier_preparer.quote
    names = _NEWS
    table = q(units.name)

    def newer(column: str) -> str:  # as _newer
        new, old = f"excluded.{q(column)}", f"{table}.{q(column)}"
        return f"({new} IS NOT NULL AND ({old} IS NULL OR {old} > excluded.updated_at OR {new} >= {old}))"

    def taken(columns: Sequence[str], when: str) -> list[str]:
        return [f"{q(c)} = CASE WHEN {when} THEN excluded.{q(c)} ELSE {table}.{q(c)} END" for c in columns]

    heard, fix = newer("last_heard"), newer("fix_time")
    sets = [*taken(_HEARD, heard), *taken(_FIX, fix), "updated_at = excluded.updated_at"]
    columns = ", ".join(q(c.key) for c in units.c)
    return (f"news AS (INSERT INTO {table} ({', '.join(map(q, names))}) "
            f"SELECT {', '.join(_record_value(units, n) for n in names)} "
            f"FROM json_to_recordset(CAST(:{rows} AS json)) AS v({_record_fields(units, names)}) "
            f"{f'WHERE {only_if} ' if only_if else ''}ORDER BY v.unit "
            f"ON CONFLICT (unit) DO UPDATE SET {', '.join(sets)} WHERE {heard} OR {fix} RETURNING {columns}), "
            f"moved AS (UPDATE {q(incidents.name)} AS i SET lat = news.lat, lon = news.lon, "
            "position_time = news.fix_time, updated_at = news.updated_at FROM news "
            f"WHERE i.unit = news.unit AND i.state <> '{RESOLVED}' AND news.lat IS NOT NULL "
            "AND news.lon IS NOT NULL AND news.fix_time IS NOT NULL "
            "AND (i.position_time IS NULL OR i.position_time < news.fix_time) RETURNING i.id, i.unit)")


@cache
def _sqlite_insert(table: Table, names: tuple[str, ...]) -> str:
    """SQLite: insert a row unless its key is taken (qmark parameters, for the driver's executemany)."""
    q = _SQLITE.identifier_preparer.quote
    (key,) = [c.key for c in table.primary_key.columns]
    return (f"INSERT INTO {q(table.name)} ({', '.join(map(q, names))}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({q(key)}) DO NOTHING")


@cache
def _sqlite_update(table: Table, columns: tuple[str, ...]) -> str:
    """SQLite: set ``columns`` of the row found by its key (the key's parameter last)."""
    q = _SQLITE.identifier_preparer.quote
    (key,) = [c.key for c in table.primary_key.columns]
    return f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = ?' for c in columns)} WHERE {q(key)} = ?"


def _record_fields(table: Table, names: Sequence[str]) -> str:
    """The column definition list of json_to_recordset for these columns: their names and SQL types, a JSON
    column's as text (see _record_value)."""
    q = _POSTGRESQL.identifier_preparer.quote
    kinds = {n: table.c[n].type for n in names}
    return ", ".join(f"{q(n)} {'text' if isinstance(k, JSON) else k.compile(dialect=_POSTGRESQL)}"
                     for n, k in kinds.items())


def _record_value(table: Table, name: str) -> str:
    """A record's field as its column takes it. A JSON value comes as its text, cast back to json: read as
    json inside the record, an object with ``\\u0000`` in a string (which the json type keeps) was refused."""
    q = _POSTGRESQL.identifier_preparer.quote
    return f"CAST(v.{q(name)} AS json)" if isinstance(table.c[name].type, JSON) else f"v.{q(name)}"


def _records_json(table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]],
                  time: Callable[[Any], Any] | None = None) -> str:
    """Rows as one JSON array of objects, as json_to_recordset reads them; times as UTC text (``time``:
    _utc_text or a batch's _remembered one), JSON values as their text (see _record_value)."""
    convert = _converters(table, names, time or _utc_text)
    records = [{n: r[n] if f is None else f(r[n]) for n, f in zip(names, convert, strict=True)} for r in rows]
    return json.dumps(records, separators=(",", ":"), allow_nan=False)


def _sqlite_rows(table: Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples of what the SQLite driver binds as it is, converted as UtcDateTime and SQLAlchemy's
    SQLite types would: times as naive UTC text, JSON values as their text."""
    convert = _converters(table, names, _sqlite_time)
    return [tuple(r[n] if f is None else f(r[n]) for n, f in zip(names, convert, strict=True)) for r in rows]


def _converters(table: Table, names: Sequence[str], time: Callable[[Any], Any]) -> list[Callable[[Any], Any] | None]:
    """For each column, what makes its value plain (``time`` for times, the text of a JSON value), or None."""
    kinds = [table.c[n].type for n in names]
    return [time if isinstance(k, UtcDateTime) else _json_text if isinstance(k, JSON) else None for k in kinds]


def _in_utc(value: datetime) -> datetime:
    """An aware time in UTC; naive times are refused, as in UtcDateTime."""
    if value.tzinfo is UTC:  # as the bridge's own times and the events' are
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: the bridge stores UTC times only")
    return value.astimezone(UTC)


def _utc_text(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, as timestamptz reads it."""
    return None if value is None else _in_utc(value).isoformat()


def _remembered(text: Callable[[datetime | None], str | None]) -> Callable[[datetime | None], str | None]:
    """``text`` remembering what it wrote, for one batch: a unit's news carries the times of the event it
    came from, and every row the batch's now, and writing a time costs more than finding it again (equal
    times are the same instant, so their UTC text is the same)."""
    written: dict[datetime, str | None] = {}

    def remembered(value: datetime | None) -> str | None:
        if value is None:
            return None
        out = written.get(value)
        if out is None:
            out = written[value] = text(value)
        return out

    return remembered


def _sqlite_time(value: datetime | None) -> str | None:
    """A time as SQLite keeps it (UtcDateTime, then SQLAlchemy's SQLite DATETIME): naive UTC text with
    microseconds, ``2026-12-07 10:58:00.123456``."""
    return None if value is None else _in_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _newer(new: datetime | None, held: datetime | None, now: datetime) -> bool:
    """Whether news of this time replaces what is held (a held time past now is no obstacle; see
    Ingest._update_units). _units_upsert says the same in SQL."""
    return new is not None and (held is None or held > now or new >= held)


def _newest_news(heard: Sequence[Event], now: datetime) -> list[dict[str, Any]]:
    """Each unit's newest news among these events (in the order _update_units takes them), as
    _units_upsert's rows: the last event heard, and the last of the newest position fixes."""
    last: dict[str, Event] = {}
    fixes: dict[str, tuple[datetime, Position]] = {}
    for e in heard:
        assert e.unit is not None
        last[e.unit] = e
        p = e.position
        if p is not None:
            fix = min(p.fix_time or e.time, now)
            if e.unit not in fixes or fix >= fixes[e.unit][0]:
                fixes[e.unit] = fix, p
    rows = []
    for unit in sorted(last):
        e = last[unit]
        row = {"unit": unit, "last_heard": min(e.time, now), "last_kind": str(e.kind), "last_channel": e.channel,
               "last_gateway": e.gateway, "last_event_id": e.id, **dict.fromkeys(_FIX), "updated_at": now}
        if unit in fixes:
            fix, p = fixes[unit]
            row.update(lat=p.lat, lon=p.lon, alt_m=p.alt_m, speed_mps=p.speed_mps, course_deg=p.course_deg,
                       position_source=p.source, fix_time=fix)
        rows.append(row)
    return rows


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


class Ingest(Cases):
    """Events in, and what they change."""

    def ingest(self, events: Sequence[Event], received_at: datetime | None = None) -> IngestResult:
        """Store a batch of valid events in one transaction; the result says what changed."""
        now = received_at or self.clock()
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
            names = sorted({e.gateway for e in unique})
            with self._ahead_lock:
                ahead = {name: self._ahead[name] for name in names if name in self._ahead}
            upserted = None
            if self.dialect == "postgresql":
                gateways, online, known, result.gaps, upserted = self._insert_events_locking(s, unique, now, ahead)
            else:
                gateways, online = self._lock_gateway_seqs(s, names, now)
                result.gaps = self._track_seq(gateways, unique, ahead)
                known = self._insert_events(s, unique, now, [
                    {"name": name, "last_seq": last, "contiguous_seq": contiguous, "updated_at": now}
                    for name, (last, contiguous) in sorted(gateways.items())])
            if known:  # rare (redeliveries, replays): is it the same event, or an id used again?
                for row in s.scalars(select(EventRow).where(EventRow.id.in_(known))):
                    if event_from_row(row) != firsts[row.id]:
                        result.conflicts.append(firsts[row.id])
            new = [e for e in unique if e.id not in known]
            result.stored = [e.id for e in new]
            result.duplicates = len(events) - len(new)
            result.units, followed = self._update_units(s, new, now, online, upserted)
            aliases = {u.unit: u.alias for u in result.units}  # read with the units' lock just now
            in_hand: dict[int, IncidentRow] = {}  # incidents read since the units' upsert moved them
            result.incidents = self._update_incidents(s, [e for e in new if e.kind == Kind.ALERT], now, aliases,
                                                      {u.unit: u for u in result.units}, in_hand)
            result.incidents += self._radio_answers(s, [e for e in new if e.kind == Kind.IO], now)
            result.incidents += self._gateway_reports(s, [e for e in new if e.kind == Kind.IO], now)
            result.incidents += self._recorded_transmissions(s, [e for e in new if e.kind == Kind.CALL], now)
            result.answers = self._case_answers(s, new, now)
            for answer in result.answers:
                if answer.case is not None:
                    result.incidents.append((answer.case, "answer"))
                if answer.alert is not None:
                    result.incidents.append((answer.alert, "opened"))
            if followed:  # their views as the batch leaves them (its alerts may have joined them since)
                result.incidents += [(i, "position") for i in self._incident_views(
                    s, self._incidents_held(s, followed, in_hand), aliases)]
        self._gateways_made.update(gateways)  # committed: their rows exist
        result.settled = {name: last for name, (last, contiguous) in gateways.items() if contiguous >= last}
        self._remember_ahead(gateways, unique, result.settled)  # committed: only now are its seqs known stored
        return result

    @staticmethod
    def _incidents_held(s: Session, ids: Sequence[int], in_hand: Mapping[int, IncidentRow]) -> list[IncidentRow]:
        """These incidents' rows, by id: those in hand (an alert's incident, read after the units' upsert
        moved it) as they are, the rest read in one query."""
        held = {i: in_hand[i] for i in ids if i in in_hand}
        rest = sorted(set(ids) - held.keys())
        if rest:
            held.update((r.id, r) for r in s.scalars(select(IncidentRow).where(IncidentRow.id.in_(rest))))
        return [held[i] for i in sorted(held)]

    def _remember_ahead(self, locked: Mapping[str, list[int]], events: Sequence[Event],
                        settled: Mapping[str, int]) -> None:
        """Keep the seqs of these committed events that are past their gateway's contiguous seq (``locked``:
        as the batch left it), at most AHEAD_MAX a gateway (past that, the holes are found by queries). A
        ``settled`` gateway, the usual case, has none."""
        behind = {name: contiguous for name, (_, contiguous) in locked.items() if name not in settled}
        fresh: dict[str, set[int]] = {}
        if behind:
            for e in events:
                if e.gateway in behind and e.seq > behind[e.gateway]:
                    fresh.setdefault(e.gateway, set()).add(e.seq)
        with self._ahead_lock:
            for name in settled:
                self._ahead.pop(name, None)
            for name, contiguous in behind.items():
                kept = frozenset(q for q in self._ahead.get(name, ()) if q > contiguous).union(fresh.get(name, ()))
                if kept and len(kept) <= AHEAD_MAX:
                    self._ahead[name] = kept
                else:
                    self._ahead.pop(name, None)

    def _follow_units(self, s: Session, units: Sequence[UnitView], now: datetime) -> list[int]:
        """SQLite: open incidents of these units whose position is older than the unit's newest one take it
        (a beacon after the alert says better where the officer is); returns their ids. One query for the
        batch, and none when no unit moved. (On PostgreSQL _units_upsert does the same.)"""
        fixes = {u.unit: u.position for u in units if u.position is not None and u.position.fix_time is not None}
        if not fixes:
            return []
        moved = []
        for row in s.scalars(_Queries.of(self.dialect).follow_units, {"units": list(fixes)}):
            p = fixes[row.unit or ""]
            assert p is not None and p.fix_time is not None
            if row.position_time is None or row.position_time < p.fix_time:
                row.lat, row.lon, row.position_time = p.lat, p.lon, p.fix_time
                row.updated_at = now
                moved.append(row.id)
        return moved

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

    def _recorded_transmissions(self, s: Session, calls: Sequence[Event],
                                now: datetime) -> list[tuple[IncidentView, str]]:
        """Open incidents with an alert decoded in one of these transmissions (the alert names it: its
        ``call``). The call event comes when the transmission ends, after the alerts decoded in it, so the
        incident is news again: whoever shows it can now show the transmission its alert came in."""
        alert_ids: list[str] = []
        for c in calls:
            length = call_duration(c.detail) or 0.0
            # Its alerts were decoded while it lasted (a call may start a little before what opened it).
            near = s.execute(select(EventRow.id, EventRow.detail).where(
                EventRow.kind == str(Kind.ALERT), EventRow.gateway == c.gateway, EventRow.channel == c.channel,
                EventRow.time >= c.time - TRANSMISSION_SLACK, EventRow.time <= c.time + timedelta(seconds=length)
                + TRANSMISSION_SLACK)).all()
            alert_ids += [i for i, detail in near if isinstance(detail, dict) and detail.get("call") == c.id]
        if not alert_ids:
            return []
        rows = s.scalars(select(IncidentRow).where(IncidentRow.state != RESOLVED, IncidentRow.id.in_(
            select(IncidentHistoryRow.incident_id).where(IncidentHistoryRow.event_id.in_(alert_ids))))
            .order_by(IncidentRow.id)).all()
        for row in rows:
            row.updated_at = now
        s.flush()
        return [(self._incident_view(s, row), Change.TRANSMISSION) for row in rows]

    def _lock_gateways(self, s: Session, names: Sequence[str], now: datetime) -> dict[str, GatewayRow]:
        names = sorted(set(names))
        s.execute(
            self._insert(GatewayRow.__table__).on_conflict_do_nothing(index_elements=["name"]),
            _new_gateways(names, now),
        )
        rows = s.scalars(
            select(GatewayRow).where(GatewayRow.name.in_(names)).order_by(GatewayRow.name).with_for_update()
        )
        return {r.name: r for r in rows}

    def _insert_events(self, s: Session, events: Sequence[Event], now: datetime,
                       seqs: Sequence[Mapping[str, Any]]) -> set[str]:
        """SQLite: store the events whose id is new, and their gateways' ``seqs`` (each gateway's row: its
        name, the columns of _SEQ_COLUMNS); returns the ids stored already. (PostgreSQL: see
        _insert_events_locking.)"""
        events_table, gateways = cast(Table, EventRow.__table__), cast(Table, GatewayRow.__table__)
        known = set(s.scalars(_Queries.of(self.dialect).known_events, {"ids": [e.id for e in events]}))
        received = _sqlite_time(now)
        new = [_event_row(e, received, _sqlite_time) for e in events if e.id not in known]
        if new:
            s.connection().exec_driver_sql(_sqlite_insert(events_table, tuple(new[0])),
                                           [tuple(row.values()) for row in new])
        self._update_rows(s, gateways, _SEQ_COLUMNS, seqs)
        return known

    def _insert_events_locking(self, s: Session, events: Sequence[Event], now: datetime,
                               ahead: Mapping[str, frozenset[int]]) -> _Inserted:
        """PostgreSQL: _lock_gateway_seqs, _track_seq, _insert_events and, if every event is new,
        _update_units' upsert in one round trip (_insert_locking): the gateways' rows locked, their seqs
        moved on as _track_seq says, the events inserted, the units locked and updated, in that order. A
        gateway's row is made first the first time."""
        gateways, units = cast(Table, GatewayRow.__table__), cast(Table, UnitRow.__table__)
        by_gateway: dict[str, set[int]] = {}
        for e in events:
            by_gateway.setdefault(e.gateway, set()).add(e.seq)
        new = [n for n in sorted(by_gateway) if n not in self._gateways_made]
        if new:
            self._insert_new(s, gateways, _new_gateways(new, now))
        utc = _remembered(_utc_text)
        received = utc(now)
        rows = [_event_row(e, received, utc) for e in events]
        seqs = [{"name": n, "top": max(q), "runs": _runs(q | ahead[n] if n in ahead else q)}
                for n, q in sorted(by_gateway.items())]
        keys = [c.key for c in units.c]
        news: dict[str, dict[str, Any]] = {}
        followed: list[int] = []
        for *r, moved, advanced, inserted in s.execute(_insert_locking(tuple(rows[0])), {
                "rows": json.dumps(rows, separators=(",", ":"), allow_nan=False),
                "seqs": json.dumps(seqs, separators=(",", ":")), "now": received, "expected": len(events),
                "units": _records_json(units, _NEWS, self._unit_news(events, now), utc)}):
            if r[0] is None:  # the first row: the gateways and the events
                seq_rows, taken = advanced or (), set(inserted)
            else:
                news[r[0]] = dict(zip(keys, r, strict=True))
                followed += moved
        locked = {name: [last, contiguous] for name, _, last, contiguous, _ in seq_rows}
        if locked.keys() != by_gateway.keys():
            raise RuntimeError(f"gateways {sorted(by_gateway.keys() - locked.keys())} have no row")
        return _Inserted(locked, {name: up for name, *_, up in seq_rows}, {e.id for e in events if e.id not in taken},
                         {name: jumps for name, was, *_ in seq_rows if (jumps := _jumps(was, by_gateway[name]))},
                         (news, followed) if len(taken) == len(events) else None)

    def _insert_new(self, s: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert these rows, each unless its primary key is taken. On PostgreSQL one statement for them all,
        ``INSERT ... SELECT FROM json_to_recordset(rows)``, the rows as one JSON text (see _update_rows), that
        returns the keys it inserted; on SQLite the driver's executemany, which returns nothing."""
        names = tuple(rows[0])
        if self.dialect != "postgresql":
            # One prepared statement, its rows bound by the driver (see _update_rows). (A RETURNING insert
            # goes through a huge multi-row VALUES that is parsed anew on every batch.)
            s.connection().exec_driver_sql(_sqlite_insert(table, names), _sqlite_rows(table, names, rows))
            return []
        return list(s.scalars(_recordset_insert(table, names), {"rows": _records_json(table, names, rows)}))

    def _update_rows(self, s: Session, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
        """Set ``columns`` of these rows (found by their primary key). On PostgreSQL one statement for them all,
        ``UPDATE ... FROM json_to_recordset(rows)``, prepared once: an executemany is a statement for each row,
        each with its own parameters to bind (the bridge's largest cost per event after the insert itself).
        The rows go as one JSON text, made by the json module's C encoder: binding a PostgreSQL array per
        column went through psycopg's Python array dumper, element by element. On SQLite, in process, an
        executemany costs no round trips; it is the driver's, its rows made plain here: SQLAlchemy's
        executemany converted every value of every row in Python, which took more than the statements."""
        if not rows:
            return
        (key,) = [c.key for c in table.primary_key.columns]
        if self.dialect != "postgresql":
            s.connection().exec_driver_sql(_sqlite_update(table, tuple(columns)),
                                           _sqlite_rows(table, [*columns, key], rows))
            return
        s.execute(_recordset_update(table, tuple(columns)), {"rows": _records_json(table, [key, *columns], rows)})

    def _lock_gateway_seqs(self, s: Session, names: Sequence[str],
                           now: datetime) -> tuple[dict[str, list[int]], dict[str, bool]]:
        """SQLite: each gateway's [last_seq, contiguous_seq], its row locked (made first if new), as plain values (the
        ORM's unit of work cost more than the rest of a batch's gateway bookkeeping); and whether it is online,
        read with them for the units' views."""
        names = sorted(set(names))
        locked = _Queries.of(self.dialect).lock_gateways
        rows: dict[str, list[int]] = {}
        online: dict[str, bool] = {}
        for name, last, contiguous, up in s.execute(locked, {"names": names}):
            rows[name], online[name] = [last, contiguous], up
        missing = [n for n in names if n not in rows]
        if missing:  # a gateway's first events: its row is made, then locked like the others
            self._insert_new(s, cast(Table, GatewayRow.__table__), _new_gateways(missing, now))
            for name, last, contiguous, up in s.execute(locked, {"names": missing}):
                rows[name], online[name] = [last, contiguous], up
        return rows, online

    @staticmethod
    def _track_seq(locked: Mapping[str, list[int]], events: Sequence[Event],
                   ahead: Mapping[str, frozenset[int]]) -> dict[str, list[tuple[int, int]]]:
        """Each gateway's seq moved on by these events (``locked``'s [last, contiguous] in place); the jumps.
        ``ahead``: each gateway's seqs past its contiguous seq stored by earlier batches (see _remember_ahead)."""
        by_gateway: dict[str, set[int]] = {}
        for e in events:
            by_gateway.setdefault(e.gateway, set()).add(e.seq)
        gaps: dict[str, list[tuple[int, int]]] = {}
        for name, row in locked.items():
            jumps = _jumps(row[0], by_gateway[name])
            if jumps:
                gaps[name] = jumps
            last = max(row[0], *by_gateway[name])
            # The usual case, events in order with nothing missing, advances here without a query, and so
            # does a hole under an alert sent ahead, once filled; a hole another bridge of a shared group
            # filled, or a replay, is noticed by missing_ranges().
            contiguous = row[1]
            stored = by_gateway[name] | ahead[name] if name in ahead else by_gateway[name]
            while contiguous + 1 in stored:
                contiguous += 1
            row[0], row[1] = last, contiguous
        return gaps

    def _update_units(self, s: Session, events: Sequence[Event], now: datetime, online: Mapping[str, bool],
                      upserted: tuple[dict[str, dict[str, Any]], list[int]] | None = None,
                      ) -> tuple[list[UnitView], list[int]]:
        """Each unit's newest state. An event's time is its gateway's word, and no time past ``now`` (the
        bridge's clock when the batch arrived) is taken, neither from an event nor from what is stored: a
        gateway whose clock runs ahead, or a beacon dated 9999, would otherwise hold a unit's state against
        every later beacon of the real radio. An event stamped more than ``future`` ahead is not believed
        about its unit at all (it is stored, and counted by the bridge): its clock, or its sender, is wrong.
        Returned: the units that changed, and the ids of their open incidents that took their position.
        ``upserted``: on PostgreSQL, what _units_upsert returned for these events already (see
        _insert_events_locking)."""
        units = cast(Table, UnitRow.__table__)
        keys = [c.key for c in units.c]
        followed: list[int] = []
        if upserted is not None:
            rows, followed = upserted
            changed = set(rows)
        elif not (news := self._unit_news(events, now)):
            return [], []
        elif self.dialect == "postgresql":
            rows = {}
            for *r, moved in s.execute(_units_upsert(), {"rows": _records_json(units, _NEWS, news)}):
                rows[r[0]] = dict(zip(keys, r, strict=True))
                followed += moved
            changed = set(rows)
        else:
            rows, changed = self._merge_units(s, news, now)
        # The gateways of this batch were read with their lock; a unit whose news came through another (only
        # its position moved, by an older event of this batch) asks for that one.
        others = {rows[n]["last_gateway"] for n in changed} - online.keys()
        online = {**online, **self._gateway_online(s, others)} if others else online
        views = [self._unit_view(SimpleNamespace(**rows[n]), online) for n in sorted(changed)]
        if self.dialect != "postgresql":
            followed = self._follow_units(s, views, now)
        return views, followed

    def _unit_news(self, events: Sequence[Event], now: datetime) -> list[dict[str, Any]]:
        """Each unit's newest news among these events (_newest_news), of the events believed about it."""
        heard = sorted((e for e in events if e.unit and e.time <= now + self.future),
                       key=lambda e: (min(e.time, now), e.seq))
        return _newest_news(heard, now) if heard else []

    def _merge_units(self, s: Session, news: Sequence[dict[str, Any]],
                     now: datetime) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """SQLite: _units_upsert's work (the units' rows, and which changed) with its comparisons made here:
        the rows read with their lock, each unit's news taken where newer, written back in one executemany."""
        names = [n["unit"] for n in news]
        # Plain rows (dicts made from tuples: SQLAlchemy's row mappings cost more than the rest of this) and
        # one UPDATE for them all: the ORM's per-object flush cost more than the insert.
        units = cast(Table, UnitRow.__table__)
        locked = _Queries.of(self.dialect).lock_units
        keys = [c.key for c in units.c]
        rows = {r[0]: dict(zip(keys, r, strict=True)) for r in s.execute(locked, {"names": names})}
        missing = [n for n in names if n not in rows]
        if missing:  # units heard for the first time: their rows are made, then locked like the others
            self._insert_new(s, units, [{"unit": n, "updated_at": now} for n in missing])
            made = s.execute(locked, {"names": missing})
            rows.update({r[0]: dict(zip(keys, r, strict=True)) for r in made})
        changed: set[str] = set()
        for n in news:
            r = rows[n["unit"]]
            for part, time in ((_HEARD, "last_heard"), (_FIX, "fix_time")):
                if _newer(n[time], r[time], now):
                    r.update({c: n[c] for c in part}, updated_at=now)
                    changed.add(n["unit"])
        if changed:
            columns = [c.key for c in units.c if c.key not in ("unit", "alias")]
            self._update_rows(s, units, columns, [rows[n] for n in sorted(changed)])
        return rows, changed

    def _update_incidents(self, s: Session, alerts: Sequence[Event], now: datetime,
                          aliases: Mapping[str, str | None], units: Mapping[str, UnitView],
                          in_hand: dict[int, IncidentRow]) -> list[tuple[IncidentView, str]]:
        """Alerts open incidents or join them. ``units``: the units this batch changed, as it left them.
        The incidents read or opened are put ``in_hand``."""
        if not alerts:
            return []
        changes: dict[int, str] = {}
        rows: dict[int, IncidentRow] = {}
        histories: list[dict[str, Any]] = []
        # A gateway whose clock runs ahead must not open incidents in the future: their deadlines would
        # pass hours late. A clock behind only makes an alert look older, which is safe.
        timed = sorted(((e, min(e.time, now)) for e in alerts), key=lambda a: (a[0].time, a[0].seq))
        # Callers hold the unit's row lock (or, for an alert with no unit, the gateway's), taken in
        # _update_units / _track_seq: two bridges cannot both open an incident for one unit. The incidents
        # the batch's alerts may join are read at once (a query each cost more than the rest of an alert);
        # those opened by this batch join them, and each alert chooses among them as they are by then.
        candidates = self._open_incidents(s, [e for e, _ in timed], timed[0][1] - self.window,
                                          max(when for _, when in timed) + self.window)
        in_hand.update((r.id, r) for r in candidates)
        for e, when in timed:
            row = _joined(candidates, e, when, self.window)
            position = self._alert_position(s, e, now, units)
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
                row.source = "radio" if e.unit is not None else "wired"
                s.add(row)
                s.flush()  # its id
                candidates.append(row)  # the next alert of this unit in this batch joins it
                in_hand[row.id] = row
                self._start_case(s, row, now)
                action, note = "opened", row.label
                changes[row.id] = action
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
                action, note = "alert", None
                changes.setdefault(row.id, action)
            histories.append({"incident_id": row.id, "at": now, "actor": BRIDGE_ACTOR, "action": action,
                              "note": note, "event_id": e.id})
            rows[row.id] = row
        self._join_and_record(s, [rows[i] for i, change in changes.items() if change == "alert"], histories)
        views = dict(zip(changes, self._incident_views(s, [rows[i] for i in changes], aliases), strict=True))
        return [(views[i], change) for i, change in changes.items()]

    def _join_and_record(self, s: Session, joined: Sequence[IncidentRow], histories: Sequence[dict[str, Any]]) -> None:
        """Write what alerts changed of the incidents they joined (``joined``: before this batch open, the
        changes still in hand) and the alerts' history rows; on PostgreSQL in one round trip, where the
        ORM's update and the insert took two."""
        incidents, history = cast(Table, IncidentRow.__table__), cast(Table, IncidentHistoryRow.__table__)
        updates = [{"id": r.id, **{c: getattr(r, c) for c in _JOINING}} for r in joined]
        for r in joined:  # written here: the ORM must not write them again
            for c in _JOINING:
                set_committed_value(r, c, getattr(r, c))
        s.flush()  # the rest: incidents opened by this batch (and what joined them since)
        if self.dialect != "postgresql" or not updates:
            self._update_rows(s, incidents, _JOINING, updates)
            s.execute(_HISTORY, histories)
            return
        names = tuple(histories[0])
        s.execute(_recordset_insert_updating(history, names, incidents, _JOINING), {
            "rows": _records_json(history, names, histories),
            "updates": _records_json(incidents, ["id", *_JOINING], updates)})

    def _open_incidents(self, s: Session, alerts: Sequence[Event], since: datetime,
                        until: datetime) -> list[IncidentRow]:
        """The open incidents these alerts may join (see _open_within): at most a query for the radios'
        alerts and one for the wired inputs'."""
        queries = _Queries.of(self.dialect)
        window = {"since": since, "until": until}
        units = sorted({e.unit for e in alerts if e.unit is not None})
        gateways = sorted({e.gateway for e in alerts if e.unit is None})
        found = list(s.scalars(queries.open_of_units, {"units": units, **window})) if units else []
        if gateways:
            found += s.scalars(queries.open_of_inputs, {"gateways": gateways, **window})
        return found

    @staticmethod
    def _alert_position(s: Session, e: Event, now: datetime,
                        units: Mapping[str, UnitView]) -> tuple[float, float, datetime] | None:
        """Where the alert came from: its own position (its time no later than now, as for units), unless
        its unit's newest one (``units``: as this batch left them) is newer, as for an open incident that
        follows its unit; without a position of its own, the unit's last known one."""
        own = (e.position.lat, e.position.lon, min(e.position.fix_time or e.time, now)) if e.position else None
        if e.unit is None:
            return own
        if e.unit in units:
            p = units[e.unit].position
            newest = (p.lat, p.lon, p.fix_time) if p is not None and p.fix_time is not None else None
        elif own is None:
            unit = s.get(UnitRow, e.unit)
            newest = (unit.lat, unit.lon, unit.fix_time) if unit is not None and unit.lat is not None \
                and unit.lon is not None and unit.fix_time is not None else None
        else:
            return own
        if own is None or (newest is not None and newest[2] > own[2]):
            return newest
        return own

    def note_gateway_state(self, name: str, payload: Mapping[str, Any], now: datetime | None = None) -> GatewayView:
        """Record a gateway's retained state message (``online`` true or false, and its health)."""
        return self.note_gateway_states([(name, payload)], now)[0]

    def note_gateway_states(self, states: Sequence[tuple[str, Mapping[str, Any]]],
                            now: datetime | None = None) -> list[GatewayView]:
        """:meth:`note_gateway_state` for each (in order: a gateway's later state wins), in one transaction."""
        now = now or self.clock()
        with self._writing() as s:
            rows = self._lock_gateways(s, [name for name, _ in states], now)
            views = []
            for name, payload in states:
                row = rows[name]
                row.online = payload.get("online") is True
                row.state = dict(payload)
                row.updated_at = now
                views.append(self._gateway_view(row))
            return views

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
                    .where(ordered.c.nxt - 1 > ordered.c.seq)  # seq + 1 overflows at the top of BIGINT
                    .order_by(ordered.c.seq)
                    .limit(limit)
                )
                holes.extend((a + 1, b - 1) for a, b in jumps)
            row.contiguous_seq = holes[0][0] - 1 if holes else hi
            return GapReport(gateway, row.contiguous_seq, hi, holes[:limit])

    def mark_lost(self, gateway: str, first: int, last: int) -> int:
        """Give up on ``first..last`` (no replay brought them); returns how many of them are not stored."""
        now = self.clock()
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
                  "data": data, "received_at": self.clock()}],
            )
            calls = self._calls(s, [event_id])
        return calls[0] if calls else CallView(event_id, self.clock(), None, "", None, codec, len(data), digest)
