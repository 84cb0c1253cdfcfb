"""The demo site stopped as a whole: the bridge, which fetches the demo cameras' snapshots as evidence,
stops while the demo's snapshot server still answers (stopped the other way round, the bridge's last
fetches were refused and logged as lost evidence)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from support import wait_until

from config.schema import load_config
from launcher.up import Up

ROOT = Path(__file__).parents[2]


def test_the_snapshots_are_served_until_the_bridge_has_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTTBRIDGE_DATA", str(tmp_path))
    monkeypatch.chdir(ROOT)
    site = Up(load_config(ROOT / "config" / "default.toml"), None, speed=4, headless=True, operator="alice",
              say=lambda _: None)
    served: list[int] = []
    try:
        site.start()
        wait_until(lambda: site.bridge.connected, 20, "the bridge connected")
        [picture, *_] = site.snapshots.files
        bridge_stop = site.bridge.stop

        def stop_and_fetch() -> None:
            with urllib.request.urlopen(site.snapshots.url(picture), timeout=5) as response:
                served.append(response.status)
            bridge_stop()

        site.bridge.stop = stop_and_fetch
    finally:
        site.stop()
    assert served == [200]
