"""Objects and items (APRS 1.01 ch 11): the position of something other than the sender (an incident, a
checkpoint, a vehicle tracked by a dispatcher), by name.

    ; name(9) *|_ DDHHMMz|DDHHMM/|HHMMSSh  position (uncompressed or compressed)  comment
    ) name(3-9) !|_                        position                               comment
    "*" / "!" = alive, "_" = killed.
"""

from __future__ import annotations

import re
from datetime import datetime

from drivers.aprs.fields import free_text, resolve_timestamp
from drivers.aprs.packets import AprsError, ErrorCode, ObjectReport
from drivers.aprs.position import position_body


def parse_object(info: str, now: datetime) -> ObjectReport:
    if len(info) < 31:
        raise AprsError(ErrorCode.OBJ_SHORT, f"object needs 31 bytes, got {len(info)}", "object")
    m = re.match(r"^;([\x20-\x7e]{9})([*_])(\d{6}[zh/])", info)
    if m is None:
        raise AprsError(ErrorCode.OBJ_INV, f"invalid object {info[:18]!r}", "object")
    try:
        timestamp = resolve_timestamp(m.group(3), now)
    except ValueError as exc:
        raise AprsError(ErrorCode.TIMESTAMP_INV_OBJ, str(exc), "object") from None
    try:
        report = position_body(info[18:], messaging=None, timestamp=timestamp)
    except AprsError as exc:
        raise AprsError(exc.code, str(exc), "object") from None
    return ObjectReport(name=free_text(m.group(1)), alive=m.group(2) == "*", item=False, report=report)


def parse_item(info: str) -> ObjectReport:
    m = re.match(r"^\)([\x20\x22-\x5e\x60-\x7e]{3,9})([!_])", info)
    if m is None:
        code = ErrorCode.ITEM_SHORT if len(info) < 18 else ErrorCode.ITEM_INV
        raise AprsError(code, f"invalid item {info[:12]!r}", "item")
    try:
        report = position_body(info[m.end() :], messaging=None, timestamp=None)
    except AprsError as exc:
        raise AprsError(exc.code, str(exc), "item") from None
    return ObjectReport(name=free_text(m.group(1)), alive=m.group(2) == "!", item=True, report=report)


def object_header(text: str) -> tuple[str, bool] | None:
    """The name and the alive flag of an object or item whose position could not be read."""
    m = re.match(r"^;([\x20-\x7e]{9})([*_])", text) or re.match(r"^\)([\x20\x22-\x5e\x60-\x7e]{3,9})([!_])", text)
    if m is None:
        return None
    return free_text(m.group(1)), m.group(2) in "*!"
