"""The plans screen's rules, PTT, transmit and record, driven headless against a real bridge and Mosquitto
(SQLite and PostgreSQL): an emergency rule added to a DTMF channel with one click, a bad pattern and a unit
naming a group the patterns lack flagged on their boxes as typed, then fixed and saved; a channel with a
Modbus driver and two audio drivers going through the form unchanged; a PTT by Modbus coil saved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rig import CountingApp, run, until
from support import Mosquitto, wait_until
from textual.pilot import Pilot
from textual.widgets import Button, TabbedContent

from bridge.plans import Plans, canonical
from bridge.service import Bridge
from config.schema import Config, parse_config
from console.screens.plans import PlansScreen

DTMF = {"name": "patrol-1", "rx_mhz": 146.52, "mode": "NFM",
        "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dtmf"]}]}

# Everything the form does not show, and more than one driver of a type: none of it may be lost.
DEPOT = {
    "name": "depot", "rx_mhz": 453.1, "ctcss_hz": 127.3, "comment": "yard and gate",
    "drivers": [
        {"type": "audio", "device": "pulse", "channels": 2, "input": 2, "decoders": ["selcall", "dtmf"],
         "options": {"selcall": {"standard": "CCIR", "min_length": 4}, "dtmf": {"interdigit_s": 0.5}}},
        {"type": "modbus", "name": "io", "url": "tcp://127.0.0.1:5020", "slave": 3,
         "points": [{"name": "gate-panic", "table": "discrete_input", "address": 0, "kind": "alert"},
                    {"name": "ptt-relay", "table": "coil", "address": 4}]},
        {"type": "audio", "name": "scanner", "device": "hw:2", "decoders": ["afsk1200"], "rate": 44100},
        {"type": "serial", "port": "/dev/ttyUSB0", "protocol": "kenwood", "baudrate": 4800},
    ],
    "rules": [{"when": {"protocol": "modbus", "point": "gate-panic", "value": 1}, "kind": "alert",
               "label": "gate panic"},
              {"when": {"status": [98, 99]}, "match": {"digits": r"(?P<id>\d{5})9"}, "kind": "alert",
               "unit": "ccir:{id}"}],
    "transmit": {"device": "pulse", "channels": 2, "output": 2, "lead_in_ms": 400,
                 "ptt": {"method": "serial", "port": "/dev/ttyUSB1", "line": "dtr", "active_low": True}},
    "record": {"detect": "cor", "cor_point": "gate-panic", "min_ms": 500, "hang_ms": 1200},
}


@pytest.fixture
def bridged(tmp_path: Path, mosquitto: Mosquitto, database_url: str) -> Iterator[tuple[Config, Plans]]:
    config = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": mosquitto.url},
                           "bridge": {"database_url": database_url}})
    bridge = Bridge(config)
    bridge.start()
    try:
        wait_until(lambda: bridge.connected, 10, "the bridge to connect")
        assert bridge.store is not None
        yield config, Plans(bridge.store.engine)
    finally:
        bridge.stop()


def on_plans(config: Config, scenario: Callable[[Pilot[None], PlansScreen], Awaitable[None]]) -> None:
    """Open the console's plans screen on gw1's plan, then play ``scenario`` on it."""
    app = CountingApp(config, "tech-ben")

    async def main() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.database == "ok" and app.link.connected, "the console to start")
            await pilot.press("t")
            assert isinstance(app.screen, PlansScreen)
            screen = app.screen
            await until(pilot, lambda: screen.channels_table.row_count > 0, "gw1's plan")
            await scenario(pilot, screen)

    run(main())


async def open_channel(pilot: Pilot[None], screen: PlansScreen, row: int) -> None:
    """Enter on a channel's row, as a technician would. The table is drawn again after a Put, which can
    move the cursor back under a key press sent meanwhile, so the press is repeated until the form
    holds that channel (the form taking the focus is the sign it was filled)."""
    table = screen.channels_table
    name = str(table.get_row_at(row)[0]).strip()

    def loaded() -> bool:
        return screen.focused is screen.inputs["name"] and screen.inputs["name"].value == name

    for _ in range(3):
        table.focus()
        await pilot.pause()
        table.move_cursor(row=row)
        await pilot.pause()
        await pilot.press("enter")
        try:
            await until(pilot, loaded, "the channel in the form", timeout=5)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError(f"channel {name!r} never reached the form")
    await pilot.pause()


async def show_tab(pilot: Pilot[None], screen: PlansScreen, tab: str) -> None:
    await pilot.click(f"#--content-tab-{tab}")  # the tab's label, as a technician would
    await until(pilot, lambda: screen.query_one(f"#{tab}").region.height > 0, f"the {tab} tab shown")


async def press(pilot: Pilot[None], screen: PlansScreen, button: str) -> None:
    screen.query_one(f"#{button}", Button).focus()
    await pilot.press("enter")
    await pilot.pause()


async def save(pilot: Pilot[None], screen: PlansScreen, plans: Plans) -> None:
    await press(pilot, screen, "plan-save")
    await until(pilot, lambda: (p := plans.current("gw1")) is not None and p.version == 2,
                "the bridge to store version 2")


def test_an_emergency_rule_is_added_checked_as_typed_and_saved(bridged: tuple[Config, Plans]) -> None:
    config, plans = bridged
    plans.save("gw1", [DTMF], "tech-anna")

    async def scenario(pilot: Pilot[None], screen: PlansScreen) -> None:
        await open_channel(pilot, screen, 0)
        await show_tab(pilot, screen, "plan-tab-rules")
        assert screen.rules_table.row_count == 0 and screen.inputs["rule_match"].disabled
        await press(pilot, screen, "plan-rule-emergency")  # pre-filled from the channel's DTMF decoder
        assert screen.rules_table.row_count == 1
        match, unit = screen.inputs["rule_match"], screen.inputs["rule_unit"]
        assert match.value == r"digits=\*911\*(\d{4})#" and unit.value == "dtmf:{1}"
        assert screen.selects["rule_kind"].value == "alert" and not screen.errors

        match.focus()
        await pilot.press("end", "(")  # an unclosed group: the configuration's own message, on the box
        assert match.has_class("-invalid") and not unit.has_class("-invalid")
        assert screen.errors["rule_match"].startswith("rules[0].match: digits: not a regular expression")
        assert "rules[0].match" in str(screen.error_label.render())
        assert "(!)" in str(screen.query_one("#plan-tabs", TabbedContent).get_tab("plan-tab-rules").label)
        await press(pilot, screen, "plan-put")
        assert "The channel has errors: see the boxes in red." in screen.app.notes  # type: ignore[attr-defined]

        match.focus()
        await pilot.press("end", "backspace")
        assert not match.has_class("-invalid") and not screen.errors
        unit.focus()
        await pilot.press("end", "backspace", "backspace", *"2}")  # the pattern has one group, not two
        assert unit.has_class("-invalid")
        assert screen.errors["rule_unit"] == "rules[0]: unit: {2} is no group of the match patterns"
        await pilot.press("backspace", "backspace", *"1}")
        label = screen.inputs["rule_label"]
        label.focus()
        await pilot.press("end", *" 911")
        assert not screen.errors
        assert screen.rules_table.get_row("0")[1:4] == ["alert", "DTMF emergency code 911", "dtmf:{1}"]

        await press(pilot, screen, "plan-put")
        await save(pilot, screen, plans)

    on_plans(config, scenario)
    current = plans.current("gw1")
    assert current is not None and current.author == "tech-ben"
    assert current.channels[0]["rules"] == [{"when": {"protocol": "dtmf"}, "match": {"digits": r"\*911\*(\d{4})#"},
                                             "kind": "alert", "label": "DTMF emergency code 911",
                                             "unit": "dtmf:{1}"}]
    assert current.channels[0]["drivers"] == DTMF["drivers"]


def test_every_driver_survives_the_form_and_a_modbus_ptt_is_saved(bridged: tuple[Config, Plans]) -> None:
    config, plans = bridged
    plain: dict[str, Any] = {"name": "fire", "drivers": [{"type": "audio", "device": "pulse", "decoders": ["selcall"]},
                                                          {"type": "modbus", "name": "io", "url": "tcp://10.0.0.9",
                                                           "points": [{"name": "ptt", "table": "coil",
                                                                       "address": 0}]}]}
    plans.save("gw1", [DEPOT, plain], "tech-anna")
    stored = canonical([DEPOT, plain])

    async def scenario(pilot: Pilot[None], screen: PlansScreen) -> None:
        await open_channel(pilot, screen, 0)
        assert screen.inputs["device"].value == "pulse" and screen.selects["selcall_standard"].value == "CCIR"
        assert screen.rules_table.row_count == 2 and screen.selects["ptt_method"].value == "serial"
        # Through every tab, with rule 2 loaded into the boxes, and back: the same channel, nothing lost.
        await show_tab(pilot, screen, "plan-tab-rules")
        screen.rules_table.focus()
        screen.rules_table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert screen.inputs["rule_when"].value == "status=98|99"
        await show_tab(pilot, screen, "plan-tab-transmit")
        await press(pilot, screen, "plan-put")
        assert not screen.errors
        assert screen.working["gw1"] == stored
        assert "edited" not in screen.gateways_table.get_row("gw1")[3]

        # The second channel answers on its radio, keyed by the Modbus module's coil.
        await open_channel(pilot, screen, 1)
        await show_tab(pilot, screen, "plan-tab-transmit")
        await until(pilot, lambda: screen.inputs["tx_device"].disabled, "no transmit on that channel yet")
        await pilot.click("#plan-tx_on")
        await pilot.pause()
        assert screen.inputs["tx_device"].value == "pulse"  # the card the radio is on, to begin with
        screen.selects["ptt_method"].value = "modbus"
        await pilot.pause()
        assert screen.inputs["ptt_driver"].value == "io" and screen.inputs["ptt_port"].disabled
        coil = screen.inputs["ptt_coil"]
        await press(pilot, screen, "plan-put")  # no coil yet: the schema names the key
        assert coil.has_class("-invalid") and "transmit.ptt.coil" in screen.errors["ptt_coil"]
        coil.focus()
        await pilot.press(*"ptt")
        screen.inputs["tx_lead_in_ms"].focus()
        await pilot.press(*"50x")
        assert "transmit.lead_in_ms" in screen.errors["tx_lead_in_ms"]
        await pilot.press("backspace", "0")
        await pilot.click("#plan-rec_on")
        await pilot.pause()
        assert not screen.errors
        await press(pilot, screen, "plan-put")
        await save(pilot, screen, plans)

    on_plans(config, scenario)
    current = plans.current("gw1")
    assert current is not None
    assert current.channels[0] == stored[0]
    fire = current.channels[1]
    assert fire["drivers"] == stored[1]["drivers"] and fire["record"] == {}
    assert fire["transmit"] == {"device": "pulse", "lead_in_ms": 500,
                                "ptt": {"method": "modbus", "driver": "io", "coil": "ptt"}}
