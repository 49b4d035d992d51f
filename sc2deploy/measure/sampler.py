"""A power sampler thread and trapezoid integration over its timestamped samples.

Sources give instantaneous watts (``read_watts``) or cumulative joules
(``read_joules``, e.g. RAPL). Samples are ``(perf_counter_ns, value)`` pairs;
energy over a window is the integral of the power samples (or the difference
of the counter) interpolated to the window's exact start and end.
"""

import threading
import time
from typing import List, Optional, Tuple

import numpy as np

from sc2deploy.errors import DeviceError, UsageError
from sc2deploy.measure.power import SensorUnavailable

Sample = Tuple[int, float]
MAX_CONSECUTIVE_FAILURES = 10  # isolated failed reads (I2C glitches) are skipped


class Sampler:
    """Reads ``source`` every ``interval_s`` in a daemon thread until stopped."""

    def __init__(self, source, interval_s: float = 0.01):
        if interval_s <= 0:
            raise UsageError(f"sampling interval must be > 0 s, got {interval_s}")
        self.source = source
        self.interval_s = interval_s
        self.cumulative = hasattr(source, "read_joules")
        self.samples: List[Sample] = []
        self.error: Optional[str] = None
        self.failed_reads = 0
        self.thread_cpu_s = 0.0  # CPU time the sampler thread itself used
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _read(self) -> float:
        return self.source.read_joules() if self.cumulative else self.source.read_watts()

    def _run(self) -> None:
        cpu_start = time.thread_time()
        try:
            self._loop()
        finally:
            self.thread_cpu_s = time.thread_time() - cpu_start

    def _loop(self) -> None:
        next_t = time.perf_counter()
        failures = 0
        while not self._stop.is_set():
            try:
                value = self._read()
            except SensorUnavailable as exc:
                self.failed_reads += 1
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    self.error = f"{failures} reads failed in a row, last: {exc}"
                    return
            else:
                failures = 0
                self.samples.append((time.perf_counter_ns(), value))
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - time.perf_counter()))

    def __enter__(self) -> "Sampler":
        self.samples.append((time.perf_counter_ns(), self._read()))
        self._thread = threading.Thread(target=self._run, name="sc2deploy-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is None:
            try:
                self.samples.append((time.perf_counter_ns(), self._read()))
            except SensorUnavailable as err:
                self.error = str(err)

    def cpu_percent(self) -> Optional[float]:
        """The sampler thread's CPU time as % of one core over the run (its own cost)."""
        if len(self.samples) < 2:
            return None
        span = (self.samples[-1][0] - self.samples[0][0]) / 1e9
        return 100.0 * self.thread_cpu_s / span if span > 0 else None

    def rate_hz(self) -> Optional[float]:
        """Achieved sampling rate over the whole run."""
        if len(self.samples) < 2:
            return None
        span = (self.samples[-1][0] - self.samples[0][0]) / 1e9
        return (len(self.samples) - 1) / span if span > 0 else None

    def joules(self, start_ns: int, end_ns: int) -> float:
        """Energy between two perf_counter_ns instants."""
        t, v = _arrays(self.samples)
        return counter_joules(t, v, start_ns, end_ns) if self.cumulative \
            else integrate_power(t, v, start_ns, end_ns)

    def samples_in(self, start_ns: int, end_ns: int) -> int:
        t, _ = _arrays(self.samples)
        return int(np.count_nonzero((t >= start_ns) & (t <= end_ns)))


def _arrays(samples: List[Sample]):
    if len(samples) < 2:
        raise DeviceError(f"received {len(samples)} power sample(s), expected at least 2 to "
                          "integrate: the sensor stopped answering or the run was shorter than "
                          "the sampling interval; check the sensor and run longer (--runs, "
                          "--duration)")
    data = np.asarray(samples, dtype=np.float64)
    return data[:, 0], data[:, 1]


def _check_window(t: np.ndarray, start_ns: float, end_ns: float) -> None:
    if not t[0] <= start_ns <= end_ns <= t[-1]:
        raise DeviceError(f"window [{start_ns:.0f}, {end_ns:.0f}] ns lies outside the samples "
                          f"[{t[0]:.0f}, {t[-1]:.0f}] ns, expected within them: the sampler "
                          "started late or stopped early (a sensor failure); check the sensor "
                          "and profile again")


def integrate_power(t_ns: np.ndarray, watts: np.ndarray, start_ns: float, end_ns: float) -> float:
    """Trapezoid integral of power samples over [start, end], interpolated at both ends (J)."""
    _check_window(t_ns, start_ns, end_ns)
    inside = (t_ns > start_ns) & (t_ns < end_ns)
    t = np.concatenate([[start_ns], t_ns[inside], [end_ns]])
    p = np.concatenate([[np.interp(start_ns, t_ns, watts)], watts[inside],
                        [np.interp(end_ns, t_ns, watts)]])
    return float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2.0 / 1e9)


def counter_joules(t_ns: np.ndarray, joules: np.ndarray, start_ns: float, end_ns: float) -> float:
    """Difference of a cumulative energy counter, interpolated at both ends (J)."""
    _check_window(t_ns, start_ns, end_ns)
    return float(np.interp(end_ns, t_ns, joules) - np.interp(start_ns, t_ns, joules))
