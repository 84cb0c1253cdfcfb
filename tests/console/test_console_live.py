"""Consoles against the real chain: bytes on a pty -> gateway -> Mosquitto -> bridge -> database ->
two consoles driven headless. An emergency appears in both with its unit and position and rings their
bells; one dispatcher's acknowledgement reaches the database and the other console; the other resolves
it as a false alarm; everything fits in 80x24."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rig import CountingApp, Site, pklds_emergency, run, screenshot, until
from support import Listener, caller_id, wait_until

from config.schema import ConsoleConfig
from console.screens.incident_detail import IncidentDetailScreen
from console.screens.note import NoteScreen
from console.screens.resolve import ResolveScreen
from console.widgets.alert_queue import AlertQueue
from console.widgets.units_table import UnitsTable

UNIT = "fleetsync:100-1001"


def ready(app: CountingApp) -> bool:
    return bool(app.broker) and app.database == "ok"


def rows(app: CountingApp) -> list[dict[str, str]]:
    return app.dispatch.queue.texts()


def actions(site: Site, incident_id: int) -> list[str]:
    detail = site.store.incident_detail(incident_id)
    return [h.action for h in detail.history] if detail is not None else []


def test_an_emergency_reaches_two_consoles_and_their_keys_reach_the_bridge(site: Site, tmp_path: Path) -> None:
    alice = CountingApp(site.config, "alice")
    bob = CountingApp(site.config, "bob")

    async def scenario() -> None:
        async with alice.run_test(size=(80, 24)) as pa, bob.run_test(size=(120, 36)) as pb:
            for app, pilot in ((alice, pa), (bob, pb)):
                await until(pilot, partial(ready, app), "console ready")

            # The radio's emergency button: a GPS report with sender status 99, on the pty.
            site.radio.write(pklds_emergency(1001))
            for app, pilot in ((alice, pa), (bob, pb)):
                await until(pilot, partial(rows, app), "the alert row")
            [row] = alice.dispatch.queue.texts()
            assert row["unit"] == UNIT and row["position"] == "30.2095,120.2107"
            assert row["state"].endswith("NEW") and row["count"] == "1" and row["where"] == "emergency-1@gw1"
            assert bob.dispatch.queue.texts()[0]["unit"] == UNIT
            assert alice.bells == 1 and bob.bells == 1
            flashes: set[str] = set()

            def flashed() -> bool:
                flashes.add(alice.dispatch.queue.texts()[0]["state"])
                return len(flashes) == 2

            await until(pa, flashed, "the marker to flash")
            assert flashes == {"▲ NEW", "  NEW"}
            [incident] = site.store.open_incidents()
            assert incident.unit == UNIT and incident.state == "new"
            # The unit is in the units table too, heard through a gateway that is online.
            await until(pa, lambda: alice.dispatch.units.texts(), "the unit row")
            [unit] = alice.dispatch.units.texts()
            assert unit["unit"] == UNIT and unit["position"] == "30.2095,120.2107" and unit["online"] == "● up"

            # 80x24: the queue and the units are both on screen, the row in sight, and the footer's keys.
            screen = alice.screen.region
            for widget in (alice.dispatch.queue, alice.dispatch.units):
                assert widget.region.height >= 6 and screen.contains_region(widget.region)
            footer = alice.export_screenshot()
            for words in ("Alerts: 1 open, 1 NEW", "Units: 1", UNIT, "30.2095,120.2107", "Ack", "Resolve", "Quit"):
                assert words.replace(" ", "&#160;") in footer or words in footer, words
            screenshot(alice, tmp_path, "console-80x24-new-alert")

            # Alice acknowledges: the database says so, and so does Bob's console.
            await pa.press("a")
            await until(pa, lambda: (i := site.store.incident(incident.id)) is not None
                        and i.state == "acknowledged", "the acknowledgement in the database")
            assert site.store.incident(incident.id).acknowledged_by == "alice"  # type: ignore[union-attr]
            await until(pb, lambda: bob.dispatch.queue.texts()[0]["state"].endswith("ACK"), "Bob's console")
            await until(pa, lambda: alice.dispatch.queue.texts()[0]["state"].endswith("ACK"), "Alice's console")
            assert bob.state.incidents[incident.id].acknowledged_by == "alice"
            screenshot(bob, tmp_path, "console-120x36-acknowledged")

            # The marker of an unacknowledged incident flashes; an acknowledged one does not.
            assert alice.dispatch.queue.texts()[0]["state"] == "  ACK"

            # A note (keys that are commands elsewhere are just letters in it).
            await pa.press("n")
            assert isinstance(alice.screen, NoteScreen)
            await pa.press(*"quick: car 7 sent, unit answers", "enter")
            await until(pa, lambda: "note" in actions(site, incident.id), "the note in the database")

            # Alice opens the detail: the alert with its position, and who did what.
            await pa.press("enter")
            assert isinstance(alice.screen, IncidentDetailScreen)
            detail = alice.screen
            await until(pa, lambda: any(h["actor"] == "alice" for h in detail.history.texts()), "the history")
            await until(pa, lambda: len(detail.history.texts()) == 5, "the note in the history")
            # The acknowledgement went to the radio's gateway too, which has no transmitter on that channel.
            history = [(h["actor"], h["action"], h["note"]) for h in detail.history.texts()]
            assert history[:3] == [
                ("bridge", "opened", "kenwood emergency"), ("alice", "acknowledged", ""),
                ("alice", "radio ack", "requested from gw1/emergency-1")]
            assert set(history[3:]) == {  # the gateway's answer and the note, in whichever order they came
                ("bridge", "radio ack", "no transmit path by gw1/emergency-1: channel emergency-1 has no transmit "
                                        "section"),
                ("alice", "note", "quick: car 7 sent, unit answers")}
            [alert] = detail.alerts.texts()
            assert alert["unit"] == UNIT and alert["position"] == "30.209500,120.210700"
            screenshot(alice, tmp_path, "console-80x24-detail")
            await pa.press("escape")
            assert not isinstance(alice.screen, IncidentDetailScreen)

            # Bob resolves it as a false alarm: it leaves both queues.
            await pb.press("r")
            assert isinstance(bob.screen, ResolveScreen)
            await pb.press("f")
            await until(pb, lambda: (i := site.store.incident(incident.id)) is not None and i.state == "resolved",
                        "the resolution in the database")
            resolved = site.store.incident(incident.id)
            assert resolved is not None and (resolved.resolution, resolved.resolved_by) == ("false_alarm", "bob")
            for app, pilot in ((alice, pa), (bob, pb)):
                await until(pilot, partial(lambda a: not rows(a), app), "the queue to empty")
            assert alice.bells == 1 and bob.bells == 1  # acknowledging and resolving are no alarms

            # Another radio keys up on the emergency channel: a second alert, a second bell.
            site.radio.write(caller_id(2))
            for app, pilot in ((alice, pa), (bob, pb)):
                # The bell rings as the news arrives; the row is written just after (a flush of its own).
                await until(pilot, partial(lambda a: a.bells == 2 and bool(rows(a)), app), "the second bell and row")
            assert [r["unit"] for r in alice.dispatch.queue.texts()] == ["fleetsync:100-1002"]
            assert alice.dispatch.queue.texts()[0]["label"] == "key-up on the emergency channel"

    run(scenario())


def test_a_console_started_later_loads_the_open_incidents_from_the_database(site: Site, tmp_path: Path) -> None:
    """What happened before a console started is read from the database: incidents are not retained."""
    news = Listener(site.config.mqtt.url, "pttbridge/v1/bridge/incident/+", persistent=False)
    try:
        for n in (1, 2):
            site.radio.write(caller_id(n))
        wait_for_incidents(site, 2)
        # The bridge publishes an incident just after committing it: that news has passed before the
        # consoles start, or a console would rightly ring for a fresh alert too.
        wait_until(lambda: [p["change"] for p in news.payloads()] == ["opened", "opened"], 10, "the news sent")
    finally:
        news.close()
    late = CountingApp(site.config, "carol")
    quiet = CountingApp(site.config.model_copy(update={"console": ConsoleConfig(bell=False, flash=False)}), "dan")

    async def scenario() -> None:
        async with late.run_test(size=(80, 24)) as pilot, quiet.run_test(size=(80, 24)) as qp:
            await until(pilot, lambda: len(late.dispatch.queue.texts()) == 2, "the two incidents")
            assert {r["unit"] for r in late.dispatch.queue.texts()} == {"fleetsync:100-1001", "fleetsync:100-1002"}
            assert late.bells == 1  # started on unacknowledged incidents: one bell to say so
            assert isinstance(late.dispatch.queue, AlertQueue) and isinstance(late.dispatch.units, UnitsTable)
            await pilot.press("u")
            assert late.focused is late.dispatch.units
            await until(pilot, lambda: late.dispatch.units.row_count == 2, "the units")
            await pilot.press("enter")  # a unit with an open incident: its detail
            assert isinstance(late.screen, IncidentDetailScreen)
            assert late.screen.incident.unit == late.dispatch.units.selected_key
            await pilot.press("escape", "i")
            assert late.focused is late.dispatch.queue

            # A console configured without bell and flashing stays quiet and steady.
            await until(qp, lambda: len(quiet.dispatch.queue.texts()) == 2, "the quiet console")
            flashes = quiet.flashes
            await until(qp, lambda: quiet.flashes >= flashes + 2, "two turns of the flashing timer")
            assert quiet.bells == 0 and {r["state"] for r in quiet.dispatch.queue.texts()} == {"▲ NEW"}

    run(scenario())


def wait_for_incidents(site: Site, n: int) -> None:
    from support import wait_until

    wait_until(lambda: len(site.store.open_incidents()) == n, 10, f"{n} incidents")


def test_a_command_the_bridge_refuses_is_explained_to_the_dispatcher_who_sent_it(site: Site) -> None:
    """Two dispatchers act on one incident at once: the bridge takes the first, refuses the second, and
    says why on the console that sent it (only there)."""
    alice = CountingApp(site.config, "alice")
    bob = CountingApp(site.config, "bob")

    async def scenario() -> None:
        async with alice.run_test(size=(120, 36)) as pa, bob.run_test(size=(120, 36)) as pb:
            for app, pilot in ((alice, pa), (bob, pb)):
                await until(pilot, partial(ready, app), "console ready")
            site.radio.write(pklds_emergency(1001))
            await until(pb, partial(rows, bob), "the alert row")
            [incident] = site.store.open_incidents()
            alice.link.send("resolve", incident.id, "alice", resolution="false_alarm")
            await until(pa, lambda: not site.store.open_incidents(), "the incident resolved")
            bob.link.send("ack", incident.id, "bob")  # pressed before bob's screen had heard
            await until(pb, lambda: any("refused" in n for n in bob.notes), "the refusal on bob's console")
            [note] = [n for n in bob.notes if "refused" in n]
            assert note.startswith(f"The bridge refused ack #{incident.id}: ") and "resolved" in note
            # Alice's own refused command is answered after bob's (one topic, in order): once hers is shown,
            # bob's has reached her console too, and was not shown there.
            alice.link.send("ack", incident.id, "alice")
            await until(pa, lambda: any("refused" in n for n in alice.notes), "the refusal on alice's console")
            assert len([n for n in alice.notes if "refused" in n]) == 1

    run(scenario())
