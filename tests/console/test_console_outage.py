"""A console whose dispatcher signs in, then loses the broker: it says so at once, refuses to pretend a
command went out, reconnects by itself, reads what it missed from the database, and works again."""

from __future__ import annotations

from pathlib import Path

import pytest
from rig import CountingApp, Site, run, screenshot, until
from support import Mosquitto, caller_id, wait_until

from console.screens.login import LoginScreen
from console.widgets.status_header import StatusHeader


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_in_then_the_broker_goes_away_and_comes_back(site: Site, mosquitto: Mosquitto, tmp_path: Path) -> None:
    app = CountingApp(site.config)  # no --operator and none configured: the console asks

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            assert isinstance(app.screen, LoginScreen)
            await pilot.press("enter")  # nobody: refused
            assert isinstance(app.screen, LoginScreen)
            await pilot.press(*" carol ", "enter")
            assert not isinstance(app.screen, LoginScreen) and app.operator == "carol"
            header = app.dispatch.query_one(StatusHeader)
            assert header.operator == "carol"
            await until(pilot, lambda: app.broker and app.database == "ok", "console ready")

            site.radio.write(caller_id(1))
            await until(pilot, lambda: app.dispatch.queue.texts(), "the alert row")
            [incident] = site.store.open_incidents()

            mosquitto.stop()
            await until(pilot, lambda: app.broker is False, "the console to notice")
            assert header.has_class("-offline") and "OFFLINE" in str(header.render())
            screenshot(app, tmp_path, "console-80x24-broker-offline")
            await pilot.press("a")
            assert any(n.startswith("Not sent: the broker is offline") for n in app.notes)

            # Meanwhile another console (here: the bridge's own store, as the bridge would) resolves it.
            site.store.resolve(incident.id, "dave", "handled")

            mosquitto.start()
            await until(pilot, lambda: app.broker is True, "the console to reconnect", timeout=15)
            assert not header.has_class("-offline")
            # The resolution was announced while this console was away: the database tells it.
            await until(pilot, lambda: not app.dispatch.queue.texts(), "the missed resolution")

            wait_until(lambda: site.bridge.connected, 10, "the bridge to reconnect")
            site.radio.write(caller_id(2))
            await until(pilot, lambda: app.dispatch.queue.texts(), "a new alert after the outage", timeout=15)
            await pilot.press("a")
            await until(pilot, lambda: app.dispatch.queue.texts()[0]["state"].endswith("ACK"), "the ack")
            [second] = site.store.open_incidents()
            assert (second.unit, second.acknowledged_by) == ("fleetsync:100-1002", "carol")

    run(scenario())
