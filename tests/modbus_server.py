"""A real Modbus server process for tests: an I/O module whose inputs the test sets through stdin.

    python tests/modbus_server.py --tcp PORT | --rtu SERIAL_URL  [--device-id N]

pymodbus's own server and datastore serve 64 coils, discrete inputs, input and holding registers
(addresses 0..63) of one device. The test drives it with one command per line on stdin:

    set di|co|ir|hr ADDRESS VALUE      change a point, as a wire or a relay would
    get di|co|ir|hr ADDRESS            answered on stdout: "di ADDRESS VALUE"

and reads from stdout: ``ready`` once the server listens, and ``write co ADDRESS VALUE`` for every coil
a client writes (so the test sees what reached the module, not what the client believes it sent).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from typing import Any

from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

SIZE = 64
TABLES = {"co": 1, "di": 2, "hr": 3, "ir": 4}  # the read function code that names each table
COIL_WRITES = (5, 15)  # write single coil, write multiple coils


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def on_access(
    func_code: int, _start: int, address: int, count: int, _registers: list[int], values: Any
) -> None:
    if func_code in COIL_WRITES and values is not None:
        for i, value in enumerate(list(values)[:count]):
            say(f"write co {address + i} {int(bool(value))}")


def device(device_id: int) -> SimDevice:
    bits = [SimData(0, count=SIZE, values=False, datatype=DataType.BITS)]
    regs = [SimData(0, count=SIZE, values=0, datatype=DataType.REGISTERS)]
    # Four separate tables, as a real I/O module has them: coil 3 and discrete input 3 are different wires.
    return SimDevice(id=device_id, simdata=(bits, list(bits), regs, list(regs)), action=on_access)


async def command(server: ModbusBaseServer, device_id: int, line: str) -> None:
    parts = line.split()
    try:
        verb, table, address = parts[0], parts[1], int(parts[2], 0)
        fc = TABLES[table]
        if verb == "set":
            value = int(parts[3], 0)
            # Bit tables take booleans; the write function codes share the read codes' tables.
            values: list[Any] = [bool(value)] if table in ("co", "di") else [value]
            error = await server.context.async_setValues(device_id, fc, address, values)
            if error:
                say(f"error {line}: {error}")
        elif verb == "get":
            got = await server.context.async_getValues(device_id, fc, address, 1)
            if isinstance(got, list):
                say(f"{table} {address} {int(got[0])}")
            else:
                say(f"error {line}: {got}")
        else:
            say(f"error {line}: unknown verb")
    except (IndexError, KeyError, ValueError) as exc:
        say(f"error {line}: {exc!r}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, help="listen on 127.0.0.1:PORT")
    where.add_argument("--rtu", help="serve Modbus RTU on this serial port (a pty path)")
    parser.add_argument("--device-id", type=int, default=1)
    args = parser.parse_args()
    dev = device(args.device_id)
    server: ModbusBaseServer
    if args.tcp is not None:
        server = ModbusTcpServer(dev, address=("127.0.0.1", args.tcp))
    else:
        server = ModbusSerialServer(dev, port=args.rtu, baudrate=19200)
    await server.listen()
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read_stdin() -> None:  # a thread: stdin of a pipe is not reliably selectable in asyncio everywhere
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    say("ready")
    while (line := await lines.get()) is not None:
        if line:
            await command(server, args.device_id, line)
    await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated


if __name__ == "__main__":
    asyncio.run(main())
