"""What the console reads: the bridge's database at start (and after a broker outage), the bridge's MQTT
payloads afterwards, both as the bridge's own view types.

    Snapshot        open incidents, units and gateways, read from the database in one go
    StoreHandle     the database, opened lazily (in a worker thread: opening may block) and read only
    incident_from_json / unit_from_json     ``bridge/incident/{id}`` and ``bridge/unit/{unit}`` payloads
                                            back into IncidentView / UnitView (the inverse of to_json)

The console never writes to the database: what dispatchers do goes to the bridge as commands over MQTT,
so that every console (and the bridge's history) sees the same thing.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from bridge.store import GatewayView, IncidentDetail, IncidentView, Store, UnitView
from gateway.events import EventError, Position, parse_time


class PayloadError(ValueError):
    """A bridge payload the console cannot read; the message names the field."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    incidents: list[IncidentView]  # open ones, newest first
    units: list[UnitView]
    gateways: list[GatewayView]


class StoreHandle:
    """The bridge's database for reading; opened on first use, from whichever worker thread gets there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        with self._lock:
            if self._store is None:
                # The bridge owns the schema: a console never migrates it.
                self._store = Store.open(self.url, migrate_schema=False)
            return self._store

    def snapshot(self, limit: int = 200) -> Snapshot:
        store = self.get()
        return Snapshot(store.open_incidents(limit), store.units(), store.gateways())

    def incident_detail(self, incident_id: int) -> IncidentDetail | None:
        return self.get().incident_detail(incident_id)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def describe_error(exc: BaseException) -> str:
    """A database failure in a few words for the screen (the log has the whole of it)."""
    text = str(getattr(exc, "orig", None) or exc)
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return "not created yet"
    if isinstance(exc, OperationalError):
        return "unreachable"
    return type(exc).__name__


# --- the bridge's payloads back into its views -----------------------------------------------


def _time(obj: dict[str, Any], key: str, *, optional: bool = True) -> datetime | None:
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise PayloadError(f"{key}: required time is missing")
    try:
        return parse_time(value, key)  # UTC, and nothing a datetime cannot hold once in UTC
    except EventError as exc:
        raise PayloadError(str(exc)) from None


def _required_time(obj: dict[str, Any], key: str) -> datetime:
    t = _time(obj, key, optional=False)
    assert t is not None
    return t


def _str(obj: dict[str, Any], key: str, *, optional: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{key}: expected text, got {value!r}")
    return value


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key}: expected an integer, got {value!r}")
    return value


def _float(obj: dict[str, Any], key: str) -> float | None:
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


def _object(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise PayloadError(f"{key}: expected an object, got {value!r}")
    return value


def incident_from_json(obj: object) -> tuple[IncidentView, str | None]:
    """A ``bridge/incident/{id}`` payload: the incident and what just happened to it."""
    if not isinstance(obj, dict):
        raise PayloadError("$: expected a JSON object")
    where = _object(obj, "position")
    view = IncidentView(
        id=_int(obj, "id"),
        state=_str(obj, "state", optional=False) or "",
        resolution=_str(obj, "resolution"),
        unit=_str(obj, "unit"),
        alias=_str(obj, "alias"),
        gateway=_str(obj, "gateway", optional=False) or "",
        channel=_str(obj, "channel", optional=False) or "",
        label=_str(obj, "label"),
        opened_at=_required_time(obj, "opened_at"),
        acknowledged_at=_time(obj, "acknowledged_at"),
        acknowledged_by=_str(obj, "acknowledged_by"),
        resolved_at=_time(obj, "resolved_at"),
        resolved_by=_str(obj, "resolved_by"),
        first_event_id=_str(obj, "first_event_id", optional=False) or "",
        last_event_id=_str(obj, "last_event_id", optional=False) or "",
        last_alert_at=_required_time(obj, "last_alert_at"),
        alert_count=_int(obj, "alert_count"),
        lat=_float(where, "lat") if where else None,
        lon=_float(where, "lon") if where else None,
        position_time=_time(where, "time") if where else None,
        updated_at=_required_time(obj, "updated_at"),
        category=_str(obj, "category") or "alert",
        ack_due=_time(obj, "ack_due"),
        resolve_due=_time(obj, "resolve_due"),
        escalated=_str(obj, "escalated"),
        escalated_at=_time(obj, "escalated_at"),
        suggested=tuple(u for u in obj.get("suggested") or () if isinstance(u, dict)),
        assigned_unit=_str(obj, "assigned_unit"),
    )
    return view, _str(obj, "change")


def unit_from_json(obj: object) -> UnitView:
    """A ``bridge/unit/{unit}`` payload."""
    if not isinstance(obj, dict):
        raise PayloadError("$: expected a JSON object")
    p = _object(obj, "position")
    position = None
    if p is not None:
        lat, lon = _float(p, "lat"), _float(p, "lon")
        if lat is None or lon is None:
            raise PayloadError("position: lat and lon are required")
        position = Position(lat=lat, lon=lon, alt_m=_float(p, "alt_m"), speed_mps=_float(p, "speed_mps"),
                            course_deg=_float(p, "course_deg"), fix_time=_time(p, "fix_time"),
                            source=_str(p, "source") or "unknown")
    online = obj.get("gateway_online")
    return UnitView(
        unit=_str(obj, "unit", optional=False) or "",
        alias=_str(obj, "alias"),
        position=position,
        last_heard=_time(obj, "last_heard"),
        last_kind=_str(obj, "last_kind"),
        last_channel=_str(obj, "last_channel"),
        last_gateway=_str(obj, "last_gateway"),
        last_event_id=_str(obj, "last_event_id"),
        gateway_online=online if isinstance(online, bool) else None,
    )
