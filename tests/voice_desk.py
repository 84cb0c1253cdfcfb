"""A dispatcher's desk on the voice topics, as tests drive it: a real MQTT client that leases a channel's
receive audio, asks for the floor, talks (Opus frames made by the wire module) and records every frame,
answer and state it receives. Also: decoding received frames back to audio, as a console would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from support import free_port, wait_until

from drivers.audio.source import Resampler
from gateway.voice import (
    ANSWER,
    FRAME_SAMPLES,
    RATE,
    RX,
    STATE,
    FloorAnswer,
    FloorRequest,
    FramePacker,
    ListenLease,
    OpusDecoder,
    VoiceFrame,
    VoiceState,
    parse_frame,
    seq_delta,
    voice_topic,
)

PREFIX = "pttbridge/v1"


class Desk:
    def __init__(self, port: int, gateway: str, channel: str, name: str = "desk-1", operator: str = "alice",
                 **tls: Any) -> None:
        self.gateway, self.channel, self.name, self.operator = gateway, channel, name, operator
        self.frames: list[VoiceFrame] = []
        self.answers: list[FloorAnswer] = []
        self.states: list[VoiceState] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{name}-{free_port()}")
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho annotates int; it sleeps any float
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, 10, f"{name} subscribed")

    def topic(self, leaf: str) -> str:
        return voice_topic(PREFIX, self.gateway, self.channel, leaf)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(self.topic(RX), 0), (self.topic(STATE), 1), (self.topic(ANSWER), 1)])

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic.endswith("/rx"):
                self.frames.append(parse_frame(msg.payload))
            elif msg.topic.endswith("/answer"):
                self.answers.append(FloorAnswer.from_json(msg.payload))
            elif msg.topic.endswith("/state"):
                self.states.append(VoiceState.from_json(msg.payload))

    # --- what a console says --------------------------------------------------------------------------

    def listen(self, lease_s: float = 10.0) -> None:
        body = ListenLease(self.name, self.operator, lease_s).to_json()
        self.client.publish(self.topic("listen"), body, qos=1).wait_for_publish(5)

    def request(self, request: str, *, override: bool = False, action: str = "request") -> None:
        body = FloorRequest(self.name, self.operator, request, action, override).to_json()  # type: ignore[arg-type]
        self.client.publish(self.topic("floor"), body, qos=1).wait_for_publish(5)

    def answer(self, request: str, result: str | None = None, timeout: float = 10.0, *,
               console: str | None = None) -> FloorAnswer:
        """The (first, or first of ``result``) answer to ``request`` of this desk (or of ``console``: every
        desk on the channel hears every answer), waiting for it."""
        def found() -> FloorAnswer | None:
            with self._lock:
                return next((a for a in self.answers if a.request == request and a.console == (console or self.name)
                             and (result is None or a.result == result)), None)

        wait_until(lambda: found() is not None, timeout, f"the answer to {request} ({result or 'any'})")
        answer = found()
        assert answer is not None
        return answer

    def state(self) -> VoiceState | None:
        with self._lock:
            return self.states[-1] if self.states else None

    def wait_state(self, test: Callable[[VoiceState], bool], what: str, timeout: float = 15.0) -> VoiceState:
        wait_until(lambda: (s := self.state()) is not None and test(s), timeout, what)
        state = self.state()
        assert state is not None
        return state

    def talk(self, samples: np.ndarray, stream: int, *, end: bool = True, realtime: bool = True,
             stop: threading.Event | None = None) -> list[VoiceFrame]:
        """``samples`` (48 kHz) into frames of ``stream``, published one every 20 ms as a microphone would."""
        packer = FramePacker(stream=stream)
        frames = packer.feed(samples)
        if end:
            last = packer.end()
            if last is not None:
                frames.append(last)
        began = time.monotonic()
        for i, frame in enumerate(frames):
            if stop is not None and stop.is_set():
                return frames[:i]
            if realtime:
                time.sleep(max(0.0, began + i * 0.02 - time.monotonic()))
            self.client.publish(self.topic("tx"), frame.encode(), qos=0)
        return frames

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def decode_frames(frames: list[VoiceFrame]) -> np.ndarray:
    """Frames of one stream, as received (any order, holes), to 48 kHz audio: in sequence order, lost
    frames concealed, silence between talk spurts left out."""
    if not frames:
        return np.zeros(0, np.float32)
    first = frames[0].seq
    ordered = sorted({f.seq: f for f in frames}.values(), key=lambda f: seq_delta(f.seq, first))
    decoder, out, previous = OpusDecoder(), [], None
    for f in ordered:
        if previous is not None and not f.start:
            out += [decoder.conceal() for _ in range(max(0, seq_delta(f.seq, previous) - 1))]
        out.append(decoder.decode(f.opus))
        previous = f.seq
    return np.concatenate(out).astype(np.float32)


def to_rate(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    r = Resampler(rate, to)
    return np.concatenate([r.feed(x), r.flush()]).astype(np.float32)


__all__ = ["FRAME_SAMPLES", "PREFIX", "RATE", "Desk", "decode_frames", "to_rate"]
