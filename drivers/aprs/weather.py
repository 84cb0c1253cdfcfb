"""Weather (APRS 1.01 ch 12): the fields in a position with the weather symbol, the positionless form,
and the raw forms of Peet Bros weather stations.

Weather data::

    in a position with the _ symbol:   DDD/SSS  gGGG tTTT rRRR pPPP PPPP hHH bBBBBB L/lLLL sSSS #RRR
    positionless (after _MDHM):        cDDD sSSS gGGG tTTT ... the same fields
    then a software type (1 letter) and a unit type (2-4 letters), or (in a position) a comment

    wind dir (deg) / speed (mph), gust (mph), temp (F), rain last hour / 24 h / since midnight
    (hundredths of an inch), humidity (%, 00 = 100), pressure (tenths of hPa), luminosity (W/m2,
    "l" adds 1000), snowfall in the last 24 h (inches), raw rain counter. "..." or spaces mean
    "no data"; "a decimal point is allowed for non-integer values"; "the remaining parameters may be
    in a different order (or may not even exist)".

The fields are a table (:data:`drivers.aprs.tables.WEATHER_FIELDS`). Weather without a position::

    _ MMDDHHMM cDDD sSSS gGGG tTTT [fields] [software type, unit type]   positionless
    $ULTW hhhh hhhh ...     Peet Bros Ultimeter 2000, packet mode: 4-hex-digit words ("----": none)
    !! hhhh hhhh ...        Peet Bros Ultimeter 2000, data logging mode
    # or * ...              Peet Bros U-II: APRS 1.01 gives examples only, no layout; kept as sent

    Ultimeter words (Peet Bros' serial specification, the same layout FAP and Xastir read), signed:
      packet mode:  1 peak wind speed (0.1 km/h, last 5 min)  2 its direction (0-255)
                    3 outdoor temperature (0.1 F)  4 long-term rain (0.01 in)  5 pressure (0.1 hPa)
                    6 pressure delta  7-8 pressure correction  9 outdoor humidity (0.1 %)
                    10 day of year  11 minute of day  12 today's rain (0.01 in)  13 1-min mean wind
      logging mode: 1 wind speed  2 direction  3 outdoor temperature  4 long-term rain  5 pressure
                    6 indoor temperature  7 outdoor humidity  8 indoor humidity  9 day  10 minute
                    11 today's rain  12 1-min mean wind speed
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from drivers.aprs.fields import BLANK, comment_text, free_text
from drivers.aprs.packets import AprsError, ErrorCode, Timestamp, Weather, WeatherFormat, WeatherReport
from drivers.aprs.tables import HUNDREDTH_INCH_MM, KMH, MPH, WEATHER_FIELDS

_WX_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_WX_NO_DATA = re.compile(r"[. ]+")
# Direction 0-255 covers the circle with 255 as north again (FAP and Xastir scale by 360/255).
_ULTIMETER_DIRECTION = 360 / 255


def _wx_value(rest: str) -> tuple[str, float | None] | None:
    """The field at the start of ``rest``: (letter, value or None for "no data"), or None if there is none."""
    spec = WEATHER_FIELDS.get(rest[:1])
    if spec is None:
        return None
    raw = rest[1 : 1 + spec[0]]
    if len(raw) < spec[0]:
        return None
    if _WX_NUMBER.fullmatch(raw):
        return rest[0], float(raw)
    return (rest[0], None) if _WX_NO_DATA.fullmatch(raw) else None


def weather_fields(rest: str, wind: tuple[int | None, float | None] | None = None) -> tuple[Weather, str] | None:
    """Weather fields at the start of ``rest``; ``wind`` (direction, m/s) when the position carried it."""
    values: dict[str, Any] = {}
    if wind is not None:
        values["wind_direction"], values["wind_speed"] = wind
    else:
        m = re.match(r"^_?([0-9. ]{3})/([0-9. ]{3})", rest) or re.match(r"^c([0-9. ]{3})s([0-9. ]{3})", rest)
        if m is None:
            return None
        if m.group(1).isdigit():
            values["wind_direction"] = int(m.group(1))
        if m.group(2).isdigit():
            values["wind_speed"] = int(m.group(2)) * MPH
        rest = rest[m.end() :]
    while rest:
        field = _wx_value(rest)
        if field is None:
            # One stray byte between two fields (seen from real stations: "h98Os010L500") is passed
            # over when a field with a number follows; anything else ends the weather data.
            after = _wx_value(rest[1:])
            if after is None or after[1] is None:
                break
            rest = rest[1:]
            continue
        letter, value = field
        width, name, convert = WEATHER_FIELDS[letter]
        rest = rest[1 + width :]
        if value is not None:
            values[name] = convert(value)
    # APRS 1.01 ch 12: a one-letter software type and a 2-4 letter unit type may follow.
    if sw := re.fullmatch(r"([A-Za-z0-9_-]{3,5})", rest.strip(BLANK)):
        values["software"] = sw.group(1)
        rest = ""
    return Weather(**values), rest


def _resolve_mdhm(raw: str, now: datetime) -> Timestamp:
    """A positionless weather timestamp MMDDHHMM (no year): the latest that is not a day ahead."""
    now = now.astimezone(UTC)
    month, day, hour, minute = int(raw[0:2]), int(raw[2:4]), int(raw[4:6]), int(raw[6:8])
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, tzinfo=UTC))
        except ValueError:
            continue
    plausible = [t for t in candidates if t <= now + timedelta(days=1)]
    if not plausible:
        raise ValueError(f"no such month, day and time {raw}")
    return Timestamp(raw=raw, time=max(plausible))


def parse_positionless_weather(info: str, now: datetime) -> WeatherReport:
    m = re.match(r"^_(\d{8})(?=c)", info)
    parsed = weather_fields(info[9:]) if m else None
    if m is None or parsed is None:
        raise AprsError(ErrorCode.WX_UNSUPP, f"positionless weather needs _MMDDHHMMc...s...: {info[:20]!r}", "wx")
    try:
        timestamp = _resolve_mdhm(m.group(1), now)
    except ValueError as exc:
        raise AprsError(ErrorCode.WX_UNSUPP, str(exc), "wx") from None
    weather, rest = parsed
    return WeatherReport(WeatherFormat.POSITIONLESS, weather, timestamp, comment_text(rest), free_text(info[1:]))


def _hex_words(data: str) -> list[int | None]:
    words: list[int | None] = []
    while m := re.match(r"^([0-9A-Fa-f]{4}|----)", data):
        value = None if m.group(1) == "----" else int(m.group(1), 16)
        words.append(value - 0x10000 if value is not None and value >= 0x8000 else value)
        data = data[4:]
    return words


def parse_ultimeter(info: str) -> WeatherReport:
    logging = info.startswith("!!")
    data = info[2:] if logging else info[5:]
    words = _hex_words(data)
    if not words:
        raise AprsError(ErrorCode.WX_UNSUPP, f"no Ultimeter data words in {info[:20]!r}", "wx")
    words += [None] * (13 - len(words))

    def scaled(index: int, factor: float) -> float | None:
        value = words[index]
        return value * factor if value is not None else None

    def percent(index: int) -> int | None:
        value = words[index]
        if value is None or not 1 <= round(value / 10) <= 100:
            return None
        return round(value / 10)

    direction = words[1]
    pressure = words[4] if words[4] is not None and words[4] >= 10 else None
    temperature = scaled(2, 0.1)
    values: dict[str, Any] = {
        "wind_direction": round((direction & 0xFF) * _ULTIMETER_DIRECTION) if direction is not None else None,
        "temperature": (temperature - 32) / 1.8 if temperature is not None else None,
        "rain_total": scaled(3, HUNDREDTH_INCH_MM),
        "pressure": pressure / 10 if pressure is not None else None,
    }
    if logging:
        inside = scaled(5, 0.1)
        values |= {
            "temperature_inside": (inside - 32) / 1.8 if inside is not None else None,
            "humidity": percent(6),
            "humidity_inside": percent(7),
            "rain_midnight": scaled(10, HUNDREDTH_INCH_MM),
            "wind_speed": scaled(11, 0.1 * KMH) if words[11] is not None else scaled(0, 0.1 * KMH),
        }
    else:
        values |= {
            "wind_gust": scaled(0, 0.1 * KMH),
            "humidity": percent(8),
            "rain_midnight": scaled(11, HUNDREDTH_INCH_MM),
            "wind_speed": scaled(12, 0.1 * KMH),
        }
    form = WeatherFormat.ULTIMETER_LOGGING if logging else WeatherFormat.ULTIMETER_PACKET
    return WeatherReport(form, Weather(**values), raw=free_text(info[1:]))


def parse_peet_bros(info: str) -> WeatherReport:
    """``#`` or ``*``: a Peet Bros U-II report, whose layout is not published; kept as sent."""
    return WeatherReport(WeatherFormat.PEET_BROS_U2, Weather(), raw=free_text(info[1:].rstrip(BLANK)))
