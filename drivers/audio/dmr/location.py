r"""What DMR data carries about where a unit is, and text: IPv4/UDP datagrams from the data blocks,
Motorola LRRP, ETSI LIP, ETSI text messages. Parsers raise :class:`LocationError` with the reason.

IPv4 (RFC 791) + UDP (RFC 768): the data header's SAP 4 says the packet is an IP datagram. Ports::

    4001  LRRP (Motorola location request/response protocol)
    5016  text message, UTF-16BE (TS 102 361-3 table 7.17 default)
    5017  LIP (TS 102 361-3 table 7.17 default)

LRRP (vendor protocol, as decoded by the public decoders, e.g. sdrtrunk ``mototrbo/lrrp``)::

    | type (1) | length (1) | tokens ... |      type 0x05 immediate location response,
                                                 0x07 triggered location start response, 0x0D triggered
                                                 location data (the periodic report)
    token  0x22 identity: length + bytes      0x34 timestamp: 5 octets, year 14 month 4 day 5 hour 5 min 6 sec 6
           0x51 circle 2D: lat 4 lon 4 radius 2    0x55 circle 3D: lat 4 lon 4 radius 2 alt 3 alt-acc 2
           0x66 point 2D: lat 4 lon 4               0x69 point 3D: lat 4 lon 4 alt 3
           0x56 heading: 1 octet, x 2 degrees       0x6C speed: 2 octets (raw)   0x37 response: length + bytes
           0x38 success (no value)  0x36 version 1  0x23 1  0x31 1
    lat = hemisphere bit + 31-bit magnitude x 180 / (2^32 - 1); lon = 32-bit two's complement x 360 / (2^32 - 1)

LIP short location report (ETSI TS 100 392-18-1 6.2.1, carried as TS 102 361-3/-4 say), 76 bits::

    | PDU type 2 = 00 | time elapsed 2 | longitude 25 | latitude 24 | position error 3 |
    | horizontal velocity 7 | direction of travel 4 | type of additional data 1 | additional data 8 |
      lon = v x 360 / 2^25, lat = v x 180 / 2^24 (two's complement); velocity: v km/h up to 28, else
      16 x 1.038^(v - 13); 127 unknown; direction x 22.5 degrees; additional data (type 0) is the
      reason for sending: 2 = emergency condition detected

LIP long location report (6.2.2): | 01 | extension 4 = 0011 | time type 2 (+ time) | location shape 4 |
    location data | velocity type 3 (+ velocity) | ack request 1 | type of additional data 1 | data 8 |
    shapes decoded: 0001 point (lon 25, lat 24), 0010 circle (+ uncertainty 7); velocity 000 none,
    001 horizontal (7 bits); others are refused with their number.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PORT_LRRP = 4001
PORT_TEXT = 5016
PORT_LIP = 5017
LIP_REASON_EMERGENCY = 2


class LocationError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Fix:
    lat: float
    lon: float
    alt_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    fix_time: datetime | None = None
    emergency: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ IP/UDP


@dataclass(frozen=True, slots=True)
class Datagram:
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    payload: bytes


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def parse_udp_ip(packet: bytes) -> Datagram:
    if len(packet) < 28:
        raise LocationError(f"an IPv4/UDP datagram needs 28 octets, got {len(packet)}")
    if packet[0] >> 4 != 4:
        raise LocationError(f"not IPv4 (version {packet[0] >> 4})")
    ihl = (packet[0] & 0xF) * 4
    total = int.from_bytes(packet[2:4], "big")
    if ihl < 20 or total < ihl + 8 or total > len(packet):
        raise LocationError(f"IPv4 lengths do not fit: header {ihl}, total {total}, have {len(packet)}")
    if _ip_checksum(packet[:ihl]) != 0:
        raise LocationError("IPv4 header checksum fails")
    if packet[9] != 17:
        raise LocationError(f"IP protocol {packet[9]} is not UDP")
    udp = packet[ihl:total]
    length = int.from_bytes(udp[4:6], "big")
    if length < 8 or length > len(udp):
        raise LocationError(f"UDP length {length} does not fit the {len(udp)} octets after the IP header")
    dotted = [".".join(str(b) for b in packet[i:i + 4]) for i in (12, 16)]
    return Datagram(dotted[0], dotted[1], int.from_bytes(udp[0:2], "big"), int.from_bytes(udp[2:4], "big"),
                    bytes(udp[8:length]))


def build_udp_ip(payload: bytes, *, src_ip: str, dst_ip: str, src_port: int, dst_port: int) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                                   bytes(int(x) for x in src_ip.split(".")), bytes(int(x) for x in dst_ip.split("."))))
    header[10:12] = _ip_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + udp


def radio_ip(radio_id: int, network: int = 12) -> str:
    """MOTOTRBO addresses a radio as network.x.y.z with its 24-bit ID in x.y.z."""
    return f"{network}.{radio_id >> 16 & 0xFF}.{radio_id >> 8 & 0xFF}.{radio_id & 0xFF}"


# -------------------------------------------------------------------------------------- LRRP

LRRP_TYPES = {0x04: "immediate_location_request", 0x05: "immediate_location_response",
              0x06: "triggered_location_start_request", 0x07: "triggered_location_start_response",
              0x09: "triggered_location_start_request", 0x0B: "triggered_location_start_response",
              0x0D: "triggered_location_data", 0x0F: "triggered_location_stop_request",
              0x11: "triggered_location_stop_response"}
_FIXED = {0x23: 1, 0x31: 1, 0x34: 5, 0x36: 1, 0x38: 0, 0x51: 10, 0x55: 15, 0x56: 1, 0x66: 8, 0x69: 11, 0x6C: 2,
          0x4A: 1, 0x61: 1, 0x73: 1, 0x78: 1}
_VARIABLE = {0x22, 0x37}
_LAT_SCALE = 180.0 / 4294967295.0
_LON_SCALE = 360.0 / 4294967295.0


def _lrrp_latlon(b: bytes) -> tuple[float, float]:
    lat_raw = int.from_bytes(b[0:4], "big")
    lat = (lat_raw & 0x7FFFFFFF) * _LAT_SCALE * (-1 if lat_raw & 0x80000000 else 1)
    lon = int.from_bytes(b[4:8], "big", signed=True) * _LON_SCALE
    return lat, lon


def _lrrp_tokens(body: bytes, info: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
    """Each (token, its value) of an LRRP body; a token of unknown length ends the walk, the rest of the
    body kept in ``info["unparsed"]``."""
    i = 0
    while i < len(body):
        tok = body[i]
        if tok in _VARIABLE:
            if i + 1 >= len(body) or i + 2 + body[i + 1] > len(body):
                raise LocationError(f"LRRP token {tok:#04x} runs past the end")
            value = body[i + 2:i + 2 + body[i + 1]]
            i += 2 + body[i + 1]
        elif tok in _FIXED:
            n = _FIXED[tok]
            if i + 1 + n > len(body):
                raise LocationError(f"LRRP token {tok:#04x} needs {n} octets, {len(body) - i - 1} left")
            value = body[i + 1:i + 1 + n]
            i += 1 + n
        else:
            info["unparsed"] = body[i:].hex()  # a token of unknown length: the rest cannot be cut
            return
        yield tok, value


def _lrrp_time(value: bytes, info: dict[str, Any]) -> datetime | None:
    v = int.from_bytes(value, "big")
    try:
        return datetime(v >> 26 & 0x3FFF, v >> 22 & 0xF, v >> 17 & 0x1F, v >> 12 & 0x1F, v >> 6 & 0x3F, v & 0x3F,
                        tzinfo=UTC)
    except ValueError:
        info["bad_timestamp"] = value.hex()
        return None


def parse_lrrp(data: bytes) -> tuple[str, Fix | None, dict[str, Any]]:
    """(message name, the fix if it carries one, what else it says)."""
    if len(data) < 2:
        raise LocationError(f"LRRP needs a type and a length, got {len(data)} octet(s)")
    kind, length = data[0], data[1]
    if 2 + length > len(data):
        raise LocationError(f"LRRP says {length} octets follow, only {len(data) - 2} do")
    name = LRRP_TYPES.get(kind, f"lrrp-{kind:#04x}")
    body = data[2:2 + length]
    info: dict[str, Any] = {}
    lat = lon = alt = course = None
    when = None
    for tok, value in _lrrp_tokens(body, info):
        if tok == 0x22:
            info["request_id"] = value.hex()
        elif tok in (0x51, 0x55, 0x66, 0x69):
            lat, lon = _lrrp_latlon(value)
            if tok in (0x51, 0x55):
                info["radius_raw"] = int.from_bytes(value[8:10], "big")
            if tok == 0x69:
                alt = float(int.from_bytes(value[8:11], "big"))
        elif tok == 0x34:
            when = _lrrp_time(value, info) or when  # a bad timestamp keeps what an earlier one said
        elif tok == 0x56:
            course = float(value[0] * 2 % 360)
        elif tok == 0x6C:
            info["speed_raw"] = int.from_bytes(value, "big")
        elif tok == 0x37:
            info["result"] = value.hex()
    if lat is None or lon is None:
        return name, None, info
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise LocationError(f"LRRP position out of range: {lat}, {lon}")
    return name, Fix(lat, lon, alt_m=alt, course_deg=course, fix_time=when, detail=info), info


def build_lrrp(lat: float, lon: float, *, request_id: bytes = b"\x01", when: datetime | None = None,
               heading_deg: float | None = None, kind: int = 0x0D) -> bytes:
    lat_v = round(abs(lat) / _LAT_SCALE) & 0x7FFFFFFF | (0x80000000 if lat < 0 else 0)
    lon_v = round(lon / _LON_SCALE) & 0xFFFFFFFF
    body = bytes((0x22, len(request_id))) + request_id
    if when is not None:
        v = (when.year << 26 | when.month << 22 | when.day << 17 | when.hour << 12 | when.minute << 6 | when.second)
        body += b"\x34" + v.to_bytes(5, "big")
    body += b"\x66" + lat_v.to_bytes(4, "big") + lon_v.to_bytes(4, "big")
    if heading_deg is not None:
        body += bytes((0x56, round(heading_deg / 2) % 180))
    return bytes((kind, len(body))) + body


# --------------------------------------------------------------------------------------- LIP


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.n = len(data) * 8
        self.pos = 0

    def take(self, k: int) -> int:
        if self.pos + k > self.n:
            raise LocationError(f"LIP: {k} more bits wanted at bit {self.pos} of {self.n}")
        self.pos += k
        return self.value >> (self.n - self.pos) & ((1 << k) - 1)


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _lip_speed(v: int) -> float | None:
    if v == 127:
        return None
    kmh = float(v) if v <= 28 else 16.0 * 1.038 ** (v - 13)
    return kmh / 3.6


def _lonlat(r: _Bits) -> tuple[float, float]:
    lon = _signed(r.take(25), 25) * 360.0 / (1 << 25)
    lat = _signed(r.take(24), 24) * 180.0 / (1 << 24)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise LocationError(f"LIP position out of range: {lat}, {lon}")
    return lat, lon


def parse_lip(data: bytes) -> Fix:
    r = _Bits(data)
    pdu_type = r.take(2)
    if pdu_type == 0:
        elapsed = r.take(2)
        lat, lon = _lonlat(r)
        error = r.take(3)
        speed = _lip_speed(r.take(7))
        direction = r.take(4) * 22.5
        add_type, add = r.take(1), r.take(8)
        return Fix(lat, lon, speed_mps=speed, course_deg=direction,
                   emergency=add_type == 0 and add == LIP_REASON_EMERGENCY,
                   detail={"lip": "short", "time_elapsed": elapsed, "position_error": error,
                           "reason" if add_type == 0 else "user_data": add})
    if pdu_type != 1:
        raise LocationError(f"LIP PDU type {pdu_type} is not a location report")
    ext = r.take(4)
    if ext != 3:
        raise LocationError(f"LIP PDU type extension {ext} is not a long location report")
    time_type = r.take(2)
    info: dict[str, Any] = {"lip": "long"}
    if time_type == 1:
        info["time_elapsed"] = r.take(2)
    elif time_type == 2:
        info["time_of_position"] = r.take(22)
    elif time_type == 3:
        raise LocationError("LIP time type 3 is reserved")
    shape = r.take(4)
    if shape == 0:
        raise LocationError("LIP long location report with no location shape")
    if shape not in (1, 2):
        raise LocationError(f"LIP location shape {shape} is not decoded")
    lat, lon = _lonlat(r)
    if shape == 2:
        info["uncertainty"] = r.take(7)
    speed = course = None
    velocity_type = r.take(3)
    if velocity_type == 1:
        speed = _lip_speed(r.take(7))
    elif velocity_type != 0:
        info["velocity_type"] = velocity_type
        return Fix(lat, lon, detail=info)
    info["ack_requested"] = bool(r.take(1))
    add_type, add = r.take(1), r.take(8)
    info["reason" if add_type == 0 else "user_data"] = add
    return Fix(lat, lon, speed_mps=speed, course_deg=course, emergency=add_type == 0 and add == LIP_REASON_EMERGENCY,
               detail=info)


def build_lip_short(lat: float, lon: float, *, reason: int = 0, speed_kmh: int = 0,
                    direction_deg: float = 0.0) -> bytes:
    fields = [(0, 2), (0, 2), (round(lon * (1 << 25) / 360.0) & 0x1FFFFFF, 25),
              (round(lat * (1 << 24) / 180.0) & 0xFFFFFF, 24), (2, 3), (min(speed_kmh, 28), 7),
              (round(direction_deg / 22.5) % 16, 4), (0, 1), (reason & 0xFF, 8)]
    v, n = 0, 0
    for value, bits in fields:
        v, n = v << bits | value, n + bits
    pad = -n % 8
    return (v << pad).to_bytes((n + pad) // 8, "big")


def parse_text(data: bytes) -> str:
    """An ETSI text message (UTF-16BE), up to a NUL."""
    if len(data) % 2:
        data = data[:-1]
    return data.decode("utf-16-be", errors="replace").split("\x00")[0]
