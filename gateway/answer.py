"""What the gateway says back to a radio: the signalling burst for an answer, by the unit's protocol.

    mdc:NNNN            MDC-1200 emergency acknowledgement (opcode 0x20) to unit NNNN
    fleetsync:FFF-UUUU  FleetSync acknowledge addressed to that fleet and unit, in the coding (I or II)
                        and at the bit rate the unit's emergency came in (``signalling``), else FleetSync I
                        at 1200 bps; sent from fleet/unit 0 (the fixed station has no id of its own here)

A unit identified by DTMF, 5-tone or APRS has no acknowledgement its radio would understand; asking
for one is an AnswerError that the bridge sees in the incident history as "unsupported".

Remote monitor (:func:`remote_monitor_burst`): an MDC-1200 packet of opcode 0x11, argument 0x8A, to the
unit, which keys its microphone for the time programmed into it and sends no MDC-1200 answer (the
opcode list of KA6SQG as quoted in uv-k5-firmware-custom's app/mdc1200.h: "REMOTE MONITOR ... 118A
5678", and drivers/audio/mdc1200.py's table). Other protocols have none here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drivers.audio.base import Samples


class AnswerError(ValueError):
    """No answer can be made for this unit."""


REMOTE_MONITOR_OP, REMOTE_MONITOR_ARG = 0x11, 0x8A


def _mdc_id(unit: str) -> int:
    ident = unit.partition(":")[2]
    if not re.fullmatch(r"[0-9A-Fa-f]{1,4}", ident):
        raise AnswerError(f"{unit}: an MDC-1200 unit id is 4 hex digits")
    return int(ident, 16)


def remote_monitor_burst(unit: str, rate: int) -> Samples:
    """The MDC-1200 remote-monitor packet to ``unit`` (``mdc:NNNN``): its radio transmits what its
    microphone hears for the time programmed into it."""
    if not unit.startswith("mdc:"):
        raise AnswerError(f"{unit.partition(':')[0] or unit} radios have no remote monitor here (MDC-1200 only)")
    from drivers.audio import mdc1200

    return mdc1200.encode(mdc1200.Mdc1200Packet(REMOTE_MONITOR_OP, REMOTE_MONITOR_ARG, _mdc_id(unit)), rate=rate)


def emergency_ack_burst(unit: str, rate: int, signalling: Mapping[str, Any] | None = None) -> Samples:
    protocol, _, ident = unit.partition(":")
    if protocol == "mdc":
        from drivers.audio import mdc1200

        return mdc1200.encode(mdc1200.emergency_ack(_mdc_id(unit)), rate=rate)
    if protocol == "fleetsync":
        from drivers.audio import fleetsync

        m = re.fullmatch(r"(\d{3})-(\d{4})", ident, re.ASCII)
        if m is None:
            raise AnswerError(f"{unit}: a FleetSync unit is FFF-UUUU")
        heard = signalling or {}
        version: int = heard["version"] if heard.get("version") in (1, 2) else 1
        baud: int | None = heard["baud"] if heard.get("baud") in (1200, 2400) else None
        try:
            message = fleetsync.emergency_ack(int(m[1]), int(m[2]))
        except ValueError as exc:
            raise AnswerError(f"{unit}: {exc}") from None
        return fleetsync.encode(message, rate=rate, version=version, baud=baud)
    raise AnswerError(f"{protocol or unit} radios have no emergency acknowledgement")
