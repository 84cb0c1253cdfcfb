"""The smaller data types: queries and station capabilities (APRS 1.01 ch 15), user-defined data (ch 18)
and DX cluster spots. Types APRS names without fields (test data, DF reports, ...) are
:data:`drivers.aprs.tables.OTHER_TYPES`, read by the dispatch as they are.

    ?APRS? [lat,long,radius]      general query; also ?IGATE?, ?WX?      APRS 1.01 ch 15
    <IGATE,MSG_CNT=n,LOC_CNT=n    station capabilities                   APRS 1.01 ch 15
    { U P data                    user id, user packet type, data        APRS 1.01 ch 18
    DX de SPOTTER: freq DXCALL comment                                   DX cluster spots
"""

from __future__ import annotations

import re

from drivers.aprs.fields import BLANK, free_text
from drivers.aprs.packets import AprsError, Capabilities, DxSpot, ErrorCode, Query, UserDefined

_FOOTPRINT_RE = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?),\s*(-?\d{1,3}(?:\.\d+)?),\s*(\d{1,4})")


def parse_query(info: str) -> Query:
    m = re.match(r"^\?([A-Za-z]+)\?(.*)$", info, re.DOTALL)
    if m is None:
        return Query(None, free_text(info[1:].rstrip(BLANK)))
    footprint = None
    if (f := _FOOTPRINT_RE.match(m.group(2))) and abs(float(f.group(1))) <= 90 and abs(float(f.group(2))) <= 180:
        footprint = (float(f.group(1)), float(f.group(2)), int(f.group(3)))
    return Query(m.group(1).upper(), free_text(info[1:].rstrip(BLANK)), footprint)


def parse_capabilities(info: str) -> Capabilities:
    body = info[1:].rstrip(BLANK)
    tokens = []
    for token in body.split(","):
        key, sep, value = token.strip(" ").partition("=")
        if key:
            tokens.append((free_text(key), free_text(value) if sep else None))
    return Capabilities(tuple(tokens), free_text(body))


def parse_user_defined(info: str) -> UserDefined:
    if info.startswith("{{"):
        raise AprsError(ErrorCode.EXP_UNSUPPORTED, "experimental packet format '{{'")
    if len(info) < 3:
        raise AprsError(ErrorCode.TYPE_NOT_SUPPORTED, f"user-defined data needs a user id and a type: {info!r}")
    return UserDefined(free_text(info[1]), free_text(info[2]), free_text(info[3:].rstrip(BLANK)))


_DX_RE = re.compile(r"^DX\s+de\s+(.*?)\s*[:>]\s*(.*)$", re.IGNORECASE | re.DOTALL)


def parse_dx_spot(info: str) -> DxSpot | None:
    m = _DX_RE.match(info)
    if m is None:
        return None
    spotter, text = free_text(m.group(1)), free_text(m.group(2).rstrip(BLANK))
    if f := re.match(r"^(\d+(?:\.\d+)?)\s+(\S+)", text):
        return DxSpot(spotter, text, float(f.group(1)), f.group(2))
    return DxSpot(spotter, text)
