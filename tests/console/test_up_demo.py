"""``pttbridge up`` as a dispatcher sees it in the console, with no key pressed until the case comes: the
demo's site (its embedded broker, the demo radios replaying their captures, the bridge on SQLite, the
gateway, the demo's camera and officer) run by the same :class:`launcher.up.Up` the command runs, and the
console headless in front of it. The street stall comes up with its suggested officer; the dispatcher
sends him (``s``, enter), his radio answers accepted, arrived, handled; the dispatcher says it was a real
case (``r``, ``v``, a reason); the report screen (``v``) counts it."""

from __future__ import annotations

from pathlib import Path

from rig import CountingApp, run, type_text, until
from support import wait_until

from console.screens.assign import AssignScreen
from console.screens.report import ReportScreen
from console.screens.resolve import ResolveScreen
from launcher.up import Up


def test_the_demo_case_is_sent_answered_verified_and_counted_from_the_console(tmp_path: Path, demo_site: Up) -> None:
    site = demo_site
    try:
        site.start()
        store = site.bridge.store
        console = CountingApp(site.config, "alice")

        def stall() -> int | None:
            return next((i.id for i in console.dispatch.queue.incidents.values()
                         if i.category == "street_stall" and i.suggested), None)

        def part() -> tuple[str, str | None]:
            case = store.incident(stall())
            return (case.parts[0].state, case.parts[0].unit) if case is not None and case.parts else ("", None)

        async def scenario() -> None:
            async with console.run_test(size=(140, 44)) as pilot:
                await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready", 30)
                await until(pilot, lambda: stall() is not None, "the street stall with its suggested unit", 60)
                case_id = stall()
                assert case_id is not None
                shown = console.dispatch.queue.incidents[case_id]
                assert shown.suggested[0]["unit"] == "fleetsync:100-1004"  # the nearest: at his post
                assert [(p.department, p.state) for p in shown.parts] == [("urban-management", "new")]

                console.dispatch.queue.select(str(case_id))
                console.dispatch.queue.focus()
                await pilot.press("s")
                await until(pilot, lambda: isinstance(console.screen, AssignScreen), "the send dialog")
                await pilot.press("enter")  # the first suggestion
                # He is told on the air (the announcement into the demo's file), and his radio answers.
                await until(pilot, lambda: part() == ("handled", "fleetsync:100-1004"), "handled from his radio", 90)
                await until(pilot, lambda: console.dispatch.queue.incidents[case_id].parts[0].state == "handled",
                            "handled on screen", 10)

                # The officer's emergency (the demo's other story) may have taken the cursor meanwhile.
                console.dispatch.queue.select(str(case_id))
                await pilot.press("r")
                await until(pilot, lambda: isinstance(console.screen, ResolveScreen), "the resolve dialog")
                assert isinstance(console.screen, ResolveScreen) and console.screen.incident.id == case_id
                await pilot.press("v")
                await type_text(pilot, "stall moved on")
                await pilot.press("enter")
                await until(pilot, lambda: (c := store.incident(case_id)) is not None and c.verdict == "valid",
                            "the verdict stored", 10)

                await pilot.press("v")
                await until(pilot, lambda: isinstance(console.screen, ReportScreen), "the report screen")
                report = console.screen
                assert isinstance(report, ReportScreen)
                await until(pilot, lambda: report.loaded is not None, "the report read", 30)
                group = report.group("street_stall")
                assert group is not None
                assert (group.opened, group.accept.done, group.arrive.done, group.handle.done) == (1, 1, 1, 1)
                assert report.loaded is not None
                [verified] = [v for v in report.loaded.report.categories if v.key == "street_stall"]
                assert (verified.valid, verified.false_detection) == (1, 0)

        wait_until(lambda: site.bridge.connected and site.gateway.publisher.connected, 20, "bridge and gateway up")
        run(scenario())
    finally:
        site.stop()
    assert (tmp_path / "patrol-1-transmitted.wav").stat().st_size > 8000 * 2 * 3  # seconds of speech went out
