"""Incidents: what operators do to them (acknowledge, resolve, note, assign; a unit's alias), with the
transitions as a table, and what the bridge does to them by itself (street incidents from cameras, the
units it suggests, escalation past time limits, re-announcement, evidence in the history).

Every change is made by a named operator (or the bridge, actor ``bridge``) and written into the
incident's history in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from bridge.commands import Action, operator_problem
from bridge.models import BRIDGE_ACTOR, NEW, RESOLUTIONS, RESOLVED, EventRow, IncidentHistoryRow, IncidentRow, UnitRow
from bridge.store.base import IncidentError
from bridge.store.cases import Cases
from bridge.views import IncidentState, IncidentView, Resolution, UnitView, Verdict

VERDICTS = tuple(v.value for v in Verdict)

#: Protocols whose radios understand an emergency acknowledgement sent back to them (gateway/answer.py).
ANSWERABLE = ("mdc:", "fleetsync:")


def _operator(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise IncidentError("operator: every change is made by a named operator, got none")
    problem = operator_problem(name)
    if problem is not None:
        raise IncidentError(f"operator: {problem}")
    return name.strip()


class Incidents(Cases):
    """Incidents' lives, by operators and by the bridge."""

    def acknowledge(self, incident_id: int, operator: str, note: str | None = None) -> IncidentView:
        """new -> acknowledged, by ``operator``."""
        return self._change(incident_id, Action.ACK, operator, note=note)

    def resolve(self, incident_id: int, operator: str, resolution: str, note: str | None = None, *,
                verdict: str | None = None, reason: str | None = None) -> IncidentView:
        """new or acknowledged -> resolved, with a resolution (handled | false_alarm), by ``operator``. A case a
        camera found is verified on the way: ``verdict`` valid (a real case) or false_detection, with the
        reason; without one, a handled case is valid and a false alarm a false detection."""
        if resolution not in RESOLUTIONS:
            raise IncidentError(f"resolution: expected one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
        if verdict is not None and verdict not in VERDICTS:
            raise IncidentError(f"verdict: expected one of {', '.join(VERDICTS)}, got {verdict!r}")
        return self._change(incident_id, Action.RESOLVE, operator, resolution=str(resolution), note=note,
                            verdict=verdict, reason=reason)

    def assign(self, incident_id: int, operator: str, unit: str) -> IncidentView:
        """Send ``unit`` to the incident (acknowledging it on the way: who sends someone has seen it)."""
        if not isinstance(unit, str) or not unit.strip() or len(unit) > 64:
            raise IncidentError("unit: expected the unit sent, e.g. mdc:1234 or a patrol car's name")
        return self._change(incident_id, Action.ASSIGN, operator, note=unit.strip())

    def add_note(self, incident_id: int, operator: str, note: str) -> IncidentView:
        if not isinstance(note, str) or not note.strip():
            raise IncidentError("note: expected some text")
        return self._change(incident_id, Action.NOTE, operator, note=note)

    # (action, state) -> new state; an action not listed for a state is refused.
    _TRANSITIONS: Mapping[tuple[Action, IncidentState], IncidentState] = {
        (Action.ACK, IncidentState.NEW): IncidentState.ACKNOWLEDGED,
        # Resolving a new incident acknowledges it on the way: the operator who closes it has seen it.
        (Action.RESOLVE, IncidentState.NEW): IncidentState.RESOLVED,
        (Action.RESOLVE, IncidentState.ACKNOWLEDGED): IncidentState.RESOLVED,
        (Action.ASSIGN, IncidentState.NEW): IncidentState.ACKNOWLEDGED,
        (Action.ASSIGN, IncidentState.ACKNOWLEDGED): IncidentState.ACKNOWLEDGED,
        (Action.NOTE, IncidentState.NEW): IncidentState.NEW,
        (Action.NOTE, IncidentState.ACKNOWLEDGED): IncidentState.ACKNOWLEDGED,
        (Action.NOTE, IncidentState.RESOLVED): IncidentState.RESOLVED,
    }
    _PAST: Mapping[Action, str] = {Action.ACK: "acknowledged", Action.RESOLVE: "resolved",
                                   Action.ASSIGN: "assigned a unit"}

    def _change(
        self, incident_id: int, action: Action, operator: str, *, resolution: str | None = None,
        note: str | None = None, verdict: str | None = None, reason: str | None = None
    ) -> IncidentView:
        who = _operator(operator)
        if note is not None and (not isinstance(note, str) or len(note) > 4000):
            raise IncidentError("note: expected text of at most 4000 characters")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 4000):
            raise IncidentError("reason: expected text of at most 4000 characters")
        now = self.clock()
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise IncidentError(f"incident {incident_id}: no such incident")
            target = self._TRANSITIONS.get((action, IncidentState(row.state)))
            if target is None:
                raise IncidentError(f"incident {incident_id} is {row.state}; it cannot be {self._PAST[action]}")
            if target is not IncidentState.NEW and row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = now, who
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="acknowledged",
                                         note=note if action is Action.ACK else None))
            if target is IncidentState.RESOLVED:
                if verdict is not None and row.source != "camera":
                    raise IncidentError(f"verdict: only a case a camera found is verified (incident {row.id} was "
                                        f"found by {row.source})")
                row.resolved_at, row.resolved_by, row.resolution = now, who, resolution
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="resolved",
                                         note=f"{resolution}: {note}" if note else resolution))
                self._close_parts(s, row.id, now)
                if row.source == "camera":
                    row.verdict = verdict or (Verdict.VALID if resolution == Resolution.HANDLED
                                              else Verdict.FALSE_DETECTION).value
                    row.verdict_reason = (reason or note or None)
                    said = row.verdict.replace("_", " ") + (f": {row.verdict_reason}" if row.verdict_reason else "")
                    s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="verified",
                                             note=said[:4000]))
            if action is Action.NOTE:
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="note", note=note))
            if action is Action.ASSIGN:
                row.assigned_unit = note
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=who, action="assigned", note=note))
            row.state = target.value  # plain text in the database
            row.updated_at = now
            s.flush()
            return self._incident_view(s, row)

    def request_radio_ack(self, incident_id: int, operator: str) -> tuple[IncidentView, dict[str, Any]] | None:
        """If the incident's radio can be told its emergency was acknowledged, record that it is being
        asked and return the command for the gateway that heard the last alert (gateway, channel, unit)."""
        who = _operator(operator)
        now = self.clock()
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

    def add_history(self, incident_id: int, action: str, note: str, actor: str = BRIDGE_ACTOR) -> IncidentView | None:
        """Something the bridge did for an incident (fetched evidence, say), in its history."""
        now = self.clock()
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
        now = self.clock()
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
                                  category=category, source="camera", camera=camera, opened_at=at,
                                  first_event_id=f"det-{detection_id}",
                                  last_event_id=f"det-{detection_id}", last_alert_at=at, alert_count=1, lat=lat,
                                  lon=lon, position_time=at if lat is not None else None, last_announced=now,
                                  ack_due=ack_due, resolve_due=resolve_due, updated_at=now)
                s.add(row)
                s.flush()
                s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=BRIDGE_ACTOR, action="opened", note=note))
                self._start_case(s, row, now)
                change = "opened"
            else:
                row.alert_count += 1
                row.last_alert_at = max(row.last_alert_at, at)
                row.last_event_id = f"det-{detection_id}"
                row.updated_at = now
                change = "alert"
            s.flush()
            return self._incident_view(s, row), change

    def suggest(self, incident_id: int, units: list[dict[str, Any]]) -> IncidentView | None:
        with self._writing() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                return None
            row.suggested = units
            row.updated_at = self.clock()
            s.flush()
            return self._incident_view(s, row)

    def escalate_due(self, now: datetime | None = None) -> list[IncidentView]:
        """Incidents past their time limit: marked, written into the history, returned once per limit."""
        now = now or self.clock()
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

    def due_announcements(self, every_s: float, now: datetime | None = None) -> list[IncidentView]:
        """New (unacknowledged) incidents not announced for ``every_s``; each is claimed, so that of
        several bridges on one database only one re-announces it."""
        now = now or self.clock()
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

    def set_alias(self, unit: str, alias: str | None) -> UnitView:
        """Name the officer or vehicle behind a radio identity (None clears it)."""
        now = self.clock()
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
