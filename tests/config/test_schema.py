"""Configuration: the shipped files load, and every error names the file, the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.schema import ConfigError, load_config, parse_config

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("name", ["default.toml", "example-gateway.toml"])
def test_shipped_configurations_load(name: str) -> None:
    cfg = load_config(ROOT / "config" / name)
    assert cfg.gateway is not None and cfg.channels


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "gw.toml"
    f.write_text('[gateway]\nname = "gw1"\noutbox = "state/outbox.sqlite"\n')
    assert load_config(f).outbox_path() == tmp_path / "sub" / "state" / "outbox.sqlite"


def test_a_dry_run_transmitter_writes_where_it_is_told(tmp_path: Path) -> None:
    f = tmp_path / "gw.toml"
    f.write_text('data_dir = "state"\n[[channels]]\nname = "a"\n[channels.transmit]\ndevice = "wav:tx/a.wav"\n'
                 '[[channels]]\nname = "b"\n[channels.transmit]\ndevice = "wav:{data_dir}/b.wav"\n')
    a, b = (c.transmit for c in load_config(f).channels)
    assert a is not None and a.device == f"wav:{tmp_path / 'tx' / 'a.wav'}"
    assert b is not None and b.device == "wav:{data_dir}/b.wav"  # filled in by the gateway, with the data folder


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[gateway]\nname = "has space"', "gateway.name: expected 1-64 characters"),
        ('[gateway]\nname = "g"\nretention_h = 0', "gateway.retention_h: Input should be greater than 0"),
        ('[mqtt]\nurl = "http://broker"', "mqtt.url: expected mqtt://host[:port]"),
        ('[[channels]]\nname = "c"\n[[channels.drivers]]\nprotocol = "nmea"',
         "channels[0].drivers[0].port: Field required"),
        ('[[channels]]\nname = "c"\n[[channels.drivers]]\nprotocol = "nmea"\nport = "loop://"\nbaudrate = "fast"',
         "channels[0].drivers[0].baudrate: Input should be a valid integer"),
        ('[[channels]]\nname = "c"\n[[channels.rules]]\nkind = "panic"', "channels[0].rules[0].kind: Input should be"),
        ('[[channels]]\nname = "c"\n[[channels]]\nname = "c"', "channel names must be unique, repeated: c"),
        ('[gatway]\nname = "g"', "gatway: Extra inputs are not permitted"),
        ("[gateway\n", "not valid TOML"),
        ('[[channels]]\nname = "c"\n[channels.transmit]\ndevice = "x"\nptt = { method = "relay" }',
         "channels[0].transmit.ptt"),
        ('[[channels]]\nname = "c"\n[channels.transmit]\ndevice = "x"\noutput = 2',
         "output 2 does not exist when 1 channel(s) are opened"),
        ('[[channels]]\nname = "c"\n[channels.record]\ndetect = "squelch"', "channels[0].record.detect"),
        ('[[channels]]\nname = "c"\n[[channels.drivers]]\ntype = "audio"\ndevice = "pulse"\ndecoders = ["dmr"]\n'
         'options = { dmr = { color_codes = 16 } }', "channels[0].drivers[0]: options.dmr.color_codes: Value error"),
        ('[[channels]]\nname = "c"\n[[channels.drivers]]\ntype = "audio"\ndevice = "pulse"\ndecoders = ["dmr"]\n'
         'options = { dmr = { slots = [1, 3] } }', "options.dmr.slots: Value error, expected 1..2"),
        ('[gateway]\nname = "g"\ndecode_workers = "many"', "gateway.decode_workers"),
        ('[gateway]\nname = "g"\ndecode_workers = 65', "gateway.decode_workers"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, toml: str, expected: str) -> None:
    f = tmp_path / "site.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(err.value).startswith(f"{f}: ")
    assert expected in str(err.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(tmp_path / "nope.toml")


def test_broker_url_and_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTTBRIDGE_MQTT_URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("GW_PASS", "s3cret")
    cfg = parse_config({"mqtt": {"username": "gw1", "password_env": "GW_PASS"}})
    mqtt = cfg.mqtt
    assert (mqtt.host, mqtt.port, mqtt.use_tls, mqtt.password) == ("broker.example", 8883, True, "s3cret")
    assert "s3cret" not in repr(cfg)  # the secret is read when needed, never held in the config


@settings(max_examples=200)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=8), x, max_size=4)))
def test_any_structure_gives_config_or_config_error(raw: object) -> None:
    try:
        parse_config(raw if isinstance(raw, dict) else {"gateway": raw})
    except ConfigError:
        pass


# --- found by bench/fuzz: errors that came out as something else than ConfigError --------------------


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "site.toml"
    f.write_bytes(b'[gateway]\nname = "gw\xb01"\n')
    with pytest.raises(ConfigError, match=r"site\.toml: not UTF-8"):
        load_config(f)


def test_a_spec_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "box.toml").write_bytes(b"spec = '\xff'\n")
    f = tmp_path / "site.toml"
    f.write_text('[[channels]]\nname = "c"\n[[channels.drivers]]\ntype = "serial"\ndevice = "/dev/null"\n'
                 'protocol = "framespec"\noptions = { spec_file = "box.toml" }\n')
    with pytest.raises(ConfigError, match=r"spec_file: .*box\.toml is not UTF-8"):
        load_config(f)


@pytest.mark.parametrize(
    "toml",
    [
        "[demo]\nreplay = true\n",
        "[demo]\nreplay = 'x'\n",
        'data_dir = "a\\u0000b"\n',
        '[gateway]\nname = "gw1"\noutbox = "a\\u0000b"\n',
        "[[channels]]\nname = 'c'\n[[channels.drivers]]\ntype = 'audio'\ndevice = \"wav:a\\u0000.wav\"\n",
        "[[channels]]\nname = 'c'\n[[channels.drivers]]\ntype = 'serial'\ndevice = '/dev/null'\n"
        "protocol = 'framespec'\noptions = { spec_file = \"a\\u0000b\" }\n",
    ],
)
def test_odd_values_where_paths_are_resolved_are_config_errors(tmp_path: Path, toml: str) -> None:
    f = tmp_path / "site.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=r"site\.toml"):
        load_config(f)


TABLES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                      lambda x: st.lists(x, max_size=3) | st.dictionaries(st.text(max_size=8), x, max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["data_dir", "gateway", "channels", "demo", "console", "mqtt"]), TABLES,
                       max_size=4))
def test_any_structure_read_from_a_file_gives_config_or_config_error(raw: dict[str, object]) -> None:
    # With a base directory: the relative paths are resolved and spec files included before validation.
    try:
        parse_config(raw, "site.toml", ROOT / "config")
    except ConfigError:
        pass


def test_credentials_in_the_broker_url_are_refused_without_being_repeated(tmp_path: Path) -> None:
    f = tmp_path / "site.toml"
    f.write_text('[mqtt]\nurl = "mqtts://gw-xixing-1:Hunter2-secret@broker:8883"\n')
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert "mqtt.url: credentials do not belong in the URL" in str(err.value)
    assert "Hunter2-secret" not in str(err.value)


def test_every_mistake_of_a_file_is_said_in_one_run(tmp_path: Path) -> None:
    """Several mistakes, one run: each line names the file, the key path and what was expected, including
    a name given twice (found whether or not the channels are valid themselves) and a spec file that
    cannot be read."""
    f = tmp_path / "site.toml"
    f.write_text('[gateway]\nname = "xi xing"\nretention_h = 0\n[mqtt]\nurl = "http://broker"\n'
                 '[[channels]]\nname = "patrol-1"\nrx_mhz = -146.52\nctcss_hz = 101.0\nlocation = 3\n'
                 '[[channels.drivers]]\nprotocol = "nmea"\n'
                 '[[channels.drivers]]\nprotocol = "framespec"\nport = "loop://"\noptions = { spec_file = "no.toml" }\n'
                 '[[channels]]\nname = "patrol-1"\nlocation = 3\n[channels.transmit]\ndevice = "x"\noutput = 2\n'
                 '[[cameras]]\nid = "dome-3"\nlat = 91\nlon = 120\n[[cameras]]\nid = "dome-3"\nlat = 30\nlon = 120\n'
                 'fov_deg = 360\n')
    with pytest.raises(ConfigError) as err:
        load_config(f)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{f}: ") for line in lines)
    said = [line.removeprefix(f"{f}: ") for line in lines]
    assert said[0].startswith("channels[0].drivers[1].options.spec_file: cannot read ")
    assert said[1:] == [
        "mqtt.url: expected mqtt://host[:port] or mqtts://host[:port], got 'http://broker'",
        "gateway.name: expected 1-64 characters of A-Z a-z 0-9 _ . - (it is used as an MQTT topic level) "
        "(got 'xi xing')",
        "gateway.retention_h: Input should be greater than 0 (got 0)",
        "channels[0].drivers[0].port: Field required",
        "channels[0].rx_mhz: Input should be greater than 0 (got -146.52)",
        "channels[0].ctcss_hz: 101.0 Hz is no standard CTCSS tone (67.0, 69.3, 71.9, ... 254.1)",
        "channels[1].transmit: output 2 does not exist when 1 channel(s) are opened",
        "cameras[0].lat: Input should be less than or equal to 90 (got 91)",
        "channels[1].name: channel names must be unique, repeated: patrol-1 (also channels[0])",
        "channels[1].location: radio memory locations must be unique, repeated: 3 (also channels[0])",
        "cameras[1].id: camera ids must be unique, repeated: dome-3 (also cameras[0])",
    ]


def test_a_name_given_twice_in_an_otherwise_valid_file_is_said_at_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}, "site.toml")
    assert str(err.value) == "site.toml: channels[2].name: channel names must be unique, repeated: a (also channels[0])"


def test_a_receive_only_channel_has_no_transmit_frequency_and_its_tones_fit_its_tone_mode() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"channels": [
            {"name": "wx", "rx_mhz": 162.55, "receive_only": True, "tx_mhz": 162.4},
            {"name": "a", "rx_mhz": 146.52, "tone_mode": "Cross", "tx_ctcss_hz": 100.0},
            {"name": "b", "rx_mhz": 146.52, "tone_mode": "Tone", "ctcss_hz": 100.0, "tx_ctcss_hz": 100.0},
            {"name": "c", "rx_mhz": 146.52, "ctcss_hz": 100.0, "dcs_polarity": "NR"},
            {"name": "d", "rx_mhz": 146.52, "step_khz": 8.33, "power_w": 0},
        ]}, "site.toml")
    assert str(err.value).splitlines() == [
        "site.toml: channels[0]: tx_mhz/receive_only: a receive-only channel has no transmit frequency",
        "site.toml: channels[1]: cross_mode: tone_mode Cross needs it, e.g. 'Tone->DTCS'",
        "site.toml: channels[2]: ctcss_hz: not used with tone_mode Tone",
        "site.toml: channels[3]: dcs_polarity: only a DCS code has a polarity (tone_mode TSQL uses none)",
        "site.toml: channels[4].power_w: Input should be greater than 0 (got 0)",
        "site.toml: channels[4].step_khz: expected one of CHIRP's steps 1, 2.5, 5, 6.25, 9, 10, 12.5, 15, 20, 25, "
        "30, 50, 100, 125, 200 kHz, got 8.33",
    ]
    # TSQL with its tone and DTCS with its code are what ctcss_hz and dcs_code alone say: one spelling.
    both = parse_config({"channels": [{"name": "a", "tone_mode": "TSQL", "ctcss_hz": 100.0},
                                      {"name": "b", "dcs_code": "023", "dcs_polarity": "NN"}]})
    assert [c.model_dump(exclude_defaults=True) for c in both.channels] == [
        {"name": "a", "ctcss_hz": 100.0}, {"name": "b", "dcs_code": "023"}]
    assert [c.effective_tone_mode for c in both.channels] == ["TSQL", "DTCS"]


@pytest.mark.parametrize(("setting", "radios", "cores", "workers"), [
    ("auto", 1, 4, 0), ("auto", 8, 4, 0), ("auto", 9, 2, 2), ("auto", 16, 4, 4), ("auto", 9, 16, 9),
    ("auto", 9, None, 1), (0, 32, 4, 0), (3, 1, 4, 3),
])
def test_decode_workers_auto_is_one_per_core_above_eight_audio_radios(
    setting: str | int, radios: int, cores: int | None, workers: int
) -> None:
    gw = parse_config({"gateway": {"name": "g", "decode_workers": setting}}).gateway
    assert gw is not None and gw.decoding_workers(radios, cores) == workers
