"""Channel plans in the bridge's database (bridge/plans.py), on SQLite and PostgreSQL: versions per
gateway, the same plan again is no new version, a bad plan is refused naming its key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.plans import Plans
from bridge.store import Store
from config.schema import ConfigError

AUDIO = {"type": "audio", "device": "pulse", "decoders": ["selcall"]}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    yield s
    s.close()


def test_versions_history_and_identical_plans(store: Store) -> None:
    plans = Plans(store.engine)
    assert plans.current("gw1") is None and plans.history("gw1") == []
    one = [{"name": "patrol-1", "rx_mhz": 146.52, "drivers": [AUDIO]}]
    assert plans.save("gw1", one, "tech-anna") == 1
    # The same plan spelled with its defaults is the same plan: no new version.
    spelled = [{"name": "patrol-1", "rx_mhz": 146.52, "rules": [], "drivers": [{**AUDIO, "rate": 48000}]}]
    assert plans.save("gw1", spelled, "tech-ben") == 1
    two = [*one, {"name": "fire", "rx_mhz": 453.1, "mode": "NFM", "ctcss_hz": 127.3}]
    assert plans.save("gw1", two, "tech-ben") == 2
    assert plans.save("gw2", one, "tech-anna") == 1  # versions are per gateway

    current = plans.current("gw1")
    assert current is not None and current.version == 2 and current.author == "tech-ben"
    assert [c["name"] for c in current.channels] == ["patrol-1", "fire"]
    assert current.to_json() == {"version": 2, "channels": current.channels}
    assert [p.version for p in plans.history("gw1")] == [2, 1]
    assert [(p.gateway, p.version) for p in plans.all_current()] == [("gw1", 2), ("gw2", 1)]


def test_a_bad_plan_is_refused_naming_the_key(store: Store) -> None:
    plans = Plans(store.engine)
    plans.save("gw1", [{"name": "patrol-1"}], "tech-anna")
    with pytest.raises(ConfigError, match=r"plan for gw1: channels\[1\]\.rx_mhz: Input should be greater than 0"):
        plans.save("gw1", [{"name": "patrol-1"}, {"name": "fire", "rx_mhz": -3}], "tech-anna")
    with pytest.raises(ConfigError, match=r"channels\[0\]\.drivers\[0\]\.decoders: Field required"):
        plans.save("gw1", [{"name": "patrol-1", "drivers": [{"type": "audio", "device": "pulse"}]}], "tech-anna")
    with pytest.raises(ConfigError, match="channel names must be unique"):
        plans.save("gw1", [{"name": "a"}, {"name": "a"}], "tech-anna")
    with pytest.raises(ConfigError, match="operator"):
        plans.save("gw1", [{"name": "b"}], " ")
    with pytest.raises(ConfigError, match="gateway"):
        plans.save("gw/1", [{"name": "b"}], "tech-anna")
    with pytest.raises(ConfigError) as every:  # every mistake of one command, in one refusal
        plans.save("gw/1", [{"name": "a", "rx_mhz": 0}, {"name": "a", "location": -1}], "")
    assert str(every.value).splitlines() == [
        "gateway: expected a gateway's name, got 'gw/1'",
        "operator: a plan is saved by a named operator",
        "plan for gw/1: channels[0].rx_mhz: Input should be greater than 0 (got 0)",
        "plan for gw/1: channels[1].location: Input should be greater than or equal to 0 (got -1)",
        "plan for gw/1: channels[1].name: channel names must be unique, repeated: a (also channels[0])",
    ]
    current = plans.current("gw1")
    assert current is not None and current.version == 1  # nothing refused was stored
