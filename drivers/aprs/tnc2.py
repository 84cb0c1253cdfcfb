"""Packets in TNC2 monitor / APRS-IS text form, as an IGate, a TNC's monitor and third-party traffic
write them.

    SRC>DST,DIGI1*,DIGI2,qAR,IGATE:info

Calls here are APRS-IS calls: up to 9 letters, digits and "-"; "*" marks a repeated hop. After a
"qAI" trace construct, APRS-IS servers may add their IPv6 address as 32 hex digits.
"""

from __future__ import annotations

import re

from drivers.aprs.packets import AprsError, ErrorCode, Tnc2Packet

_IS_CALL_RE = re.compile(r"^[A-Za-z0-9-]{1,9}$")
_IS_DIGI_RE = re.compile(r"^[A-Za-z0-9-]{1,9}\*?$")
_IPV6_HOP_RE = re.compile(r"^[0-9A-F]{32}$")


def parse_tnc2(line: bytes) -> Tnc2Packet:
    """Split a TNC2 monitor line into header and info; raises :class:`AprsError` for a bad header."""
    header, sep, info = line.partition(b":")
    if not sep:
        raise AprsError(ErrorCode.PACKET_NO_BODY, "no ':' between header and information field")
    head = header.decode("latin-1")
    source, gt, rest = head.partition(">")
    if not gt or not _IS_CALL_RE.match(source):
        raise AprsError(ErrorCode.SRCCALL_BADCHARS, f"source callsign {source!r}")
    destination, *path = rest.split(",")
    if not _IS_CALL_RE.match(destination):
        raise AprsError(ErrorCode.DSTCALL_BADCHARS, f"destination callsign {destination!r}")
    after_qai = False
    for hop in path:
        if not (_IS_DIGI_RE.match(hop) or (after_qai and _IPV6_HOP_RE.match(hop))):
            raise AprsError(ErrorCode.DIGICALL_BADCHARS, f"digipeater callsign {hop!r}")
        after_qai = after_qai or hop == "qAI"
    return Tnc2Packet(source=source, destination=destination, path=tuple(path), info=info)
