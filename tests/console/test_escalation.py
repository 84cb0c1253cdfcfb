"""Time limits, for real: an emergency nobody acknowledges within its limit is escalated by the bridge,
and the console says so (OVERDUE in the queue, a notification, the bell), and the history keeps it."""

from __future__ import annotations

from pathlib import Path

from rig import CountingApp, pklds_emergency, run, until, write_config
from support import Mosquitto, SocatLink, wait_until

from bridge.service import Bridge
from config.schema import load_config
from gateway.runner import Gateway


def test_an_emergency_nobody_acknowledges_is_escalated_on_every_console(
    tmp_path: Path, mosquitto: Mosquitto, socat_link: SocatLink
) -> None:
    cfg = write_config(tmp_path, mosquitto, f"sqlite:///{tmp_path / 'b.sqlite'}", socat_link.radio)
    cfg.write_text(cfg.read_text() + "\n[bridge.cameras]\ncategories = { alert = { ack_s = 2 } }\n")
    config = load_config(cfg)
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    console = CountingApp(config, "alice")

    async def scenario() -> None:
        async with console.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            socat_link.write(pklds_emergency(1001))
            await until(pilot, lambda: console.dispatch.queue.texts(), "the alert")
            assert not console.dispatch.queue.texts()[0]["label"].startswith("OVERDUE")
            bells = console.bells
            await until(pilot, lambda: console.dispatch.queue.texts()[0]["label"].startswith("OVERDUE"),
                        "the escalation", 10)
            assert "1 OVERDUE" in str(console.dispatch.queue.border_title)
            assert any("not acknowledged in time" in n for n in console.notes) and console.bells > bells
            [incident] = bridge.store.open_incidents()  # type: ignore[union-attr]
            detail = bridge.store.incident_detail(incident.id)  # type: ignore[union-attr]
            assert detail is not None
            assert [h.note for h in detail.history if h.action == "escalated"] == ["not acknowledged within 2 s"]

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: all(d.snapshot()["state"] == "open" for _, d in gateway.drivers), 5, "port open")
        run(scenario())
    finally:
        gateway.stop()
        bridge.stop()
