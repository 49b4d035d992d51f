"""Trapezoid integration and the sampler thread on known synthetic signals."""

import math
import time

import numpy as np
import pytest

from sc2deploy.errors import DeviceError, UsageError
from sc2deploy.measure.power import JetsonINA3221, RAPL
from sc2deploy.measure.sampler import Sampler, counter_joules, integrate_power

from tests.helpers.sensor_trees import hwmon_chip, write


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
    """Known signal P(t) = 3 + sin(2 pi t / 0.2 s) watts; records when each value was read."""

    kind = "synthetic"
    period_s = 0.2

    def __init__(self):
        self.reads = []  # perf_counter_ns of each read, in order

    def read_watts(self):
        self.reads.append(time.perf_counter_ns())
        return 3.0 + math.sin(2 * math.pi * self.reads[-1] / 1e9 / self.period_s)

    def joules(self, start_ns, end_ns):
        """The exact integral of P over [start, end]."""
        w = 2 * math.pi / self.period_s
        return 3.0 * (end_ns - start_ns) / 1e9 + \
            (math.cos(w * start_ns / 1e9) - math.cos(w * end_ns / 1e9)) / w


def wait_until(condition, what, timeout_s=10.0):
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.001)


def test_sampler_integrates_a_known_signal():
    source = SineSource()
    with Sampler(source, 0.002) as sampler:
        start = time.perf_counter_ns()
        time.sleep(0.4)  # about two periods; the window is whatever it measures
        end = time.perf_counter_ns()
    t = np.array([s for s, _ in sampler.samples], dtype=np.float64)
    assert len(source.reads) == len(t)  # no read failed: reads[i] is samples[i]'s value
    h = np.diff(t) / 1e9
    span = (t[1:] > start) & (t[:-1] < end)  # sample intervals that overlap the window
    w = 2 * math.pi / source.period_s
    # The error allowed: the trapezoid's (and the ends' interpolation's) on each interval h,
    # <= max|P''| h^3 / 8 with |P''| <= w^2; and a sample is stamped after its read, so its
    # value is off by <= max|P'| lag = w lag (microseconds, unless preempted in between).
    lag = (t - np.array(source.reads, dtype=np.float64)) / 1e9
    stale = np.maximum(lag[:-1], lag[1:])[span]
    tolerance = np.sum(w * w * h[span] ** 3 / 8 + w * h[span] * stale)
    assert sampler.joules(start, end) == pytest.approx(source.joules(start, end), rel=0,
                                                       abs=tolerance)
    assert tolerance < 0.03 * source.joules(start, end)  # never looser than a 3 % check
    assert sampler.rate_hz() > 100


def test_sampler_reads_a_jetson_tree_and_sees_changes(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_IN", 5000, 1000), ("VDD_SOC", 5000, 200)], 3)
    current = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input"
    with Sampler(JetsonINA3221(tmp_path), 0.005) as sampler:
        t0 = time.perf_counter_ns()
        time.sleep(0.3)
        wait_until(lambda: sampler.samples[-1][0] > t0, "no sample after t0")
        t1 = sampler.samples[-1][0]  # read before the change: every sample up to it is 5 W
        tmp = current.with_suffix(".tmp")
        tmp.write_text("2000\n")
        tmp.replace(current)  # 5 W -> 10 W, atomically like a sysfs read
        wait_until(lambda: sampler.samples[-1][1] == 10.0, "no sample read 10 W")
        t2 = next(t for t, watts in list(sampler.samples) if watts == 10.0)  # 10 W from here
        time.sleep(0.3)
        t3 = time.perf_counter_ns()
    assert sampler.joules(t0, t1) == pytest.approx(5.0 * (t1 - t0) / 1e9, rel=1e-6)
    assert sampler.joules(t2, t3) == pytest.approx(10.0 * (t3 - t2) / 1e9, rel=1e-6)


def test_sampler_differences_rapl_counters_across_a_wrap(tmp_path):
    zone = "sys/class/powercap/intel-rapl:0"
    write(tmp_path, f"{zone}/max_energy_range_uj", 1_000_000)
    write(tmp_path, f"{zone}/energy_uj", 900_000)
    with Sampler(RAPL(tmp_path), 0.005) as sampler:
        t0 = time.perf_counter_ns()
        wait_until(lambda: sampler.samples[-1][0] > t0, "no sample after t0")  # 0 J at t0
        write(tmp_path, f"{zone}/energy_uj", 100_000)  # wrapped: +0.2 J
        seen = len(sampler.samples)  # a read in flight may precede the write, the next cannot
        wait_until(lambda: len(sampler.samples) > seen + 1, "no sample read the new counter")
        t1 = time.perf_counter_ns()  # samples on both sides read the new counter
    assert sampler.joules(t0, t1) == pytest.approx(0.2)


def test_a_sensor_failing_mid_run_is_recorded_not_raised(tmp_path):
    hwmon_chip(tmp_path, "1-0040", [("VDD_IN", 5000, 1000)], 3)
    dev = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    with Sampler(JetsonINA3221(tmp_path), 0.005) as sampler:
        wait_until(lambda: len(sampler.samples) > 1, "the sampler thread read nothing")
        (dev / "curr1_input").unlink()
        wait_until(lambda: sampler.error is not None, "the sampler never gave up")
    assert "10 reads failed in a row" in sampler.error and "cannot read" in sampler.error
