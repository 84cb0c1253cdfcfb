"""The console's live voice, its I/O: an MQTT connection of its own, the speaker and the microphone.

    subscribes   gw/+/voice/+/state          every channel's retained state (busy, unit, floor, keyed)
                 gw/+/voice/+/floor/answer   answers to floor requests (this console's change its talk key)
                 gw/G/voice/C/rx             frames of the channels listened to, into their jitter buffers
    publishes    gw/G/voice/C/listen         a lease, renewed every third of it (lease_s 0 on stopping)
                 gw/G/voice/C/floor          talk key: request (override: over radio traffic), release
                 gw/G/voice/C/tx             the microphone's frames once granted (QoS 0), END at the end
                 gw/G/cmd/remote_monitor     key an MDC-1200 unit's microphone

The speaker is one sounddevice output stream for every listened channel, written 20 ms at a time by a
thread: the device paces it, and each turn takes one slot from each channel's
:class:`~console.voice.JitterBuffer` (a frame decoded, a lost one concealed by libopus) and mixes them.
The microphone opens when the talk key is pressed (so the grant finds it running) and its audio is
encoded and sent from the grant on; it closes on release, or when the gateway takes the floor back.
The voice has a connection of its own (client id ``...-voice``) so that a flood of frames never holds up
the bridge's news. Every bad payload is counted and logged (at most once a second per kind); nothing
from the network raises into paho's thread.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from textual.message import Message

from config.mqtt import make_client, topic
from config.schema import MqttConfig
from console.voice import LOST, ChannelView, Floor, JitterBuffer, Lease
from drivers.audio.playback import LIVE_BUFFER_S, LIVE_PERIOD_S
from gateway.voice import (
    ANSWER,
    FLOOR,
    FRAME_SAMPLES,
    LISTEN,
    RATE,
    RX,
    STATE,
    TX,
    FloorAnswer,
    FloorRequest,
    FramePacker,
    ListenLease,
    OpusDecoder,
    OpusEncoder,
    RemoteMonitor,
    VoiceError,
    VoiceFrame,
    VoiceState,
    parse_frame,
    parse_voice_topic,
    voice_topic,
)

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (gateway, channel)
LEVEL_FLOOR_DB = -90.0
QUIET = 10 ** (-45 / 20)  # RMS under -45 dBFS: a pause, which a player behind may skip
PAUSE_KEPT = 3  # frames (60 ms) of every pause kept when catching up, as the gateway keeps them
MIC_WAIT_S = 0.06  # no block from the microphone this long while talking: this much silence is sent instead
# The speaker plays as the gateway's transmit stream does (drivers/audio/playback.py's LIVE_BUFFER_S);
# the microphone delivers a period at a time too: a frame is sent once its last 5 ms are in.
PERIOD = round(RATE * LIVE_PERIOD_S)


class NotConnected(RuntimeError):
    """Nothing can be asked of a gateway: the broker is away."""


class FloorNews(Message):
    """The talk key's news for the dispatcher: ``granted``, ``refused`` (with why), ``released`` (why)."""

    def __init__(self, gateway: str, channel: str, what: str, reason: str | None) -> None:
        super().__init__()
        self.gateway, self.channel, self.what, self.reason = gateway, channel, what, reason


@dataclass
class _Listened:
    view: ChannelView
    buffer: JitterBuffer
    decoder: OpusDecoder
    lease: Lease
    power: float = 0.0  # mean square of what was played, smoothed over about half a second
    carry: np.ndarray | None = None  # decoded audio beyond one 20 ms slot (a 40 or 60 ms packet)
    quiet: int = 0  # quiet frames in a row just played (or skipped)


@dataclass
class _Talk:
    key: Key
    floor: Floor
    blocks: queue.Queue[np.ndarray | None]
    pressed_at: float
    stop: threading.Event
    sent: int = 0


class VoiceLink:
    def __init__(self, cfg: MqttConfig, console: str, operator: Callable[[], str | None],
                 post: Callable[[Message], object], *, speaker: str | None = None, microphone: str | None = None,
                 lease_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.console, self.prefix = cfg, console, cfg.prefix
        self._operator, self._post, self.clock = operator, post, clock
        self.speaker, self.microphone, self.lease_s = speaker, microphone, lease_s
        self.views: dict[Key, ChannelView] = {}  # every channel whose state was heard
        self.listened: dict[Key, _Listened] = {}
        self.talk: _Talk | None = None
        self.refused: Counter[str] = Counter()
        self.version = 0  # bumped on every change the panel shows
        self.speaker_error: str | None = None
        self.microphone_error: str | None = None
        self.frames_sent = 0
        self._lock = threading.RLock()
        self._logged: dict[str, float] = {}
        self._stop = threading.Event()
        self._player: threading.Thread | None = None
        client_id = f"pttbridge-console-{console}-{os.getpid()}-{uuid.uuid4().hex[:6]}-voice"[-64:]
        mcfg = cfg.model_copy(update={"client_id": f"{cfg.client_id}-voice"}) if cfg.client_id else cfg
        self.client = make_client(mcfg, client_id)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self._ticker = threading.Thread(target=self._tick, name="voice-leases", daemon=True)

    # --- start and stop -------------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self._ticker.start()

    def stop(self) -> None:
        """Release the floor, end every lease, close the sound devices, disconnect."""
        if self.talk is not None:
            self.release()
        for key in list(self.listened):
            self.unlisten(*key)
        self._stop.set()
        if self._player is not None:
            self._player.join(2.0)
        if self._ticker.is_alive():
            self._ticker.join(2.0)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())

    def _t(self, key: Key, leaf: str) -> str:
        return voice_topic(self.prefix, key[0], key[1], leaf)

    def _operator_name(self) -> str:
        return self._operator() or self.console

    # --- what the dispatcher does ---------------------------------------------------------------------

    def listen(self, gateway: str, channel: str, *, auto: str | None = None) -> None:
        """Listen to a channel (lease, subscribe to its frames, play them); ``auto``: why the console does
        it by itself (an emergency on it)."""
        key = (gateway, channel)
        with self._lock:
            if key in self.listened:
                if auto and not self.listened[key].view.auto:
                    self.listened[key].view.auto = auto
                return
            view = self.views.setdefault(key, ChannelView(gateway, channel))
            view.listening, view.auto = True, auto
            self.listened[key] = _Listened(view, JitterBuffer(), OpusDecoder(), Lease(self.lease_s))
            self.version += 1
        if self.connected:
            self.client.subscribe(self._t(key, RX), 0)
            self._renew(key)
        self._start_player()

    def unlisten(self, gateway: str, channel: str) -> None:
        key = (gateway, channel)
        with self._lock:
            held = self.listened.pop(key, None)
            if held is None:
                return
            held.view.listening, held.view.auto, held.view.level_dbfs = False, None, None
            self.version += 1
        if self.connected:
            self.client.unsubscribe(self._t(key, RX))
            body = ListenLease(self.console, self._operator_name(), 0).to_json()
            self.client.publish(self._t(key, LISTEN), body, qos=1)

    def press(self, gateway: str, channel: str, *, override: bool = False) -> str:
        """The talk key: ask for the floor (the microphone opens at once, its audio sent from the grant on).
        Returns the request id; NotConnected with the broker away; RuntimeError while talking elsewhere."""
        if not self.connected:
            raise NotConnected("the broker is offline: the radio cannot be keyed")
        key = (gateway, channel)
        with self._lock:
            if self.talk is not None:
                raise RuntimeError(f"already talking on {self.talk.key[1]}@{self.talk.key[0]}")
            request = uuid.uuid4().hex[:12]
            floor = Floor(self.console)
            floor.ask(request, self.clock(), override=override)
            talk = _Talk(key, floor, queue.Queue(maxsize=250), self.clock(), threading.Event())
            self.talk = talk
            self.views.setdefault(key, ChannelView(gateway, channel)).floor = floor
            self.version += 1
        body = FloorRequest(self.console, self._operator_name(), request, "request", override).to_json()
        self.client.publish(self._t(key, FLOOR), body, qos=1)
        threading.Thread(target=self._capture, args=(talk,), name="voice-microphone", daemon=True).start()
        return request

    def release(self) -> None:
        """Let go of the talk key: the last frame (END) and a release, and the microphone closes."""
        with self._lock:
            talk, self.talk = self.talk, None
            if talk is None:
                return
            was = talk.floor.phase
            talk.floor.release()
            self.version += 1
        talk.stop.set()
        talk.blocks.put(None)
        if self.connected and was in ("asking", "talking"):
            body = FloorRequest(self.console, self._operator_name(), talk.floor.request or "release", "release",
                                ).to_json()
            self.client.publish(self._t(talk.key, FLOOR), body, qos=1)

    def remote_monitor(self, gateway: str, channel: str, unit: str, duration_s: float = 30.0,
                       case: int | None = None) -> str:
        """Ask the gateway to key an MDC-1200 unit's microphone; the console listens to the channel. With
        ``case``, the gateway's result goes into that incident's history (the bridge writes it)."""
        if not self.connected:
            raise NotConnected("the broker is offline: nothing was sent")
        request = uuid.uuid4().hex[:12]
        body = RemoteMonitor(request, unit, channel, self._operator_name(), duration_s, case).to_json()
        self.client.publish(topic(self.cfg, "gw", gateway, "cmd", "remote_monitor"), body, qos=1)
        self.listen(gateway, channel, auto=f"remote monitor of {unit}")
        return request

    def snapshot(self) -> list[ChannelView]:
        """Copies of every channel's view, for the panel (listened ones first)."""
        with self._lock:
            views = [replace(v) for v in self.views.values()]
        return sorted(views, key=lambda v: (not v.listening, v.gateway, v.channel))

    # --- leases -----------------------------------------------------------------------------------------

    def _renew(self, key: Key) -> None:
        with self._lock:
            held = self.listened.get(key)
            if held is None:
                return
            held.lease.renewed(self.clock())
        body = ListenLease(self.console, self._operator_name(), self.lease_s).to_json()
        self.client.publish(self._t(key, LISTEN), body, qos=1)

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            if not self.connected:
                continue
            now = self.clock()
            with self._lock:
                due = [key for key, held in self.listened.items() if held.lease.due(now)]
            for key in due:
                self._renew(key)

    # --- paho's thread ------------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        if rc.is_failure:
            log.warning("voice: broker %s refused the console: %s", self.cfg.url, rc)
            return
        subs = [(voice_topic(self.prefix, "+", "+", STATE), 1), (voice_topic(self.prefix, "+", "+", ANSWER), 1)]
        with self._lock:
            keys = list(self.listened)
            for held in self.listened.values():
                held.lease.lost()  # renewed by the ticker at once
        subs += [(self._t(key, RX), 0) for key in keys]
        client.subscribe(subs)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("voice: lost the broker (%s); reconnecting", rc)
        talk = self.talk
        if talk is not None and talk.floor.phase != "idle":
            # The gateway releases PTT when our audio stops; the dispatcher is told now.
            self.release()
            self._post(FloorNews(talk.key[0], talk.key[1], "released", "lost the broker: PTT released"))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        where = parse_voice_topic(self.prefix, msg.topic)
        if where is None:
            return
        gateway, channel, leaf = where
        key = (gateway, channel)
        payload = bytes(msg.payload)
        try:
            if leaf == RX:
                self._rx(key, payload)
            elif leaf == STATE:
                if not payload:
                    return  # a retained state cleared
                state = VoiceState.from_json(payload)
                with self._lock:
                    self.views.setdefault(key, ChannelView(gateway, channel)).state = state
                    self.version += 1
            elif leaf == ANSWER:
                self._answer(key, FloorAnswer.from_json(payload))
        except VoiceError as exc:
            self._refuse(leaf, f"{msg.topic}: {exc}")

    def _refuse(self, kind: str, message: str) -> None:
        self.refused[kind] += 1
        now = time.monotonic()
        if now - self._logged.get(kind, -10.0) >= 1.0:
            self._logged[kind] = now
            log.warning("voice: refused %s (%d so far)", message, self.refused[kind])

    def _rx(self, key: Key, payload: bytes) -> None:
        frame = parse_frame(payload)
        with self._lock:
            held = self.listened.get(key)
            if held is None:
                return
            why = held.buffer.push(frame, self.clock())
            if held.buffer.unit:
                held.view.unit = held.buffer.unit
        if why is not None:
            self._refuse("rx_frame", why)

    def _answer(self, key: Key, answer: FloorAnswer) -> None:
        with self._lock:
            talk = self.talk
            if talk is None or talk.key != key:
                return
            what = talk.floor.answer(answer, self.clock())
            if what is None:
                return
            self.version += 1
            if what in ("refused", "released"):
                self.talk = None
                talk.stop.set()
                talk.blocks.put(None)
        self._post(FloorNews(key[0], key[1], what, answer.reason))

    # --- the microphone -----------------------------------------------------------------------------------

    def _capture(self, talk: _Talk) -> None:
        """Send the microphone's audio, 20 ms a frame, from the grant until released. The microphone opens
        on a thread of its own: until it delivers (PortAudio may take a second to open it on a loaded
        machine) silence is sent, so the gateway does not take the floor back for want of audio."""
        threading.Thread(target=self._microphone, args=(talk,), name="voice-microphone-open", daemon=True).start()
        packer: FramePacker | None = None
        started = False  # the microphone delivered: from then on a silence is its to end (the gateway's rule)
        while True:
            try:
                block = talk.blocks.get(timeout=MIC_WAIT_S)
                started = started or block is not None
            except queue.Empty:
                if started or talk.floor.phase != "talking" or talk.stop.is_set():
                    continue
                block = np.zeros(int(RATE * MIC_WAIT_S), np.float32)  # nothing from the microphone yet
            if block is None:
                break
            if talk.floor.stream is None:
                continue
            if packer is None:
                packer = FramePacker(OpusEncoder(), stream=talk.floor.stream)
            for frame in packer.feed(block):
                self._send(talk, frame)
        if packer is not None and (last := packer.end()) is not None:
            self._send(talk, last)

    def _microphone(self, talk: _Talk) -> None:
        try:
            import sounddevice as sd

            def heard(indata: np.ndarray, _n: int, _t: Any, _status: Any) -> None:
                if talk.floor.phase == "talking" and not talk.stop.is_set():
                    try:
                        talk.blocks.put_nowait(indata[:, 0].copy())
                    except queue.Full:
                        pass

            stream = sd.InputStream(device=self.microphone, samplerate=RATE, channels=1, dtype="float32",
                                    blocksize=PERIOD, latency="low", callback=heard)
        except Exception as exc:  # noqa: BLE001 - no microphone (PortAudio missing, device away): say so
            self.microphone_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("voice: cannot open the microphone %s: %s", self.microphone or "(default)", exc)
            if self.talk is talk:
                self.release()
                self._post(FloorNews(talk.key[0], talk.key[1], "refused",
                                     f"no microphone: {self.microphone_error}"))
            return
        self.microphone_error = None
        with stream:
            talk.stop.wait()

    def _send(self, talk: _Talk, frame: VoiceFrame) -> None:
        self.client.publish(self._t(talk.key, TX), frame.encode(), qos=0)
        talk.sent += 1
        self.frames_sent += 1

    # --- the speaker ----------------------------------------------------------------------------------------

    def _start_player(self) -> None:
        with self._lock:
            if self._player is not None and self._player.is_alive():
                return
            self._player = threading.Thread(target=self._play, name="voice-speaker", daemon=True)
            self._player.start()

    def _play(self) -> None:
        try:
            import sounddevice as sd

            out = sd.OutputStream(device=self.speaker, samplerate=RATE, channels=1, dtype="float32",
                                  blocksize=PERIOD, latency=LIVE_BUFFER_S)
        except Exception as exc:  # noqa: BLE001 - no speaker: the panel still shows who talks
            self.speaker_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("voice: cannot open the speaker %s: %s", self.speaker or "(default)", exc)
            return
        self.speaker_error = None
        with out:
            while not self._stop.is_set():
                with self._lock:
                    if not self.listened:
                        self._player = None
                        return
                    block = self.mix(self.clock())
                out.write(block)

    def mix(self, now: float) -> np.ndarray:
        """One 20 ms block of every listened channel's audio, mixed (caller holds the lock)."""
        mixed = np.zeros(FRAME_SAMPLES, np.float32)
        for held in self.listened.values():
            pcm = self._slot(held, now)
            if pcm is None:
                held.power *= 0.8
            else:
                mixed += pcm
                held.power = 0.8 * held.power + 0.2 * float(np.mean(np.square(pcm, dtype=np.float64)))
                held.view.heard_at = now
            level = 10 * math.log10(held.power) if held.power > 1e-9 else LEVEL_FLOOR_DB
            if held.view.level_dbfs is None or abs(level - held.view.level_dbfs) >= 1.0:
                held.view.level_dbfs = level
                self.version += 1
        np.clip(mixed, -1.0, 1.0, out=mixed)
        return mixed

    def _slot(self, held: _Listened, now: float) -> np.ndarray | None:
        if held.carry is not None and len(held.carry) >= FRAME_SAMPLES:
            pcm, held.carry = held.carry[:FRAME_SAMPLES], held.carry[FRAME_SAMPLES:]
            return pcm
        while True:
            slot = held.buffer.next_frame(now)
            if slot is None:
                held.quiet = 0
                return None
            try:
                pcm = held.decoder.conceal() if slot is LOST else held.decoder.decode(slot.opus)
            except VoiceError as exc:
                self._refuse("decode", str(exc))
                pcm = held.decoder.conceal()
            loud = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) >= QUIET
            held.quiet = 0 if loud else held.quiet + 1
            # Behind (a clump after a stall): a pause is shortened, keeping its first PAUSE_KEPT frames, so
            # that words, and DTMF digits, stay apart.
            if loud or not held.buffer.behind or held.quiet <= PAUSE_KEPT:
                break
            held.buffer.skipped()
        if len(pcm) < FRAME_SAMPLES:
            pcm = np.concatenate([pcm, np.zeros(FRAME_SAMPLES - len(pcm), np.float32)])
        held.carry = pcm[FRAME_SAMPLES:] if len(pcm) > FRAME_SAMPLES else None
        return pcm[:FRAME_SAMPLES].astype(np.float32)
