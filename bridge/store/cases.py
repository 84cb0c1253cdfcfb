"""Cases: an incident is a case of a kind, handled by departments, each department's part with its own
state and clock; units are dispatched to their radios, answer from them, and are checked on when they
fall silent; a case of the transfer flow is handed to an outside system.

    a part:   new --assign--> dispatched --answer--> accepted --> arrived --> handled
              new --receipt of the outside system--> transferred                     (flow transfer)
              any other --its case resolved--> closed      (its times say how far it came)

    kind      [case_kinds.<kind>]: flow, departments (lead first), duty, accept_s / arrive_s / resolve_s
    flow      single: one part; lead: the first department leads, the others assist; joint: each
              department owns a part; transfer: one part, the outside system's
    clocks    every part's clock starts when the part opens (with the case, or when a department is
              added); accept_s stops at accepted, arrive_s at arrived, resolve_s at handled. A limit
              passed is escalated once: the part marked, a line in the history, every console told.
    answers   [answers]: what the site's radios send (a FleetSync status, an MDC-1200 status, a DTMF
              code, an APRS reply, a Modbus input), each mapped to a transition of the sending unit's
              open part. A later step implies the earlier ones (an "arrived" with no "accepted"
              accepts too, at the same time, said so in the history); a step already made changes
              nothing. needs_help opens an alert of its own for the unit, linked to the case. An answer
              from a unit with no open part is kept (``case_answers``), logged and counted, never
              lost; a DTMF code with no unit of its own waits for the unit identified in the same
              transmission (its call event, or a PTT ID that names the call).

Every answer, applied or not, is a row of ``case_answers``; every step is a line in the case's history.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.cameras.geometry import box_deg, haversine_m
from bridge.models import (
    BRIDGE_ACTOR,
    NEW,
    RESOLVED,
    CameraRow,
    CaseAnswerRow,
    CasePartRow,
    EventRow,
    IncidentHistoryRow,
    IncidentRow,
    UnitRow,
)
from bridge.store.base import Database, IncidentError, call_duration
from bridge.views import IncidentView, PartState
from config.schema import CaseKindConfig
from gateway.events import Event, Kind, is_unit, printable, uuid7

#: Parts whose unit is on its way or there: what an answer moves, what the lone-worker check watches.
ON_CASE = (PartState.DISPATCHED.value, PartState.ACCEPTED.value, PartState.ARRIVED.value)
#: Parts still running: their clocks are watched. (A part of a resolved case is closed, so that these
#: stay few however many cases a year leaves behind, and are found by the index on state.)
RUNNING = (PartState.NEW.value, *ON_CASE)
#: The order of a part's steps: an answer never moves a part back.
STEPS = {PartState.NEW.value: 0, PartState.DISPATCHED.value: 1, PartState.ACCEPTED.value: 2,
         PartState.ARRIVED.value: 3, PartState.HANDLED.value: 4, PartState.TRANSFERRED.value: 4,
         PartState.CLOSED.value: 5}
#: The limits in the order their clocks stop; a part is escalated once for each, the worst overrun last.
LIMITS = ("accept", "arrive", "resolve")
NEAR_CAMERA_M = 300.0  # a case within this of a named camera is announced as at that camera
TEXT_MAX = 48  # a FleetSync short message (the shortest data path) carries this much
# An answer decoded with no unit and no transmission of its own takes the unit of the transmission on its
# channel that ended at most this long before it (a DTMF sequence is complete interdigit_s after its last
# digit, which may be past the recorder's hang_ms); transmissions longer than CALL_SPAN_S are not looked for.
CALL_AFTER_S = 3.0
CALL_SPAN_S = 130.0
HISTORY_MAX = 4000


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """What one answer did: the case it changed (and how), an alert it opened, or why it changed nothing."""

    outcome: str  # applied | no_open_case | no_unit | unchanged | waiting
    note: str
    case: IncidentView | None = None
    alert: IncidentView | None = None  # needs_help


def _due(start: datetime, seconds: float | None) -> datetime | None:
    return start + timedelta(seconds=seconds) if seconds else None


def _roles(flow: str, n: int) -> list[str]:
    if flow == "lead":
        return ["lead"] + ["assist"] * (n - 1)
    if flow == "joint":
        return ["joint"] * n
    return ["single"] * n


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def _ascii_word(text: str) -> str:
    return re.sub(r"[^A-Z0-9/.,\-]+", " ", text.upper()).strip()


def _speakers(events: Sequence[Event]) -> dict[str, str | None]:
    """Who spoke in each transmission of these events: its call event's unit, or that of anything decoded in
    it that named one (call id -> unit; None: the call event came and named nobody)."""
    out: dict[str, str | None] = {}
    for e in events:
        call = e.detail.get("call")
        if e.kind == Kind.CALL:
            out[e.id] = e.unit or out.get(e.id)
        elif isinstance(call, str) and e.unit is not None:
            out.setdefault(call, e.unit)
    return out


def announcement(case_id: int, kind: str, rule: CaseKindConfig | None, place_text: str, place_spoken: str,
                 left_s: float | None) -> tuple[str, dict[str, str]]:
    """What a unit's radio is told: a short ASCII text for the data paths (at most :data:`TEXT_MAX`
    characters: case number, kind, place, minutes left to accept, or NOW past the limit) and the speech in
    the kind's language. ``left_s``: the time left to accept (None: no limit)."""
    language = rule.language if rule is not None else "en"
    name = (rule.name if rule is not None and rule.name else kind.replace("_", " "))
    late = left_s is not None and left_s <= 0
    limit = "" if left_s is None else " NOW" if late else f" {_minutes(left_s)}MIN"
    head = f"CASE {case_id} {_ascii_word(kind.replace('_', ' '))[:16]}".strip()
    text = f"{head} @{_ascii_word(place_text)}" if place_text else head
    text = text[:TEXT_MAX - len(limit)].rstrip() + limit
    if language.split("-")[0] in ("cmn", "zh", "yue"):
        when = "" if left_s is None else "请立即接警。" if late else f"请在{_minutes(left_s)}分钟内接警。"
        spoken = f"案件{case_id}，{name}，地点：{place_spoken}。{when}"
    else:
        when = "" if left_s is None else " Accept now." if late else f" Accept within {_minutes(left_s)} minutes."
        spoken = f"Case {case_id}. {name}, at {place_spoken}.{when}"
    return text, {"text": spoken, "language": language}


class Cases(Database):
    """Cases, their parts, dispatches to radios and the radios' answers."""

    # --- a case's parts ------------------------------------------------------------------------

    def _kind(self, kind: str) -> CaseKindConfig | None:
        return self.rules.kinds.get(kind)

    def _start_case(self, s: Session, row: IncidentRow, now: datetime) -> None:
        """Give a new case its kind's flow, duty and parts (a kind not configured has none)."""
        rule = self._kind(row.category)
        if rule is None:
            return
        row.flow, row.duty = rule.flow, rule.duty
        if rule.flow == "transfer":
            assert rule.transfer is not None
            departments, roles = [rule.transfer.name], ["transfer"]
        else:
            departments, roles = list(rule.departments), _roles(rule.flow, len(rule.departments))
        s.flush()
        for department, role in zip(departments, roles, strict=True):
            s.add(self._new_part(row, department, role, row.opened_at, rule, now))
        s.flush()

    @staticmethod
    def _new_part(case: IncidentRow, department: str, role: str, opened: datetime, rule: CaseKindConfig | None,
                  now: datetime) -> CasePartRow:
        transfer = role == "transfer"
        return CasePartRow(
            case_id=case.id, kind=case.category, department=department, role=role, state=PartState.NEW.value,
            opened_at=opened,
            accept_due=None if transfer or rule is None else _due(opened, rule.accept_s),
            arrive_due=None if transfer or rule is None else _due(opened, rule.arrive_s),
            resolve_due=None if transfer or rule is None else _due(opened, rule.resolve_s),
            updated_at=now)

    def _history(self, s: Session, row: IncidentRow, action: str, note: str, now: datetime,
                 actor: str = BRIDGE_ACTOR, event_id: str | None = None) -> None:
        s.add(IncidentHistoryRow(incident_id=row.id, at=now, actor=actor, action=action, note=note[:HISTORY_MAX],
                                 event_id=event_id))
        row.updated_at = now

    def open_case(self, kind: str, operator: str, *, note: str | None = None, unit: str | None = None,
                  camera: str | None = None, lat: float | None = None, lon: float | None = None) -> IncidentView:
        """A case a dispatcher opens by hand at a place: a unit's last position, a camera's, or coordinates.
        A kind not configured is refused, naming the kinds that are."""
        if self._kind(kind) is None:
            known = ", ".join(sorted(self.rules.kinds)) or "none configured"
            raise IncidentError(f"kind: {kind!r} is not a case kind of this site (case kinds: {known})")
        now = self.clock()
        with self._writing() as s:
            where: str
            if unit is not None:
                u = s.get(UnitRow, unit)
                if u is None or u.lat is None or u.lon is None:
                    raise IncidentError(f"unit: {unit} has no known position to open a case at")
                lat, lon, where = u.lat, u.lon, f"at {unit}'s position"
            elif camera is not None:
                c = s.get(CameraRow, camera)
                if c is None:
                    raise IncidentError(f"camera: no camera {camera!r} in the registry")
                lat, lon, where = c.lat, c.lon, f"at camera {camera}" + (f" ({c.name})" if c.name else "")
            elif lat is None or lon is None:
                raise IncidentError("place: give a unit, a camera, or lat and lon")
            else:
                where = f"at {lat:.5f},{lon:.5f}"
            label = f"{kind.replace('_', ' ')} {where}" + (f": {note}" if note else "")
            case_id = uuid7()
            row = IncidentRow(unit=None, gateway="dispatcher", channel=camera or "map", state="acknowledged",
                              label=label[:200], category=kind, source="dispatcher", camera=camera,
                              opened_at=now, acknowledged_at=now, acknowledged_by=operator, first_event_id=case_id,
                              last_event_id=case_id, last_alert_at=now, alert_count=0, lat=lat, lon=lon,
                              position_time=now, last_announced=now, updated_at=now)
            s.add(row)
            s.flush()
            self._history(s, row, "opened", label, now, actor=operator)
            self._start_case(s, row, now)
            s.flush()
            return self._incident_view(s, row)

    def add_department(self, case_id: int, operator: str, department: str) -> IncidentView:
        """Another department's part of an open case, its clock starting now."""
        if self.rules.department(department) is None:
            known = ", ".join(d.name for d in self.rules.departments) or "none configured"
            raise IncidentError(f"department: no department {department!r} (departments: {known})")
        now = self.clock()
        with self._writing() as s:
            row = self._open_case(s, case_id)
            self._add_part(s, row, department, now)
            self._history(s, row, "department", f"{department} added", now, actor=operator)
            s.flush()
            return self._incident_view(s, row)

    def _open_case(self, s: Session, case_id: int) -> IncidentRow:
        row = s.get(IncidentRow, case_id, with_for_update=True)
        if row is None:
            raise IncidentError(f"incident {case_id}: no such incident")
        if row.state == RESOLVED:
            raise IncidentError(f"incident {case_id} is resolved; its parts cannot change")
        return row

    def _parts(self, s: Session, case_id: int) -> list[CasePartRow]:
        return list(s.scalars(select(CasePartRow).where(CasePartRow.case_id == case_id)
                              .order_by(CasePartRow.id).with_for_update()))

    def _add_part(self, s: Session, row: IncidentRow, department: str, now: datetime) -> CasePartRow:
        parts = self._parts(s, row.id)
        if any(p.department == department for p in parts):
            raise IncidentError(f"incident {row.id}: {department} has a part already")
        if row.flow is None:  # a kind with no flow configured: the first department added leads
            row.flow = "lead"
        role = "joint" if row.flow == "joint" else "lead" if not parts else "assist"
        part = self._new_part(row, department, role, now, self._kind(row.category), now)
        s.add(part)
        s.flush()
        return part

    # --- dispatch ------------------------------------------------------------------------------

    def assign_unit(self, case_id: int, operator: str, unit: str, department: str | None = None
                    ) -> tuple[IncidentView, dict[str, Any] | None]:
        """Give the case to ``unit``: the part of ``department`` (else of the unit's own department, added
        if the case has none; else the lead or first open part) is dispatched to it, and, where the unit
        is a radio a gateway has heard, the command for that gateway is returned (``gw/{gw}/cmd/dispatch``);
        where it is not, the history says why no radio was told."""
        now = self.clock()
        with self._writing() as s:
            row = s.get(IncidentRow, case_id, with_for_update=True)
            if row is None:
                raise IncidentError(f"incident {case_id}: no such incident")
            part = self._part_for(s, row, unit, department, now)
            if part is not None:
                part.unit, part.state = unit, PartState.DISPATCHED.value
                part.dispatched_at, part.dispatched_by = now, operator
                part.accepted_at = part.arrived_at = None  # the unit sent now must accept it itself
                part.dispatch_gateway = part.dispatch_channel = part.dispatch_result = None
                part.radio_check_at = part.lone_alert_at = None
                part.updated_at = now
            command = self._dispatch_command(s, row, part, unit, operator, now)
            s.flush()
            return self._incident_view(s, row), command

    def _part_for(self, s: Session, row: IncidentRow, unit: str, department: str | None,
                  now: datetime) -> CasePartRow | None:
        if row.flow is None and department is None and (not is_unit(unit) or self.rules.department_of(unit) is None):
            return None  # a kind with no parts, and a unit of no department: the incident as before
        parts = self._parts(s, row.id)
        wanted = department or (self.rules.department_of(unit) if is_unit(unit) else None)
        if wanted is not None:
            found = next((p for p in parts if p.department == wanted), None)
            if found is not None:
                return found
            if department is not None and self.rules.department(department) is None:
                raise IncidentError(f"department: no department {department!r}")
            part = self._add_part(s, row, wanted, now)
            self._history(s, row, "department", f"{wanted} added: its unit {unit} sent", now)
            return part
        open_parts = [p for p in parts if p.state in RUNNING and p.role != "transfer"]
        return open_parts[0] if open_parts else None

    def _dispatch_command(self, s: Session, row: IncidentRow, part: CasePartRow | None, unit: str, operator: str,
                          now: datetime) -> dict[str, Any] | None:
        if not is_unit(unit):
            self._history(s, row, "dispatch", f"not sent over the radio: {printable(unit, 64)} is not a radio "
                          "identity (e.g. mdc:1234)", now)
            return None
        heard = s.get(UnitRow, unit)
        if heard is None or heard.last_gateway is None or heard.last_channel is None:
            self._history(s, row, "dispatch", f"not sent: no radio path to {unit}: no gateway has heard it", now)
            if part is not None:
                part.dispatch_result = "no_path"
            return None
        place_text, place_spoken = self._place(s, row)
        # What is left of the limit, not the limit: the public waited from when the part opened.
        left_s = (part.accept_due - now).total_seconds() if part is not None and part.accept_due else None
        text, speech = announcement(row.id, row.category, self._kind(row.category), place_text, place_spoken,
                                    left_s)
        if part is not None:
            part.dispatch_gateway, part.dispatch_channel, part.dispatch_result = \
                heard.last_gateway, heard.last_channel, "requested"
        self._history(s, row, "dispatch", f"to {unit} through {heard.last_gateway}/{heard.last_channel} (heard "
                      f"there last): {text}", now, actor=operator)
        return {"gateway": heard.last_gateway, "request": uuid7(), "case": row.id, "unit": unit,
                "channel": heard.last_channel, "text": text, "speech": speech, "operator": operator}

    def _place(self, s: Session, row: IncidentRow) -> tuple[str, str]:
        """Where the case is, for the radio: the camera that found it, else the nearest named camera (its id
        in text, its name spoken), else the coordinates. A vehicle's camera names no place: it has moved on."""
        if row.camera is not None:
            c = s.get(CameraRow, row.camera)
            if c is not None and c.kind != "vehicle":
                return c.id, c.name or c.id
        if row.lat is None or row.lon is None:
            return "", "the place on the dispatcher's map"
        dlat, dlon = box_deg(row.lat, NEAR_CAMERA_M)
        near = s.scalars(select(CameraRow).where(CameraRow.lat.between(row.lat - dlat, row.lat + dlat),
                                                 CameraRow.lon.between(row.lon - dlon, row.lon + dlon),
                                                 CameraRow.name != "", CameraRow.kind != "vehicle")).all()
        ranked = sorted((haversine_m(row.lat, row.lon, c.lat, c.lon), c.id, c) for c in near)
        if ranked and ranked[0][0] <= NEAR_CAMERA_M:
            c = ranked[0][2]
            return c.id, c.name
        coords = f"{row.lat:.5f},{row.lon:.5f}"
        return coords, f"{abs(row.lat):.4f} {'north' if row.lat >= 0 else 'south'}, " \
                       f"{abs(row.lon):.4f} {'east' if row.lon >= 0 else 'west'}"

    def _gateway_reports(self, s: Session, events: Sequence[Event], now: datetime) -> list[tuple[IncidentView, str]]:
        """A gateway's report of a dispatch, radio check or remote monitor it transmitted (one per path tried):
        in the case's history, and the part's last word on it."""
        out = []
        for e in events:
            command, case_id = e.detail.get("command"), e.detail.get("case")
            if command not in ("dispatch", "radio_check", "remote_monitor") or isinstance(case_id, bool) \
                    or not isinstance(case_id, int) or not 0 < case_id <= 2**31 - 1:
                continue
            row = s.get(IncidentRow, case_id)
            if row is None:
                continue
            result, reason, path = e.detail.get("result"), e.detail.get("reason"), e.detail.get("path")
            words = str(result).replace("_", " ")
            if command == "remote_monitor":
                duration = e.detail.get("duration_s")
                listened = f", the channel streamed {duration:g} s" if isinstance(duration, int | float) \
                    and result == "sent" else ""
                note = f"{words} to {e.unit or 'no unit'} on {e.gateway}/{e.channel}{listened}, asked by " \
                       f"{e.detail.get('operator') or 'nobody named'}"
            else:
                note = f"{words} ({path or 'no path'}) on {e.gateway}/{e.channel}"
            note += f": {reason}" if reason else ""
            unit = e.detail.get("unit")
            self._history(s, row, str(command), printable(note, 600), now, event_id=e.id)
            if command == "dispatch" and isinstance(result, str) and isinstance(unit, str):
                for part in s.scalars(select(CasePartRow).where(CasePartRow.case_id == row.id,
                                                                CasePartRow.unit == unit)):
                    # The best word of the paths tried: one that delivered is not undone by the next.
                    if part.dispatch_result not in ("sent", "acked") or result == "acked":
                        part.dispatch_result = result[:16]
                        part.updated_at = now
            s.flush()
            out.append((self._incident_view(s, row), str(command)))
        return out

    # --- the radios' answers -------------------------------------------------------------------

    def _case_answers(self, s: Session, events: Sequence[Event], now: datetime) -> list[AnswerResult]:
        """Answers among new events, each applied to its unit's open part or kept with why not; and answers
        that waited for their transmission's unit, applied once an event names it."""
        out: list[AnswerResult] = []
        if not self.rules.answering:
            return out
        units_of_calls = _speakers(events)
        for e in sorted(events, key=lambda e: (e.time, e.seq)):
            found = self.rules.answer_of(e)
            if found is None:
                continue
            signal, transition = found
            call = e.detail.get("call") if isinstance(e.detail.get("call"), str) else None
            unit = e.unit or ((units_of_calls.get(call) or self._call_unit(s, call)) if call else None)
            answer = CaseAnswerRow(event_id=e.id, at=min(e.time, now), unit=unit, gateway=e.gateway,
                                   channel=e.channel, call=call, signal=signal, transition=transition,
                                   outcome="waiting", updated_at=now)
            s.add(answer)
            if unit is None and call is None:
                # Decoded after its transmission ended (a DTMF sequence ends interdigit_s after its last
                # digit, which may be past the recorder's hang): the transmission that just ended there.
                unit, ended = self._ended_call_unit(s, e, [x for x in events if x.kind == Kind.CALL])
                if unit is not None:
                    answer.unit, answer.note = unit, f"the unit of the transmission that ended {ended:.1f} s before it"
            if unit is None:
                if call is not None and call not in units_of_calls:
                    answer.note = f"waiting for the unit of transmission {call}"
                    out.append(AnswerResult("waiting", f"{signal} on {e.gateway}/{e.channel}: {answer.note}"))
                    continue
                answer.outcome, answer.note = "no_unit", "no unit identified itself with it"
                out.append(AnswerResult("no_unit", f"{signal} on {e.gateway}/{e.channel}: {answer.note}"))
                continue
            out.append(self._apply_answer(s, answer, e.id, now))
        out += self._resolve_waiting(s, events, units_of_calls, now)
        s.flush()
        return out

    def _resolve_waiting(self, s: Session, events: Sequence[Event], units_of_calls: dict[str, str | None],
                         now: datetime) -> list[AnswerResult]:
        """Answers that were waiting for a transmission whose unit is now known (or now known to be none)."""
        out: list[AnswerResult] = []
        if not units_of_calls:
            return out
        waiting = s.scalars(select(CaseAnswerRow).where(CaseAnswerRow.call.in_(list(units_of_calls)),
                                                        CaseAnswerRow.outcome == "waiting")).all()
        ended = {e.id for e in events if e.kind == Kind.CALL}
        for answer in waiting:
            unit = units_of_calls.get(answer.call or "")
            if unit is None:
                if answer.call in ended:
                    answer.outcome, answer.note = "no_unit", "no unit identified itself in its transmission"
                    answer.updated_at = now
                    out.append(AnswerResult("no_unit", f"{answer.signal} on {answer.gateway}/{answer.channel}: "
                                            f"{answer.note}"))
                continue
            answer.unit = unit
            out.append(self._apply_answer(s, answer, answer.event_id, now))
        return out

    @staticmethod
    def _ended_call_unit(s: Session, e: Event, calls: Sequence[Event]) -> tuple[str | None, float]:
        """The unit of the transmission on the event's channel that ended at most CALL_AFTER_S before it."""
        stored = s.scalars(select(EventRow).where(EventRow.gateway == e.gateway, EventRow.channel == e.channel,
                                                  EventRow.kind == str(Kind.CALL), EventRow.time <= e.time,
                                                  EventRow.time >= e.time - timedelta(seconds=CALL_SPAN_S))
                           .order_by(EventRow.time.desc()).limit(3)).all()
        candidates = [(c.time, c.unit, c.detail) for c in stored] + [
            (c.time, c.unit, dict(c.detail)) for c in calls if c.gateway == e.gateway and c.channel == e.channel]
        best: tuple[str | None, float] = (None, 0.0)
        for start, unit, detail in sorted(candidates, key=lambda c: c[0], reverse=True):
            duration = call_duration(detail)
            if duration is None or start > e.time:
                continue
            ended = (e.time - start).total_seconds() - duration
            if -1.0 <= ended <= CALL_AFTER_S:
                return unit, max(0.0, ended)
        return best

    @staticmethod
    def _call_unit(s: Session, call: str) -> str | None:
        row = s.get(EventRow, call)
        return row.unit if row is not None else None

    def _apply_answer(self, s: Session, answer: CaseAnswerRow, event_id: str, now: datetime) -> AnswerResult:
        unit = answer.unit
        assert unit is not None
        part = s.scalars(
            select(CasePartRow).join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
            .where(CasePartRow.unit == unit, CasePartRow.state.in_(ON_CASE), IncidentRow.state != RESOLVED)
            .order_by(CasePartRow.dispatched_at.desc(), CasePartRow.id.desc()).limit(1).with_for_update()
        ).first()
        said = f"{unit} sent {answer.signal} ({answer.transition.replace('_', ' ')}) on {answer.gateway}/" \
               f"{answer.channel}"
        if part is None:
            answer.outcome, answer.note, answer.updated_at = "no_open_case", "the unit has no open case", now
            return AnswerResult("no_open_case", f"{said}: the unit has no open case")
        row = s.get(IncidentRow, part.case_id, with_for_update=True)
        assert row is not None
        answer.case_id, answer.part_id, answer.updated_at = row.id, part.id, now
        at = answer.at
        if answer.transition == "needs_help":
            alert = self._help_alert(s, row, part, "needs_help", f"{unit} needs help on case {row.id}", answer.gateway,
                                     answer.channel, event_id, at, now)
            answer.outcome, answer.note = "applied", f"alert {alert.id} opened"
            self._history(s, row, "answer", f"{said}: alert {alert.id} opened for it", now, actor=unit,
                          event_id=event_id)
            s.flush()
            return AnswerResult("applied", said, self._incident_view(s, row), self._incident_view(s, alert))
        target = {"accepted": PartState.ACCEPTED, "arrived": PartState.ARRIVED, "handled": PartState.HANDLED}[
            answer.transition].value
        if STEPS[target] <= STEPS[part.state]:
            answer.outcome, answer.note = "unchanged", f"{part.department}'s part is {part.state} already"
            self._history(s, row, "answer", f"{said}: {answer.note}", now, actor=unit, event_id=event_id)
            s.flush()
            return AnswerResult("unchanged", said, self._incident_view(s, row))
        implied = []
        if part.accepted_at is None:
            part.accepted_at = at
            if target != PartState.ACCEPTED.value:
                implied.append("accepted")
        if STEPS[target] >= STEPS[PartState.ARRIVED.value] and part.arrived_at is None:
            part.arrived_at = at
            if target != PartState.ARRIVED.value:
                implied.append("arrived")
        if target == PartState.HANDLED.value:
            part.handled_at = at
        part.state, part.updated_at = target, now
        answer.outcome = "applied"
        answer.note = f"{part.department}'s part {target}" + (f" ({', '.join(implied)} implied)" if implied else "")
        self._history(s, row, "answer", f"{said}: {answer.note}", now, actor=unit, event_id=event_id)
        s.flush()
        return AnswerResult("applied", said, self._incident_view(s, row))

    def _help_alert(self, s: Session, case: IncidentRow, part: CasePartRow, source: str, label: str, gateway: str,
                    channel: str, event_id: str | None, at: datetime, now: datetime) -> IncidentRow:
        """An alert of a unit on a case (it asked for help, or fell silent), linked to the case."""
        ack_due, resolve_due = self._dues("alert", at)
        first = event_id or uuid7()
        alert = IncidentRow(unit=part.unit, gateway=gateway, channel=channel, state=NEW, label=label[:200],
                            category="alert", source=source, linked_case=case.id, opened_at=at, first_event_id=first,
                            last_event_id=first, last_alert_at=at, alert_count=1, lat=case.lat, lon=case.lon,
                            position_time=case.position_time, last_announced=now, ack_due=ack_due,
                            resolve_due=resolve_due, updated_at=now)
        unit = s.get(UnitRow, part.unit) if part.unit else None
        if unit is not None and unit.lat is not None and unit.lon is not None and unit.fix_time is not None:
            alert.lat, alert.lon, alert.position_time = unit.lat, unit.lon, unit.fix_time
        s.add(alert)
        s.flush()
        self._history(s, alert, "opened", f"{label} ({part.department}'s part of case {case.id})", now)
        self._start_case(s, alert, now)
        return alert

    def _close_parts(self, s: Session, case_id: int, now: datetime) -> None:
        """The case is resolved: its parts not handled (or transferred) are closed where they stood."""
        for part in s.scalars(select(CasePartRow).where(CasePartRow.case_id == case_id,
                                                        CasePartRow.state.in_(RUNNING))):
            part.state, part.updated_at = PartState.CLOSED.value, now

    # --- by itself, over time ------------------------------------------------------------------

    def escalate_parts(self, now: datetime | None = None) -> list[IncidentView]:
        """Parts past a limit (accept, arrive, resolve), each escalated once per limit: marked, written into
        the case's history, the case returned (once, however many of its parts)."""
        now = now or self.clock()
        changed: dict[int, IncidentRow] = {}
        with self._writing() as s:
            late = (
                (CasePartRow.accept_due < now) & CasePartRow.accepted_at.is_(None)
                | (CasePartRow.arrive_due < now) & CasePartRow.arrived_at.is_(None)
                | (CasePartRow.resolve_due < now) & CasePartRow.handled_at.is_(None)
            )
            rows = s.execute(
                select(CasePartRow, IncidentRow).join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
                .where(CasePartRow.state.in_(RUNNING), IncidentRow.state != RESOLVED, late)
                .order_by(CasePartRow.id).with_for_update()
            ).all()
            for part, case in rows:
                overrun = [name for name, due, done in (("accept", part.accept_due, part.accepted_at),
                                                        ("arrive", part.arrive_due, part.arrived_at),
                                                        ("resolve", part.resolve_due, part.handled_at))
                           if due is not None and due < now and done is None]
                worst = overrun[-1]
                if part.escalated is not None and LIMITS.index(part.escalated) >= LIMITS.index(worst):
                    continue
                due = {"accept": part.accept_due, "arrive": part.arrive_due, "resolve": part.resolve_due}[worst]
                assert due is not None
                verb = {"accept": "accepted", "arrive": "arrived at", "resolve": "handled"}[worst]
                part.escalated, part.escalated_at, part.updated_at = worst, now, now
                limit_s = (due - part.opened_at).total_seconds()
                self._history(s, case, "escalated", f"{part.department}: not {verb} within {limit_s:g} s"
                              + (f" (unit {part.unit})" if part.unit else ""), now)
                changed[case.id] = case
            s.flush()
            return self._incident_views(s, list(changed.values()))

    def lone_workers(self, after_s: float, grace_s: float, now: datetime | None = None
                     ) -> tuple[list[tuple[IncidentView, dict[str, Any]]], list[tuple[IncidentView, IncidentView]]]:
        """Units on a case not heard for ``after_s``: a radio check for each (its command for the gateway that
        heard the unit last); still silent ``grace_s`` after it: an alert for the unit, linked to the case.
        Returns (the cases checked with their commands, (case, alert) for the alerts raised)."""
        now = now or self.clock()
        checks: list[tuple[IncidentView, dict[str, Any]]] = []
        alerts: list[tuple[IncidentView, IncidentView]] = []
        with self._writing() as s:
            rows = s.execute(
                select(CasePartRow, IncidentRow, UnitRow).join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
                .outerjoin(UnitRow, UnitRow.unit == CasePartRow.unit)
                .where(CasePartRow.state.in_(ON_CASE), IncidentRow.state != RESOLVED,
                       CasePartRow.dispatched_at <= now - timedelta(seconds=after_s))
                .order_by(CasePartRow.id).with_for_update(of=CasePartRow)
            ).all()
            for part, case, unit in rows:
                assert part.dispatched_at is not None
                heard = unit.last_heard if unit is not None and unit.last_heard is not None else None
                silent_since = max(part.dispatched_at, heard) if heard is not None else part.dispatched_at
                silent_s = (now - silent_since).total_seconds()
                if silent_s < after_s:
                    continue
                if part.radio_check_at is None or part.radio_check_at < silent_since:
                    part.radio_check_at, part.updated_at = now, now
                    gateway = unit.last_gateway if unit is not None else None
                    channel = unit.last_channel if unit is not None else None
                    if gateway is None or channel is None:
                        self._history(s, case, "radio_check", f"{part.unit} not heard for {silent_s:.0f} s; no "
                                      "gateway has heard it, so its radio cannot be checked", now)
                        command = None
                    else:
                        self._history(s, case, "radio_check", f"{part.unit} not heard for {silent_s:.0f} s: its "
                                      f"radio checked through {gateway}/{channel}", now)
                        command = {"gateway": gateway, "request": uuid7(), "case": case.id, "unit": part.unit,
                                   "channel": channel, "operator": BRIDGE_ACTOR}
                    s.flush()
                    if command is not None:
                        checks.append((self._incident_view(s, case), command))
                elif (now - part.radio_check_at).total_seconds() >= grace_s and (
                        part.lone_alert_at is None or part.lone_alert_at < part.radio_check_at):
                    part.lone_alert_at, part.updated_at = now, now
                    alert = self._help_alert(
                        s, case, part, "lone_worker", f"{part.unit} silent on case {case.id}: no answer to its "
                        f"radio check", unit.last_gateway if unit is not None and unit.last_gateway else "bridge",
                        unit.last_channel if unit is not None and unit.last_channel else "lone-worker", None, now, now)
                    self._history(s, case, "escalated", f"{part.unit} still silent {grace_s:g} s after its radio "
                                  f"check: alert {alert.id} opened", now)
                    s.flush()
                    alerts.append((self._incident_view(s, case), self._incident_view(s, alert)))
        return checks, alerts

    # --- transfer ------------------------------------------------------------------------------

    def transfers_pending(self) -> list[tuple[int, str]]:
        """Open cases whose outside system has not given its receipt: (case, kind), to hand over (again)."""
        with self._read() as s:
            rows = s.execute(
                select(CasePartRow.case_id, CasePartRow.kind).join(IncidentRow, IncidentRow.id == CasePartRow.case_id)
                .where(CasePartRow.role == "transfer", CasePartRow.state == PartState.NEW.value,
                       IncidentRow.state != RESOLVED).order_by(CasePartRow.case_id)).all()
            return [(int(case_id), str(kind)) for case_id, kind in rows]

    def transfer_payload(self, case_id: int) -> dict[str, Any] | None:
        """What an outside system is handed of a case."""
        with self._read() as s:
            row = s.get(IncidentRow, case_id)
            if row is None:
                return None
            return {"case": row.id, "kind": row.category, "source": row.source, "label": row.label,
                    "duty": row.duty, "opened_at": row.opened_at.isoformat(), "camera": row.camera,
                    "position": {"lat": row.lat, "lon": row.lon} if row.lat is not None and row.lon is not None
                    else None}

    def transfer_news(self, case_id: int, note: str, *, receipt_at: datetime | None = None) -> IncidentView | None:
        """How handing a case over is going, in its history; with ``receipt_at``, the outside system has it:
        the transfer part is transferred."""
        now = self.clock()
        with self._writing() as s:
            row = s.get(IncidentRow, case_id, with_for_update=True)
            if row is None:
                return None
            self._history(s, row, "transfer", note, now)
            if receipt_at is not None:
                for part in s.scalars(select(CasePartRow).where(CasePartRow.case_id == case_id,
                                                                CasePartRow.role == "transfer",
                                                                CasePartRow.state == PartState.NEW.value)):
                    part.state, part.transferred_at, part.updated_at = PartState.TRANSFERRED.value, receipt_at, now
            s.flush()
            return self._incident_view(s, row)
