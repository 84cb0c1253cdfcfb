"""The plan form's arithmetic (console.planform) without a screen: a channel's every audio input and serial
port loads into the boxes and goes back unchanged, an edit lands on the driver shown and on no other, and
whatever is typed, every error the schema finds lands on a box the form has; a DMR channel's colour codes,
slots and polarity too, saved as the decoder takes them; rules go through their boxes with their values'
types kept, and the emergency rule follows the channel's decoders."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.plans import canonical
from console.planform import (
    AUDIO_BOXES,
    DMR_BOXES,
    PTT_BOXES,
    RECORD_BOXES,
    RULE_BOXES,
    SERIAL_BOXES,
    TRANSMIT_BOXES,
    audio_values,
    emergency_rule,
    field_errors,
    form_channel,
    form_rule,
    form_values,
    of_kind,
    rule_texts,
    serial_values,
)
from console.screens.plans import CHECKS, CHOICES, FIELDS, PICKERS, RECORD_FIELDS, RULE_FIELDS, TRANSMIT_FIELDS
from drivers.audio.dmr.decoder import DmrDecoder
from drivers.registry import create_audio_decoder

CHANNEL: dict[str, Any] = {
    "name": "yard", "rx_mhz": 453.1,
    "drivers": [
        {"type": "audio", "device": "pulse", "channels": 2, "input": 2, "decoders": ["selcall"],
         "options": {"selcall": {"standard": "CCIR"}}},
        {"type": "serial", "port": "/dev/ttyUSB0", "protocol": "kenwood", "baudrate": 4800, "parity": "E"},
        {"type": "modbus", "name": "io", "url": "tcp://127.0.0.1:5020",
         "points": [{"name": "gate", "table": "discrete_input", "address": 0}]},
        {"type": "audio", "name": "scanner", "device": "hw:2", "decoders": ["afsk1200"], "rate": 44100},
        {"port": "/dev/ttyUSB1", "protocol": "nmea", "name": "gps"},
    ],
}
# Every key the screen has a box (or a picker) for, and the two that stand for no box.
BOXES = {k for k, _ in (*FIELDS, *RULE_FIELDS, *TRANSMIT_FIELDS, *RECORD_FIELDS)} | set(CHOICES) \
    | {k for k, _ in CHECKS} | set(PICKERS) | {"", "drivers", "rules"}


def test_every_box_the_arithmetic_names_is_a_box_of_the_screen() -> None:
    named = {*AUDIO_BOXES, *DMR_BOXES, *SERIAL_BOXES, *RULE_BOXES, *TRANSMIT_BOXES, *RECORD_BOXES, *PTT_BOXES,
             *form_values({}), *rule_texts({})}
    assert named <= BOXES, named - BOXES


def with_shown(channel: dict[str, Any], audio_at: int, serial_at: int) -> dict[str, str]:
    """The form's values with ``audio_at`` and ``serial_at`` in the driver boxes."""
    drivers = channel["drivers"]
    return {**form_values(channel), **audio_values(drivers[audio_at]), **serial_values(drivers[serial_at])}


def test_each_audio_input_and_serial_port_goes_through_the_boxes_unchanged() -> None:
    stored = canonical([CHANNEL])[0]
    for audio_at in of_kind(stored["drivers"], "audio"):
        for serial_at in of_kind(stored["drivers"], "serial"):
            values = with_shown(stored, audio_at, serial_at)
            again = form_channel(values, stored, None, stored["drivers"], audio_at, serial_at)
            assert canonical([again])[0] == stored


def test_a_name_taken_is_said_on_the_name_box_of_the_driver_shown() -> None:
    stored = canonical([CHANNEL])[0]
    for audio_at, name in ((0, "scanner"), (3, "audio")):  # the first of the two named alike, or the second
        values = {**with_shown(stored, audio_at, 1), "audio_name": name}
        errors = field_errors(form_channel(values, stored, None, stored["drivers"], audio_at, 1), [], None, audio_at, 1)
        assert list(errors) == ["audio_name"] and f"two drivers named '{name}'" in errors["audio_name"]


def test_an_edit_lands_on_the_driver_shown_only() -> None:
    stored = canonical([CHANNEL])[0]
    values = {**with_shown(stored, 3, 4), "baudrate": "38400", "decoders": "afsk1200, dtmf"}
    drivers = form_channel(values, stored, None, stored["drivers"], 3, 4)["drivers"]
    assert drivers[4]["baudrate"] == 38400 and drivers[3]["decoders"] == ["afsk1200", "dtmf"]
    assert drivers[:3] == stored["drivers"][:3]


def test_the_card_s_channel_count_and_the_input_on_it_are_set_and_checked_together() -> None:
    """A radio on the third input of a four-channel interface: both boxes are needed, and each says its
    own mistake."""
    stored = canonical([CHANNEL])[0]

    def errors(**typed: str) -> dict[str, str]:
        values = {**with_shown(stored, 3, 1), **typed}
        channel = form_channel(values, stored, None, stored["drivers"], 3, 1)
        return field_errors(channel, [], None, 3, 1)

    assert with_shown(stored, 0, 1)["channels"] == "2" and with_shown(stored, 3, 1)["channels"] == ""
    values = {**with_shown(stored, 3, 1), "channels": "4", "input": "3"}
    scanner = form_channel(values, stored, None, stored["drivers"], 3, 1)["drivers"][3]
    assert (scanner["channels"], scanner["input"]) == (4, 3) and errors(channels="4", input="3") == {}
    assert list(errors(input="3")) == ["input"] and "1 channel(s)" in errors(input="3")["input"]
    assert list(errors(channels="0", input="1")) == ["channels"]
    assert list(errors(channels="four")) == ["channels"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 3]), st.sampled_from([1, 4]),
       st.fixed_dictionaries({k: st.text(max_size=12) for k in ("device", "channels", "input", "decoders", "audio_name",
                                                                  *SERIAL_BOXES)}))
def test_whatever_is_typed_every_error_has_a_box(audio_at: int, serial_at: int, typed: dict[str, str]) -> None:
    stored = canonical([CHANNEL])[0]
    values = {**with_shown(stored, audio_at, serial_at), **typed}
    channel = form_channel(values, stored, None, stored["drivers"], audio_at, serial_at)
    errors = field_errors(channel, [], None, audio_at, serial_at)
    assert set(errors) <= BOXES
    assert not set(errors) & set(PICKERS)  # the other inputs and ports are sound: nothing on their pickers
    # The drivers not in the boxes are as they were: an error there can only be the boxes' doing.
    others = [n for n in range(len(stored["drivers"])) if n not in (audio_at, serial_at)]
    assert [channel["drivers"][n] for n in others] == [stored["drivers"][n] for n in others]


RADIO: dict[str, Any] = {
    "name": "marine-16", "rx_mhz": 156.8, "receive_only": True, "power_w": 25.0, "mode": "FM", "location": 16,
    "radio_name": "SEA 16", "step_khz": 25.0, "skip": "P", "comment": "distress  ",
}


@pytest.mark.parametrize(("tones", "shown"), [
    ({}, ""),
    ({"ctcss_hz": 100.0}, "100.0"),
    ({"dcs_code": "023", "dcs_polarity": "NR"}, "D023 NR"),
    ({"tone_mode": "Tone", "tx_ctcss_hz": 123.0}, "Tone 123.0"),
    ({"tone_mode": "TSQL-R", "ctcss_hz": 136.5}, "TSQL-R 136.5"),
    ({"tone_mode": "DTCS-R", "dcs_code": "754"}, "DTCS-R D754"),
    ({"tone_mode": "Cross", "cross_mode": "Tone->DTCS", "tx_ctcss_hz": 127.3, "rx_dcs_code": "411"}, "127.3->D411"),
    ({"tone_mode": "Cross", "cross_mode": "DTCS->", "dcs_code": "065", "dcs_polarity": "RN"}, "D065-> RN"),
    ({"tone_mode": "Cross", "cross_mode": "->Tone", "ctcss_hz": 151.4}, "->151.4"),
])
def test_power_receive_only_and_every_tone_mode_go_through_the_boxes_unchanged(
        tones: dict[str, Any], shown: str) -> None:
    """What CHIRP keeps is shown (TX 'off', the power, the tone in one box) and comes back as it was;
    what the form has no box for (location, the radio's name, step, skip, comment) is carried over."""
    stored = canonical([{**RADIO, **tones}])[0]
    values = form_values(stored)
    assert (values["tx_mhz"], values["power"], values["tone"]) == ("off", "25.0", shown)
    assert canonical([form_channel(values, stored)])[0] == stored


def test_the_radio_boxes_set_what_they_say() -> None:
    values = {**form_values(CHANNEL), "tx_mhz": "OFF", "power": "5", "tone": "Tone 88.5", "mode": "auto"}
    channel = form_channel(values, CHANNEL)
    assert (channel["receive_only"], channel["power_w"], channel["mode"]) == (True, 5, "Auto")
    assert (channel["tone_mode"], channel["tx_ctcss_hz"]) == ("Tone", 88.5) and "tx_mhz" not in channel
    assert field_errors(channel, []) == {}
    assert list(field_errors({**channel, "tx_mhz": 453.2}, [])) == ["tx_mhz"]  # receive-only has no TX MHz


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({k: st.text(max_size=12) | st.sampled_from(["off", "100.0", "D023", "Tone 67.0",
                                                                        "->D023", "5", "-1", "NFM", "D999 NR"])
                              for k in ("rx_mhz", "tx_mhz", "mode", "tone", "power")}))
def test_whatever_is_typed_in_the_radio_boxes_every_error_has_a_box(typed: dict[str, str]) -> None:
    stored = canonical([{**CHANNEL, **RADIO, "name": "yard"}])[0]
    channel = form_channel({**with_shown(stored, 0, 1), **typed}, stored, None, stored["drivers"], 0, 1)
    errors = field_errors(channel, [], None, 0, 1)
    assert set(errors) <= BOXES
    assert set(errors) <= {"rx_mhz", "tx_mhz", "mode", "tone", "power"}  # the boxes typed in, and no other


# A repeater's outbound channel heard on slot 1's colour code 1 by an inverting receiver, and DTMF beside it.
DMR_RPT: dict[str, Any] = {
    "name": "dmr-rpt",
    "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dmr", "dtmf"],
                 "options": {"dmr": {"color_codes": 1, "slots": [1, 2], "invert": True},
                             "dtmf": {"interdigit_s": 0.5}}}],
}


def dmr_typed(**typed: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The DMR channel with ``typed`` in its boxes, and the errors the form shows."""
    stored = canonical([DMR_RPT])[0]
    channel = form_channel({**form_values(stored), **typed}, stored)
    return channel, field_errors(channel, [], None, 0, None)


def test_dmr_options_go_through_the_boxes_unchanged() -> None:
    stored = canonical([DMR_RPT])[0]
    values = form_values(stored)
    assert (values["dmr_color_codes"], values["dmr_slots"], values["dmr_invert"]) == ("1", "", "1")
    # colour code 1 stays a number and "both slots" written out stays written out: nothing changes.
    assert canonical([form_channel(values, stored)])[0] == stored


def test_dmr_options_typed_are_saved_as_the_decoder_takes_them() -> None:
    channel, errors = dmr_typed(dmr_color_codes="1, 3", dmr_slots="2", dmr_invert="")
    assert errors == {}
    options = canonical([channel])[0]["drivers"][0]["options"]
    assert options == {"dmr": {"color_codes": [1, 3], "slots": [2]}, "dtmf": {"interdigit_s": 0.5}}
    decoder = create_audio_decoder("dmr", None, options["dmr"])
    assert isinstance(decoder, DmrDecoder) and decoder.color_codes == {1, 3} and decoder.slots == {2}
    assert not decoder.invert
    # Every box back to its default: no dmr table left (from slot 2 back to both slots, the default);
    # dmr no longer decoded: its options go with it.
    channel, errors = dmr_typed(dmr_color_codes="", dmr_slots="", dmr_invert="")
    assert errors == {} and channel["drivers"][0]["options"]["dmr"] == {"slots": [1, 2]}  # as it was written
    slot_2 = canonical([dmr_typed(dmr_color_codes="", dmr_slots="2", dmr_invert="")[0]])[0]
    channel = form_channel({**form_values(slot_2), "dmr_slots": ""}, slot_2)
    assert channel["drivers"][0]["options"] == {"dtmf": {"interdigit_s": 0.5}}
    channel, errors = dmr_typed(decoders="dtmf", dmr_color_codes="7")
    assert errors == {} and channel["drivers"][0]["options"] == {"dtmf": {"interdigit_s": 0.5}}


def test_a_wrong_colour_code_is_said_on_its_box_naming_the_key() -> None:
    for typed, written in (("16", "[16]"), ("x", "['x']"), ("1 2x", "[1, '2x']"), ("-1", "[-1]"), ("1.5", "['1.5']")):
        _, errors = dmr_typed(dmr_color_codes=typed)
        assert errors == {"dmr_color_codes": "drivers[0]: options.dmr.color_codes: Value error, expected 0..15 or "
                                             f"a non-empty list of them, got {written}"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=16), st.sampled_from([v for _, v in CHOICES["dmr_slots"]]), st.sampled_from(["", "1"]))
def test_whatever_colour_codes_are_typed_the_error_is_on_their_box_or_the_decoder_takes_them(
        text: str, slots: str, invert: str) -> None:
    channel, errors = dmr_typed(dmr_color_codes=text, dmr_slots=slots, dmr_invert=invert)
    assert set(errors) <= {"dmr_color_codes"}
    if not errors:
        options = canonical([channel])[0]["drivers"][0]["options"].get("dmr", {})
        decoder = create_audio_decoder("dmr", None, options)
        assert isinstance(decoder, DmrDecoder) and decoder.invert == bool(invert)
        assert decoder.slots == ({int(slots)} if slots else {1, 2})


def test_a_rule_goes_through_the_boxes_unchanged_its_values_keeping_their_types() -> None:
    rule = {"when": {"protocol": "ccir", "status": [98, 99], "channel": 3}, "match": {"digits": r"(\d{5})9 x"},
            "kind": "alert", "label": "gate panic", "unit": "ccir:{1}"}
    texts = rule_texts(rule)
    assert texts == {"rule_kind": "alert", "rule_label": "gate panic", "rule_unit": "ccir:{1}",
                     "rule_when": "protocol=ccir status=98|99 channel=3", "rule_match": r"digits=(\d{5})9 x"}
    assert form_rule(texts, rule) == (rule, {})
    # A value typed anew is text (the schema reads it); one left as it was keeps its number.
    edited, errors = form_rule({**texts, "rule_when": "protocol=zvei1 status=98|99 channel=4"}, rule)
    assert errors == {} and edited["when"] == {"protocol": "zvei1", "status": [98, 99], "channel": "4"}


def test_boxes_that_are_not_pairs_are_said_on_their_box() -> None:
    texts = {**rule_texts({}), "rule_when": "protocol", "rule_match": "digits status=99"}
    rule, errors = form_rule(texts)
    assert rule == {"kind": "alert"}
    assert errors == {"rule_when": "when: expected key=value pairs separated by spaces, got 'protocol'",
                      "rule_match": "match: expected key=value pairs separated by spaces, got 'digits'"}


def test_the_emergency_rule_follows_the_first_decoder_that_has_one() -> None:
    dtmf = emergency_rule(["afsk1200", "dtmf", "selcall"], "CCIR")
    assert dtmf is not None and dtmf["unit"] == "dtmf:{1}" and dtmf["match"] == {"digits": r"\*911\*(\d{4})#"}
    selcall = emergency_rule(["selcall", "dtmf"], "CCIR")
    assert selcall is not None and selcall["when"] == {"protocol": "ccir"} and selcall["unit"] == "ccir:{1}"
    default = emergency_rule(["selcall"], "")
    assert default is not None and default["when"] == {"protocol": "zvei1"}  # the decoder's default standard
    assert emergency_rule(["afsk1200", "mdc1200"], "") is None
    # Each is a rule the schema takes, on a channel that has its decoder.
    for decoders, rule in ((["dtmf"], dtmf), (["selcall"], selcall)):
        channel = {"name": "c", "drivers": [{"type": "audio", "device": "pulse", "decoders": decoders}],
                   "rules": [rule]}
        assert field_errors(channel, []) == {}
