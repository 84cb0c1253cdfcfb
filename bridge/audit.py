"""The audit log: every command an operator sends the bridge (``bridge/cmd``), carried out or refused, and
every transmission a dispatcher made on a radio channel (live voice, a remote monitor), from the gateway's
events.

Incident history already says who did what to an incident; the audit log also keeps what did not
happen (a refused acknowledgement, a channel plan that failed validation, a command nobody can parse)
and what is not an incident's (aliases, channel plans), in one place a supervisor can read:
``pttbridge audit [--since 2h] [--operator alice]``.

A record is written after the command was carried out or refused, in its own transaction. The command's
MQTT message is acknowledged to the broker only after that, so a bridge that dies in between gets the
command again and records it then (a repeated acknowledgement is refused, and recorded as such).

A refused command is recorded as far as it can be read, each field as it came but never longer than the
command schema allows it (bridge/commands.py): a longer one is recorded by its length and the start of its
SHA-256. What is not printable in a field is recorded as its escape (``\\x1b``, ``\\ud800``): every
database can store it and every reader can show it. What ``pttbridge audit`` prints is escaped too
(:meth:`AuditEntry.line`, for records written before): a line break or a terminal's escape sequence in a
name is shown, not obeyed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from bridge.commands import ALIAS_MAX, ASSIGNED_MAX, NOTE_MAX, OPERATOR_MAX, REQUEST_MAX, digest, shown
from bridge.models import AuditRow
from gateway.events import UNIT_ID_MAX, Event, Kind, printable

log = logging.getLogger(__name__)

DONE, REFUSED = "done", "refused"
_SHOWN = 80  # characters of a free-text field kept in ``detail``
# What else a command may carry, in that order.
_FIELDS = ("resolution", "verdict", "reason", "department", "unit", "camera", "lat", "lon", "alias", "note")
_ACTION_MAX = 32  # the column's width
# The longest each field may be (the command schema's limits): a longer one is recorded by its digest.
_MOST = {"operator": OPERATOR_MAX, "action": _ACTION_MAX, "note": NOTE_MAX, "alias": ALIAS_MAX, "request": REQUEST_MAX,
         "unit": max(ASSIGNED_MAX, 17 + UNIT_ID_MAX), "gateway": 64, "resolution": 32, "verdict": 32,
         "reason": NOTE_MAX, "department": 64, "kind": 32, "camera": 64}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    operator: str
    action: str
    target: str
    outcome: str
    reason: str | None
    detail: str | None

    def line(self) -> str:
        """One line as ``pttbridge audit`` prints it: every field escaped (what a console sent may hold line
        breaks and terminal escape sequences; they are shown as ``\\n``, ``\\x1b``, not obeyed)."""
        why = f"  ({printable(self.reason)})" if self.reason else ""
        more = f"  {printable(self.detail)}" if self.detail else ""
        return (f"{self.at:%Y-%m-%d %H:%M:%S}Z  {printable(self.operator) or '-':16} {printable(self.action) or '-':8} "
                f"{printable(self.target) or '-':24} {printable(self.outcome)}{why}{more}")


def describe(command: dict[str, Any] | str) -> tuple[str, str, str, str | None]:
    """``(operator, action, target, detail)`` of a command's body as it came, whatever is wrong with it (a
    refused command is audited as far as it can be read), or of why its payload could not be read."""
    if isinstance(command, str):
        return "", "", "", command
    body = command

    def text(key: str) -> str:
        """The field as it came, if the schema allows it that long; else its digest; a non-text its repr."""
        value = body.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value if len(value) <= _MOST.get(key, _SHOWN) else digest(value)
        return shown(value)

    def short(key: str) -> str:
        value = body.get(key)
        if isinstance(value, str) and len(value) <= _MOST.get(key, _SHOWN):
            return repr(value[:_SHOWN])
        return text(key)

    action = text("action")
    if len(action) > _ACTION_MAX:
        action = f"<{len(body['action'])} characters>"[:_ACTION_MAX] if isinstance(body.get("action"), str) \
            else action[:_ACTION_MAX]
    if action == "plan":
        target = f"gateway:{text('gateway')}"
        channels = body.get("channels")
        detail: str | None = (f"{len(channels)} channel{'' if len(channels) == 1 else 's'}"
                              if isinstance(channels, list) else None)
    elif action == "open_case":
        target = f"kind:{text('kind')}"
        parts = [f"{k}={short(k)}" for k in _FIELDS if body.get(k) is not None]
        detail = " ".join(parts) or None
    elif action == "alias":
        target = f"unit:{text('unit')}"
        detail = f"alias={short('alias')}" if body.get("alias") is not None else "alias removed"
    else:
        incident = body.get("incident")
        target = f"incident:{incident if isinstance(incident, int) else shown(incident)}" if incident is not None \
            else ""
        parts = [f"{k}={short(k)}" for k in _FIELDS if body.get(k) is not None]
        detail = " ".join(parts) or None
    return text("operator"), action, target, detail


def record_command(engine: Engine, command: dict[str, Any] | str, refused: str | None = None, *,
                   at: datetime | None = None) -> None:
    """Write the audit record of one command, its body or why its payload could not be read (``refused``:
    why it was not carried out). A database that will not take it is logged, never raised: the command
    itself has already happened."""
    operator, action, target, detail = (printable(x) if x is not None else None for x in describe(command))
    assert operator is not None and action is not None and target is not None
    row = {"at": at or datetime.now(UTC), "operator": operator, "action": action[:_ACTION_MAX], "target": target,
           "outcome": REFUSED if refused is not None else DONE,
           "reason": printable(refused) if refused is not None else None, "detail": detail}
    try:
        with engine.begin() as conn:
            conn.execute(insert(AuditRow), [row])
    except SQLAlchemyError as exc:
        log.error("audit record of %s %s by %r not written: %s", action, target, operator, exc.__class__.__name__)


def transmission(event: Event) -> dict[str, Any] | None:
    """The audit record of a dispatcher's transmission (a ``call`` the gateway marks ``transmitted``) or of
    a remote monitor (its ``io`` result), else None. The gateway names the operator the floor was granted
    to (or the patch); the record says who keyed which channel, for how long, and how it ended."""
    d = event.detail

    def plain(value: object) -> str:
        return value[:_SHOWN] if isinstance(value, str) else shown(value)

    where = f"channel:{event.gateway}/{event.channel}"
    if event.kind == Kind.CALL and d.get("transmitted") is True:
        keyed = d.get("keyed_s")
        parts = [f"keyed {keyed:g} s" if isinstance(keyed, int | float) else "",
                 f"from {plain(d.get('console'))}" if d.get("console") is not None else "",
                 "over radio traffic (override)" if d.get("override") is True else "",
                 f"patch {plain(d.get('patch'))}" if d.get("patch") is not None else "", f"call {event.id}"]
        cut = d.get("result") not in (None, "sent")
        return {"operator": d.get("operator"), "action": "transmit", "target": where,
                "outcome": REFUSED if cut else DONE, "reason": d.get("reason") if cut else None,
                "detail": " ".join(p for p in parts if p)}
    if event.kind == Kind.IO and d.get("command") == "patch":
        done = d.get("result") == "done"
        channels = d.get("channels")
        listed = ",".join(c for c in channels if isinstance(c, str)) if isinstance(channels, list) else ""
        return {"operator": d.get("operator"), "action": "patch", "target": f"patch:{event.gateway}/{d.get('patch')}",
                "outcome": DONE if done else REFUSED, "reason": None if done else d.get("reason"),
                "detail": f"{plain(d.get('action'))} {plain(listed)}"}
    if event.kind == Kind.IO and d.get("command") == "remote_monitor":
        done = d.get("result") == "sent"
        return {"operator": d.get("operator"), "action": "monitor", "target": f"unit:{event.unit or '-'}",
                "outcome": DONE if done else REFUSED, "reason": None if done else d.get("reason"),
                "detail": f"{where} for {plain(d.get('duration_s'))} s"}
    return None


def record_transmissions(engine: Engine, events: list[Event]) -> int:
    """Audit records of the transmissions among ``events`` (each stored for the first time: a redelivered
    event is not audited twice); how many were written. Logged, never raised, like :func:`record_command`."""
    rows = []
    for e in events:
        t = transmission(e)
        if t is None:
            continue
        text = {k: printable(v if isinstance(v, str) else shown(v)) if v is not None else None for k, v in t.items()}
        rows.append({**text, "at": e.time, "operator": (text["operator"] or "")[:OPERATOR_MAX],
                     "action": t["action"], "outcome": t["outcome"]})
    if not rows:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(insert(AuditRow), rows)
    except SQLAlchemyError as exc:
        log.error("audit records of %d transmissions not written: %s", len(rows), exc.__class__.__name__)
        return 0
    return len(rows)


def entries(engine: Engine, *, since: datetime | None = None, operator: str | None = None,
            limit: int | None = None) -> list[AuditEntry]:
    """Audit records, oldest first (the newest ``limit`` of them when a limit is given)."""
    query = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc())
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if operator is not None:
        query = query.where(AuditRow.operator == operator)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [AuditEntry(r.at, r.operator, r.action, r.target, r.outcome, r.reason, r.detail) for r in reversed(rows)]


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``--since``: a time ago (``90s``, ``30m``, ``2h``, ``7d``) or an ISO 8601 time (UTC unless it says)."""
    now = now or datetime.now(UTC)
    ago = _AGO.match(value.strip())
    if ago:
        return now - timedelta(seconds=float(ago.group(1)) * _UNIT_S[ago.group(2)])
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected a time ago (30m, 2h, 7d) or an ISO time (2026-11-27T08:00), got {value!r}") \
            from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def as_json(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "operator": entry.operator, "action": entry.action, "target": entry.target,
            "outcome": entry.outcome, "reason": entry.reason, "detail": entry.detail}
