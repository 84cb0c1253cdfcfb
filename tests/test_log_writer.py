"""The log written on a thread of its own: a reader that stalls holds up no thread that logs."""

from __future__ import annotations

import fcntl
import logging
import os
import threading

from support import wait_until

from monitoring.log_writer import StderrWriter


def test_a_stalled_reader_holds_up_nobody_and_hears_what_was_dropped() -> None:
    unread, fd = os.pipe()
    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)
    writer = StderrWriter(fd, limit=50)
    writer.setFormatter(logging.Formatter("%(message)s"))
    log = logging.Logger("test")  # not in the manager: nothing else hears it
    log.addHandler(writer)
    line = "x" * 200  # 21 lines fill the pipe; 50 more wait; the rest are dropped
    done = threading.Event()

    def chatter() -> None:
        for i in range(500):
            log.warning("%03d %s", i, line)
        done.set()

    threading.Thread(target=chatter, daemon=True).start()
    assert done.wait(10), "a thread that logs waited for the reader"
    wait_until(lambda: writer.dropped > 0, 5, "lines dropped")
    got = b""
    os.set_blocking(unread, False)

    def read_to_the_note() -> bool:
        nonlocal got
        try:
            got += os.read(unread, 65536)
        except BlockingIOError:
            pass
        return got.endswith(b"stderr was not read\n")

    wait_until(read_to_the_note, 5, "the queued lines, then the gap, written once the reader reads")
    *lines, note = got.decode().splitlines()
    kept = [int(x.split()[0]) for x in lines]
    assert kept == list(range(len(kept)))  # in order, the first ones kept
    assert f" {500 - len(kept)} log lines dropped" in note
    os.close(unread)
    os.close(fd)
