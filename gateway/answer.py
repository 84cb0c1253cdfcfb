"""What the gateway says back to a radio: the signalling burst for an answer, by the unit's protocol.

    mdc:NNNN            MDC-1200 emergency acknowledgement (opcode 0x20) to unit NNNN
    fleetsync:FFF-UUUU  FleetSync emergency acknowledgement, where the protocol defines one

A unit identified by DTMF, 5-tone or APRS has no acknowledgement its radio would understand; asking
for one is an AnswerError that the bridge sees in the incident history as "unsupported".
"""

from __future__ import annotations

from drivers.audio.base import Samples


class AnswerError(ValueError):
    """No answer can be made for this unit."""


def emergency_ack_burst(unit: str, rate: int) -> Samples:
    protocol, _, ident = unit.partition(":")
    if protocol == "mdc":
        from drivers.audio import mdc1200

        try:
            unit_id = int(ident, 16)
        except ValueError:
            raise AnswerError(f"{unit}: an MDC-1200 unit id is 4 hex digits") from None
        return mdc1200.encode(mdc1200.emergency_ack(unit_id), rate=rate)
    raise AnswerError(f"{protocol or unit} radios have no emergency acknowledgement")
