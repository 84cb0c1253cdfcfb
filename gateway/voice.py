"""Live voice on the wire: the frames, the Opus codec, and the lease and floor messages (format v1).

A leaf module like :mod:`gateway.events` (which is all it imports of ours): the gateway (which streams
a channel's receive audio and plays dispatchers' audio into the radio) and the console (which plays the
one and captures the other) both import it, and nothing else couples them. PyAV (libopus) is imported
only when a codec is made, so parsing and checking frames needs nothing but the standard library.

Audio is Opus at 48 kHz (Opus's own rate), mono, 20 ms a frame (960 samples), one frame per MQTT
message, QoS 0: a late frame is worth nothing, so nothing is re-sent; the receiver orders, conceals and
plays. A voice frame (all integers big-endian)::

     0       2       3       4       5               9               13              17
    +-------+-------+-------+-------+---------------+---------------+---------------+--------+----------+
    | "PV"  |version| flags | ulen  |   stream id   |   sequence    |   timestamp   |  unit  |   Opus   |
    | magic |  = 1  |       | 0..64 |    32 bits    |    32 bits    | 48 kHz, 32 b  | ulen B | 1..1500 B|
    +-------+-------+-------+-------+---------------+---------------+---------------+--------+----------+

- ``flags``: bit 0 START, the first frame of a talk spurt (a receiver may set its playout delay anew);
  bit 1 END, the last one (the radio fell quiet; the dispatcher let go of the key: the gateway ends the
  transmission at once instead of waiting for the silence time-out). Bits 2-7 are reserved and must be 0.
- ``stream id``: one source of audio: a channel's receive audio from its gateway (new at every start), a
  dispatcher's transmission (the id the gateway handed out with the floor: frames of any other stream
  on ``tx`` are refused, so that only the floor holder's audio keys the radio).
- ``sequence``: +1 a frame, wrapping at 2**32 (compared in serial-number arithmetic, RFC 1982);
  ``timestamp``: the first sample's, +960 a 20 ms frame, wrapping likewise (as RTP's, RFC 3550).
- ``unit``: the radio unit talking, when a decoder identified it in the transmission (its PTT ID), as
  the event schema spells units (``mdc:1234``); empty when nobody is known.
- The Opus packet must be one (RFC 6716 section 3: TOC byte, frame count and lengths consistent), mono,
  and 20, 40 or 60 ms long. A TOC byte alone (a frame of 0 bytes) is allowed: the decoder conceals it.

Anything else is refused with :class:`VoiceError`, which says why and shows the bytes in hex: a frame
that is not one (no magic, another version, reserved flags, a unit that is no unit, cut short), a
packet that is not Opus, and, from :class:`StreamTracker`, a sequence or timestamp out of range of the
stream, a duplicate, or another stream than the one expected. Nothing else is ever raised by parsing.

Topics (under the prefix, per gateway and channel; see the README's topic table)::

    gw/{gw}/voice/{channel}/listen        console -> gateway  {"console", "operator", "lease_s"}, renewed
    gw/{gw}/voice/{channel}/rx            gateway -> consoles  frames, QoS 0, only while a lease is alive
    gw/{gw}/voice/{channel}/floor         console -> gateway  {"console", "operator", "request", "action",
                                                               "override"}
    gw/{gw}/voice/{channel}/floor/answer  gateway -> consoles  {"request", "console", "operator", "result",
                                                               "reason", "stream", "ready_ms"}
    gw/{gw}/voice/{channel}/tx            console -> gateway  frames of the granted stream, QoS 0
    gw/{gw}/voice/{channel}/state         gateway -> all, retained: talker, busy, unit, level, ...
    gw/{gw}/cmd/remote_monitor            console -> gateway  {"request", "unit", "channel", "operator",
                                                               "duration_s", "case"}
    gw/{gw}/cmd/patch                     console -> gateway  {"request", "name", "operator", "action",
                                                               "channels"}

A console leases, asks for the floor, and on ``granted`` sends frames of the granted ``stream`` (the
first with START, the last with END, or says ``release``); it may sound a talk-permit tone after
``ready_ms`` (PTT is keyed when the grant is sent; ``ready_ms`` is the radio's lead-in).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gateway.events import format_time, is_name, json_object, parse_time, printable, unit_problem

Samples = npt.NDArray[np.float32]

MAGIC = b"PV"
VERSION = 1
RATE = 48_000  # Opus's native rate; every timestamp counts samples at this rate
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 960
PACKET_DURATIONS = (960, 1920, 2880)  # 20, 40, 60 ms: what a frame's Opus packet may hold
MAX_OPUS_BYTES = 1500  # a 60 ms packet at 128 kbit/s is 960 bytes; Opus' own limit is 1275 per frame
MAX_UNIT_BYTES = 64
_HEADER = struct.Struct(">2sBBBIII")
HEADER_BYTES = _HEADER.size  # 17
MAX_FRAME_BYTES = HEADER_BYTES + MAX_UNIT_BYTES + MAX_OPUS_BYTES
SEQ_MOD = 2**32

# Topic leaves under gw/{gw}/voice/{channel}/
RX, TX, LISTEN, FLOOR, ANSWER, STATE = "rx", "tx", "listen", "floor", "floor/answer", "state"
LEAVES = (RX, TX, LISTEN, FLOOR, ANSWER, STATE)

MAX_LEASE_S = 60.0  # a listener renews its lease well within it (a third of it is usual)
MAX_MONITOR_S = 300.0
MAX_BODY_BYTES = 4096  # a lease or a floor request is under 300 bytes


class VoiceError(ValueError):
    """A voice frame or message refused; the message says why (and shows bytes in hex)."""


class Flag(IntFlag):
    START = 0x01  # first frame of a talk spurt
    END = 0x02  # last frame of a talk spurt


_KNOWN_FLAGS = Flag.START | Flag.END
NO_FLAGS = Flag(0)


def _hex(data: bytes, limit: int = 32) -> str:
    shown = data[:limit].hex(" ")
    return shown + (f" ... ({len(data)} bytes)" if len(data) > limit else "")


def voice_topic(prefix: str, gateway: str, channel: str, leaf: str) -> str:
    """``{prefix}/gw/{gateway}/voice/{channel}/{leaf}``; ``gateway``/``channel`` may be ``+`` to subscribe."""
    if leaf not in LEAVES:
        raise ValueError(f"no voice topic {leaf!r}; expected one of {', '.join(LEAVES)}")
    return f"{prefix}/gw/{gateway}/voice/{channel}/{leaf}"


def parse_voice_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """``(gateway, channel, leaf)`` of a voice topic under ``prefix``, else None."""
    head = f"{prefix}/gw/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) < 4 or parts[1] != "voice":
        return None
    gateway, channel, leaf = parts[0], parts[2], "/".join(parts[3:])
    if leaf not in LEAVES or not is_name(gateway) or not is_name(channel):
        return None
    return gateway, channel, leaf


# --- Opus packets (RFC 6716 section 3) -----------------------------------------------------------
# TOC byte: config (5 bits) | s (stereo) | c (frame count code). Config 0-11 SILK, 12-15 hybrid, 16-31
# CELT, each mode's frame sizes cycling with config (RFC 6716 table 2), here in samples at 48 kHz.

_FRAME_SIZES = tuple(
    (480, 960, 1920, 2880)[c % 4] if c < 12 else (480, 960)[c % 2] if c < 16 else (120, 240, 480, 960)[c % 4]
    for c in range(32)
)
_MAX_FRAME_BYTES_RFC = 1275  # RFC 6716 3.2.1: no frame is longer
_MAX_PACKET_SAMPLES = 5760  # 120 ms (RFC 6716 3.2.5, R5)


def _frame_length(packet: bytes, at: int) -> tuple[int, int]:
    """A frame length coded at ``at`` (RFC 6716 3.2.1): 0-251 in one byte, else 4 * second + first."""
    if at >= len(packet):
        raise VoiceError(f"not Opus: a frame length is missing at byte {at} ({_hex(packet)})")
    first = packet[at]
    if first < 252:
        return first, at + 1
    if at + 1 >= len(packet):
        raise VoiceError(f"not Opus: a two-byte frame length is cut short at byte {at} ({_hex(packet)})")
    return packet[at + 1] * 4 + first, at + 2


def _code3_sizes(packet: bytes, per_frame: int) -> tuple[int, list[int]]:
    """The frame count and sizes of a code 3 packet (RFC 6716 3.2.5: a count byte, optional padding, CBR or
    VBR lengths); VoiceError when they do not fit."""
    n = len(packet)
    if n < 2:
        raise VoiceError(f"not Opus: code 3 without its frame count byte (R6) ({_hex(packet)})")
    count_byte = packet[1]
    vbr, padded, frames = count_byte & 0x80, count_byte & 0x40, count_byte & 0x3F
    if frames == 0:
        raise VoiceError(f"not Opus: code 3 with 0 frames (R5) ({_hex(packet)})")
    if frames * per_frame > _MAX_PACKET_SAMPLES:
        raise VoiceError(f"not Opus: {frames} frames of {per_frame / 48:g} ms exceed 120 ms (R5) ({_hex(packet)})")
    at, padding = 2, 0
    while padded:
        if at >= n:
            raise VoiceError(f"not Opus: the padding length runs past the packet (R7) ({_hex(packet)})")
        step = packet[at]
        at += 1
        padding += 254 if step == 255 else step
        padded = step == 255
    sizes = []
    if vbr:
        for _ in range(frames - 1):
            size, at = _frame_length(packet, at)
            sizes.append(size)
    body = n - at - padding
    if body < 0 or sum(sizes) > body:
        raise VoiceError(f"not Opus: frame lengths and padding exceed the packet (R6/R7) ({_hex(packet)})")
    if vbr:
        sizes.append(body - sum(sizes))
    else:
        if body % frames:
            raise VoiceError(f"not Opus: {body} bytes do not split into {frames} equal frames (R6) "
                             f"({_hex(packet)})")
        sizes = [body // frames] * frames
    return frames, sizes


def opus_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) of a mono Opus packet whose framing is valid (RFC 6716 3.4, R1-R7); else VoiceError."""
    if not packet:
        raise VoiceError("not Opus: an empty packet (RFC 6716 R1: at least one byte)")
    toc = packet[0]
    if toc & 0x04:
        raise VoiceError(f"a stereo Opus packet (TOC {toc:#04x}); voice frames are mono ({_hex(packet)})")
    per_frame, code = _FRAME_SIZES[toc >> 3], toc & 0x03
    n = len(packet)
    if code == 0:
        frames, sizes = 1, [n - 1]
    elif code == 1:
        if (n - 1) % 2:
            raise VoiceError(f"not Opus: code 1 needs two frames of equal size, {n - 1} bytes is odd (R3) "
                             f"({_hex(packet)})")
        frames, sizes = 2, [(n - 1) // 2] * 2
    elif code == 2:
        first, at = _frame_length(packet, 1)
        if first > n - at:
            raise VoiceError(f"not Opus: the first frame of {first} bytes runs past the packet (R4) ({_hex(packet)})")
        frames, sizes = 2, [first, n - at - first]
    else:
        frames, sizes = _code3_sizes(packet, per_frame)
    if any(s > _MAX_FRAME_BYTES_RFC for s in sizes):
        raise VoiceError(f"not Opus: a frame longer than {_MAX_FRAME_BYTES_RFC} bytes (R2) ({_hex(packet)})")
    return frames * per_frame


def check_opus(packet: bytes) -> int:
    """:func:`opus_samples` of a packet a voice frame may carry: 20, 40 or 60 ms, at most 1500 bytes."""
    if len(packet) > MAX_OPUS_BYTES:
        raise VoiceError(f"an Opus packet of {len(packet)} bytes; at most {MAX_OPUS_BYTES} ({_hex(packet)})")
    samples = opus_samples(packet)
    if samples not in PACKET_DURATIONS:
        raise VoiceError(f"an Opus packet of {samples / 48:g} ms; voice frames are 20, 40 or 60 ms ({_hex(packet)})")
    return samples


# --- frames ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoiceFrame:
    stream: int  # 0 .. 2**32-1
    seq: int  # 0 .. 2**32-1, +1 a frame
    timestamp: int  # 0 .. 2**32-1, in samples at 48 kHz
    opus: bytes
    flags: Flag = NO_FLAGS
    unit: str | None = None

    @property
    def start(self) -> bool:
        return bool(self.flags & Flag.START)

    @property
    def end(self) -> bool:
        return bool(self.flags & Flag.END)

    @property
    def samples(self) -> int:
        """How long the frame's audio is, in samples at 48 kHz."""
        return opus_samples(self.opus)

    def encode(self) -> bytes:
        """The frame on the wire; VoiceError if a field is out of its range (what parsing would refuse)."""
        for name in ("stream", "seq", "timestamp"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < SEQ_MOD:
                raise VoiceError(f"{name}: expected 0 .. 2**32-1, got {value!r}")
        if int(self.flags) & ~int(_KNOWN_FLAGS):
            raise VoiceError(f"flags: unknown bits {int(self.flags):#04x}")
        unit = _unit_bytes(self.unit)
        check_opus(self.opus)
        return _HEADER.pack(MAGIC, VERSION, int(self.flags), len(unit), self.stream, self.seq,
                            self.timestamp) + unit + self.opus


def _unit_bytes(unit: str | None) -> bytes:
    if unit is None:
        return b""
    problem = unit_problem(unit)
    if problem is not None:
        raise VoiceError(f"unit: {problem}")
    data = unit.encode("utf-8")
    if len(data) > MAX_UNIT_BYTES:
        raise VoiceError(f"unit: {len(data)} bytes in UTF-8; at most {MAX_UNIT_BYTES}")
    return data


def parse_frame(data: bytes | bytearray | memoryview) -> VoiceFrame:
    """A voice frame off the wire, checked whole; VoiceError (with the bytes in hex) if it is not one."""
    data = bytes(data)
    if len(data) < HEADER_BYTES + 1:
        raise VoiceError(f"not a voice frame: {len(data)} bytes, shorter than a header and a packet ({_hex(data)})")
    if len(data) > MAX_FRAME_BYTES:
        raise VoiceError(f"not a voice frame: {len(data)} bytes, over {MAX_FRAME_BYTES} ({_hex(data)})")
    magic, version, flags, unit_len, stream, seq, timestamp = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise VoiceError(f"not a voice frame: starts {magic.hex(' ')}, not {MAGIC.hex(' ')} ('PV') ({_hex(data)})")
    if version != VERSION:
        raise VoiceError(f"voice frame version {version}; this side reads version {VERSION} ({_hex(data)})")
    if flags & ~int(_KNOWN_FLAGS):
        raise VoiceError(f"voice frame flags {flags:#04x}: reserved bits set ({_hex(data)})")
    if unit_len > MAX_UNIT_BYTES:
        raise VoiceError(f"voice frame unit of {unit_len} bytes; at most {MAX_UNIT_BYTES} ({_hex(data)})")
    body = HEADER_BYTES + unit_len
    if len(data) <= body:
        raise VoiceError(f"voice frame cut short: no Opus packet after the unit ({_hex(data)})")
    unit: str | None = None
    if unit_len:
        try:
            unit = data[HEADER_BYTES:body].decode("utf-8")
        except UnicodeDecodeError:
            raise VoiceError(f"voice frame unit is not UTF-8 ({_hex(data[HEADER_BYTES:body])})") from None
        problem = unit_problem(unit)
        if problem is not None:
            raise VoiceError(f"voice frame unit: {problem}")
    opus = data[body:]
    try:
        check_opus(opus)
    except VoiceError as exc:
        raise VoiceError(f"voice frame {seq}: {exc}; the frame: {_hex(data)}") from None
    return VoiceFrame(stream=stream, seq=seq, timestamp=timestamp, opus=opus, flags=Flag(flags), unit=unit)


def seq_delta(new: int, old: int) -> int:
    """How far ``new`` is after ``old`` on a 32-bit counter that wraps (negative: before), in -2**31 .. 2**31-1."""
    return (new - old + 2**31) % SEQ_MOD - 2**31


def random_id() -> int:
    """A stream id, or a first sequence number or timestamp (random, as RTP's, so that streams differ)."""
    return int.from_bytes(os.urandom(4), "big")


class StreamTracker:
    """Which frames of a stream a receiver takes (sans-I/O; one per receiver and stream).

    - ``stream`` given and ``adopt=False`` (the gateway's ``tx``: the stream it granted): frames of any
      other stream are refused. Otherwise the first frame's stream is taken, and a frame of another
      stream replaces it only if it starts a talk spurt (START).
    - A sequence more than ``ahead`` frames after the newest taken, or more than ``behind`` before it, is
      out of range (a forged or corrupted number, or a frame too late to play); a sequence taken already
      is a duplicate. A timestamp must move with the sequence, 20 to 60 ms a frame, except at the start of
      a talk spurt (START), where it may jump over the silence that was not sent (as RTP's marker bit).
    """

    def __init__(self, stream: int | None = None, *, adopt: bool = True, ahead: int = 1500, behind: int = 50) -> None:
        self.stream = stream
        self.adopt = adopt if stream is not None else True
        self.ahead, self.behind = ahead, behind
        self.newest: int | None = None  # sequence of the newest frame taken
        self._timestamp = 0  # its timestamp
        self._seen: set[int] = set()  # sequences taken, within ``behind`` of the newest

    def check(self, frame: VoiceFrame) -> str | None:
        """None if ``frame`` is taken (and remembered), else why not."""
        if frame.stream != self.stream:
            if self.stream is not None and not (self.adopt and frame.start):
                return f"stream {frame.stream:08x} is not the current stream {self.stream:08x}"
            self.stream, self.newest = frame.stream, None
            self._seen.clear()
        if self.newest is None:
            self._take(frame)
            return None
        d = seq_delta(frame.seq, self.newest)
        if d > self.ahead:
            return f"sequence {frame.seq} is {d} frames ahead of {self.newest}; more than {self.ahead} is out of range"
        if d < -self.behind:
            return f"sequence {frame.seq} is {-d} frames behind {self.newest}; more than {self.behind} is too late"
        if frame.seq in self._seen:
            return f"sequence {frame.seq} was taken already (a duplicate)"
        ts = seq_delta(frame.timestamp, self._timestamp)
        moved = ts if d > 0 else -ts
        if d and not frame.start and not abs(d) * FRAME_SAMPLES <= moved <= abs(d) * PACKET_DURATIONS[-1]:
            return (f"timestamp {frame.timestamp} moved {ts} samples over {d} frames; expected 20-60 ms a frame "
                    f"from {self._timestamp}")
        self._take(frame)
        return None

    def _take(self, frame: VoiceFrame) -> None:
        self._seen.add(frame.seq)
        if self.newest is None or seq_delta(frame.seq, self.newest) > 0:
            self.newest, self._timestamp = frame.seq, frame.timestamp
            self._seen = {s for s in self._seen if -self.behind <= seq_delta(s, frame.seq) <= 0}


# --- the codec (PyAV's libopus) -------------------------------------------------------------------


def _load_av() -> Any:
    try:
        import av
    except ImportError as exc:  # a gateway installed without its dependencies
        raise VoiceError(f"the Opus codec needs PyAV (pip install av): {exc}") from None
    return av


class OpusEncoder:
    """Mono 48 kHz audio in 20 ms frames (float32 in -1..1) -> one Opus packet each (libopus via PyAV).

    ``application="voip"`` (libopus tunes for speech); VBR; ``bitrate`` 24 kbit/s by default, where
    radio audio (300-3000 Hz) and DTMF survive with margin (the tests decode DTMF through it).
    """

    def __init__(self, bitrate: int = 24_000, *, complexity: int = 5) -> None:
        if not 6_000 <= bitrate <= 128_000:
            raise VoiceError(f"bitrate: expected 6000-128000 bit/s, got {bitrate}")
        av = _load_av()
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.options = {"application": "voip", "frame_duration": str(FRAME_MS), "compression_level": str(complexity)}
        ctx.open()
        self._av, self._ctx, self._pts = av, ctx, 0
        self.bitrate = bitrate

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        """One 20 ms frame (960 samples) -> its Opus packet."""
        x = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if len(x) != FRAME_SAMPLES:
            raise VoiceError(f"an Opus frame is {FRAME_SAMPLES} samples (20 ms at 48 kHz), got {len(x)}")
        s16 = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(s16, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        try:
            packets = self._ctx.encode(frame)
        except self._av.FFmpegError as exc:
            raise VoiceError(f"Opus encoder: {exc}") from exc
        if len(packets) != 1:  # libopus answers each 20 ms frame at once; anything else is a codec change
            raise VoiceError(f"Opus encoder gave {len(packets)} packets for one frame")
        return bytes(packets[0])


class OpusDecoder:
    """Opus packets -> mono 48 kHz float32 audio; :meth:`conceal` fills a lost frame (libopus's PLC)."""

    def __init__(self) -> None:
        av = _load_av()
        ctx = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = RATE
        ctx.layout = "mono"
        ctx.open()
        self._av, self._ctx = av, ctx
        self._toc = 0x78  # SILK wideband 20 ms, mono, one frame: until a packet says otherwise

    def decode(self, packet: bytes) -> Samples:
        """The audio of one packet (checked first: :func:`check_opus`); VoiceError if libopus refuses it."""
        check_opus(packet)
        self._toc = packet[0]
        return self._run(packet)

    def conceal(self) -> Samples:
        """A frame's worth of audio for a packet that never came: a TOC byte alone with no frame data
        makes libopus conceal (RFC 6716 3.2.1: a 0-byte frame is lost or DTX), as long as the last frame."""
        return self._run(bytes([self._toc & 0xFC]))

    def _run(self, packet: bytes) -> Samples:
        try:
            frames = self._ctx.decode(self._av.Packet(packet))
        except self._av.FFmpegError as exc:
            raise VoiceError(f"Opus decoder refused the packet: {exc} ({_hex(packet)})") from exc
        out = [f.to_ndarray().reshape(-1) for f in frames]
        if not out:
            return np.zeros(0, np.float32)
        pcm = np.concatenate(out)
        if pcm.dtype == np.int16:
            return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        return pcm.astype(np.float32)


class FramePacker:
    """Audio of one source in blocks of any length -> numbered voice frames of 20 ms (one stream).

    :meth:`feed` returns the frames completed; the first after :meth:`__init__` or an :meth:`end` has
    START. :meth:`end` pads what is left with silence into a last frame flagged END (None if nothing was
    sent since the last end). The stream id, first sequence and first timestamp are random unless given.
    """

    def __init__(self, encoder: OpusEncoder | None = None, *, stream: int | None = None, seq: int | None = None,
                 timestamp: int | None = None) -> None:
        self.encoder = encoder or OpusEncoder()
        self.stream = random_id() if stream is None else stream
        self.seq = random_id() if seq is None else seq  # the next frame's
        self.timestamp = random_id() if timestamp is None else timestamp
        self._pending = np.zeros(0, np.float32)
        self._talking = False  # a START was sent and no END yet

    def feed(self, samples: npt.ArrayLike, *, unit: str | None = None) -> list[VoiceFrame]:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, x]) if len(self._pending) else x
        out = []
        while len(self._pending) >= FRAME_SAMPLES:
            pcm, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            out.append(self._frame(pcm, Flag(0), unit))
        return out

    def end(self, *, unit: str | None = None) -> VoiceFrame | None:
        """The last frame of the talk spurt (END), with what is left padded with silence."""
        if not self._talking and not len(self._pending):
            return None
        pcm = np.zeros(FRAME_SAMPLES, np.float32)
        pcm[: len(self._pending)] = self._pending
        self._pending = np.zeros(0, np.float32)
        frame = self._frame(pcm, Flag.END, unit)
        self._talking = False
        return frame

    def skip(self, samples: int) -> None:
        """Audio of ``samples`` that was not sent (silence between talk spurts): the next timestamp says
        when the next spurt really starts."""
        self.timestamp = (self.timestamp + samples) % SEQ_MOD

    def _frame(self, pcm: Samples, flags: Flag, unit: str | None) -> VoiceFrame:
        if not self._talking:
            flags |= Flag.START
            self._talking = True
        frame = VoiceFrame(self.stream, self.seq, self.timestamp, self.encoder.encode(pcm), flags, unit)
        self.seq = (self.seq + 1) % SEQ_MOD
        self.timestamp = (self.timestamp + FRAME_SAMPLES) % SEQ_MOD
        return frame


# --- JSON bodies ----------------------------------------------------------------------------------


def _body(payload: bytes | bytearray | str, what: str) -> dict[str, Any]:
    if len(payload) > MAX_BODY_BYTES:
        raise VoiceError(f"{what}: {len(payload)} bytes, over {MAX_BODY_BYTES}")
    try:
        return json_object(payload)
    except ValueError as exc:
        raw = payload.encode() if isinstance(payload, str) else bytes(payload)
        raise VoiceError(f"{what}: {exc} ({_hex(raw)})") from None


def _text(body: Mapping[str, Any], key: str, what: str, *, limit: int = 64) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable():
        raise VoiceError(f"{what}.{key}: expected 1-{limit} printable characters, got {printable(repr(value), 80)}")
    return value


def _console(body: Mapping[str, Any], what: str) -> str:
    value = body.get("console")
    if not is_name(value):
        raise VoiceError(f"{what}.console: expected the console's name (1-64 of A-Z a-z 0-9 _ . -), "
                         f"got {printable(repr(value), 80)}")
    assert isinstance(value, str)
    return value


def _seconds(body: Mapping[str, Any], key: str, what: str, hi: float, *, lo: float = 0.0) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise VoiceError(f"{what}.{key}: expected seconds, {lo:g} to {hi:g}, got {printable(repr(value), 80)}")
    return float(value)


def _dumps(obj: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True, slots=True)
class ListenLease:
    """``listen``: a console asks for a channel's receive audio for ``lease_s`` (renewed before it runs
    out); 0 ends its lease at once. No live lease, no stream."""

    console: str
    operator: str
    lease_s: float

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> ListenLease:
        body = _body(payload, "listen")
        return cls(_console(body, "listen"), _text(body, "operator", "listen"),
                   _seconds(body, "lease_s", "listen", MAX_LEASE_S))

    def to_json(self) -> bytes:
        return _dumps({"console": self.console, "operator": self.operator, "lease_s": self.lease_s})


FloorAction = Literal["request", "release"]


@dataclass(frozen=True, slots=True)
class FloorRequest:
    """``floor``: a console asks to talk on the channel (``request``) or is done (``release``);
    ``override`` talks over radio traffic (an emergency may need it), never over another dispatcher."""

    console: str
    operator: str
    request: str  # the console's id for this request; the answer carries it
    action: FloorAction = "request"
    override: bool = False

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> FloorRequest:
        body = _body(payload, "floor")
        action = body.get("action", "request")
        if action not in ("request", "release"):
            raise VoiceError(f"floor.action: expected 'request' or 'release', got {printable(repr(action), 80)}")
        override = body.get("override", False)
        if not isinstance(override, bool):
            raise VoiceError(f"floor.override: expected true or false, got {printable(repr(override), 80)}")
        return cls(_console(body, "floor"), _text(body, "operator", "floor"), _text(body, "request", "floor"),
                   action, override)

    def to_json(self) -> bytes:
        return _dumps({"console": self.console, "operator": self.operator, "request": self.request,
                       "action": self.action, "override": self.override})


FloorResult = Literal["granted", "refused", "released"]


@dataclass(frozen=True, slots=True)
class FloorAnswer:
    """``floor/answer``: what became of a floor request, or of a floor the gateway took back.

    ``granted`` carries the ``stream`` id the talker's frames must carry and ``ready_ms``, the lead-in
    after which the radio is keyed and transmitting (a console may sound its talk-permit tone then);
    ``refused`` and ``released`` say why in ``reason`` (busy with radio traffic, held by another
    dispatcher, receive-only, the transmit time-out, the talker's audio stopped, ...)."""

    request: str | None
    console: str
    operator: str
    result: FloorResult
    reason: str | None = None
    stream: int | None = None
    ready_ms: int | None = None

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> FloorAnswer:
        body = _body(payload, "floor answer")
        result = body.get("result")
        if result not in ("granted", "refused", "released"):
            raise VoiceError(f"floor answer.result: expected granted, refused or released, got "
                             f"{printable(repr(result), 80)}")
        request = None if body.get("request") is None else _text(body, "request", "floor answer")
        reason = None if body.get("reason") is None else _text(body, "reason", "floor answer", limit=500)
        stream, ready = body.get("stream"), body.get("ready_ms")
        if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int)
                                   or not 0 <= stream < SEQ_MOD):
            raise VoiceError(f"floor answer.stream: expected 0 .. 2**32-1, got {printable(repr(stream), 80)}")
        if ready is not None and (isinstance(ready, bool) or not isinstance(ready, int) or not 0 <= ready <= 60_000):
            raise VoiceError(f"floor answer.ready_ms: expected 0-60000, got {printable(repr(ready), 80)}")
        return cls(request, _console(body, "floor answer"), _text(body, "operator", "floor answer"), result, reason,
                   stream, ready)

    def to_json(self) -> bytes:
        return _dumps({"request": self.request, "console": self.console, "operator": self.operator,
                       "result": self.result, "reason": self.reason, "stream": self.stream,
                       "ready_ms": self.ready_ms})


@dataclass(frozen=True, slots=True)
class Talker:
    console: str
    operator: str
    since: datetime


@dataclass(frozen=True, slots=True)
class VoiceState:
    """``state`` (retained): what a console shows of a channel. ``busy``: radio traffic on it (COR or
    voice activity); ``unit``: who is talking, as decoded during the transmission; ``level_dbfs``: the
    receive level over the last second; ``talker``: the dispatcher holding the floor; ``keyed``: PTT
    keyed; ``transmit``: the channel has a transmit path (false: receive-only or none); ``listeners``:
    live leases; ``monitor``: a remote monitor running (``{"unit", "until"}``); ``patch``: the patch the
    channel is in."""

    channel: str
    busy: bool = False
    unit: str | None = None
    level_dbfs: float | None = None
    talker: Talker | None = None
    keyed: bool = False
    transmit: bool = False
    listeners: int = 0
    monitor: Mapping[str, Any] | None = None
    patch: str | None = None

    def to_json(self) -> bytes:
        talker = None if self.talker is None else {"console": self.talker.console, "operator": self.talker.operator,
                                                  "since": format_time(self.talker.since)}
        return _dumps({"channel": self.channel, "busy": self.busy, "unit": self.unit,
                       "level_dbfs": self.level_dbfs, "talker": talker, "keyed": self.keyed,
                       "transmit": self.transmit, "listeners": self.listeners,
                       "monitor": dict(self.monitor) if self.monitor is not None else None, "patch": self.patch})

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> VoiceState:
        body = _body(payload, "voice state")
        channel = body.get("channel")
        if not is_name(channel):
            raise VoiceError(f"voice state.channel: expected a channel name, got {printable(repr(channel), 80)}")
        assert isinstance(channel, str)
        flags = {}
        for key in ("busy", "keyed", "transmit"):
            value = body.get(key, False)
            if not isinstance(value, bool):
                raise VoiceError(f"voice state.{key}: expected true or false, got {printable(repr(value), 80)}")
            flags[key] = value
        unit = body.get("unit")
        if unit is not None and unit_problem(unit) is not None:
            raise VoiceError(f"voice state.unit: {unit_problem(unit)}")
        level = body.get("level_dbfs")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int | float)
                                  or not -200.0 <= level <= 10.0):
            raise VoiceError(f"voice state.level_dbfs: expected dBFS, got {printable(repr(level), 80)}")
        listeners = body.get("listeners", 0)
        if isinstance(listeners, bool) or not isinstance(listeners, int) or not 0 <= listeners <= 100_000:
            raise VoiceError(f"voice state.listeners: expected a count, got {printable(repr(listeners), 80)}")
        talker = None
        raw = body.get("talker")
        if raw is not None:
            if not isinstance(raw, dict):
                raise VoiceError(f"voice state.talker: expected an object or null, got {printable(repr(raw), 80)}")
            try:
                since = parse_time(raw.get("since"), "talker.since")
            except ValueError as exc:
                raise VoiceError(f"voice state.{exc}") from None
            talker = Talker(_console(raw, "voice state.talker"), _text(raw, "operator", "voice state.talker"), since)
        monitor = body.get("monitor")
        if monitor is not None and not isinstance(monitor, dict):
            raise VoiceError(f"voice state.monitor: expected an object or null, got {printable(repr(monitor), 80)}")
        patch = body.get("patch")
        if patch is not None and not is_name(patch):
            raise VoiceError(f"voice state.patch: expected a patch name, got {printable(repr(patch), 80)}")
        return cls(channel, flags["busy"], unit, None if level is None else float(level), talker, flags["keyed"],
                   flags["transmit"], listeners, monitor, patch)


MAX_PATCH_CHANNELS = 16

PatchAction = Literal["connect", "disconnect"]


@dataclass(frozen=True, slots=True)
class PatchCommand:
    """``gw/{gw}/cmd/patch``: a dispatcher connects channels of that gateway (``connect``, two or more) or
    takes a patch apart (``disconnect``, by name); configured patches are the configuration's to change."""

    request: str
    name: str
    operator: str
    action: PatchAction = "connect"
    channels: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> PatchCommand:
        body = _body(payload, "patch")
        name, action, channels = body.get("name"), body.get("action", "connect"), body.get("channels", [])
        if not is_name(name):
            raise VoiceError(f"patch.name: expected a patch name (1-64 of A-Z a-z 0-9 _ . -), got "
                             f"{printable(repr(name), 80)}")
        if action not in ("connect", "disconnect"):
            raise VoiceError(f"patch.action: expected 'connect' or 'disconnect', got {printable(repr(action), 80)}")
        if action == "connect" and (not isinstance(channels, list) or not 2 <= len(channels) <= MAX_PATCH_CHANNELS
                                    or not all(is_name(c) for c in channels) or len(set(channels)) != len(channels)):
            raise VoiceError(f"patch.channels: expected 2-{MAX_PATCH_CHANNELS} different channel names, got "
                             f"{printable(repr(channels), 120)}")
        assert isinstance(name, str)
        return cls(_text(body, "request", "patch"), name, _text(body, "operator", "patch"), action,
                   tuple(channels) if action == "connect" else ())

    def to_json(self) -> bytes:
        return _dumps({"request": self.request, "name": self.name, "operator": self.operator, "action": self.action,
                       "channels": list(self.channels)})


@dataclass(frozen=True, slots=True)
class RemoteMonitor:
    """``gw/{gw}/cmd/remote_monitor``: key the unit's microphone for a while (MDC-1200) and stream what it
    hears; ``duration_s`` is how long the gateway streams the channel for it (the radio's own keying time
    is programmed in the radio); ``case``: the incident it was asked from, named again in the result so
    that the bridge writes the result into that case's history."""

    request: str
    unit: str
    channel: str
    operator: str
    duration_s: float = 30.0
    case: int | None = None

    @classmethod
    def from_json(cls, payload: bytes | bytearray | str) -> RemoteMonitor:
        body = _body(payload, "remote_monitor")
        unit = body.get("unit")
        problem = unit_problem(unit)
        if problem is not None:
            raise VoiceError(f"remote_monitor.unit: {problem}")
        channel = body.get("channel")
        if not is_name(channel):
            raise VoiceError(f"remote_monitor.channel: expected a channel name, got {printable(repr(channel), 80)}")
        assert isinstance(unit, str) and isinstance(channel, str)
        duration = _seconds(body, "duration_s", "remote_monitor", MAX_MONITOR_S, lo=1.0) \
            if "duration_s" in body else 30.0
        case = body.get("case")
        if case is not None and (isinstance(case, bool) or not isinstance(case, int) or not 0 < case <= 2**31 - 1):
            raise VoiceError(f"remote_monitor.case: expected an incident number, got {printable(repr(case), 80)}")
        return cls(_text(body, "request", "remote_monitor"), unit, channel, _text(body, "operator", "remote_monitor"),
                   duration, case)

    def to_json(self) -> bytes:
        return _dumps({"request": self.request, "unit": self.unit, "channel": self.channel,
                       "operator": self.operator, "duration_s": self.duration_s,
                       **({"case": self.case} if self.case is not None else {})})
