"""KISS: the byte stream between a host and a packet TNC (Dire Wolf, a hardware TNC, a radio's built-in
TNC), and the decoder that turns the AX.25 frames it carries into APRS events.

Sans-I/O: :class:`KissFramer` takes bytes in chunks of any size and hands back whole frames; a serial
or TCP driver (``serial_for_url("socket://host:8001")``) feeds it.

Frame (KISS, Chepponis & Karn 1987, "The KISS TNC: A simple Host-to-TNC communications protocol")::

    FEND | command | data (escaped) ... | FEND

    FEND  0xC0  frame end; starts and ends every frame, repeated FENDs are empty frames
    FESC  0xDB  frame escape: FEND in data is sent FESC TFEND, FESC is sent FESC TFESC
    TFEND 0xDC
    TFESC 0xDD

    command byte:  bit 7..4 = port (0-15, multi-port TNCs)   bit 3..0 = command
                   command 0 = data frame: an AX.25 frame without flags and FCS
                   1-6 = TXDELAY, P, SlotTime, TXtail, FullDuplex, SetHardware (host to TNC only)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

from drivers import aprs, ax25
from drivers.base import Output, ProtocolDecoder, Rejected

FEND = 0xC0
FESC = 0xDB
TFEND = 0xDC
TFESC = 0xDD
CMD_DATA = 0x0
# An AX.25 UI frame is at most 10 addresses + control + PID + 256 info bytes = 328 bytes; escaping
# can double that. Anything much longer is a stream out of step, not a frame.
MAX_FRAME = 1024


@dataclass(frozen=True, slots=True)
class KissFrame:
    port: int  # 0-15
    command: int  # 0 = data
    data: bytes  # unescaped


@dataclass(frozen=True, slots=True)
class KissError:
    reason: str
    raw: bytes  # the bytes between two FENDs, as received


def kiss_encode(frame: bytes, port: int = 0, command: int = CMD_DATA) -> bytes:
    """One KISS frame: FEND, command byte, escaped data, FEND."""
    if not 0 <= port <= 15 or not 0 <= command <= 15:
        raise ValueError(f"KISS port and command are 0-15, got port {port}, command {command}")
    # The command byte is escaped too: port 12, data is 0xC0 = FEND; port 13, command 11 is FESC.
    body = bytes([port << 4 | command]) + frame
    escaped = body.replace(bytes([FESC]), bytes([FESC, TFESC])).replace(bytes([FEND]), bytes([FESC, TFEND]))
    return bytes([FEND]) + escaped + bytes([FEND])


class KissFramer:
    """Split a KISS byte stream into frames; resumable at any byte boundary.

    Bytes seen before the first FEND (joining a stream mid-frame) are reported, not guessed at. A frame
    with a broken escape is reported and dropped: KISS carries no checksum, so a corrupted escape is
    the only sign of corruption there is. (The KISS paper says to carry on assembling; for a gateway a
    dropped frame is better than a wrong one.)
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._max = max_frame
        self._span = bytearray()  # raw bytes since the last FEND
        self._synced = False  # a FEND has been seen
        self._discarding = False  # the current span overflowed: drop it up to the next FEND

    def feed(self, data: bytes) -> list[KissFrame | KissError]:
        out: list[KissFrame | KissError] = []
        pos = 0
        while pos <= len(data):
            end = data.find(FEND, pos)
            self._append(data[pos : len(data) if end == -1 else end], out)
            if end == -1:
                break
            self._close_span(out)
            pos = end + 1
        return out

    def _append(self, piece: bytes, out: list[KissFrame | KissError]) -> None:
        if self._discarding or not piece:
            return
        self._span += piece
        if len(self._span) > self._max:
            # Report at the byte the limit is passed, so any split of the input reports the same.
            out.append(KissError(f"no FEND within {self._max} bytes, dropped up to the next FEND", self._cut()))
            self._discarding = True

    def _cut(self) -> bytes:
        raw = bytes(self._span[: self._max + 1])
        self._span.clear()
        return raw

    def _close_span(self, out: list[KissFrame | KissError]) -> None:
        if self._discarding:
            self._discarding = False
            self._synced = True
            self._span.clear()
            return
        raw = bytes(self._span)
        self._span.clear()
        if not self._synced:
            self._synced = True
            if raw:
                out.append(KissError("bytes before the first FEND", raw))
            return
        if raw:
            out.append(_unescape(raw))


def _unescape(raw: bytes) -> KissFrame | KissError:
    if FESC not in raw:
        data = raw
    else:
        buf = bytearray()
        escaped = False
        for b in raw:
            if escaped:
                if b == TFEND:
                    buf.append(FEND)
                elif b == TFESC:
                    buf.append(FESC)
                else:
                    return KissError(f"FESC followed by 0x{b:02x}, not TFEND or TFESC", raw)
                escaped = False
            elif b == FESC:
                escaped = True
            else:
                buf.append(b)
        if escaped:
            return KissError("frame ends inside an escape (FESC before FEND)", raw)
        data = bytes(buf)
    return KissFrame(port=data[0] >> 4, command=data[0] & 0x0F, data=data[1:])


def _is_port_list(ports: object) -> bool:
    if not isinstance(ports, list | tuple):
        return False
    return all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 15 for p in ports)


class KissAprsDecoder(ProtocolDecoder):
    """KISS byte stream -> AX.25 UI frames -> APRS packets -> gateway events.

    Options: ``ports`` = the KISS ports to listen to (default: all). Events carry the port in
    ``detail["kiss_port"]``. Frames that are not APRS come out as :class:`Rejected` with the reason.
    """

    name: ClassVar[str] = "kiss"

    def __init__(self, *, ports: Sequence[int] | None = None, **options: Any) -> None:
        super().__init__(**options)
        if ports is not None and not _is_port_list(ports):
            raise ValueError(f"protocol 'kiss': option ports must be a list of KISS ports 0-15, got {ports!r}")
        self._ports = frozenset(ports) if ports is not None else None
        self._framer = KissFramer()

    def feed(self, data: bytes, now: datetime) -> list[Output]:
        out: list[Output] = []
        for item in self._framer.feed(data):
            if isinstance(item, KissError):
                out.append(Rejected(self.name, item.reason, item.raw))
            elif self._ports is None or item.port in self._ports:
                result = self._frame(item, now)
                if result is not None:
                    out.append(result)
        return out

    def _frame(self, item: KissFrame, now: datetime) -> Output | None:
        if item.command != CMD_DATA:
            return Rejected(self.name, f"port {item.port}: command {item.command} is not a data frame", item.data)
        result = frame_to_output(item.data, now, self.name, context=f"port {item.port}: ")
        if isinstance(result, Rejected) or result is None:
            return result
        return replace(result, detail={**result.detail, "kiss_port": item.port})


def frame_to_output(data: bytes, now: datetime, protocol: str, context: str = "") -> Output | None:
    """One AX.25 frame (no flags, no FCS) -> the APRS event it carries, :class:`Rejected` with the reason
    (prefixed by ``context``) if it is not APRS, or None for valid APRS that is no event here.

    Shared by every path a frame arrives on (a KISS TNC, the AFSK1200 audio decoder), so that APRS is
    turned into events in one place.
    """

    def rejected(reason: str) -> Rejected:
        return Rejected(protocol, f"{context}{reason}", data)

    try:
        frame = ax25.parse_frame(data)
    except ax25.Ax25Error as exc:
        return rejected(f"AX.25 {exc}")
    if frame.pid != ax25.PID_NO_LAYER3:
        return rejected(f"AX.25 PID 0x{frame.pid:02x} is not APRS (0xf0)")
    try:
        packet = aprs.parse(frame.info, source=str(frame.source), destination=str(frame.destination), now=now)
    except aprs.AprsError as exc:
        return rejected(f"APRS {exc} in {frame.tnc2()}")
    return aprs.aprs_to_decoded(frame, packet, now)  # None: valid APRS that is no event (object, telemetry)
