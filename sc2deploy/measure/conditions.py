"""The conditions next to every number: device, CPU, clocks, temperatures, versions."""

import os
import platform
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional, Sequence

from sc2deploy.machine import cpu_model

PACKAGES = ("sc2deploy", "numpy", "onnxruntime", "ai-edge-litert", "tflite-runtime",
            "constriction", "pillow", "psutil", "tensorrt")


def _text(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip() or None
    except OSError:
        return None


def _command(argv: Sequence[str]) -> Optional[str]:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_model(root: Path) -> Optional[str]:
    """The board: ``/proc/device-tree/model`` (Raspberry Pi, Jetson), else the ``Model`` line
    Raspberry Pi kernels add to ``/proc/cpuinfo`` (containers may hide the device tree);
    None on machines without either (x86)."""
    model = _text(Path(root) / "proc/device-tree/model")
    if model:
        return model
    for line in (_text(Path(root) / "proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model" and value.strip():
            return value.strip()
    return None


def temperatures(root: Path) -> Dict[str, float]:
    """°C per thermal zone (``/sys/class/thermal/thermal_zone*/temp`` in m°C)."""
    temps = {}
    for zone in sorted(root.glob("sys/class/thermal/thermal_zone*")):
        value = _text(zone / "temp")
        if value is None:
            continue
        try:
            temps[_text(zone / "type") or zone.name] = int(value) / 1000.0
        except ValueError:
            continue
    return temps


def throttled() -> Optional[str]:
    """``vcgencmd get_throttled`` on a Raspberry Pi (bit flags), else None."""
    out = _command(("vcgencmd", "get_throttled"))
    return out.partition("=")[2] or out if out else None


def package_versions() -> Dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect(root: Path = Path("/")) -> dict:
    """Everything that qualifies a measurement on this machine (missing items are None)."""
    root = Path(root)
    governor = _text(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    nvpmodel = _command(("nvpmodel", "-q"))
    clocks = _command(("jetson_clocks", "--show"))
    return {
        "device_model": device_model(root),
        "cpu": cpu_model(root),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "governor": governor,
        "nvpmodel": nvpmodel.splitlines()[0] if nvpmodel else None,
        "jetson_clocks": clocks.splitlines()[0] if clocks else None,
        "throttled": throttled(),
        "temperatures_c": {"before": temperatures(root)},
        "python": platform.python_version(),
        "packages": package_versions(),
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
    }
