"""The registry's lookups: installed plugins read once per Python path, and the audio decoders found
without loading what a decode of recordings does not need (the plugins themselves are shown in
test_io.py)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from drivers import registry

ROOT = Path(__file__).parents[2]
PLUGINS = ROOT / "tests" / "data" / "plugins"


def test_installed_plugins_are_read_once_per_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reads: list[str] = []
    real = importlib.metadata.entry_points

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    monkeypatch.syspath_prepend(str(tmp_path))  # a path not read yet
    for _ in range(3):
        assert registry.audio_decoder_class("dtmf").__name__ == "DtmfDecoder"
        assert "acme-udp" not in registry.io_driver_types()
        with pytest.raises(registry.UnknownProtocol, match="unknown protocol 'morse'"):
            registry.protocol_class("morse")
    assert reads == [registry.IO_DRIVER_GROUP, registry.ENTRY_POINT_GROUP]  # a built-in name needs none
    monkeypatch.syspath_prepend(str(PLUGINS))  # another path: read again, and the plugin is there
    assert "acme-udp" in registry.io_driver_types() and "acme-udp" in registry.io_driver_types()
    assert reads[2:] == [registry.IO_DRIVER_GROUP]


def test_audio_decoders_are_found_without_the_configuration_models() -> None:
    """A decode has no configuration: pydantic and the models would be 0.2 s of its start-up."""
    script = textwrap.dedent("""
        import sys
        from drivers.registry import audio_decoder_class, create_audio_decoder

        for name in ("dtmf", "selcall", "afsk1200", "fleetsync", "mdc1200", "dmr"):
            create_audio_decoder(name, audio_decoder_class(name).rate_for(22050))
        loaded = sorted({"config.schema", "pydantic", "drivers.io"} & set(sys.modules))
        assert not loaded, loaded
    """)
    subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True)
