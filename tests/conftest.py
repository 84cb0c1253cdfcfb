from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Mosquitto, SocatLink


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def socat_link(tmp_path: Path) -> Iterator[SocatLink]:
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    link = SocatLink(tmp_path)
    link.plug()
    yield link
    link.unplug() if link.proc else None
