"""What one console knows: open incidents, units and gateways, merged from the database snapshot and the
bridge's live messages in whatever order they arrive (pure: no Textual, no I/O).

A console reads the database while MQTT messages already flow, and after a broker outage it reads it
again; so a snapshot may be older than a message already applied. Each incident carries a version
(its ``updated_at`` at millisecond precision, as the wire has it, then how far along it is): whatever is
older than what is held is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from bridge.views import Change, GatewayView, IncidentState, IncidentView, UnitView

NEW, ACKNOWLEDGED, RESOLVED = IncidentState.NEW, IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED
_PROGRESS: dict[str, int] = {NEW: 0, ACKNOWLEDGED: 1, RESOLVED: 2}
_RESOLVED_KEPT = 10_000  # resolved incidents remembered, so that a late message cannot bring one back


class Outcome(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"  # resolved: leaves the queue
    STALE = "stale"  # older than what is held, or resolved and never held: nothing to show


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    outcome: Outcome
    incident: IncidentView
    ring: bool  # call for attention: a new alert, or a re-announced unacknowledged incident


def version(i: IncidentView) -> tuple[datetime, int, int]:
    ms = i.updated_at.replace(microsecond=i.updated_at.microsecond // 1000 * 1000)
    return ms, _PROGRESS.get(i.state, 0), i.alert_count


def queue_order(i: IncidentView) -> tuple[int, float, int]:
    """The alert queue's order: unacknowledged above acknowledged, newest alert first within each."""
    return (0 if i.state == NEW else 1, -i.last_alert_at.timestamp(), -i.id)


@dataclass
class ConsoleState:
    incidents: dict[int, IncidentView] = field(default_factory=dict)  # open ones only
    units: dict[str, UnitView] = field(default_factory=dict)
    gateways: dict[str, bool] = field(default_factory=dict)  # name -> online
    # Each gateway's row in the database as last read (its stored state payload: the health screen's
    # picture of a gateway this console has not yet heard from over MQTT).
    gateway_views: dict[str, GatewayView] = field(default_factory=dict)
    # Open incidents the bridge has spoken of since the snapshot being read was started: the snapshot may not
    # know them yet, so it must not remove them. Only open ones: a resolved one is forgotten here as it leaves
    # (``_resolved`` keeps it out), else a console would hold every incident id of its life (a snapshot is
    # read at start and after an outage only).
    _live_since_snapshot: set[int] = field(default_factory=set)
    _resolved: dict[int, tuple[datetime, int, int]] = field(default_factory=dict)  # id -> version when resolved

    # --- incidents ---------------------------------------------------------------------------

    def apply_incident(self, incoming: IncidentView, change: str | None = None) -> IncidentUpdate:
        """A live ``bridge/incident/{id}`` message."""
        update = self._merge(incoming, change)
        if incoming.id in self.incidents:
            self._live_since_snapshot.add(incoming.id)
        else:  # resolved, now or before (or news of one never held): no snapshot can bring it back
            self._live_since_snapshot.discard(incoming.id)
        return update

    def _merge(self, incoming: IncidentView, change: str | None) -> IncidentUpdate:
        held = self.incidents.get(incoming.id)
        gone = self._resolved.get(incoming.id)
        if gone is not None and version(incoming) <= gone:
            return IncidentUpdate(Outcome.STALE, incoming, False)
        if held is not None and version(incoming) < version(held):
            return IncidentUpdate(Outcome.STALE, held, False)
        if incoming.state == RESOLVED:
            self._resolved[incoming.id] = version(incoming)
            if len(self._resolved) > _RESOLVED_KEPT:  # a late message for an incident this old is no risk
                for old in list(self._resolved)[: _RESOLVED_KEPT // 2]:
                    del self._resolved[old]
            if held is None:
                return IncidentUpdate(Outcome.STALE, incoming, False)
            del self.incidents[incoming.id]
            return IncidentUpdate(Outcome.REMOVED, incoming, False)
        self.incidents[incoming.id] = incoming
        fresh_alert = change in (Change.OPENED, Change.ALERT) and (held is None
                                                                   or incoming.alert_count > held.alert_count)
        reannounced = change == Change.REANNOUNCE and incoming.state == NEW
        escalated = change == Change.ESCALATED  # past its time limit: every console is told again
        outcome = Outcome.ADDED if held is None else Outcome.CHANGED
        return IncidentUpdate(outcome, incoming, fresh_alert or reannounced or escalated)

    def begin_snapshot(self) -> None:
        """A snapshot is about to be read: from now on, what the bridge says is newer than it may be."""
        self._live_since_snapshot.clear()

    def apply_snapshot(self, incidents: list[IncidentView], units: list[UnitView],
                       gateways: list[GatewayView]) -> list[IncidentUpdate]:
        """Merge what the database said; returns what changed of the incidents."""
        out = []
        listed = {i.id for i in incidents}
        for held_id in list(self.incidents):
            # Not open in the database and not spoken of since: resolved while this console was not listening.
            if held_id not in listed and held_id not in self._live_since_snapshot:
                out.append(IncidentUpdate(Outcome.REMOVED, self.incidents.pop(held_id), False))
        for incident in incidents:
            update = self._merge(incident, None)
            if update.outcome is not Outcome.STALE:
                out.append(update)
        self.gateway_views = {g.name: g for g in gateways}
        for name, online in ((g.name, g.online) for g in gateways):
            self.gateways.setdefault(name, online)  # a live state message is newer than the database
        for unit in units:
            self.apply_unit(unit, from_snapshot=True)
        return out

    def ordered(self) -> list[IncidentView]:
        return sorted(self.incidents.values(), key=queue_order)

    @property
    def unacknowledged(self) -> int:
        return sum(1 for i in self.incidents.values() if i.state == NEW)

    # --- units and gateways ------------------------------------------------------------------

    def apply_unit(self, incoming: UnitView, *, from_snapshot: bool = False) -> UnitView | None:
        """A unit's state; returns it as it is to be shown (gateway online from this console's own
        knowledge), or None when it is older than what is held."""
        held = self.units.get(incoming.unit)
        if held is not None and held.last_heard and incoming.last_heard and incoming.last_heard < held.last_heard:
            return None
        if from_snapshot and held is not None and held == incoming:
            return None
        online = self.gateways.get(incoming.last_gateway or "")
        shown = replace(incoming, gateway_online=online) if online is not None else incoming
        self.units[incoming.unit] = shown
        return shown

    def apply_gateway(self, name: str, online: bool) -> list[UnitView]:
        """A gateway's retained state; returns the units last heard through it, as now to be shown."""
        self.gateways[name] = online
        changed = []
        for key, unit in self.units.items():
            if unit.last_gateway == name and unit.gateway_online is not online:
                self.units[key] = replace(unit, gateway_online=online)
                changed.append(self.units[key])
        return changed

    def unit_incident(self, unit: str) -> IncidentView | None:
        """The unit's newest open incident, if it has one."""
        mine = [i for i in self.incidents.values() if i.unit == unit]
        return min(mine, key=queue_order) if mine else None
