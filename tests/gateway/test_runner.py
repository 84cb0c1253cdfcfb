"""Channel rules and driver construction: what a technician configures is what the gateway does."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.schema import ConfigError, Rule, SerialDriverConfig, load_config, parse_config
from drivers.serial_port import SerialDriver
from gateway.events import Decoded, Kind
from gateway.runner import Gateway, apply_rules

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def status(unit: str, code: str) -> Decoded:
    return Decoded(Kind.STATUS, NOW, unit, None, {"protocol": "fleetsync", "status": code})


RULES = [
    Rule(when={"protocol": "fleetsync", "status": ["98", "99"]}, kind="alert", label="emergency status"),
    Rule(when={"kind": "status", "unit": "fleetsync:200-*"}, kind="alert", label="tactical fleet"),
]


def test_first_matching_rule_decides() -> None:
    out = apply_rules(RULES, status("fleetsync:100-1001", "99"))
    assert out.kind is Kind.ALERT
    assert out.detail == {"protocol": "fleetsync", "status": "99", "rule": "emergency status", "decoded_kind": "status"}
    assert apply_rules(RULES, status("fleetsync:200-1001", "10")).detail["rule"] == "tactical fleet"


def test_no_rule_no_change() -> None:
    d = status("fleetsync:100-1001", "10")
    assert apply_rules(RULES, d) is d
    assert apply_rules(RULES, Decoded(Kind.STATUS, NOW, None, None, {"status": "10"})) == Decoded(
        Kind.STATUS, NOW, None, None, {"status": "10"}
    )


def test_numbers_in_rules_match_text_fields() -> None:
    rule = Rule(when={"status": 99}, kind="alert")  # TOML `status = 99` for a field decoded as "99"
    assert apply_rules([rule], status("fleetsync:100-1001", "99")).kind is Kind.ALERT


def dtmf(digits: str) -> Decoded:
    return Decoded(Kind.STATUS, NOW, None, None, {"protocol": "dtmf", "digits": digits})


DTMF_RULES = [
    Rule(match={"digits": r"\*911\*(\d{4})#"}, kind="alert", unit="dtmf:{1}", label="DTMF emergency"),
    Rule(when={"protocol": "dtmf"}, match={"digits": r"\*(?P<id>\d{4})#"}, kind="ptt", unit="dtmf:{id}"),
]


def test_regular_expressions_make_units_from_digits() -> None:
    alert = apply_rules(DTMF_RULES, dtmf("*911*1234#"))
    assert (alert.kind, alert.unit, alert.detail["rule"]) == (Kind.ALERT, "dtmf:1234", "DTMF emergency")
    ani = apply_rules(DTMF_RULES, dtmf("*1234#"))
    assert (ani.kind, ani.unit) == (Kind.PTT, "dtmf:1234")
    other = dtmf("*12#")  # matches no pattern as a whole: unchanged
    assert apply_rules(DTMF_RULES, other) is other


def test_a_unit_template_that_makes_no_identity_keeps_the_event() -> None:
    rule = Rule(match={"digits": r"(.*)"}, kind="alert", unit="dtmf:{1}")
    out = apply_rules([rule], dtmf("1 2"))
    assert out.kind is Kind.ALERT and out.unit is None and "not a unit identity" in out.detail["unit_error"]


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"match": {"digits": "(unclosed"}, "kind": "ptt"}, "match: digits: not a regular expression"),
        ({"match": {"digits": r"\d+"}, "kind": "ptt", "unit": "dtmf:{1}"}, "unit: {1} is no group"),
    ],
)
def test_rule_errors_name_the_key(rule: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": [{"name": "c", "rules": [rule]}]}, "site.toml")
    assert "channels[0].rules[0]" in str(err.value) and error in str(err.value)


def gateway_config(tmp_path: Path, driver: str) -> Path:
    f = tmp_path / "gw.toml"
    f.write_text(f'[gateway]\nname = "g"\noutbox = "o.sqlite"\n[[channels]]\nname = "c"\n'
                 f"[[channels.drivers]]\n{driver}\n")
    return f


def test_spec_file_is_included_relative_to_the_config(tmp_path: Path) -> None:
    spec = ROOT / "config" / "framespecs" / "anvil-pb8.toml"
    driver = f'port = "loop://"\nprotocol = "framespec"\noptions = {{ spec_file = "{spec}" }}'
    cfg = load_config(gateway_config(tmp_path, driver))
    table = cfg.channels[0].drivers[0]
    assert isinstance(table, SerialDriverConfig)
    assert table.options["spec"] == "anvil-pb8"
    gw = Gateway(cfg)
    serial_driver = gw.drivers[0][1]
    assert isinstance(serial_driver, SerialDriver)
    assert serial_driver.decoder.name == "framespec"
    gw.outbox.close()


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        ('port = "loop://"\nprotocol = "morse"', "channels[0].drivers[0].protocol: unknown protocol 'morse'"),
        ('port = "loop://"\nprotocol = "nmea"\noptions = { colour = "red" }', "channels[0].drivers[0].options"),
        ('port = "loop://"\nprotocol = "framespec"\noptions = { spec_file = "missing.toml" }',
         "channels[0].drivers[0].options.spec_file: cannot read"),
    ],
)
def test_driver_errors_name_the_key(tmp_path: Path, driver: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Gateway(load_config(gateway_config(tmp_path, driver)))
    assert expected in str(err.value)


def test_framespec_errors_name_the_option(tmp_path: Path) -> None:
    raw = {"gateway": {"name": "g", "outbox": str(tmp_path / "o.sqlite")},
           "channels": [{"name": "c", "drivers": [{"port": "loop://", "protocol": "framespec",
                                                   "options": {"framing": {"length": "ten"}}}]}]}
    with pytest.raises(ConfigError) as err:
        Gateway(parse_config(raw))
    assert "channels[0].drivers[0].options.framing.length" in str(err.value)
