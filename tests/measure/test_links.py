"""Link models: LoRa airtime from the SX1276 formula, framing, user profiles."""

import json

import pytest

from sc2deploy.errors import UsageError
from sc2deploy.measure.links import BUILTIN, LoRa, link_from_dict, load_link


def test_lora_sf7_airtime_matches_the_datasheet_formula():
    # SF7/125 kHz, CR 4/5, 8 preamble symbols, explicit header, CRC: 10 B -> 28 payload
    # symbols + 12.25 preamble symbols of 1.024 ms = 41.216 ms (Semtech's calculator value).
    assert LoRa(sf=7, bw_hz=125e3).frame_ms(10) == pytest.approx(41.216)


def test_lora_sf6_500k_is_the_wacv_37_5_kbit_link():
    link = BUILTIN["lora-sx1276-20dbm"]
    assert link.rate_bps == pytest.approx(37500)
    # one full 255 B frame: 433 payload symbols + 12.25 preamble, 128 us each
    assert link.delay_ms(255) == pytest.approx(445.25 * 0.128)
    assert link.delay_ms(510) == pytest.approx(2 * 445.25 * 0.128)
    assert link.frames(256) == 2
    assert link.delay_ms(256) > link.delay_ms(255)
    assert link.radio_joules(255) == pytest.approx(0.396 * 445.25 * 0.128e-3)


def test_ideal_link_is_bytes_over_rate():
    assert BUILTIN["lora-ideal-37.5k"].delay_ms(1000) == pytest.approx(8000 / 37.5)


def test_framed_link_adds_overhead_per_frame():
    ble = BUILTIN["ble-1m"]
    assert ble.delay_ms(251) == pytest.approx((251 + 14) * 8 / 1e3 + 0.3)
    assert ble.delay_ms(252) == pytest.approx((252 + 28) * 8 / 1e3 + 0.6)


def test_every_builtin_link_names_its_source():
    for link in BUILTIN.values():
        assert len(link.source) > 20, link.name


def test_user_profiles_from_json_and_yaml(tmp_path):
    (tmp_path / "l.json").write_text(json.dumps(
        {"name": "mine", "rate_bps": 8000, "tx_watts": 0.1, "source": "my bench, 2026"}))
    assert load_link(tmp_path / "l.json").delay_ms(100) == pytest.approx(100.0)
    (tmp_path / "l.yaml").write_text("name: lora12\nsource: my notes\n"
                                     "lora: {sf: 12, bw_hz: 125000}\n")
    link = load_link(str(tmp_path / "l.yaml"))
    assert link.rate_bps == pytest.approx(292.97, abs=0.01)
    assert link.frame_payload_bytes == 255


@pytest.mark.parametrize("data,message", [
    ({"name": "x", "rate_bps": 1000}, "'source' is required"),
    ({"name": "x", "source": "s"}, "'rate_bps' is required"),
    ({"name": "x", "source": "s", "rate_bps": 0}, "positive"),
    ({"name": "x", "source": "s", "rate_bps": 1, "colour": 1}, "unknown fields"),
    ({"name": "x", "source": "s", "lora": {"sf": 6, "bw_hz": 125e3}}, "implicit-header"),
    ({"name": "x", "source": "s", "lora": {"sf": 7, "bw_hz": 1, "speed": 2}}, "lora:"),
])
def test_bad_user_profiles_are_refused(data, message):
    with pytest.raises(UsageError, match=message):
        link_from_dict(data)


def test_unknown_link_names_the_builtins(tmp_path):
    with pytest.raises(UsageError, match="lora-sx1276-20dbm"):
        load_link("carrier-pigeon")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_link(tmp_path / "bad.json")


def test_eu868_duty_cycle_silences_the_radio_between_frames():
    link = BUILTIN["lora-eu868-sf7"]
    frame = LoRa(sf=7, bw_hz=125e3).frame_ms(255)
    assert link.delay_ms(255) == pytest.approx(frame)  # one frame: no silence after the last
    # three frames: 99 x the airtime of the first two frames is spent silent (1 % duty cycle)
    last = LoRa(sf=7, bw_hz=125e3).frame_ms(10)
    assert link.delay_ms(520) == pytest.approx(2 * frame + last + 2 * frame * 99)
    assert link.radio_joules(520) == pytest.approx(0.1452 * (2 * frame + last) / 1e3)


def test_frame_loss_resends_cost_airtime_energy_and_waits():
    lossless = BUILTIN["lora-sx1276-20dbm"]
    lossy = link_from_dict({"name": "lossy", "source": "a test", "tx_watts": 0.396,
                            "lora": {"sf": 6, "bw_hz": 500e3, "implicit_header": True},
                            "frame_loss": 0.2, "retry_wait_ms": 1000})
    airtime = lossless.delay_ms(600)  # 3 frames
    assert lossy.airtime_ms(600) == pytest.approx(airtime / 0.8)
    assert lossy.delay_ms(600) == pytest.approx(airtime / 0.8 + 3 * 0.25 * 1000)
    assert lossy.radio_joules(600) == pytest.approx(lossless.radio_joules(600) / 0.8)


def test_loss_and_duty_cycle_together():
    link = link_from_dict({"name": "both", "source": "a test", "rate_bps": 8000,
                           "frame_payload_bytes": 100, "duty_cycle": 0.1, "frame_loss": 0.5})
    # 200 B = 2 frames of 100 ms; 4 expected sends (400 ms); silent 9 x (400 - 100) ms
    assert link.delay_ms(200) == pytest.approx(400 + 9 * 300)


@pytest.mark.parametrize("key,value,match", [
    ("duty_cycle", 0, "duty_cycle must be a fraction"), ("duty_cycle", 1.5, "fraction"),
    ("frame_loss", 1.0, "frame_loss must be a probability"), ("frame_loss", -0.1, "probability"),
    ("retry_wait_ms", -1, "retry_wait_ms must be"), ("frame_loss", "x", "probability")])
def test_link_limits_are_checked(key, value, match):
    with pytest.raises(UsageError, match=match):
        link_from_dict({"name": "x", "source": "a test", "rate_bps": 1000, key: value})
