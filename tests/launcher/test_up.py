"""The demo site stopped as a whole: the bridge, which fetches the demo cameras' snapshots as evidence,
stops while the demo's snapshot server still answers (stopped the other way round, the bridge's last
fetches were refused and logged as lost evidence)."""

from __future__ import annotations

import urllib.request

from support import wait_until

from launcher.up import Up


def test_the_snapshots_are_served_until_the_bridge_has_stopped(demo_site: Up) -> None:
    site = demo_site
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
