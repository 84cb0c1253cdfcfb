"""Fixtures of real parts shared by every test folder: a Mosquitto per test, socat pty pairs, and a
database URL for each backend (a SQLite file; a real PostgreSQL server started once per session)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from support import DeviceServer, Mosquitto, Postgres, PulseNullSink, SocatLink, create_database

# Hypothesis fails an example that takes over 200 ms by default: a timing assertion, which a loaded machine
# trips (speed is measured in bench/). What the tests assert is what the input does, however long it takes.
settings.register_profile("pttbridge", deadline=None)
settings.load_profile("pttbridge")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def socat_link(tmp_path: Path) -> Iterator[SocatLink]:
    if shutil.which("socat") is None:
        if os.environ.get("CI"):
            pytest.fail("socat is not installed (apt-get install socat)")
        pytest.skip("socat is not installed")
    link = SocatLink(tmp_path)
    link.plug()
    yield link
    link.unplug() if link.proc else None


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server for the session: PTTBRIDGE_TEST_POSTGRES_URL if set, else one started here."""
    given = os.environ.get("PTTBRIDGE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    try:
        server = Postgres()
        server.start()
    except (RuntimeError, OSError, KeyError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):  # CI must run the PostgreSQL path, not skip it quietly
            pytest.fail(f"PostgreSQL unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server.url()
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    admin = request.getfixturevalue("postgres_admin_url")
    return create_database(admin, f"pttbridge_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def pulse_null_sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PulseNullSink]:
    """A private PulseAudio daemon with a null sink; capture its monitor from PortAudio device ``pulse``
    (``DeviceSource(pulse_null_sink.device, rate)``) while ``pulse_null_sink.play(samples, rate)`` plays.
    Mono; ``@pytest.mark.parametrize("pulse_null_sink", [2], indirect=True)`` gives a 2-channel sink."""
    try:
        import sounddevice  # noqa: F401 - PortAudio itself must load

        sink = PulseNullSink(tmp_path, channels=getattr(request, "param", 1))
        sink.start()
    except (RuntimeError, OSError, ImportError, AssertionError) as exc:
        if os.environ.get("CI"):  # CI must run the live audio path, not skip it quietly
            pytest.fail(f"PulseAudio/PortAudio unavailable: {exc}")
        pytest.skip(f"PulseAudio/PortAudio unavailable: {exc}")
    yield sink
    sink.stop()


@pytest.fixture
def pulse_radio(tmp_path: Path) -> Iterator[PulseNullSink]:
    """A receive sink (played by the test, captured by the gateway as device ``pulse``) and a transmit
    sink (played by the gateway into device ``pulse``, recorded by the test with ``record_tx()``)."""
    try:
        import sounddevice  # noqa: F401 - PortAudio itself must load

        sink = PulseNullSink(tmp_path, tx_sink="pttbridge_tx")
        sink.start()
    except (RuntimeError, OSError, ImportError, AssertionError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PulseAudio/PortAudio unavailable: {exc}")
        pytest.skip(f"PulseAudio/PortAudio unavailable: {exc}")
    yield sink
    sink.stop()


@pytest.fixture
def device_server() -> Iterator[DeviceServer]:
    """A serial device server process whose RTS/DTR changes are seen from the other side."""
    server = DeviceServer()
    yield server
    server.stop()


@pytest.fixture
def demo_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``pttbridge up``'s site on the shipped configuration (config/default.toml), not started: its data in
    tmp_path, run from the repository as the command is. Started and stopped by the test (a
    :class:`launcher.up.Up`, headed: no stand-in dispatcher)."""
    from config.schema import load_config
    from launcher.up import Up

    root = Path(__file__).parents[1]
    monkeypatch.setenv("PTTBRIDGE_DATA", str(tmp_path))
    monkeypatch.chdir(root)
    return Up(load_config(root / "config" / "default.toml"), None, speed=4, headless=False, operator="alice",
              say=lambda _: None)
