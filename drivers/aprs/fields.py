r"""What every APRS family reads the same way: text, base-91 numbers, symbol tables, ambiguous minutes
and timestamps.

Bytes and text: an info field is bytes. The parsers work on it decoded as Latin-1, one character per
byte, so every offset in this package is a byte offset and no byte is lost. Free text (comments,
status, messages) is handed out decoded as UTF-8 when the bytes are valid UTF-8 (APRS 1.2 allows it)
and as Latin-1 otherwise.

Timestamps (APRS 1.01 ch 6)::

    DDHHMMz   day, hour, minute, zulu
    DDHHMM/   day, hour, minute, local time
    HHMMSSh   hour, minute, second, zulu

The month (or for HMS the day) is not sent. A report tells of the past, so take the latest candidate
that is not further ahead of the receiver's clock than plausible skew: a day for DHM (a sender mixing
up its time zone), an hour for HMS.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

from drivers.aprs.packets import Timestamp

# APRS 1.01 ch 8: an uncompressed position is given to 0.01 minute of arc, 18.52 m of latitude.
HUNDREDTH_MINUTE_M = 18.52


def free_text(working: str) -> str:
    """Free text out of the Latin-1 working form: UTF-8 when the bytes are UTF-8, else Latin-1."""
    raw = working.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return working


def text_of(raw: bytes) -> str:
    """How the APRS parsers turn bytes into text, for callers comparing with it."""
    return free_text(raw.decode("latin-1"))


BLANK = " \t\r\n\f\v"  # not str.strip(): Python also strips 0x1C-0x1F, which Mic-E uses as data


def comment_text(working: str) -> str | None:
    stripped = working.strip(BLANK)
    return free_text(stripped) if stripped else None


def base91(chars: str) -> int:
    value = 0
    for c in chars:
        value = value * 91 + ord(c) - 33
    return value


def symbol_table_ok(table: str, compressed: bool = False) -> bool:
    # APRS 1.01 ch 5/20: primary "/", alternate "\", or an overlay: digit or upper-case letter;
    # compressed positions write overlay digits as "a"-"j" (ch 9).
    if table in "/\\":
        return True
    if not table.isascii():
        return False
    return table.isupper() or table.isdigit() or (compressed and "a" <= table <= "j")


def ambiguous_minutes(mmhh: str, ambiguity: int) -> float:
    """Minutes from the digits MMhh, keeping the first 4-ambiguity and taking the middle of the box."""
    if ambiguity >= 4:
        return 30.0
    kept = mmhh[: 4 - ambiguity]
    hundredths = int(kept) * 10**ambiguity if kept else 0
    half_box = 5 * 10 ** (ambiguity - 1) if ambiguity else 0
    return (hundredths + half_box) / 100


def ambiguity_resolution(ambiguity: int) -> float:
    # APRS 1.01 ch 6: each blanked digit widens the box tenfold; all four blanked leave whole degrees.
    return 111120.0 if ambiguity >= 4 else HUNDREDTH_MINUTE_M * 10**ambiguity


def resolve_timestamp(raw: str, now: datetime) -> Timestamp:
    now = now.astimezone(UTC)
    a, b, c, kind = int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), raw[6]
    candidates: list[datetime] = []
    if kind == "h":
        if a > 23 or b > 59 or c > 59:
            raise ValueError(f"no such time {raw}")
        base = now.replace(hour=a, minute=b, second=c, microsecond=0)
        candidates = [base + timedelta(days=d) for d in (-1, 0, 1)]
        latest = now + timedelta(hours=1)
    else:
        if not 1 <= a <= 31 or b > 23 or c > 59:
            raise ValueError(f"no such day and time {raw}")
        for months in (-2, -1, 0, 1):
            year, month = divmod(now.year * 12 + now.month - 1 + months, 12)
            if a <= calendar.monthrange(year, month + 1)[1]:
                candidates.append(datetime(year, month + 1, a, b, c, tzinfo=UTC))
        latest = now + timedelta(days=1)
    plausible = [t for t in candidates if t <= latest]
    if not plausible:
        raise ValueError(f"{raw} names no time near {now:%Y-%m-%d}")
    return Timestamp(raw=raw, time=max(plausible), local=kind == "/")


TIMESTAMP_RE = re.compile(r"^\d{6}[zh/]")
