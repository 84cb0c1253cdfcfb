"""Writes the demo captures that ``pttbridge up`` replays (run it again after changing the scenario).

    python -m launcher.make_captures

The scenario: an evening shift in Xixing, Hangzhou (around 30.2095 N, 120.2107 E). Three officers
with Kenwood FleetSync radios on channel patrol-1 report positions and key up; patrol car 7's own GPS
receiver talks NMEA; an APRS handheld beacons through a KISS TNC. Half a minute in, unit 100-1002 hits
the emergency button (FleetSync status 99 in its $PKLDS report); a little later the APRS handheld
BG5ABC-9 sends a Mic-E "Emergency" position. On the analogue channel patrol-2, heard through a sound card,
units identify with DTMF and 5-tone and one sends a DTMF emergency code. On patrol-3, a channel of
MDC-1200 radios that the gateway records and can answer, officer 2001 speaks between his PTT IDs, then
presses the emergency button and calls for help. Every capture loops.

The case: urban-management officer 100-1004 stands at his post by the market on the east side (his
radio reports its position now and then); patrol car 7 drives north past it, and its 360-degree camera
sees a street stall a few metres from him (``stall.jpg`` is that camera's snapshot). Sent there, he answers
from his radio's status keys: accepted, arrived, handled (FleetSync statuses 10, 11, 12 on the data port,
``officer-100-1004.jsonl``, written once when the gateway has told him the case).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.audio import mdc1200
from drivers.audio.dtmf import dtmf_tones
from drivers.audio.selcall import selcall_tones
from drivers.ax25 import encode_ui
from drivers.kiss import kiss_encode
from drivers.nmea import checksum

HERE = Path(__file__).resolve().parents[1] / "config" / "demo"  # the data: config/demo
RATE = 8000
LAT0, LON0 = 30.2095, 120.2107
M_PER_DEG_LAT = 111_320.0


def ddmm(value: float, degree_digits: int) -> str:
    deg = int(abs(value))
    return f"{deg:0{degree_digits}d}{(abs(value) - deg) * 60:07.4f}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body):02X}\r\n"


# The street stall patrol car 7's camera sees (about 70 m east of the car's road, which it passes some
# 14 s in), and the post of the urban-management officer who stands a few metres from it.
STALL = (LAT0 - 0.0028, LON0 + 0.0037)
POST = (LAT0 - 0.0029, LON0 + 0.0038)


def walk(i: int, unit: int) -> tuple[float, float]:
    """Unit ``unit`` walks a loop of about 400 m around its own corner of the district."""
    angle = i / 20 * 2 * math.pi
    east, north = (unit - 2) * 600 + 200 * math.cos(angle), (unit - 2) * 300 + 200 * math.sin(angle)
    return LAT0 + north / M_PER_DEG_LAT, LON0 + east / (M_PER_DEG_LAT * math.cos(math.radians(LAT0)))


def record(after_s: float, data: str | bytes) -> str:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return json.dumps({"after_s": after_s, "data": text})


def patrol() -> list[str]:
    out = ["# patrol-1: Kenwood FleetSync data port (caller IDs, $PKLSH/$PKLDS positions, a text, an emergency)"]
    for i in range(20):
        for unit in (1, 2, 3):
            lat, lon = walk(i, unit)
            hhmmss = f"1930{(i * 3) % 60:02d}"
            out.append(record(1.0, sentence(f"PKLSH,{ddmm(lat, 2)},N,{ddmm(lon, 3)},E,{hhmmss},A,100,100{unit},")))
        if i % 2 == 0:  # 100-1004 at his post, heard less often
            out.append(record(0.2, sentence(f"PKLSH,{ddmm(POST[0], 2)},N,{ddmm(POST[1], 3)},E,{hhmmss},A,100,1004,")))
        if i % 4 == 1:
            out.append(record(0.3, b"\x02I11001001\x03"))  # 100-1001 keys up ...
            out.append(record(2.0, b"\x02I01001001\x03"))  # ... and lets go
        if i == 6:
            out.append(record(0.5, b"\x02F1001003arrived at Wensan Rd crossing\x03"))
        if i == 10:
            lat, lon = walk(i, 2)
            body = f"PKLDS,193030,A,{ddmm(lat, 2)},N,{ddmm(lon, 3)},E,002.1,093.5,261126,04.20,W00,100,1002,99,00,"
            out.append(record(0.5, b"\x02I11001002\x03"))
            out.append(record(0.2, sentence(body)))
    return out


def officer_answers() -> list[str]:
    """100-1004 answers the case from his radio's status keys, as its data port reports them: accepted at
    once, arrived a little later (the stall is a few metres away), handled once the vendor has packed up."""
    return ["# officer 100-1004's answers to a dispatch: FleetSync statuses 10 accepted, 11 arrived, 12 handled",
            record(4.0, b"\x02S100100410\x03"), record(8.0, b"\x02S100100411\x03"),
            record(10.0, b"\x02S100100412\x03")]


def stall_picture() -> None:
    """Patrol car 7's snapshot of the street stall: a small JPEG drawn here (the project's own picture)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (160, 120), (112, 118, 124))  # the road
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 159, 34), fill=(150, 190, 225))  # sky
    draw.rectangle((0, 35, 159, 52), fill=(176, 160, 140))  # shop fronts
    draw.rectangle((0, 84, 159, 119), fill=(186, 186, 178))  # the pavement
    for n in range(6):  # the stall's red and white awning
        draw.rectangle((44 + n * 12, 56, 55 + n * 12, 66), fill=(206, 40, 40) if n % 2 == 0 else (245, 245, 240))
    draw.rectangle((50, 66, 110, 70), fill=(60, 60, 60))  # awning rail
    draw.line((50, 70, 50, 98), fill=(40, 40, 40), width=2)
    draw.line((110, 70, 110, 98), fill=(40, 40, 40), width=2)
    draw.rectangle((48, 84, 112, 98), fill=(150, 100, 60))  # the table
    for n in range(5):  # fruit on it
        draw.ellipse((54 + n * 11, 78, 62 + n * 11, 86), fill=(240, 160, 30) if n % 2 else (90, 170, 60))
    draw.rectangle((0, 108, 159, 119), fill=(20, 20, 20))
    draw.text((3, 109), "CAR-7 360  street_stall 0.91", fill=(255, 255, 255))
    img.save(HERE / "stall.jpg", "JPEG", quality=80)


def vehicle() -> list[str]:
    out = ["# vehicle: patrol car 7's GPS receiver (NMEA 0183 RMC + GGA, one fix every 2 s)"]
    for i in range(30):
        lat, lon = LAT0 - 0.004 + i * 0.0002, LON0 + 0.003
        t = f"1930{(i * 2) % 60:02d}.00"
        out.append(record(2.0, sentence(f"GPRMC,{t},A,{ddmm(lat, 2)},N,{ddmm(lon, 3)},E,14.2,0.0,261126,,,A")))
        out.append(record(0.05, sentence(f"GPGGA,{t},{ddmm(lat, 2)},N,{ddmm(lon, 3)},E,1,09,0.9,12.0,M,7.0,M,,")))
    return out


def mic_e(call: str, lat_digits: str, message_bits: str, info_tail: bytes) -> bytes:
    """A Mic-E frame (APRS 1.01 chapter 10) north/east with a longitude of 100-179 degrees: the
    destination carries the latitude digits, the message bits A-C (0 = digit, 1 = P-Y) and the
    N, +100 and E flags in characters 4-6."""
    chars = []
    for n, digit in enumerate(lat_digits):
        if n < 3:
            chars.append(chr(ord("P") + int(digit)) if message_bits[n] == "1" else digit)
        elif n in (3, 4):  # north; longitude offset +100
            chars.append(chr(ord("P") + int(digit)))
        else:  # east
            chars.append(digit)
    return encode_ui(call, "".join(chars), b"`" + info_tail, ["WIDE1-1"])


def aprs() -> list[str]:
    out = ["# aprs: an APRS handheld through a KISS TNC (Mic-E positions; the last one is an Emergency)"]
    # Longitude 120 deg 12.64 min E: d = 120 - 100 + 28, m = 12 + 28, h = 64 + 28; speed/course 0.
    lon = bytes([20 + 28, 12 + 28, 64 + 28])
    still = bytes([28, 28, 28])
    for i in range(6):
        lat = f"3012{57 + i:02d}"
        out.append(record(5.0, kiss_encode(mic_e("BG5ABC-9", lat, "110", lon + still + b">/on patrol"))))  # En Route
    out.append(record(5.0, kiss_encode(mic_e("BG5ABC-9", "301263", "000", lon + still + b">/"))))  # Emergency
    out.append(record(5.0, kiss_encode(encode_ui("BG5ABC-9", "APRS", b">need backup at Xixi Rd"))))
    return out


def silence(seconds: float) -> npt.NDArray[np.float32]:
    return np.zeros(int(seconds * RATE), np.float32)


def burst(packet: mdc1200.Mdc1200Packet) -> npt.NDArray[np.float32]:
    """An MDC-1200 burst at the level the demo radios send."""
    return mdc1200.encode(packet, rate=RATE, level=0.4)


def patrol2_audio() -> None:
    """patrol-2: an analogue channel heard through a sound card. Officer 1007 keys up with a DTMF ANI,
    car 23456 with a ZVEI1 5-tone ID, then 1007 sends the DTMF emergency code *911*1007#. 8 kHz, 8-bit."""
    parts = [silence(2), dtmf_tones("*1007#", RATE), silence(4), selcall_tones("23456", "ZVEI1", RATE), silence(4),
             dtmf_tones("*911*1007#", RATE), silence(6)]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 127 + 128).astype(np.uint8)
    with wave.open(str(HERE / "patrol-2.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def speech(text: str) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng at RATE (a voice-like buzz where espeak-ng is not installed)."""
    if shutil.which("espeak-ng") is None:
        t = np.arange(int(0.08 * len(text) * RATE)) / RATE
        buzz = np.sum([np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12)], axis=0)
        voice: npt.NDArray[np.float32] = (0.1 * buzz).astype(np.float32)
        return voice
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
        with wave.open(str(path)) as w:
            rate, x = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    from scipy.signal import resample_poly

    g = math.gcd(RATE, rate)
    x = resample_poly(x, RATE // g, rate // g)
    spoken: npt.NDArray[np.float32] = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    return spoken


def patrol3_audio() -> None:
    """patrol-3: MDC-1200 radios. Officer 2001 keys up (PTT ID), speaks, de-keys (post ID); later he
    presses the emergency button (the radio sends its emergency burst) and calls for help."""
    parts = [silence(2), burst(mdc1200.ptt_id(0x2001)), speech("Control, patrol three, on Xixi road, all quiet."),
             burst(mdc1200.ptt_id(0x2001, post=True)), silence(5), burst(mdc1200.emergency(0x2001)),
             speech("Officer needs help, corner of Xixi road and Wenyi road!"), silence(8)]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 127 + 128).astype(np.uint8)
    with wave.open(str(HERE / "patrol-3.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    for name, lines in (("patrol-1", patrol()), ("vehicle", vehicle()), ("aprs", aprs()),
                        ("officer-100-1004", officer_answers())):
        (HERE / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="ascii")
        print(f"{name}.jsonl: {len(lines) - 1} bursts")
    patrol2_audio()
    print("patrol-2.wav")
    patrol3_audio()
    print("patrol-3.wav")
    stall_picture()
    print("stall.jpg")
