"""The console's jitter buffer, lease and talk key, on frame timing set by the test (no clock, no network):
frames pushed at arrival times the test chooses, played by calling ``next_frame`` every 20 ms."""

from __future__ import annotations

from console.voice import LOST, MAX_STALL, Floor, JitterBuffer, Lease, Slot
from gateway.voice import FRAME_SAMPLES, Flag, FloorAnswer, VoiceFrame

TOC = bytes([0x78])  # a 20 ms SILK packet with no frame data: valid Opus, concealed by the decoder
STREAM = 0xCAFE


def frame(seq: int, *, start: bool = False, end: bool = False, stream: int = STREAM, unit: str | None = None
          ) -> VoiceFrame:
    flags = (Flag.START if start else Flag(0)) | (Flag.END if end else Flag(0))
    return VoiceFrame(stream, seq % 2**32, (1000 + seq * FRAME_SAMPLES) % 2**32, TOC, flags, unit)


def played(slots: list[Slot]) -> list[int | str | None]:
    return [s.seq if isinstance(s, VoiceFrame) else "lost" if s is LOST else None for s in slots]


def run(buffer: JitterBuffer, arrivals: dict[float, list[VoiceFrame]], ticks: int, *, tick0: float = 0.0,
        skip: bool = False) -> list[Slot]:
    """Push each frame at its arrival time and pull a slot every 20 ms from ``tick0``, in time order;
    ``skip``: as the player does, skip a frame while the buffer is behind (every frame here is quiet)."""
    out: list[Slot] = []
    pending = sorted(arrivals.items())
    for i in range(ticks):
        now = tick0 + i * 0.020
        while pending and pending[0][0] <= now:
            at, frames = pending.pop(0)
            for f in frames:
                buffer.push(f, at)
        slot = buffer.next_frame(now)
        if skip and slot is not None and buffer.behind:
            buffer.skipped()
            slot = buffer.next_frame(now)
        out.append(slot)
    return out


def steady(n: int, *, first: int = 0, at: float = 0.0, end: bool = True) -> dict[float, list[VoiceFrame]]:
    return {at + i * 0.020: [frame(first + i, start=i == 0, end=end and i == n - 1)] for i in range(n)}


def test_frames_on_time_play_in_order_after_the_playout_delay() -> None:
    buffer = JitterBuffer(start_ms=60, min_ms=40)
    out = played(run(buffer, steady(10), 20, tick0=0.001))
    # Nothing for the first 60 ms (the playout delay), then the ten frames in order, then nothing.
    assert out[:3] == [None, None, None]
    assert out[3:13] == list(range(10))
    assert out[13:] == [None] * 7
    assert buffer.stats.played == 10 and buffer.stats.concealed == 0 and not buffer.playing


def test_reordered_frames_are_played_in_sequence_order() -> None:
    buffer = JitterBuffer(start_ms=60)
    arrivals = {0.000: [frame(0, start=True)], 0.020: [frame(2)], 0.040: [frame(1)], 0.060: [frame(4)],
                0.080: [frame(3)], 0.100: [frame(5, end=True)]}
    out = [s for s in played(run(buffer, arrivals, 15)) if s is not None]
    assert out == [0, 1, 2, 3, 4, 5]
    assert buffer.stats.concealed == 0 and buffer.stats.late == 0


def test_a_lost_frame_is_concealed_in_its_place() -> None:
    buffer = JitterBuffer(start_ms=60)
    arrivals = steady(8)
    del arrivals[3 * 0.020]
    out = [s for s in played(run(buffer, arrivals, 15)) if s is not None]
    assert out == [0, 1, 2, "lost", 4, 5, 6, 7]
    assert buffer.stats.concealed == 1


def test_a_late_frame_is_dropped_and_the_delay_grows() -> None:
    buffer = JitterBuffer(start_ms=40, min_ms=40)
    arrivals = steady(8)
    late = arrivals.pop(2 * 0.020)
    arrivals[0.300] = late  # long after frame 2's turn (and 3's, 4's... already here)
    out = [s for s in played(run(buffer, arrivals, 20)) if s is not None]
    assert out == [0, 1, "lost", 3, 4, 5, 6, 7]
    assert buffer.stats.late == 1
    assert buffer.target_ms >= 60  # a frame more of delay for the next time


def test_duplicates_and_out_of_range_sequences_are_refused() -> None:
    buffer = JitterBuffer()
    assert buffer.push(frame(0, start=True), 0.0) is None
    assert "duplicate" in (buffer.push(frame(0, start=True), 0.01) or "")
    assert "out of range" in (buffer.push(frame(100_000), 0.02) or "")
    assert buffer.stats.refused == 2 and buffer.depth == 1


def test_the_delay_grows_with_jitter_at_once_and_shrinks_slowly() -> None:
    buffer = JitterBuffer(start_ms=40, min_ms=40)
    # Frames sent every 20 ms arriving in clumps: 0-4 at once, then 5-9 100 ms later, ...
    clumped: dict[float, list[VoiceFrame]] = {}
    for i in range(100):
        clumped.setdefault((i // 5) * 0.100 + 0.05, []).append(frame(i, start=i == 0))
    run(buffer, clumped, 120)
    grown = buffer.target_ms
    assert grown > 100  # followed the jitter up
    assert buffer.stats.concealed <= 3  # the clumps were ridden out, hardly anything concealed
    # Then a calm network: the delay comes down, slowly (not back to its floor within a second).
    calm = {3.0 + i * 0.020: [frame(100 + i, start=i == 0)] for i in range(1000)}
    run(buffer, {k: v for k, v in calm.items() if k < 4.0}, 50, tick0=3.0)
    after_one_second = buffer.target_ms
    assert 40 < after_one_second < grown
    run(buffer, {k: v for k, v in calm.items() if k >= 4.0}, 950, tick0=4.0)
    assert buffer.target_ms < after_one_second and buffer.target_ms < 60


def test_a_deeper_buffer_than_needed_sheds_a_frame_at_most_once_a_second() -> None:
    buffer = JitterBuffer(start_ms=200, min_ms=40, max_ms=400)
    buffer.target_ms = 200
    run(buffer, steady(200, end=False), 205, skip=True)
    # The 200 ms it started with came down by whole frames (quiet ones skipped), no faster than one a second.
    assert 1 <= buffer.stats.shrunk <= 4
    assert buffer.stats.concealed == 0


def test_a_clump_after_a_stall_leaves_the_buffer_behind_until_it_is_caught_up() -> None:
    buffer = JitterBuffer(start_ms=60, min_ms=40)
    arrivals = steady(500, end=False)
    clumped = {t: f for t, f in arrivals.items() if not 1.0 <= t < 2.0}
    clumped[2.0] = [f for t, fs in arrivals.items() if 1.0 <= t < 2.0 for f in fs] + arrivals[2.0]
    run(buffer, clumped, 105)  # to just after the clump
    assert buffer.stats.stalls > 0  # it waited through the stall
    assert buffer.behind  # a second's worth held: the player may skip pauses
    skipped = 0
    for i in range(100):  # a player skipping one frame a slot (all of them quiet here)
        now = 2.1 + i * 0.02
        for f in arrivals.get(round(now, 2), []):
            buffer.push(f, now)
        buffer.next_frame(now)
        if buffer.behind:
            buffer.next_frame(now)
            buffer.skipped()
            skipped += 1
    assert not buffer.behind and 20 <= skipped <= 60 and buffer.stats.shrunk >= skipped


def test_a_stall_waits_for_the_next_frame_then_gives_the_spurt_up() -> None:
    buffer = JitterBuffer(start_ms=40, min_ms=40)
    arrivals = steady(5, end=False)
    arrivals[0.080 + 0.100] = [frame(5)]  # 100 ms late: waited for (concealed, then silence), not lost
    out = played(run(buffer, arrivals, 20))
    kept = [s for s in out if s is not None]
    assert kept[:5] == [0, 1, 2, 3, 4] and 5 in kept and buffer.stats.late == 0
    # A sender that went away without END: after MAX_STALL frames the spurt is given up.
    out = played(run(buffer, {}, MAX_STALL + 5, tick0=1.0))
    assert out[-1] is None and not buffer.playing


def test_a_new_stream_starts_a_new_spurt_and_names_its_unit() -> None:
    buffer = JitterBuffer(start_ms=40)
    run(buffer, steady(3, end=False), 6)
    other = {0.2 + i * 0.02: [frame(50 + i, stream=7, start=i == 0, unit="mdc:1234")] for i in range(3)}
    out = [s for s in played(run(buffer, other, 10, tick0=0.2)) if s is not None]
    assert out[:3] == [50, 51, 52] and buffer.unit == "mdc:1234"


def test_sequence_numbers_wrap() -> None:
    buffer = JitterBuffer(start_ms=40)
    arrivals = {i * 0.02: [frame(2**32 - 2 + i, start=i == 0, end=i == 3)] for i in range(4)}
    out = [s for s in played(run(buffer, arrivals, 8)) if s is not None]
    assert out == [2**32 - 2, 2**32 - 1, 0, 1]


def test_the_lease_is_renewed_every_third_of_it() -> None:
    lease = Lease(30.0)
    assert lease.due(0.0)
    lease.renewed(0.0)
    assert not lease.due(9.9) and lease.due(10.0)
    lease.renewed(10.0)
    lease.lost()
    assert lease.due(10.1)


def test_the_talk_key_follows_only_its_own_answers() -> None:
    floor = Floor("desk-1")
    floor.ask("r1", 0.0)
    other = FloorAnswer("r9", "desk-2", "bob", "granted", stream=5, ready_ms=0)
    assert floor.answer(other, 0.1) is None and floor.phase == "asking"
    assert floor.answer(FloorAnswer("r1", "desk-1", "alice", "granted", stream=9, ready_ms=200), 0.2) == "granted"
    assert (floor.phase, floor.stream, floor.granted_at) == ("talking", 9, 0.2)
    gone = FloorAnswer("r1", "desk-1", "alice", "released", reason="no audio from desk-1 for 1 s; PTT released")
    assert floor.answer(gone, 3.0) == "released"
    assert "no audio" in (floor.refusal or "")
    assert floor.stream is None
    floor.ask("r2", 4.0)
    no = FloorAnswer("r2", "desk-1", "alice", "refused", reason="patrol-2: the floor is held by bob at desk-2")
    assert floor.answer(no, 4.1) == "refused" and floor.refusal == no.reason
