"""The technician's channel plans screen driven headless against a real bridge and Mosquitto (SQLite and
PostgreSQL): ``t`` opens it on the gateways' plans, a channel is added through the form (a bad frequency
is shown on its box as it is typed), and saving makes the bridge store version 2."""

from __future__ import annotations

from pathlib import Path

from rig import CountingApp, run, screenshot, until
from support import Mosquitto, wait_until
from textual.widgets import Button

from bridge.chirp import parse_chirp
from bridge.plans import Plans
from bridge.service import Bridge
from config.schema import parse_config
from console.screens.plans import PlansScreen


def test_a_channel_added_in_the_form_is_saved_as_version_2(tmp_path: Path, mosquitto: Mosquitto,
                                                           database_url: str) -> None:
    config = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": mosquitto.url},
                           "bridge": {"database_url": database_url}})
    bridge = Bridge(config)
    bridge.start()
    assert bridge.store is not None
    plans = Plans(bridge.store.engine)
    plans.save("gw1", [{"name": "patrol-1", "rx_mhz": 146.52, "mode": "NFM",
                        "drivers": [{"type": "audio", "device": "pulse", "decoders": ["selcall"]}]}], "tech-anna")
    app = CountingApp(config, "tech-ben")

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.database == "ok" and app.link.connected, "the console to start")
            await pilot.press("t")
            assert isinstance(app.screen, PlansScreen)
            screen = app.screen
            await until(pilot, lambda: screen.channels_table.row_count == 1, "gw1's plan")
            assert screen.gateways_table.get_row("gw1")[:3] == ["gw1", "file", "v1"]

            async def type_in(key: str, text: str) -> None:
                screen.inputs[key].focus()
                await pilot.press(*text)

            await type_in("name", "fire-2")
            await type_in("rx_mhz", "45x")  # a slip of the finger: said on the box at once
            rx = screen.inputs["rx_mhz"]
            assert rx.has_class("-invalid") and "rx_mhz" in str(screen.error_label.render())
            assert not screen.inputs["name"].has_class("-invalid")
            await pilot.press("backspace", *"3.1")
            assert not rx.has_class("-invalid")
            await type_in("tone", "127.3")
            await type_in("mode", "nfm")
            await type_in("device", "pulse")
            await type_in("decoders", "dtmf")
            screen.query_one("#plan-put", Button).focus()
            await pilot.press("enter")
            await until(pilot, lambda: screen.channels_table.row_count == 2, "the new channel in the table")
            assert "edited" in screen.gateways_table.get_row("gw1")[3]
            screenshot(app, tmp_path, "console-plans")

            # Export to CHIRP CSV, as a technician would to program the radios.
            screen.path.value = str(tmp_path / "gw1.csv")
            screen.query_one("#plan-export", Button).focus()
            await pilot.press("enter")
            assert [c["name"] for c in parse_chirp((tmp_path / "gw1.csv").read_text())] == ["patrol-1", "fire-2"]

            # Import a marine channel list as CHIRP's stock files have them: what was adjusted is listed.
            (tmp_path / "marine.csv").write_text(
                "Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,Mode,TStep,"
                "Skip,Power,Comment\n"
                "15,SEA 15,156.750000,off,0.000000,,88.5,88.5,023,NN,FM,25.00,,1W,Environmental (Receive only)\n"
                "18,SEA 18,156.900000,-,0.000000,Tone,100.0,88.5,023,NN,FM,25.00,,25W,Commercial\n")
            screen.path.value = str(tmp_path / "marine.csv")
            screen.query_one("#plan-import", Button).focus()
            await pilot.press("enter")
            await until(pilot, lambda: screen.channels_table.row_count == 4, "the imported channels")
            assert screen.channels_table.get_row("SEA-15")[2:6] == ["off", "FM", "", "1.0"]
            assert screen.channels_table.get_row("SEA-18")[2:6] == ["", "FM", "Tone 100.0", "25.0"]
            notes = str(screen.notes_label.render()).splitlines()
            assert notes == [
                "imported from marine.csv: lines 2-3, column Name: spelled as a plan name (one MQTT topic level: "
                "'RPT 2' is RPT-2); the radio's name kept",
                "imported from marine.csv: line 3, column Duplex: '-' to the receive frequency (Offset 0.000000): "
                "simplex"]

            screen.query_one("#plan-save", Button).focus()
            await pilot.press("enter")
            await until(pilot, lambda: (p := plans.current("gw1")) is not None and p.version == 2,
                        "the bridge to store version 2")
            await until(pilot, lambda: screen.gateways_table.get_row("gw1")[2] == "v2", "v2 pending on screen")

    try:
        wait_until(lambda: bridge.connected, 10, "the bridge to connect")
        run(scenario())
    finally:
        bridge.stop()
    current = plans.current("gw1")
    assert current is not None and current.author == "tech-ben"
    fire = current.channels[1]
    assert fire["name"] == "fire-2" and fire["rx_mhz"] == 453.1 and fire["ctcss_hz"] == 127.3
    assert fire["mode"] == "NFM" and fire["drivers"] == [{"type": "audio", "device": "pulse", "decoders": ["dtmf"]}]
    sea_15 = current.channels[2]
    assert (sea_15["name"], sea_15["receive_only"], sea_15["power_w"], sea_15["location"]) == ("SEA-15", True, 1.0, 15)
