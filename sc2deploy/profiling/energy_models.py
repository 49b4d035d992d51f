"""Modeled energy: time x a device power profile (used only where no sensor exists).

Every number carries its source. Results computed from these are labeled
"modeled" everywhere and never mixed with measurements.
"""

from dataclasses import dataclass
from typing import Dict, Optional

from sc2deploy.errors import UsageError


# --energy: a sensor kind (sc2deploy.profiling.power), "auto", "model" (a profile below) or "none"
ENERGY_CHOICES = ("auto", "jetson", "rpi5", "ina2xx", "rapl", "model", "none")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    active_watts: float  # whole board while the head runs
    idle_watts: Optional[float]  # whole board idle (None: not sourced → no dynamic energy)
    source: str


PROFILES: Dict[str, DeviceProfile] = {p.name: p for p in (
    DeviceProfile("rpi4", 5.4, 2.2,
                  "Raspberry Pi 4 B at the USB supply, USB-C tester: idle 2.2 W, high CPU load "
                  "5.4 W (chipwired.com/raspberry-pi-power-use, 36 measurements)"),
    DeviceProfile("jetson-nano", 10.0, None,
                  "Jetson Nano nvpmodel MAXN power budget 10 W (NVIDIA Jetson Nano developer "
                  "guide, power modes); an upper bound, idle not sourced"),
    DeviceProfile("jetson-nano-5w", 5.0, None,
                  "Jetson Nano nvpmodel 5W mode budget (NVIDIA Jetson Nano developer guide); an "
                  "upper bound, idle not sourced"),
    DeviceProfile("jetson-orin-nano", 15.0, None,
                  "Jetson Orin Nano 8GB nvpmodel 15 W mode budget (NVIDIA Jetson Linux developer "
                  "guide, power modes); an upper bound, idle not sourced"),
    DeviceProfile("jetson-orin-nano-7w", 7.0, None,
                  "Jetson Orin Nano 7 W mode budget (NVIDIA Jetson Linux developer guide); an "
                  "upper bound, idle not sourced"),
)}


def get_profile(name: Optional[str]) -> DeviceProfile:
    if name is None:
        raise UsageError("--energy model needs --device-profile NAME; known: "
                         f"{', '.join(PROFILES)}")
    if name not in PROFILES:
        hint = " (the Pi 5 has a PMIC sensor: use --energy rpi5)" if name == "rpi5" else ""
        raise UsageError(f"unknown device profile {name!r}{hint}; known: {', '.join(PROFILES)}")
    return PROFILES[name]
