r"""APRS messaging (APRS 1.01 chapter 14): messages this station sends, retried until the addressee
acknowledges them, and the acknowledgements it owes for messages sent to it. Sans-I/O: it makes AX.25
UI frames (a KISS driver sends them) and reads the events the APRS decoder makes of what is heard;
time comes in as ``now`` (seconds of a monotonic clock), never from a clock of its own.

Info fields (APRS 1.01 ch 14; the addressee is 9 characters, padded with spaces)::

    : B G 5 A B C - 9 ␠ : text (at most 67 characters, no | ~ {) { N N N N N     a message; {id: ack wanted
    : B G 5 Z Z Z - 1 0 : a c k N N N N N                                       its acknowledgement
    : B G 5 Z Z Z - 1 0 : r e j N N N N N                                       its rejection

    message id: 1-5 letters or digits, chosen by the sender, sent back verbatim in ack/rej.

Retries: the standard leaves the schedule to the sender ("until an ack is received or a retry counter
expires"). Here a message is sent once per entry of ``retry_s``, each time waiting that long for its
ack; the default (15, 30, 60, 120 s) doubles the wait as APRSdos' decaying algorithm does and gives up
after four tries, 3.75 minutes. An ack that comes after a retry was sent still counts. A reply that
carries the id in APRS 1.1's reply-ack form (``text{MM}AA``, aprs.org/aprs11/replyacks.txt) counts as
the ack of message AA. The addressee's answer, a message of its own to this station, is acknowledged
at once, every copy of it, as chapter 14 asks of a receiver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers import ax25

MAX_TEXT = 67  # APRS 1.01 ch 14: "the message text may be up to 67 characters long"
FORBIDDEN = "|~{"  # ch 14: the text may not contain | ~ or { (the last starts the message id)
ADDRESSEE_WIDTH = 9
DEFAULT_RETRY_S: tuple[float, ...] = (15.0, 30.0, 60.0, 120.0)
# The destination of what this station sends: APZ is the experimental block of the APRS tocall list
# (APRS 1.01 ch 4, "Generic APRS Destination Callsigns"; the tocall registry keeps APZ for software
# without an allocation of its own).
TOCALL = "APZPTB"
_CALLSIGN = re.compile(r"[A-Z0-9]{1,6}(-(1[0-5]|[1-9]))?")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9]{1,5}", re.ASCII)


class MessagingError(ValueError):
    """A message that cannot be sent as asked (callsign, text); the text says what is wrong."""


def _callsign(call: str, what: str) -> str:
    up = call.strip().upper()
    if not _CALLSIGN.fullmatch(up):
        raise MessagingError(f"{what}: {call!r} is no AX.25 callsign (1-6 letters or digits, SSID 1-15)")
    return up


def message_info(addressee: str, text: str, message_id: str | None = None) -> bytes:
    """The info field of a message; raises MessagingError for text APRS cannot carry."""
    if len(text) > MAX_TEXT:
        raise MessagingError(f"text: {len(text)} characters, an APRS message holds at most {MAX_TEXT}")
    bad = sorted({c for c in text if c in FORBIDDEN or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        raise MessagingError(f"text: an APRS message cannot carry {''.join(bad)!r}")
    if message_id is not None and not _MESSAGE_ID.fullmatch(message_id):
        raise MessagingError(f"message id {message_id!r}: 1-5 letters or digits")
    tail = f"{{{message_id}" if message_id is not None else ""
    return f":{addressee.ljust(ADDRESSEE_WIDTH)}:{text}{tail}".encode()


def ack_info(addressee: str, message_id: str, *, reject: bool = False) -> bytes:
    return f":{addressee.ljust(ADDRESSEE_WIDTH)}:{'rej' if reject else 'ack'}{message_id}".encode("ascii")


Result = Literal["acked", "rejected", "no_ack"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a message: acknowledged, rejected, or never acknowledged after every try."""

    message_id: str
    addressee: str
    result: Result
    tries: int


# The detail keys of a heard message that settle one of ours (drivers/aprs.py's message detail).
_SETTLING: tuple[tuple[str, Result], ...] = (("ack", "acked"), ("rej", "rejected"), ("reply_ack", "acked"))


@dataclass
class _Pending:
    addressee: str
    frame: bytes
    tries: int
    due: float  # when the current try's wait ends


@dataclass
class Heard:
    """What a heard packet means here: frames to send (our acks) and messages it settled."""

    frames: list[bytes] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


class Messenger:
    """The messaging of one station (``callsign``) on one TNC.

    ``send`` gives the frame to transmit now and the message id; ``due(now)`` the frames to transmit
    again and the messages given up; ``heard(source, detail)`` settles messages by their acks and
    returns the acks this station owes. ``next_due`` says when ``due`` has something to do.
    """

    def __init__(self, callsign: str, *, path: Sequence[str] = ("WIDE1-1",),
                 retry_s: Sequence[float] = DEFAULT_RETRY_S, first_id: int = 1) -> None:
        self.callsign = _callsign(callsign, "callsign")
        self.path = tuple(path)
        if not retry_s or any(not s > 0 for s in retry_s):
            raise MessagingError(f"retry_s: one positive wait per try, got {list(retry_s)!r}")
        self.retry_s = tuple(float(s) for s in retry_s)
        self._next_id = first_id
        self._pending: dict[str, _Pending] = {}

    def _frame(self, info: bytes) -> bytes:
        return ax25.encode_ui(self.callsign, TOCALL, info, self.path)

    def send(self, addressee: str, text: str, now: float) -> tuple[str, bytes]:
        """A new message to ``addressee``: its id and the frame to transmit now."""
        to = _callsign(addressee, "addressee")
        for _ in range(100_000):  # an id still waiting for its ack is not given out again
            message_id = str(self._next_id)
            self._next_id = self._next_id % 99_999 + 1
            if message_id not in self._pending:
                break
        frame = self._frame(message_info(to, text, message_id))
        self._pending[message_id] = _Pending(to, frame, 1, now + self.retry_s[0])
        return message_id, frame

    def pending(self, message_id: str) -> bool:
        return message_id in self._pending

    def forget(self, message_id: str) -> None:
        """Stop trying ``message_id`` (it could not be sent, or nobody waits for it any more)."""
        self._pending.pop(message_id, None)

    @property
    def waiting(self) -> int:
        """Messages sent and not yet settled."""
        return len(self._pending)

    @property
    def next_due(self) -> float | None:
        return min((p.due for p in self._pending.values()), default=None)

    def due(self, now: float) -> tuple[list[bytes], list[Outcome]]:
        frames: list[bytes] = []
        outcomes: list[Outcome] = []
        for message_id, p in list(self._pending.items()):
            if now < p.due:
                continue
            if p.tries >= len(self.retry_s):
                del self._pending[message_id]
                outcomes.append(Outcome(message_id, p.addressee, "no_ack", p.tries))
                continue
            p.tries += 1
            p.due = now + self.retry_s[p.tries - 1]
            frames.append(p.frame)
        return frames, outcomes

    def heard(self, source: str, detail: Mapping[str, Any]) -> Heard:
        """An APRS event's ``detail`` from ``source`` (its callsign): an ack, a rej, a reply-ack of one of
        our messages settles it; a message to us with an id is acknowledged."""
        out = Heard()
        if detail.get("type") != "message" or str(detail.get("addressee", "")).upper() != self.callsign:
            return out
        sender = source.strip().upper()
        for key, result in _SETTLING:
            message_id = detail.get(key)
            p = self._pending.get(message_id) if isinstance(message_id, str) else None
            if p is None or p.addressee != sender:
                continue
            del self._pending[str(message_id)]
            out.outcomes.append(Outcome(str(message_id), p.addressee, result, p.tries))
        their_id = detail.get("message_id")
        if detail.get("text") is not None and isinstance(their_id, str) and _MESSAGE_ID.fullmatch(their_id) \
                and _CALLSIGN.fullmatch(sender):
            out.frames.append(self._frame(ack_info(sender, their_id)))
        return out
