"""The transmitter of one channel: key PTT, wait the lead-in, play, wait the tail, release.

    key ──lead-in──▶ audio ──tail──▶ release
     └──────────── at most timeout_s, then released whatever is still playing (stuck PTT) ──┘

One lock per channel: two sends never overlap on one radio; a send that cannot get the radio within
``busy_wait_s`` fails as busy rather than queueing behind a stuck one. A burst (``send``) is played
whole; a live transmission (``stream``: a dispatcher talking) plays blocks as they come, until its
source says it is over, with the same lead-in, tail and time-out. Every send ends with PTT
released, also when playing failed; a release that fails is logged loudly, since a keyed radio blocks
the channel for everyone on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from drivers.audio.base import Samples
from drivers.audio.playback import AudioOutput, resample_to
from drivers.audio.source import AudioSourceError
from drivers.ptt import Ptt, PttError

log = logging.getLogger(__name__)

Result = Literal["sent", "failed", "busy", "timeout"]


@dataclass(frozen=True, slots=True)
class TxReport:
    result: Result
    reason: str = ""
    keyed_s: float = 0.0  # how long PTT was keyed


class Transmitter:
    def __init__(self, name: str, output: AudioOutput, ptt: Ptt, *, lead_in_s: float = 0.3, tail_s: float = 0.1,
                 timeout_s: float = 10.0, busy_wait_s: float = 5.0) -> None:
        self.name, self.output, self.ptt = name, output, ptt
        self.lead_in_s, self.tail_s, self.timeout_s, self.busy_wait_s = lead_in_s, tail_s, timeout_s, busy_wait_s
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.keyed = False

    def send(self, samples: Samples, rate: int, what: str = "audio") -> TxReport:
        """Transmit ``samples`` (mono, at ``rate``); blocks until PTT is released again."""
        if not self._lock.acquire(timeout=self.busy_wait_s):
            return self._count(TxReport("busy", f"{self.name} is still transmitting"))
        try:
            burst = resample_to(samples, rate, self.output.rate)
            return self._count(self._send(lambda abort: self.output.play(burst, abort), what))
        finally:
            self._lock.release()

    def stream(self, next_block: Callable[[], Samples | None], what: str, *, wait_s: float = 0.0,
               on_keyed: Callable[[], None] | None = None) -> TxReport:
        """Transmit what ``next_block`` gives (mono, at the output's rate, asked for as the output plays)
        until it gives None; blocks until PTT is released. Busy at once (or after ``wait_s``) if the radio
        is transmitting something else. ``on_keyed`` is called once PTT is keyed."""
        got = self._lock.acquire(timeout=wait_s) if wait_s > 0 else self._lock.acquire(blocking=False)
        if not got:
            return self._count(TxReport("busy", f"{self.name} is transmitting something else"))
        try:
            return self._count(self._send(lambda abort: self.output.play_stream(next_block, abort), what, on_keyed))
        finally:
            self._lock.release()

    @property
    def busy(self) -> bool:
        """A transmission is under way (or waiting for PTT)."""
        return self._lock.locked()

    def _send(self, play: Callable[[threading.Event], None], what: str,
              on_keyed: Callable[[], None] | None = None) -> TxReport:
        abort = threading.Event()
        stuck = threading.Timer(self.timeout_s, abort.set)  # the watchdog: a stuck send is cut off
        began = time.monotonic()
        try:
            self.ptt.key(True)
        except PttError as exc:
            self._release()
            return TxReport("failed", str(exc))
        self.keyed = True
        log.info("%s: PTT keyed (%s) for %s", self.name, self.ptt.name, what)
        stuck.start()
        if on_keyed is not None:
            on_keyed()
        report = TxReport("sent")
        try:
            if not abort.wait(self.lead_in_s):
                play(abort)
                abort.wait(self.tail_s)
        except (AudioSourceError, OSError) as exc:
            report = TxReport("failed", f"playing into {self.output.name}: {exc}")
        finally:
            timed_out = abort.is_set() and report.result == "sent"
            stuck.cancel()
            keyed_s = time.monotonic() - began
            released = self._release()
        if timed_out:
            log.error("%s: PTT released after the %.1f s timeout", self.name, self.timeout_s)
            report = TxReport("timeout", f"still transmitting after {self.timeout_s:g} s; PTT released")
        if not released and report.result == "sent":
            report = TxReport("failed", "PTT could not be released")
        return TxReport(report.result, report.reason, round(keyed_s, 3))

    def _release(self) -> bool:
        try:
            self.ptt.key(False)
        except PttError as exc:
            log.critical("%s: PTT NOT RELEASED: %s", self.name, exc)
            return False
        self.keyed = False
        log.info("%s: PTT released", self.name)
        return True

    def _count(self, report: TxReport) -> TxReport:
        if report.result == "sent":
            self.sent += 1
        else:
            self.failed += 1
            log.warning("%s: transmission %s: %s", self.name, report.result, report.reason)
        return report

    def snapshot(self) -> dict[str, object]:
        return {"output": self.output.name, "ptt": self.ptt.name, "keyed": self.keyed, "sent": self.sent,
                "failed": self.failed}

    def close(self) -> None:
        self.ptt.close()
