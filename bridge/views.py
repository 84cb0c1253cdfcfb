"""The bridge's views: what the store hands out, what the bridge publishes to consoles, and what a
console reads back, with no database behind them (a console imports this, not a SQLAlchemy module).

    UnitView        ``bridge/unit/{unit}`` (retained)      a unit's last position and where it was heard
    IncidentView    ``bridge/incident/{id}``               an incident's state after each change
    HistoryEntry, CallView, GatewayView                     what consoles read of the database
    IncidentDetail                                          an incident with its history, alerts and calls

Each view is a frozen dataclass, and its JSON form is worked out once from its fields (:class:`Wire`):
``to_json`` and ``from_json`` read the same table in two directions, so a field is written down once.
A field's type says how it goes on the wire (a time as RFC 3339 UTC with milliseconds, a position as an
object); a field whose metadata names a ``wire`` path is kept inside an object of the payload (an
incident's ``lat``, ``lon`` and ``position_time`` are its ``position``). ``from_json`` checks each field
as the bridge writes it and raises :class:`PayloadError` naming the field it cannot read.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self, Union

from gateway.events import Event, EventError, Position, format_time, parse_time

if TYPE_CHECKING:
    from bridge.cameras.correlation import Correlation


class IncidentState(StrEnum):
    """An incident's life: new -> acknowledged -> resolved (bridge/store/incidents.py has the transitions)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    HANDLED = "handled"
    FALSE_ALARM = "false_alarm"


class Change(StrEnum):
    """What just happened to an incident: the ``change`` of its ``bridge/incident/{id}`` message."""

    OPENED = "opened"
    ALERT = "alert"  # another alert joined it
    POSITION = "position"  # its unit reported a newer position
    ACKNOWLEDGED = "acknowledged"
    RADIO_ACK = "radio_ack"  # the radio was asked to acknowledge, or a gateway said how that went
    RESOLVED = "resolved"
    NOTE = "note"
    ASSIGNED = "assigned"
    DETECTION = "detection"  # a camera detection near it
    EVIDENCE = "evidence"  # a snapshot or clip fetched for it
    TRANSMISSION = "transmission"  # the transmission one of its alerts came in ended and is recorded
    ESCALATED = "escalated"  # past a time limit
    REANNOUNCE = "reannounce"  # still unacknowledged
    DEPARTMENT = "department"  # a department's part added
    DISPATCH = "dispatch"  # the unit's radio was told, or a gateway said how that went
    ANSWER = "answer"  # a unit answered from its radio: a part accepted, arrived, handled
    RADIO_CHECK = "radio_check"  # a silent unit's radio was checked
    REMOTE_MONITOR = "remote_monitor"  # a dispatcher keyed the unit's microphone: how the gateway's sending went
    TRANSFER = "transfer"  # handed to an outside system, or how that is going


class PartState(StrEnum):
    """A department's part of a case (bridge/store/cases.py has the transitions)."""

    NEW = "new"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    ARRIVED = "arrived"
    HANDLED = "handled"
    TRANSFERRED = "transferred"
    CLOSED = "closed"  # its case was resolved before the part was handled (its times say how far it came)


class Verdict(StrEnum):
    """Whether a camera-found case was a real case: the valid-case rate of camera detections."""

    VALID = "valid"
    FALSE_DETECTION = "false_detection"


class PayloadError(ValueError):
    """A bridge payload that cannot be read; the message names the field."""


# --- one field's way to the wire and back ----------------------------------------------------------

_Reader = Callable[[Mapping[str, Any], str], Any]
_Writer = Callable[[Any], Any]


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_time(value, key)  # UTC, and nothing a datetime cannot hold once in UTC
    except EventError as exc:
        raise PayloadError(str(exc)) from None


def _required_time(obj: Mapping[str, Any], key: str) -> datetime:
    t = _time(obj, key)
    if t is None:
        raise PayloadError(f"{key}: required time is missing")
    return t


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{key}: expected text, got {value!r}")
    return value


def _required_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise PayloadError(f"{key}: expected text, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key}: expected an integer, got {value!r}")
    return value


def _optional_int(obj: Mapping[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key)


def _float(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer past what a float holds
        number = math.inf
    if not math.isfinite(number):
        raise PayloadError(f"{key}: expected a finite number")
    return number


def _required_float(obj: Mapping[str, Any], key: str) -> float:
    number = _float(obj, key)
    if number is None:
        raise PayloadError(f"{key}: required number is missing")
    return number


def _bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise PayloadError(f"{key}: expected true or false, got {value!r}")
    return value


def _maybe_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    return value if isinstance(value, bool) else None  # "don't know" is as good as anything else here


def _object(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise PayloadError(f"{key}: expected an object, got {value!r}")
    return value


def _objects(obj: Mapping[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    return tuple(u for u in obj.get(key) or () if isinstance(u, dict))


def _iso(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


def _same(value: Any) -> Any:
    return value


def _default(read: _Reader, default: str) -> _Reader:
    # An empty text gets the default too: what a payload leaves blank is not a category or a source.
    return lambda obj, key: read(obj, key) or default


def _nested(cls: type[Any], optional: bool) -> tuple[_Reader, _Writer]:
    table = _table(cls)

    def read(obj: Mapping[str, Any], key: str) -> Any:
        inner = _object(obj, key)
        if inner is None:
            if optional:
                return None
            raise PayloadError(f"{key}: required object is missing")
        try:
            return cls(**{f.name: f.read(inner, f.path[-1]) for f in table})
        except PayloadError as exc:
            raise PayloadError(f"{key}.{exc}") from None

    def write(value: Any) -> Any:
        return None if value is None else {f.path[-1]: f.write(getattr(value, f.name)) for f in table}

    return read, write


def _nested_tuple(cls: type[Any]) -> tuple[_Reader, _Writer]:
    """A tuple of views (an incident's parts): each read as its class, a bad one named by its index."""
    read_one, write_one = _nested(cls, optional=False)

    def read(obj: Mapping[str, Any], key: str) -> Any:
        items = obj.get(key) or ()
        if not isinstance(items, list | tuple):
            raise PayloadError(f"{key}: expected a list, got {items!r}")
        try:
            return tuple(read_one({"item": item}, "item") for item in items)
        except PayloadError as exc:
            raise PayloadError(f"{key}[].{str(exc).removeprefix('item.')}") from None

    def write(value: Any) -> Any:
        return [write_one(v) for v in value]

    return read, write


_SIMPLE: dict[type, tuple[_Reader, _Reader, _Writer]] = {
    # type: (reader when required, reader when it may be None, writer)
    str: (_required_str, _str, _same),
    int: (_int, _optional_int, _same),
    float: (_required_float, _float, _same),
    bool: (_bool, _maybe_bool, _same),
    datetime: (_required_time, _time, _iso),
}


def _codec(hint: Any, default: Any) -> tuple[_Reader, _Writer]:
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (Union, types.UnionType) and type(None) in args
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
    origin = typing.get_origin(hint) or hint
    if origin in _SIMPLE:
        required, maybe, write = _SIMPLE[origin]
        read = maybe if optional else required
        if isinstance(default, str):
            read = _default(maybe, default)
        return read, write
    if origin is dict:
        return _object, _same
    if origin is tuple:
        inner = typing.get_args(hint)[0] if typing.get_args(hint) else None
        if isinstance(inner, type) and is_dataclass(inner):
            return _nested_tuple(inner)
        return _objects, list
    if isinstance(origin, type) and is_dataclass(origin):
        return _nested(origin, optional)
    raise TypeError(f"no wire form for {hint!r}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # the attribute
    path: tuple[str, ...]  # where it is in the payload: ("alert_count",), ("position", "lat")
    read: _Reader
    write: _Writer
    key: bool  # its object in the payload is null while this field is None


_TABLES: dict[type, tuple[_Field, ...]] = {}


def _table(cls: type[Any]) -> tuple[_Field, ...]:
    """The wire form of a dataclass's fields, in their order, worked out once per class."""
    table = _TABLES.get(cls)
    if table is None:
        hints = typing.get_type_hints(cls)
        rows = []
        for f in fields(cls):
            read, write = _codec(hints[f.name], f.default)
            where = f.metadata.get("wire", (f.name,))
            rows.append(_Field(f.name, tuple(where), read, write, bool(f.metadata.get("key"))))
        table = _TABLES[cls] = tuple(rows)
    return table


def inside(*path: str, key: bool = False) -> dict[str, Any]:
    """The metadata of a field kept inside an object of the payload, at ``path``; ``key``: that object is
    null while this field is None."""
    return {"wire": path, "key": key}


class Wire:
    """A view whose JSON form is its fields' (see the module's docstring)."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        groups: dict[str, dict[str, Any] | None] = {}
        for f in _table(type(self)):
            value = getattr(self, f.name)
            if len(f.path) == 1:
                out[f.name] = f.write(value)
                continue
            outer = f.path[0]
            if outer not in groups:
                groups[outer] = out[outer] = {}
            group = groups[outer]
            if f.key and value is None:
                groups[outer] = out[outer] = None
            elif group is not None:
                group[f.path[1]] = f.write(value)
        return out

    @classmethod
    def from_json(cls, obj: object) -> Self:
        """A payload back into its view; :class:`PayloadError` names the first field it cannot read."""
        if not isinstance(obj, dict):
            raise PayloadError("$: expected a JSON object")
        values: dict[str, Any] = {}
        groups: dict[str, dict[str, Any] | None] = {}
        for f in _table(cls):
            if len(f.path) == 1:
                values[f.name] = f.read(obj, f.name)
                continue
            outer = f.path[0]
            if outer not in groups:
                groups[outer] = _object(obj, outer)
            group = groups[outer]
            values[f.name] = f.read(group, f.path[1]) if group else None
        return cls(**values)


# --- the views ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitView(Wire):
    unit: str
    alias: str | None
    position: Position | None  # fix_time: the receiver's, else when the carrying event was decoded
    last_heard: datetime | None
    last_kind: str | None
    last_channel: str | None
    last_gateway: str | None
    last_event_id: str | None
    gateway_online: bool | None  # of last_gateway; None when that gateway never said


@dataclass(frozen=True, slots=True)
class PartView(Wire):
    """One department's part of a case: its state, the unit sent, and its clocks (due: the limit's end)."""

    id: int
    department: str
    role: str  # single | lead | assist | joint | transfer
    state: str  # new | dispatched | accepted | arrived | handled | transferred | closed (PartState)
    unit: str | None
    opened_at: datetime
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    arrived_at: datetime | None = None
    handled_at: datetime | None = None
    transferred_at: datetime | None = None
    accept_due: datetime | None = None
    arrive_due: datetime | None = None
    resolve_due: datetime | None = None
    escalated: str | None = None  # accept | arrive | resolve: the last limit it overran
    dispatch_result: str | None = None  # the gateway's last word on the dispatch: sent, acked, no_transmit_path ...

    @property
    def open(self) -> bool:
        return self.state not in (PartState.HANDLED, PartState.TRANSFERRED, PartState.CLOSED)


@dataclass(frozen=True, slots=True)
class IncidentView(Wire):
    id: int
    state: str  # new | acknowledged | resolved (bridge/models.py IncidentState)
    resolution: str | None  # handled | false_alarm, once resolved
    unit: str | None
    alias: str | None
    gateway: str
    channel: str
    label: str | None
    opened_at: datetime  # the first alert's time
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    first_event_id: str
    last_event_id: str
    last_alert_at: datetime
    alert_count: int
    # The alert's position, else the unit's last known one; on the wire: "position": {lat, lon, time}.
    lat: float | None = field(metadata=inside("position", "lat", key=True))
    lon: float | None = field(metadata=inside("position", "lon", key=True))
    position_time: datetime | None = field(metadata=inside("position", "time"))
    updated_at: datetime
    category: str = "alert"  # or the street-event category a camera detected
    ack_due: datetime | None = None
    resolve_due: datetime | None = None
    escalated: str | None = None  # "ack" | "resolve": the time limit it overran
    escalated_at: datetime | None = None
    suggested: tuple[dict[str, Any], ...] = ()  # nearest units: {unit, alias, distance_m, heard}
    assigned_unit: str | None = None  # who the dispatcher sent
    # The case: who found it (radio, wired, camera, dispatcher, needs_help, lone_worker), its flow, the
    # camera that found it, its legal duty, a camera case's verdict, the case a help alert is of, its parts.
    source: str = "radio"
    flow: str | None = None
    camera: str | None = None
    duty: str | None = None
    verdict: str | None = None  # valid | false_detection
    verdict_reason: str | None = None
    linked_case: int | None = None
    parts: tuple[PartView, ...] = ()

    @property
    def overdue(self) -> bool:
        """Past a time limit: the case's own (acknowledge, resolve) or one of its parts'."""
        return bool(self.escalated) or any(p.escalated and p.open for p in self.parts)

    def to_json(self, change: str | None = None) -> dict[str, Any]:
        """The payload of ``bridge/incident/{id}``; ``change`` says what just happened to it."""
        body = Wire.to_json(self)
        return {"id": body.pop("id"), "change": change, **body}

    @staticmethod
    def change_of(obj: object) -> str | None:
        """What a ``bridge/incident/{id}`` payload says just happened to its incident."""
        return _str(obj, "change") if isinstance(obj, dict) else None


@dataclass(frozen=True, slots=True)
class HistoryEntry(Wire):
    at: datetime
    actor: str  # an operator, or "bridge"
    action: str  # opened | alert | acknowledged | resolved | note | ...
    note: str | None
    event_id: str | None


@dataclass(frozen=True, slots=True)
class CallView(Wire):
    """A received transmission: the call event, and its clip if the bridge has it."""

    event_id: str
    time: datetime
    unit: str | None
    channel: str
    duration_s: float | None
    codec: str | None  # None: the clip has not arrived (yet)
    size: int | None
    sha256: str | None


@dataclass(frozen=True, slots=True)
class GatewayView(Wire):
    name: str
    online: bool
    state: dict[str, Any] | None  # the last retained state payload as the gateway sent it
    last_seq: int
    contiguous_seq: int
    lost: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """What the incident screen shows; read from the database, never sent whole."""

    incident: IncidentView
    history: list[HistoryEntry]  # oldest first
    alerts: list[Event]  # the alert events, oldest first
    calls: list[CallView] = field(default_factory=list)  # the transmissions the alerts came in
    correlation: Correlation | None = None  # cameras, detections, evidence
