"""KISS: the byte stream between a host and a packet TNC (Dire Wolf, a hardware TNC, a radio's built-in
TNC), and the decoder that turns the AX.25 frames it carries into events (APRS, NET/ROM, others).

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

from drivers import aprs, ax25, netrom
from drivers.base import Output, ProtocolDecoder, Rejected
from gateway.events import Decoded, Kind

FEND = 0xC0
FESC = 0xDB
TFEND = 0xDC
TFESC = 0xDD
CMD_DATA = 0x0
# The KISS paper's host-to-TNC commands: a TNC never sends them, a host's own log may hold them.
_COMMANDS = {1: "TXDELAY", 2: "P", 3: "SlotTime", 4: "TXtail", 5: "FullDuplex", 6: "SetHardware", 15: "Return"}
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
    ``detail["kiss_port"]``. Every UI frame is an event (:func:`frame_to_output`); what is no frame
    (a broken escape, bytes that are no AX.25, a command frame) or a connected-mode frame comes out as
    :class:`Rejected` with the reason.
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
                out.append(self._frame(item, now))
        return out

    def _frame(self, item: KissFrame, now: datetime) -> Output:
        if item.command != CMD_DATA:
            name = _COMMANDS.get(item.command, "unknown")
            return Rejected(
                self.name, f"port {item.port}: command {item.command} ({name}) is not a data frame", item.data
            )
        result = frame_to_output(item.data, now, self.name, context=f"port {item.port}: ")
        if isinstance(result, Rejected):
            return result
        return replace(result, detail={**result.detail, "kiss_port": item.port})


def frame_to_output(data: bytes, now: datetime, protocol: str, context: str = "") -> Output:
    """One AX.25 frame (no flags, no FCS) -> its event, or :class:`Rejected` with the reason (prefixed by
    ``context``).

    Every UI frame is an event: it is a broadcast to whoever listens (AX.25 2.2 section 4.3.3.6). With
    PID 0xF0 it is APRS (:func:`drivers.aprs.frame_event`); a NET/ROM routing broadcast names the nodes
    of a packet network and their routes; any other layer 3 protocol is a status with its PID and the
    info as text. Connected-mode frames (I, S and the other U frames) are the link between two
    stations, numbered and acknowledged inside that connection (AX.25 2.2 sections 4.3.1, 4.3.2, 6):
    no broadcast, no event; they come back rejected with their type, so a monitor still shows them.

    Shared by every path a frame arrives on (a KISS TNC, the AFSK1200 audio decoder), so that frames
    are turned into events in one place.
    """

    def rejected(reason: str) -> Rejected:
        return Rejected(protocol, f"{context}{reason}", data)

    try:
        frame = ax25.parse_frame(data)
    except ax25.Ax25Error as exc:
        return rejected(f"AX.25 {exc}")
    if frame.kind != "UI":
        fields = " ".join(f"{k}={v}" for k, v in ax25.control_fields(frame.control).items())
        pid = f", PID 0x{frame.pid:02x}" if frame.pid is not None else ""
        return rejected(
            f"AX.25 {frame.kind} frame {frame.header()} (control 0x{frame.control:02x}: {fields}{pid}): "
            "connected-mode traffic between two stations, not a broadcast; no event"
        )
    if frame.pid == ax25.PID_NO_LAYER3:
        return aprs.frame_event(frame, now)
    return _other_ui_event(frame, now)


def _other_ui_event(frame: ax25.Ax25Frame, now: datetime) -> Decoded:
    """A UI frame of another layer 3 protocol: a NET/ROM routing broadcast read, anything else as text."""
    assert frame.pid is not None  # a UI frame has one
    detail: dict[str, Any] = {
        "protocol": "ax25",
        "type": "ui",
        "pid": frame.pid,
        "pid_name": ax25.PID_NAMES.get(frame.pid, "unknown"),
        "destination": str(frame.destination),
        "path": frame.path(),
        "raw": frame.tnc2(),
        "text": ax25.display_text(frame.info),
    }
    if frame.irregular:
        detail["irregular"] = list(frame.irregular)
    if frame.pid == ax25.PID_NETROM and frame.info[:1] == bytes([netrom.NODES_SIGNATURE]):
        try:
            nodes = netrom.parse_nodes(frame.info)
        except netrom.NetRomError as exc:
            detail["error"] = f"NET/ROM routing broadcast: {exc}"
        else:
            routes = [
                {"callsign": str(r.destination), "mnemonic": r.mnemonic, "neighbour": str(r.neighbour),
                 "quality": r.quality}
                for r in nodes.routes
            ]
            detail.update(protocol="netrom", type="nodes", mnemonic=nodes.mnemonic, routes=routes,
                          text=f"{nodes.mnemonic}: {len(routes)} route{'' if len(routes) == 1 else 's'}")
    return Decoded(kind=Kind.STATUS, time=now, unit=aprs.unit_of(str(frame.source)), detail=detail)
