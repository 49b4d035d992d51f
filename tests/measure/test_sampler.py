"""Trapezoid integration and the sampler thread on known synthetic signals."""

import math
import time

import numpy as np
import pytest

from sc2deploy.errors import DeviceError, UsageError
from sc2deploy.measure.power import JetsonINA3221, RAPL
from sc2deploy.measure.sampler import Sampler, counter_joules, integrate_power

from sensor_trees import hwmon_chip, write


def test_trapezoid_is_exact_on_a_ramp_and_interpolates_the_window_ends():
    t = np.array([0, 1e9, 2e9, 3e9])
    watts = np.array([1.0, 2.0, 3.0, 4.0])  # P = 1 + t
    # integral of (1 + t) from 0.5 s to 2.5 s = 2 + (2.5^2 - 0.5^2) / 2 = 5
    assert integrate_power(t, watts, 0.5e9, 2.5e9) == pytest.approx(5.0)
    assert counter_joules(t, np.array([0.0, 10.0, 30.0, 60.0]), 0.5e9, 1.5e9) == \
        pytest.approx(15.0)
    with pytest.raises(DeviceError, match="outside the samples .* expected within them: the "
                                          "sampler started late or stopped early"):
        integrate_power(t, watts, -1, 1e9)


def test_too_few_samples_is_a_device_error():
    sampler = Sampler(SineSource(), 0.01)
    sampler.samples.append((0, 3.0))
    with pytest.raises(DeviceError, match=r"received 1 power sample\(s\), expected at least 2 "
                                          r"to integrate: the sensor stopped answering"):
        sampler.joules(0, 1)
    with pytest.raises(UsageError, match="sampling interval must be > 0 s"):  # the user's input
        Sampler(SineSource(), 0)


class SineSource:
    """Known signal P(t) = 3 + sin(2 pi t / 0.2 s) watts."""

    kind = "synthetic"

    def read_watts(self):
        t = time.perf_counter_ns() / 1e9
        return 3.0 + math.sin(2 * math.pi * t / 0.2)


def test_sampler_integrates_a_known_signal():
    with Sampler(SineSource(), 0.002) as sampler:
        start = time.perf_counter_ns()
        time.sleep(0.4)  # two full periods: the sine integrates to zero
        end = time.perf_counter_ns()
    assert sampler.joules(start, end) == pytest.approx(3.0 * (end - start) / 1e9, rel=0.03)
    assert sampler.rate_hz() > 100


def test_sampler_reads_a_jetson_tree_and_sees_changes(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_IN", 5000, 1000), ("VDD_SOC", 5000, 200)], 3)
    current = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input"
    with Sampler(JetsonINA3221(tmp_path), 0.005) as sampler:
        t0 = time.perf_counter_ns()
        time.sleep(0.3)
        t1 = time.perf_counter_ns()
        tmp = current.with_suffix(".tmp")
        tmp.write_text("2000\n")
        tmp.replace(current)  # 5 W -> 10 W, atomically like a sysfs read
        time.sleep(0.05)
        t2 = time.perf_counter_ns()
        time.sleep(0.3)
        t3 = time.perf_counter_ns()
    t1 -= 20_000_000  # keep the window a few sample periods away from the step
    assert sampler.joules(t0, t1) == pytest.approx(5.0 * (t1 - t0) / 1e9, rel=1e-6)
    assert sampler.joules(t2, t3) == pytest.approx(10.0 * (t3 - t2) / 1e9, rel=1e-6)


def test_sampler_differences_rapl_counters_across_a_wrap(tmp_path):
    zone = "sys/class/powercap/intel-rapl:0"
    write(tmp_path, f"{zone}/max_energy_range_uj", 1_000_000)
    write(tmp_path, f"{zone}/energy_uj", 900_000)
    with Sampler(RAPL(tmp_path), 0.005) as sampler:
        t0 = time.perf_counter_ns()
        time.sleep(0.05)
        write(tmp_path, f"{zone}/energy_uj", 100_000)  # wrapped: +0.2 J
        time.sleep(0.05)
        t1 = time.perf_counter_ns()
    assert sampler.joules(t0, t1) == pytest.approx(0.2)


def test_a_sensor_failing_mid_run_is_recorded_not_raised(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_IN", 5000, 1000)], 3)
    dev = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    with Sampler(JetsonINA3221(tmp_path), 0.005) as sampler:
        time.sleep(0.02)
        (dev / "curr1_input").unlink()
        time.sleep(0.2)
    assert "10 reads failed in a row" in sampler.error and "cannot read" in sampler.error
