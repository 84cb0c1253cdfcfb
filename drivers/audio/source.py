"""Audio sources (sound cards, WAV files, raw PCM on stdin) and the plumbing between them and decoders.

Thin I/O, no decoding. Every source yields blocks of float32 samples in -1..1 shaped (frames, channels),
each with the UTC time of its first frame:

    with open_source("device:pulse?rate=48000&channels=2") as source:   # or "calls.wav", "-?rate=8000"
        splitter = ChannelSplitter(source.channels)
        resample = Resampler(source.rate, decoder.rate)
        for block, start in source.blocks():
            meter.feed(block)
            mono = splitter.split(block)[0]
            decoder.feed(resample.feed(mono), start)

Sources are addressed like pyserial ports, by a string that also fits in the configuration:

    ``calls.wav``, ``wav:calls.wav``, ``file:///srv/rec/calls.wav``   a WAV file
    ``-``, ``stdin:?rate=8000&channels=1&format=s16le``               raw PCM on stdin
    ``device:``, ``device:pulse``, ``device:3?rate=48000&channels=2`` a capture device (sounddevice)

Files and stdin are timed from ``start`` (default :data:`FILE_EPOCH`, so an event's time minus the epoch
is its offset in the recording); a device is timed by the wall clock.

Errors are :class:`AudioSourceError` (a ``RuntimeError``) with a message a technician can act on: which
package to install when PortAudio is missing, which input devices exist when a device is not found.
"""

from __future__ import annotations

import importlib
import logging
import math
import queue
import struct
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import numpy.typing as npt

from drivers.audio.views import strided

log = logging.getLogger(__name__)

Block = npt.NDArray[np.float32]  # (frames, channels) float32 in -1..1
Samples = npt.NDArray[np.float32]  # (frames,) one channel

#: The default start of a file or stdin source: events are then timed by their offset in the recording.
FILE_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_BLOCKSIZE = 4096
PACE_STEP_S = 0.05  # a recording replayed in real time sees close() within this long


class AudioSourceError(RuntimeError):
    """A source cannot be opened or read; the message says what to do about it."""


class AudioSource(ABC):
    """Blocks of audio, each with the time of its first frame. Use as a context manager."""

    rate: int
    channels: int
    description: str

    @abstractmethod
    def blocks(self) -> Iterator[tuple[Block, datetime]]:
        """Blocks of shape (frames, channels) until the end of the input or :meth:`close`."""

    def close(self) -> None:  # noqa: B027 - sources with nothing to release need not override it
        """Release the file or device; :meth:`blocks` then ends. Safe to call more than once, from any thread."""

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} {self.rate} Hz x{self.channels}>"


# --- PCM sample formats ----------------------------------------------------------------------------


def pcm_to_float(data: bytes, sample_format: str, channels: int) -> Block:
    """Interleaved PCM bytes -> float32 (frames, channels) in -1..1.

    Formats: ``u8``, ``s16le``, ``s16be``, ``s24le``, ``s32le``, ``f32le``, ``f64le`` (what sox, arecord and
    WAV files call them). Integers are scaled by 2**(bits-1), so full scale negative is exactly -1.0.
    """
    if sample_format == "u8":
        x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif sample_format in ("s16le", "s16be"):
        x = np.frombuffer(data, "<i2" if sample_format == "s16le" else ">i2").astype(np.float32) / 32768.0
    elif sample_format == "s24le":
        b = np.frombuffer(data, np.uint8).reshape(-1, 3)
        # Place the 3 bytes in the top of an int32 so the sign comes for free, then scale by 2**31.
        wide = np.zeros((len(b), 4), np.uint8)
        wide[:, 1:] = b
        x = wide.view("<i4").ravel().astype(np.float32) / 2147483648.0
    elif sample_format == "s32le":
        x = (np.frombuffer(data, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif sample_format in ("f32le", "f64le"):
        x = np.frombuffer(data, "<f4" if sample_format == "f32le" else "<f8").astype(np.float32)
    else:
        raise AudioSourceError(f"unknown sample format {sample_format!r}; use one of {', '.join(SAMPLE_BYTES)}")
    return x.reshape(-1, channels)


SAMPLE_BYTES = {"u8": 1, "s16le": 2, "s16be": 2, "s24le": 3, "s32le": 4, "f32le": 4, "f64le": 8}


class _ChunkedSource(AudioSource):
    """Fixed-size blocks of PCM from a byte stream, timed from ``start`` by their frame count."""

    def __init__(self, stream: BinaryIO, rate: int, channels: int, sample_format: str, *, start: datetime | None,
                 blocksize: int, realtime: bool, limit: int | None = None) -> None:
        if sample_format not in SAMPLE_BYTES:
            raise AudioSourceError(f"unknown sample format {sample_format!r}; use one of {', '.join(SAMPLE_BYTES)}")
        if rate <= 0 or channels <= 0:
            raise AudioSourceError(f"{self.description}: rate and channels must be positive, not {rate}/{channels}")
        self.rate, self.channels, self.format = rate, channels, sample_format
        self.start = start or FILE_EPOCH
        self.blocksize, self.realtime = blocksize, realtime
        self._stream, self._limit = stream, limit
        self._closed = threading.Event()

    def blocks(self) -> Iterator[tuple[Block, datetime]]:
        frame_bytes = SAMPLE_BYTES[self.format] * self.channels
        frames = 0
        left = self._limit
        t0 = time.monotonic()
        while not self._closed.is_set():
            want = self.blocksize * frame_bytes if left is None else min(self.blocksize * frame_bytes, left)
            data = _read_exactly(self._stream, want) if want > 0 else b""
            if left is not None:
                left -= len(data)
            data = data[: len(data) - len(data) % frame_bytes]  # a torn last frame is dropped, not misread
            if not data:
                return
            block = pcm_to_float(data, self.format, self.channels)
            if self.realtime:  # pace a recording like a live card, for demonstrations and soak tests
                # Slept in steps, looking at close() between: a timed Event.wait makes and queues a lock
                # in Python at every block, which many channels replayed at once felt.
                while (delay := t0 + frames / self.rate - time.monotonic()) > 0:
                    time.sleep(min(delay, PACE_STEP_S))
                    if self._closed.is_set():
                        return
            yield block, self.start + timedelta(seconds=frames / self.rate)
            frames += len(block)

    def close(self) -> None:
        self._closed.set()


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the stream (a pipe returns short reads)."""
    parts: list[bytes] = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


# --- WAV files -------------------------------------------------------------------------------------
#
# RIFF 'WAVE' = chunks of [id: 4 ASCII][size: u32 LE][data, padded to even size]:
#   'fmt ' : format tag u16 (1 PCM, 3 IEEE float, 0xFFFE extensible), channels u16, rate u32,
#            bytes/s u32, block align u16, bits/sample u16, [cb u16, valid bits u16, mask u32, GUID 16]
#   'data' : interleaved samples, little-endian; 8-bit is unsigned, wider PCM is signed.
# The extensible GUID's first two bytes are the real format tag. The stdlib ``wave`` module of
# Python 3.11 reads neither float nor extensible files (sox writes 24-bit and >2 channels as extensible),
# so the header is parsed here and the data is streamed from the file.

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class WavSource(_ChunkedSource):
    """A WAV file: 8-bit unsigned, 16/24/32-bit signed or 32/64-bit float PCM, any channels and rate."""

    def __init__(self, path: str | Path, *, start: datetime | None = None, blocksize: int = DEFAULT_BLOCKSIZE,
                 realtime: bool = False) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise AudioSourceError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        try:
            rate, channels, sample_format, size = _read_wav_header(f, self.path)
        except BaseException:
            f.close()
            raise
        self._file = f
        super().__init__(f, rate, channels, sample_format, start=start, blocksize=blocksize, realtime=realtime,
                         limit=size)
        self.frames = size // (SAMPLE_BYTES[sample_format] * channels)

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def close(self) -> None:
        super().close()
        self._file.close()


def _read_wav_header(f: BinaryIO, path: Path) -> tuple[int, int, str, int]:
    """(rate, channels, sample format, data size in bytes); ``f`` is left at the first sample."""
    riff = f.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise AudioSourceError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        head = f.read(8)
        if len(head) < 8:
            raise AudioSourceError(f"{path}: WAV file without a data chunk")
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"fmt ":
            body = f.read(size + (size & 1))
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioSourceError(f"{path}: WAV data chunk before its fmt chunk")
            tag, channels, rate, bits = fmt
            names = {(WAVE_FORMAT_PCM, 8): "u8", (WAVE_FORMAT_PCM, 16): "s16le", (WAVE_FORMAT_PCM, 24): "s24le",
                     (WAVE_FORMAT_PCM, 32): "s32le", (WAVE_FORMAT_IEEE_FLOAT, 32): "f32le",
                     (WAVE_FORMAT_IEEE_FLOAT, 64): "f64le"}
            if (tag, bits) not in names:
                raise AudioSourceError(f"{path}: unsupported WAV format (tag {tag:#x}, {bits} bits); "
                                       "use 8/16/24/32-bit PCM or 32/64-bit float (sox in.wav -b 16 out.wav)")
            if size == 0xFFFFFFFF or size == 0:  # streamed WAV (e.g. from a pipe): the size was never filled in
                size = 1 << 62
            return rate, channels, names[(tag, bits)], size
        else:
            f.seek(size + (size & 1), 1)


# --- raw PCM on stdin ------------------------------------------------------------------------------


class RawSource(_ChunkedSource):
    """Headerless interleaved PCM from a byte stream (``arecord -t raw | pttbridge ...``, ``sox ... -t raw -``)."""

    def __init__(self, stream: BinaryIO, rate: int, channels: int = 1, sample_format: str = "s16le", *,
                 start: datetime | None = None, blocksize: int = DEFAULT_BLOCKSIZE, realtime: bool = False) -> None:
        self.description = getattr(stream, "name", "raw stream")
        super().__init__(stream, rate, channels, sample_format, start=start, blocksize=blocksize, realtime=realtime)


# --- capture devices -------------------------------------------------------------------------------


def load_sounddevice() -> ModuleType:
    """The sounddevice module, or an error that says how to get PortAudio (sounddevice raises OSError)."""
    try:
        return importlib.import_module("sounddevice")
    except OSError as exc:
        raise AudioSourceError(
            f"the PortAudio library is missing ({exc}); install it with: apt-get install libportaudio2"
        ) from exc
    except ImportError as exc:
        raise AudioSourceError(f"the sounddevice package is missing ({exc}); pip install sounddevice") from exc


def list_devices() -> list[dict[str, Any]]:
    """Every audio device PortAudio sees, for ``pttbridge audio-devices``."""
    sd = load_sounddevice()
    hostapis = sd.query_hostapis()
    try:
        default_in = int(sd.default.device[0])
    except (TypeError, ValueError):
        default_in = -1
    return [
        {
            "index": int(d["index"]),
            "name": str(d["name"]),
            "hostapi": str(hostapis[d["hostapi"]]["name"]),
            "inputs": int(d["max_input_channels"]),
            "outputs": int(d["max_output_channels"]),
            "default_rate": float(d["default_samplerate"]),
            "default_input": int(d["index"]) == default_in,
        }
        for d in sd.query_devices()
    ]


def find_input_device(device: int | str | None) -> int | None:
    """The PortAudio index of an input device given by index, exact name or unique name substring.

    None or "" is the system default input. An unknown or ambiguous name raises an error listing the
    input devices that exist.
    """
    return _find_device(device, "inputs", "input")


def find_output_device(device: int | str | None) -> int | None:
    """Like :func:`find_input_device`, for the devices a transmitter plays into."""
    return _find_device(device, "outputs", "output")


def _find_device(device: int | str | None, count: str, what: str) -> int | None:
    if device is None or device == "":
        return None
    found = [d for d in list_devices() if d[count] > 0]
    short = "in" if count == "inputs" else "out"
    listing = "; ".join(f"{d['index']}: {d['name']} ({d[count]} {short})" for d in found) or "none"
    if isinstance(device, int) or device.strip().isdigit():
        index = int(device)
        if any(d["index"] == index for d in found):
            return index
        raise AudioSourceError(f"no {what} device with index {index}; {what} devices: {listing}")
    exact = [d for d in found if d["name"].lower() == device.lower()]
    matches = exact or [d for d in found if device.lower() in d["name"].lower()]
    if len(matches) == 1:
        return int(matches[0]["index"])
    if not matches:
        raise AudioSourceError(f"no {what} device matches {device!r}; {what} devices: {listing}")
    names = ", ".join(repr(d["name"]) for d in matches)
    raise AudioSourceError(f"{what} device {device!r} is ambiguous ({names}); give an index or a full name")


class DeviceSource(AudioSource):
    """Live capture from a sound card through sounddevice (PortAudio), timed by the wall clock.

    PortAudio calls back on its own thread; blocks go through a bounded queue so that a slow consumer
    costs dropped blocks (counted in :attr:`dropped`), never a stalled audio thread. Overflows reported
    by the card are counted in :attr:`overflows`.
    """

    def __init__(self, device: int | str | None = None, rate: int = 48000, channels: int = 1,
                 blocksize: int | None = None, *, queue_blocks: int = 256) -> None:
        # 20 ms blocks by default: a block ends where a live voice frame ends (frames are cut from the first
        # sample on), so a frame goes out as soon as its last sample is captured, not up to a block later.
        blocksize = blocksize or max(1, rate // 50)
        self.sd = load_sounddevice()
        self.device = find_input_device(device)
        self.description = f"device:{device if device not in (None, '') else 'default'}"
        self.rate, self.channels, self.blocksize = rate, channels, blocksize
        self.overflows = 0
        self.dropped = 0
        # A SimpleQueue bounded by hand: a block is then a C call on each side, not queue.Queue's condition
        # variables in Python (50 blocks a second a card, and a gateway may have many cards).
        self._queue: queue.SimpleQueue[tuple[Block, datetime] | None] = queue.SimpleQueue()
        self._queue_blocks = queue_blocks
        self._closed = threading.Event()
        try:
            self._stream = self.sd.InputStream(device=self.device, samplerate=rate, channels=channels,
                                               blocksize=blocksize, dtype="float32", callback=self._callback)
            self._stream.start()
        except (self.sd.PortAudioError, ValueError) as exc:
            raise AudioSourceError(f"cannot capture from {self.description} at {rate} Hz x{channels}: {exc}") from exc
        log.info("capturing from %s (%s) at %d Hz x%d", self.description, self.device, rate, channels)

    def _callback(self, indata: npt.NDArray[np.float32], frames: int, _time: Any, status: Any) -> None:
        now = datetime.now(UTC)
        if status.input_overflow:
            self.overflows += 1
        if self._queue.qsize() >= self._queue_blocks:
            self.dropped += 1
            return
        # The first frame was heard one block ago (PortAudio's ADC times are 0 on some ALSA plugins).
        self._queue.put((indata.copy(), now - timedelta(seconds=frames / self.rate)))

    def blocks(self) -> Iterator[tuple[Block, datetime]]:
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                if not self._stream.active and not self._closed.is_set():
                    raise AudioSourceError(f"{self.description} stopped delivering audio") from None
                continue
            if item is None:
                return
            yield item

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._stream.stop()
            self._stream.close()
        except self.sd.PortAudioError as exc:
            log.warning("%s: closing: %s", self.description, exc)
        self._queue.put(None)  # past the bound if need be: the reader stops there


# --- opening by address ----------------------------------------------------------------------------


def open_source(spec: str, *, rate: int | None = None, channels: int | None = None, sample_format: str | None = None,
                blocksize: int | None = None, start: datetime | None = None, realtime: bool = False,
                stdin: BinaryIO | None = None) -> AudioSource:
    """Open a source by address (see the module docstring); keyword arguments fill what the query leaves out."""
    scheme, _, rest = spec.partition(":") if ":" in spec and spec.split(":", 1)[0] in SCHEMES else ("", "", spec)
    target, _, query = rest.partition("?")
    opts: Mapping[str, str] = dict(parse_qsl(query))
    unknown = set(opts) - {"rate", "channels", "format", "blocksize", "realtime"}
    if unknown:
        raise AudioSourceError(f"audio source {spec!r}: unknown option {', '.join(sorted(unknown))}")
    q_rate = int(opts["rate"]) if "rate" in opts else rate
    q_channels = int(opts["channels"]) if "channels" in opts else channels
    q_block = int(opts["blocksize"]) if "blocksize" in opts else blocksize
    q_format = opts.get("format", sample_format or "s16le")
    q_realtime = opts.get("realtime", "").lower() in ("1", "true", "yes") or realtime
    if scheme == "device":
        return DeviceSource(unquote(target) or None, q_rate or 48000, q_channels or 1, q_block)
    if scheme == "stdin" or (not scheme and target == "-"):
        if not q_rate:
            raise AudioSourceError(f"audio source {spec!r}: raw PCM needs a rate (e.g. '-?rate=8000')")
        return RawSource(stdin or sys.stdin.buffer, q_rate, q_channels or 1, q_format, start=start,
                         blocksize=q_block or DEFAULT_BLOCKSIZE, realtime=q_realtime)
    if scheme == "file":
        target = unquote(urlsplit(spec.partition("?")[0]).path)
    return WavSource(target, start=start, blocksize=q_block or DEFAULT_BLOCKSIZE, realtime=q_realtime)


SCHEMES = ("wav", "file", "stdin", "device")


# --- resampling ------------------------------------------------------------------------------------


def _kaiser_lowpass(numtaps: int, cutoff: float, beta: float) -> npt.NDArray[np.float64]:
    """A windowed-sinc low-pass (cutoff as a fraction of Nyquist), unit gain at DC: scipy's
    ``firwin(numtaps, cutoff, window=("kaiser", beta))``, without importing scipy.signal (most of a
    second of start-up for ``pttbridge decode``)."""
    n = np.arange(numtaps) - (numtaps - 1) / 2
    h: npt.NDArray[np.float64] = cutoff * np.sinc(cutoff * n) * np.kaiser(numtaps, beta)
    return np.asarray(h / float(h.sum()), np.float64)


class Resampler:
    """Streaming rational resampler of one channel: a polyphase FIR whose input history is carried over.

    The filter is the one of ``scipy.signal.resample_poly`` (Kaiser window, beta 5, 10 * max(up, down)
    taps each side, cutoff at the lower Nyquist frequency), and its group delay is taken out: after
    :meth:`flush`, the concatenated output equals ``resample_poly`` of the whole signal, however the input
    was cut into blocks. While streaming, output lags input by half the filter (``delay_s``, 1.25 ms for
    44100 -> 8000) because those samples need input not yet heard.

    Output sample k is the upsampled-by-L signal filtered and taken at n = k*M + D (D = half the filter):
    y[k] = sum_t h[p + t*L] * x[n//L - t] with p = n % L, so each output needs one row of the polyphase
    matrix and T = ceil(len(h)/L) past inputs.

    The phases repeat every L outputs, which take M inputs: outputs qL .. qL+L-1 are the input seen
    through windows M apart (a strided view, no copy) times fixed matrices of the filter's taps. The
    period's outputs are taken in groups of about T L / M consecutive phases, each with its own window of
    about 2T inputs: one (W, L) matrix, W = M + T, would be mostly zeros (each output uses T of its W
    rows: 22050 -> 8000 did 17 times the multiplications needed), and the groups' windows, narrower than
    M, are views that the matrix product reads in place. One matrix product per group then makes that
    group of every whole period of a block; the few outputs either side of them are gathered one by one.
    """

    def __init__(self, from_rate: int, to_rate: int, *, half_width: int = 10, beta: float = 5.0) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, not {from_rate} -> {to_rate}")
        ratio = Fraction(to_rate, from_rate)
        self.from_rate, self.to_rate = from_rate, to_rate
        self.up, self.down = ratio.numerator, ratio.denominator
        self.passthrough = self.up == self.down
        max_rate = max(self.up, self.down)
        half_len = half_width * max_rate if not self.passthrough else 0
        h = _kaiser_lowpass(2 * half_len + 1, 1.0 / max_rate, beta) * self.up if half_len else np.ones(1)
        self.taps = math.ceil(len(h) / self.up)
        padded = np.zeros(self.taps * self.up)
        padded[: len(h)] = h
        self._poly = padded.reshape(self.taps, self.up).T.copy()  # row p = h[p], h[p+L], h[p+2L], ...
        self._delay = half_len
        self.delay_s = half_len / (self.up * from_rate)
        self._period = self._period_matrix()
        self.reset()

    def _period_matrix(self) -> list[tuple[int, int, int, npt.NDArray[np.float64]]] | None:
        """Per group of output phases k0 .. k1-1: (lowest input offset, k0, k1, the (W, k1 - k0) taps) that
        turn a window of W inputs into those outputs of a whole period (see the class docstring); None
        where the matrices would be large."""
        if self.passthrough:
            return None
        k = np.arange(self.up)
        n = k * self.down + self._delay
        newest = n // self.up  # inputs of output k of period 0
        if (int(newest[-1]) - int(newest[0]) + self.taps) * self.up > 1 << 22:
            return None
        size = max(1, -(-self.taps * self.up // self.down))  # phases per group: new inputs about T
        groups = []
        for k0 in range(0, self.up, size):
            k1 = min(self.up, k0 + size)
            low = int(newest[k0]) - (self.taps - 1)
            m = np.zeros((int(newest[k1 - 1]) - low + 1, k1 - k0))
            for t in range(self.taps):
                m[newest[k0:k1] - t - low, k[k0:k1] - k0] = self._poly[n[k0:k1] % self.up, t]
            groups.append((low, k0, k1, m))
        return groups

    def reset(self) -> None:
        # Inputs before the first are zeros: the buffer starts with T of them at indices -T..-1.
        self._buf = np.zeros(self.taps)
        self._buf_start = -self.taps
        self._next = 0  # index of the next output sample
        self._n_in = 0

    def feed(self, x: npt.ArrayLike) -> Samples:
        """Resample the next block (1-D, any length); returns the output samples it completed."""
        block = np.asarray(x, dtype=np.float64).reshape(-1)
        if self.passthrough:
            return block.astype(np.float32)
        self._n_in += len(block)
        self._buf = np.concatenate([self._buf, block])
        # Output k is ready once its newest input (k*M + D) // L has arrived.
        end = (self._n_in * self.up - 1 - self._delay) // self.down + 1
        out = self._compute(self._next, max(end, self._next))
        self._trim()
        return out

    def flush(self) -> Samples:
        """The outputs still held back by the filter delay (input taken as zeros after the end); then reset.

        The whole output then has ceil(n_in * to / from) samples, as ``resample_poly`` gives.
        """
        if self.passthrough:
            return np.zeros(0, np.float32)
        total = -(-self._n_in * self.up // self.down)
        pad = self._delay // self.up + 2
        self._buf = np.concatenate([self._buf, np.zeros(pad)])
        out = self._compute(self._next, max(total, self._next))
        self.reset()
        return out

    def _compute(self, first: int, end: int) -> Samples:
        """Outputs ``first`` .. ``end`` - 1: whole periods by the period matrix, the rest by a gather."""
        out = np.empty(end - first, np.float32)
        if self._period is not None:
            lo = -(-first // self.up) * self.up
            hi = max(lo, end // self.up * self.up)
            if hi > lo:
                periods = (hi - lo) // self.up
                whole = out[lo - first : hi - first].reshape(periods, self.up)
                step = self._buf.strides[0]
                for low, k0, k1, m in self._period:
                    start = (lo // self.up) * self.down + low - self._buf_start
                    view = strided(self._buf[start:], (periods, m.shape[0]), (self.down * step, step))
                    whole[:, k0:k1] = view @ m
                self._gather(out, first, first, lo)
                self._gather(out, first, hi, end)
                self._next = end
                return out
        self._gather(out, first, first, end)
        self._next = end
        return out

    def _gather(self, out: Samples, first: int, begin: int, end: int, batch: int = 4096) -> None:
        """Outputs ``begin`` .. ``end`` - 1 into ``out`` (whose first is output ``first``), one at a time."""
        t = np.arange(self.taps)
        for lo in range(begin, end, batch):
            k = np.arange(lo, min(lo + batch, end))
            n = k * self.down + self._delay
            newest = n // self.up - self._buf_start
            rows = self._poly[n % self.up]  # (K, T)
            window = self._buf[newest[:, None] - t[None, :]]  # (K, T): x[i0], x[i0-1], ...
            out[lo - first : lo - first + len(k)] = np.einsum("kt,kt->k", rows, window)

    def _trim(self) -> None:
        oldest_needed = (self._next * self.down + self._delay) // self.up - (self.taps - 1)
        drop = oldest_needed - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop


# --- levels and channels ---------------------------------------------------------------------------

LEVEL_FLOOR_DBFS = -120.0  # reported for silence, so the health stays plain JSON (no -inf)
CLIP_THRESHOLD = 0.999  # |x| at or above this is counted clipped: within 0.01 dB of full scale


def dbfs(value: float) -> float:
    """20 log10 of an amplitude relative to full scale (1.0), floored at :data:`LEVEL_FLOOR_DBFS`."""
    return round(max(20.0 * math.log10(value), LEVEL_FLOOR_DBFS), 2) if value > 0 else LEVEL_FLOOR_DBFS


class LevelMeter:
    """Input levels per channel over fixed windows, for the gateway's health, so a technician can set levels.

    RMS is relative to a full-scale square wave, so a full-scale sine reads -3.01 dBFS RMS and 0 dBFS peak.
    :meth:`as_dict` reports the last complete window (or the current one before the first completes) and
    the clipped samples since start.

    Blocks are gathered to ``gather_s`` before they are measured (and whenever :meth:`as_dict` reads): a
    sound card's 20 ms block is a dozen numpy calls whatever its size, and a gateway of many cards made
    them on each card's thread, 50 times a second, each holding the interpreter's lock.
    """

    def __init__(self, rate: int, channels: int = 1, *, window_s: float = 1.0,
                 clip_threshold: float = CLIP_THRESHOLD, gather_s: float = 0.1) -> None:
        self.rate, self.channels, self.window_s = rate, channels, window_s
        self.window_frames = max(1, round(rate * window_s))
        self.clip_threshold = clip_threshold
        self.clipped_total = np.zeros(channels, np.int64)
        self._sumsq = np.zeros(channels)
        self._peak = np.zeros(channels)
        self._clipped = np.zeros(channels, np.int64)
        self._frames = 0
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None
        self._gather_frames = max(1, round(rate * gather_s))
        self._held: list[np.ndarray] = []  # copies of the blocks not yet measured
        self._held_frames = 0
        self._lock = threading.Lock()

    def feed(self, block: npt.ArrayLike) -> None:
        """Account a block shaped (frames, channels), or (frames,) for one channel."""
        x = np.array(block, dtype=np.float64)  # a copy: the caller's block may change after
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.channels:
            raise ValueError(f"level meter of {self.channels} channels fed a block of {x.shape[1]}")
        with self._lock:
            self._held.append(x)
            self._held_frames += len(x)
            if self._held_frames >= self._gather_frames:
                self._measure()

    def _measure(self) -> None:
        """The held blocks into the windows (under the lock)."""
        x = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        self._held, self._held_frames = [], 0
        while len(x):
            part, x = x[: self.window_frames - self._frames], x[self.window_frames - self._frames :]
            a = np.abs(part)
            self._sumsq += np.einsum("fc,fc->c", part, part)
            self._peak = np.maximum(self._peak, a.max(axis=0))
            clipped = (a >= self.clip_threshold).sum(axis=0)
            self._clipped += clipped
            self.clipped_total += clipped
            self._frames += len(part)
            if self._frames == self.window_frames:
                self._last = (self._sumsq, self._peak, self._clipped, self._frames)
                self._sumsq, self._peak = np.zeros(self.channels), np.zeros(self.channels)
                self._clipped, self._frames = np.zeros(self.channels, np.int64), 0

    def as_dict(self) -> dict[str, Any]:
        """``{"window_s", "channels": [{"rms_dbfs", "peak_dbfs", "clipped", "clipped_total"}, ...]}``."""
        with self._lock:
            if self._held:
                self._measure()
            sumsq, peak, clipped, frames = self._last or (self._sumsq, self._peak, self._clipped, self._frames)
            return {
                "window_s": self.window_s,
                "channels": [
                    {
                        "rms_dbfs": dbfs(math.sqrt(sumsq[c] / frames)) if frames else LEVEL_FLOOR_DBFS,
                        "peak_dbfs": dbfs(float(peak[c])),
                        "clipped": int(clipped[c]),
                        "clipped_total": int(self.clipped_total[c]),
                    }
                    for c in range(self.channels)
                ],
            }


class ChannelSplitter:
    """Mono channels out of a multi-channel block: several radios on the inputs of one interface.

    ``select`` picks and orders channels (0-based), e.g. ``[1, 3]`` for the radios on inputs 2 and 4.
    """

    def __init__(self, channels: int, select: Sequence[int] | None = None) -> None:
        self.channels = channels
        self.select = list(range(channels)) if select is None else list(select)
        bad = [c for c in self.select if not 0 <= c < channels]
        if bad:
            raise ValueError(f"channel(s) {bad} out of range for a {channels}-channel source (0..{channels - 1})")

    def split(self, block: Block) -> list[Samples]:
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(f"expected a (frames, {self.channels}) block, got shape {block.shape}")
        return [np.ascontiguousarray(block[:, c]) for c in self.select]


__all__ = [
    "FILE_EPOCH",
    "AudioSource",
    "AudioSourceError",
    "ChannelSplitter",
    "DeviceSource",
    "LevelMeter",
    "RawSource",
    "Resampler",
    "WavSource",
    "find_input_device",
    "list_devices",
    "open_source",
    "pcm_to_float",
]
