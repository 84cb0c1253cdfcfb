"""A serial device server (RFC 2217, as Moxa NPort and ser2net speak it) that prints its modem lines.

    python tests/rfc2217_server.py PORT

Linux pseudo-terminals have no RTS or DTR (setting them fails with ENOTTY), so a test that must see
a PTT line from the other side keys it through this server instead: a separate process that prints
``RTS 1`` / ``RTS 0`` / ``DTR ...`` on stdout each time a client changes a line, and ``READY`` once it
listens. Its input lines are set from stdin (``set cd 1``: the radio's COR closes) and notified to the
client as RFC 2217 modem-state changes. One client at a time, as a real device server allows.
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import ClassVar

import serial.rfc2217
from serial.urlhandler.protocol_loop import Serial as LoopSerial


class ObservedPort(LoopSerial):
    """A loopback port whose control lines are reported as they change, and whose input lines the test
    sets."""

    inputs: ClassVar[dict[str, bool]] = {"cts": False, "dsr": False, "cd": False, "ri": False}

    @property
    def cts(self) -> bool:
        return self.inputs["cts"]

    @property
    def dsr(self) -> bool:
        return self.inputs["dsr"]

    @property
    def cd(self) -> bool:
        return self.inputs["cd"]

    @property
    def ri(self) -> bool:
        return self.inputs["ri"]

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
    managers: list[serial.rfc2217.PortManager] = []

    def commands() -> None:
        for line in sys.stdin:
            words = line.split()
            if len(words) == 3 and words[0] == "set" and words[1] in port.inputs:
                port.inputs[words[1]] = words[2] == "1"
                for manager in managers[-1:]:
                    manager.check_modem_lines()
                print(f"{words[1]} {words[2]}", flush=True)

    threading.Thread(target=commands, daemon=True).start()
    print("READY", flush=True)
    while True:
        conn, _ = listener.accept()
        manager = serial.rfc2217.PortManager(port, _Socket(conn))
        managers.append(manager)
        while data := conn.recv(4096):
            port.write(b"".join(manager.filter(data)))  # payload bytes go round the loop, unused
        conn.close()


if __name__ == "__main__":
    main()
