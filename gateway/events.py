"""The event: the one schema that crosses the wire between gateways and bridges (schema v1).

This module is a leaf: it imports nothing of ours, so that ``drivers`` (which produce events) and
``bridge`` (which consumes them) may both import it. The published JSON Schema that documents every
field lives beside it in ``event.schema.json``; ``tests/gateway/test_events.py`` keeps the two in step.

Two stages of an event:

- :class:`Decoded` is what a protocol decoder saw: a kind, a unit, maybe a position, protocol detail.
  Decoders are sans-I/O and know nothing of gateways, channels or sequence numbers.
- :class:`Event` is a :class:`Decoded` stamped by a gateway with an id (UUIDv7), its ``seq``, its
  gateway and channel name. That is what is published, stored and shown.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time as _time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1

#: Payloads larger than this are refused before parsing (an event is a few hundred bytes).
MAX_EVENT_BYTES = 64 * 1024

#: What SQL BIGINT holds (seq columns, and anything compared with them): every integer off the wire that may
#: reach storage is refused outside it, so a database never raises an overflow in the middle of a batch.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Kind(StrEnum):
    ALERT = "alert"  # an emergency, whatever carried it
    BEACON = "beacon"  # a position report
    PTT = "ptt"  # a unit identified itself on key-up or de-key
    STATUS = "status"  # a status or text message from a unit
    CALL = "call"  # one received transmission
    IO = "io"  # a change on a gateway input or output


class EventError(ValueError):
    """A payload that is not a valid event; the message names the offending field."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path}: {problem}")
        self.field = field_path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Position:
    lat: float  # WGS-84 degrees, north positive
    lon: float  # WGS-84 degrees, east positive
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None  # degrees true, 0 = north
    fix_time: datetime | None = None  # when the receiver took the fix (UTC), if it says
    source: str = "unknown"  # nmea | kenwood | aprs | mdc1200 | ...


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a decoder saw, before a gateway stamps it."""

    kind: Kind
    time: datetime  # when it was decoded (the ``now`` handed to the decoder), UTC
    unit: str | None = None  # protocol-qualified identity: ``mdc:1234``, ``aprs:BG5ABC-9``
    position: Position | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # protocol-specific, JSON-able


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # UUIDv7: unique, time-ordered; the de-duplication key
    seq: int  # per gateway, monotonic, survives restarts
    gateway: str
    channel: str
    kind: Kind
    time: datetime
    unit: str | None = None
    position: Position | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @classmethod
    def stamp(cls, decoded: Decoded, *, seq: int, gateway: str, channel: str, id: str | None = None) -> Event:
        """Stamp a decoded event; the result is exactly what a reader of the wire form will see.

        ``id`` is for an event whose id was handed out before it was complete (a call: what was decoded
        during the transmission already names it)."""
        event = cls(
            id=id or uuid7(decoded.time),
            seq=seq,
            gateway=gateway,
            channel=channel,
            kind=decoded.kind,
            time=decoded.time,
            unit=decoded.unit,
            position=decoded.position,
            detail=dict(decoded.detail),
        )
        # Through the wire form once: times to milliseconds, tuples to lists, and a detail that is
        # not JSON fails here, in the decoder's own thread, not later in the publisher.
        return event_from_dict(json.loads(encode_event(event)))


# --- UUIDv7 (RFC 9562 section 5.7) -----------------------------------------------------------
# 48-bit Unix milliseconds | ver 7 | 12-bit counter | variant 10 | 62 random bits.
# The counter (RFC 9562 "method 1") keeps ids from one process increasing within a millisecond;
# past 4096 in one millisecond the order within it is random (seq, not id, orders a gateway's events).

_uuid_lock = threading.Lock()
_uuid_last_ms = -1
_uuid_counter = 0


def uuid7(at: datetime | None = None) -> str:
    global _uuid_last_ms, _uuid_counter
    ms = int((at.timestamp() if at is not None else _time.time()) * 1000)
    with _uuid_lock:
        if ms == _uuid_last_ms and _uuid_counter < 0xFFF:
            _uuid_counter += 1  # same millisecond: count on, so ids from this process stay ordered
        else:
            # A new millisecond (or a clock stepped back: the id then tells the time as it was stamped).
            _uuid_last_ms = ms
            _uuid_counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count
        counter = _uuid_counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def uuid7_time(event_id: str) -> datetime:
    """The millisecond timestamp carried in a UUIDv7."""
    ms = uuid.UUID(event_id).int >> 80
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- time ------------------------------------------------------------------------------------


def format_time(t: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix: ``2026-11-26T19:30:01.123Z``."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: events carry UTC times")
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\Z")


# What gateways send (format_time): read by fromisoformat alone, which reads "Z" as UTC itself.
_UTC_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


def parse_time(text: object, field_path: str) -> datetime:
    if isinstance(text, str) and _UTC_MS_RE.match(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # (a 30 February): the general path below says why
    if not isinstance(text, str) or not _TIME_RE.match(text):
        raise EventError(field_path, f"expected an RFC 3339 UTC time like 2026-11-26T19:30:01.123Z, got "
                                     f"{_got(text)}")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise EventError(field_path, f"not a valid time: {exc}") from None
    except OverflowError:
        # 9999-12-31T23:59:59-23:59 is a valid local time whose UTC instant is past year 9999
        raise EventError(field_path, f"{text} is outside the years 1-9999 once in UTC") from None


# --- text shown to people ----------------------------------------------------------------------


def _got(value: object) -> str:
    """A value off the wire, in an error message: its repr, escaped and short."""
    return printable(repr(value), 80)


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe to put in a log line or on a terminal: every character that is not printable (C0 and
    C1 controls, NUL, newlines, bidi and other format characters, unassigned code points) is written as
    its backslash escape (``\\x1b``, ``\\n``, ``\\u202e``), so received text can neither move a
    terminal's cursor nor forge a line of a log; cut to ``limit`` characters with an ellipsis."""
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


# --- JSON codec ------------------------------------------------------------------------------


def position_to_dict(p: Position) -> dict[str, Any]:
    return {
        "lat": p.lat,
        "lon": p.lon,
        "alt_m": p.alt_m,
        "speed_mps": p.speed_mps,
        "course_deg": p.course_deg,
        "fix_time": format_time(p.fix_time) if p.fix_time is not None else None,
        "source": p.source,
    }


def event_to_dict(e: Event) -> dict[str, Any]:
    return {
        "v": e.v,
        "id": e.id,
        "seq": e.seq,
        "gateway": e.gateway,
        "channel": e.channel,
        "kind": str(e.kind),
        "time": format_time(e.time),
        "unit": e.unit,
        "position": position_to_dict(e.position) if e.position is not None else None,
        "detail": dict(e.detail),
    }


def encode_event(e: Event) -> bytes:
    return json.dumps(event_to_dict(e), separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")  # safe as one MQTT topic level
NAME_PATTERN = _NAME_RE.pattern  # a gateway's or a channel's name


def is_name(text: object) -> bool:
    """A gateway's or a channel's name (1-64 of ``A-Z a-z 0-9 _ . -``: one MQTT topic level)."""
    return isinstance(text, str) and _NAME_RE.match(text) is not None


def is_event_id(text: object) -> bool:
    """An event id as the schema has it (a lower-case UUIDv7)."""
    return isinstance(text, str) and _UUID_RE.match(text) is not None

# --- unit identities ---------------------------------------------------------------------------
# A unit is ``<protocol>:<id>``: ``mdc:1234``, ``fleetsync:100-1001``, ``aprs:BG5ABC-9``, ``aprs:AO27_T``.
# The protocol is ``[a-z][a-z0-9]{0,15}``; the id is 1-64 characters, each printable and not white space
# (``str.isprintable()``: no C0/C1 control, no NUL, no bidi or other format character, nothing unassigned)
# and none of ``/ # +``. The identity is one MQTT topic level of ``bridge/unit/{unit}`` and is shown on
# dispatchers' terminals, so this alphabet is what keeps a unit from breaking either.

_UNIT_PROTOCOL_RE = re.compile(r"^[a-z][a-z0-9]{0,15}\Z")
UNIT_ID_MAX = 64
_UNIT_FORBIDDEN = frozenset("/#+")


def _unit_char(ch: str) -> bool:
    return ch.isprintable() and not ch.isspace() and ch not in _UNIT_FORBIDDEN


# Unit identities in plain ASCII, which is nearly all of them: one match instead of a test per character.
# The id's characters here are every printable ASCII one but space and / # + (all of them allowed).
_UNIT_ASCII_RE = re.compile(r'^[a-z][a-z0-9]{0,15}:[!"$-*,-.0-~]{1,' + str(UNIT_ID_MAX) + r'}\Z')


def unit_problem(unit: object) -> str | None:
    """Why ``unit`` is not a unit identity, or None if it is one."""
    if isinstance(unit, str) and _UNIT_ASCII_RE.match(unit):
        return None
    if not isinstance(unit, str):
        return f"expected a protocol-qualified identity like 'mdc:1234', got {type(unit).__name__}"
    protocol, colon, ident = unit.partition(":")
    if not colon:
        return f"expected <protocol>:<id> like 'mdc:1234', got {printable(repr(unit), 80)}"
    if not _UNIT_PROTOCOL_RE.match(protocol):
        return f"protocol {printable(repr(protocol), 40)}: expected a-z then up to 15 of a-z 0-9"
    if not 1 <= len(ident) <= UNIT_ID_MAX:
        return f"id: expected 1-{UNIT_ID_MAX} characters, got {len(ident)}"
    bad = next((ch for ch in ident if not _unit_char(ch)), None)
    if bad is not None:
        return (f"id {printable(repr(ident), 80)}: {printable(repr(bad))} (U+{ord(bad):04X}) is not allowed "
                "(printable characters only, no space, / # +)")
    return None


def is_unit(unit: object) -> bool:
    """True if ``unit`` is a unit identity (see :func:`check_unit`)."""
    return unit_problem(unit) is None


def check_unit(unit: object, field_path: str = "unit") -> str:
    """``unit`` if it is a unit identity, else :class:`EventError` saying why."""
    problem = unit_problem(unit)
    if problem is not None:
        raise EventError(field_path, problem)
    assert isinstance(unit, str)
    return unit


def make_unit(protocol: str, text: str) -> str:
    """A unit identity of ``protocol`` for what a radio sent (an APRS object name, an irregular callsign):
    white space around it dropped, every character the alphabet does not allow replaced by ``_``
    (``make_unit("aprs", "AO27 T")`` is ``aprs:AO27_T``), cut to 64 characters. ValueError if ``protocol``
    is not a protocol name or nothing is left of ``text``."""
    if not _UNIT_PROTOCOL_RE.match(protocol):
        raise ValueError(f"{protocol!r} is not a unit protocol (a-z then up to 15 of a-z 0-9)")
    ident = "".join(ch if _unit_char(ch) else "_" for ch in text.strip()[:UNIT_ID_MAX])
    if not ident:
        raise ValueError(f"no unit id in {printable(repr(text), 80)}")
    return f"{protocol}:{ident}"

_EVENT_KEYS = {"v", "id", "seq", "gateway", "channel", "kind", "time", "unit", "position", "detail"}
_REQUIRED_KEYS = dict.fromkeys(("v", "id", "seq", "gateway", "channel", "kind", "time")).keys()  # in order
_KINDS = {k.value: k for k in Kind}
_POSITION_KEYS = {"lat", "lon", "alt_m", "speed_mps", "course_deg", "fix_time", "source"}


def _number(obj: Mapping[str, Any], key: str, path: str, *, lo: float, hi: float, optional: bool) -> float | None:
    value = obj.get(key)
    if (type(value) is float or type(value) is int) and lo <= value <= hi:  # the usual case, at once (NaN fails)
        return float(value)
    if value is None:
        if optional:
            return None
        raise EventError(f"{path}.{key}", "required number is missing")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventError(f"{path}.{key}", f"expected a number, got {_got(value)}")
    if not lo <= value <= hi:
        raise EventError(f"{path}.{key}", f"{value} is outside {lo}..{hi}")
    return float(value)


def _position_from_dict(obj: object) -> Position | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise EventError("position", f"expected an object or null, got {type(obj).__name__}")
    if not obj.keys() <= _POSITION_KEYS:
        raise EventError(f"position.{sorted(obj.keys() - _POSITION_KEYS)[0]}", "unknown field")
    source = obj.get("source", "unknown")
    if not isinstance(source, str) or not 1 <= len(source) <= 32 or not source.isprintable():
        raise EventError("position.source", f"expected 1-32 printable characters, got {_got(source)}")
    fix = obj.get("fix_time")
    lat = _number(obj, "lat", "position", lo=-90, hi=90, optional=False)
    lon = _number(obj, "lon", "position", lo=-180, hi=180, optional=False)
    assert lat is not None and lon is not None
    return Position(
        lat=lat,
        lon=lon,
        alt_m=_number(obj, "alt_m", "position", lo=-1e5, hi=1e6, optional=True),
        speed_mps=_number(obj, "speed_mps", "position", lo=0, hi=1e4, optional=True),
        course_deg=_number(obj, "course_deg", "position", lo=0, hi=360, optional=True),
        fix_time=parse_time(fix, "position.fix_time") if fix is not None else None,
        source=source,
    )


def event_from_dict(obj: object) -> Event:
    """Validate a decoded JSON object and build the event; :class:`EventError` names the bad field."""
    if not isinstance(obj, dict):
        raise EventError("$", f"expected a JSON object, got {type(obj).__name__}")
    if not obj.keys() <= _EVENT_KEYS:
        raise EventError(sorted(obj.keys() - _EVENT_KEYS)[0], "unknown field")
    if not obj.keys() >= _REQUIRED_KEYS:
        raise EventError(next(k for k in _REQUIRED_KEYS if k not in obj), "required field is missing")
    if obj["v"] != SCHEMA_VERSION or isinstance(obj["v"], bool):
        raise EventError("v", f"unsupported schema version {_got(obj['v'])}, this build reads {SCHEMA_VERSION}")
    if not isinstance(obj["id"], str) or not _UUID_RE.match(obj["id"]):
        raise EventError("id", f"expected a lower-case UUIDv7 string, got {_got(obj['id'])}")
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise EventError("seq", f"expected a non-negative integer, got {_got(seq)}")
    for key in ("gateway", "channel"):
        if not isinstance(obj[key], str) or not _NAME_RE.match(obj[key]):
            raise EventError(key, f"expected 1-64 characters of A-Z a-z 0-9 _ . -, got {_got(obj[key])}")
    kind = _KINDS.get(obj["kind"]) if isinstance(obj["kind"], str) else None
    if kind is None:
        kinds = ", ".join(k.value for k in Kind)
        raise EventError("kind", f"expected one of {kinds}, got {_got(obj['kind'])}")
    unit = obj.get("unit")
    if unit is not None:
        check_unit(unit)
    detail = obj.get("detail", {})
    if not isinstance(detail, dict):
        raise EventError("detail", f"expected an object, got {type(detail).__name__}")
    _check_numbers(detail, "detail")
    return Event(
        v=SCHEMA_VERSION,
        id=obj["id"],
        seq=seq,
        gateway=obj["gateway"],
        channel=obj["channel"],
        kind=kind,
        time=parse_time(obj["time"], "time"),
        unit=unit,
        position=_position_from_dict(obj.get("position")),
        detail=detail,
    )


def _check_numbers(value: object, path: str) -> None:
    """Every number in ``value`` (any depth) is finite, and every integer fits in 64 bits: ``1e999`` is
    read as infinity and ``2**70`` as a Python int, and either would fail later in storage or arithmetic."""
    if not _numbers_fit(value):
        problem = _number_problem(value, path)
        if problem is not None:
            raise problem


def _number_problem(value: object, path: str) -> EventError | None:
    """The first number in ``value`` that does not fit, named by its path. Iterative: the JSON reader
    already bounds the depth, but a recursion here would cost a frame each."""
    stack: list[tuple[object, str]] = [(value, path)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            return EventError(printable(at, 120), "an integer outside the 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            return EventError(printable(at, 120), "a number too large to store (it reads as infinite)")
    return None


def _numbers_fit(value: object) -> bool:
    """Whether _number_problem finds nothing, found without making the path of every value (the usual case)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif kind is not float or not math.isfinite(item):
            return False
    return True


def decode_event(payload: bytes | str) -> Event:
    """Parse and validate one event payload (JSON); raises :class:`EventError` naming the field."""
    if len(payload) > MAX_EVENT_BYTES:
        raise EventError("$", f"payload of {len(payload)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
    try:
        obj = load_json(payload)
    except ValueError as exc:
        raise EventError("$", str(exc)) from None
    return event_from_dict(obj)


def load_json(payload: bytes | bytearray | str) -> Any:
    """JSON off the wire or from a file, or ValueError saying why not. NaN and Infinity are refused (they
    are not JSON); nesting past the recursion limit (``[[[[...``) makes json raise RecursionError, which
    no caller of json.loads expects (found by fuzzing), so it is a ValueError here too."""
    try:
        if isinstance(payload, str):
            if payload.startswith("\ufeff"):  # as json.loads says
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", payload, 0)
            return _JSON.decode(payload)
        # JSON text is UTF-8 off the wire; json.loads would also take UTF-16 and -32, found by their bytes.
        utf8 = payload[:1] == b"{" and payload[1:2] != b"\0"
        return _JSON.decode(payload.decode("utf-8" if utf8 else json.detect_encoding(payload), "surrogatepass"))
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise ValueError(f"not JSON: {exc}") from None


def json_object(payload: bytes | bytearray | str) -> dict[str, Any]:
    """A JSON object off the wire (a command, a state, a plan), or ValueError saying why not."""
    obj = load_json(payload)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: json.loads, made once: it built a decoder and looked for the text's encoding on every call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)
