"""``pttbridge console``: the dispatcher's terminal. A thin shell around what the screens and widgets do.

    start      the main screen; a sign-in screen if no operator was given; the MQTT link (paho's thread);
               a worker reading the database's current state
    news       bridge/incident, bridge/unit, gw/+/state (MQTT) and database snapshots arrive as messages,
               are merged into :class:`~console.state.ConsoleState` and shown; a new alert rings the bell
    commands   acknowledge, resolve, note: sent to the bridge on bridge/cmd with the operator's name;
               the screen changes when the bridge announces the change, so every console agrees
    the broker away: the header turns red, paho reconnects by itself, and the database is read again
               on reconnect (incident changes are not retained, so the ones missed are read instead)
"""

from __future__ import annotations

import gc
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel

from bridge.commands import operator_problem
from bridge.store import database_url, redact
from bridge.views import Change
from config.private import private_file
from config.schema import Config, ConsoleConfig
from console.clock import SYSTEM_CLOCK, Clock
from console.commands import BindingCommands
from console.data import StoreHandle, describe_error
from console.format import shown
from console.link import BridgeLink, NotConnected
from console.messages import (
    BrokerStatus,
    CommandRefused,
    GatewayChanged,
    IncidentAction,
    IncidentChanged,
    SnapshotFailed,
    SnapshotLoaded,
    UnitChanged,
)
from console.screens.assign import AssignScreen
from console.screens.confirm import ConfirmScreen
from console.screens.department import DepartmentScreen
from console.screens.dispatch import DispatchScreen
from console.screens.health import GatewayHealthScreen
from console.screens.history import HistoryScreen
from console.screens.incident_detail import IncidentDetailScreen
from console.screens.login import LoginScreen
from console.screens.map import MapScreen
from console.screens.note import NoteScreen
from console.screens.open_case import NewCase, OpenCaseScreen
from console.screens.plans import PlansScreen
from console.screens.report import ReportScreen
from console.screens.resolve import Resolution, ResolveScreen
from console.state import NEW, ConsoleState, IncidentUpdate, Outcome
from console.voice_link import FloorNews, VoiceLink
from console.voice_link import NotConnected as VoiceNotConnected
from console.widgets.alert_queue import AlertQueue
from console.widgets.status_header import StatusHeader
from console.widgets.units_table import UnitsTable

log = logging.getLogger(__name__)

FLASH_S = 0.5  # the marker of an unacknowledged incident flips this often
SNAPSHOT_RETRY_S = 5.0  # a database not reachable (or not created yet) is tried again this often
COMMAND_ANSWER_S = 5.0  # a command the bridge has not answered by then is reported
TOAST_S = 1.0  # incident toasts come at most this often; the ones between are gathered into one
TOAST_LINES = 5  # incidents named in a gathered toast; the queue shows them all
# The garbage collector's youngest generation is collected after this many new container objects (Python's
# default is 700): see on_mount.
GC_YOUNG = 5000
VOICE_REFRESH_S = 0.2  # the voice panel is redrawn this often (when something changed)
# A terminal sends no key-up: the talk key toggles. Held down, it repeats (after ~0.5 s, then every ~30 ms):
# a press this soon after the last one is that repeat, not a second press, and changes nothing.
TALK_REPEAT_S = 0.6


class DispatchApp(App[None]):
    TITLE = "pttbridge dispatch"
    # ctrl+p: every action of the screen in front with its key, for the ones the footer has no room for.
    COMMANDS = App.COMMANDS | {BindingCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # A dispatcher's reflex (and what `pttbridge up` promises): Ctrl+C stops, it does not copy.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        config: Config,
        operator: str | None = None,
        *,
        database: str | None = None,
        duration_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__()
        #: What every screen and widget reads the time from (console.clock): the wall clock unless given.
        self.clock = clock
        self.duration_s = duration_s
        self.config = config
        self.settings: ConsoleConfig = config.console
        self.operator = (operator or config.console.operator or "").strip() or None
        if self.operator is not None and operator_problem(self.operator) is not None:
            # The bridge would refuse every command in that name: ask for one at sign-in instead.
            log.warning("operator name refused (%s): asking at sign-in", operator_problem(self.operator))
            self.operator = None
        self.state = ConsoleState()
        self.store = StoreHandle(database or database_url(config))
        self.link = BridgeLink(config.mqtt, self.post_message, name=self.operator or "console", clock=clock)
        self.dispatch = DispatchScreen()
        self.broker: bool | None = None
        self.database = "…"
        self._flash_on = True
        self._pending: dict[tuple[int, str], float] = {}  # (incident, change awaited) -> when sent
        self._monitors_asked: set[int] = set()  # incidents whose remote monitor's result is to be told
        self._toast_at = -TOAST_S  # when the last incident toast was shown (monotonic)
        self._toasts_held: list[tuple[str, str]] = []  # (title, text) of the toasts gathered meanwhile
        self.voice = VoiceLink(config.mqtt, self.settings.name, lambda: self.operator, self.post_message,
                               speaker=self.settings.audio_device, microphone=self.settings.microphone,
                               lease_s=self.settings.voice_lease_s)
        self._voice_version = -1
        self._talk_key_at = -TALK_REPEAT_S  # when the talk key was last pressed (monotonic)

    # --- start and stop ------------------------------------------------------------------------

    def get_default_screen(self) -> DispatchScreen:
        return self.dispatch

    def on_mount(self) -> None:
        # A full collection walks everything the console holds (its tables' cells: ~150 ms of CPU under load)
        # and comes after ten middle ones, each after ten young ones. Textual's render objects churn through the
        # young generation by the thousand a second: at Python's 700 a full collection came every 1.5 s and
        # paused the screen. At this many, every ~15 s; what waits for it stays small as the tables' caches
        # are freed at once (FlatLRU). bench/console_bench.py: frame p99 250-280 -> 100-140 ms.
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        if self.operator is None:
            self.push_screen(LoginScreen(), callback=self._signed_in)
        self.link.start()
        self.voice.start()
        self.set_interval(VOICE_REFRESH_S, self._voice_refresh)
        self.load_snapshot()
        self.set_interval(FLASH_S, self._flash)
        self.set_interval(1.0, self._tick)
        if self.duration_s:
            self.set_timer(self.duration_s, self.exit)
        self._status()

    def on_unmount(self) -> None:
        self.voice.stop()
        self.link.stop()
        self.store.close()

    def _signed_in(self, name: str | None) -> None:
        self.operator = name
        self._status()

    @work(thread=True, group="monitor")
    def _tell_monitor_result(self, incident_id: int) -> None:
        """The gateway's word on a remote monitor this console asked for, as the bridge wrote it in the case's
        history (read in a worker: the database may be slow)."""
        try:
            detail = self.store.incident_detail(incident_id)
        except Exception as exc:  # noqa: BLE001 - the database away: the history will show it later
            log.warning("remote monitor of #%s: cannot read its history: %s", incident_id, str(exc).splitlines()[0])
            return
        said = [h for h in detail.history if h.action == Change.REMOTE_MONITOR] if detail is not None else []
        if said:
            note = said[-1].note or ""
            sent = note.startswith("sent ")
            self.call_from_thread(self.notify, f"Remote monitor, #{incident_id}: {note}",
                                  severity="information" if sent else "error", timeout=8)

    # --- the database ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="snapshot")
    def load_snapshot(self) -> None:
        """Read the current state from the database (blocking: a worker thread)."""
        self.call_from_thread(self.state.begin_snapshot)
        try:
            snapshot = self.store.snapshot()
        except Exception as exc:  # noqa: BLE001 - the database away, or not created yet by the bridge; the console lives on
            log.warning("cannot read the database %s: %s", redact(self.store.url), str(exc).splitlines()[0])
            self.post_message(SnapshotFailed(describe_error(exc)))
            return
        self.post_message(SnapshotLoaded(snapshot))

    def on_snapshot_loaded(self, message: SnapshotLoaded) -> None:
        s = message.snapshot
        first = self.database != "ok"
        self.database = "ok"
        updates = self.state.apply_snapshot(s.incidents, s.units, s.gateways)
        for update in updates:
            self._show(update)
        for unit in self.state.units.values():
            self.dispatch.units.show(unit)
        if first and self.state.unacknowledged and self.settings.bell:
            self.bell()  # a console started on unacknowledged incidents says so
        if first:
            # What is held from now on for the console's life (Textual, the screens, the snapshot) is kept out
            # of the full garbage collections' walk: under load they paused the screen 100-200 ms a second.
            gc.freeze()
        self._status()

    def on_snapshot_failed(self, message: SnapshotFailed) -> None:
        self.database = message.reason
        self._status()
        self.set_timer(SNAPSHOT_RETRY_S, self.load_snapshot)

    # --- live news -------------------------------------------------------------------------------

    def on_incident_changed(self, message: IncidentChanged) -> None:
        update = self.state.apply_incident(message.incident, message.change)
        self._pending.pop((message.incident.id, message.change or ""), None)
        self._show(update)
        if message.change == Change.REMOTE_MONITOR and message.incident.id in self._monitors_asked:
            self._monitors_asked.discard(message.incident.id)
            self._tell_monitor_result(message.incident.id)
        if update.ring:
            if self.settings.bell:
                self.bell()
            i = update.incident
            what = "wired input" if i.category == "alert" else i.category.replace("_", " ")
            who = shown(f"{i.unit or what}{f' ({i.alias})' if i.alias else ''}")
            if message.change == "opened":
                title = f"EMERGENCY: incident #{i.id}" if i.category == "alert" else f"Street event: incident #{i.id}"
                self._toast(title, f"{who} on {shown(i.channel)}@{shown(i.gateway)}")
            elif message.change == "escalated":
                if i.escalated in ("ack", "resolve"):
                    late = "acknowledged" if i.escalated == "ack" else "resolved"
                    self._toast(f"OVERDUE: incident #{i.id}", f"{who}: not {late} in time")
                words = {"accept": "accepted", "arrive": "arrived", "resolve": "handled"}
                parts = [f"{p.department} not {words.get(p.escalated or '', 'done')} in time" for p in i.parts
                         if p.escalated and p.open]
                if parts:
                    self._toast(f"OVERDUE: case #{i.id}", f"{who}: {'; '.join(parts)}")
        self._status()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification of the console, whoever asks for it, is plain text: names in it came from the
        network (an alias ``[/]`` would be a markup error that ends the console), and what is not printable
        in it is escaped (line breaks the console put there itself are kept)."""
        del markup  # never: no notification of this console is written in markup
        text = "\n".join(shown(line) for line in message.split("\n"))
        super().notify(text, title=shown(title), severity=severity, timeout=timeout, markup=False)

    def _toast(self, title: str, text: str) -> None:
        """An incident's toast: at once if none was shown in the last :data:`TOAST_S`, else gathered with
        the others of that second into one (the bell and the queue's row are at once either way). A toast
        per incident stacked a dozen on screen in a storm, each coming and going laying the screen out."""
        since = time.monotonic() - self._toast_at
        if not self._toasts_held and since >= TOAST_S:
            self._toast_at = time.monotonic()
            self.notify(text, title=title, severity="error", timeout=8)
            return
        self._toasts_held.append((title, text))
        if len(self._toasts_held) == 1:
            self.set_timer(max(TOAST_S - since, 0.05), self._toast_held)

    def _toast_held(self) -> None:
        held, self._toasts_held = self._toasts_held, []
        self._toast_at = time.monotonic()
        if len(held) == 1:
            self.notify(held[0][1], title=held[0][0], severity="error", timeout=8)
        elif held:
            lines = [f"{title}: {text}" for title, text in held[:TOAST_LINES]]
            if len(held) > TOAST_LINES:
                lines.append(f"… and {len(held) - TOAST_LINES} more in the queue")
            self.notify("\n".join(lines), title=f"{len(held)} incidents need attention", severity="error",
                        timeout=8)

    def _show(self, update: IncidentUpdate) -> None:
        i = update.incident
        self._auto_listen(update)
        if update.outcome is Outcome.REMOVED:
            self.dispatch.queue.withdraw(i.id)
        elif update.outcome is not Outcome.STALE:
            self.dispatch.queue.show(i)
            if update.outcome is Outcome.ADDED and i.state == NEW:
                self.dispatch.queue.offer_selection(i.id)
        if update.outcome is not Outcome.STALE:
            for screen in self.screen_stack:
                if isinstance(screen, IncidentDetailScreen) and screen.incident_id == i.id:
                    screen.show_incident(i, self.state.gateways.get(i.gateway))
                    screen.load()

    def on_unit_changed(self, message: UnitChanged) -> None:
        shown = self.state.apply_unit(message.unit)
        if shown is not None:
            self.dispatch.units.show(shown)

    def on_gateway_changed(self, message: GatewayChanged) -> None:
        was = self.state.gateways.get(message.gateway)
        for unit in self.state.apply_gateway(message.gateway, message.online):
            self.dispatch.units.show(unit)
        if was is True and not message.online:
            self.notify(f"gateway {shown(message.gateway)} went offline", severity="warning", timeout=6)

    def on_command_refused(self, message: CommandRefused) -> None:
        self.notify(f"The bridge refused {message.what}: {shown(message.reason)}", severity="error", timeout=10)

    def on_broker_status(self, message: BrokerStatus) -> None:
        if message.connected and self.broker is not True:
            # Incident changes are not retained: the ones missed are read, also those of the moments between
            # the first read (at start) and the subscription.
            self.load_snapshot()
        if self.broker is True and not message.connected:
            self.notify("Lost the broker: reconnecting. Commands cannot be sent meanwhile.", severity="error",
                        timeout=6)
        self.broker = message.connected
        self._status()

    # --- timers ----------------------------------------------------------------------------------

    def _flash(self) -> None:
        if self.settings.flash:
            self._flash_on = not self._flash_on
            self.dispatch.queue.flash(self._flash_on)

    def _tick(self) -> None:
        now = self.clock.now()
        self.dispatch.queue.tick(now)
        self.dispatch.units.tick(now)
        self._status(now)
        late = [key for key, sent in self._pending.items() if time.monotonic() - sent > COMMAND_ANSWER_S]
        for incident_id, change in late:
            del self._pending[(incident_id, change)]
            self.notify(f"The bridge has not confirmed '{change}' of incident #{incident_id}: is it running?",
                        severity="error", timeout=8)

    def _status(self, now: datetime | None = None) -> None:
        for screen in self.screen_stack:
            for header in screen.query(StatusHeader):
                header.update_status(operator=self.operator, broker=self.broker, database=self.database,
                                     open_count=len(self.state.incidents), new_count=self.state.unacknowledged,
                                     clock=now or self.clock.now())

    # --- what dispatchers do ---------------------------------------------------------------------

    def on_alert_queue_open_requested(self, message: AlertQueue.OpenRequested) -> None:
        self.open_detail(message.incident_id)

    def on_units_table_unit_chosen(self, message: UnitsTable.UnitChosen) -> None:
        incident = self.state.unit_incident(message.unit)
        if incident is None:
            self.notify(f"{shown(message.unit)} has no open incident.", timeout=3)
        else:
            self.open_detail(incident.id)

    def action_open_map(self) -> None:
        self.push_screen(MapScreen(self.state, self.store, self.settings, incident=self.dispatch.queue.selected_id,
                                   unit=self.dispatch.units.selected_key))

    def action_open_history(self) -> None:
        """Past incidents, calls and events, searched in the database (``h``)."""
        self.push_screen(HistoryScreen(self.store))
        self.call_after_refresh(self._status)  # its header, once it is mounted

    def action_open_health(self) -> None:
        """Each gateway's drivers, audio levels, outbox and devices, live from its state (``g``)."""
        self.push_screen(GatewayHealthScreen(self.link.gateways, lambda: self.state.gateway_views))
        self.call_after_refresh(self._status)  # its header, once it is mounted

    def action_open_report(self) -> None:
        """The supervisor's report: cases opened, times to each step, limits kept, verdicts (``v``)."""
        self.push_screen(ReportScreen(self.store))
        self.call_after_refresh(self._status)  # its header, once it is mounted

    def action_open_plans(self) -> None:
        """The technician's channel plans per gateway: edit, import/export CHIRP CSV, save (``t``)."""
        self.push_screen(PlansScreen(self.store, self.link, self.operator))

    def open_detail(self, incident_id: int) -> None:
        incident = self.state.incidents.get(incident_id)
        if incident is not None:
            self.push_screen(IncidentDetailScreen(incident, self.store, self.state.gateways.get(incident.gateway)))
            self.call_after_refresh(self._status)  # its header, once it is mounted

    def on_incident_action(self, message: IncidentAction) -> None:
        incident = self.state.incidents.get(message.incident_id)
        if incident is None:
            self.notify(f"Incident #{message.incident_id} is no longer open.", severity="warning", timeout=4)
        elif self.operator is None:
            self.notify("Sign in first: every change is made by a named operator.", severity="error")
        elif message.action == "ack":
            if incident.state != NEW:
                self.notify(f"#{incident.id} was acknowledged by {incident.acknowledged_by or 'someone'} already.",
                            timeout=4)
                return
            self._send("ack", incident.id, "acknowledged")
        elif message.action == "resolve":
            self.push_screen(ResolveScreen(incident), callback=lambda r: self._resolved(incident.id, r))
        elif message.action == "note":
            self.push_screen(NoteScreen(incident.id), callback=lambda n: self._noted(incident.id, n))
        elif message.action == "assign":
            self.push_screen(AssignScreen(incident), callback=lambda u: self._assigned(incident.id, u))
        elif message.action == "department":
            self.push_screen(DepartmentScreen(incident, self.config.departments),
                             callback=lambda d: self._department_added(incident.id, d))

    def action_open_case(self) -> None:
        """Open a case by hand: its kind, the place (a unit, a camera, coordinates), a note (``o``)."""
        if self.operator is None:
            self.notify("Sign in first: every change is made by a named operator.", severity="error")
            return
        unit = self.dispatch.units.selected_key
        self.push_screen(OpenCaseScreen(self.config.case_kinds, place=unit or ""), callback=self._case_opened)

    def _case_opened(self, case: NewCase | None) -> None:
        if case is None or self.operator is None:
            return
        body: dict[str, Any] = {"action": "open_case", "kind": case.kind, "operator": self.operator, **case.place}
        if case.note:
            body["note"] = case.note
        try:
            self.link.command(body, f"open a {case.kind.replace('_', ' ')} case")
        except NotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error", timeout=6)
            return
        self.notify(f"Case of {case.kind.replace('_', ' ')} asked for as {self.operator}.", timeout=3)

    def _department_added(self, incident_id: int, department: str | None) -> None:
        if department:
            self._send("add_department", incident_id, "department", department=department)

    def _resolved(self, incident_id: int, choice: Resolution | None) -> None:
        if choice is None:
            return
        extra = {"verdict": choice.verdict} if choice.verdict else {}
        if choice.reason:
            extra["reason"] = choice.reason
        self._send("resolve", incident_id, "resolved", resolution=choice.resolution, **extra)

    def _assigned(self, incident_id: int, unit: str | None) -> None:
        if unit:
            self._send("assign", incident_id, "dispatch", unit=unit)

    def _noted(self, incident_id: int, note: str | None) -> None:
        if note:
            self._send("note", incident_id, "note", note=note)

    def _send(self, action: str, incident_id: int, awaited: str, **fields: str) -> None:
        assert self.operator is not None
        try:
            self.link.send(action, incident_id, self.operator, **fields)
        except NotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error", timeout=6)
            return
        self._pending[(incident_id, awaited)] = time.monotonic()
        words = {"ack": "acknowledgement", "resolve": "resolution", "note": "note", "assign": "dispatch",
                 "add_department": "new department"}[action]
        self.notify(f"{words.capitalize()} of #{incident_id} sent as {self.operator}.", timeout=3)

    # --- live voice ------------------------------------------------------------------------------

    def _auto_listen(self, update: IncidentUpdate) -> None:
        """An open emergency: listen to its channel by itself (and stop once no emergency is open there,
        unless the dispatcher chose to listen)."""
        i = update.incident
        if i.category != "alert":
            return
        if update.outcome is Outcome.ADDED:
            self.voice.listen(i.gateway, i.channel, auto=f"emergency #{i.id}")
            self.call_after_refresh(self._voice_refresh)  # shown with the incident, not up to a tick later
        elif update.outcome is Outcome.REMOVED:
            view = self.voice.views.get((i.gateway, i.channel))
            others = [o for o in self.state.incidents.values() if o.id != i.id and o.category == "alert"
                      and (o.gateway, o.channel) == (i.gateway, i.channel)]
            if view is not None and view.auto and view.auto.startswith("emergency") and not others:
                self.voice.unlisten(i.gateway, i.channel)

    def _voice_refresh(self) -> None:
        if self.voice.version != self._voice_version:
            self._voice_version = self.voice.version
            self.dispatch.voice.show(self.voice.snapshot(), self.voice.clock())

    def _voice_target(self) -> tuple[str, str] | None:
        """The channel a voice key acts on: the voice panel's row when it has the focus, else the selected
        incident's channel, else the panel's row."""
        panel = self.dispatch.voice
        row = panel.selected
        if self.focused is not panel:
            selected = self.dispatch.queue.selected_id
            incident = self.state.incidents.get(selected) if selected is not None else None
            if incident is not None:
                return incident.gateway, incident.channel
        return (row.gateway, row.channel) if row is not None else None

    def action_voice_listen(self) -> None:
        """Listen to the channel, or stop listening (``l``)."""
        target = self._voice_target()
        if target is None:
            self.notify("No channel to listen to: select an incident or a row of the voice panel.", timeout=3)
            return
        if target in self.voice.listened:
            self.voice.unlisten(*target)
            self.notify(f"Stopped listening to {target[1]}@{target[0]}.", timeout=3)
        else:
            self.voice.listen(*target)
            self.notify(f"Listening to {target[1]}@{target[0]}.", timeout=3)
        self._voice_refresh()

    def action_voice_talk(self) -> None:
        """The talk key (``k``): press once to talk, again to stop (a terminal reports no key-up)."""
        now = time.monotonic()
        repeat, self._talk_key_at = now - self._talk_key_at < TALK_REPEAT_S, now
        if repeat:
            return
        if self.voice.talk is not None:
            self.voice.release()
            self._voice_refresh()
            return
        self._talk(override=False)

    def action_voice_override(self) -> None:
        """Talk over radio traffic (``K``), for an emergency: asked to confirm first."""
        if self.voice.talk is not None:
            self.voice.release()
            self._voice_refresh()
            return
        target = self._voice_target()
        if target is None:
            self.notify("No channel to talk on: select an incident or a row of the voice panel.", timeout=3)
            return
        self.push_screen(ConfirmScreen("Talk over radio traffic?",
                                       f"{target[1]}@{target[0]}: your transmission covers whoever is talking "
                                       f"on the channel. For emergencies only."),
                         callback=lambda yes: self._talk(override=True, target=target) if yes else None)

    def _talk(self, *, override: bool, target: tuple[str, str] | None = None) -> None:
        target = target or self._voice_target()
        if target is None:
            self.notify("No channel to talk on: select an incident or a row of the voice panel.", timeout=3)
            return
        if self.operator is None:
            self.notify("Sign in first: every transmission is made by a named operator.", severity="error")
            return
        try:
            self.voice.press(*target, override=override)
        except (VoiceNotConnected, RuntimeError) as exc:
            self.notify(f"Cannot talk: {exc}.", severity="error", timeout=6)
            return
        if target not in self.voice.listened:
            self.voice.listen(*target)  # a dispatcher who talks hears the answer
        self._voice_refresh()

    def on_floor_news(self, message: FloorNews) -> None:
        where = f"{message.channel}@{message.gateway}"
        if message.what == "granted":
            self.notify(f"Talking on {where}: press k again to stop.", timeout=3)
        elif message.what == "refused":
            self.bell()
            self.notify(f"Talk on {where} refused: {message.reason or 'no reason given'}", severity="error",
                        timeout=8)
        elif message.what == "released":
            self.notify(f"Talk on {where} ended: {message.reason or 'released'}", severity="warning", timeout=6)
        self._voice_refresh()

    def action_remote_monitor(self) -> None:
        """Key the selected incident's MDC-1200 radio's microphone and listen to its channel (``M``)."""
        selected = self.dispatch.queue.selected_id
        incident = self.state.incidents.get(selected) if selected is not None else None
        if incident is None or not (incident.unit or "").startswith("mdc:"):
            self.notify("Remote monitor needs an incident of an MDC-1200 unit (mdc:...) selected.", timeout=4)
            return
        assert incident.unit is not None
        try:
            self.voice.remote_monitor(incident.gateway, incident.channel, incident.unit, case=incident.id)
        except VoiceNotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error", timeout=6)
            return
        self._monitors_asked.add(incident.id)
        self.notify(f"Remote monitor of {incident.unit} asked on {incident.channel}@{incident.gateway}: "
                    f"listening.", timeout=4)
        self._voice_refresh()


def run(config: Config, operator: str | None = None, *, duration_s: float | None = None) -> None:
    """Run the console in this terminal until the dispatcher quits (``pttbridge console -c FILE``).

    Log records go to ``{data_dir}/console.log`` meanwhile: a line on stderr would tear the screen.
    """
    root = logging.getLogger()
    saved = root.handlers[:]
    log_path = Path(config.data_dir) / "console.log"
    private_file(log_path)  # it names operators and units: the owner's alone, whatever the umask
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.handlers = [handler]
    try:
        DispatchApp(config, operator, duration_s=duration_s).run()
    finally:
        root.handlers = saved
        handler.close()
