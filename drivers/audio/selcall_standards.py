"""The 5-tone selcall standards: each tone's frequency and the tone time. Data only (no numpy), so that
whoever needs the names (the console's plan form, configuration) need not load the decoder
(:mod:`drivers.audio.selcall`).

Tone frequencies in hertz for tone 0-9, A-D, E (repeat) and F, as multimon-ng (``demod_*.c``) and the
radio manufacturers' tables list them; CCIR is ITU-R (then CCIR) Rec. 257, ZVEI the German
Zentralverband der Elektrotechnischen Industrie's sets, EIA the US set::

        tone    ZVEI1  ZVEI2  ZVEI3   CCIR    EEA    EIA
        0        2400   2400   2400   1981   1981    600
        1        1060   1060   1060   1124   1124    741
        2        1160   1160   1160   1197   1197    882
        3        1270   1270   1270   1275   1275   1023
        4        1400   1400   1400   1358   1358   1164
        5        1530   1530   1530   1446   1446   1305
        6        1670   1670   1670   1540   1540   1446
        7        1830   1830   1830   1640   1640   1587
        8        2000   2000   2000   1747   1747   1728
        9        2200   2200   2200   1860   1860   1869
        A        2800    885    885   2400   1055   2151
        B         810    825    810    930    930   2433
        C         970    740   2800   2247   2400   2010
        D         885    680    680    991    991   2292
        E repeat 2600    970    970   2110   2110    459
        F         680   2600   2600   1055   2247   1091
        tone ms    70     70     70    100     40     33
"""

from __future__ import annotations

SYMBOLS = "0123456789ABCDEF"
REPEAT = "E"

#: Tone frequencies (Hz) for SYMBOLS, and the nominal tone time; see the table in the module docstring.
STANDARDS: dict[str, tuple[tuple[float, ...], float]] = {
    "ZVEI1": ((2400, 1060, 1160, 1270, 1400, 1530, 1670, 1830, 2000, 2200, 2800, 810, 970, 885, 2600, 680), 0.070),
    "ZVEI2": ((2400, 1060, 1160, 1270, 1400, 1530, 1670, 1830, 2000, 2200, 885, 825, 740, 680, 970, 2600), 0.070),
    "ZVEI3": ((2400, 1060, 1160, 1270, 1400, 1530, 1670, 1830, 2000, 2200, 885, 810, 2800, 680, 970, 2600), 0.070),
    "CCIR": ((1981, 1124, 1197, 1275, 1358, 1446, 1540, 1640, 1747, 1860, 2400, 930, 2247, 991, 2110, 1055), 0.100),
    "EEA": ((1981, 1124, 1197, 1275, 1358, 1446, 1540, 1640, 1747, 1860, 1055, 930, 2400, 991, 2110, 2247), 0.040),
    "EIA": ((600, 741, 882, 1023, 1164, 1305, 1446, 1587, 1728, 1869, 2151, 2433, 2010, 2292, 459, 1091), 0.033),
}
