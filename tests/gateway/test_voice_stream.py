"""The gateway's voice parts on their own: the playout of a talker's frames (order, loss, backlog) and a
patch's loop prevention, with real transmitters writing WAV files (no broker needed for either)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from support import wait_until

from config.schema import parse_config
from drivers.audio.playback import WavOutput
from drivers.ptt import VoxPtt
from gateway.events import Decoded
from gateway.transmit import Transmitter
from gateway.voice import FRAME_SAMPLES, RATE, FramePacker, OpusDecoder
from gateway.voice_stream import Playout, VoiceService


def tone(seconds: float, freq: float = 1000.0, level: float = 0.3, rate: int = RATE) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def frames_of(x: np.ndarray) -> list[Any]:
    packer = FramePacker(seq=2**32 - 5)  # across the wrap
    out = packer.feed(x)
    last = packer.end()
    return [*out, last] if last is not None else out


def play_all(p: Playout, limit: int = 500) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for _ in range(limit):
        block = p.next_block()
        if block is None:
            return out
        out.append(block)
    raise AssertionError("the playout never ended")


def test_frames_in_any_order_play_in_sequence_and_a_lost_one_is_concealed() -> None:
    frames = frames_of(tone(0.4))
    p = Playout(OpusDecoder(), prebuffer=3, max_depth=100)
    shuffled = [*frames[:5], frames[6], frames[5], *frames[8:]]  # 5 and 6 swapped, 7 lost
    first = p.next_block()
    assert first is not None and len(first) == FRAME_SAMPLES and p.played == 0  # waiting for the prebuffer
    for f in shuffled:
        p.put(f)
    blocks = play_all(p)
    assert p.played + p.skipped == len(frames) - 1 and p.concealed == 1 and p.dropped == 0
    assert all(np.sqrt(np.mean(b ** 2)) > 0.05 for b in blocks[1:-1])  # the tone throughout, the gap concealed


def test_a_backlog_is_caught_up_by_shortening_pauses_never_speech() -> None:
    burst = np.concatenate([tone(0.2), np.zeros(RATE // 2, np.float32), tone(0.2)])  # a long pause between
    frames = frames_of(burst)
    p = Playout(OpusDecoder(), prebuffer=2, max_depth=100)
    for f in frames:  # all at once: the talker spoke during the lead-in
        p.put(f)
    blocks = play_all(p)
    loud = sum(np.sqrt(np.mean(b ** 2)) > 0.1 for b in blocks)
    assert loud >= 19 and p.skipped > 10  # 0.4 s of tone kept whole; the pause shortened
    assert p.dropped == 0


def test_a_frame_after_its_turn_is_dropped_and_a_flood_is_bounded() -> None:
    frames = frames_of(tone(1.0))
    p = Playout(OpusDecoder(), prebuffer=1, max_depth=10)
    p.put(frames[0])
    p.put(frames[1])
    p.next_block()
    p.next_block()
    p.put(frames[0])  # its turn is over
    assert p.dropped == 1
    for f in frames[2:40]:
        p.put(f)
    p.next_block()
    assert p.depth <= 10 and p.dropped > 20


def channel_configs(tmp_path: Path) -> list[Any]:
    return parse_config({"channels": [
        {"name": name, "transmit": {"device": f"wav:{tmp_path / f'{name}.wav'}", "lead_in_ms": 0, "tail_ms": 0}}
        for name in ("a", "b")]}).channels


def patched(tmp_path: Path) -> tuple[VoiceService, list[tuple[str, Decoded]]]:
    """Channels a and b in patch p, each transmitting into a WAV file; the voice events it submits."""
    events: list[tuple[str, Decoded]] = []
    transmitters = {name: Transmitter(f"{name}/tx", WavOutput(tmp_path / f"{name}.wav", RATE), VoxPtt(),
                                      lead_in_s=0, tail_s=0) for name in ("a", "b")}
    voice = VoiceService(parse_config({}).mqtt, "gw", transmitters=lambda: transmitters,
                         submit=lambda ch, d, _id, _clip: events.append((ch, d)))
    voice.configure(channel_configs(tmp_path), parse_config({"patches": [{"name": "p", "channels": ["a", "b"]}]
                                                             }).patches)
    return voice, events


def test_a_patch_never_feeds_back_what_it_transmits(tmp_path: Path) -> None:
    """Channel a receives; the patch transmits it on b. b's receiver then hears b's own transmission (a
    repeater's output, or the radio's sidetone): that audio is never fed into the patch, so a never
    transmits and nothing loops."""
    voice, events = patched(tmp_path)
    a, b = voice.channels["a"], voice.channels["b"]
    start = datetime.now(UTC)
    speech = tone(0.6)
    for at in range(0, len(speech), FRAME_SAMPLES):
        block = speech[at:at + FRAME_SAMPLES]
        a.feed(block, start)
        b.feed(block, start)  # b hears what it transmits
        time.sleep(0.02)  # a radio's audio comes in real time
    for _ in range(60):  # then quiet, past the hang time
        a.feed(np.zeros(FRAME_SAMPLES, np.float32), start)
        b.feed(np.zeros(FRAME_SAMPLES, np.float32), start)
    wait_until(lambda: b.talk is None and events, 10, "the patch's transmission on b to end")
    assert a.talk is None and not (tmp_path / "a.wav").exists()  # nothing went back to a
    x, _ = soundfile.read(tmp_path / "b.wav", dtype="float32")
    assert np.sum(np.abs(x) > 0.1) > 0.4 * RATE  # the speech went out on b
    [(channel, call)] = events
    assert channel == "b" and call.detail["patch"] == "p" and call.detail["console"] == "a"


def test_cor_makes_the_channel_busy_and_the_floor_is_refused_unless_overridden(tmp_path: Path) -> None:
    """A channel whose transmissions are marked by COR (``detect = "cor"``) is busy while COR is active,
    however quiet its audio; a dispatcher is refused then, and granted once COR drops and the hang ran out."""
    from gateway.voice import FloorRequest

    channels = parse_config({"channels": [{"name": "c", "record": {"detect": "cor"},
                                           "transmit": {"device": f"wav:{tmp_path / 'c.wav'}", "lead_in_ms": 0}}]}
                            ).channels
    tx = Transmitter("c/tx", WavOutput(tmp_path / "c.wav", RATE), VoxPtt(), lead_in_s=0, tail_s=0)
    voice = VoiceService(parse_config({}).mqtt, "gw", transmitters=lambda: {"c": tx}, submit=lambda *_: None)
    voice.configure(channels, [])
    ch, start, quiet = voice.channels["c"], datetime.now(UTC), np.zeros(FRAME_SAMPLES, np.float32)
    voice.carrier("c", True)
    ch.feed(quiet, start)
    assert ch.busy
    refused = voice.floor(ch, FloorRequest("desk-1", "alice", "r1"))
    assert refused is not None and refused.result == "refused" and "busy with radio traffic" in (refused.reason or "")
    voice.carrier("c", False)
    for _ in range(30):  # 600 ms of quiet: past the 500 ms hang
        ch.feed(quiet, start)
    assert not ch.busy
    assert voice.floor(ch, FloorRequest("desk-1", "alice", "r2")) is None  # given: answered once PTT is keyed
    wait_until(lambda: ch.talk is not None and ch.talk.granted, 5, "keyed")
    voice.floor(ch, FloorRequest("desk-1", "alice", "r3", "release"))
    wait_until(lambda: ch.talk is None, 5, "released")


def test_a_remote_member_is_not_heard_while_the_patch_talks_on_it(tmp_path: Path) -> None:
    """A channel of another gateway in a patch: while this gateway asks for its floor and talks on it, and
    a second after, what it receives (its own transmission, heard back) is held, not fed into the patch."""
    from gateway.voice import FloorAnswer, VoiceState

    events: list[tuple[str, Decoded]] = []
    tx = Transmitter("a/tx", WavOutput(tmp_path / "a.wav", RATE), VoxPtt(), lead_in_s=0, tail_s=0)
    clock = [100.0]
    voice = VoiceService(parse_config({}).mqtt, "gw", transmitters=lambda: {"a": tx},
                         submit=lambda ch, d, _id, _clip: events.append((ch, d)), clock=lambda: clock[0])
    channels = parse_config({"channels": [{"name": "a", "transmit": {"device": f"wav:{tmp_path / 'a.wav'}"}}]}).channels
    voice.configure(channels, parse_config({"patches": [{"name": "p", "channels": ["a", "gw-2/b"]}]}).patches)
    remote, a = voice.remotes["gw-2/b"], voice.channels["a"]
    echo = FramePacker().feed(tone(0.2))
    remote.transmit("a", tone(0.02))  # a received something: the patch asks gw-2 for b's floor
    assert remote._request is not None
    remote.on_answer(FloorAnswer(remote._request, "gw", "patch p", "granted", None, 77, 0).to_json())
    for frame in echo:
        remote.on_rx(frame.encode())  # b's receiver hears b transmitting
    assert a.talk is None
    remote.transmit("a", None)  # a fell quiet: the talk on b ends
    clock[0] += 0.5
    for frame in FramePacker().feed(tone(0.2)):
        remote.on_rx(frame.encode())  # still within the hold
    assert a.talk is None and not events
    clock[0] += 1.0
    for frame in FramePacker().feed(tone(0.2)):
        remote.on_rx(frame.encode())  # b's own traffic, later: it goes out on a
    wait_until(lambda: a.talk is not None, 5, "the patch to transmit b's audio on a")
    talk = a.talk
    assert talk is not None and talk.patch == "p" and talk.console == "gw-2/b"
    state = VoiceState.from_json(a.state().to_json())  # what a console reads of it
    assert state.talker is not None and (state.talker.console, state.talker.operator) == ("p", "patch p")
    voice.patch_audio(remote, None)  # b fell quiet: the talk on a ends
    wait_until(lambda: a.talk is None, 5, "the talk on a to end")


class Heard(VoiceService):
    """The voice service with the frames it would publish kept here (no broker)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[Any] = []

    def publish_frame(self, ch: Any, frame: Any) -> None:
        self.frames.append(frame)

    def publish_state(self, ch: Any) -> None:
        pass


def test_a_channel_at_another_rate_is_heard_at_48k_only_while_listened(tmp_path: Path) -> None:
    """A radio on a 16 kHz sound card: the driver hands the voice stream its blocks as captured; the
    channel is busy while the tone lasts whoever listens, and a dispatcher listening gets it as 48 kHz
    Opus, the same tone, for the whole transmission."""
    from gateway.voice import ListenLease

    voice = Heard(parse_config({}).mqtt, "gw", transmitters=dict, submit=lambda *_: None)
    voice.configure(channel_configs(tmp_path), [])
    ch, start, rate = voice.channels["a"], datetime.now(UTC), 16000
    n = rate // 50
    speech = tone(0.6, rate=rate)

    def transmission() -> list[bool]:
        busy = []
        for at in range(0, len(speech), 3 * n // 2):  # blocks of 30 ms: frames are cut across them
            ch.feed(speech[at:at + 3 * n // 2], start, rate)
            busy.append(ch.busy)
        for _ in range(40):  # quiet past the hang time
            ch.feed(np.zeros(n, np.float32), start, rate)
        return busy

    assert all(transmission()) and not ch.busy and voice.frames == []  # nobody listens: nothing sent
    ch.lease(ListenLease("desk-1", "alice", 60))
    assert all(transmission()) and not ch.busy
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode(f.opus) for f in voice.frames])
    rms = np.sqrt(np.mean(pcm[: len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES) ** 2, axis=1))
    assert abs(np.sum(rms > 0.1) - 30) <= 2  # 0.6 s of the tone in 20 ms frames at 48 kHz (then the hang time)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * RATE / len(pcm) - 1000) < 10  # the same tone


def test_a_patch_carries_a_channel_at_another_rate(tmp_path: Path) -> None:
    """Channel a's radio is on a 22050 Hz sound card; the patch transmits what it hears on b at 48 kHz."""
    voice, events = patched(tmp_path)
    a, start, rate = voice.channels["a"], datetime.now(UTC), 22050
    speech = tone(0.6, 800, rate=rate)
    for at in range(0, len(speech), rate // 50):
        a.feed(speech[at:at + rate // 50], start, rate)
        time.sleep(0.02)  # a radio's audio comes in real time
    for _ in range(60):
        a.feed(np.zeros(rate // 50, np.float32), start, rate)
    wait_until(lambda: voice.channels["b"].talk is None and events, 10, "the patch's transmission on b to end")
    x, _ = soundfile.read(tmp_path / "b.wav", dtype="float32")
    assert np.sum(np.abs(x) > 0.1) > 0.4 * RATE  # the speech went out on b
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * RATE / len(x) - 800) < 10
