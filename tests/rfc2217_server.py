"""A serial device server (RFC 2217, as Moxa NPort and ser2net speak it) that prints its modem lines.

    python tests/rfc2217_server.py PORT

Linux pseudo-terminals have no RTS or DTR (setting them fails with ENOTTY), so a test that must see
a PTT line from the other side keys it through this server instead: a separate process that prints
``RTS 1`` / ``RTS 0`` / ``DTR ...`` on stdout each time a client changes a line, and ``READY`` once it
listens. One client at a time, as a real device server allows.
"""

from __future__ import annotations

import socket
import sys

import serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as LoopSerial


class ObservedPort(LoopSerial):
    """A loopback port whose control lines are reported as they change."""

    def _update_rts_state(self) -> None:
        print(f"RTS {int(self._rts_state)}", flush=True)

    def _update_dtr_state(self) -> None:
        print(f"DTR {int(self._dtr_state)}", flush=True)


class _Socket:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


def main() -> None:
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    port = ObservedPort("loop://")
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        manager = serial.rfc2217.PortManager(port, _Socket(conn))
        while data := conn.recv(4096):
            port.write(b"".join(manager.filter(data)))  # payload bytes go round the loop, unused
        conn.close()


if __name__ == "__main__":
    main()
