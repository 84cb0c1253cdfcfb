"""Telemetry (APRS 1.01 ch 13): five analog and eight digital channels, and the metadata that names,
scales and labels them.

    T#sss,a1,a2,a3,a4,a5,bbbbbbbb[comment]     values relaxed to any decimal, as APRS 1.2 and
                                               current trackers send

Metadata comes as a message from the station to itself (:mod:`drivers.aprs.messages`)::

    :STATION  :PARM.name,name,...       A1-A5 then B1-B8 channel names
    :STATION  :UNIT.unit,unit,...       the same channels' units or labels
    :STATION  :EQNS.a,b,c,a,b,c,...     value = a*v^2 + b*v + c for A1-A5
    :STATION  :BITS.bbbbbbbb,title      the sense of B1-B8 (1 = on is 1) and the project title

Telemetry in a position comment (base-91, APRS 1.2) and in Mic-E is read with those formats.
"""

from __future__ import annotations

import re

from drivers.aprs.fields import BLANK, comment_text
from drivers.aprs.packets import AprsError, ErrorCode, Telemetry, TelemetryMetadata, TelemetryReport

_TLM_VALUE_RE = re.compile(r"-?(\d+\.?\d*|\.\d+)")


def parse_telemetry(info: str) -> TelemetryReport:
    m = re.match(r"^T#(\d{1,3}|MIC),?(.*)$", info, re.DOTALL)
    if m is None:
        raise AprsError(ErrorCode.TLM_INV, f"invalid telemetry {info[:12]!r}", "telemetry")
    sequence = None if m.group(1) == "MIC" else int(m.group(1))
    fields = m.group(2).split(",")
    values: list[float | None] = []
    for raw in fields[:5]:
        raw = raw.strip(" ")
        if raw == "":
            values.append(None)
        elif _TLM_VALUE_RE.fullmatch(raw) and not raw.endswith("."):
            values.append(float(raw))
        elif raw[:1].isdigit() or raw[:1] in "-.":
            raise AprsError(ErrorCode.TLM_INV, f"invalid telemetry value {raw!r}", "telemetry")
        else:
            break
    values += [None] * (5 - len(values))
    bits = comment = None
    if len(fields) > 5 and (b := re.match(r"^([01]{8})(.*)$", ",".join(fields[5:]), re.DOTALL)):
        bits, comment = b.group(1), comment_text(b.group(2))
    return TelemetryReport(Telemetry(sequence, tuple(values), bits), comment)


def telemetry_metadata(station: str, text: str) -> TelemetryMetadata | None:
    """PARM, UNIT, EQNS or BITS metadata in the text of a message to ``station``; None for other text."""
    m = re.match(r"^(PARM|UNIT|EQNS|BITS)\.(.*)$", text, re.DOTALL)
    if m is None:
        return None
    kind, body = m.group(1), m.group(2).rstrip(BLANK)
    if kind in ("PARM", "UNIT"):
        return TelemetryMetadata(station, kind, names=tuple(n.strip(" ") for n in body.split(",")))
    if kind == "EQNS":
        numbers = [n.strip(" ") for n in body.split(",")]
        return TelemetryMetadata(
            station, kind, coefficients=tuple(float(n) if _TLM_VALUE_RE.fullmatch(n) else None for n in numbers)
        )
    bits, _, project = body.partition(",")
    return TelemetryMetadata(station, kind, bits=bits.strip(" "), project=project.strip(" ") or None)
