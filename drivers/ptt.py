"""Push-to-talk keying: what makes a radio transmit when the gateway has something to send.

    SerialPtt   the RTS or DTR line of a serial port (the usual radio interface: a transistor on RTS)
    CoilPtt     a coil of a Modbus I/O module (any callable that sets an output)
    VoxPtt      nothing: the radio keys itself on the audio (VOX); the lead-in must cover its attack

A keyer is thin I/O and holds no timing: the transmitter (gateway/transmit.py) decides when to key,
how long the lead-in and tail are, and releases a stuck PTT.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Literal, Protocol

import serial

log = logging.getLogger(__name__)


class PttError(OSError):
    """The PTT could not be keyed or released (port gone, module unreachable)."""


class Ptt(Protocol):
    name: str

    def key(self, on: bool) -> None:
        """Key (True) or release (False) the transmitter; raises PttError."""

    def close(self) -> None: ...


class SerialPtt:
    """Keys through a modem-control line of a serial port (any pyserial URL, e.g. rfc2217://).

    The port is opened on first use and kept open: on many USB adapters opening a port pulses RTS and
    DTR, which would key the radio for a moment. ``active_low`` is for interfaces that key on a low line.
    """

    def __init__(self, url: str, line: Literal["rts", "dtr"] = "rts", *, active_low: bool = False,
                 opener: Callable[[str], serial.SerialBase] | None = None) -> None:
        self.name = f"{line}:{url}"
        self.url, self.line, self.active_low = url, line, active_low
        self._open = opener or self._open_released
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()

    def _open_released(self, url: str) -> serial.SerialBase:
        # pyserial raises RTS and DTR on open unless told otherwise: that would key the radio.
        port = serial.serial_for_url(url, do_not_open=True, timeout=0)
        setattr(port, self.line, self.active_low)
        port.open()
        return port

    def key(self, on: bool) -> None:
        level = on != self.active_low
        with self._lock:
            try:
                if self._port is None:
                    self._port = self._open(self.url)
                setattr(self._port, self.line, level)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._drop()
                raise PttError(f"PTT on {self.url} ({self.line.upper()}): {exc}") from exc

    def _drop(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

    def close(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    setattr(self._port, self.line, self.active_low)  # released, whatever happened before
                except (serial.SerialException, OSError, ValueError):
                    pass
            self._drop()


class CoilPtt:
    """Keys through an output that someone else drives, e.g. ``ModbusDriver.write_coil``."""

    def __init__(self, name: str, write: Callable[[bool], None]) -> None:
        self.name = name
        self._write = write

    def key(self, on: bool) -> None:
        try:
            self._write(on)
        except Exception as exc:  # the module's own error types vary (pymodbus, OSError, timeouts)
            raise PttError(f"PTT {self.name}: {exc}") from exc

    def close(self) -> None:
        pass


class VoxPtt:
    """The radio keys itself on the transmitted audio; nothing to switch."""

    name = "vox"

    def key(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass
