"""The data of APRS, apart from the parsers that read it: units, the data type identifiers, the Mic-E
message bits and the weather fields. Adding a weather field or naming a data type is an edit here.
"""

from __future__ import annotations

from typing import Any

from drivers.aprs.packets import MicEMessage

# --- units -----------------------------------------------------------------------------------

KNOT_MPS = 1852 / 3600  # one international knot in m/s
FOOT_M = 0.3048
MPH = 0.44704
KMH = 1 / 3.6
HUNDREDTH_INCH_MM = 0.254
INCH_MM = 25.4

# --- data type identifiers (APRS 1.01 ch 5) ----------------------------------------------------

# Data types APRS names without fields read here (APRS 1.01 ch 5): status events with the text.
OTHER_TYPES = {
    ",": "test",  # "invalid data or test data"
    "%": "df_report",  # Agrelo DFJr / MicroFinder
    "&": "map_feature",
    "+": "shelter",
    ".": "space_weather",
    "[": "maidenhead",  # Maidenhead grid locator beacon (obsolete)
}

# The type each first byte claims, as events name it (``detail.type``). Three types are known by
# more than their first byte: "!!" and "$ULTW" are weather, "T#" telemetry, "{{" experimental.
DATA_TYPES = {
    **dict.fromkeys("!=/@", "position"),
    **dict.fromkeys("`'\x1c\x1d", "mic_e"),
    ">": "status",
    ":": "message",
    ";": "object",
    ")": "item",
    "$": "nmea",
    **dict.fromkeys("_#*", "weather"),
    "?": "query",
    "<": "capabilities",
    "{": "user_defined",
    "}": "third_party",
    **OTHER_TYPES,
}

# Telemetry metadata (APRS 1.01 ch 13) by its keyword, as events name it.
TELEMETRY_METADATA_TYPES = {"PARM": "parameters", "UNIT": "units", "EQNS": "equations", "BITS": "bits"}

# --- Mic-E message bits A B C (APRS 1.01 ch 10, "Mic-E Message Codes") -------------------------

MIC_E_STANDARD = {
    "111": MicEMessage.OFF_DUTY,
    "110": MicEMessage.EN_ROUTE,
    "101": MicEMessage.IN_SERVICE,
    "100": MicEMessage.RETURNING,
    "011": MicEMessage.COMMITTED,
    "010": MicEMessage.SPECIAL,
    "001": MicEMessage.PRIORITY,
    "000": MicEMessage.EMERGENCY,
}
MIC_E_CUSTOM = {
    "111": MicEMessage.CUSTOM_0,
    "110": MicEMessage.CUSTOM_1,
    "101": MicEMessage.CUSTOM_2,
    "100": MicEMessage.CUSTOM_3,
    "011": MicEMessage.CUSTOM_4,
    "010": MicEMessage.CUSTOM_5,
    "001": MicEMessage.CUSTOM_6,
}

# --- weather fields (APRS 1.01 ch 12; drawn in drivers/aprs/weather.py) -------------------------

# field letter -> (width, name, conversion to the unit of Weather)
WEATHER_FIELDS: dict[str, tuple[int, str, Any]] = {
    "g": (3, "wind_gust", lambda n: n * MPH),
    "t": (3, "temperature", lambda n: (n - 32) / 1.8),  # a negative value spends a byte on "-"
    "r": (3, "rain_1h", lambda n: n * HUNDREDTH_INCH_MM),
    "p": (3, "rain_24h", lambda n: n * HUNDREDTH_INCH_MM),
    "P": (3, "rain_midnight", lambda n: n * HUNDREDTH_INCH_MM),
    "h": (2, "humidity", lambda n: 100 if n == 0 else int(n)),
    "b": (5, "pressure", lambda n: n / 10),
    "L": (3, "luminosity", int),
    "l": (3, "luminosity", lambda n: int(n) + 1000),
    "s": (3, "snow_24h", lambda n: n * INCH_MM),
    "#": (3, "rain_raw", int),
}
