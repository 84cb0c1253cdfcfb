"""What the console reads: the bridge's database at start (and after a broker outage), the bridge's MQTT
payloads afterwards (read back by the views themselves: bridge/views.py), both as the bridge's own view
types.

    Snapshot        open incidents, units and gateways, read from the database in one go
    StoreHandle     the database, opened lazily (in a worker thread: opening may block) and read only

The console never writes to the database: what dispatchers do goes to the bridge as commands over MQTT,
so that every console (and the bridge's history) sees the same thing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from bridge.store import Store
from bridge.views import GatewayView, IncidentDetail, IncidentView, UnitView


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
