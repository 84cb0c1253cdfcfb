"""Messages that carry news into the console's app thread: from the MQTT network thread (the bridge's
incident and unit messages, gateway states, the broker coming and going) and from database workers."""

from __future__ import annotations

from textual.message import Message

from bridge.views import IncidentDetail, IncidentView, UnitView
from console.data import Snapshot


class IncidentChanged(Message):
    """``bridge/incident/{id}``: an incident after a change (``change``: opened, alert, acknowledged, ...)."""

    def __init__(self, incident: IncidentView, change: str | None) -> None:
        super().__init__()
        self.incident = incident
        self.change = change


class UnitChanged(Message):
    """``bridge/unit/{unit}``: a unit's last known state."""

    def __init__(self, unit: UnitView) -> None:
        super().__init__()
        self.unit = unit


class GatewayChanged(Message):
    """``gw/{gateway}/state``: a gateway came online or went offline (its Last Will)."""

    def __init__(self, gateway: str, online: bool) -> None:
        super().__init__()
        self.gateway = gateway
        self.online = online


class CommandRefused(Message):
    """``bridge/refused``: the bridge refused a command this console sent (``what``: e.g. "ack #12")."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__()
        self.what = what
        self.reason = reason


class BrokerStatus(Message):
    """The MQTT connection came up (its subscriptions taken) or went down."""

    def __init__(self, connected: bool, reason: str = "") -> None:
        super().__init__()
        self.connected = connected
        self.reason = reason


class SnapshotLoaded(Message):
    """The database's current state, read by a worker."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class SnapshotFailed(Message):
    """The database could not be read (not there yet, unreachable); the console keeps to MQTT meanwhile."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class DetailLoaded(Message):
    """An incident's detail (history, alerts), read by a worker for the detail screen."""

    def __init__(self, incident_id: int, detail: IncidentDetail | None, error: str | None = None) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.detail = detail
        self.error = error


class IncidentAction(Message):
    """A dispatcher pressed a key for an incident: ``ack``, ``resolve`` or ``note``. Screens post it; the
    app (which knows the operator and holds the link to the bridge) carries it out."""

    def __init__(self, action: str, incident_id: int) -> None:
        super().__init__()
        self.action = action
        self.incident_id = incident_id
