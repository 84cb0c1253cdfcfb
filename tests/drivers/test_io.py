"""The I/O driver template and its registry, shown with a driver from outside the package: the
``acme_radio`` distribution in tests/data/plugins, found through its entry point as an installed
package would be (nothing here patches the registry)."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import get_args

import pytest
from support import free_port, wait_until

from drivers.base import Output, Rejected
from drivers.io import IoDriver
from drivers.registry import IO_BUILTIN, UnknownIoDriver, io_driver_class, io_driver_types
from gateway.events import Decoded, Kind

PLUGINS = Path(__file__).parents[1] / "data" / "plugins"


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin's distribution on the path, where importlib.metadata looks for installed ones."""
    monkeypatch.syspath_prepend(str(PLUGINS))


def test_the_built_in_drivers_are_registered_by_the_type_of_their_table() -> None:
    for type_ in ("serial", "lines", "modbus", "audio"):
        cls = io_driver_class(type_)
        assert issubclass(cls, IoDriver) and type_ == cls.TYPE
        assert get_args(cls.CONFIG.model_fields["type"].annotation) == (type_,)  # the model of that table


def test_a_plugin_is_found_through_its_entry_point_and_only_where_it_is_installed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownIoDriver, match="unknown driver type 'acme-udp'; known: audio, lines, modbus, serial"):
        io_driver_class("acme-udp")
    monkeypatch.syspath_prepend(str(PLUGINS))
    assert io_driver_types() == {**IO_BUILTIN, "acme-udp": "acme_radio:AcmeUdpDriver",
                                 "acme-broken": "acme_radio_missing:Driver"}
    cls = io_driver_class("acme-udp")
    assert (cls.__module__, cls.__name__, cls.TYPE) == ("acme_radio", "AcmeUdpDriver", "acme-udp")


def test_a_plugin_that_cannot_load_fails_alone_and_says_why(installed: None) -> None:
    with pytest.raises(UnknownIoDriver, match="driver type 'acme-broken' cannot be loaded from acme_radio_missing: "
                                              "No module named 'acme_radio_missing'"):
        io_driver_class("acme-broken")
    assert io_driver_class("acme-udp").TYPE == "acme-udp"


class Recorder:
    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self._lock = threading.Lock()

    def __call__(self, out: list[Output]) -> None:
        with self._lock:
            self.outputs.extend(out)

    def seen(self) -> list[Output]:
        with self._lock:
            return list(self.outputs)


def test_the_template_reports_a_device_it_cannot_open_and_opens_it_when_it_can(
        installed: None, caplog: pytest.LogCaptureFixture) -> None:
    """The plugin writes only open, pump and close; the thread, backoff, health and counters it inherits
    are what this shows, with a real fault: its UDP port is held by another socket."""
    caplog.set_level(logging.INFO)
    port = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    got = Recorder()
    from acme_radio import AcmeUdpDriver  # installed by the fixture

    assert io_driver_class("acme-udp") is AcmeUdpDriver
    driver = AcmeUdpDriver("lobby/acme", f"127.0.0.1:{port}", got)
    driver.start()
    try:
        wait_until(lambda: driver.snapshot()["reconnects"] >= 2, 5, "the driver to find the port taken twice")
        snap = driver.snapshot()
        assert snap["last_error"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        assert (snap["state"], snap["listen"]) == ("down", f"127.0.0.1:{port}")
        blocker.close()
        wait_until(lambda: driver.snapshot()["state"] == "open", 10, "the driver to open the port once free")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as console:
            for datagram in (b"EMERGENCY 4711", b"\x00garbage"):
                console.sendto(datagram, ("127.0.0.1", port))
        wait_until(lambda: len(got.seen()) == 2, 5, "both datagrams handed on")
        alert, garbage = got.seen()
        assert isinstance(alert, Decoded) and (alert.kind, alert.unit) == (Kind.ALERT, "acme:4711")
        assert isinstance(garbage, Rejected) and garbage.raw == b"\x00garbage"
        assert {k: driver.snapshot()[k] for k in ("datagrams", "decoded", "rejected")} == {
            "datagrams": 2, "decoded": 1, "rejected": 1}
        assert "lobby/acme: rejected acme: expected EMERGENCY <id> or PTT <id> [00 67 61 72" in caplog.text
        # The same reason is logged once however often the port is retried.
        assert caplog.text.count("Address already in use") == 1
    finally:
        driver.stop()
    assert driver.snapshot()["state"] == "stopped" and not driver._thread.is_alive()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # closed by the driver's thread on its way out
