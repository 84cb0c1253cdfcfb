"""Messages (APRS 1.01 ch 14): text to one station, bulletins and announcements, acks and rejects.

    : addressee(9, space padded) : text {id           id: 1-5 alphanumerics
    : addressee                  : ackid | rejid
    : addressee                  : text {id}replyack  APRS 1.1 reply-ack

A message whose text starts ``PARM.``, ``UNIT.``, ``EQNS.`` or ``BITS.`` is telemetry metadata
(:func:`drivers.aprs.telemetry.telemetry_metadata`).
"""

from __future__ import annotations

import re

from drivers.aprs.fields import BLANK, free_text
from drivers.aprs.packets import AprsError, ErrorCode, Message, TelemetryMetadata
from drivers.aprs.telemetry import telemetry_metadata

_MESSAGE_RE = re.compile(r"^:([A-Za-z0-9_ -]{9}):(.*)$", re.DOTALL)
_ACK_RE = re.compile(r"^(ack|rej)([A-Za-z0-9]{1,5})(?:\}[A-Za-z0-9]{0,5})?[" + BLANK + r"]*$")
_MESSAGE_ID_RE = re.compile(r"^([^{]*)\{([A-Za-z0-9]{1,5})(?:\}([A-Za-z0-9]{0,5}))?[" + BLANK + r"]*$", re.DOTALL)


def parse_message(info: str) -> Message | TelemetryMetadata:
    """A message, or the telemetry metadata a station sends as a message to itself (ch 13)."""
    message = _message(info)
    if message.text is not None and (metadata := telemetry_metadata(message.addressee, message.text)):
        return metadata
    return message


def _message(info: str) -> Message:
    m = _MESSAGE_RE.match(info)
    if m is None:
        raise AprsError(ErrorCode.MSG_INV, f"invalid message {info[:12]!r}", "message")
    addressee, body = m.group(1).rstrip(" "), m.group(2)
    if a := _ACK_RE.match(body):
        if a.group(1) == "ack":
            return Message(addressee=addressee, text=None, ack_id=a.group(2))
        return Message(addressee=addressee, text=None, rej_id=a.group(2))
    if i := _MESSAGE_ID_RE.match(body):
        return Message(addressee=addressee, text=free_text(i.group(1)), message_id=i.group(2), reply_ack=i.group(3))
    return Message(addressee=addressee, text=free_text(body))
