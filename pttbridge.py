"""The pttbridge command line. Thin: each program is imported only when asked for, so that a field
gateway never loads the bridge or the console."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before numpy is loaded (it reads this once): the audio decoders' matrix products are small, and
# OpenBLAS's worker threads only spin against each other, the other channels and the other processes
# (measured: DMR took 2.6 times the CPU with them).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

DESCRIPTION = """\
pttbridge: push-to-talk radio gateway and command-center bridge.

Radios signal over serial ports (NMEA, Kenwood FleetSync/NXDN, KISS/APRS, vendor alarm boxes); the
gateway decodes emergencies, unit identities and positions and publishes them over MQTT, losing none;
the bridge stores them and turns alerts into incidents; dispatchers acknowledge them in the console.
"""

EPILOG = """\
examples:
  pttbridge up                                  everything on embedded defaults, with demo radios
  pttbridge gateway -c config/example-gateway.toml
  pttbridge bridge -c center.toml
  pttbridge console -c center.toml --operator alice
  pttbridge decode-serial --protocol nmea capture.nmea
  pttbridge decode-serial --protocol kiss socket://127.0.0.1:8001
"""


def _setup_logging(verbosity: int) -> None:
    from monitoring.log_writer import StderrWriter

    level = max(logging.WARNING - 10 * verbosity, logging.DEBUG)
    if logging.getLogger().handlers:  # configured already (a test running main): as basicConfig, leave it
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by something with no file under it
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:  # written on a thread of its own: a reader that stalls must not stop the program (see the module)
        sys.stderr.flush()
        handler = StderrWriter(fd)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _load(path: str) -> Any:
    from config.schema import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        sys.exit(f"configuration error:\n{exc}")


def cmd_gateway(args: argparse.Namespace) -> None:
    from config.schema import ConfigError
    from gateway.runner import Gateway

    config = _load(args.config)
    try:
        gateway = Gateway(config)
    except ConfigError as exc:
        sys.exit(f"configuration error:\n{args.config}: {exc}")
    try:
        gateway.start()
    except OSError as exc:  # the metrics address in use: said in one line, not a traceback
        sys.exit(f"{args.config}: gateway.{exc.strerror}" if str(exc.strerror).startswith("metrics") else str(exc))
    logging.getLogger("pttbridge").warning(
        "gateway %s running: %d drivers, outbox %s, broker %s",
        gateway.gw.name,
        len(gateway.drivers),
        gateway.outbox.path,
        config.mqtt.url,
    )
    _wait_for_signal()
    gateway.stop()


def cmd_bridge(args: argparse.Namespace) -> None:
    from bridge.service import run

    try:
        run(_load(args.config))
    except OSError as exc:  # the metrics address in use: said in one line, not a traceback
        sys.exit(f"{args.config}: bridge.{exc.strerror}" if str(exc.strerror).startswith("metrics") else str(exc))


def cmd_console(args: argparse.Namespace) -> None:
    from console.app import run

    run(_load(args.config), args.operator)


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


class _EventPrinter:
    """What the decode commands print: each event as a JSON line on stdout, each rejection on stderr."""

    def __init__(self) -> None:
        self.events = self.rejected = 0

    def __call__(self, outputs: list[Any], channel: str) -> None:
        from drivers.base import Rejected
        from gateway.events import Event, encode_event

        for item in outputs:
            if isinstance(item, Rejected):
                self.rejected += 1
                print(f"rejected: {item}", file=sys.stderr)
                continue
            self.events += 1
            event = Event.stamp(item, seq=self.events, gateway="decode", channel=channel)
            sys.stdout.write(encode_event(event).decode() + "\n")
        sys.stdout.flush()

    def summary(self) -> None:
        print(f"{self.events} events, {self.rejected} rejected", file=sys.stderr)


def cmd_decode_serial(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    import serial

    from drivers.registry import UnknownProtocol, create_protocol

    try:
        decoder = create_protocol(args.protocol, _parse_options(args.option))
    except (UnknownProtocol, ValueError) as exc:
        sys.exit(f"--protocol {args.protocol}: {exc}")
    printer = _EventPrinter()

    source = args.source
    try:
        if source == "-" or (Path(source).is_file() and not source.startswith("/dev/")):
            stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
            with stream:
                while chunk := stream.read(65536):
                    printer(decoder.feed(chunk, datetime.now(UTC)), args.protocol)
        else:
            port = serial.serial_for_url(source, baudrate=args.baud, timeout=0.2)
            print(f"reading {source} at {args.baud} baud; Ctrl+C to stop", file=sys.stderr)
            while True:
                chunk = port.read(max(1, port.in_waiting))
                now = datetime.now(UTC)
                printer((decoder.feed(chunk, now) if chunk else []) + decoder.tick(now), args.protocol)
    except KeyboardInterrupt:
        pass
    except (OSError, serial.SerialException) as exc:
        sys.exit(f"{source}: {exc}")
    printer(decoder.flush(), args.protocol)  # what is pending carries the time of its last input
    printer.summary()


def _event_line(payload: bytes) -> str:
    """One event as a dispatcher would read it in a log: time, kind, unit, where, what."""
    from gateway.events import decode_event

    e = decode_event(payload)
    where = f" at {e.position.lat:.5f},{e.position.lon:.5f}" if e.position else ""
    d = e.detail
    keys = ("rule", "meaning", "mic_e_message", "text", "transmission", "name")
    what = next((str(d[k]) for k in keys if d.get(k)), "")
    if e.kind == "call" and isinstance(d.get("duration_s"), int | float):
        what = f"{d['duration_s']:.1f} s transmission"
    elif d.get("command"):  # what the gateway transmitted on a bridge's request, and how it went
        what = f"{d['command']}: {d.get('result')}"
    what = f"{d.get('protocol', '')} {what.replace('_', ' ')}".strip()
    mark = "!!" if e.kind == "alert" else "  "
    return f"{mark} {e.time:%H:%M:%S} {e.kind.upper():7} {e.gateway}/{e.channel:10} {e.unit or '-':22}{where}  {what}"


_PRINTING = threading.Lock()


def _say(line: str) -> None:
    """One whole line on stdout: threads that print (events, the demo's case) never split another's line."""
    with _PRINTING:
        print(line, flush=True)


def _print_event(topic: str, payload: bytes) -> None:
    from gateway.events import EventError

    try:
        _say(_event_line(payload))
    except EventError as exc:
        logging.getLogger("pttbridge").warning("not an event on %s: %s [%s]", topic, exc, payload[:64].hex(" "))


# A recording is read in blocks of this many frames (3 s at 22050 Hz): nobody waits for its events, and
# the decoders and the resampler cost a fixed time per call on top of the work per sample (on the busy
# bench channel, each decoder alone, 65536 frames against 16384 took 0.2-0.9 s less CPU of 1-3 s; beyond
# that it gained nothing).
DECODE_BLOCK_FRAMES = 65536


def cmd_decode(args: argparse.Namespace) -> None:
    """Audio recordings through the audio decoders: one event per line, timed by the offset in the file."""
    import re

    from drivers.audio.source import FILE_EPOCH, AudioSourceError, Resampler, WavSource, open_source
    from drivers.registry import UnknownProtocol, audio_decoder_class, audio_decoder_names, create_audio_decoder

    names = [n.strip() for n in args.decoders.split(",") if n.strip()] or audio_decoder_names()
    options: dict[str, dict[str, Any]] = {}
    for key, value in _parse_options(args.option).items():
        decoder, sep, option = key.partition(".")
        if not sep:
            sys.exit(f"--option expects DECODER.KEY=VALUE, got {key!r}")
        options.setdefault(decoder, {})[option] = value
    try:  # a wrong name is the user's first mistake to hear of, before any file is opened
        for n in names:
            audio_decoder_class(n)
    except UnknownProtocol as exc:
        sys.exit(f"--decoders: {exc}")
    printer = _EventPrinter()
    for path in args.files:
        try:
            source = open_source(path, rate=args.rate, blocksize=DECODE_BLOCK_FRAMES)
            decoders = [create_audio_decoder(n, audio_decoder_class(n).rate_for(source.rate), options.get(n))
                        for n in names]
        except (UnknownProtocol, ValueError) as exc:
            sys.exit(f"--decoders: {exc}")
        except AudioSourceError as exc:
            sys.exit(str(exc))
        channel = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(path).stem)[:64] or "stdin"
        resamplers = {d.rate: Resampler(source.rate, d.rate) for d in decoders}
        total = source.duration_s if isinstance(source, WavSource) else None
        with source, _progress(Path(path).name, total) as advance:
            for block, start in _blocks_then_end(source):
                out: list[Any] = []
                if block is None:
                    out = [o for d in decoders for o in d.flush(start)]
                else:
                    mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
                    at_rate = {rate: r.feed(mono) for rate, r in resamplers.items()}
                    out = [o for d in decoders for o in d.feed(at_rate[d.rate], start)]
                    advance((start - FILE_EPOCH).total_seconds())
                printer(sorted(out, key=lambda o: getattr(o, "time", FILE_EPOCH)), channel)
    printer.summary()


@contextlib.contextmanager
def _progress(name: str, total_s: float | None) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr for a recording of ``total_s`` seconds, if it is long enough to wait for,
    advanced to the seconds decoded. None where stderr is no terminal: rich draws only an empty line
    there, and its import and refresh thread would still cost CPU (0.05 s, and 0.05 s per 8 s decoded)."""
    if total_s is None or total_s < 30 or not sys.stderr.isatty():
        yield lambda done_s: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=_stderr_console(), transient=True) as progress:
        task = progress.add_task(name, total=total_s)
        yield lambda done_s: progress.update(task, completed=done_s)


def _blocks_then_end(source: Any) -> Any:
    """The source's blocks, then (None, time just after the last sample) to flush the decoders."""
    from datetime import timedelta

    end = None
    for block, start in source.blocks():
        end = start + timedelta(seconds=len(block) / source.rate)
        yield block, start
    if end is not None:
        yield None, end


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def cmd_cameras(args: argparse.Namespace) -> None:
    """The camera registry in the bridge's database: list, import/export CSV, remove."""
    from bridge.cameras.registry import CameraRegistry, RegistryError
    from bridge.store import Store, database_url

    if args.action in ("import", "remove") and not args.file:
        sys.exit(f"cameras {args.action}: name the {'CSV file' if args.action == 'import' else 'camera id'}")
    config = _load(args.config)
    store = Store.open(database_url(config))
    registry = CameraRegistry(store.engine)
    try:
        if config.cameras:  # the configured part first, as the bridge does at start
            registry.sync_config(config.cameras)
        if args.action == "list":
            rows = registry.all()
            for c, origin in rows:
                looks = "all round" if c.heading_deg is None or c.fov_deg >= 360 else \
                    f"{c.heading_deg:g} deg +-{c.fov_deg / 2:g}"
                moves = f" with {c.unit}" if c.unit else ""
                print(f"{c.id:24} {c.kind:8} {c.lat:.6f},{c.lon:.6f}{moves}  {looks}, {c.range_m:g} m  "
                      f"[{origin}] {c.name}")
            print(f"{len(rows)} cameras", file=sys.stderr)
        elif args.action == "import":
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8-sig")
            print(f"imported {registry.import_csv(text, args.file)} cameras", file=sys.stderr)
        elif args.action == "export":
            text = registry.export_csv()
            if args.file in (None, "-"):
                sys.stdout.write(text)
            else:
                Path(args.file).write_text(text)
        elif args.action == "remove" and not registry.remove(args.file or ""):
            sys.exit(f"no camera {args.file!r}")
    except (RegistryError, OSError) as exc:
        sys.exit(str(exc))
    finally:
        store.close()


def cmd_audit(args: argparse.Namespace) -> None:
    """What operators asked the bridge to do, and whether it was done."""
    from bridge.audit import as_json, entries, parse_since
    from bridge.store import Store, database_url

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        sys.exit(f"--since: {exc}")
    store = Store.open(database_url(_load(args.config)))
    try:
        found = entries(store.engine, since=since, operator=args.operator, limit=args.limit)
    finally:
        store.close()
    for entry in found:
        print(json.dumps(as_json(entry)) if args.json else entry.line())
    print(f"{len(found)} records", file=sys.stderr)


def _database_source(config: Any, path: str) -> str:
    """Where the database URL came from, for an error that names it."""
    if os.environ.get("PTTBRIDGE_DATABASE_URL"):
        return "PTTBRIDGE_DATABASE_URL"
    if config.bridge.database_url:
        return f"{path}: bridge.database_url"
    return f"{path}: data_dir (the bridge's SQLite file is {{data_dir}}/bridge.sqlite)"


def cmd_report(args: argparse.Namespace) -> None:
    """The supervisor's report of cases: counts, times to each step, shares within limits, overdue, verdicts."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a report is no place for migration chatter
    from datetime import UTC, datetime

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bridge.report import as_csv, as_json, tables, window_start
    from bridge.store import Store, database_url, redact

    now = datetime.now(UTC)
    try:
        since = window_start(args.since, now)
    except ValueError as exc:
        sys.exit(f"--since: {exc}")
    path = args.config or str(Path(__file__).parent / "config" / "default.toml")
    config = _load(path)
    url = database_url(config)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not Path(parsed.database).exists():
        # Nothing stored yet: an empty report, without leaving an empty database behind.
        print(f"no cases yet: {parsed.database} does not exist ({_database_source(config, path)}); "
              "`pttbridge up` or `pttbridge bridge` creates it", file=sys.stderr)
        url = "sqlite://"
    try:
        store = Store.open(url)
        try:
            report = store.case_report(since, args.by, now)
        finally:
            store.close()
    except (SQLAlchemyError, OSError) as exc:  # OSError: a file this user may not open or make private
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        sys.exit(f"database {redact(url)} ({_database_source(config, path)}): {reason}")
    if args.json:
        print(json.dumps(as_json(report), indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(as_csv(report))
    else:
        from rich.console import Console

        out = Console(width=None if sys.stdout.isatty() else 160)
        for table in tables(report):
            out.print(table)
            out.print()


def _names(values: list[str]) -> list[str]:
    """Repeatable, comma-separated option values: --gateway a,b --gateway c -> [a, b, c]."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def cmd_broker_acl(args: argparse.Namespace) -> None:
    from security.acl import Site
    from security.identities import SecurityError

    try:
        site = Site(bridges=_names(args.bridge), gateways=_names(args.gateway), consoles=_names(args.console),
                    cameras=_names(args.camera), frigates=_names(args.frigate), monitors=_names(args.monitor),
                    listen=_names(args.listen), talk=_names(args.talk), patching=_names(args.patch), prefix=args.prefix,
                    frigate_topic=args.frigate_topic)
    except SecurityError as exc:
        sys.exit(str(exc))
    command = ["pttbridge broker-acl"]  # in the file's header: how to make it again with one more gateway
    for option in ("bridge", "gateway", "patch", "console", "listen", "talk", "camera", "frigate", "monitor"):
        if names := _names(getattr(args, option)):
            command.append(f"--{option} {','.join(names)}")
    if args.prefix != "pttbridge/v1":
        command.append(f"--prefix {args.prefix}")
    if args.frigate_topic != "frigate/events":
        command.append(f"--frigate-topic {args.frigate_topic}")
    text = site.acl(" ".join(command))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"{args.output}: {len(site.identities())} identities", file=sys.stderr)


def cmd_certs(args: argparse.Namespace) -> None:
    from security.identities import SecurityError, role_of
    from security.pki import issue, make_broker_cert, make_ca, revoke

    directory = Path(args.dir)
    try:
        if args.action == "ca":
            print(make_ca(directory, days=args.days or 3650))
        elif args.action == "broker":
            crt, key = make_broker_cert(directory, _names(args.names), days=args.days or 825)
            print(f"{crt}\n{key}")
        else:
            if not args.names:
                sys.exit(f"certs {args.action}: name the identities (gw-xixing-1, console-desk-1, cam-dome-3, ...)")
            for ident in _names(args.names):
                role_of(ident)  # every name is checked before any certificate is made
            for ident in _names(args.names):
                if args.action == "revoke":
                    print(revoke(directory, ident))
                else:
                    crt, key = issue(directory, ident, days=args.days or 825)
                    print(f"{crt}\n{key}")
    except SecurityError as exc:
        sys.exit(str(exc))


def cmd_audio_devices(args: argparse.Namespace) -> None:
    from drivers.audio.source import AudioSourceError, list_devices

    try:
        devices = list_devices()
    except AudioSourceError as exc:
        sys.exit(str(exc))
    if not devices:
        print("no audio devices found")
    for d in devices:
        mark = "*" if d["default_input"] else " "
        print(f"{mark}{d['index']:>3}  {d['name']:<40} in {d['inputs']:>2}  out {d['outputs']:>2}"
              f"  {d['default_rate']:.0f} Hz  ({d['hostapi']})")


def cmd_chirp(args: argparse.Namespace) -> None:
    """CHIRP CSV in and out: a channel list as configuration tables, or the channels as CHIRP CSV."""
    from bridge.chirp import ChirpError, read_chirp, write_chirp

    if args.action == "import":
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            sys.exit(f"{args.file}: cannot read: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:  # CHIRP reads its CSV as UTF-8 too
            sys.exit(f"{args.file}: not UTF-8 text: {exc}")
        try:
            imported = read_chirp(text)
        except ChirpError as exc:
            sys.exit("\n".join(f"{args.file}: {e}" for e in exc.errors))
        for note in imported.notes:
            print(f"{args.file}: {note}", file=sys.stderr)
        print(_toml_channels(imported.channels), end="")
        print(f"{len(imported.channels)} channels, {len(imported.notes)} adjustments noted", file=sys.stderr)
        return
    if not args.config:
        sys.exit("chirp export: name the configuration (-c FILE)")
    config = _load(args.config)
    channels: list[Any] = list(config.channels)
    if args.gateway:
        from bridge.plans import Plans
        from bridge.store import Store, database_url

        plan = Plans(Store.open(database_url(config)).engine).current(args.gateway)
        if plan is None:
            sys.exit(f"no plan for gateway {args.gateway!r} in the bridge's database")
        channels = plan.channels
    exported = write_chirp(channels)
    for note in exported.notes:
        print(note, file=sys.stderr)
    if args.file and args.file != "-":
        try:
            Path(args.file).write_text(exported.text, encoding="utf-8")
        except OSError as exc:
            sys.exit(f"{args.file}: cannot write: {exc.strerror or exc}")
    else:
        sys.stdout.write(exported.text)


def _toml_channels(channels: list[dict[str, Any]]) -> str:
    """Channels as ``[[channels]]`` tables of a configuration file (their values are strings, numbers, booleans)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped too.
        return json.dumps(str(v), ensure_ascii=False).replace("\x7f", "\\u007f")

    return "".join("[[channels]]\n" + "".join(f"{k} = {value(v)}\n" for k, v in c.items()) + "\n" for c in channels)


def cmd_up(args: argparse.Namespace) -> None:
    from config.mqtt import make_client, topic
    from launcher.up import Up

    config = _load(args.config or str(Path(__file__).parent / "config" / "default.toml"))
    url = args.broker or os.environ.get("PTTBRIDGE_MQTT_URL")
    if url is None and "url" in config.mqtt.model_fields_set:
        url = config.mqtt.url
    if args.verbose < 2:  # what each event does is on screen; the per-event log lines would repeat it
        logging.getLogger("gateway.runner").setLevel(logging.WARNING)
    operator = args.operator or config.console.operator or os.environ.get("USER") or "dispatcher"
    site = Up(config, url, speed=args.speed, headless=args.headless, operator=operator, say=_say)
    watcher = None
    try:
        site.start()
        config = site.config
        if args.headless:
            print(site.summary() + " Ctrl+C stops.", flush=True)
            watcher = make_client(config.mqtt, f"pttbridge-up-{os.getpid()}")
            watcher.on_connect = lambda c, *_: c.subscribe(topic(config.mqtt, "gw", "+", "event", "#"), qos=1)
            watcher.on_message = lambda _c, _u, m: _print_event(m.topic, bytes(m.payload))
            watcher.connect(config.mqtt.host, config.mqtt.port)
            watcher.loop_start()
            if args.duration:
                threading.Timer(args.duration, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            _wait_for_signal()
        else:
            from console.app import run as run_console

            logging.getLogger("pttbridge").warning(site.summary())
            run_console(config, operator, duration_s=args.duration)
    finally:
        print("stopping ...", flush=True)
        if watcher is not None:
            watcher.loop_stop()
            watcher.disconnect()
        site.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pttbridge",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more log detail (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_const", const=0, dest="verbose", help="warnings only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run everything on embedded defaults, with demo radios",
        description="Start an in-process MQTT broker (unless a broker URL is given or configured), a bridge on "
        "SQLite in the data folder, a gateway whose demo radios replay bundled serial captures (FleetSync and "
        "GPS positions, key-ups, APRS, emergencies) through pseudo-terminals and the real serial drivers, and the "
        "dispatcher console in this terminal. A patrol car's camera finds a street stall (its snapshot served by a "
        "small HTTP server on a loopback port): send the suggested officer and the case is spoken to his radio "
        "(into a WAV file in the data folder, named at start), which answers accepted, arrived, handled. Ctrl+C "
        "(or q) stops everything.",
    )
    up.add_argument("-c", "--config", help="configuration file (default: the bundled config/default.toml)")
    up.add_argument("--broker", metavar="URL", help="use this broker (mqtt://host:port) instead of an embedded one")
    up.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until Ctrl+C)")
    up.add_argument("--speed", type=float, default=1.0, metavar="X",
                    help="run the demo X times faster: its serial captures, the camera, the officer's answers (the "
                    "audio recordings keep their pace; tests use 4)")
    up.add_argument("--operator", help="the dispatcher's name on actions (default: [console] operator, or $USER)")
    up.add_argument("--headless", action="store_true",
                    help="no console: print each event as it reaches the broker, and play the dispatcher's part in "
                    "the demo's case (send the suggested unit, verify the case once handled), one line a step")
    up.set_defaults(func=cmd_up)

    gw = sub.add_parser(
        "gateway",
        help="run a field gateway: serial drivers -> durable outbox -> MQTT",
        description="Run the drivers of every configured channel, write each decoded event to the SQLite outbox "
        "and publish it (QoS 1) to the broker, replaying whatever the broker has not acknowledged.",
    )
    gw.add_argument("-c", "--config", required=True, help="TOML configuration with [gateway], [mqtt], [[channels]]")
    gw.set_defaults(func=cmd_gateway)

    br = sub.add_parser(
        "bridge",
        help="run the command-center bridge: MQTT -> database, incidents, replay of lost events",
        description="Store every gateway event exactly once (acknowledging it to the broker only after the "
        "commit), keep each unit's last position, open incidents from alerts, re-announce unacknowledged ones, "
        "and ask gateways to replay what the broker dropped. SQLite by default, PostgreSQL by URL.",
    )
    br.add_argument("-c", "--config", required=True, help="TOML configuration with [bridge] and [mqtt]")
    br.set_defaults(func=cmd_bridge)

    co = sub.add_parser(
        "console",
        help="the dispatcher console (Textual) in this terminal",
        description="Open incidents newest first, units on the map table, incident detail; a acknowledges, "
        "r resolves, n adds a note. Actions go to the bridge, so every console shows the same state.",
    )
    co.add_argument("-c", "--config", required=True, help="TOML configuration with [mqtt], [bridge], [console]")
    co.add_argument("--operator", help="the dispatcher's name on every action (else [console] operator, else asked)")
    co.set_defaults(func=cmd_console)

    de = sub.add_parser(
        "decode",
        help="decode audio recordings (DTMF, 5-tone, AFSK1200 APRS), print events as JSON lines",
        description="Run audio decoders over recordings (WAV of any rate, 8/16/24/32-bit or float, mono or stereo; "
        "'-' reads raw PCM from stdin with --rate) and print one event per line (schema v1); an event's time is "
        "its offset in the recording after 1970-01-01T00:00:00Z, also given as detail.offset_s. A progress bar "
        "shows on stderr for recordings longer than 30 s.",
    )
    de.add_argument("--decoders", "-d", default="", help="comma-separated, e.g. dtmf,mdc1200 (default: all)")
    de.add_argument("--option", "-o", action="append", default=[], metavar="DECODER.KEY=VALUE",
                    help="decoder option, e.g. selcall.standard=CCIR (repeatable)")
    de.add_argument("--rate", type=int, help="sample rate of raw PCM on stdin")
    de.add_argument("files", nargs="+", metavar="FILE", help="recordings, or '-' for raw s16le PCM on stdin")
    de.set_defaults(func=cmd_decode)

    ca = sub.add_parser(
        "cameras",
        help="the camera registry: list, import or export CSV, remove",
        description="Manage the bridge's camera registry (in its database). Cameras in the configuration's "
        "[[cameras]] are applied first, as the bridge does at start; CSV adds to them (columns: id, name, lat, "
        "lon, heading_deg, fov_deg, range_m, kind, unit, stream_url, snapshot_url, credentials_env, presets). A bad "
        "row is refused with its line and column, and nothing of that file is imported.",
        epilog="examples:\n  pttbridge cameras -c center.toml import district.csv\n"
        "  pttbridge cameras -c center.toml export > cameras.csv\n  pttbridge cameras -c center.toml remove dome-3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ca.add_argument("-c", "--config", required=True, help="TOML configuration with [bridge] (its database)")
    ca.add_argument("action", choices=("list", "import", "export", "remove"))
    ca.add_argument("file", nargs="?", help="import: CSV file or '-'; export: file (default stdout); remove: camera id")
    ca.set_defaults(func=cmd_cameras)

    au = sub.add_parser(
        "audit",
        help="what operators asked the bridge to do (ack, resolve, note, assign, alias, plan), done or refused",
        description=textwrap.fill(
            "Print the bridge's audit log, oldest first: every command a console sent the bridge, with "
        "its time (UTC), operator, action, target, outcome (done, or refused and why) and its other fields.", 100),
        epilog="examples:\n  pttbridge audit -c center.toml --since 8h\n"
        "  pttbridge audit -c center.toml --operator alice --since 2026-11-27T06:00\n"
        "  pttbridge audit -c center.toml --json | jq 'select(.outcome == \"refused\")'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    au.add_argument("-c", "--config", required=True, help="TOML configuration with [bridge] (its database)")
    au.add_argument("--since", metavar="WHEN", help="a time ago (30m, 8h, 7d) or an ISO time (UTC unless it says)")
    au.add_argument("--operator", metavar="NAME", help="only this operator's commands")
    au.add_argument("--limit", type=int, metavar="N", help="only the newest N records")
    au.add_argument("--json", action="store_true", help="one JSON object per line")
    au.set_defaults(func=cmd_audit)

    rp = sub.add_parser(
        "report",
        help="the supervisor's report of cases: counts, times to accept/arrive/handle, limits kept, verdicts",
        description=textwrap.fill(
            "Print how the site's cases went since a time: per group (kind, department, unit, camera or day) "
        "the department parts opened, accepted, arrived at and handled; the median and 90th percentile time "
        "from a part's opening to each of those steps; the share of parts that made each step within the "
        "kind's limit (case_kinds.<kind>.accept_s, arrive_s, resolve_s); the parts running past a limit now "
        "(overdue, whenever opened); and the valid-case rate of camera detections (verdict valid or false "
        "detection) per category and per camera. Reads the bridge's database: the default configuration's "
        "SQLite file (that of `pttbridge up`) unless -c names another configuration, or "
        "PTTBRIDGE_DATABASE_URL another database.", 100),
        epilog="examples:\n  pttbridge report                             the last 7 days by kind\n"
        "  pttbridge report --since 30d --by department\n"
        "  pttbridge report -c center.toml --since 2026-12-01 --by day --csv > december.csv\n"
        "  pttbridge report --by camera --json | jq '.verified.cameras'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("-c", "--config", help="TOML configuration with [bridge] (its database; default: the bundled "
                    "config/default.toml, as pttbridge up uses)")
    rp.add_argument("--since", default="7d", metavar="WHEN",
                    help="a time ago (12h, 7d, 30d) or an ISO time (UTC unless it says); default 7d")
    rp.add_argument("--by", default="kind", choices=("kind", "department", "unit", "camera", "day"),
                    help="one row per kind (default), department, unit sent, camera that found the case, or UTC day")
    form = rp.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    form.add_argument("--csv", action="store_true", help="one CSV row per group and a last row for all")
    rp.set_defaults(func=cmd_report)

    acl = sub.add_parser(
        "broker-acl",
        help="write the Mosquitto ACL file of a site from its lists of gateways, consoles, cameras, bridges",
        description=textwrap.fill(
            "Write a Mosquitto acl_file with one block per identity ({role}-{name}: gw-, console-, cam-, "
        "frigate-, bridge-, monitor-). A gateway may publish only its own events, audio, state and levels and "
        "read only its own commands and plan; a console only sends bridge/cmd and reads incidents, units and "
        "gateway state; a camera only publishes its own cam/{camera}/event; a bridge reads what they send and "
        "publishes incidents, units, gateway commands and plans; a monitor reads everything. Consoles named in "
        "--listen may hear channels live; in --talk, also talk on them, remote-monitor units and patch channels "
        "(without it, a console keys no radio). No pattern lines "
        "(they would apply to every identity); an identity not listed may do nothing. Reload mosquitto (SIGHUP) "
        "after writing it.", 100),
        epilog="example:\n  pttbridge broker-acl --bridge center --gateway xixing-1,xixing-2 \\\n"
        "      --console desk-1,desk-2 --listen desk-1,desk-2 --talk desk-1 --camera dome-3 --monitor ops \\\n"
        "      -o /etc/mosquitto/pttbridge.acl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option, role in (("--bridge", "bridges"), ("--gateway", "gateways ([gateway] name)"),
                         ("--patch", "gateways (of --gateway) whose [[patches]] join other gateways' channels"),
                         ("--console", "console desks"),
                         ("--listen", "consoles (of --console) that may hear channels live"),
                         ("--talk", "consoles (of --console) that may talk on channels, and hear them"),
                         ("--camera", "cameras (registry ids)"),
                         ("--frigate", "Frigate NVRs"), ("--monitor", "read-only monitors")):
        acl.add_argument(option, action="append", default=[], metavar="NAME[,NAME...]",
                         help=f"{role}, without the role prefix (repeatable)")
    acl.add_argument("--prefix", default="pttbridge/v1", help="[mqtt] prefix (default pttbridge/v1)")
    acl.add_argument("--frigate-topic", default="frigate/events", help="[bridge.cameras] frigate_topic")
    acl.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: stdout)")
    acl.set_defaults(func=cmd_broker_acl)

    ce = sub.add_parser(
        "certs",
        help="a site's PKI with openssl: the CA, the broker's certificate, client certificates per identity",
        description=textwrap.fill(
            "Make the certificates of config/mosquitto-secure.conf with openssl, in DIR: 'ca' makes the "
        "site's certificate authority (ca.crt, ca.key: keep ca.key offline); 'broker' the broker's server "
        "certificate for the host names and addresses clients dial (broker.crt, broker.key); 'issue' a client "
        "certificate per identity whose Common Name is the identity ({role}-{name}, e.g. gw-xixing-1), as "
        "IDENTITY.crt and IDENTITY.key (EC P-256; keys readable by their owner only); 'revoke' adds an "
        "identity's certificate to the revocation list crl.pem (restart mosquitto to read it).", 100),
        epilog="examples:\n  pttbridge certs ca pki\n  pttbridge certs broker pki broker.example.org 10.20.0.5\n"
        "  pttbridge certs issue pki gw-xixing-1 bridge-center console-desk-1 cam-dome-3\n"
        "  pttbridge certs revoke pki gw-xixing-2          a stolen gateway\n"
        "then a gateway's [mqtt]: url = \"mqtts://broker.example.org:8883\",\n"
        "  tls = { ca = \"pki/ca.crt\", cert = \"pki/gw-xixing-1.crt\", key = \"pki/gw-xixing-1.key\" }",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ce.add_argument("action", choices=("ca", "broker", "issue", "revoke"))
    ce.add_argument("dir", help="the PKI folder (holds ca.crt and ca.key)")
    ce.add_argument("names", nargs="*", metavar="NAME",
                    help="broker: its host names and IP addresses; issue, revoke: identities")
    ce.add_argument("--days", type=int, help="validity (default: CA 3650, certificates 825)")
    ce.set_defaults(func=cmd_certs)

    ch = sub.add_parser(
        "chirp",
        help="CHIRP CSV: import a radio's channel list as [[channels]] tables, export channels for CHIRP",
        description=textwrap.fill(
            "'import FILE' reads a CHIRP CSV (what CHIRP itself loads: its stock configurations, a radio's "
        "export) and prints its channels as [[channels]] tables for a configuration file, with every "
        "adjustment made on the way on stderr, row by row (names made plan names, a location given twice, "
        "a power CHIRP would not read ...). 'export' writes the channels of the configuration file, or of "
        "the bridge's current plan for --gateway, as a CHIRP CSV that CHIRP's current release loads (every "
        "row with a power, 50W where none is given).", 100),
        epilog="examples:\n  pttbridge chirp import 'US Marine VHF Channels.csv' >> site.toml\n"
        "  pttbridge chirp export -c site.toml radios.csv\n"
        "  pttbridge chirp export -c center.toml --gateway xixing-1 > xixing-1.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ch.add_argument("action", choices=("import", "export"))
    ch.add_argument("file", nargs="?", default="-", help="import: CSV file or '-'; export: file (default stdout)")
    ch.add_argument("-c", "--config", help="export: TOML configuration ([[channels]], or [bridge] for --gateway)")
    ch.add_argument("--gateway", metavar="NAME", help="export: the bridge's current plan for this gateway")
    ch.set_defaults(func=cmd_chirp)

    ad = sub.add_parser("audio-devices", help="list the sound devices the gateway can capture from",
                        description="List audio devices (PortAudio via sounddevice) with their index, name and "
                        "channels, as [[channels.drivers]] device = ... takes them.")
    ad.set_defaults(func=cmd_audio_devices)

    ds = sub.add_parser(
        "decode-serial",
        help="decode a serial capture or live port, print events as JSON lines",
        description="Feed a capture file (or '-' for stdin) or a live port (any pyserial URL: /dev/ttyUSB0, "
        "socket://host:port, rfc2217://...) through one protocol decoder and print one event per line (schema "
        "v1 JSON). Rejected input goes to stderr in hex. For checking a cable or a radio's programming.",
    )
    ds.add_argument("--protocol", "-p", required=True, help="nmea | kenwood | kiss | framespec | a plugin's name")
    ds.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                    help="decoder option; VALUE is JSON if it parses as JSON (repeatable)")
    ds.add_argument("--baud", type=int, default=9600, help="baud rate of a live port (default 9600)")
    ds.add_argument("source", help="capture file, '-', or port URL")
    ds.set_defaults(func=cmd_decode_serial)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args.func(args)


if __name__ == "__main__":
    main()
