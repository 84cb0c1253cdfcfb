"""The systemd units in deploy/systemd: systemd itself finds nothing to complain about, and each runs its
program on the instance's configuration, hardened, restarted, with secrets from an environment file."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
INSTALLED = "/opt/pttbridge/bin/pttbridge"  # where the units expect the virtual environment's command


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_systemd_analyze_verifies_the_units_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (it comes with systemd)")
    # The command must exist for verify to pass: this checkout's stands in for the installed one.
    command = Path(sys.executable).parent / "pttbridge"
    assert command.exists(), "pttbridge is not installed in this environment (pip install -e .)"
    for f in UNITS.iterdir():
        (tmp_path / f.name).write_text(f.read_text().replace(INSTALLED, str(command)))
    run = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "pttbridge-gateway@site-1.service"),
                          str(tmp_path / "pttbridge-bridge@center-a.service"), str(tmp_path / "pttbridge.target")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr  # unknown keys and bad values are only warnings: none here


@pytest.mark.parametrize(("name", "program"), [("pttbridge-gateway@.service", "gateway"),
                                               ("pttbridge-bridge@.service", "bridge")])
def test_each_unit_runs_its_program_on_the_instance_configuration_hardened(name: str, program: str) -> None:
    u = unit(name)
    service = u["Service"]
    assert service["ExecStart"] == f"{INSTALLED} {program} -c /etc/pttbridge/%i.toml"
    assert service["EnvironmentFile"] == "-/etc/pttbridge/%i.env"
    assert "PTTBRIDGE_DATA=/var/lib/pttbridge/%i" in service["Environment"]
    assert service["StateDirectory"] == "pttbridge/%i"
    assert service["Restart"] == "always"
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert u["Unit"]["PartOf"] == "pttbridge.target" and u["Install"]["WantedBy"] == "pttbridge.target"
    if program == "gateway":
        assert set(service["SupplementaryGroups"].split()) == {"dialout", "audio"}
        # The radios are devices; ProtectClock implies DeviceAllow=char-rtc, which closes all the others.
        assert not {"PrivateDevices", "DeviceAllow", "DevicePolicy", "ProtectClock"} & set(service)
    else:
        assert service["PrivateDevices"] == "yes"
