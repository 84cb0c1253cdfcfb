"""Fixtures of the security tests: the site's PKI (once per session), a Mosquitto started from the
shipped secure configuration and ACL (per test), and probe clients connecting as the site's identities."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from secure_broker import Pki, Probe, SecureBroker


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        pytest.fail("openssl and mosquitto are needed (apt-get install openssl mosquitto)")
    return Pki(tmp_path_factory.mktemp("security"))


@pytest.fixture
def secure_broker(tmp_path: Path, pki: Pki) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path, pki)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def probes(secure_broker: SecureBroker) -> Iterator[Callable[..., Probe]]:
    """``probes(ident, **kwargs)`` opens a Probe, closed after the test."""
    opened: list[Probe] = []

    def open_probe(ident: str | None, **kwargs: Any) -> Probe:
        probe = secure_broker.client(ident, **kwargs)
        opened.append(probe)
        return probe

    yield open_probe
    for probe in opened:
        probe.close()
