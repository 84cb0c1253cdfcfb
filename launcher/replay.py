"""Demo radios: bundled serial captures replayed into pseudo-terminals, for ``pttbridge up``.

Each ``[[demo.replay]]`` entry names a port string used by a driver (``demo://patrol-1``) and a
capture. ``up`` opens a pseudo-terminal per entry, points that driver at its slave side, and writes
the capture into the master side with the capture's own pacing, so that what the gateway reads
went through a real tty and the real serial driver, exactly as from a radio's data port.

A capture is JSON lines, one record per burst the radio sent::

    {"after_s": 2.0, "data": "$PKLSH,3012.5700,N,12012.6420,E,193001,A,100,1001,*4F\\r\\n"}

``data`` is text read as Latin-1 (each code point U+0000..U+00FF is one byte), so binary frames
(STX/ETX, KISS) are written with ``\\u0002``-style escapes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import tty
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Burst:
    after_s: float
    data: bytes


def load_capture(path: Path) -> list[Burst]:
    bursts = []
    for n, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rec = json.loads(line)
            bursts.append(Burst(float(rec.get("after_s", 0.0)), rec["data"].encode("latin-1")))
        except (ValueError, KeyError, TypeError, UnicodeEncodeError) as exc:
            raise ValueError(f"{path}:{n}: not a capture record ({exc})") from None
    return bursts


class PtyReplay:
    """One pseudo-terminal with a thread writing a capture into it, looping until stopped."""

    def __init__(self, capture: Path, *, loop: bool = True, speed: float = 1.0) -> None:
        self.capture = capture
        self.bursts = load_capture(capture)
        self.loop = loop
        self.speed = speed
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no line discipline: bytes pass as the radio sent them
        self.port = os.ttyname(self._slave)
        self.sent = 0
        self._writing = threading.Lock()  # a burst injected never lands inside one being replayed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replay:{capture.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for burst in self.bursts:
                if self._stop.wait(burst.after_s / self.speed):
                    return
                try:
                    with self._writing:
                        os.write(self.master, burst.data)
                except OSError as exc:
                    log.warning("demo replay %s stopped: %s", self.capture.name, exc)
                    return
                self.sent += 1
            if not self.loop:
                return

    def inject(self, data: bytes) -> None:
        """Write ``data`` into the port between the capture's bursts (a demo officer's answer); OSError
        when the port is closed."""
        with self._writing:
            os.write(self.master, data)
        self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
