"""Third-party traffic (APRS 1.01 ch 17): another station's packet, with its own header, carried by the
station that gated it (an IGate sending APRS-IS traffic to RF, a digipeater relaying).

    } SRC>DST,PATH:info           the inner packet in TNC2 form (:mod:`drivers.aprs.tnc2`)
"""

from __future__ import annotations

from drivers.aprs.packets import AprsError, ErrorCode, ThirdParty
from drivers.aprs.tnc2 import parse_tnc2


def parse_third_party(info: str) -> ThirdParty:
    try:
        return ThirdParty(parse_tnc2(info[1:].encode("latin-1")))
    except AprsError as exc:
        raise AprsError(ErrorCode.THIRD_PARTY_INV, f"third-party header: {exc}", "third_party") from None
