"""The technician's channel plans (``t`` from the dispatch screen): per gateway, the channels it should run.

    gateways   each gateway with the plan version it runs (``plan_version`` in its state, as the bridge
               stored it) beside the newest version saved (pending until the gateway reports it), and the
               reason if it refused a plan
    channels   the selected gateway's working plan; enter loads a channel into the form
    form       name, RX/TX MHz, mode, tone (``100.0`` CTCSS or ``D023`` DCS), audio device, input and
               decoders, serial port and protocol, PTT (vox | serial:PORT); checked as it is typed by the
               configuration's own schema, each box showing the error of its key
    buttons    put (add or change the channel), remove, import / export CHIRP CSV at the path, save

Saving sends ``{"action": "plan", ...}`` to the bridge on ``bridge/cmd``; the bridge validates it again,
stores a new version and sends it to the gateway. The screen reads the database in a worker thread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Static

from bridge.chirp import ChirpError, merge, parse_chirp, to_chirp
from bridge.plans import Plans, canonical
from config.mqtt import topic
from config.schema import ConfigError
from console.data import StoreHandle, describe_error
from console.link import BridgeLink, NotConnected

REFRESH_S = 2.0  # applied and pending versions are read again this often

# The form's boxes: (id, placeholder).
FIELDS = (
    ("name", "name, e.g. patrol-1"),
    ("rx_mhz", "RX MHz, e.g. 146.52"),
    ("tx_mhz", "TX MHz (empty: RX)"),
    ("mode", "mode: FM NFM AM DMR ..."),
    ("tone", "tone: 100.0 (CTCSS) or D023 (DCS)"),
    ("device", "audio device, e.g. pulse"),
    ("input", "audio input (1 = first)"),
    ("decoders", "decoders: dtmf, selcall, afsk1200"),
    ("port", "serial port URL, e.g. /dev/ttyUSB0"),
    ("protocol", "serial protocol: nmea, kenwood, ..."),
    ("ptt", "PTT: vox or serial:PORT"),
)


class PlansLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]], error: str | None = None) -> None:
        super().__init__()
        self.rows = rows  # per gateway: name, applied, pending, online, plan_error, channels
        self.error = error


def send_plan(link: BridgeLink, gateway: str, channels: list[dict[str, Any]], operator: str) -> None:
    """The ``plan`` command to the bridge (QoS 1); refused while the broker is away."""
    if not link.connected:
        raise NotConnected("the broker is offline: nothing was sent")
    body = {"action": "plan", "gateway": gateway, "channels": channels, "operator": operator}
    link.client.publish(topic(link.cfg, "bridge", "cmd"), json.dumps(body, separators=(",", ":")), qos=1)


def form_channel(values: dict[str, str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The channel the form describes, laid over ``base`` (what the form does not show is kept)."""
    channel: dict[str, Any] = {k: v for k, v in (base or {}).items()
                               if k not in ("name", "rx_mhz", "tx_mhz", "mode", "ctcss_hz", "dcs_code")}
    channel["name"] = values["name"].strip()
    for key in ("rx_mhz", "tx_mhz"):
        if values[key].strip():
            channel[key] = _number(values[key])
    if values["mode"].strip():
        channel["mode"] = values["mode"].strip().upper()
    tone = values["tone"].strip()
    if tone[:1].upper() == "D":
        channel["dcs_code"] = tone[1:]
    elif tone:
        channel["ctcss_hz"] = _number(tone)
    drivers = [dict(d) for d in channel.get("drivers", [])]
    audio = next((d for d in drivers if d.get("type") == "audio"), None)
    if values["device"].strip():
        if audio is None:
            audio = {"type": "audio"}
            drivers.append(audio)
        audio["device"] = values["device"].strip()
        audio["input"] = _number(values["input"]) if values["input"].strip() else 1
        audio["decoders"] = [d for d in re.split(r"[\s,]+", values["decoders"]) if d]
    elif audio is not None:
        drivers.remove(audio)
    serial = next((d for d in drivers if d.get("type", "serial") == "serial"), None)
    if values["port"].strip():
        if serial is None:
            serial = {"type": "serial"}
            drivers.append(serial)
        serial["port"], serial["protocol"] = values["port"].strip(), values["protocol"].strip()
    elif serial is not None:
        drivers.remove(serial)
    channel["drivers"] = drivers
    ptt = values["ptt"].strip()
    if ptt:
        method, _, port = ptt.partition(":")
        transmit = dict(channel.get("transmit") or {"device": values["device"].strip() or "default"})
        transmit["ptt"] = {"method": method, "port": port} if port else {"method": method}
        channel["transmit"] = transmit
    else:
        channel.pop("transmit", None)
    return channel


def form_values(channel: dict[str, Any]) -> dict[str, str]:
    drivers = channel.get("drivers", [])
    audio: dict[str, Any] = next((d for d in drivers if d.get("type") == "audio"), {})
    serial: dict[str, Any] = next((d for d in drivers if d.get("type", "serial") == "serial"), {})
    ptt = (channel.get("transmit") or {}).get("ptt") or {}
    tone = f"D{channel['dcs_code']}" if channel.get("dcs_code") else str(channel.get("ctcss_hz") or "")
    return {
        "name": channel.get("name", ""), "rx_mhz": _text(channel.get("rx_mhz")),
        "tx_mhz": _text(channel.get("tx_mhz")), "mode": channel.get("mode") or "", "tone": tone,
        "device": audio.get("device", ""), "input": _text(audio.get("input")),
        "decoders": ", ".join(audio.get("decoders", [])), "port": serial.get("port", ""),
        "protocol": serial.get("protocol", ""),
        "ptt": (ptt.get("method", "") + (f":{ptt['port']}" if ptt.get("port") else "")) if ptt else "",
    }


def _number(text: str) -> float | int | str:
    """A number where the box holds one; otherwise the text, for the schema to say what is wrong."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    return int(value) if value.is_integer() and "." not in text else value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def field_errors(channel: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, str]:
    """Schema errors of ``channel`` (among ``others``) by form box; ``""`` holds what no box owns."""
    try:
        canonical([*others, channel])
    except ConfigError as exc:
        errors: dict[str, str] = {}
        drivers = channel.get("drivers", [])
        for line in str(exc).splitlines():
            m = re.match(r"^[^:]*: (channels\[(\d+)\]\.?(\S*)|[^:]+): (.*)$", line)
            if m is None:
                errors.setdefault("", line)
                continue
            if m.group(2) is None or int(m.group(2)) != len(others):  # e.g. two channels of one name
                errors.setdefault("name" if "unique" in line else "", m.group(4))
                continue
            errors.setdefault(_box(m.group(3), drivers), m.group(4))
        return errors
    return {}


def _box(key: str, drivers: list[dict[str, Any]]) -> str:
    head = key.split(".", 1)[0]
    if head in ("name", "rx_mhz", "tx_mhz", "mode"):
        return head
    if head in ("ctcss_hz", "dcs_code", ""):
        return "tone"
    if head == "transmit":
        return "ptt"
    m = re.match(r"drivers\[(\d+)\]\.?(\w*)", key)
    if m is not None:
        driver = drivers[int(m.group(1))] if int(m.group(1)) < len(drivers) else {}
        sub = m.group(2)
        if driver.get("type") == "audio":
            return sub if sub in ("device", "input", "decoders") else "decoders"
        return sub if sub in ("port", "protocol") else "port"
    return ""


class PlansScreen(Screen[None]):
    DEFAULT_CSS = """
    PlansScreen { layout: vertical; }
    PlansScreen #plans-top { height: 1fr; min-height: 6; }
    PlansScreen #plans-gateways { width: 2fr; }
    PlansScreen #plans-channels { width: 3fr; }
    PlansScreen #plans-form { height: auto; max-height: 60%; }
    PlansScreen #plans-form Horizontal { height: auto; }
    PlansScreen #plans-form Input { width: 1fr; }
    PlansScreen #plans-errors { color: $error; height: auto; }
    PlansScreen #plans-buttons { height: auto; }
    PlansScreen #plans-buttons Button { min-width: 8; margin: 0 1 0 0; }
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
        self.gateways_table: DataTable[str] = DataTable(id="plans-gateways", cursor_type="row")
        self.channels_table: DataTable[str] = DataTable(id="plans-channels", cursor_type="row")
        self.inputs = {key: Input(placeholder=hint, id=f"plan-{key}") for key, hint in FIELDS}
        self.error_label = Static("", id="plans-errors")
        self.path = Input(placeholder="CHIRP CSV file path", id="plan-path")

    def compose(self) -> ComposeResult:
        with Horizontal(id="plans-top"):
            yield self.gateways_table
            yield self.channels_table
        with Vertical(id="plans-form"):
            rows = [FIELDS[0:4], FIELDS[4:8], FIELDS[8:11]]
            for row in rows:
                with Horizontal():
                    for key, _ in row:
                        yield self.inputs[key]
            yield self.error_label
            with Horizontal(id="plans-buttons"):
                yield Button("Put channel", id="plan-put", variant="primary")
                yield Button("Remove", id="plan-remove")
                yield self.path
                yield Button("Import CSV", id="plan-import")
                yield Button("Export CSV", id="plan-export")
                yield Button("Save plan", id="plan-save", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        self.gateways_table.border_title = "gateways"
        self.channels_table.border_title = "channels"
        self.gateways_table.add_columns("gateway", "applied", "pending", "state")
        self.channels_table.add_columns("name", "RX MHz", "TX MHz", "mode", "tone", "drivers")
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
        except Exception as exc:  # the database away: said on the screen, tried again
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
        table = self.channels_table
        table.clear()
        table.border_title = f"channels of {self.gateway}" if self.gateway else "channels"
        for c in self.working.get(self.gateway or "", []):
            tone = f"D{c['dcs_code']}" if c.get("dcs_code") else _text(c.get("ctcss_hz"))
            drivers = ", ".join(d.get("device") or d.get("port") or d.get("url") or "?" for d in c.get("drivers", []))
            table.add_row(c["name"], _text(c.get("rx_mhz")), _text(c.get("tx_mhz")), c.get("mode") or "", tone,
                          drivers, key=c["name"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.gateways_table and event.row_key.value != self.gateway:
            self.gateway = event.row_key.value
            self._show_channels()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.channels_table and self.gateway is not None:
            channel = next(c for c in self.working[self.gateway] if c["name"] == event.row_key.value)
            self.editing = channel["name"]
            for key, value in form_values(channel).items():
                self.inputs[key].value = value
            self.inputs["name"].focus()

    # --- the form --------------------------------------------------------------------------------

    def _values(self) -> dict[str, str]:
        return {key: box.value for key, box in self.inputs.items()}

    def _others(self) -> list[dict[str, Any]]:
        return [c for c in self.working.get(self.gateway or "", []) if c["name"] != self.editing]

    def _base(self) -> dict[str, Any] | None:
        return next((c for c in self.working.get(self.gateway or "", []) if c["name"] == self.editing), None)

    def validate_form(self) -> dict[str, str]:
        """Check the form as it stands; each box shows the error of its key."""
        self.errors = field_errors(form_channel(self._values(), self._base()), self._others())
        for key, box in self.inputs.items():
            box.set_class(key in self.errors, "-invalid")
            box.tooltip = self.errors.get(key)
        self.error_label.update("\n".join(f"{k or 'channel'}: {v}" for k, v in self.errors.items()))
        return self.errors

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is not self.path:
            self.validate_form()

    def action_new_channel(self) -> None:
        self.editing = None
        for box in self.inputs.values():
            box.value = ""
        self.validate_form()
        self.inputs["name"].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"plan-put": self.put_channel, "plan-remove": self.remove_channel, "plan-save": self.action_save,
                   "plan-import": self.import_csv, "plan-export": self.export_csv}
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
        channel = canonical([form_channel(self._values(), self._base())])[0]
        plan = self.working[self.gateway]
        at = next((i for i, c in enumerate(plan) if c["name"] == self.editing), None)
        if at is None:
            plan.append(channel)
        else:
            plan[at] = channel
        self.editing = channel["name"]
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
        try:
            imported = parse_chirp(Path(self.path.value.strip()).expanduser().read_text(encoding="utf-8"))
        except OSError as exc:
            self.notify(f"Cannot read {self.path.value}: {exc.strerror or exc}", severity="error")
            return
        except ChirpError as exc:
            self.error_label.update("\n".join(exc.errors[:8]))
            self.notify(f"Not imported: {len(exc.errors)} error(s).", severity="error")
            return
        self.working[self.gateway] = merge(self.working[self.gateway], imported)
        self.notify(f"{len(imported)} channel(s) imported into {self.gateway}'s plan (not saved yet).")
        self._show_channels()
        self._show_gateways()

    def export_csv(self) -> None:
        if self.gateway is None:
            return
        path = Path(self.path.value.strip()).expanduser()
        try:
            path.write_text(to_chirp(self.working[self.gateway]), encoding="utf-8")
        except (OSError, ValueError) as exc:
            self.notify(f"Cannot write {path}: {exc}", severity="error")
            return
        self.notify(f"{self.gateway}'s channels written to {path}.")

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
            self.error_label.update(str(exc))
            self.notify("The plan has errors: not sent.", severity="error")
            return
        except NotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error")
            return
        self.notify(f"Plan for {self.gateway} sent to the bridge as {self.operator}.", timeout=3)
        self.load()
