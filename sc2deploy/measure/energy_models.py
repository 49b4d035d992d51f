"""Modeled energy: time x a device power profile (used only where no sensor exists).

Every number carries its source. Results computed from these are labeled
"modeled" everywhere and never mixed with measurements.

A profile describes one device, so it is applied only to time measured on that
device: the machine's device model (``/proc/device-tree/model``, see
:func:`sc2deploy.measure.conditions.device_model`) must match the profile's
``device_pattern``. Elsewhere ``profile`` refuses, unless ``--model-host-time``
asks for the model anyway; such results say "host-timed on CPU".
"""

import re
from dataclasses import dataclass
from typing import Dict, Optional

from sc2deploy.errors import UsageError


# --energy: a sensor kind (sc2deploy.measure.power), "auto", "model" (a profile below) or "none"
ENERGY_CHOICES = ("auto", "jetson", "rpi5", "ina2xx", "rapl", "model", "none")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    active_watts: float  # whole board while the head runs
    idle_watts: Optional[float]  # whole board idle (None: not sourced → no dynamic energy)
    source: str
    device: str  # the board the numbers are for
    device_pattern: str  # regular expression searched in the machine's device model

    def matches(self, device_model: Optional[str]) -> bool:
        """Whether a machine with this device model is the profile's device."""
        return bool(device_model) and re.search(self.device_pattern, device_model) is not None


PI4 = "Raspberry Pi 4 Model B"
NANO = r"\bJetson Nano\b"  # "NVIDIA Jetson Nano Developer Kit" (and 2GB), not "Jetson Orin Nano"
ORIN_NANO = r"\bJetson Orin Nano\b"  # "NVIDIA Jetson Orin Nano Developer Kit" (and "... Super")

PROFILES: Dict[str, DeviceProfile] = {p.name: p for p in (
    DeviceProfile("rpi4", 5.4, 2.2,
                  "Raspberry Pi 4 B at the USB supply, USB-C tester: idle 2.2 W, high CPU load "
                  "5.4 W (chipwired.com/raspberry-pi-power-use, 36 measurements)",
                  PI4, r"^Raspberry Pi 4 Model B\b"),
    DeviceProfile("jetson-nano", 10.0, None,
                  "Jetson Nano nvpmodel MAXN power budget 10 W (NVIDIA Jetson Nano developer "
                  "guide, power modes); an upper bound, idle not sourced",
                  "NVIDIA Jetson Nano", NANO),
    DeviceProfile("jetson-nano-5w", 5.0, None,
                  "Jetson Nano nvpmodel 5W mode budget (NVIDIA Jetson Nano developer guide); an "
                  "upper bound, idle not sourced",
                  "NVIDIA Jetson Nano", NANO),
    DeviceProfile("jetson-orin-nano", 15.0, None,
                  "Jetson Orin Nano 8GB nvpmodel 15 W mode budget (NVIDIA Jetson Linux developer "
                  "guide, power modes); an upper bound, idle not sourced",
                  "NVIDIA Jetson Orin Nano", ORIN_NANO),
    DeviceProfile("jetson-orin-nano-7w", 7.0, None,
                  "Jetson Orin Nano 7 W mode budget (NVIDIA Jetson Linux developer guide); an "
                  "upper bound, idle not sourced",
                  "NVIDIA Jetson Orin Nano", ORIN_NANO),
)}


def get_profile(name: Optional[str]) -> DeviceProfile:
    if name is None:
        raise UsageError("--energy model needs --device-profile NAME; known: "
                         f"{', '.join(PROFILES)}")
    if name not in PROFILES:
        hint = " (the Pi 5 has a PMIC sensor: use --energy rpi5)" if name == "rpi5" else ""
        raise UsageError(f"unknown device profile {name!r}{hint}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


def host_name(cpu: Optional[str], machine: Optional[str] = None) -> str:
    """How a machine is named in "host-timed on ...": its CPU model, else its architecture."""
    return cpu or machine or "an unknown CPU"


def host_timed_on(profile: DeviceProfile, device_model: Optional[str], cpu: Optional[str],
                  machine: Optional[str], model_host_time: bool) -> Optional[str]:
    """None when this machine is the profile's device; else, with ``model_host_time``, the
    CPU whose time is modeled; else a UsageError (raised before anything is measured)."""
    if profile.matches(device_model):
        return None
    host = host_name(cpu, machine)
    if model_host_time:
        return host
    detected = (f"device model {device_model!r}" if device_model
                else "no device model (no /proc/device-tree/model, no Model line in "
                     "/proc/cpuinfo)")
    raise UsageError(
        f"--device-profile {profile.name} is for a {profile.device}, but this machine is not "
        f"one (detected: {detected}, CPU {host!r}): its energy would be this machine's time x "
        f"another device's power. Run profile on the device (--host USER@DEVICE), or pass "
        f"--model-host-time to model anyway with this machine's timings (labeled "
        f"'host-timed on {host}')")
