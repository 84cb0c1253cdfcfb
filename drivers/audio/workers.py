"""Decoding in worker processes, so that one gateway's channels use more than one core.

The decoders hold the GIL between their numpy calls, so the channels of one process share about one
core however many the machine has. With ``[gateway] decode_workers = N`` the decoders of each radio live
in one of N worker processes (radios dealt in turn); the audio driver's thread hands its worker each
gathered piece of audio (``decode_ms``) and waits for what the decoders said, without the GIL meanwhile,
so N radios decode at once. Resampling for the decoders goes with them; the level meter, the call
recorder, the live voice tap and the way to the outbox stay in the gateway, and what comes back is what
the decoders would have said in the driver's own thread: their outputs, then the spans they heard.

A worker that dies (killed, out of memory) is started again at the next piece of any of its radios,
whose decoders are made anew (what they were in the middle of is lost, as when a device is reopened);
the piece in flight is lost with it and the driver says so as a device error, then goes on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from drivers.audio.base import AudioDecoder, Heard, Samples
from drivers.audio.source import Resampler
from drivers.base import Output
from drivers.registry import create_audio_decoder

log = logging.getLogger(__name__)

#: What a radio's decoders are made from in a worker: (name, rate, options) each.
Spec = list[tuple[str, int, Mapping[str, Any] | None]]
Result = tuple[list[Output], list[Heard]]
CLOSE_WAIT_S = 2.0  # how long stopping waits for a worker's piece in progress before killing it


class WorkerLost(RuntimeError):
    """The worker process ended while it had a piece of audio."""


class Decoders:
    """A radio's decoders with the resamplers to their rates, fed its audio at the stream's rate: in the
    audio driver's thread, or in a worker behind :class:`RemoteDecoders`."""

    def __init__(self, decoders: list[AudioDecoder]) -> None:
        self.decoders = decoders
        self.rate = 0  # the stream's, which the resamplers are made for (a recording may have its own)
        self.resamplers: dict[int, Resampler] = {}

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.decoders]

    def feed(self, mono: Samples, rate: int, start: datetime, at_rate: dict[int, Samples] | None = None) -> Result:
        """What the decoders said of the piece (at ``rate``) and the spans they heard in it (asked always: a
        decoder forgets them then); ``at_rate`` gets the piece at each decoder's rate, for others of those."""
        if rate != self.rate:
            self.rate, self.resamplers = rate, {d.rate: Resampler(rate, d.rate) for d in self.decoders}
        at_rate = {} if at_rate is None else at_rate
        at_rate.update({to: r.feed(mono) for to, r in self.resamplers.items()})
        out: list[Output] = []
        heard: list[Heard] = []
        for decoder in self.decoders:
            out += decoder.feed(at_rate[decoder.rate], start)
            heard += decoder.heard()
        return out, heard

    def flush(self, now: datetime) -> Result:
        out: list[Output] = []
        heard: list[Heard] = []
        for decoder in self.decoders:
            out += decoder.flush(now)
            heard += decoder.heard()
        return out, heard


def serve(conn: Connection) -> None:
    """A worker's loop: requests in, replies out, in order, until the gateway closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the gateway stops us
    radios: dict[int, Decoders] = {}
    while True:
        try:
            op, key, *args = conn.recv()
        except (EOFError, OSError):
            return
        reply: Any = None
        try:
            if op == "add":
                radios[key] = Decoders([create_audio_decoder(name, rate, options) for name, rate, options in args[0]])
            elif op == "feed":
                reply = radios[key].feed(*args)
            elif op == "flush":
                reply = radios[key].flush(*args)
            elif op == "drop":
                radios.pop(key, None)
            elif op == "radios":
                reply = len(radios)
        except Exception as exc:  # noqa: BLE001 - a decoder's bug: raised in the driver as in its own thread
            reply = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(reply)


@dataclass
class _Worker:
    index: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: Any = None  # a multiprocessing Process of the spawn context
    conn: Connection | None = None
    generation: int = 0  # +1 at each start: radios added before are added again


class DecodePool:
    """The gateway's decoding workers; :meth:`radio` gives a radio's decoders in one of them."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"decode workers: {workers}, at least 1")
        # spawn, not fork: the gateway has threads (MQTT, drivers) whose locks a forked child would inherit held.
        self._mp = multiprocessing.get_context("spawn")
        self._workers = [_Worker(i) for i in range(workers)]
        self._turn = itertools.cycle(self._workers)
        self._keys = itertools.count(1)
        self._closed = False

    def radio(self, spec: Spec) -> RemoteDecoders:
        return RemoteDecoders(self, next(self._turn), next(self._keys), spec)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None and w.process.is_alive()]

    def _start(self, w: _Worker) -> None:
        self._stop(w)
        parent, child = self._mp.Pipe()
        w.process = self._mp.Process(target=serve, args=(child,), name=f"pttbridge-decode-{w.index}", daemon=True)
        w.process.start()
        child.close()
        w.conn = parent
        w.generation += 1
        log.info("decoding worker %d started (pid %d)", w.index, w.process.pid)

    @staticmethod
    def _stop(w: _Worker) -> None:
        if w.conn is not None:
            w.conn.close()
            w.conn = None
        if w.process is not None:
            w.process.join(2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(2)
            w.process = None

    def call(self, radio: RemoteDecoders, request: tuple[Any, ...]) -> Any:
        w = radio.worker
        with w.lock:
            if self._closed:
                raise WorkerLost("the decoding workers are stopped")
            if w.process is None or not w.process.is_alive():
                if w.process is not None:
                    log.warning("decoding worker %d ended (exit code %s): started again", w.index,
                                w.process.exitcode)
                self._start(w)
            assert w.conn is not None
            try:
                if radio.generation != w.generation:  # new to this worker, or the worker is new
                    self._exchange(w.conn, ("add", radio.key, radio.spec))
                    radio.generation = w.generation
                return self._exchange(w.conn, request)
            except (EOFError, OSError) as exc:
                self._stop(w)
                raise WorkerLost(f"decoding worker {w.index} ended: {exc or type(exc).__name__}") from None

    @staticmethod
    def _exchange(conn: Connection, request: tuple[Any, ...]) -> Any:
        conn.send(request)
        reply = conn.recv()
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def snapshot(self) -> list[dict[str, Any]]:
        """Each worker for the gateway's health: its pid (None: not running) and how often it was started
        (more than once: it died and was started again)."""
        out = []
        for w in self._workers:
            proc = w.process
            out.append({"pid": proc.pid if proc is not None and proc.is_alive() else None, "starts": w.generation})
        return out

    def radios(self) -> list[int]:
        """How many radios' decoders each worker holds (0 for one not running)."""
        counts = []
        for w in self._workers:
            with w.lock:
                alive = w.conn is not None and w.process is not None and w.process.is_alive()
                counts.append(self._exchange(w.conn, ("radios", 0)) if alive and w.conn is not None else 0)
        return counts

    def close(self) -> None:
        """Stop the workers. A worker still busy after ``CLOSE_WAIT_S`` (a decoder stuck in a loop) is killed:
        the driver thread waiting on it gets :class:`WorkerLost` instead of holding the gateway's stop."""
        self._closed = True
        for w in self._workers:
            if not w.lock.acquire(timeout=CLOSE_WAIT_S):
                log.warning("decoding worker %d still busy at stop: killed", w.index)
                if w.process is not None:
                    w.process.kill()
                w.lock.acquire()
            try:
                self._stop(w)
            finally:
                w.lock.release()


@dataclass(eq=False)
class RemoteDecoders:
    """A radio's decoders in a worker: :meth:`feed` and :meth:`flush` as the decoders' own, all of them."""

    pool: DecodePool
    worker: _Worker
    key: int
    spec: Spec
    generation: int = 0

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.spec]

    def feed(self, mono: Samples, rate: int, start: datetime, at_rate: dict[int, Samples] | None = None) -> Result:
        """As :meth:`Decoders.feed`; the piece is resampled in the worker, so ``at_rate`` gets nothing."""
        result: Result = self.pool.call(self, ("feed", self.key, mono, rate, start))
        return result

    def flush(self, now: datetime) -> Result:
        result: Result = self.pool.call(self, ("flush", self.key, now))
        return result

    def close(self) -> None:
        """The decoders are dropped from the worker (whose next start will not make them again)."""
        if self.generation == self.worker.generation:
            with contextlib.suppress(WorkerLost):
                self.pool.call(self, ("drop", self.key))
        self.generation = -1
