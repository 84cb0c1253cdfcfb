"""The command palette (ctrl+p) lists every action of the screen in front with its key, and runs the one
chosen: a dispatcher who forgot that the map is ``m`` types "map" and gets there."""

from __future__ import annotations

from pathlib import Path

from rig import CountingApp, run, until
from textual.command import CommandList, CommandPalette

from config.schema import parse_config
from console.screens.map import MapScreen


def app_without_a_broker(tmp_path: Path) -> CountingApp:
    # Nothing listens on port 1: the palette needs neither a broker nor a database.
    config = parse_config({"data_dir": str(tmp_path / "data"), "mqtt": {"url": "mqtt://127.0.0.1:1"},
                           "bridge": {"database_url": f"sqlite:///{tmp_path / 'none.sqlite'}"}})
    return CountingApp(config, "alice")


def listed(app: CountingApp) -> list[str]:
    options = app.screen.query_one(CommandList)
    # An entry's first line is its name and key; its help, if any, is on the line below.
    return [str(options.get_option_at_index(i).prompt).splitlines()[0] for i in range(options.option_count)]


def test_the_palette_lists_every_action_with_its_key_and_runs_it(tmp_path: Path) -> None:
    app = app_without_a_broker(tmp_path)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("ctrl+p")
            await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
            # The palette fills in as its providers answer.
            for entry in ("Ack  (a)", "Resolve  (r)", "Note  (n)", "Alerts  (i)", "Units  (u)", "History  (h)",
                          "Map  (m)", "Gateways  (g)", "Detail  (⏎)", "Quit  (^q / ^c / q)"):
                await until(pilot, lambda: entry in listed(app), f"{entry} listed")  # noqa: B023 - awaited here

            # Found by name and run from the palette.
            await pilot.press(*"map")
            await until(pilot, lambda: any(s.startswith("Map") for s in listed(app)), "Map found")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, MapScreen), "the map")

            # On the map, the palette lists the map's keys.
            await pilot.press("ctrl+p")
            await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette again")
            await until(pilot, lambda: "Zoom in  (+)" in listed(app), "the map's actions")
            assert "Follow  (f)" in listed(app) and "Back  (esc)" in listed(app)

    run(scenario())
