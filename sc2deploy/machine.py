"""Which CPU and runtime a measurement was taken on: the keys of ``fidelity_by_cpu`` (core).

A key is ``MACHINE/CORE/RUNTIME-VERSION``, e.g. ``aarch64/cortex-a76/onnxruntime-1.31.1``.
Arm cores are named as qemu's ``-cpu`` names them (from /proc/cpuinfo's "CPU part"), so a
real Raspberry Pi 5 and its emulation share one key; other CPUs by their model name.
"""

import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Optional

ARM_PARTS = {"0xd03": "cortex-a53", "0xd04": "cortex-a35", "0xd05": "cortex-a55",
             "0xd07": "cortex-a57", "0xd08": "cortex-a72", "0xd09": "cortex-a73",
             "0xd0a": "cortex-a75", "0xd0b": "cortex-a76", "0xd0c": "neoverse-n1",
             "0xd41": "cortex-a78", "0xd42": "cortex-a78ae", "0xd4b": "cortex-a78c"}


def _cpuinfo(root: Path) -> str:
    try:
        return (Path(root) / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model(root: Path = Path("/")) -> Optional[str]:
    """The CPU's model line in /proc/cpuinfo (x86 "model name", Pi "Model", ARM "CPU part")."""
    for line in _cpuinfo(root).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware", "CPU part"):
            return value.strip()
    return platform.processor() or None


def core_name(root: Path = Path("/")) -> str:
    """This CPU as fidelity keys name it: the Arm core (cortex-a72 ...), else its model name."""
    for line in _cpuinfo(root).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU part" and value.strip().lower() in ARM_PARTS:
            return ARM_PARTS[value.strip().lower()]
    return cpu_model(root) or platform.machine()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-").lower() or "unknown"


def fidelity_key(machine: str, cpu: str, runtime: str, version: str) -> str:
    """``aarch64/cortex-a76/onnxruntime-1.31.1``: where an artifact's fidelity was measured."""
    return f"{slug(machine)}/{slug(cpu)}/{slug(runtime)}-{version}"


def runtime_version(module: str) -> str:
    """The installed version of the distribution that provides ``module``."""
    dist = metadata.packages_distributions().get(module, [module])[0]
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def here_key(runtime: str, module: str, root: Path = Path("/")) -> str:
    """The fidelity key of this machine for a target run by ``runtime`` (from ``module``)."""
    return fidelity_key(platform.machine(), core_name(root), runtime, runtime_version(module))


def here_entry(runtime: str, module: str, images: int, stats: dict, verdict: dict) -> dict:
    """A ``fidelity_by_cpu`` entry for a measurement taken on this machine."""
    return {"machine": platform.machine(), "cpu": core_name(), "emulated": False,
            "runtime": f"{runtime} {runtime_version(module)}", "images": images,
            "stats": stats, "verdict": verdict}


def unverified_warning(artifact: dict, name: str, runtime: str, module: str,
                       root: Path = Path("/")) -> Optional[str]:
    """A warning when an artifact's fidelity was never measured on this CPU and runtime.

    None for an artifact the bundle does not have (loading it fails with its own error) and
    for one measured here: by ``export`` (head.onnx), ``build``, ``verify`` or ``verify
    --host``/``--emulate`` with this CPU's key."""
    if not artifact:
        return None
    key = here_key(runtime, module, root)
    measured = artifact.get("fidelity_by_cpu", {})
    if key in measured:
        return None
    where = (", ".join(sorted(measured)) if measured else
             "a CPU the bundle does not record (it predates fidelity_by_cpu)")
    return (f"{name} was never verified on this CPU ({key}); its fidelity was measured on "
            f"{where}: run `sc2deploy verify BUNDLE` here (it records this CPU), on the build "
            "host run `sc2deploy verify BUNDLE --emulate CORE` for this core, or rebuild the "
            "target where it runs")
