"""Vendor alarm boxes described as data: a frame spec in TOML, so a technician adds a box without code.

Wired panic buttons, alarm panels and radio interface boxes talk small serial protocols: a start
sequence, a length or an end marker, a few fields and a checksum. A *frame spec* declares one such
protocol as a table (after pynmea2's field tables) and :class:`FrameSpecDecoder` decodes it: it cuts
the byte stream into frames, verifies the checksum, reads the fields, names the unit from a template
and turns the first matching rule into an event.

A frame of the imagined Anvil PB-8 panic-button concentrator (``config/framespecs/anvil-pb8.toml``);
offsets count from the first byte of the start sequence, negative ones from the end of the frame::

      0    1    2     3    4     5      6       7      8    9        (-2   -1)
    +----+----+-----+-----------+------+-------+-------+-----------+
    | AA | 55 | len |  box_id   | zone | event | flags |  CRC-16   |
    |  start  |  5  | uint, BE  | uint | uint  |  bits | MODBUS,LE |
    +----+----+-----+-----------+------+-------+-------+-----------+
              '-- checksum covers [from = 2, to = -2) ---'  '- at = -2
    total length = len + adjust (5: start, the len byte and the CRC are not counted)

The whole spec. In a gateway configuration the same keys sit under the channel's
``[channels.drivers.options]`` table (``protocol = "framespec"``)::

    spec = "anvil-pb8"                  # reported as detail.spec
    unit = "panic:{box_id}-{zone}"      # fields in braces, format specs allowed: "{zone:02d}"
    unmatched = "status"                # frames no rule matches: "status" events, or "ignore"

    [framing]
    start = "AA 55"                     # hex bytes
    length_field = { offset = 2, size = 1, endian = "big", adjust = 5 }
    max_length = 32                     # longer candidates are rejected and the stream resynchronised
    timeout_s = 0.5                     # a frame left incomplete this long is rejected (needs tick())

    [checksum]
    type = "crc16-modbus"
    from = 2                            # python-like byte range of the frame, start sequence included
    to = -2                             # (default: up to the checksum field)
    at = -2                             # where the checksum sits (default: the last bytes)
    endian = "little"                   # Modbus sends the low byte first

    [[fields]]
    name = "box_id"
    offset = 3
    size = 2                            # type = "uint", endian = "big" are the defaults
    [[fields]]
    name = "zone"
    offset = 5
    size = 1
    [[fields]]
    name = "event"
    offset = 6
    size = 1
    [[fields]]
    name = "battery_low"
    offset = 7
    size = 1
    mask = 0x01                         # value = (raw >> shift) & mask

    [[events]]                          # evaluated in order, the first match wins
    when = { event = 0x01 }
    kind = "alert"
    label = "panic button pressed"
    [[events]]
    when = { event = [0x10, 0x11] }     # a list: any of these values
    kind = "alert"
    label = "tamper"
    [[events]]
    when = { event = 0x20 }
    kind = "ignore"                     # heartbeats: no event at all

The keys, in short:

- ``framing``: where frames begin and end, one of
  ``start`` + ``end`` (+ ``trailer``: bytes after the end marker, e.g. a BCC after ETX);
  ``end`` alone (one frame per end marker, e.g. ``end = "0D 0A"`` for lines);
  [``start`` +] ``length`` (fixed total length); [``start`` +] ``length_field``.
  ``max_length`` bounds every frame, ``idle`` lists fill bytes ignored between frames and
  ``timeout_s`` rejects a frame that stops half-way (checked in :meth:`FrameSpecDecoder.tick`).
- ``checksum.type``: ``none``, ``xor``, ``sum8``, ``sum8-twos`` or a 16-bit CRC of :data:`CRC16`;
  ``encoding = "ascii-hex"`` for checksums sent as hex digits (two per byte).
- ``fields``: ``{name, offset, size}`` or ``{name, token}`` (with a ``[tokens]`` table that splits the
  frame at a separator, for comma-separated ASCII panels); ``type`` is ``uint``, ``int`` (two's
  complement), ``ascii`` (printable, padding spaces and NULs stripped), ``decimal`` (ASCII digits read
  as an integer), ``hex`` (the bytes as lower-case hex) or ``bcd`` (packed BCD, an integer).
- ``events``: ``{when = {field = value | [values]}, kind, label}``; kind is ``alert``, ``ptt``,
  ``status``, ``io`` or ``ignore``. All conditions of a rule must hold; ``when = {}`` matches anything.

Output: ``Decoded(kind, time=now, unit, detail={"protocol": "framespec", "spec", "fields", "label",
"raw"})``. A unit template that renders to something that is not a unit identity gives ``unit=None``
and a ``unit_error`` in the detail: an alarm from a box we cannot name still reaches a dispatcher.

Bad input never raises. Every byte the decoder drops comes back exactly once in a :class:`Rejected`
(idle bytes excepted): a frame with a bad checksum, a length out of bounds, a field it cannot read, or
bytes outside any frame. After a bad frame the decoder resynchronises at the next start sequence (from
one byte after the bad start, so a frame cut short gives way to the one that follows; with start and
end, a start met before the end cuts the frame short), after the next end marker when frames have no
start, or one byte further when frames have neither (one report for the whole slide). A report goes
out when the decoder knows where the dropped bytes end: at the next frame, or after ``timeout_s`` of
quiet. Spec errors raise :class:`FrameSpecError` (a ``ValueError``) naming the key path and what was
expected: ``options.fields[2].offset: expected an integer, got '3'``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import xor
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from drivers.base import Output, ProtocolDecoder, Rejected
from gateway.events import Decoded, Kind, is_unit

PROTOCOL = "framespec"

#: ``max_length`` when the spec gives none and frames have no fixed length.
DEFAULT_MAX_LENGTH = 256

#: Bytes dropped in one run are reported in pieces of at most this (or max_length, if larger).
NOISE_REPORT_BYTES = 256

_UNIT_PREFIX_RE = re.compile(r"^[a-z0-9]+:")


# --- checksums -----------------------------------------------------------------------------------


def _reflect16(value: int) -> int:
    return int(f"{value:016b}"[::-1], 2)


def _crc16_table(poly: int, reflected: bool) -> tuple[int, ...]:
    """The 256 remainders of one byte, for the byte-at-a-time (Sarwate) algorithm."""
    table = []
    if reflected:
        rpoly = _reflect16(poly)
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ rpoly if crc & 1 else crc >> 1
            table.append(crc)
    else:
        for byte in range(256):
            crc = byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ poly) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
            table.append(crc)
    return tuple(table)


@dataclass(frozen=True, slots=True)
class Crc16:
    """A 16-bit CRC in the Rocksoft model of the CRC catalogue (Greg Cook, "Catalogue of parametrised
    CRC algorithms", https://reveng.sourceforge.io/crc-catalogue/16.htm); ``check`` is the CRC of the
    ASCII bytes ``123456789`` as the catalogue lists it."""

    catalogue_name: str
    poly: int
    init: int
    refin: bool
    refout: bool
    xorout: int
    check: int
    table: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", _crc16_table(self.poly, self.refin))

    def __call__(self, data: bytes) -> int:
        table = self.table
        if self.refin:
            crc = _reflect16(self.init)
            for byte in data:
                crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
            if not self.refout:
                crc = _reflect16(crc)
        else:
            crc = self.init
            for byte in data:
                crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
            if self.refout:
                crc = _reflect16(crc)
        return crc ^ self.xorout


#: The 16-bit CRCs a spec may name, with their catalogue parameters.
CRC16: dict[str, Crc16] = {
    # CRC-16/IBM-3740, long known as CRC-16/CCITT-FALSE
    "crc16-ccitt-false": Crc16("CRC-16/IBM-3740", 0x1021, 0xFFFF, False, False, 0x0000, 0x29B1),
    "crc16-xmodem": Crc16("CRC-16/XMODEM", 0x1021, 0x0000, False, False, 0x0000, 0x31C3),
    "crc16-kermit": Crc16("CRC-16/KERMIT", 0x1021, 0x0000, True, True, 0x0000, 0x2189),
    "crc16-modbus": Crc16("CRC-16/MODBUS", 0x8005, 0xFFFF, True, True, 0x0000, 0x4B37),
    # CRC-16/ARC, also called CRC-16/IBM or plain CRC-16
    "crc16-ibm": Crc16("CRC-16/ARC", 0x8005, 0x0000, True, True, 0x0000, 0xBB3D),
    # CRC-16/IBM-SDLC, the CRC of X.25 and HDLC
    "crc16-x25": Crc16("CRC-16/IBM-SDLC", 0x1021, 0xFFFF, True, True, 0xFFFF, 0x906E),
}


@dataclass(frozen=True, slots=True)
class ChecksumAlgorithm:
    size: int  # bytes on the wire when sent in binary
    compute: Callable[[bytes], int]


def _xor8(data: bytes) -> int:
    return reduce(xor, data, 0)


def _sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def _sum8_twos(data: bytes) -> int:
    # The two's complement of the sum: the frame's bytes and this checksum add up to 0 (mod 256).
    return -sum(data) & 0xFF


CHECKSUMS: dict[str, ChecksumAlgorithm] = {
    "xor": ChecksumAlgorithm(1, _xor8),
    "sum8": ChecksumAlgorithm(1, _sum8),
    "sum8-twos": ChecksumAlgorithm(1, _sum8_twos),
    **{name: ChecksumAlgorithm(2, crc) for name, crc in CRC16.items()},
}


# --- the spec, validated -------------------------------------------------------------------------

Endian = Literal["big", "little"]
FieldType = Literal["uint", "int", "ascii", "decimal", "hex", "bcd"]
ChecksumType = Literal[
    "none",
    "xor",
    "sum8",
    "sum8-twos",
    "crc16-ccitt-false",
    "crc16-xmodem",
    "crc16-kermit",
    "crc16-modbus",
    "crc16-ibm",
    "crc16-x25",
]
RuleKind = Literal["alert", "ptt", "status", "io", "ignore"]
_INTEGER_TYPES = frozenset({"uint", "int", "decimal", "bcd"})


def _hex_bytes(value: object) -> bytes:
    text = "".join(value.split()) if isinstance(value, str) else ""
    if not text or len(text) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", text):
        hint = f' (write it as "{value:02X}")' if type(value) is int and 0 <= value <= 0xFF else ""
        raise ValueError(f'expected hex bytes as a string like "AA 55", got {value!r}{hint}')
    return bytes.fromhex(text)


def _spec_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", value):
        raise ValueError(f"expected 1-64 characters of A-Z a-z 0-9 _ . -, got {value!r}")
    return value


def _field_name(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,31}", value):
        raise ValueError(f"expected a lower-case identifier like box_id, got {value!r}")
    return value


def _separator(value: str) -> str:
    if not value or not value.isascii():
        raise ValueError(f'expected one or more ASCII characters like ",", got {value!r}')
    return value


HexBytes = Annotated[bytes, BeforeValidator(_hex_bytes)]


class _Table(BaseModel):
    # strict: TOML gives real types, so "3" for 3 or true for 1 is a mistake worth naming
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LengthField(_Table):
    offset: int = Field(ge=0)
    size: int = Field(ge=1, le=4)
    endian: Endian = "big"
    adjust: int = 0  # total frame length = value + adjust


class Framing(_Table):
    start: HexBytes | None = None
    end: HexBytes | None = None
    trailer: int = Field(0, ge=0, le=8)
    length: int | None = Field(None, ge=1, le=65535)
    length_field: LengthField | None = None
    max_length: int | None = Field(None, ge=1, le=65535)
    idle: HexBytes | None = None
    timeout_s: float | None = Field(None, gt=0.0)


class Checksum(_Table):
    type: ChecksumType = "none"
    from_: int = Field(0, alias="from")
    to: int | None = None
    at: int | None = None
    endian: Endian = "big"
    encoding: Literal["binary", "ascii-hex"] = "binary"


class Tokens(_Table):
    separator: Annotated[str, AfterValidator(_separator)]
    from_: int = Field(0, alias="from")
    to: int | None = None


class FieldSpec(_Table):
    name: Annotated[str, AfterValidator(_field_name)]
    type: FieldType = "uint"
    offset: int | None = None
    size: int | None = Field(None, ge=1, le=1024)
    token: int | None = Field(None, ge=0)
    endian: Endian = "big"
    mask: int | None = Field(None, ge=1)
    shift: int = Field(0, ge=0, le=63)


class Rule(_Table):
    when: dict[str, Any] = Field(default_factory=dict)
    kind: RuleKind
    label: str | None = None


class FrameSpec(_Table):
    spec: Annotated[str, AfterValidator(_spec_name)]
    description: str | None = None
    framing: Framing
    checksum: Checksum = Field(default_factory=Checksum)
    tokens: Tokens | None = None
    fields: list[FieldSpec] = Field(default_factory=list)
    unit: str | None = None
    events: list[Rule] = Field(default_factory=list)
    unmatched: Literal["ignore", "status"] = "status"


class FrameSpecError(ValueError):
    """A spec that cannot work; ``problems`` pairs each key path with what was expected."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{path}: {problem}" for path, problem in self.problems))


def _key_path(loc: Sequence[int | str]) -> str:
    path = "options"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: Mapping[str, Any]) -> str:
    """Pydantic's message, said the way a technician reads a TOML file."""
    kind, ctx, got = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {got!r}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {got!r}"
    if kind in ("string_type", "str_type"):
        return f"expected a string, got {got!r}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a table, got {got!r}"
    if kind == "list_type":
        return f"expected an array, got {got!r}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {got!r}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        if isinstance(limit, float):
            return f"expected a number {bounds[kind]} {limit:g}, got {got!r}"
        return f"expected an integer {bounds[kind]} {limit}, got {got!r}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return str(error["msg"])


def load_spec(options: Mapping[str, Any]) -> FrameSpec:
    """Validate a spec table (a channel's options, or a spec file read with tomllib)."""
    try:
        spec = FrameSpec.model_validate(dict(options))
    except ValidationError as exc:
        raise FrameSpecError([(_key_path(e["loc"]), _describe(e)) for e in exc.errors()]) from None
    problems = _check(spec)
    if problems:
        raise FrameSpecError(problems)
    return spec


def _max_length(framing: Framing) -> int:
    return framing.max_length or framing.length or DEFAULT_MAX_LENGTH


def _checksum_width(checksum: Checksum) -> int:
    size = CHECKSUMS[checksum.type].size if checksum.type != "none" else 0
    return size * 2 if checksum.encoding == "ascii-hex" else size


#: Records one problem: (key path under ``options.``, what was expected).
_Bad = Callable[[str, str], None]


def _check(spec: FrameSpec) -> list[tuple[str, str]]:
    """What the types alone cannot say: keys that contradict each other or the frame's size."""
    problems: list[tuple[str, str]] = []

    def bad(path: str, problem: str) -> None:
        problems.append((f"options.{path}", problem))

    _check_framing(spec.framing, bad)
    _check_checksum(spec.checksum, spec.framing, bad)
    types = _check_fields(spec, bad)
    if spec.unit is not None:
        problem = _check_template(spec.unit, types)
        if problem:
            bad("unit", problem)
    _check_rules(spec.events, types, bad)
    return problems


def _check_framing(fr: Framing, bad: _Bad) -> None:
    """Where a frame starts and ends: one way to find its end, and room for what it must hold."""
    start_len = len(fr.start or b"")
    max_len = _max_length(fr)
    if fr.length is not None and fr.length_field is not None:
        bad("framing.length_field", "give either length or length_field, not both")
    if fr.end is not None and (fr.length is not None or fr.length_field is not None):
        bad("framing.end", "a frame ends at its end marker or after its length, not both: drop one")
    if fr.end is None and fr.length is None and fr.length_field is None:
        bad(
            "framing",
            "say where a frame ends: give end (with or without start), length or length_field"
            + (" (start alone is not enough)" if fr.start is not None else ""),
        )
    if fr.trailer and fr.end is None:
        bad("framing.trailer", "trailer counts bytes after the end marker: give end too")
    if fr.length is not None:
        if fr.length <= start_len:
            bad("framing.length", f"expected more than the {start_len}-byte start, got {fr.length}")
        if fr.max_length is not None and fr.length > fr.max_length:
            bad("framing.length", f"{fr.length} exceeds max_length {fr.max_length}")
    if fr.length_field is not None:
        lf = fr.length_field
        if lf.offset < start_len:
            bad("framing.length_field.offset", f"expected an offset >= {start_len}, past the start sequence")
        if lf.offset + lf.size > max_len:
            bad("framing.length_field.offset", f"the length field lies beyond max_length {max_len}")
    if fr.end is not None and start_len + len(fr.end) + fr.trailer > max_len:
        bad("framing.max_length", f"{max_len} is too short for the start, end and trailer bytes")


def _check_checksum(ck: Checksum, fr: Framing, bad: _Bad) -> None:
    """The checksum's place and range: inside the frame, and not covering itself."""
    if ck.type == "none":
        for attr, key in (("from_", "from"), ("to", "to"), ("at", "at")):
            if attr in ck.model_fields_set:
                bad(f"checksum.{key}", 'a spec without checksum (type = "none") has no ' + key)
        return
    width = _checksum_width(ck)
    at = ck.at if ck.at is not None else -width
    if at < 0 and -at < width:
        bad("checksum.at", f"a {width}-byte checksum at {at} would run past the end of the frame")
    elif fr.length is not None:
        _check_checksum_in_fixed_frame(ck, at, width, fr.length, bad)
    elif at >= 0 and at + width > _max_length(fr):
        bad("checksum.at", f"lies beyond max_length {_max_length(fr)}")


def _check_checksum_in_fixed_frame(ck: Checksum, at: int, width: int, fixed: int, bad: _Bad) -> None:
    """A frame of known length: the checksum and the range it covers, as absolute offsets, must fit."""
    at_abs = at if at >= 0 else fixed + at
    lo = ck.from_ if ck.from_ >= 0 else fixed + ck.from_
    hi = at_abs if ck.to is None else ck.to if ck.to >= 0 else fixed + ck.to
    if not 0 <= at_abs <= fixed - width:
        bad("checksum.at", f"a {width}-byte checksum at {at} lies outside the {fixed}-byte frame")
    elif not 0 <= lo <= hi <= fixed:
        bad("checksum.to" if ck.to is not None else "checksum.from", f"empty or outside the {fixed}-byte frame")
    elif lo < at_abs + width and at_abs < hi:
        bad("checksum.to", "the checksum range covers the checksum itself")


def _check_fields(spec: FrameSpec, bad: _Bad) -> dict[str, str]:
    """Each field: a unique name, one way to find it, a size its type can hold. Returns name -> type."""
    types: dict[str, str] = {}
    for i, f in enumerate(spec.fields):
        path = f"fields[{i}]"
        if f.name in types:
            bad(f"{path}.name", f"duplicate field name {f.name!r}")
        types[f.name] = f.type
        if f.token is not None:
            _check_token_field(path, f, spec.tokens is not None, bad)
        else:
            _check_offset_field(path, f, spec.framing, bad)
        if f.type in ("uint", "int") and f.size is not None and f.size > 8:
            bad(f"{path}.size", f"expected 1..8 bytes for type {f.type}, got {f.size}")
        if f.type != "uint":
            for key in ("mask", "shift"):
                if key in f.model_fields_set:
                    bad(f"{path}.{key}", f"only for type uint, this field is {f.type}")
    return types


def _check_token_field(path: str, f: FieldSpec, has_tokens: bool, bad: _Bad) -> None:
    if f.offset is not None:
        bad(f"{path}.offset", "a field is found by offset or by token, not both")
    if f.size is not None:
        bad(f"{path}.size", "a token field takes the whole token: drop size")
    if not has_tokens:
        bad(f"{path}.token", "token fields need a [tokens] table that says how to split the frame")


def _check_offset_field(path: str, f: FieldSpec, fr: Framing, bad: _Bad) -> None:
    fixed, max_len = fr.length, _max_length(fr)
    if f.offset is None:
        bad(path, "give offset and size, or token")
    elif f.size is None:
        bad(f"{path}.size", "required key is missing (with offset)")
    elif f.offset < 0 and -f.offset < f.size:
        bad(f"{path}.offset", f"{_n_bytes(f.size)} at offset {f.offset} would run past the end of the frame")
    elif fixed is not None and not 0 <= (f.offset if f.offset >= 0 else fixed + f.offset) <= fixed - f.size:
        bad(f"{path}.offset", f"{_n_bytes(f.size)} at offset {f.offset}: outside the {fixed}-byte frame")
    elif f.offset >= 0 and f.offset + f.size > max_len:
        bad(f"{path}.offset", f"{_n_bytes(f.size)} at offset {f.offset}: beyond max_length {max_len}")


def _check_rules(rules: Sequence[Rule], types: Mapping[str, str], bad: _Bad) -> None:
    """Each rule's ``when``: fields that exist, values of the field's type."""
    for i, rule in enumerate(rules):
        for key, value in rule.when.items():
            path = f"events[{i}].when.{key}"
            if key not in types:
                bad(path, f"no field named {key!r}; fields: {', '.join(types) or 'none'}")
                continue
            values = value if isinstance(value, list) else [value]
            want_int = types[key] in _INTEGER_TYPES
            if not values:
                bad(path, "expected a value or a non-empty array of values")
            for v in values:
                ok = (isinstance(v, int) and not isinstance(v, bool)) if want_int else isinstance(v, str)
                if not ok:
                    noun = "an integer" if want_int else "a string"
                    bad(path, f"field {key!r} is {types[key]}: expected {noun}, got {v!r}")


def _sample(field_type: str) -> int | str:
    return 7 if field_type in _INTEGER_TYPES else "x"


def _check_template(template: str, types: Mapping[str, str]) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template: {exc}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in types:
            return f"{{{name}}} names no field; fields: {', '.join(types) or 'none'}"
        if conversion is not None or (spec and "{" in spec):
            return f"{{{name}}}: only a field name and a format spec like {{{name}:04d}} are allowed"
    if not _UNIT_PREFIX_RE.match(template):
        return f"expected a template that starts with a lower-case prefix and a colon like 'panic:', got {template!r}"
    try:
        rendered = template.format_map({name: _sample(t) for name, t in types.items()})
    except (ValueError, TypeError) as exc:
        return f"cannot render {template!r}: {exc}"
    if not is_unit(rendered):
        return f"renders as {rendered!r}, not a unit identity (prefix, colon, 1-64 characters without space / # +)"
    return None


# --- decoding ------------------------------------------------------------------------------------


class _BadFrame(Exception):
    """Internal: why a candidate frame is unusable. Never leaves the decoder."""


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    kind: RuleKind
    label: str | None
    conditions: tuple[tuple[str, frozenset[int | str]], ...]

    def matches(self, values: Mapping[str, int | str]) -> bool:
        return all(values[name] in allowed for name, allowed in self.conditions)


def _compile_rule(rule: Rule, types: Mapping[str, str]) -> _CompiledRule:
    conditions = []
    for name, value in rule.when.items():
        values = value if isinstance(value, list) else [value]
        if types[name] == "hex":  # hex fields read as lower-case digits without spaces
            values = ["".join(v.split()).lower() for v in values]
        conditions.append((name, frozenset(values)))
    return _CompiledRule(rule.kind, rule.label, tuple(conditions))


def _n_bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


def _at(index: int, length: int) -> int:
    return index if index >= 0 else length + index


def _slice(frame: bytes, offset: int, size: int, what: str) -> bytes:
    begin = _at(offset, len(frame))
    if begin < 0 or begin + size > len(frame):
        raise _BadFrame(f"frame of {len(frame)} bytes too short for {what} ({_n_bytes(size)} at offset {offset})")
    return frame[begin : begin + size]


def _printable(raw: bytes, name: str) -> str:
    text = raw.strip(b" \x00")  # fixed-width text is padded with spaces or NULs
    if any(b < 0x20 or b > 0x7E for b in text):
        raise _BadFrame(f"field {name!r}: {raw!r} is not printable ASCII")
    return text.decode("ascii")


def _read_field(f: FieldSpec, raw: bytes) -> int | str:
    if f.type == "uint":
        value = int.from_bytes(raw, f.endian) >> f.shift
        return value & f.mask if f.mask is not None else value
    if f.type == "int":
        return int.from_bytes(raw, f.endian, signed=True)
    if f.type == "hex":
        return raw.hex()
    if f.type == "bcd":
        digits = (raw if f.endian == "big" else raw[::-1]).hex()
        if not digits.isdigit():  # a nibble above 9 shows as a-f
            raise _BadFrame(f"field {f.name!r}: {raw.hex(' ')} is not packed BCD")
        return int(digits)
    text = _printable(raw, f.name)
    if f.type == "decimal":
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _BadFrame(f"field {f.name!r}: {text!r} is not a decimal number")
        return int(text)
    return text


class FrameSpecDecoder(ProtocolDecoder):
    """Decodes the frames of one vendor box as its spec describes (see the module docstring).

    State between feeds is the undecided tail of the stream (``_buf``) and the dropped bytes not yet
    reported (``_noise`` with its reason), so the decoder resumes at any byte boundary.
    """

    name: ClassVar[str] = PROTOCOL

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.spec = load_spec(options)
        fr = self.spec.framing
        self._start = fr.start
        self._end = fr.end
        self._trailer = fr.trailer
        self._length = fr.length
        self._length_field = fr.length_field
        self._max_length = _max_length(fr)
        self._idle = fr.idle or b""
        self._timeout_s = fr.timeout_s
        self._min_length = max(
            len(fr.start or b""), fr.length_field.offset + fr.length_field.size if fr.length_field else 1
        )
        # How to resynchronise after a bad frame: at the next start, after the next end, or byte by byte.
        self._anchor: Literal["start", "end", "none"] = (
            "start" if fr.start is not None else "end" if fr.end is not None else "none"
        )
        ck = self.spec.checksum
        self._checksum = CHECKSUMS.get(ck.type)
        self._checksum_width = _checksum_width(ck)
        types = {f.name: f.type for f in self.spec.fields}
        self._rules = [_compile_rule(rule, types) for rule in self.spec.events]
        self._noise_cap = max(self._max_length, NOISE_REPORT_BYTES)
        self._unframed = (
            f"bytes outside any frame (no start sequence {fr.start.hex(' ')})"
            if fr.start is not None
            else "bytes outside any frame"
        )

        self._buf = bytearray()
        self._noise = bytearray()
        self._noise_reason: str | None = None
        self._skip_to_end = False  # an end-delimited frame overflowed: drop through the next end marker
        self._last_rx: datetime | None = None
        self._out: list[Output] = []

    # --- the stream

    def feed(self, data: bytes, now: datetime) -> list[Output]:
        if data:
            self._buf += data
            self._last_rx = now
        while self._step(now):
            pass
        out, self._out = self._out, []
        return out

    def tick(self, now: datetime) -> list[Output]:
        """Reject a frame left incomplete for ``timeout_s`` (a box that stopped mid-frame)."""
        if self._timeout_s is None or self._last_rx is None or not (self._buf or self._noise):
            return []
        if (now - self._last_rx).total_seconds() < self._timeout_s:
            return []
        if self._skip_to_end:  # while skipping, the tail joins the report of the overlong frame
            self._drop(len(self._buf))
        while self._buf:
            self._flush(final=True)
            self._noise_reason = f"incomplete frame: nothing more for {self._timeout_s:g} s"
            if self._anchor != "start":
                self._drop(len(self._buf))
                break
            # A good frame may lie inside the stale one (noise that looked like a start and a long
            # length): drop the stale start and read on, as after a bad checksum (found by fuzzing).
            self._drop(1)
            while self._step(self._last_rx):
                pass
        self._flush(final=True)
        self._skip_to_end = False
        out, self._out = self._out, []
        return out

    def flush(self) -> list[Output]:
        """End of input: a frame still incomplete is rejected as its timeout would have."""
        if self._timeout_s is None or self._last_rx is None:
            return []
        return self.tick(self._last_rx + timedelta(seconds=self._timeout_s))

    def _step(self, now: datetime) -> bool:
        """Settle what the buffer's head allows; False when more bytes are needed to go on."""
        buf = self._buf
        if self._skip_to_end:
            return self._skip_through_end()
        if self._start is not None:
            found = buf.find(self._start)
            if found < 0:
                # Keep only a tail that may still grow into the start sequence.
                self._drop(len(buf) - _partial_suffix(buf, self._start))
                return False
            self._drop(found)
        elif self._idle:
            self._drop(len(buf) - len(buf.lstrip(self._idle)))
        if not buf:
            return False
        try:
            length = self._measure()
        except _BadFrame as bad:
            self._reject(str(bad), None)
            return True
        if length is None or length > len(buf):
            return False
        frame = bytes(buf[:length])
        try:
            decoded = self._decode(frame, now)
        except _BadFrame as bad:
            self._reject(str(bad), length)
            return True
        self._flush(final=True)
        if decoded is not None:
            self._out.append(decoded)
        del buf[:length]
        return True

    def _measure(self) -> int | None:
        """The length of the frame at the head of the buffer, or None until enough bytes are in."""
        buf = self._buf
        if self._length is not None:
            return self._length
        if self._length_field is not None:
            lf = self._length_field
            if len(buf) < lf.offset + lf.size:
                return None
            value = int.from_bytes(buf[lf.offset : lf.offset + lf.size], lf.endian)
            length = value + lf.adjust
            if not self._min_length <= length <= self._max_length:
                bounds = f"{self._min_length}..{self._max_length}"
                raise _BadFrame(f"length field says {value}: a frame of {length} bytes, outside {bounds}")
            return length
        assert self._end is not None  # the spec check guarantees one way to end a frame
        begin = len(self._start or b"")
        limit = self._max_length - self._trailer
        found = buf.find(self._end, begin, limit)
        if self._start is not None:
            # A start before the end means this frame was cut short (STX resets the frame, as on a
            # printer port); only a start wholly before the end counts, however the bytes arrived.
            again = buf.find(self._start, begin, found if found >= 0 else limit)
            if again >= 0:
                raise _BadFrame(f"start sequence again at offset {again}, before the end marker")
        if found >= 0:
            return found + len(self._end) + self._trailer
        if len(buf) >= limit:
            raise _BadFrame(f"no end marker {self._end.hex(' ')} within max_length {self._max_length} bytes")
        return None

    def _reject(self, reason: str, length: int | None) -> None:
        if self._anchor == "none":
            # Sliding one byte at a time: one report for the whole run up to the next good frame.
            if self._noise_reason is None:
                self._noise_reason = reason
            self._drop(1)
            return
        self._flush(final=True)
        self._noise_reason = reason
        if self._anchor == "start":
            self._drop(1)  # the next start may lie inside this bad frame (a truncated one)
        elif length is None:
            self._skip_to_end = True
        else:
            self._drop(length)

    def _skip_through_end(self) -> bool:
        assert self._end is not None
        buf = self._buf
        found = buf.find(self._end)
        if found < 0:
            self._drop(len(buf) - (len(self._end) - 1))
            return False
        through = found + len(self._end) + self._trailer
        if through > len(buf):
            return False
        self._drop(through)
        self._skip_to_end = False
        return True

    def _drop(self, count: int) -> None:
        """Move the first ``count`` bytes of the buffer to the noise, reported later under its reason."""
        if count <= 0:
            return
        chunk = bytes(self._buf[:count])
        del self._buf[:count]
        if self._noise_reason is None:
            chunk = chunk.lstrip(self._idle) if self._idle else chunk
            if not chunk:
                return
            self._noise_reason = self._unframed
        self._noise += chunk
        # Report at fixed sizes, so that how the stream was split never changes what is reported.
        while len(self._noise) >= self._noise_cap:
            self._report(self._noise_cap)

    def _flush(self, *, final: bool) -> None:
        if self._noise:
            self._report(len(self._noise))
        if final:
            self._noise_reason = None

    def _report(self, count: int) -> None:
        reason = self._noise_reason or self._unframed
        self._out.append(Rejected(PROTOCOL, reason, bytes(self._noise[:count])))
        del self._noise[:count]

    # --- one frame

    def _decode(self, frame: bytes, now: datetime) -> Decoded | None:
        self._verify_checksum(frame)
        values: dict[str, int | str] = {}
        tokens: list[bytes] | None = None
        for f in self.spec.fields:
            if f.token is not None:
                tokens = tokens if tokens is not None else self._tokens(frame)
                if f.token >= len(tokens):
                    raise _BadFrame(f"field {f.name!r}: no token {f.token}, the frame has {len(tokens)}")
                raw = tokens[f.token]
            else:
                assert f.offset is not None and f.size is not None
                raw = _slice(frame, f.offset, f.size, f"field {f.name!r}")
            values[f.name] = _read_field(f, raw)
        rule = next((r for r in self._rules if r.matches(values)), None)
        kind = rule.kind if rule is not None else self.spec.unmatched
        if kind == "ignore":
            return None
        detail: dict[str, Any] = {
            "protocol": PROTOCOL,
            "spec": self.spec.spec,
            "fields": values,
            "label": rule.label if rule is not None else None,
            "raw": frame.hex(),
        }
        unit = None
        if self.spec.unit is not None:
            try:
                unit = self.spec.unit.format_map(values)
            except (ValueError, OverflowError) as exc:  # a format spec that fits the sample but not this value
                detail["unit_error"] = f"unit template: {exc}"
            else:
                if not is_unit(unit):
                    detail["unit_error"] = f"unit {unit!r} is not a unit identity"
                    unit = None
        return Decoded(Kind(kind), now, unit=unit, detail=detail)

    def _verify_checksum(self, frame: bytes) -> None:
        if self._checksum is None:
            return
        ck, width, n = self.spec.checksum, self._checksum_width, len(frame)
        at = ck.at if ck.at is not None else -width
        carried = _slice(frame, at, width, "the checksum")
        lo = _at(ck.from_, n)
        hi = _at(ck.to, n) if ck.to is not None else _at(at, n)
        if not 0 <= lo <= hi <= n:
            raise _BadFrame(f"frame of {n} bytes too short for the checksummed range")
        if ck.encoding == "ascii-hex":
            if not re.fullmatch(rb"[0-9A-Fa-f]+", carried):
                raise _BadFrame(f"checksum {carried!r} is not hex digits")
            got = int(carried, 16)
        else:
            got = int.from_bytes(carried, ck.endian)
        want = self._checksum.compute(frame[lo:hi])
        if got != want:
            digits = self._checksum.size * 2
            raise _BadFrame(
                f"checksum mismatch: frame carries 0x{got:0{digits}X}, "
                f"{ck.type} of bytes {lo}..{hi - 1} is 0x{want:0{digits}X}"
            )

    def _tokens(self, frame: bytes) -> list[bytes]:
        tk = self.spec.tokens
        assert tk is not None
        body = frame[tk.from_ : tk.to]
        return body.split(tk.separator.encode("ascii"))


def _partial_suffix(buf: bytearray, start: bytes) -> int:
    """The length of the longest tail of ``buf`` that is a proper prefix of ``start``."""
    for size in range(min(len(start) - 1, len(buf)), 0, -1):
        if buf.endswith(start[:size]):
            return size
    return 0
