"""The plans screen's rules, PTT, transmit and record, driven headless against a real bridge and Mosquitto
(SQLite and PostgreSQL): an emergency rule added to a DTMF channel with one click, a bad pattern and a unit
naming a group the patterns lack flagged on their boxes as typed, then fixed and saved; a channel with a
Modbus driver and two audio drivers going through the form unchanged; a PTT by Modbus coil saved; a DMR
channel's colour codes, slots and polarity shown, checked as typed, saved and read back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rig import CountingApp, run, screenshot, type_text, until
from support import Mosquitto, wait_until
from textual.pilot import Pilot
from textual.widgets import Button, Static, TabbedContent

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
    """Enter on a channel's row, as a technician would; the form taking the focus is the sign it was filled."""
    table = screen.channels_table
    name = str(table.get_row_at(row)[0]).strip()
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()
    await pilot.press("enter")
    await until(pilot, lambda: screen.focused is screen.inputs["name"] and screen.inputs["name"].value == name,
                f"channel {name!r} in the form")


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


def test_the_channel_under_the_cursor_stays_there_while_the_plans_are_read_again(
        bridged: tuple[Config, Plans]) -> None:
    """The screen reads the plans again every two seconds: the cursor must not jump back to the top under
    the technician's enter (it did, and enter opened the first channel instead of the one chosen)."""
    config, plans = bridged
    plans.save("gw1", [DTMF, DEPOT], "tech-anna")

    def pending() -> str:
        return str(screen_ref[0].gateways_table.get_row("gw1")[2])

    screen_ref: list[PlansScreen] = []

    async def scenario(pilot: Pilot[None], screen: PlansScreen) -> None:
        screen_ref.append(screen)
        table = screen.channels_table
        table.focus()
        table.move_cursor(row=1)
        await pilot.pause()
        # A version whose table reads the same (only a comment changed), then one with a channel put first.
        plans.save("gw1", [DTMF, {**DEPOT, "comment": "yard only"}], "tech-anna")
        await until(pilot, lambda: pending() == "v2", "version 2 read")
        assert table.cursor_row == 1
        plans.save("gw1", [{**DTMF, "name": "patrol-0"}, DTMF, DEPOT], "tech-anna")
        await until(pilot, lambda: pending() == "v3" and table.row_count == 3, "version 3 read")
        assert table.get_row_at(table.cursor_row)[0] == "depot"
        await pilot.press("enter")
        await until(pilot, lambda: screen.inputs["name"].value == "depot", "depot in the form")

    on_plans(config, scenario)


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
        await type_text(pilot, "ptt")
        screen.inputs["tx_lead_in_ms"].focus()
        await type_text(pilot, "50x")
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


# A radio with its audio and its serial data cable, and an I/O module the form does not show.
RADIO_SERIAL = {"type": "serial", "port": "/dev/ttyUSB0", "protocol": "kenwood", "baudrate": 4800, "parity": "E"}
IO = {"type": "modbus", "name": "io", "url": "tcp://127.0.0.1:5020",
      "points": [{"name": "gate", "table": "discrete_input", "address": 0, "kind": "alert"}]}
YARD = {"name": "yard", "rx_mhz": 453.1,
        "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dtmf"]}, RADIO_SERIAL, IO]}
# The same after the technician's edits: a scanner's audio and a GPS's serial port added, selcall decoded.
YARD_AFTER = {**YARD, "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dtmf", "selcall"]},
                                  RADIO_SERIAL, IO,
                                  {"type": "audio", "name": "scanner", "device": "hw:2", "decoders": ["afsk1200"]},
                                  {"type": "serial", "port": "/dev/ttyUSB1", "protocol": "nmea", "baudrate": 4800}]}


async def type_in(pilot: Pilot[None], screen: PlansScreen, key: str, text: str, clear: bool = False) -> None:
    box = screen.inputs[key]
    box.focus()
    await pilot.pause()
    await pilot.press("end")  # the box selects its text when focused: typing goes after it
    if clear:
        await pilot.press(*["backspace"] * len(box.value))
    await type_text(pilot, text)


async def pick(pilot: Pilot[None], screen: PlansScreen, picker: str, moves: str) -> None:
    """Choose another audio input or serial port in its picker with the keys: open it, move, enter."""
    screen.pickers[picker].focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press(moves, "enter")
    await pilot.pause()


def shown(screen: PlansScreen, picker: str) -> str:
    """What the picker shows (e.g. "audio 2/2")."""
    return str(screen.pickers[picker].query_one("#label", Static).render()).strip()


def test_every_audio_input_and_serial_port_is_edited_added_and_removed(bridged: tuple[Config, Plans]) -> None:
    config, plans = bridged
    plans.save("gw1", [YARD], "tech-anna")

    async def scenario(pilot: Pilot[None], screen: PlansScreen) -> None:
        await open_channel(pilot, screen, 0)
        assert (shown(screen, "audio_at"), shown(screen, "serial_at")) == ("audio 1/1", "serial 1/1")
        assert screen.inputs["port"].value == "/dev/ttyUSB0" and screen.inputs["baudrate"].value == "4800"

        # A second audio input: empty, so the schema asks for its device; then a name, as "audio" is taken.
        await press(pilot, screen, "plan-audio-add")
        assert shown(screen, "audio_at") == "audio 2/2" and screen.inputs["device"].value == ""
        assert screen.inputs["device"].has_class("-invalid") and "device" in screen.errors["device"]
        await type_in(pilot, screen, "device", "hw:2")
        await type_in(pilot, screen, "decoders", "afsk1200")
        assert screen.inputs["audio_name"].has_class("-invalid")
        assert "two drivers named 'audio'" in screen.errors["audio_name"]
        await type_in(pilot, screen, "audio_name", "scanner")
        assert not screen.errors

        # A second serial port, its baud rate mistyped and fixed.
        await press(pilot, screen, "plan-serial-add")
        assert shown(screen, "serial_at") == "serial 2/2" and screen.inputs["port"].has_class("-invalid")
        await type_in(pilot, screen, "port", "/dev/ttyUSB1")
        await type_in(pilot, screen, "protocol", "nmea")
        await type_in(pilot, screen, "baudrate", "4800x")
        assert screen.inputs["baudrate"].has_class("-invalid") and "baudrate" in screen.errors["baudrate"]
        await pilot.press("backspace")
        assert not screen.errors

        # The scanner's device emptied: an error on its box; with the first input shown, on the picker.
        await type_in(pilot, screen, "device", "", clear=True)
        assert screen.inputs["device"].has_class("-invalid")
        await pick(pilot, screen, "audio_at", "up")
        assert shown(screen, "audio_at") == "audio 1/2" and screen.inputs["device"].value == "pulse"
        assert not screen.inputs["device"].has_class("-invalid") and screen.pickers["audio_at"].has_class("-invalid")
        assert "drivers[3].device" in screen.errors["audio_at"]
        await type_in(pilot, screen, "decoders", ", selcall")  # the first input decodes 5-tone too
        await pick(pilot, screen, "audio_at", "down")
        assert shown(screen, "audio_at") == "audio 2/2" and screen.inputs["audio_name"].value == "scanner"
        assert screen.inputs["device"].has_class("-invalid")
        await type_in(pilot, screen, "device", "hw:2")
        assert not screen.errors and not screen.pickers["audio_at"].has_class("-invalid")

        # A third serial port, then removed: the second is shown again.
        await press(pilot, screen, "plan-serial-add")
        await type_in(pilot, screen, "port", "/dev/ttyUSB9")
        assert shown(screen, "serial_at") == "serial 3/3"
        await press(pilot, screen, "plan-serial-remove")
        assert shown(screen, "serial_at") == "serial 2/2" and screen.inputs["port"].value == "/dev/ttyUSB1"
        assert not screen.errors

        await press(pilot, screen, "plan-put")
        assert screen.working["gw1"] == canonical([YARD_AFTER])
        await save(pilot, screen, plans)

    on_plans(config, scenario)
    current = plans.current("gw1")
    assert current is not None and current.channels == canonical([YARD_AFTER])

    async def reopened(pilot: Pilot[None], screen: PlansScreen) -> None:
        """Another console reads the saved plan: both inputs and both ports, each in its boxes."""
        await open_channel(pilot, screen, 0)
        assert (shown(screen, "audio_at"), shown(screen, "serial_at")) == ("audio 1/2", "serial 1/2")
        assert screen.inputs["decoders"].value == "dtmf, selcall"
        await pick(pilot, screen, "audio_at", "down")
        assert [screen.inputs[k].value for k in ("device", "decoders", "audio_name")] == ["hw:2", "afsk1200", "scanner"]
        await pick(pilot, screen, "serial_at", "down")
        assert [screen.inputs[k].value for k in ("port", "protocol", "baudrate")] == ["/dev/ttyUSB1", "nmea", "4800"]
        await press(pilot, screen, "plan-put")  # looked at, not changed
        assert screen.working["gw1"] == current.channels and not screen.errors

    on_plans(config, reopened)


# A scanner on a DMR repeater's output, slot 2 of colour code 1 only.
DMR_RPT = {"name": "dmr-rpt", "mode": "DMR",
           "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dmr"],
                        "options": {"dmr": {"color_codes": [1], "slots": [2]}}}]}


def test_a_dmr_channel_s_options_are_checked_as_typed_and_saved(bridged: tuple[Config, Plans]) -> None:
    config, plans = bridged
    plans.save("gw1", [DMR_RPT, DTMF], "tech-anna")
    dmr_row = "#plan-dmr"

    async def scenario(pilot: Pilot[None], screen: PlansScreen) -> None:
        # A channel that decodes no DMR has no DMR boxes; the DMR channel shows its options in them.
        await open_channel(pilot, screen, 1)
        assert not screen.query_one(dmr_row).display
        await open_channel(pilot, screen, 0)
        assert screen.query_one(dmr_row).display and screen.inputs["dmr_color_codes"].region.height > 0
        codes, slots = screen.inputs["dmr_color_codes"], screen.selects["dmr_slots"]
        invert = screen.checks["dmr_invert"]
        assert (codes.value, slots.value, invert.value) == ("1", "2", False)

        await type_in(pilot, screen, "dmr_color_codes", ", 16")  # no such colour code: said on its box
        assert codes.has_class("-invalid")
        assert screen.errors == {"dmr_color_codes": "drivers[0]: options.dmr.color_codes: Value error, expected "
                                                    "0..15 or a non-empty list of them, got [1, 16]"}
        assert "options.dmr.color_codes" in str(screen.error_label.render())
        await press(pilot, screen, "plan-put")
        assert "The channel has errors: see the boxes in red." in screen.app.notes  # type: ignore[attr-defined]
        await type_in(pilot, screen, "dmr_color_codes", "", clear=True)
        await type_text(pilot, "1, 7")
        assert not screen.errors and not codes.has_class("-invalid")
        slots.value = ""  # both slots
        await pilot.click("#plan-dmr_invert")  # the receiver's discriminator is inverted
        await pilot.pause()
        assert invert.value and not screen.errors
        screenshot(screen.app, Path(config.data_dir), "console-plans-dmr")  # type: ignore[arg-type]

        # dmr taken off the decoders: its boxes go, and so do its options.
        await type_in(pilot, screen, "decoders", "", clear=True)
        await type_text(pilot, "dtmf")
        assert not screen.query_one(dmr_row).display and not screen.errors
        await type_in(pilot, screen, "decoders", ", dmr")  # back: the boxes hold what was typed
        assert screen.query_one(dmr_row).display and codes.value == "1, 7" and invert.value
        await press(pilot, screen, "plan-put")
        await save(pilot, screen, plans)

    on_plans(config, scenario)
    current = plans.current("gw1")
    assert current is not None
    [audio] = current.channels[0]["drivers"]
    assert audio == {"type": "audio", "device": "pulse", "decoders": ["dtmf", "dmr"],
                     "options": {"dmr": {"color_codes": [1, 7], "invert": True}}}

    async def reopened(pilot: Pilot[None], screen: PlansScreen) -> None:
        await open_channel(pilot, screen, 0)
        values = [screen.inputs["dmr_color_codes"].value, screen.selects["dmr_slots"].value,
                  screen.checks["dmr_invert"].value]
        assert values == ["1, 7", "", True]
        await press(pilot, screen, "plan-put")  # looked at, not changed
        assert screen.working["gw1"] == current.channels and not screen.errors

    on_plans(config, reopened)
