"""The command schema: what a console may send the bridge on ``bridge/cmd``, validated whole before the
bridge does anything with it (or audits it as done).

    {"action": "ack",     "incident": 12, "operator": "alice", "note"?: "...",               "request"?: "..."}
    {"action": "resolve", "incident": 12, "operator": "alice", "resolution": "handled" | "false_alarm", "note"?}
    {"action": "note",    "incident": 12, "operator": "alice", "note": "..."}
    {"action": "assign",  "incident": 12, "operator": "alice", "unit": "mdc:2001" or a patrol car's name}
    {"action": "alias",   "unit": "mdc:1234", "alias": "Officer Wang" | null, "operator": "alice"}
    {"action": "plan",    "gateway": "xixing-1", "channels": [...], "operator": "tech"}

Every field has a type, an alphabet and a length. An operator's name is 1-64 printable characters (no
control character, no line break, no bidi or other format character): it goes into incident histories,
the audit, logs and every dispatcher's screen. A unit is a unit identity (gateway/events.py); a gateway a
gateway's name. A field that is too long is refused without being repeated: what is audited and echoed
of it is its length and the start of its SHA-256 (:func:`digest`), so a 3 MB name costs a few bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from bridge.models import RESOLUTIONS
from gateway.events import NAME_PATTERN, is_name, printable, unit_problem

#: A command larger than this is refused unread (a plan of a few hundred channels is well under it).
MAX_COMMAND_BYTES = 1 << 20
OPERATOR_MAX = 64
ALIAS_MAX = 64
ASSIGNED_MAX = 64  # the unit sent: an identity or a patrol car's name
NOTE_MAX = 4000
REQUEST_MAX = 64
ACTIONS = ("ack", "resolve", "note", "assign", "alias", "plan")
INCIDENT_ACTIONS = ("ack", "resolve", "note", "assign")
INCIDENT_ID_MAX = 2**31 - 1  # incidents.id is an INTEGER
_SHOWN = 80  # characters of an offending value repeated in a reason


class CommandError(ValueError):
    """A command refused before anything was done; the message names the field and says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Command:
    action: str
    operator: str
    request: str | None = None
    incident: int | None = None
    note: str | None = None
    resolution: str | None = None
    unit: str | None = None
    alias: str | None = None  # None: remove the alias
    gateway: str | None = None
    channels: Any = None  # a plan's channels, validated by bridge/plans.py like a configuration file


def digest(text: str) -> str:
    """A stand-in for text too long to repeat: its length and the start of its SHA-256."""
    sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"<{len(text)} characters, sha256 {sha}>"


def shown(value: object, limit: int = _SHOWN) -> str:
    """A value as a refusal reason or an audit record repeats it: its repr, escaped; a longer text only by
    :func:`digest`, so nothing a sender chose gets repeated at length."""
    if isinstance(value, str) and len(value) > limit:
        return digest(value)
    text = repr(value)
    return printable(text, limit) if len(text) <= limit * 4 else f"<{type(value).__name__} of {len(text)} characters>"


def _text(body: dict[str, Any], key: str, *, most: int, required: bool, printable_only: bool = True,
          allow_breaks: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise CommandError(key, "required")
        return None
    if not isinstance(value, str):
        raise CommandError(key, f"expected text, got {shown(value)}")
    if len(value) > most:
        raise CommandError(key, f"at most {most} characters, got {digest(value)}")
    value = value.strip()
    if required and not value:
        raise CommandError(key, "required, got nothing but white space")
    for ch in value:
        if allow_breaks and ch in "\n\t":
            continue
        o = ord(ch)
        # Controls never (NUL is one: PostgreSQL text cannot hold it), nor a lone surrogate (not UTF-8).
        if (printable_only and not ch.isprintable()) or o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF:
            raise CommandError(key, f"{shown(ch)} (U+{ord(ch):04X}) is not allowed, in {shown(value)}")
    return value


def operator_problem(name: object) -> str | None:
    """Why ``name`` cannot be an operator's name (1-64 printable characters), or None. The console's
    sign-in asks the same."""
    try:
        _text({"operator": name}, "operator", most=OPERATOR_MAX, required=True)
    except CommandError as exc:
        return exc.problem
    return None


def check_operator(name: object) -> str:
    """An operator's name, stripped, or :class:`CommandError`."""
    operator = _text({"operator": name}, "operator", most=OPERATOR_MAX, required=True)
    assert operator is not None
    return operator


def parse_command(body: dict[str, Any]) -> Command:
    """Validate a command's body whole; :class:`CommandError` names the first field at fault."""
    action = body.get("action")
    if action not in ACTIONS:
        raise CommandError("action", f"expected one of {', '.join(ACTIONS)}, got {shown(action, 32)}")
    operator = check_operator(body.get("operator"))
    request = _text(body, "request", most=REQUEST_MAX, required=False)
    if action == "plan":
        gateway = body.get("gateway")
        if not is_name(gateway):
            raise CommandError("gateway", f"expected a gateway's name ({NAME_PATTERN}), got {shown(gateway)}")
        assert isinstance(gateway, str)
        return Command(action, operator, request, gateway=gateway, channels=body.get("channels"))
    if action == "alias":
        unit = body.get("unit")
        problem = unit_problem(unit)
        if problem is not None:
            raise CommandError("unit", problem)
        alias = _text(body, "alias", most=ALIAS_MAX, required=False) or None
        assert isinstance(unit, str)
        return Command(action, operator, request, unit=unit, alias=alias)
    incident = body.get("incident")
    if isinstance(incident, bool) or not isinstance(incident, int) or not 0 < incident <= INCIDENT_ID_MAX:
        raise CommandError("incident", f"expected an incident id, got {shown(incident)}")
    # Notes are free text (several lines, any script); only control characters are refused in them.
    note = _text(body, "note", most=NOTE_MAX, required=action == "note", printable_only=False, allow_breaks=True)
    resolution = None
    if action == "resolve":
        resolution = body.get("resolution")
        if resolution not in RESOLUTIONS:
            raise CommandError("resolution", f"expected one of {', '.join(RESOLUTIONS)}, got {shown(resolution)}")
    unit = _text(body, "unit", most=ASSIGNED_MAX, required=True) if action == "assign" else None
    return Command(action, operator, request, incident=incident, note=note, resolution=resolution, unit=unit)


def echo(body: dict[str, Any]) -> dict[str, Any]:
    """What of a refused command's body may be repeated on ``bridge/refused`` for the console that sent it:
    the fields that identify it, each only if it is well formed (so nothing long or raw goes to every
    console)."""
    out: dict[str, Any] = {}
    request = body.get("request")
    if isinstance(request, str) and 0 < len(request) <= REQUEST_MAX and request.isprintable():
        out["request"] = request
    if body.get("action") in ACTIONS:
        out["action"] = body["action"]
    incident = body.get("incident")
    if isinstance(incident, int) and not isinstance(incident, bool) and 0 < incident <= INCIDENT_ID_MAX:
        out["incident"] = incident
    if is_name(body.get("gateway")):
        out["gateway"] = body["gateway"]
    if operator_problem(body.get("operator")) is None:
        out["operator"] = str(body["operator"]).strip()
    return out
