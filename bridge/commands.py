r"""The command schema: what a console may send the bridge on ``bridge/cmd``, validated whole before the
bridge does anything with it (or audits it as done), into one typed command per action.

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

:func:`parse_command` gives an :class:`Ack`, :class:`Resolve`, :class:`Note`, :class:`Assign`,
:class:`Alias` or :class:`Plan`, each with only the fields its action has (actions, incident states and
resolutions are ``StrEnum``\ s, equal to the text on the wire).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bridge.views import Resolution
from gateway.events import NAME_PATTERN, is_name, printable, unit_problem

#: A command larger than this is refused unread (a plan of a few hundred channels is well under it).
MAX_COMMAND_BYTES = 1 << 20
OPERATOR_MAX = 64
ALIAS_MAX = 64
ASSIGNED_MAX = 64  # the unit sent: an identity or a patrol car's name
NOTE_MAX = 4000
REQUEST_MAX = 64


class Action(StrEnum):
    """What a console may ask of the bridge (the ``action`` of a command)."""

    ACK = "ack"
    RESOLVE = "resolve"
    NOTE = "note"
    ASSIGN = "assign"
    ALIAS = "alias"
    PLAN = "plan"


ACTIONS = tuple(a.value for a in Action)
RESOLUTIONS = tuple(r.value for r in Resolution)
INCIDENT_ID_MAX = 2**31 - 1  # incidents.id is an INTEGER
_SHOWN = 80  # characters of an offending value repeated in a reason


class CommandError(ValueError):
    """A command refused before anything was done; the message names the field and says why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True, kw_only=True)
class _Command:
    action: ClassVar[Action]
    operator: str  # who asks: 1-64 printable characters, stripped
    request: str | None = None  # the console's id for it, echoed with a refusal


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(_Command):
    """Acknowledge an incident (and, where its radio can be told, tell the radio)."""

    action: ClassVar[Action] = Action.ACK
    incident: int
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(_Command):
    action: ClassVar[Action] = Action.RESOLVE
    incident: int
    resolution: Resolution
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(_Command):
    action: ClassVar[Action] = Action.NOTE
    incident: int
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(_Command):
    """Send a unit to an incident (a unit identity, or a patrol car's name)."""

    action: ClassVar[Action] = Action.ASSIGN
    incident: int
    unit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alias(_Command):
    """Name the officer or vehicle behind a radio identity; None removes the name."""

    action: ClassVar[Action] = Action.ALIAS
    unit: str
    alias: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan(_Command):
    """A gateway's channel plan; its channels are validated by bridge/plans.py like a configuration file."""

    action: ClassVar[Action] = Action.PLAN
    gateway: str
    channels: Any


Command = Ack | Resolve | Note | Assign | Alias | Plan
IncidentCommand = Ack | Resolve | Note | Assign


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
    raw = body.get("action")
    if raw not in ACTIONS:
        raise CommandError("action", f"expected one of {', '.join(ACTIONS)}, got {shown(raw, 32)}")
    action = Action(raw)
    operator = check_operator(body.get("operator"))
    request = _text(body, "request", most=REQUEST_MAX, required=False)
    if action is Action.PLAN:
        gateway = body.get("gateway")
        if not is_name(gateway):
            raise CommandError("gateway", f"expected a gateway's name ({NAME_PATTERN}), got {shown(gateway)}")
        assert isinstance(gateway, str)
        return Plan(operator=operator, request=request, gateway=gateway, channels=body.get("channels"))
    if action is Action.ALIAS:
        unit = body.get("unit")
        problem = unit_problem(unit)
        if problem is not None:
            raise CommandError("unit", problem)
        alias = _text(body, "alias", most=ALIAS_MAX, required=False) or None
        assert isinstance(unit, str)
        return Alias(operator=operator, request=request, unit=unit, alias=alias)
    incident = body.get("incident")
    if isinstance(incident, bool) or not isinstance(incident, int) or not 0 < incident <= INCIDENT_ID_MAX:
        raise CommandError("incident", f"expected an incident id, got {shown(incident)}")
    # Notes are free text (several lines, any script); only control characters are refused in them.
    note = _text(body, "note", most=NOTE_MAX, required=action is Action.NOTE, printable_only=False,
                 allow_breaks=True)
    if action is Action.ACK:
        return Ack(operator=operator, request=request, incident=incident, note=note)
    if action is Action.NOTE:
        assert note is not None
        return Note(operator=operator, request=request, incident=incident, note=note)
    if action is Action.RESOLVE:
        resolution = body.get("resolution")
        if resolution not in RESOLUTIONS:
            raise CommandError("resolution", f"expected one of {', '.join(RESOLUTIONS)}, got {shown(resolution)}")
        return Resolve(operator=operator, request=request, incident=incident, resolution=Resolution(resolution),
                       note=note)
    unit = _text(body, "unit", most=ASSIGNED_MAX, required=True)
    assert unit is not None
    return Assign(operator=operator, request=request, incident=incident, unit=unit)


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
