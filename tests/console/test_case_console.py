"""A camera's case in a headless console, over a real Mosquitto and a bridge on SQLite and PostgreSQL: the
case comes up with its department's part, its duty and limit; the dispatcher adds a department (``d``)
and resolves it, saying whether it was a real case (``r``, then ``f`` and the reason): the verdict is the
bridge's, in its history, on every console."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from rig import CountingApp, run, until
from support import Mosquitto, free_port, wait_until

from bridge.service import Bridge
from config.schema import parse_config
from console.screens.department import DepartmentScreen
from console.screens.incident_detail import IncidentDetailScreen
from console.screens.resolve import ResolveScreen

PREFIX = "pttbridge/v1"


def test_a_camera_case_gets_a_department_and_is_verified_from_the_console(
    tmp_path: Path, mosquitto: Mosquitto, database_url: str
) -> None:
    config = parse_config({
        "mqtt": {"url": mosquitto.url},
        "data_dir": str(tmp_path),
        "bridge": {"database_url": database_url, "reannounce_s": 600,
                   "cameras": {"evidence": False, "categories": {"street_stall": {"min_score": 0.5}}}},
        "cameras": [{"id": "dome-3", "name": "Wenyi Rd / Gudun Rd", "lat": 30.28, "lon": 120.11, "fov_deg": 360}],
        "departments": [{"name": "urban-management", "units": ["fleetsync:100-*"]},
                        {"name": "police", "units": ["mdc:*"]}],
        "case_kinds": {"street_stall": {"departments": ["urban-management"], "accept_s": 300,
                                        "duty": "City Appearance Regulations art. 12"}},
    })
    bridge = Bridge(config)
    bridge.start()
    store = bridge.store
    assert store is not None
    cams = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-camera-{free_port()}")
    cams.connect("127.0.0.1", mosquitto.port)
    cams.loop_start()
    console = CountingApp(config, "alice")

    async def scenario() -> None:
        async with console.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            cams.publish(f"{PREFIX}/cam/dome-3/event", json.dumps({"label": "street_stall", "score": 0.9}),
                         qos=1).wait_for_publish(5)
            await until(pilot, lambda: bool(console.dispatch.queue.texts()), "the case in the queue")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the detail")
            detail = console.screen
            assert isinstance(detail, IncidentDetailScreen)
            assert [(r["department"], r["state"], r["accept"]) for r in detail.parts.texts()] == [
                ("urban-management", "new", detail.parts.texts()[0]["accept"])]
            assert detail.parts.texts()[0]["accept"].endswith(" of 5m00s")
            # Police are needed as well: d, the only department the case lacks, enter.
            await pilot.press("d")
            await until(pilot, lambda: isinstance(console.screen, DepartmentScreen), "the department dialog")
            await pilot.press("enter")
            await until(pilot, lambda: len(detail.parts.texts()) == 2, "police's part on screen", 10)
            assert [r["department"] for r in detail.parts.texts()] == ["urban-management", "police (assist)"]
            # It was no stall: a false detection, and why.
            await pilot.press("r")
            await until(pilot, lambda: isinstance(console.screen, ResolveScreen), "the resolve dialog")
            await pilot.press("f", *"a delivery tricycle parked", "enter")
            await until(pilot, lambda: store.incidents()[0].verdict is not None, "the verdict", 10)

    try:
        wait_until(lambda: bridge.connected, 10, "the bridge connected")
        run(scenario())
    finally:
        cams.loop_stop()
        cams.disconnect()
        bridge.stop()
    [case] = store.incidents()
    assert (case.state, case.resolution, case.verdict, case.verdict_reason) == (
        "resolved", "false_alarm", "false_detection", "a delivery tricycle parked")
    assert [(p.department, p.state) for p in case.parts] == [("urban-management", "closed"), ("police", "closed")]
    detail = store.incident_detail(case.id)
    assert detail is not None
    assert [(h.actor, h.action, h.note) for h in detail.history][-4:] == [
        ("alice", "department", "police added"), ("alice", "acknowledged", None), ("alice", "resolved", "false_alarm"),
        ("alice", "verified", "false detection: a delivery tricycle parked")]
