"""Status reports (APRS 1.01 ch 16): a line of text, with or without the time it was sent.

    > [DDHHMMz] status text
"""

from __future__ import annotations

import re
from datetime import datetime

from drivers.aprs.fields import BLANK, free_text, resolve_timestamp
from drivers.aprs.packets import AprsError, ErrorCode, StatusReport


def parse_status(info: str, now: datetime) -> StatusReport:
    body = info[1:]
    timestamp = None
    if re.match(r"^\d{6}z", body):
        try:
            timestamp = resolve_timestamp(body[:7], now)
        except ValueError as exc:
            raise AprsError(ErrorCode.TIMESTAMP_INV_STA, str(exc), "status") from None
        body = body[7:]
    return StatusReport(text=free_text(body.rstrip(BLANK)), timestamp=timestamp)
