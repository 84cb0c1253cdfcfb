r"""The command schema: what a console may send the bridge on ``bridge/cmd``, validated whole before the
bridge does anything with it (or audits it as done), into one typed command per action.

    {"action": "ack",     "incident": 12, "operator": "alice", "note"?: "...",               "request"?: "..."}
    {"action": "resolve", "incident": 12, "operator": "alice", "resolution": "handled" | "false_alarm", "note"?}
    {"action": "note",    "incident": 12, "operator": "alice", "note": "..."}
    {"action": "resolve", ..., "verdict"?: "valid" | "false_detection", "reason"?: "..."}   (a camera's case)
    {"action": "assign",  "incident": 12, "operator": "alice", "unit": "mdc:2001" or a patrol car's name,
                          "department"?: "police"}
    {"action": "open_case", "kind": "noise", "operator": "alice", "note"?: "...",
                          and the place: "unit": "mdc:2001" | "camera": "dome-3" | "lat": 30.2, "lon": 120.1}
    {"action": "add_department", "incident": 12, "department": "police", "operator": "alice"}
    {"action": "alias",   "unit": "mdc:1234", "alias": "Officer Wang" | null, "operator": "alice"}
    {"action": "plan",    "gateway": "xixing-1", "channels": [...], "operator": "tech"}

Every field has a type, an alphabet and a length. An operator's name is 1-64 printable characters (no
control character, no line break, no bidi or other format character): it goes into incident histories,
the audit, logs and every dispatcher's screen. A unit is a unit identity (gateway/events.py); a gateway a
gateway's name. A field that is too long is refused without being repeated: what is audited and echoed
of it is its length and the start of its SHA-256 (:func:`digest`), so a 3 MB name costs a few bytes.

:func:`parse_command` gives an :class:`Ack`, :class:`Resolve`, :class:`Note`, :class:`Assign`,
:class:`Alias`, :class:`Plan`, :class:`OpenCase` or :class:`AddDepartment`, each with only the fields its
action has (actions, incident states, resolutions and verdicts are ``StrEnum``\ s, equal to the text on the
wire).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bridge.views import Resolution, Verdict
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
    OPEN_CASE = "open_case"
    ADD_DEPARTMENT = "add_department"


ACTIONS = tuple(a.value for a in Action)
RESOLUTIONS = tuple(r.value for r in Resolution)
VERDICTS = tuple(v.value for v in Verdict)
KIND_PATTERN = r"^[a-z0-9_]{1,32}$"  # a case kind (config/schema.py CASE_KIND)
DEPARTMENT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
REASON_MAX = 4000
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
    """Resolve an incident; a case a camera found is verified on the way (valid, or a false detection)."""

    action: ClassVar[Action] = Action.RESOLVE
    incident: int
    resolution: Resolution
    note: str | None = None
    verdict: Verdict | None = None
    reason: str | None = None


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
    department: str | None = None  # whose part: default the unit's own department


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


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenCase(_Command):
    """Open a case by hand, of a configured kind, at a unit's position, a camera, or coordinates."""

    action: ClassVar[Action] = Action.OPEN_CASE
    kind: str
    note: str | None = None
    unit: str | None = None
    camera: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddDepartment(_Command):
    """Add a department's part to an open case."""

    action: ClassVar[Action] = Action.ADD_DEPARTMENT
    incident: int
    department: str


Command = Ack | Resolve | Note | Assign | Alias | Plan | OpenCase | AddDepartment
IncidentCommand = Ack | Resolve | Note | Assign | AddDepartment


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
    if action is Action.OPEN_CASE:
        return _open_case(body, operator, request)
    incident = body.get("incident")
    if isinstance(incident, bool) or not isinstance(incident, int) or not 0 < incident <= INCIDENT_ID_MAX:
        raise CommandError("incident", f"expected an incident id, got {shown(incident)}")
    if action is Action.ADD_DEPARTMENT:
        return AddDepartment(operator=operator, request=request, incident=incident,
                             department=_department(body, required=True) or "")
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
        verdict = body.get("verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise CommandError("verdict", f"expected one of {', '.join(VERDICTS)}, got {shown(verdict)}")
        reason = _text(body, "reason", most=REASON_MAX, required=False, printable_only=False, allow_breaks=True)
        return Resolve(operator=operator, request=request, incident=incident, resolution=Resolution(resolution),
                       note=note, verdict=Verdict(verdict) if verdict is not None else None, reason=reason or None)
    unit = _text(body, "unit", most=ASSIGNED_MAX, required=True)
    assert unit is not None
    return Assign(operator=operator, request=request, incident=incident, unit=unit,
                  department=_department(body, required=False))


def _department(body: dict[str, Any], *, required: bool) -> str | None:
    value = body.get("department")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not re.match(DEPARTMENT_PATTERN, value):
        raise CommandError("department", f"expected a department's name (1-64 of A-Z a-z 0-9 _ . -), got "
                           f"{shown(value)}")
    return value


def _coordinate(body: dict[str, Any], key: str, limit: float) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(key, f"expected a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise CommandError(key, f"expected {-limit:g} to {limit:g} degrees, got {shown(value)}")
    return number


def _open_case(body: dict[str, Any], operator: str, request: str | None) -> OpenCase:
    kind = body.get("kind")
    if not isinstance(kind, str) or not re.match(KIND_PATTERN, kind):
        raise CommandError("kind", f"expected a case kind (1-32 of a-z 0-9 _), got {shown(kind)}")
    note = _text(body, "note", most=NOTE_MAX, required=False, printable_only=False, allow_breaks=True) or None
    given = [k for k in ("unit", "camera", "lat", "lon") if body.get(k) is not None]
    if given == ["unit"]:
        unit = body["unit"]
        problem = unit_problem(unit)
        if problem is not None:
            raise CommandError("unit", problem)
        return OpenCase(operator=operator, request=request, kind=kind, note=note, unit=str(unit))
    if given == ["camera"]:
        camera = body["camera"]
        if not is_name(camera):
            raise CommandError("camera", f"expected a camera's id ({NAME_PATTERN}), got {shown(camera)}")
        return OpenCase(operator=operator, request=request, kind=kind, note=note, camera=str(camera))
    if given == ["lat", "lon"]:
        return OpenCase(operator=operator, request=request, kind=kind, note=note, lat=_coordinate(body, "lat", 90),
                        lon=_coordinate(body, "lon", 180))
    raise CommandError("place", f"expected one of: unit, camera, or lat and lon; got {', '.join(given) or 'none'}")


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
