"""Everything ``pttbridge up`` runs around its console (or, headless, its printed lines): the broker (the
embedded one unless a URL is given), the demo radios replaying their captures into pseudo-terminals, the
bridge, the gateway and the demo's case (:mod:`launcher.story`). One object, started and stopped as a
whole, so that the command and its tests run the very same site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from launcher.broker import EmbeddedBroker
from launcher.replay import PtyReplay
from launcher.story import SnapshotServer, Story


class Up:
    """The demo site of ``config`` (a :class:`config.schema.Config` with its ``[demo]`` tables). ``url``: a
    broker to use instead of the embedded one. :attr:`config` is what the site runs once started: its
    broker's URL, the replays' pseudo-terminals as the demo radios' ports, the snapshots' URLs."""

    def __init__(self, config: Any, url: str | None, *, speed: float, headless: bool, operator: str,
                 say: Callable[[str], None]) -> None:
        self.broker = EmbeddedBroker() if url is None else None
        self.url = url
        self.replays = {r.port: PtyReplay(r.capture, loop=r.loop, speed=speed) for r in config.demo.replay}
        self.snapshots = SnapshotServer({f"{d.camera}.jpg": d.snapshot for d in config.demo.detection})
        self.config = config
        self.speed, self.headless, self.operator, self.say = speed, headless, operator, say
        self.bridge: Any = None
        self.gateway: Any = None
        self.story: Story | None = None

    def start(self) -> None:
        from bridge.service import Bridge
        from gateway.runner import Gateway

        if self.broker is not None:
            self.broker.start()
            self.url = self.broker.url
        assert self.url is not None
        self.config = demo_config(self.config, self.url, embedded=self.broker is not None, replays=self.replays,
                                  snapshots=self.snapshots)
        # Served before the bridge starts and until it has stopped: the bridge fetches evidence from it.
        self.snapshots.start()
        self.bridge = Bridge(self.config)
        self.bridge.start()
        self.gateway = Gateway(self.config)
        self.gateway.start()
        for replay in self.replays.values():
            replay.start()
        self.story = Story(self.config, self.replays, self.snapshots, speed=self.speed, headless=self.headless,
                           operator=self.operator, say=self.say)
        self.story.start()

    def summary(self) -> str:
        """One paragraph: what runs where, and where the transmitted audio goes."""
        assert self.story is not None
        said = ", ".join(f"{name}: {path}" for name, path in self.story.announcements.items())
        return (f"pttbridge up: broker {self.url}{' (embedded)' if self.broker else ''}, gateway "
                f"{self.gateway.gw.name} with {len(self.gateway.drivers)} radios ({len(self.replays)} replaying "
                f"demo captures), bridge on {self.bridge.database_url.split('///')[-1]}, demo snapshots on "
                f"http://127.0.0.1:{self.snapshots.port}/. What the gateway transmits goes to files ({said}).")

    def stop(self) -> None:
        """Stops what was started, the last started first (a part that never started is skipped)."""
        if self.story is not None:
            self.story.stop()
        if self.gateway is not None:
            self.gateway.stop()
        for replay in self.replays.values():
            replay.stop()
        if self.bridge is not None:
            self.bridge.stop()
        self.snapshots.stop()
        if self.broker is not None:
            self.broker.stop()


def demo_config(config: Any, url: str, *, embedded: bool, replays: dict[str, PtyReplay],
                snapshots: SnapshotServer) -> Any:
    """The configuration ``up`` runs: its broker, the demo radios' pseudo-terminals as their ports, the demo
    cameras' snapshots on the demo's HTTP server."""
    from config.schema import Config

    raw = config.model_dump()
    raw["mqtt"]["url"] = url
    for camera in raw["cameras"]:
        if f"{camera['id']}.jpg" in snapshots.files:
            camera["snapshot_url"] = snapshots.url(f"{camera['id']}.jpg")
    if embedded:
        raw["bridge"]["mqtt_version"] = "3.1.1"  # the embedded broker speaks MQTT 3.1.1 only
    for channel in raw["channels"]:
        for driver in channel["drivers"]:
            if driver.get("port") in replays:
                driver["port"] = replays[driver["port"]].port
    return Config.model_validate(raw)
