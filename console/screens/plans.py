"""The technician's channel plans (``t`` from the dispatch screen): per gateway, the channels it should run.

    gateways   each gateway with the plan version it runs (``plan_version`` in its state, as the bridge
               stored it) beside the newest version saved (pending until the gateway reports it), and the
               reason if it refused a plan
    channels   the selected gateway's working plan; enter loads a channel into the form
    form       three tabs:
               channel   name, RX/TX MHz (TX ``off``: receive only), mode, tone (below), power in watts;
                         then the channel's audio inputs and its serial ports, each a list: the picker
                         chooses which one the boxes edit (audio: device, the card's channel count, input,
                         decoders, selcall standard, name, and with ``dmr`` among the decoders its colour
                         codes, slots and polarity; serial: port, protocol, baud rate, name), + adds one,
                         - removes the one shown; what the form does not show (CHIRP's location, step,
                         scan skip, the radio's name, comment) is kept as imported
               rules     the channel's rules in order (the first that matches decides); enter loads one into
                         the rule boxes: kind, label, unit template, ``when`` as ``key=value`` pairs (``a|b``:
                         any of them) and ``match`` as ``key=regex`` pairs; "Emergency rule" puts first the
                         rule that makes a DTMF ``*911*UNIT#`` or a 5-tone status digit 9 an alert
               transmit  transmit on/off, device, rate, lead-in, tail, timeout; PTT by vox, a serial port's
                         RTS/DTR line or a Modbus coil; record on/off, detection, threshold, hang, longest call
               everything is checked as it is typed by the configuration's own schema (the channel parsed
               with the rest of the plan), each box showing the error of its key
    buttons    put (add or change the channel), remove, import / export CHIRP CSV at the path (what the
               import adjusted, or the export could not say, is listed under the form), save

Every audio and serial driver of the channel can be edited, added and removed; other drivers (Modbus),
and every key the form does not show, are carried over untouched. Saving sends ``{"action": "plan", ...}``
to the bridge on ``bridge/cmd``; the bridge validates it again, stores a new version and sends it to the
gateway. The screen reads the database in a worker thread; what turns the boxes into a channel and back
(and which box an error of the schema belongs to) is :mod:`console.planform`, where the tone box's
notation is drawn.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, Select, Static, TabbedContent, TabPane

from bridge.chirp import ChirpError, merge, read_chirp, write_chirp
from bridge.plans import Plans, canonical
from config.schema import ConfigError
from console.data import StoreHandle, describe_error
from console.format import plain, plain_lines
from console.link import BridgeLink, NotConnected
from console.planform import (
    AUDIO_BOXES,
    DMR_BOXES,
    PTT_BOXES,
    RECORD_BOXES,
    RULE_BOXES,
    SERIAL_BOXES,
    TRANSMIT_BOXES,
    audio_values,
    driver_kind,
    emergency_rule,
    field_errors,
    first_of_kind,
    form_audio,
    form_channel,
    form_rule,
    form_serial,
    form_values,
    of_kind,
    rule_texts,
    serial_values,
    text_of,
    tone_text,
)
from console.widgets.footer import ConsoleFooter
from drivers.audio.selcall_standards import STANDARDS

REFRESH_S = 2.0  # applied and pending versions are read again this often
NOTES_SHOWN = 6  # lines of CSV notes under the form; the command line lists them all

# The form's boxes: (id, placeholder).
FIELDS = (
    ("name", "name, e.g. patrol-1"),
    ("rx_mhz", "RX MHz, e.g. 146.52"),
    ("tx_mhz", "TX MHz, off: RX only"),
    ("mode", "mode: FM NFM AM DMR ..."),
    ("tone", "tone: 100.0 D023 Tone 67.0 ..."),
    ("power", "power W (50)"),
    ("device", "audio device, e.g. pulse"),
    ("channels", "channels (1)"),
    ("input", "input (1)"),
    ("decoders", "decoders: dtmf, selcall, afsk1200, mdc1200, fleetsync, dmr"),
    ("audio_name", "audio name (audio)"),
    ("dmr_color_codes", "DMR colour codes, e.g. 1, 2 (all)"),
    ("port", "serial port URL, e.g. /dev/ttyUSB0"),
    ("protocol", "serial protocol: nmea, kenwood, ..."),
    ("baudrate", "baud (9600)"),
    ("serial_name", "serial name (protocol)"),
)
# The pickers of the audio input and of the serial port the boxes show: they list each kind.
PICKERS = {"audio_at": ("audio", "audio"), "serial_at": ("serial", "serial")}  # id -> (driver type, label)
RULE_FIELDS = (  # with rule_kind (a choice), planform.RULE_BOXES
    ("rule_label", "label, e.g. emergency status"),
    ("rule_unit", "unit template, e.g. dtmf:{1}"),
    ("rule_when", "when: key=value ..., e.g. protocol=fleetsync status=98|99"),
    ("rule_match", r"match: key=regex ..., e.g. digits=\*911\*(\d{4})#"),
)
TRANSMIT_FIELDS = (
    ("tx_device", "transmit device, e.g. pulse"),
    ("tx_rate", "rate Hz (48000)"),
    ("tx_lead_in_ms", "lead-in ms (300)"),
    ("tx_tail_ms", "tail ms (100)"),
    ("tx_timeout_s", "timeout s (10)"),
    ("ptt_port", "PTT serial port URL"),
    ("ptt_driver", "modbus driver name"),
    ("ptt_coil", "coil: point name or address"),
)
RECORD_FIELDS = (
    ("rec_threshold_dbfs", "threshold dBFS (-40)"),
    ("rec_hang_ms", "hang ms (800)"),
    ("rec_max_s", "longest call s (120)"),
    ("rec_cor_point", "COR io point (cor)"),
)
# The choices: id -> (label, value) options; the first is the default (selcall: none, the decoder's ZVEI1).
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "selcall_standard": (("selcall: default", ""), *((f"selcall: {s}", s) for s in STANDARDS)),
    "rule_kind": tuple((f"kind: {k}", k) for k in ("alert", "beacon", "ptt", "status", "call", "io")),
    "ptt_method": (("PTT: vox", "vox"), ("PTT: serial line", "serial"), ("PTT: modbus coil", "modbus")),
    "ptt_line": (("line: RTS", "rts"), ("line: DTR", "dtr")),
    "rec_detect": (("detect: voice (vad)", "vad"), ("detect: COR input", "cor")),
    "dmr_slots": (("DMR slots: both", ""), ("DMR slot 1", "1"), ("DMR slot 2", "2")),
}
CHECKS = (("tx_on", "transmit"), ("rec_on", "record"), ("dmr_invert", "DMR inverted"))
# Which tab each box is on, so that a tab with an error in a hidden box says so in its label.
TABS = {"plan-tab-rules": ("rules", *RULE_BOXES),
        "plan-tab-transmit": ("tx_on", "rec_on", *TRANSMIT_BOXES, *PTT_BOXES, *RECORD_BOXES)}


class PlansLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]], error: str | None = None) -> None:
        super().__init__()
        self.rows = rows  # per gateway: name, applied, pending, online, plan_error, channels
        self.error = error


def send_plan(link: BridgeLink, gateway: str, channels: list[dict[str, Any]], operator: str) -> None:
    """The ``plan`` command to the bridge (QoS 1); refused while the broker is away."""
    body = {"action": "plan", "gateway": gateway, "channels": channels, "operator": operator}
    link.command(body, f"the plan for {gateway}")


class PlansScreen(Screen[None]):
    DEFAULT_CSS = """
    PlansScreen { layout: vertical; }
    PlansScreen #plans-top { height: 1fr; min-height: 5; }
    PlansScreen #plans-gateways { width: 2fr; }
    PlansScreen #plans-channels { width: 3fr; }
    PlansScreen #plans-form { height: auto; max-height: 70%; }
    PlansScreen #plans-form TabPane { padding: 0; height: auto; }
    PlansScreen #plans-form Horizontal { height: auto; }
    PlansScreen #plans-form Input, PlansScreen #plan-path { width: 1fr; }
    PlansScreen #plans-form Select { width: 1fr; }
    PlansScreen #plans-form Checkbox { width: auto; }
    PlansScreen #plans-form Select.-invalid > SelectCurrent { border: tall $error; }
    PlansScreen #plans-form Select.picker { width: 16; }
    PlansScreen #plans-form Select > SelectCurrent { padding: 0 1; }
    PlansScreen #plans-form #plan-selcall_standard { width: 22; }
    PlansScreen #plans-form #plan-dmr_slots { width: 22; }
    PlansScreen #plans-form #plan-channels, PlansScreen #plans-form #plan-input { width: 15; }
    PlansScreen #plans-form Button.driver { min-width: 3; width: 3; }
    PlansScreen #plan-rules { height: 6; }
    PlansScreen #plan-rules.-invalid { border-left: thick $error; }
    PlansScreen #plans-errors { color: $error; height: auto; }
    PlansScreen #plans-notes { color: $warning; height: auto; display: none; }
    PlansScreen #plans-notes.-shown { display: block; }
    PlansScreen #plans-buttons, PlansScreen #plan-rule-buttons { height: auto; }
    PlansScreen #plans-buttons Button, PlansScreen #plan-rule-buttons Button { min-width: 8; margin: 0 1 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "save", "Save plan"),
        Binding("ctrl+n", "new_channel", "New channel"),
    ]

    def __init__(self, store: StoreHandle, link: BridgeLink, operator: str | None) -> None:
        super().__init__()
        self.store = store
        self.link = link
        self.operator = operator
        self.rows: dict[str, dict[str, Any]] = {}  # gateway -> what was read
        self.working: dict[str, list[dict[str, Any]]] = {}  # gateway -> the plan being edited
        self.gateway: str | None = None
        self.editing: str | None = None  # the channel the form was loaded from
        self.errors: dict[str, str] = {}
        self.rules: list[dict[str, Any]] = []  # the form's channel's rules, as edited
        self.rule_at: int | None = None  # the rule in the rule boxes
        self.rule_loaded: dict[str, Any] = {}  # that rule as it was when loaded (its values' types)
        self.rule_errors: dict[str, str] = {}  # rule boxes that cannot even be read as pairs
        self.drivers: list[dict[str, Any]] = []  # the form's channel's drivers, as edited
        # Where in those drivers the audio input in the audio boxes and the serial port in the serial boxes are.
        self.audio_at: int | None = None
        self.serial_at: int | None = None
        self.gateways_table: DataTable[str] = DataTable(id="plans-gateways", cursor_type="row")
        self.channels_table: DataTable[str] = DataTable(id="plans-channels", cursor_type="row")
        self._channel_rows: tuple[str | None, list[tuple[str, ...]]] = (None, [])  # what the table shows, whose
        self.rules_table: DataTable[str] = DataTable(id="plan-rules", cursor_type="row")
        self.inputs = {key: Input(placeholder=hint, id=f"plan-{key}")
                       for key, hint in (*FIELDS, *RULE_FIELDS, *TRANSMIT_FIELDS, *RECORD_FIELDS)}
        self.selects: dict[str, Select[str]] = {
            key: Select(options, value=options[0][1], allow_blank=False, id=f"plan-{key}")
            for key, options in CHOICES.items()}
        self.checks = {key: Checkbox(label, id=f"plan-{key}") for key, label in CHECKS}
        self.pickers: dict[str, Select[str]] = {
            key: Select([(f"no {label}", "")], value="", allow_blank=False, id=f"plan-{key}", classes="picker")
            for key, (_kind, label) in PICKERS.items()}
        self.error_label = Static("", id="plans-errors")
        self.notes_label = Static("", id="plans-notes", markup=False)
        self.path = Input(placeholder="CHIRP CSV file path", id="plan-path")

    @property
    def boxes(self) -> dict[str, Widget]:
        """Every box of the form by its key: inputs, choices and checks."""
        return {**self.inputs, **self.selects, **self.checks, **self.pickers}

    def compose(self) -> ComposeResult:
        with Horizontal(id="plans-top"):
            yield self.gateways_table
            yield self.channels_table
        boxes = self.boxes
        with Vertical(id="plans-form"), TabbedContent(id="plan-tabs"):
            with TabPane("channel", id="plan-tab-channel"):
                with Horizontal():
                    yield from (boxes[key] for key in ("name", "rx_mhz", "tx_mhz", "mode", "tone", "power"))
                # The audio boxes take two rows: where the radio is heard (the card, its channel count,
                # the radio's input on it), then what listens to it.
                for kind, keys in (("audio", AUDIO_BOXES[:3]), ("serial", SERIAL_BOXES)):
                    with Horizontal():
                        yield boxes[f"{kind}_at"]
                        yield from (boxes[key] for key in keys)
                        yield Button("+", id=f"plan-{kind}-add", classes="driver", tooltip=f"Add a {kind} driver")
                        yield Button("-", id=f"plan-{kind}-remove", classes="driver",
                                     tooltip=f"Remove this {kind} driver")
                    if kind == "audio":
                        with Horizontal():
                            yield from (boxes[key] for key in AUDIO_BOXES[3:])
                        with Horizontal(id="plan-dmr"):
                            yield from (boxes[key] for key in DMR_BOXES)
            with TabPane("rules", id="plan-tab-rules"):
                yield self.rules_table
                with Horizontal():
                    yield from (boxes[key] for key in ("rule_kind", "rule_label", "rule_unit"))
                with Horizontal():
                    yield from (boxes[key] for key in ("rule_when", "rule_match"))
                with Horizontal(id="plan-rule-buttons"):
                    yield Button("Add rule", id="plan-rule-add")
                    yield Button("Remove rule", id="plan-rule-remove")
                    yield Button("Emergency rule", id="plan-rule-emergency", variant="warning")
            with TabPane("transmit / record", id="plan-tab-transmit"):
                for row in (["tx_on", *TRANSMIT_BOXES], list(PTT_BOXES), ["rec_on", *RECORD_BOXES]):
                    with Horizontal():
                        yield from (boxes[key] for key in row)
        yield self.error_label
        yield self.notes_label
        with Horizontal(id="plans-buttons"):
            yield Button("Put channel", id="plan-put", variant="primary")
            yield Button("Remove", id="plan-remove")
            yield self.path
            yield Button("Import CSV", id="plan-import")
            yield Button("Export CSV", id="plan-export")
            yield Button("Save plan", id="plan-save", variant="success")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.gateways_table.border_title = "gateways"
        self.channels_table.border_title = "channels"
        self.gateways_table.add_columns("gateway", "applied", "pending", "state")
        self.channels_table.add_columns("name", "RX MHz", "TX MHz", "mode", "tone", "W", "drivers")
        self.rules_table.add_columns("#", "kind", "label", "unit", "when", "match")
        self._show_pickers()
        self._sync_enabled(self._values())
        self.load()
        self.set_interval(REFRESH_S, self.load)

    # --- the database ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="plans")
    def load(self) -> None:
        try:
            store = self.store.get()
            plans = {p.gateway: p for p in Plans(store.engine).all_current()}
            rows: list[dict[str, Any]] = []
            for g in store.gateways():
                state = g.state or {}
                rows.append({"name": g.name, "online": g.online, "applied": state.get("plan_version"),
                             "plan_error": state.get("plan_error")})
            known = {r["name"] for r in rows}
            rows += [{"name": n, "online": False, "applied": None, "plan_error": None} for n in plans if n not in known]
            for r in rows:
                plan = plans.get(r["name"])
                r["pending"] = plan.version if plan is not None else None
                r["channels"] = plan.channels if plan is not None else []
        except Exception as exc:  # noqa: BLE001 - the database away: said on the screen, tried again; the console lives on
            self.post_message(PlansLoaded([], describe_error(exc)))
            return
        self.post_message(PlansLoaded(sorted(rows, key=lambda r: r["name"])))

    def on_plans_loaded(self, message: PlansLoaded) -> None:
        if message.error:
            self.gateways_table.border_subtitle = f"database: {message.error}"
            return
        self.gateways_table.border_subtitle = ""
        for r in message.rows:
            before = self.rows.get(r["name"])
            self.rows[r["name"]] = r
            # A newly saved version replaces the working copy only if nobody is editing it.
            if r["name"] not in self.working or (before is not None and before["channels"] == self.working[r["name"]]):
                self.working[r["name"]] = [dict(c) for c in r["channels"]]
        self._show_gateways()
        if self.gateway is None and self.rows:
            self.gateway = next(iter(sorted(self.rows)))
        self._show_channels()

    # --- tables ----------------------------------------------------------------------------------

    def _show_gateways(self) -> None:
        table = self.gateways_table
        for name in sorted(self.rows):
            r = self.rows[name]
            applied = "file" if r["applied"] is None else f"v{r['applied']}"
            pending = "-" if r["pending"] is None else f"v{r['pending']}"
            edited = self.working.get(name) != r["channels"]
            state = f"refused: {r['plan_error']}" if r["plan_error"] else \
                ("edited" if edited else "in step" if r["applied"] == r["pending"] else "pending")
            cells = (name, applied, pending, state if r["online"] else f"offline; {state}")
            if name in table.rows:
                for column, value in zip(table.columns, cells, strict=True):
                    table.update_cell(name, column, value)
            else:
                table.add_row(*cells, key=name)

    def _show_channels(self) -> None:
        """The selected gateway's working plan in the channels table. The plans are read again every
        REFRESH_S: a table that has not changed is left alone, and one that has keeps its cursor on the
        channel it was on, so that the technician's enter opens the channel they chose."""
        table = self.channels_table
        table.border_title = plain(f"channels of {self.gateway}" if self.gateway else "channels")
        rows: list[tuple[str, ...]] = []
        for c in self.working.get(self.gateway or "", []):
            drivers = ", ".join(d.get("device") or d.get("port") or d.get("url") or "?" for d in c.get("drivers", []))
            tx = "off" if c.get("receive_only") else text_of(c.get("tx_mhz"))
            rows.append((c["name"], text_of(c.get("rx_mhz")), tx, c.get("mode") or "", tone_text(c),
                         text_of(c.get("power_w")), drivers))
        shown, self._channel_rows = self._channel_rows, (self.gateway, rows)
        if shown == self._channel_rows:
            return
        at = table.cursor_row if shown[0] == self.gateway else 0  # another gateway's plan starts at the top
        chosen = shown[1][at][0] if shown[0] == self.gateway and at < len(shown[1]) else None
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        names = [row[0] for row in rows]
        if rows:
            table.move_cursor(row=names.index(chosen) if chosen in names else min(at, len(rows) - 1))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.gateways_table and event.row_key.value != self.gateway:
            self.gateway = event.row_key.value
            self._show_channels()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.rules_table and event.row_key.value is not None:
            self._load_rule(int(event.row_key.value))
        elif event.data_table is self.channels_table and self.gateway is not None:
            channel = next(c for c in self.working[self.gateway] if c["name"] == event.row_key.value)
            self.editing = channel["name"]
            self.drivers = copy.deepcopy(channel.get("drivers", []))
            self.audio_at, self.serial_at = first_of_kind(self.drivers, "audio"), first_of_kind(self.drivers, "serial")
            self._show_pickers()
            self._fill(form_values(channel))
            self.rules = copy.deepcopy(channel.get("rules", []))
            self._show_rules()
            self._load_rule(0 if self.rules else None)
            self.inputs["name"].focus()

    def _fill(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            if key in self.inputs:
                self.inputs[key].value = value
            elif key in self.selects:
                self.selects[key].value = value or CHOICES[key][0][1]
            elif key in self.checks:
                self.checks[key].value = bool(value)

    # --- rules -----------------------------------------------------------------------------------

    def _show_rules(self) -> None:
        table = self.rules_table
        table.clear()
        for i, rule in enumerate(self.rules):
            texts = rule_texts(rule)
            table.add_row(str(i + 1), texts["rule_kind"], texts["rule_label"], texts["rule_unit"], texts["rule_when"],
                          texts["rule_match"], key=str(i))
        if self.rule_at is not None and self.rule_at < len(self.rules):
            table.move_cursor(row=self.rule_at)

    def _load_rule(self, at: int | None) -> None:
        """Put rule ``at`` in the rule boxes (None: no rule there, the boxes are off)."""
        self.rule_at = at
        self.rule_loaded = copy.deepcopy(self.rules[at]) if at is not None else {}
        self.rule_errors = {}
        self._fill(rule_texts(self.rule_loaded) if at is not None else dict.fromkeys(RULE_BOXES, ""))
        for key in RULE_BOXES:
            self.boxes[key].disabled = at is None
        self.validate_form()

    def _rule_edited(self) -> None:
        if self.rule_at is None or self.rule_at >= len(self.rules):
            return
        values = self._values()
        rule, self.rule_errors = form_rule({k: values[k] for k in RULE_BOXES}, self.rule_loaded)
        if rule == self.rules[self.rule_at]:
            return
        self.rules[self.rule_at] = rule
        texts = rule_texts(rule)
        row = str(self.rule_at)
        if row in self.rules_table.rows:  # changed in place: the cursor stays where the technician is
            for column, key in zip(list(self.rules_table.columns)[1:], RULE_BOXES, strict=True):
                self.rules_table.update_cell(row, column, texts[key])

    def add_rule(self, rule: dict[str, Any] | None = None, at: int | None = None) -> None:
        at = len(self.rules) if at is None else at
        self.rules.insert(at, rule or {"kind": "alert"})
        self.rule_at = at
        self._show_rules()
        self._load_rule(at)
        self.query_one("#plan-tabs", TabbedContent).active = "plan-tab-rules"

    def remove_rule(self) -> None:
        if self.rule_at is None or self.rule_at >= len(self.rules):
            return
        del self.rules[self.rule_at]
        at = min(self.rule_at, len(self.rules) - 1) if self.rules else None
        self.rule_at = at
        self._show_rules()
        self._load_rule(at)

    def add_emergency_rule(self) -> None:
        values = self._values()
        decoders = [d for d in re.split(r"[\s,]+", values["decoders"]) if d]
        # The audio input in the boxes first, then the channel's others.
        for driver in self._channel(values)["drivers"]:
            decoders += [d for d in driver.get("decoders", []) if driver_kind(driver) == "audio" and d not in decoders]
        rule = emergency_rule(decoders, values["selcall_standard"])
        if rule is None:
            self.notify("An emergency rule needs a dtmf or selcall decoder on the channel's audio.",
                        severity="warning")
            return
        self.add_rule(rule, at=0)  # first: the first rule that matches decides, and an emergency must win

    # --- audio inputs and serial ports ------------------------------------------------------------

    def _show_pickers(self) -> None:
        """Each picker lists the channel's drivers of its kind, showing the one in the boxes."""
        for key, (kind, label) in PICKERS.items():
            at = self.audio_at if kind == "audio" else self.serial_at
            places = of_kind(self.drivers, kind)
            options = [(f"{label} {n + 1}/{len(places)}", str(i)) for n, i in enumerate(places)]
            picker = self.pickers[key]
            picker.set_options(options or [(f"no {label}", "")])
            picker.value = str(at) if at is not None else ""

    def _commit_drivers(self) -> None:
        """What the driver boxes hold goes into the channel's drivers (before other ones are shown)."""
        values = self._values()
        if self.audio_at is not None:
            self.drivers[self.audio_at] = form_audio(values, self.drivers[self.audio_at])
        if self.serial_at is not None:
            self.drivers[self.serial_at] = form_serial(values, self.drivers[self.serial_at])

    def _show_driver(self, kind: str, at: int | None) -> None:
        """Put the channel's driver ``at`` (None: none) in the boxes of its kind."""
        driver = self.drivers[at] if at is not None else {}
        if kind == "audio":
            self.audio_at = at
            self._fill(audio_values(driver))
        else:
            self.serial_at = at
            self._fill(serial_values(driver))
        self._show_pickers()
        self.validate_form()

    def pick_driver(self, kind: str, at: int | None) -> None:
        if at == (self.audio_at if kind == "audio" else self.serial_at):
            return
        self._commit_drivers()
        self._show_driver(kind, at)

    def add_driver(self, kind: str) -> None:
        """A new audio input or serial port, empty in the boxes: the schema says what it still needs."""
        self._commit_drivers()
        self.drivers.append({"type": kind})
        self._show_driver(kind, len(self.drivers) - 1)
        self.inputs["device" if kind == "audio" else "port"].focus()

    def remove_driver(self, kind: str) -> None:
        at = self.audio_at if kind == "audio" else self.serial_at
        if at is None:
            return
        self._commit_drivers()
        del self.drivers[at]
        # The other kind's place moves down if it came after; this kind shows its next one, else the last.
        if self.audio_at is not None and self.audio_at > at:
            self.audio_at -= 1
        if self.serial_at is not None and self.serial_at > at:
            self.serial_at -= 1
        places = of_kind(self.drivers, kind)
        self._show_driver(kind, next((i for i in places if i >= at), places[-1] if places else None))

    def _adopt(self, kind: str) -> None:
        """Something typed into the boxes of a kind the channel has none of: that is its first one."""
        self.drivers.append({"type": kind})
        if kind == "audio":
            self.audio_at = len(self.drivers) - 1
        else:
            self.serial_at = len(self.drivers) - 1
        self._show_pickers()

    # --- the form --------------------------------------------------------------------------------

    def _values(self) -> dict[str, str]:
        values = {key: box.value for key, box in self.inputs.items()}
        for key, select in self.selects.items():
            values[key] = "" if select.value is Select.NULL else str(select.value)
        values.update({key: "1" if check.value else "" for key, check in self.checks.items()})
        return values

    def _others(self) -> list[dict[str, Any]]:
        return [c for c in self.working.get(self.gateway or "", []) if c["name"] != self.editing]

    def _base(self) -> dict[str, Any] | None:
        return next((c for c in self.working.get(self.gateway or "", []) if c["name"] == self.editing), None)

    def _channel(self, values: dict[str, str]) -> dict[str, Any]:
        return form_channel(values, self._base(), self.rules, self.drivers, self.audio_at, self.serial_at)

    def _sync_enabled(self, values: dict[str, str]) -> None:
        """Boxes that mean nothing as the form stands are off (their values are kept for when they count)."""
        decoders = re.split(r"[\s,]+", values["decoders"])
        self.selects["selcall_standard"].disabled = "selcall" not in decoders
        # Three boxes for a decoder most channels do not use: shown only where it listens.
        self.query_one("#plan-dmr", Horizontal).display = "dmr" in decoders
        for kind in ("audio", "serial"):
            remove = self.query_one(f"#plan-{kind}-remove", Button)
            remove.disabled = (self.audio_at if kind == "audio" else self.serial_at) is None
        tx, method = bool(values["tx_on"]), values["ptt_method"]
        for key in TRANSMIT_BOXES:
            self.boxes[key].disabled = not tx
        self.selects["ptt_method"].disabled = not tx
        for key in ("ptt_port", "ptt_line"):
            self.boxes[key].disabled = not tx or method != "serial"
        for key in ("ptt_driver", "ptt_coil"):
            self.boxes[key].disabled = not tx or method != "modbus"
        for key in RECORD_BOXES:
            self.boxes[key].disabled = not values["rec_on"]

    def validate_form(self) -> dict[str, str]:
        """Check the form as it stands; each box shows the error of its key."""
        values = self._values()
        self._sync_enabled(values)
        blank = self.editing is None and not self.rules and not self.drivers and not any(values[k] for k, _ in FIELDS)
        # A blank form is no channel yet: nothing to complain about until something is typed.
        errors = {} if blank else field_errors(self._channel(values), self._others(), self.rule_at, self.audio_at,
                                               self.serial_at)
        if self.rule_at is not None:
            errors.update({box: f"rules[{self.rule_at}].{text}" for box, text in self.rule_errors.items()})
        self.errors = errors
        for key, box in self.boxes.items():
            box.set_class(key in errors, "-invalid")
            box.tooltip = errors.get(key)
        self.rules_table.set_class("rules" in errors, "-invalid")
        for pane, keys in TABS.items():
            tab = self.query_one("#plan-tabs", TabbedContent).get_tab(pane)
            title = "rules" if pane == "plan-tab-rules" else "transmit / record"
            tab.label = f"{title} (!)" if any(k in errors for k in keys) else title
        self.error_label.update(plain_lines(errors.values()))  # what was typed: shown, never markup
        return errors

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.path:
            return
        if event.input in (self.inputs[k] for k in RULE_BOXES if k in self.inputs):
            self._rule_edited()
        elif event.input is self.inputs["device"] and self.audio_at is None and event.value.strip():
            self._adopt("audio")
        elif event.input is self.inputs["port"] and self.serial_at is None and event.value.strip():
            self._adopt("serial")
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        for key, (kind, _label) in PICKERS.items():
            # Only the technician's own pick: showing the pickers again sets them too.
            if event.select is self.pickers[key]:
                if event.select.has_focus and event.value not in ("", Select.NULL):
                    self.pick_driver(kind, int(str(event.value)))
                return
        if event.select is self.selects["rule_kind"]:
            self._rule_edited()
        elif event.select is self.selects["ptt_method"] and event.value == "modbus" \
                and not self.inputs["ptt_driver"].value:
            self.inputs["ptt_driver"].value = self._modbus_driver()
        self.validate_form()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox is self.checks["tx_on"] and event.value and not self.inputs["tx_device"].value:
            self.inputs["tx_device"].value = self.inputs["device"].value  # most radios answer on the card they use
        self.validate_form()

    def _modbus_driver(self) -> str:
        """The name of this channel's Modbus driver, else of the first on the gateway: where a PTT coil is."""
        channels = [{"drivers": self.drivers}, *self.working.get(self.gateway or "", [])]
        for channel in channels:
            for driver in channel.get("drivers", []):
                if driver.get("type") == "modbus":
                    return str(driver.get("name") or "modbus")
        return ""

    def action_new_channel(self) -> None:
        self.editing = None
        self._fill({**dict.fromkeys(self.inputs, ""), **dict.fromkeys(self.selects, ""),
                    **dict.fromkeys(self.checks, "")})
        self.rules = []
        self.drivers, self.audio_at, self.serial_at = [], None, None
        self._show_pickers()
        self._show_rules()
        self._load_rule(None)
        self.inputs["name"].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions: dict[str, Callable[[], object]] = {
            "plan-put": self.put_channel, "plan-remove": self.remove_channel, "plan-save": self.action_save,
            "plan-import": self.import_csv, "plan-export": self.export_csv, "plan-rule-add": self.add_rule,
            "plan-rule-remove": self.remove_rule, "plan-rule-emergency": self.add_emergency_rule,
            "plan-audio-add": lambda: self.add_driver("audio"),
            "plan-audio-remove": lambda: self.remove_driver("audio"),
            "plan-serial-add": lambda: self.add_driver("serial"),
            "plan-serial-remove": lambda: self.remove_driver("serial")}
        action = actions.get(event.button.id or "")
        if action is not None:
            action()

    def put_channel(self) -> None:
        if self.gateway is None:
            self.notify("No gateway is selected.", severity="warning")
            return
        if self.validate_form():
            self.notify("The channel has errors: see the boxes in red.", severity="error", timeout=4)
            return
        self._commit_drivers()
        channel = canonical([self._channel(self._values())])[0]
        plan = self.working[self.gateway]
        at = next((i for i, c in enumerate(plan) if c["name"] == self.editing), None)
        if at is None:
            plan.append(channel)
        else:
            plan[at] = channel
        self.editing = channel["name"]
        self.drivers = copy.deepcopy(channel.get("drivers", []))
        self._show_channels()
        self._show_gateways()

    def remove_channel(self) -> None:
        if self.gateway is None or self.channels_table.row_count == 0:
            return
        table = self.channels_table
        name = self.editing or table.coordinate_to_cell_key(table.cursor_coordinate)[0].value
        self.working[self.gateway] = [c for c in self.working[self.gateway] if c["name"] != name]
        self.action_new_channel()
        self._show_channels()
        self._show_gateways()

    def import_csv(self) -> None:
        if self.gateway is None:
            return
        path = Path(self.path.value.strip()).expanduser()
        try:
            imported = read_chirp(path.read_text(encoding="utf-8"))
        except OSError as exc:
            self.notify(f"Cannot read {self.path.value}: {exc.strerror or exc}", severity="error")
            return
        except UnicodeDecodeError as exc:  # CHIRP reads its CSV as UTF-8 too
            self.notify(f"Cannot read {self.path.value}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                        severity="error")
            return
        except ChirpError as exc:
            self.error_label.update(plain_lines(exc.errors[:8]))
            self.notify(f"Not imported: {len(exc.errors)} error(s).", severity="error")
            return
        notes = list(imported.notes)
        self.working[self.gateway] = merge(self.working[self.gateway], imported.channels, notes)
        self._show_notes(f"imported from {path.name}", notes)
        self.notify(f"{len(imported.channels)} channel(s) imported into {self.gateway}'s plan (not saved yet)"
                    + (f"; {len(notes)} adjustment(s) listed below." if notes else "."))
        self._show_channels()
        self._show_gateways()

    def export_csv(self) -> None:
        if self.gateway is None:
            return
        path = Path(self.path.value.strip()).expanduser()
        try:
            exported = write_chirp(self.working[self.gateway])
            path.write_text(exported.text, encoding="utf-8")
        except (OSError, ValueError) as exc:
            self.notify(f"Cannot write {path}: {exc}", severity="error")
            return
        self._show_notes(f"exported to {path.name}", exported.notes)
        self.notify(f"{self.gateway}'s channels written to {path}.")

    def _show_notes(self, what: str, notes: list[str]) -> None:
        """What an import adjusted or an export could not say, under the form until the next one."""
        shown = notes[:NOTES_SHOWN]
        more = len(notes) - len(shown)
        self.notes_label.update("\n".join([f"{what}: {n}" for n in shown]
                                          + ([f"... and {more} more (pttbridge chirp import lists them all)"]
                                             if more else [])))
        self.notes_label.set_class(bool(notes), "-shown")

    def action_save(self) -> None:
        if self.gateway is None:
            return
        if self.operator is None:
            self.notify("Sign in first: every plan is saved by a named operator.", severity="error")
            return
        try:
            canonical(self.working[self.gateway], f"plan for {self.gateway}")
            send_plan(self.link, self.gateway, self.working[self.gateway], self.operator)
        except ConfigError as exc:
            self.error_label.update(plain_lines(str(exc).split("\n")))
            self.notify("The plan has errors: not sent.", severity="error")
            return
        except NotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error")
            return
        self.notify(f"Plan for {self.gateway} sent to the bridge as {self.operator}.", timeout=3)
        self.load()
