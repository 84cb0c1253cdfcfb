"""The console's live voice, sans-I/O: the listen lease it keeps, the adaptive jitter buffer a channel's
received frames go through before they are played, the talk key's floor state, and what the voice panel
shows of a channel. No sockets, sound devices or clock reads here: every method takes ``now``
(``time.monotonic`` seconds at the I/O layer, :mod:`console.voice_link`; a number the tests set).

The jitter buffer, per listened channel (frames arrive every 20 ms, give or take the network's jitter)::

    push(frame, now) ──▶ StreamTracker (range, duplicates, a new stream at START) ──▶ late? (its turn to
                         play is past: dropped, and the playout delay grows a frame)
                         ──▶ held by sequence number; RFC 3550 interarrival jitter updated
    next_frame(now), called once every 20 ms by the player (paced by the sound device):
        idle ──(first frame held ``target_ms``)──▶ playing: the next sequence, in order
             - there: that frame;        missing but later ones held: LOST (the decoder conceals it)
             - nothing held at all: LOST without moving on (a stall: the delay grows by that frame),
               up to MAX_STALL, then idle again (the spurt ended without its END, or the sender went)
             - END played: idle (the next spurt sets its delay anew)
             - more held than the target needs for a whole second, or over 200 ms more (a clump after
               a stall): ``behind``; the player then skips quiet frames (shortening pauses, never
               cutting into words) until it is not

The target delay follows the jitter up at once (``FRAME_MS + 3 * jitter``, at least ``min_ms``) and
down slowly (0.5 % of the excess a frame: a 10-second time constant), so a burst of jitter is ridden out
and a calm network brings the delay back down without chopping syllables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from gateway.voice import FRAME_MS, RATE, FloorAnswer, StreamTracker, VoiceFrame, VoiceState, seq_delta


class Gap(enum.Enum):
    """What the player plays for a frame that did not come in time: libopus's loss concealment."""

    LOST = "lost"


LOST = Gap.LOST
Slot = VoiceFrame | Literal[Gap.LOST] | None  # a frame to decode, a frame to conceal, or nothing to play

MAX_STALL = 10  # frames (200 ms) without anything to play before a spurt is taken as ended
CONCEALED_STALL = 3  # of those, the first ones are concealed (a syllable fades out), the rest silence
SHRINK_AFTER = 50  # frames (1 s) of a deeper buffer than needed before one frame is dropped
# A clump (frames held up by the network, then all at once) leaves far more held than the target: the buffer
# is then ``behind``, and the player skips the quiet frames (pauses between words) until it no longer is,
# so the lag goes in the next pauses instead of the minute that one frame a second would take.
CATCH_UP_MS = 200.0
DECAY = 0.005  # the share of the target's excess over the jitter estimate shed each frame


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    concealed: int = 0
    late: int = 0  # arrived after their turn: dropped
    refused: int = 0  # duplicates, out of range (StreamTracker)
    shrunk: int = 0  # quiet frames the player skipped to shrink the delay
    stalls: int = 0  # frames the playout waited for (the delay grew)
    spurts: int = 0  # talk spurts played to their END


class JitterBuffer:
    """One channel's received frames, ordered, timed and concealed for playing (see the module)."""

    def __init__(self, *, min_ms: float = FRAME_MS, max_ms: float = 400.0, start_ms: float = 60.0) -> None:
        self.min_ms, self.max_ms = min_ms, max_ms
        self.target_ms = max(min_ms, min(max_ms, start_ms))
        self.jitter_ms = 0.0  # RFC 3550 6.4.1 interarrival jitter, J += (|D| - J) / 16
        self.tracker = StreamTracker()
        self.stats = JitterStats()
        self.unit: str | None = None  # who is talking, as the newest frame names them
        self._held: dict[int, VoiceFrame] = {}
        self._next: int | None = None  # the sequence to play next; None: idle, waiting for a spurt
        self._played: int | None = None  # the last sequence played (or given up) in this stream
        self._stream: int | None = None
        self._first_at: float | None = None  # when the first frame of the coming spurt arrived
        self._previous: tuple[float, int] | None = None  # (arrival, timestamp) of the newest frame
        self._stalled = 0
        self._deep = 0  # frames in a row the buffer held more than the target needs

    @property
    def playing(self) -> bool:
        return self._next is not None

    @property
    def depth(self) -> int:
        """Frames held, waiting to be played."""
        return len(self._held)

    def push(self, frame: VoiceFrame, now: float) -> str | None:
        """A received frame: None if it is held for playing, else why not (refused, or too late)."""
        why = self.tracker.check(frame)
        if why is not None:
            self.stats.refused += 1
            return why
        self.stats.received += 1
        if frame.stream != self._stream:  # a new stream: what was held of the old one is not played
            self._reset()
            self._stream = frame.stream
        if self._previous is not None and not frame.start:  # a START's timestamp jumps over the silence
            arrived, timestamp = self._previous
            d = (now - arrived) - seq_delta(frame.timestamp, timestamp) / RATE
            self.jitter_ms += (abs(d) * 1000.0 - self.jitter_ms) / 16.0
        self._previous = (now, frame.timestamp)
        estimate = self._estimate()
        if estimate > self.target_ms:
            self.target_ms = estimate
        if self._played is not None and seq_delta(frame.seq, self._played) <= 0:
            self.stats.late += 1
            self.target_ms = min(self.max_ms, self.target_ms + FRAME_MS)
            return f"sequence {frame.seq} came after its turn to play: dropped"
        if frame.unit:
            self.unit = frame.unit
        self._held[frame.seq] = frame
        if self._next is None and self._first_at is None:
            self._first_at = now
        return None

    def next_frame(self, now: float) -> Slot:
        """What to play for the next 20 ms (called once every 20 ms)."""
        if self._next is None:
            if not self._held or self._first_at is None or (now - self._first_at) * 1000.0 < self.target_ms - 1e-6:
                return None
            self._next = self._oldest()
        self._shrink()
        frame = self._held.pop(self._next, None)
        if frame is not None:
            self._advance()
            self._stalled = 0
            self.stats.played += 1
            if frame.end:
                self.stats.spurts += 1
                self._idle()
            return frame
        if self._held:  # later frames are here: this one is lost
            self._advance()
            self.stats.concealed += 1
            return LOST
        self._stalled += 1  # nothing here yet: wait for it, the delay growing by this frame
        self.stats.stalls += 1
        if self._stalled > MAX_STALL:
            self._idle()
            return None
        if self._stalled <= CONCEALED_STALL:
            self.stats.concealed += 1
            return LOST
        return None

    @property
    def behind(self) -> bool:
        """More held than the delay needs, for a second (or far more: a clump after a stall): the player
        may skip a quiet frame (a pause between words) to shrink the delay."""
        return self._deep >= SHRINK_AFTER or (len(self._held) - 1) * FRAME_MS - self.target_ms > CATCH_UP_MS

    def skipped(self) -> None:
        """The player skipped the frame it was given (a quiet one, while behind)."""
        self.stats.shrunk += 1
        self._deep = 0

    def _estimate(self) -> float:
        return max(self.min_ms, min(self.max_ms, FRAME_MS + 3.0 * self.jitter_ms))

    def _shrink(self) -> None:
        estimate = self._estimate()
        if self.target_ms > estimate:
            self.target_ms -= (self.target_ms - estimate) * DECAY
        excess = (len(self._held) - 1) * FRAME_MS - self.target_ms
        if excess > FRAME_MS:
            self._deep += 1
        else:
            self._deep = 0

    def _oldest(self) -> int:
        first = next(iter(self._held))
        return min(self._held, key=lambda s: seq_delta(s, first))

    def _advance(self) -> None:
        assert self._next is not None
        self._played = self._next
        self._next = (self._next + 1) % 2**32

    def _idle(self) -> None:
        """Between spurts: the next frame starts a spurt, played ``target_ms`` after it arrives."""
        self._next = None
        self._stalled = 0
        self._deep = 0
        self._first_at = None
        if self._held:  # frames of the next spurt came before this one finished playing
            self._first_at = -float("inf")

    def _reset(self) -> None:
        self._held.clear()
        self._next = self._played = None
        self._first_at = self._previous = None
        self._stalled = self._deep = 0


@dataclass
class Lease:
    """A listen lease the console keeps alive: renewed every third of ``lease_s`` (the gateway drops
    it at ``lease_s``, so two renewals may be lost before the audio stops)."""

    lease_s: float = 30.0
    renewed_at: float | None = None

    def due(self, now: float) -> bool:
        return self.renewed_at is None or now - self.renewed_at >= self.lease_s / 3.0

    def renewed(self, now: float) -> None:
        self.renewed_at = now

    def lost(self) -> None:
        """The broker went away: renew as soon as it is back."""
        self.renewed_at = None


TalkPhase = Literal["idle", "asking", "talking"]


@dataclass
class Floor:
    """The talk key of one console on one channel: asked (``request`` id), granted (``stream``), done.

    Only answers to this console's own requests change it; a ``released`` answer naming this console
    (the gateway took the floor back: silence, time-out, the broker gone) ends the talk too."""

    console: str
    phase: TalkPhase = "idle"
    request: str | None = None
    override: bool = False
    stream: int | None = None
    ready_ms: int | None = None
    asked_at: float | None = None
    granted_at: float | None = None
    refusal: str | None = None  # why the last request was refused, or why the floor was taken back

    def ask(self, request: str, now: float, *, override: bool = False) -> None:
        self.phase, self.request, self.override, self.asked_at = "asking", request, override, now
        self.stream = self.ready_ms = self.granted_at = None
        self.refusal = None

    def answer(self, answer: FloorAnswer, now: float) -> str | None:
        """An answer heard on ``floor/answer``: the new phase's name if it changed this console's floor."""
        if answer.console != self.console or answer.request != self.request or self.request is None:
            return None
        if answer.result == "granted" and self.phase == "asking" and answer.stream is not None:
            self.phase, self.stream, self.ready_ms, self.granted_at = "talking", answer.stream, answer.ready_ms, now
            return "granted"
        if answer.result == "refused" and self.phase == "asking":
            self.phase, self.refusal = "idle", answer.reason or "refused"
            return "refused"
        if answer.result == "released" and self.phase in ("asking", "talking"):
            self.phase, self.refusal, self.stream = "idle", answer.reason, None
            return "released"
        return None

    def release(self) -> None:
        self.phase, self.stream = "idle", None


@dataclass
class ChannelView:
    """What the voice panel shows of one channel (gateway, channel): its retained state and, while the
    console listens, the unit its frames name and the level of what it plays."""

    gateway: str
    channel: str
    state: VoiceState | None = None
    listening: bool = False
    auto: str | None = None  # why the console listens by itself (an emergency), if it does
    unit: str | None = None  # the unit the received frames name
    level_dbfs: float | None = None  # of the audio played, over the last half second
    heard_at: float | None = None  # when the last frame was played
    floor: Floor | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.gateway, self.channel

    def talking_unit(self, now: float) -> str | None:
        """Who is talking on the channel: the unit of the frames being played, else the state's."""
        if self.heard_at is not None and now - self.heard_at < 1.0 and self.unit:
            return self.unit
        if self.state is not None and self.state.busy:
            return self.state.unit
        return None

    def floor_holder(self) -> str | None:
        """Who holds the floor: "alice at desk-1" (a dispatcher) or "patch NAME"."""
        if self.state is None or self.state.talker is None:
            return None
        t = self.state.talker
        return t.operator if t.operator.startswith("patch ") else f"{t.operator} at {t.console}"
