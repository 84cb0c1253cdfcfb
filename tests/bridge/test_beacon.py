"""The command-center beacon: a lamp on a Modbus I/O module, lit by the bridge while an incident is
unacknowledged. A wired panic button on the same (real, separate-process) module raises the alert."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
from support import ModbusServer, Mosquitto, free_port, wait_until

from bridge.service import Bridge
from config.schema import parse_config
from gateway.runner import Gateway


def test_the_beacon_is_lit_while_an_incident_waits_for_a_dispatcher(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    module = ModbusServer(tmp_path, ["--tcp", str(port)], device_id=1)
    module.start()
    config = parse_config({
        "gateway": {"name": "gw-cc", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}", "beacon": "gw-cc/beacon"},
        "channels": [{"name": "center", "drivers": [{
            "type": "modbus", "name": "io", "url": f"tcp://127.0.0.1:{port}", "slave": 1, "poll_interval_s": 0.05,
            "points": [
                {"name": "front-desk-panic", "table": "discrete_input", "address": 0, "kind": "alert",
                 "unit": "io:front-desk", "label": "front desk panic button"},
                {"name": "beacon", "table": "coil", "address": 7},
            ]}]}],
    })
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    console = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-console-{free_port()}")
    console.connect("127.0.0.1", mosquitto.port)
    console.loop_start()
    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected and console.is_connected(), 10,
                   "bridge, gateway and console connected")
        module.expect("write co 7 0")  # at start: nothing waits, the beacon is off
        # The panic button read as released first: a press is a change from that.
        wait_until(lambda: gateway.health()["radios"]["center/io"]["points"].get("front-desk-panic") == 0, 5,
                   "the panic button read")
        module.set("di", 0, 1)  # someone presses the panic button at the front desk
        module.expect("write co 7 1")
        store = bridge.store
        assert store is not None
        [incident] = store.open_incidents()
        assert incident.unit == "io:front-desk" and incident.label == "front desk panic button"
        console.publish("pttbridge/v1/bridge/cmd", json.dumps({"action": "ack", "incident": incident.id,
                                                               "operator": "alice"}), qos=1).wait_for_publish(5)
        module.seen.remove("write co 7 0")
        module.expect("write co 7 0")  # acknowledged: the beacon goes out
        wait_until(lambda: gateway.health()["radios"]["center/io"]["points"]["beacon"] == 0, 5, "the coil read back")
    finally:
        console.loop_stop()
        console.disconnect()
        gateway.stop()
        bridge.stop()
        module.stop()
