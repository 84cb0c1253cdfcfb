"""The gateway's live voice: channels' receive audio to listening consoles, dispatchers' audio to the radio.

    audio driver ──tap (48 kHz)──▶ ChannelVoice.feed ──20 ms──▶ busy? (COR, or level over threshold_dbfs,
                                         │                       held hang_ms) ──▶ Opus ──▶ voice/{ch}/rx
                                         │                       only while a lease is alive (QoS 0)
                                         └──▶ patched channels (their transmitters), unless this one is talking
    voice/{ch}/listen ──▶ leases (per console, lease_s, renewed)
    voice/{ch}/floor ──▶ floor control ──▶ voice/{ch}/floor/answer (granted with a stream id, or refused)
    voice/{ch}/tx ──▶ StreamTracker (only the granted stream) ──▶ Playout (order, conceal, bound) ──▶
                       Transmitter.stream: PTT, lead-in, audio, tail, release ──▶ a ``call`` event, transmitted
    voice/{ch}/state (retained) ◀── busy, unit, level, talker, keyed, listeners, remote monitor, patch
    another gateway's channel in a patch (RemoteMember): leased and heard, and talked on, as a console does

Floor rules, at the gateway that owns the channel's transmitter (so one talker per channel across every
console): a channel without a transmit path refuses; one dispatcher (or a patch) at a time, and a
request while another holds it is refused with who holds it; radio traffic on the channel refuses unless
the request says ``override``; the radio's transmitter busy with something else (an acknowledgement
burst) refuses; of two requests at once the first handled wins (they are handled one at a time). A
granted talker whose audio stops for ``silence_ms`` loses the floor (PTT released: the console went
away), as does one past the transmit ``timeout_s``; the answer ``released`` says why.

The voice has an MQTT connection of its own (client id ``...-voice``), so a flood of frames can never
hold up the outbox's events, and the other way round. Frames that are refused (not voice, not the
granted stream, out of range) are counted and logged at most once a second per reason; nothing keys a
radio but a granted floor.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from config.mqtt import make_client
from config.schema import ChannelConfig, ConfigError, MqttConfig, PatchConfig, VoiceConfig
from drivers.audio.base import Samples
from drivers.audio.recorder import flac
from drivers.audio.source import Resampler
from gateway.answer import AnswerError, remote_monitor_burst
from gateway.events import Decoded, Kind, is_unit, printable
from gateway.transmit import Transmitter, TxReport
from gateway.voice import (
    ANSWER,
    FLOOR,
    FRAME_MS,
    FRAME_SAMPLES,
    LISTEN,
    RATE,
    RX,
    STATE,
    TX,
    FloorAnswer,
    FloorRequest,
    FloorResult,
    FramePacker,
    ListenLease,
    OpusDecoder,
    OpusEncoder,
    PatchCommand,
    RemoteMonitor,
    StreamTracker,
    Talker,
    VoiceError,
    VoiceFrame,
    VoiceState,
    parse_frame,
    parse_voice_topic,
    random_id,
    seq_delta,
    voice_topic,
)

log = logging.getLogger(__name__)

LEVEL_S = 1.0  # the state's level is refreshed this often while someone listens
UNIT_AFTER_S = 2.0  # a post-key-up ID decoded this long after a spurt still names it
MAX_PLAYOUT_S = 2.0  # dispatcher audio buffered past this is dropped, oldest first (latency stays bounded)
QUIET_DBFS = -45.0  # a frame this quiet may be skipped to catch up with a backlog
KEEP_PAUSE = 3  # frames of every pause kept when catching up (60 ms: DTMF's pauses are 40 ms or more)
MONITOR_CONSOLE = "remote-monitor"  # the lease a remote monitor holds


def _dbfs(x: Samples) -> float:
    # One product, not np.mean's Python layers: this is every channel's every 20 ms frame.
    y = np.asarray(x, np.float64)
    rms = math.sqrt(float(y @ y) / len(y)) if len(y) else 0.0
    return 20 * math.log10(rms) if rms > 1e-10 else -200.0


class Playout:
    """A talker's frames in, 20 ms blocks of audio out as the radio's output asks (sans-I/O).

    Frames are put in any order (the stream tracker has refused duplicates and strangers); playing
    starts once ``prebuffer`` frames are in (the jitter buffer), goes by sequence number, conceals a frame
    that is missing when later ones are there (libopus's concealment), conceals a few frames on an
    underrun and then plays silence. A backlog (speech said while PTT was keying and during the lead-in,
    a burst after a network stall) is caught up by skipping quiet frames while more than ``prebuffer``
    wait, so speech is never cut for it; past ``max_depth`` the oldest are dropped. After :meth:`end` it
    plays out what it holds and then answers None."""

    def __init__(self, decoder: OpusDecoder, *, prebuffer: int = 3, max_depth: int = 15) -> None:
        self.decoder, self.prebuffer, self.max_depth = decoder, max(prebuffer, 1), max(max_depth, prebuffer + 1)
        self._frames: dict[int, VoiceFrame] = {}
        self._next: int | None = None
        self._started = False
        self._ended = False
        self._concealed_run = 0
        self._quiet_run = 0  # quiet frames played in a row
        self.played = self.concealed = self.dropped = self.skipped = self.errors = 0

    def put(self, frame: VoiceFrame) -> None:
        if self._next is not None and seq_delta(frame.seq, self._next) < 0:
            self.dropped += 1  # came after its turn was concealed
            return
        self._frames[frame.seq] = frame
        if frame.end:
            self._ended = True

    def end(self) -> None:
        self._ended = True

    @property
    def depth(self) -> int:
        return len(self._frames)

    @property
    def starved(self) -> bool:
        """Waiting on the talker: nothing left to play (or too little yet to start) and no end said."""
        return (not self._frames or not self._started) and not self._ended

    def _decode(self, frame: VoiceFrame) -> Samples:
        assert self._next is not None
        self._next = (self._next + 1) % 2**32
        self._concealed_run = 0
        try:
            return self.decoder.decode(frame.opus)
        except VoiceError as exc:
            self.errors += 1
            log.warning("voice: %s", exc)
            return self.decoder.conceal()

    def _oldest(self) -> int:
        first = next(iter(self._frames))
        return min(self._frames, key=lambda s: seq_delta(s, first))

    def next_block(self) -> Samples | None:
        if not self._started:
            if len(self._frames) >= self.prebuffer or (self._ended and self._frames):
                self._started, self._next = True, self._oldest()
            elif self._ended:
                return None
            else:
                return np.zeros(FRAME_SAMPLES, np.float32)  # the radio keyed, the talker's audio not there yet
        assert self._next is not None
        while len(self._frames) > self.max_depth:
            del self._frames[self._oldest()]
            self.dropped += 1
            self._next = self._oldest()
        frame = self._frames.pop(self._next, None)
        if frame is not None:
            pcm = self._decode(frame)
            # Behind: a pause longer than KEEP_PAUSE frames is shortened (the next frame played in place of a
            # quiet one); the start of every pause is kept, so syllables and DTMF digits stay apart.
            while (_dbfs(pcm) < QUIET_DBFS and self._quiet_run >= KEEP_PAUSE and len(self._frames) > self.prebuffer
                   and self._next in self._frames):
                self.skipped += 1
                pcm = self._decode(self._frames.pop(self._next))
            self._quiet_run = self._quiet_run + 1 if _dbfs(pcm) < QUIET_DBFS else 0
            self.played += 1
            return pcm
        if self._frames:  # lost in the network: later frames are here
            self._next = (self._next + 1) % 2**32
            self.concealed += 1
            return self.decoder.conceal()
        if self._ended:
            return None
        self._concealed_run += 1  # late: conceal a little, then silence, without giving up its turn
        if self._concealed_run <= 3:
            self.concealed += 1
            return self.decoder.conceal()
        return np.zeros(FRAME_SAMPLES, np.float32)


class PcmFeed:
    """Audio already decoded (a patched channel's receive audio) as a talk's source: a bounded queue."""

    def __init__(self, max_blocks: int = 50) -> None:
        self._blocks: list[Samples] = []
        self._ended = False
        self.max_blocks = max_blocks
        self.dropped = 0

    def put(self, pcm: Samples) -> None:
        self._blocks.append(pcm)
        if len(self._blocks) > self.max_blocks:
            self._blocks.pop(0)
            self.dropped += 1

    def end(self) -> None:
        self._ended = True

    @property
    def starved(self) -> bool:
        return not self._blocks and not self._ended

    def next_block(self) -> Samples | None:
        if self._blocks:
            return self._blocks.pop(0)
        return None if self._ended else np.zeros(FRAME_SAMPLES, np.float32)


@dataclass
class _Talk:
    """A dispatcher (or a patch) holding a channel's floor."""

    console: str
    operator: str
    request: str | None
    stream: int
    source: Playout | PcmFeed
    tracker: StreamTracker | None  # None: a patch's audio, handed over decoded
    since: datetime
    heard_at: float  # monotonic time of the last audio received (the grant, at first)
    patch: str | None = None
    granted: bool = False  # PTT keyed and the talker told
    end_reason: str | None = None
    recorded: list[Samples] = field(default_factory=list)
    resampler: Resampler | None = None


class ChannelVoice:
    """One channel's live voice: the receive stream, leases, the floor and the talk under way."""

    def __init__(self, service: VoiceService, name: str) -> None:
        self.service, self.name = service, name
        self.cfg = VoiceConfig()
        self.cor = False  # busy follows the radio's COR instead of the level
        self.transmit_reason: str | None = "has no transmit section"  # None: it can transmit
        self.patch: str | None = None
        self._lock = threading.RLock()
        self._rate_in = RATE  # the receive audio's rate, the driver's device's
        self._pending = np.zeros(0, np.float32)
        self._up: Resampler | None = None  # to 48 kHz, while someone hears the channel
        self._held = np.zeros(0, np.float32)  # resampled, short of a frame
        self._packer: FramePacker | None = None
        self._streaming = False
        self._leases: dict[str, float] = {}  # console -> expiry (monotonic)
        self._carrier = False
        self.busy = False
        self._hang_left = 0  # frames of quiet still busy
        self.unit: str | None = None
        self._spurt_end_at = 0.0
        self._level_sum, self._level_n = 0.0, 0
        self.level_dbfs: float | None = None
        self._level_at = 0.0
        self.talk: _Talk | None = None
        self.keyed = False
        self.monitor: dict[str, Any] | None = None
        self.frames_sent = 0
        self._feeding: set[str] = set()  # patched channels this one's audio is being transmitted on

    # --- configuration ----------------------------------------------------------------------------

    def configure(self, channel: ChannelConfig, transmitter: Transmitter | None) -> None:
        with self._lock:
            new = channel.voice or VoiceConfig()
            if new.bitrate != self.cfg.bitrate:
                self._packer = None
            self.cfg = new
            self.cor = channel.record is not None and channel.record.detect == "cor"
            if transmitter is not None:
                self.transmit_reason = None
            elif channel.receive_only:
                self.transmit_reason = "is receive-only: the radio does not transmit there"
            else:
                self.transmit_reason = "has no transmit section"

    # --- receive ------------------------------------------------------------------------------------

    def feed(self, block: Samples, start: datetime, rate: int = RATE) -> None:
        """The channel's receive audio at ``rate`` (the audio driver's thread, at its device's rate), taken
        in 20 ms frames: each frame's level says whether the channel is busy, and only the frames someone
        hears (a listener, a patch) are resampled to 48 kHz: a channel nobody hears costs its levels."""
        patched: list[Samples | None] = []
        with self._lock:
            if rate != self._rate_in:
                self._rate_in, self._pending, self._up = rate, np.zeros(0, np.float32), None
            step = max(1, round(rate * FRAME_MS / 1000))
            x = np.concatenate([self._pending, block]) if len(self._pending) else block
            n = len(x) // step * step
            self._pending = x[n:].copy()
            for at in range(0, n, step):
                self._frame(x[at:at + step], patched)
        for item in patched:  # outside this channel's lock: the patched channels take their own
            self.service.patch_audio(self, item)

    def _at_48k(self, frame: Samples) -> list[Samples]:
        """The 48 kHz frames a receive frame completes."""
        if self._rate_in == RATE:
            return [frame]
        if self._up is None:
            self._up, self._held = Resampler(self._rate_in, RATE), np.zeros(0, np.float32)
        y = np.concatenate([self._held, self._up.feed(frame)])
        n = len(y) // FRAME_SAMPLES * FRAME_SAMPLES
        self._held = y[n:]
        return [y[at:at + FRAME_SAMPLES] for at in range(0, n, FRAME_SAMPLES)]

    def _frame(self, frame: Samples, patched: list[Samples | None]) -> None:
        now = self.service.clock()
        level = _dbfs(frame)
        self._level_sum += 10 ** (level / 10)
        self._level_n += 1
        active = self._carrier if self.cor else level > self.cfg.threshold_dbfs
        was = self.busy
        if active:
            self._hang_left = round(self.cfg.hang_ms / FRAME_MS)
            self.busy = True
        elif self._hang_left > 0:
            self._hang_left -= 1
        else:
            self.busy = False
        changed = was != self.busy
        if self.busy and not was and now - self._spurt_end_at > UNIT_AFTER_S:
            self.unit = None  # a new transmission: who talks is not known yet
        if was and not self.busy:
            self._spurt_end_at = now
        listened = self._listened(now)
        # A patch: what this channel receives goes out on the others, unless this channel is talking
        # itself (its receive audio then is, or may be, what the patch transmits: never fed back).
        patching = self.patch is not None and self.talk is None and not self.keyed
        heard: list[Samples] = []
        if self.busy and (listened or patching):
            heard = self._at_48k(frame)
        else:
            self._up = None  # heard again, it starts afresh
        if self.busy and listened:
            if self._packer is None:
                self._packer = FramePacker(OpusEncoder(self.cfg.bitrate))
            for pcm in heard:
                for voice_frame in self._packer.feed(pcm, unit=self.unit):
                    self._send(voice_frame)
            self._streaming = True
        elif self._streaming and self._packer is not None:
            last = self._packer.end(unit=self.unit)
            if last is not None:
                self._send(last)
            self._streaming = False
        elif self._packer is not None:
            self._packer.skip(FRAME_SAMPLES)
        if patching:
            patched += heard if self.busy else [None]
        if changed or (listened and now - self._level_at >= LEVEL_S):
            self._close_level(now)
            self.service.publish_state(self)

    def _close_level(self, now: float) -> None:
        if self._level_n:
            self.level_dbfs = round(10 * np.log10(max(self._level_sum / self._level_n, 1e-20)), 1)
        self._level_sum, self._level_n, self._level_at = 0.0, 0, now

    def _send(self, frame: VoiceFrame) -> None:
        self.frames_sent += 1
        self.service.publish_frame(self, frame)

    def _listened(self, now: float) -> bool:
        return any(until > now for until in self._leases.values())

    def listeners(self, now: float) -> int:
        return sum(1 for console, until in self._leases.items() if until > now and console != MONITOR_CONSOLE)

    def carrier(self, on: bool) -> None:
        with self._lock:
            self._carrier = on

    def identified(self, unit: str) -> None:
        """A unit identified itself on the channel (a PTT ID, an emergency): it is who is talking."""
        with self._lock:
            now = self.service.clock()
            if self.busy or now - self._spurt_end_at <= UNIT_AFTER_S:
                self.unit = unit
                self.service.publish_state(self)

    def lease(self, lease: ListenLease) -> None:
        with self._lock:
            now = self.service.clock()
            before = self.listeners(now)
            if lease.lease_s <= 0:
                self._leases.pop(lease.console, None)
            else:
                self._leases[lease.console] = now + lease.lease_s
            if self.listeners(now) != before:
                log.info("%s: %d listening (%s %s)", self.name, self.listeners(now), lease.console,
                         "left" if lease.lease_s <= 0 else "listens")
                self.service.publish_state(self)

    def expire(self, now: float) -> bool:
        """Leases and a remote monitor that ran out; True if that changed anything."""
        with self._lock:
            gone = [c for c, until in self._leases.items() if until <= now]
            for console in gone:
                del self._leases[console]
            if MONITOR_CONSOLE in gone:
                self.monitor = None
            return bool(gone)

    def hold_for_monitor(self, unit: str, seconds: float) -> None:
        with self._lock:
            now = self.service.clock()
            self._leases[MONITOR_CONSOLE] = now + seconds
            self.monitor = {"unit": unit, "until": datetime.fromtimestamp(time.time() + seconds, UTC)
                            .isoformat(timespec="seconds").replace("+00:00", "Z")}

    # --- talk -----------------------------------------------------------------------------------------

    def state(self) -> VoiceState:
        with self._lock:
            talk = self.talk
            # A patch's talk names the patch (its source, a channel maybe of another gateway, is no console).
            talker = None if talk is None else Talker(talk.patch or talk.console, talk.operator, talk.since)
            return VoiceState(self.name, self.busy, self.unit, self.level_dbfs, talker, self.keyed,
                              self.transmit_reason is None, self.listeners(self.service.clock()), self.monitor,
                              self.patch)


def _answer(req: FloorRequest, result: FloorResult, reason: str | None = None, *, stream: int | None = None,
            ready_ms: int | None = None) -> FloorAnswer:
    return FloorAnswer(req.request, req.console, req.operator, result, reason, stream, ready_ms)


class _Throttled:
    """Log a kind of refusal at most once a second, with how many there were meanwhile."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self.counts: dict[str, int] = {}

    def __call__(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        now = time.monotonic()
        at, held = self._last.get(kind, (0.0, 0))
        if now - at >= 1.0:
            more = f" (and {held} more since the last)" if held else ""
            log.warning("voice: %s%s", message, more)
            self._last[kind] = (now, 0)
        else:
            self._last[kind] = (at, held + 1)


class RemoteMember:
    """A channel of another gateway in a patch of this one (``GATEWAY/CHANNEL`` in ``[[patches]]``): this
    gateway listens to it as a console does (a lease, its frames decoded) and talks on it as a console
    does (the floor of that gateway, frames of the granted stream), as console ``{this gateway}`` with
    operator ``patch NAME``; that gateway's floor rules hold. Loop prevention: what it receives is held
    (not fed into the patch) from the floor request until a second after the talk on it ended, so its own
    transmission, heard back by its receiver, never returns into the patch."""

    HOLD_S = 1.0
    LEASE_S = 10.0
    BACKLOG = 50  # frames of audio kept while the floor is being granted (1 s)

    def __init__(self, service: VoiceService, key: str, patch: str) -> None:
        self.service, self.name, self.patch = service, key, patch
        self.gateway, self.channel = key.split("/", 1)
        self._feeding: set[str] = set()
        self._lock = threading.Lock()
        self._tracker = StreamTracker()
        self._decoder: OpusDecoder | None = None
        self._request: str | None = None  # our floor request on it, pending or granted
        self._source: str | None = None  # the patched channel whose audio goes out on it
        self._packer: FramePacker | None = None
        self._backlog: list[Samples] = []
        self._refused = False  # refused in this spurt: not asked again until the source falls quiet
        self._hold_until = 0.0
        self.frames_sent = 0

    def topic(self, leaf: str) -> str:
        return voice_topic(self.service.prefix, self.gateway, self.channel, leaf)

    def renew(self) -> None:
        lease = ListenLease(self.service.gateway, f"patch {self.patch}", self.LEASE_S)
        self.service.client.publish(self.topic(LISTEN), lease.to_json(), qos=1)

    # --- what it receives ---------------------------------------------------------------------------

    def on_rx(self, payload: bytes) -> None:
        frame = parse_frame(payload)
        with self._lock:
            if self._tracker.check(frame) is not None:
                return
            if self._request is not None or self.service.clock() < self._hold_until:
                return  # its receiver may be hearing what the patch transmits on it: held
            if self._decoder is None:
                self._decoder = OpusDecoder()
            pcm = self._decoder.decode(frame.opus)
        self.service.patch_audio(self, pcm)
        if frame.end:
            self.service.patch_audio(self, None)

    # --- what it transmits --------------------------------------------------------------------------

    def transmit(self, source: str, pcm: Samples | None) -> None:
        with self._lock:
            if pcm is None:
                if source == self._source:
                    self._end_talk()
                    self._refused = False
                return
            if self._refused or (self._source is not None and source != self._source):
                return
            if self._request is None:
                self._source, self._request = source, f"patch-{random_id():08x}"
                request = FloorRequest(self.service.gateway, f"patch {self.patch}", self._request)
                self.service.client.publish(self.topic(FLOOR), request.to_json(), qos=1)
            if self._packer is None:
                self._backlog = [*self._backlog, pcm][-self.BACKLOG:]
                return
            frames = self._packer.feed(pcm)
        for frame in frames:
            self._send(frame)

    def _send(self, frame: VoiceFrame) -> None:
        self.frames_sent += 1
        self.service.client.publish(self.topic(TX), frame.encode(), qos=0)

    def _end_talk(self) -> None:
        """Under the lock: the last frame (END) if talking, else the request withdrawn; receive held a while."""
        if self._packer is not None:
            last = self._packer.end()
            if last is not None:
                self._send(last)
        elif self._request is not None:
            release = FloorRequest(self.service.gateway, f"patch {self.patch}", self._request, "release")
            self.service.client.publish(self.topic(FLOOR), release.to_json(), qos=1)
        self._packer, self._request, self._source, self._backlog = None, None, None, []
        self._hold_until = self.service.clock() + self.HOLD_S

    def on_answer(self, payload: bytes) -> None:
        answer = FloorAnswer.from_json(payload)
        with self._lock:
            if answer.console != self.service.gateway or answer.request != self._request:
                return
            if answer.result == "granted" and answer.stream is not None and self._packer is None:
                self._packer = FramePacker(OpusEncoder(), stream=answer.stream)
                frames = [f for pcm in self._backlog for f in self._packer.feed(pcm)]
                self._backlog = []
            elif answer.result != "granted":
                log.info("patch %s: not transmitted on %s: %s", self.patch, self.name, answer.reason)
                self._refused = answer.result == "refused"
                self._packer, self._request, self._backlog = None, None, []
                self._hold_until = self.service.clock() + self.HOLD_S
                return
            else:
                return
        for frame in frames:
            self._send(frame)


class VoiceService:
    """Every channel's voice of one gateway, on an MQTT connection of its own."""

    def __init__(self, mqtt_cfg: MqttConfig, gateway: str, *,
                 transmitters: Callable[[], dict[str, Transmitter]],
                 submit: Callable[[str, Decoded, str | None, bytes | None], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.gateway = mqtt_cfg, gateway
        self.prefix = mqtt_cfg.prefix
        self.clock = clock
        self._transmitters = transmitters
        self._submit = submit  # (channel, decoded, event id, clip): an event into the outbox
        self.channels: dict[str, ChannelVoice] = {}
        self.patches: dict[str, list[str]] = {}  # every patch running: configured and made by dispatchers
        self._configured: list[PatchConfig] = []
        self._made: dict[str, list[str]] = {}  # patches dispatchers made (cmd/patch), by name
        self.remotes: dict[str, RemoteMember] = {}  # other gateways' channels in patches: "GATEWAY/CHANNEL"
        self._lock = threading.RLock()  # floor decisions, one at a time
        self.refused = _Throttled()
        self._stop = threading.Event()
        cfg = mqtt_cfg.model_copy(update={"client_id": f"{mqtt_cfg.client_id}-voice"}) if mqtt_cfg.client_id \
            else mqtt_cfg
        self.client = make_client(cfg, f"pttbridge-gw-{gateway}-voice")
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the voice subscriptions
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self._ticker = threading.Thread(target=self._tick, name="voice-ticker", daemon=True)

    # --- wiring into the gateway ---------------------------------------------------------------------

    def channel(self, name: str) -> ChannelVoice:
        with self._lock:
            if name not in self.channels:
                self.channels[name] = ChannelVoice(self, name)
            return self.channels[name]

    def tap_for(self, channel: ChannelConfig) -> Callable[[], ChannelVoice | None]:
        """What the channel's first audio input feeds its receive audio to."""
        taken = False

        def take() -> ChannelVoice | None:
            nonlocal taken
            if taken:
                return None
            taken = True
            return self.channel(channel.name)

        return take

    def local(self, member: str) -> str | None:
        """The channel name of a patch member of this gateway (``patrol-4`` or ``{this}/patrol-4``), else None."""
        gateway, slash, channel = member.partition("/")
        return channel if slash and gateway == self.gateway else None if slash else member

    def check_patches(self, channels: list[ChannelConfig], patches: list[PatchConfig]) -> dict[str, str]:
        """Each patched channel's patch; ConfigError naming a patch of a channel not here, or of one
        channel in two patches. ``GATEWAY/CHANNEL`` of another gateway is a remote member."""
        names = {c.name for c in channels}
        member: dict[str, str] = {}
        for i, patch in enumerate(patches):
            for entry in patch.channels:
                name = self.local(entry) or entry
                if "/" not in name and name not in names:
                    raise ConfigError(f"patches[{i}].channels: no channel {name!r} on this gateway")
                if name in member:
                    raise ConfigError(f"patches[{i}].channels: {name} is in patch {member[name]} already")
                member[name] = patch.name
        return member

    def configure(self, channels: list[ChannelConfig], patches: list[PatchConfig]) -> None:
        """The running plan's channels and the patches (raises ConfigError naming a patch that cannot be)."""
        self.check_patches(channels, patches)
        names = {c.name for c in channels}
        transmitters = self._transmitters()
        with self._lock:
            self._configured = list(patches)
            for name, members in list(self._made.items()):  # a patch made of a channel the plan removed ends
                if not set(members) <= names:
                    del self._made[name]
            for c in channels:
                self.channel(c.name).configure(c, transmitters.get(c.name))
            self._membership()
            gone = [name for name, ch in self.channels.items() if name not in names and ch.talk is None]
            for name in gone:  # a channel the plan removed: its retained state is cleared
                del self.channels[name]
                self.client.publish(self._t(name, STATE), b"", qos=1, retain=True)
        if self.connected.is_set():
            for c in channels:
                self.publish_state(self.channels[c.name])

    def _membership(self) -> None:
        """Each channel's patch, from the configured patches and those dispatchers made; the remote members."""
        self.patches = {p.name: [self.local(c) or c for c in p.channels] for p in self._configured} | self._made
        member = {c: name for name, chs in self.patches.items() for c in chs}
        for name, ch in self.channels.items():
            ch.patch = member.get(name)
        remotes = {c: name for c, name in member.items() if "/" in c}
        for key in set(self.remotes) - set(remotes):
            del self.remotes[key]
        for key, patch in remotes.items():
            if key not in self.remotes or self.remotes[key].patch != patch:
                self.remotes[key] = RemoteMember(self, key, patch)
                if self.connected.is_set():
                    self._follow(self.remotes[key])

    def _follow(self, remote: RemoteMember) -> None:
        self.client.subscribe([(remote.topic(RX), 0), (remote.topic(ANSWER), 1)])
        remote.renew()

    def patch_command(self, payload: bytes | dict[str, Any]) -> None:
        """``cmd/patch``: connect channels of this gateway, or take a patch a dispatcher made apart; the
        result goes back as an ``io`` event (and so into the bridge's audit)."""
        import json

        raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        detail: dict[str, Any] = {"protocol": "voice", "command": "patch"}
        try:
            cmd = PatchCommand.from_json(raw)
        except VoiceError as exc:
            body = payload if isinstance(payload, dict) else {}
            detail.update(request=body.get("request") if isinstance(body.get("request"), str) else None,
                          operator=body.get("operator") if isinstance(body.get("operator"), str) else None,
                          result="refused", reason=str(exc))
            self._io("gateway", None, detail)
            return
        detail.update(request=cmd.request, operator=cmd.operator, action=cmd.action, patch=cmd.name,
                      channels=list(cmd.channels))
        with self._lock:
            why = self._patch_problem(cmd)
            if why is None and cmd.action == "connect":
                self._made[cmd.name] = list(cmd.channels)
            elif why is None:
                detail["channels"] = self._made.pop(cmd.name)
                for ch in self.channels.values():  # what the patch is transmitting ends now
                    if ch.talk is not None and ch.talk.patch == cmd.name:
                        ch.talk.end_reason = f"patch {cmd.name} taken apart by {cmd.operator}"
                        ch.talk.source.end()
            if why is None:
                self._membership()
        detail.update(result="refused" if why else "done", reason=why)
        log.info("patch %s %s by %s: %s", cmd.name, cmd.action, cmd.operator, why or "done")
        for name in detail["channels"]:
            if name in self.channels:
                self.publish_state(self.channels[name])
        self._io("gateway", None, detail)

    def _patch_problem(self, cmd: PatchCommand) -> str | None:
        if any(p.name == cmd.name for p in self._configured):
            return f"patch {cmd.name} is configured ([[patches]]): change the configuration to change it"
        if cmd.action == "disconnect":
            return None if cmd.name in self._made else f"no patch {cmd.name} here"
        if cmd.name in self._made:
            return f"patch {cmd.name} exists already: take it apart first"
        for name in cmd.channels:
            ch = self.channels.get(name)
            if ch is None:
                return f"no channel {name} here"
            if ch.patch is not None:
                return f"channel {name} is in patch {ch.patch} already"
        return None

    def carrier(self, channel: str, on: bool) -> None:
        self.channel(channel).carrier(on)

    def identified(self, channel: str, unit: str) -> None:
        ch = self.channels.get(channel)
        if ch is not None:
            ch.identified(unit)

    # --- control ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            talks = [(ch, ch.talk) for ch in self.channels.values() if ch.talk is not None]
        for _, talk in talks:
            if talk is not None:
                talk.end_reason = talk.end_reason or "the gateway is stopping"
                talk.source.end()
        deadline = time.monotonic() + 3.0
        while any(ch.talk is not None for ch in self.channels.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.connected.is_set():
            for ch in list(self.channels.values()):
                with ch._lock:
                    ch._leases.clear()
                    ch.busy = False
                self.publish_state(ch)
        self._ticker.join(2.0)
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> dict[str, Any]:
        """For the gateway's health: per channel, listeners, frames sent, talker; refusals by kind."""
        now = self.clock()
        return {"channels": {name: {"listeners": ch.listeners(now), "frames_sent": ch.frames_sent,
                                    "talker": ch.talk.operator if ch.talk is not None else None}
                             for name, ch in self.channels.items()},
                "refused": dict(self.refused.counts)}

    def _tick(self) -> None:
        renewed = self.clock()
        while not self._stop.wait(0.25):
            now = self.clock()
            for ch in list(self.channels.values()):
                if ch.expire(now):
                    self.publish_state(ch)
            if now - renewed >= RemoteMember.LEASE_S / 3 and self.connected.is_set():
                renewed = now
                for remote in list(self.remotes.values()):
                    remote.renew()

    # --- MQTT --------------------------------------------------------------------------------------------

    def _t(self, channel: str, leaf: str) -> str:
        return voice_topic(self.prefix, self.gateway, channel, leaf)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            log.warning("voice: broker %s refused the connection: %s", self.cfg.url, rc)
            return
        client.subscribe([(self._t("+", LISTEN), 1), (self._t("+", FLOOR), 1), (self._t("+", TX), 0)])
        self.connected.set()
        for ch in list(self.channels.values()):
            self.publish_state(ch)
        for remote in list(self.remotes.values()):
            self._follow(remote)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("voice: lost the broker (%s); reconnecting", rc)

    def publish_frame(self, ch: ChannelVoice, frame: VoiceFrame) -> None:
        self.client.publish(self._t(ch.name, RX), frame.encode(), qos=0)

    def publish_state(self, ch: ChannelVoice) -> None:
        self.client.publish(self._t(ch.name, STATE), ch.state().to_json(), qos=1, retain=True)

    def _publish_answer(self, channel: str, answer: FloorAnswer) -> None:
        self.client.publish(self._t(channel, ANSWER), answer.to_json(), qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        where = parse_voice_topic(self.prefix, msg.topic)
        if where is None:
            return
        if where[0] != self.gateway:
            self._remote_message(f"{where[0]}/{where[1]}", where[2], bytes(msg.payload))
            return
        _, name, leaf = where
        try:
            ch = self.channels.get(name)
            if leaf == TX:
                self._tx_frame(name, ch, bytes(msg.payload))
            elif ch is None:
                self.refused("channel", f"{leaf} for {printable(name)}: no such channel with audio here")
                if leaf == FLOOR:
                    req = FloorRequest.from_json(msg.payload)
                    self._publish_answer(name, _answer(req, "refused", f"no channel {name} with audio here"))
            elif leaf == LISTEN:
                ch.lease(ListenLease.from_json(msg.payload))
            elif leaf == FLOOR:
                self.floor(ch, FloorRequest.from_json(msg.payload))
        except VoiceError as exc:
            self.refused(leaf, f"{leaf} on {name}: {exc}")
        except Exception:  # never out of paho's thread: the voice of every channel depends on it
            log.exception("voice: %s on %s failed", leaf, name)

    def _remote_message(self, key: str, leaf: str, payload: bytes) -> None:
        remote = self.remotes.get(key)
        if remote is None:
            return
        try:
            if leaf == RX:
                remote.on_rx(payload)
            elif leaf == ANSWER:
                remote.on_answer(payload)
        except VoiceError as exc:
            self.refused(f"remote_{leaf}", f"{leaf} of {key} (patch {remote.patch}): {exc}")
        except Exception:  # as in _on_message: never out of paho's thread
            log.exception("voice: %s of %s failed", leaf, key)

    def _tx_frame(self, name: str, ch: ChannelVoice | None, payload: bytes) -> None:
        talk = ch.talk if ch is not None else None
        if ch is None or talk is None or talk.tracker is None:
            self.refused("no_floor", f"tx on {printable(name)}: a frame while nobody holds the floor; not played")
            return
        frame = parse_frame(payload)
        why = talk.tracker.check(frame)
        if why is not None:
            self.refused("tx_stream", f"tx on {name}: {why}; not played")
            return
        with ch._lock:
            if ch.talk is not talk or not isinstance(talk.source, Playout):
                return
            talk.heard_at = self.clock()
            talk.source.put(frame)

    # --- the floor ---------------------------------------------------------------------------------------

    def floor(self, ch: ChannelVoice, req: FloorRequest) -> FloorAnswer | None:
        """Decide a floor request; the answer is published and returned. A floor given is answered once
        PTT is keyed (None here): the grant means the radio is transmitting (after ``ready_ms``)."""
        with self._lock:
            answer = self._decide(ch, req)
        if answer is None:
            log.info("%s: floor given to %s (%s): keying", ch.name, req.console, req.operator)
            return None
        self._publish_answer(ch.name, answer)
        log.info("%s: floor %s by %s (%s): %s%s", ch.name, req.action, req.console, req.operator, answer.result,
                 f" ({answer.reason})" if answer.reason else "")
        return answer

    def _decide(self, ch: ChannelVoice, req: FloorRequest) -> FloorAnswer | None:
        talk = ch.talk
        if req.action == "release":
            if talk is None or talk.console != req.console:
                return _answer(req, "refused", f"{req.console} does not hold the floor of {ch.name}")
            talk.end_reason = f"released by {req.operator} at {req.console}"
            talk.source.end()
            return _answer(req, "released", talk.end_reason)
        if ch.transmit_reason is not None:
            return _answer(req, "refused", f"channel {ch.name} {ch.transmit_reason}")
        if talk is not None:
            if talk.console == req.console and talk.patch is None and talk.end_reason is None:
                # Asked again (an answer lost, a console restarted): the same grant, or it is still coming.
                return _answer(req, "granted", None, stream=talk.stream, ready_ms=0) if talk.granted else None
            who = f"patch {talk.patch}" if talk.patch else f"{talk.operator} at {talk.console}"
            return _answer(req, "refused", f"{ch.name}: the floor is held by {who}")
        tx = self._transmitters().get(ch.name)
        if tx is None:
            return _answer(req, "refused", f"channel {ch.name} has no transmitter running")
        if tx.busy:
            return _answer(req, "refused", f"{ch.name}: the transmitter is busy with another transmission")
        if ch.busy and not req.override:
            who = f" from {ch.unit}" if ch.unit else ""
            return _answer(req, "refused", f"{ch.name} is busy with radio traffic{who}; ask with override to talk "
                           "over it")
        stream = random_id()
        decoder = OpusDecoder()
        prebuffer = max(1, round(ch.cfg.jitter_ms / 20))
        source = Playout(decoder, prebuffer=prebuffer, max_depth=max(prebuffer + 2, round(MAX_PLAYOUT_S * 50)))
        talk = _Talk(req.console, req.operator, req.request, stream, source, StreamTracker(stream, adopt=False),
                     datetime.now(UTC), self.clock())
        self._start_talk(ch, tx, talk, override=req.override)
        return None

    def _start_talk(self, ch: ChannelVoice, tx: Transmitter, talk: _Talk, *, override: bool = False) -> None:
        with ch._lock:
            ch.talk = talk
        if tx.output.rate != RATE:
            talk.resampler = Resampler(RATE, tx.output.rate)
        what = f"patch {talk.patch}" if talk.patch else f"{talk.operator} at {talk.console}"
        thread = threading.Thread(target=self._run_talk, args=(ch, tx, talk, what, override),
                                  name=f"voice-tx:{ch.name}", daemon=True)
        thread.start()
        self.publish_state(ch)

    def _run_talk(self, ch: ChannelVoice, tx: Transmitter, talk: _Talk, what: str, override: bool) -> None:
        started = datetime.now(UTC)

        def keyed() -> None:
            ch.keyed = True
            with ch._lock:
                talk.heard_at = self.clock()  # the talker hears of the grant now: its silence counts from here
                talk.granted = True
            if talk.patch is None:
                self._publish_answer(ch.name, FloorAnswer(talk.request, talk.console, talk.operator, "granted", None,
                                                          talk.stream, round(tx.lead_in_s * 1000)))
            self.publish_state(ch)

        report = TxReport("failed", "not started")
        try:
            report = tx.stream(lambda: self._next_block(ch, talk), what, on_keyed=keyed)
        except Exception as exc:  # the transmitter releases PTT itself; this thread must still free the floor
            log.exception("%s: live transmission failed", ch.name)
            report = TxReport("failed", str(exc))
        finally:
            ch.keyed = False
            with ch._lock:
                if ch.talk is talk:
                    ch.talk = None
        reason = talk.end_reason or (f"patch {talk.patch}: {talk.console} fell quiet" if talk.patch
                                     else f"{talk.operator} at {talk.console} ended the transmission")
        if report.result == "timeout":
            reason = f"the transmit time-out ({tx.timeout_s:g} s) cut it off; PTT released"
        elif report.result != "sent":
            reason = f"transmission {report.result}: {report.reason}"
        if talk.patch is None:
            # Never keyed (PTT failed, the transmitter taken meanwhile): the request is refused, with why.
            self._publish_answer(ch.name, FloorAnswer(talk.request, talk.console, talk.operator,
                                                      "released" if talk.granted else "refused", reason,
                                                      talk.stream if talk.granted else None, None))
        src = talk.source
        counts = (f"; {src.played} frames played, {src.concealed} concealed, {src.skipped} quiet ones skipped to "
                  f"catch up, {src.dropped} dropped"
                  if isinstance(src, Playout) else "")
        log.info("%s: %s ended after %.1f s keyed: %s%s", ch.name, what, report.keyed_s, reason, counts)
        self.publish_state(ch)
        self._record(ch, talk, started, report, reason, override)

    def _next_block(self, ch: ChannelVoice, talk: _Talk) -> Samples | None:
        """The next block to transmit (the transmitter's thread, paced by the output)."""
        with ch._lock:
            # Silence counts only once everything received is played: a backlog (a slow start) or a talk
            # that said END plays out whole.
            if talk.source.starved and self.clock() - talk.heard_at > ch.cfg.silence_ms / 1000 \
                    and talk.end_reason is None:
                talk.end_reason = (f"no audio from {talk.console} for {ch.cfg.silence_ms / 1000:g} s; PTT released"
                                   if talk.patch is None else f"patch {talk.patch}: its audio stopped")
                talk.source.end()
                return None
            pcm = talk.source.next_block()
        if pcm is None:
            return None
        talk.recorded.append(pcm)
        if talk.resampler is not None:
            return talk.resampler.feed(pcm)
        return pcm

    def _record(self, ch: ChannelVoice, talk: _Talk, started: datetime, report: TxReport, reason: str | None,
                override: bool) -> None:
        """The transmission as a ``call`` event with its clip, like a received one, marked transmitted."""
        if not talk.recorded:
            return
        samples = np.concatenate(talk.recorded).astype(np.float32)
        clip = flac(samples, RATE)
        detail: dict[str, Any] = {
            "protocol": "voice", "transmitted": True, "operator": talk.operator, "console": talk.console,
            "duration_s": round(len(samples) / RATE, 3), "keyed_s": report.keyed_s, "cut": report.result == "timeout",
            "result": report.result, "reason": reason, "override": override,
            "audio": {"codec": "flac", "rate": RATE, "bytes": len(clip), "sha256": hashlib.sha256(clip).hexdigest(),
                      "clip_start": started.isoformat(), "clip_s": round(len(samples) / RATE, 3)},
        }
        if talk.patch is not None:
            detail["patch"] = talk.patch
        try:
            self._submit(ch.name, Decoded(kind=Kind.CALL, time=started, detail=detail), None, clip)
        except Exception:  # the outbox's own errors are logged there; the floor is free already
            log.exception("%s: the transmission could not be recorded", ch.name)

    # --- patches -------------------------------------------------------------------------------------------

    def patch_audio(self, source: ChannelVoice | RemoteMember, pcm: Samples | None) -> None:
        """``source`` received ``pcm`` (None: it fell quiet): transmit it on the other channels of its patch
        that may take it (the same floor rules as a dispatcher's, without override), here or on another
        gateway."""
        assert source.patch is not None
        for name in self.patches.get(source.patch, []):
            if name == source.name:
                continue
            remote = self.remotes.get(name)
            if remote is not None:
                remote.transmit(source.name, pcm)
                continue
            ch = self.channels.get(name)
            if ch is None:
                continue
            talk = ch.talk
            if pcm is None:
                if talk is not None and talk.patch == source.patch and talk.console == source.name:
                    talk.source.end()
                source._feeding.discard(name)
                continue
            if talk is not None and talk.patch == source.patch and talk.console == source.name:
                with ch._lock:
                    if isinstance(talk.source, PcmFeed):
                        talk.heard_at = self.clock()
                        talk.source.put(pcm)
                continue
            if name in source._feeding:
                continue  # refused once in this spurt: not asked again at every frame
            source._feeding.add(name)
            self._patch_talk(source, ch)

    def _patch_talk(self, source: ChannelVoice | RemoteMember, ch: ChannelVoice) -> None:
        with self._lock:
            tx = self._transmitters().get(ch.name)
            why = (f"channel {ch.name} {ch.transmit_reason}" if ch.transmit_reason is not None
                   else "no transmitter" if tx is None
                   else f"the floor is held by {ch.talk.operator}" if ch.talk is not None
                   else "the transmitter is busy" if tx.busy
                   else "it is busy with radio traffic" if ch.busy else None)
            if why is not None or tx is None:
                log.info("patch %s: %s not transmitted on %s: %s", source.patch, source.name, ch.name, why)
                return
            talk = _Talk(source.name, f"patch {source.patch}", None, random_id(), PcmFeed(), None, datetime.now(UTC),
                         self.clock(), patch=source.patch)
            self._start_talk(ch, tx, talk)

    # --- remote monitor --------------------------------------------------------------------------------------

    def remote_monitor(self, payload: bytes | dict[str, Any], channels: dict[str, ChannelConfig]) -> None:
        """``cmd/remote_monitor``: the MDC-1200 remote-monitor packet to the unit, then its channel streamed for
        ``duration_s`` (as if a console listened); the result goes back as an ``io`` event like an ack's."""
        import json

        raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        detail: dict[str, Any] = {"protocol": "tx", "output": "ptt", "command": "remote_monitor"}
        try:
            cmd = RemoteMonitor.from_json(raw)
        except VoiceError as exc:
            body = payload if isinstance(payload, dict) else {}
            detail.update(request=body.get("request") if isinstance(body.get("request"), str) else None,
                          result="failed", reason=str(exc))
            self._io("gateway", None, detail)
            return
        detail.update(request=cmd.request, operator=cmd.operator, duration_s=cmd.duration_s)
        if cmd.case is not None:
            detail["case"] = cmd.case
        tx = self._transmitters().get(cmd.channel)
        ch = self.channels.get(cmd.channel)
        if cmd.channel not in channels:
            detail.update(result="failed", reason=f"no channel {cmd.channel!r} here")
        elif tx is None or ch is None:
            reason = ch.transmit_reason if ch is not None and ch.transmit_reason else "has no transmit path"
            detail.update(result="no_transmit_path", reason=f"channel {cmd.channel} {reason}")
        else:
            try:
                burst = remote_monitor_burst(cmd.unit, tx.output.rate)
            except AnswerError as exc:
                detail.update(result="unsupported", reason=str(exc))
            else:
                # Listening starts before the packet goes out: the unit answers with its microphone at once.
                ch.hold_for_monitor(cmd.unit, cmd.duration_s)
                report = tx.send(burst, tx.output.rate, f"remote monitor of {cmd.unit}")
                detail.update(result=report.result, reason=report.reason, keyed_s=report.keyed_s, ptt=tx.ptt.name)
                if report.result != "sent":
                    with ch._lock:
                        ch._leases.pop(MONITOR_CONSOLE, None)
                        ch.monitor = None
                self.publish_state(ch)
        log.info("remote_monitor of %s on %s: %s %s", cmd.unit, cmd.channel, detail["result"], detail.get("reason"))
        self._io(cmd.channel if cmd.channel in channels else "gateway", cmd.unit if is_unit(cmd.unit) else None,
                 detail)

    def _io(self, channel: str, unit: str | None, detail: dict[str, Any]) -> None:
        self._submit(channel, Decoded(kind=Kind.IO, time=datetime.now(UTC), unit=unit, detail=detail), None, None)
