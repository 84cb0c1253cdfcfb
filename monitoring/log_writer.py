"""The programs' log on stderr, written by a thread of its own so that no log line ever waits for the reader.

A process whose stderr is a pipe blocks in ``write`` once the pipe is full (64 KiB on Linux) and nobody
reads it: a benchmark that read only the first lines, a log shipper that stalled, a paused terminal.
Python's ``StreamHandler`` writes under its lock on the caller's thread, so one blocked write held up
every thread that logs: a gateway at the default verbosity (a line per event) stopped decoding about a
minute into a 16-channel run, and did not stop after SIGTERM either (``stop()`` logs too).

Here the caller only formats the line and queues it; the writer thread does the blocking ``write``.
When the queue is full (the reader stalled for long), lines are dropped and the next line written says
how many. A log line is not an event: events are in the outbox, whatever becomes of the log.

The writer writes to a descriptor of its own for stderr, not to descriptor 2 itself: sounddevice points
descriptor 2 at /dev/null while PortAudio starts (to hide ALSA's complaints about missing cards), and
every line written meanwhile from any thread went there. Under load that window is long: a gateway's
"running" line was lost so, and a benchmark waiting for it waited for ever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

QUEUE_LINES = 10_000  # lines waiting for the reader; past that they are dropped and counted
FLUSH_S = 2.0  # how long flush() (at exit) waits for the lines queued to be written


class StderrWriter(logging.Handler):
    """Formats on the caller's thread; a daemon thread writes to ``fd`` (a stalled reader blocks only it)."""

    def __init__(self, fd: int, *, limit: int = QUEUE_LINES) -> None:
        super().__init__()
        self.fd = os.dup(fd)  # the same file, whatever is put on ``fd`` later (see the module)
        self.limit = limit
        self.dropped = 0
        self._closed = False
        self._lines: deque[bytes] = deque()
        self._unwritten = 0  # queued or being written
        self._cond = threading.Condition(threading.Lock())
        threading.Thread(target=self._write, name="log-writer", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:  # noqa: BLE001 - as logging does: a bad record is reported, never raised
            self.handleError(record)
            return
        with self._cond:
            if len(self._lines) >= self.limit:
                self.dropped += 1
                return
            if self.dropped:  # said where the gap is, in order
                self._lines.append(self._note())
                self._unwritten += 1
            self._lines.append(line)
            self._unwritten += 1
            self._cond.notify_all()

    def flush(self) -> None:
        """Wait a moment for what is queued to be written (at exit); never longer than ``FLUSH_S``."""
        with self._cond:
            self._cond.wait_for(lambda: self._unwritten == 0, FLUSH_S)

    def close(self) -> None:
        """The writer thread writes what is queued, then closes its descriptor and ends."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        super().close()

    def _note(self) -> bytes:
        """The line that says how many were dropped (under the condition's lock); counting starts over."""
        dropped, self.dropped = self.dropped, 0
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp} WARNING {__name__}: {dropped} log lines dropped: stderr was not read\n".encode()

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._lines or self.dropped or self._closed))
                if self._lines:
                    line = self._lines.popleft()
                elif self.dropped:  # the queue written out after a gap, and nothing logged since: say it now
                    line = self._note()
                    self._unwritten += 1
                else:  # closed, and all written
                    os.close(self.fd)
                    return
            try:
                while line:  # a pipe may take part of it
                    line = line[os.write(self.fd, line):]
            except OSError:  # the reader went away (EPIPE): the line is lost, the program goes on
                pass
            with self._cond:
                self._unwritten -= 1
                self._cond.notify_all()
