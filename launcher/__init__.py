"""What ``pttbridge up`` starts besides the three programs, so that a new user sees the whole path working
on one machine with no radio and nothing installed: an embedded MQTT broker (:mod:`launcher.broker`) and
the demo radios, bundled serial captures replayed into pseudo-terminals (:mod:`launcher.replay`).

The demo's data (captures, recordings) is configuration data and lives in ``config/demo``;
:mod:`launcher.make_captures` writes it again after a change of the scenario.
"""
