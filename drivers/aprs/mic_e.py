"""Mic-E (APRS 1.01 ch 10): a position packed into the destination address and 8 bytes of info, with the
Mic-E message ("En Route", "Emergency", ...) in three bits of the destination.

    destination (6 chars): latitude digits, message bits A B C, N/S, longitude offset, W/E
      char   digit  bit          4th: N/S   5th: lon +100   6th: W/E
      0-9    0-9    0                 S          +0               E
      A-J    0-9    1 custom          -          -                -     (chars 1-3 only)
      K      space  1 custom          -          -                -     (chars 1-3 only)
      L      space  0                 S          +0               E
      P-Y    0-9    1 standard        N          +100             W
      Z      space  1 standard        N          +100             W

    info:  ` or '  d+28 m+28 h+28  SP+28 DC+28 SE+28  code table  [status text]
           0       1    2    3     4     5     6      7    8      9
      speed = (SP-28)*10 + (DC-28)/10 (knots, -800 if >= 800)
      course = (DC-28)%10*100 + (SE-28) (degrees, -400 if >= 400)
    status text: optional type byte, altitude "xxx}" (base-91 metres + 10000), telemetry, DAO

The message bits are a table (:data:`drivers.aprs.tables.MIC_E_STANDARD`, ``MIC_E_CUSTOM``).
"""

from __future__ import annotations

import re

from drivers.aprs.extensions import apply_dao, common_extras
from drivers.aprs.fields import ambiguity_resolution, ambiguous_minutes, base91, symbol_table_ok
from drivers.aprs.packets import AprsError, ErrorCode, Format, MicEMessage, PositionReport, Telemetry
from drivers.aprs.tables import MIC_E_CUSTOM, MIC_E_STANDARD

_MICE_DEST_RE = re.compile(r"^[0-9A-LP-Z]{3}[0-9LP-Z]{3}$")
# Mic-E telemetry (APRS 1.01 ch 10): "'" + 2 hex bytes (channels 1 and 3), "`" + 5 hex bytes. FAP
# also takes a UTF-8 left single quote (E2 80 98) for "`", apparently copied from a typeset spec.
_MICE_TLM2_RE = re.compile(r"^'([0-9a-fA-F]{2})([0-9a-fA-F]{2})")
_MICE_TLM5_RE = re.compile(r"^(?:`|\xe2\x80\x98)((?:[0-9a-fA-F]{2}){5})")
_MICE_ALTITUDE_RE = re.compile(r"^(.?)([!-{]{3})\}")


def _mice_digit(ch: str) -> str:
    if ch in "KLZ":
        return " "
    if ch <= "9":
        return ch
    return chr(ord(ch) - (ord("A") if ch <= "J" else ord("P")) + ord("0"))


def mic_e_message(bits: str) -> MicEMessage:
    """The message for bits A B C written "0" / "1" (standard) / "2" (custom)."""
    if "1" in bits and "2" in bits:
        return MicEMessage.UNKNOWN
    if "2" in bits:
        return MIC_E_CUSTOM[bits.replace("2", "1")]
    return MIC_E_STANDARD[bits]


def _mice_latitude(dest: str) -> tuple[float, int]:
    """(latitude without its sign, ambiguity) from the destination's six characters."""
    digits = "".join(_mice_digit(ch) for ch in dest)
    kept = digits.rstrip(" ")
    ambiguity = 6 - len(kept)
    if " " in kept:
        raise AprsError(ErrorCode.MICE_AMB_INV, f"blanked latitude digits not at the end: {dest!r}", "location")
    if ambiguity > 4:
        raise AprsError(ErrorCode.MICE_AMB_LARGE, f"ambiguity {ambiguity} in {dest!r}", "location")
    if int(digits[:2]) > 89 or (kept[2:4].isdigit() and int(kept[2:4]) > 59):
        raise AprsError(ErrorCode.MICE_INV, f"latitude out of range in destination {dest!r}", "location")
    return int(digits[:2]) + ambiguous_minutes(kept[2:], ambiguity) / 60, ambiguity


def _mice_speed_course(sdc: str) -> tuple[float, int | None]:
    """(knots, course in degrees or None for "not known") from the three speed/course bytes."""
    sp, dc, se = (ord(ch) - 28 for ch in sdc)
    if not (0 <= sp <= 99 and 0 <= dc <= 99 and 0 <= se <= 99):
        raise AprsError(ErrorCode.MICE_INV_INFO, f"invalid Mic-E speed/course bytes {sdc!r}", "location")
    knots = sp * 10 + dc // 10
    knots = knots - 800 if knots >= 800 else knots
    cse = dc % 10 * 100 + se
    cse = cse - 400 if cse >= 400 else cse
    return float(knots), cse if 1 <= cse <= 360 else None


def _mice_telemetry(rest: str) -> tuple[Telemetry | None, str]:
    """The telemetry that may open the text after the symbol, and the text after it."""
    if tm := _MICE_TLM5_RE.match(rest):
        raw = bytes.fromhex(tm.group(1))
        return Telemetry(None, tuple(float(b) for b in raw)), rest[tm.end() :]
    if tm := _MICE_TLM2_RE.match(rest):
        # Two channels are channels 1 and 3; channel 2 is not sent.
        return Telemetry(None, (float(int(tm.group(1), 16)), None, float(int(tm.group(2), 16)))), rest[tm.end() :]
    return None, rest


def parse_mic_e(info: str, destination: str, *, accept_broken: bool = False) -> PositionReport:
    dest = destination.split("-")[0]
    if not _MICE_DEST_RE.match(dest):
        raise AprsError(ErrorCode.MICE_INV, f"destination {destination!r} is not a Mic-E latitude", "location")
    if len(info) < 9:
        raise AprsError(ErrorCode.MICE_SHORT, f"Mic-E info needs 9 bytes, got {len(info)}", "location")
    bits = "".join("0" if ch in "0123456789L" else "2" if ch <= "K" else "1" for ch in dest[:3])
    north, plus100, west = dest[3] >= "P", dest[4] >= "P", dest[5] >= "P"
    lat, ambiguity = _mice_latitude(dest)

    d, m, h = (ord(ch) - 28 for ch in info[1:4])
    table, code = info[8], info[7]
    mangled = False
    if not symbol_table_ok(table) and accept_broken and symbol_table_ok(info[7]):
        # One byte of speed/course lost (seen from the ISS digipeater): FAP's "accept_broken_mice".
        table, code, mangled = info[7], info[6], True
    # Valid bytes: degrees 0x26-0x7F, minutes 0x26-0x61, hundredths 0x1C-0x7F (APRS 1.01 ch 10).
    if not 10 <= d <= 99 or not 10 <= m <= 69 or not 0 <= h <= 99:
        raise AprsError(ErrorCode.MICE_INV_INFO, f"invalid Mic-E longitude bytes {info[1:4]!r}", "location")
    if not symbol_table_ok(table):
        raise AprsError(ErrorCode.SYM_INV_TABLE, f"invalid symbol table or overlay {table!r}", "location")
    if plus100:
        d += 100
    if 180 <= d <= 189:
        d -= 80
    elif 190 <= d <= 199:
        d -= 190
    if d > 179:
        raise AprsError(ErrorCode.MICE_INV_INFO, f"longitude degrees {d} out of range", "location")
    m = m - 60 if m >= 60 else m
    lon = d + ambiguous_minutes(f"{m:02d}{h:02d}", ambiguity) / 60
    lat = lat if north else -lat
    lon = -lon if west else lon

    speed, course = (None, None) if mangled else _mice_speed_course(info[4:7])
    telemetry, rest = _mice_telemetry(info[8 if mangled else 9 :])
    altitude_m = None
    if am := _MICE_ALTITUDE_RE.match(rest):
        altitude_m = float(base91(am.group(2)) - 10000)
        rest = am.group(1) + rest[am.end() :]
    extras = common_extras(rest, course=course, speed=speed, altitude_m=altitude_m, telemetry=telemetry)
    lat, lon, resolution = apply_dao(lat, lon, ambiguity_resolution(ambiguity), extras)
    return PositionReport(
        format=Format.MICE,
        lat=lat,
        lon=lon,
        symbol_table=table,
        symbol_code=code,
        resolution_m=resolution,
        ambiguity=ambiguity,
        course=extras.course,
        speed_knots=extras.speed_knots,
        altitude_m=extras.altitude_m,
        comment=extras.comment,
        dao_datum=extras.dao_datum,
        telemetry=extras.telemetry,
        mic_e_bits=bits,
        mic_e_message=mic_e_message(bits),
        mic_e_mangled=mangled,
    )
