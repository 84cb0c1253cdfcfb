"""The serial ports and audio devices a gateway can see, for its retained state (the console's health
screen shows them, so that a technician can tell "the cable is not there" from "the driver is wrong").

    {"ports": [{"device": "/dev/ttyUSB0", "description": "...", "hwid": "..."}, ...] | "error text",
     "audio_devices": [{"index": 3, "name": "...", "inputs": 2, ...}, ...] | "error text"}

Listing is cheap but not free (PortAudio, a walk of /sys), and the state is published every few seconds
on request: the lists are read again at most every :data:`REFRESH_S`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

REFRESH_S = 30.0

_lock = threading.Lock()
_cached: dict[str, Any] | None = None
_read_at = 0.0


def _ports() -> list[dict[str, str]] | str:
    try:
        from serial.tools import list_ports

        return [{"device": p.device, "description": p.description or "", "hwid": p.hwid or ""}
                for p in sorted(list_ports.comports(), key=lambda p: p.device)]
    except Exception as exc:  # noqa: BLE001 - a listing failure is news for the screen, never a reason to stop the state
        return f"cannot list serial ports: {exc}"


def _audio() -> list[dict[str, Any]] | str:
    try:
        from drivers.audio.source import list_devices

        return list_devices()
    except Exception as exc:  # noqa: BLE001 - AudioSourceError says how to install PortAudio; anything: on the screen
        return str(exc) or type(exc).__name__


def visible_devices(now: float | None = None) -> dict[str, Any]:
    """``{"ports": ..., "audio_devices": ...}``, read again when older than :data:`REFRESH_S`."""
    global _cached, _read_at
    t = time.monotonic() if now is None else now
    with _lock:
        if _cached is None or t - _read_at >= REFRESH_S:
            _cached = {"ports": _ports(), "audio_devices": _audio()}
            _read_at = t
        return _cached
