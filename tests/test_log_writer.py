"""The log written on a thread of its own: a reader that stalls holds up no thread that logs."""

from __future__ import annotations

import fcntl
import logging
import os
import re
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
    # A note may also come between lines: the writer can free a place in the queue while lines are
    # still being dropped. Every line is either written, in order, or counted in a note.
    written: list[int] = []
    dropped = 0
    for text in got.decode().splitlines():
        if text.endswith("stderr was not read"):
            dropped += int(re.search(r" (\d+) log lines dropped", text).group(1))  # type: ignore[union-attr]
        else:
            written.append(int(text.split()[0]))
    assert written == sorted(written) and len(set(written)) == len(written)
    assert written[:20] == list(range(20))  # the first ones kept
    assert len(written) + dropped == 500
    writer.close()
    os.close(unread)
    os.close(fd)


def test_lines_still_reach_stderr_while_a_library_points_descriptor_2_elsewhere() -> None:
    """sounddevice sends descriptor 2 to /dev/null while PortAudio starts; a line logged from another
    thread meanwhile must still reach the reader of stderr (here a pipe on the descriptor given)."""
    read_end, stderr = os.pipe()
    writer = StderrWriter(stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))
    log = logging.Logger("test")
    log.addHandler(writer)
    log.warning("before")
    writer.flush()
    saved = os.dup(stderr)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stderr)  # what sounddevice does to descriptor 2 (here: to the one we gave)
    log.warning("gateway running")
    writer.flush()
    os.dup2(saved, stderr)
    for fd in (saved, devnull):
        os.close(fd)
    writer.close()
    os.set_blocking(read_end, False)
    got = b""
    while not got.endswith(b"gateway running\n"):
        got += os.read(read_end, 4096)
    assert got == b"before\ngateway running\n"
    os.close(read_end)
    os.close(stderr)
