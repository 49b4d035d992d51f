"""``verify --emulate CPU``: each artifact's fidelity on an emulated aarch64 CPU, per CPU.

Only the head runs emulated; the reference, preprocessing and statistics stay on the host::

    host (.venv): torch fp32 reference on the evaluation images ─ inputs.npy (float32) ─┐
    qemu-aarch64-static -cpu CPU: one python per CPU, every runnable artifact's runner   │
        (onnxruntime, LiteRT; never TensorRT or host checks) on inputs.npy ─ I.npy ◄───┘
    host: fidelity_stats (agreement, ties, rate change, task) + the gate's verdict per
        artifact ─ bundle transaction ─ manifest["artifacts"][T]["fidelity_by_cpu"][KEY]

KEY is ``MACHINE/CPU/RUNTIME-VERSION``, e.g. ``aarch64/cortex-a76/onnxruntime-1.31.1``; the
host's own measurement is recorded under its key too. Emulated latency means nothing:
it is recorded as null ("emulated: no timing"). Emulation costs ~2.5 s per 224 px head
inference, so few images are used (default 4, picked evenly from the evaluation images): the
task gate's rule is the same (``gate.decide``), and on 4 images its verdict says what they cost
(undecided unless they refute: a flip rate up to 49 % cannot be ruled out by 4/4).
The emulated Python lives in the work folder (default ``build/arm``, shared with
``make arm-check``: its setup is cached by stamps). ``run_files`` (any staged file, by key)
also serves ``build --search --emulate`` (``emulation.search``). The emulated python runs
``python -m sc2deploy.targets.device_job`` (as the device of ``verify --host`` does), with no
timing.
"""

import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.atomic import ensure_writable
from sc2deploy.builders.build import (BuildOptions, emulation_indices, evaluate,
                                      fidelity_stats, format_table, record_fidelity, subset,
                                      verify_reference, verify_row)
from sc2deploy.bundle import Bundle
from sc2deploy.errors import EmulationError, UsageError
from sc2deploy.log import logger
from sc2deploy.machine import core_name, fidelity_key, runtime_version
from sc2deploy.options import option, validate
from sc2deploy.orchestrate.emulation.emulator import CPUS, ROOT, Emulator
from sc2deploy.orchestrate.fidelity_by_cpu import fidelity_entry, split_artifacts
from sc2deploy.targets.device_job import MODULE as DEVICE_JOB, read_output, stage_job

DEFAULT_WORK = ROOT / "build" / "arm"
DEFAULT_IMAGES = 4
NO_TIMING = "emulated: no timing"
EMULATED_MACHINE = "aarch64 (qemu-user)"


def _unique(cpus: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(cpus))


@dataclass(frozen=True)
class EmulateOptions:
    """The emulated aarch64 CPUs of ``verify --emulate`` and ``build --search --emulate``
    (none: no emulation), on how many images, in which work folder."""

    cpus: Tuple[str, ...] = option(
        (), flag="--emulate", repeat=True, metavar="CPU", choices=CPUS, parse=_unique,
        help="also measure on this aarch64 CPU emulated by qemu-user and record fidelity_by_cpu "
             f"in the manifest (repeatable; {', '.join(CPUS)})")
    images: int = option(DEFAULT_IMAGES, flag="--emulate-images", type=int, metavar="N",
                         help="evaluation images run under emulation (default: {default}; "
                              "~0.5-4.5 s per 224 px image and artifact)")
    work: Path = option(DEFAULT_WORK, flag="--emulate-work", type=Path, metavar="DIR",
                        help="the emulation's work folder, shared with `make arm-check` "
                             "(default: build/arm of the source checkout)")
    timeout_s: Optional[float] = option(None, type=float, help="per emulated process "
                                                              "(default: by the work to do)")

    def __post_init__(self):
        if self.images < 1:
            raise UsageError(f"--emulate-images {self.images}: expected at least 1")
        validate(self)

    def check_cpus(self) -> None:
        """Refuse to emulate no CPU."""
        if not self.cpus:
            raise UsageError("--emulate: name at least one CPU (e.g. cortex-a76)")


@dataclass
class CpuRun:
    """What one emulated CPU produced: symbols and runtime per artifact, skips, cost."""
    cpu: str
    symbols: Dict[str, List[np.ndarray]] = field(default_factory=dict)
    info: Dict[str, Dict] = field(default_factory=dict)
    seconds: float = 0.0  # the whole emulated process


def emulated_targets(bundle: Bundle) -> Tuple[List[str], Dict[str, str]]:
    """(artifacts that may run on an aarch64 CPU, {artifact: why not} for the others)."""
    return split_artifacts(bundle, lambda t: "TensorRT runs on a Jetson GPU, not on an emulated "
                           "CPU" if t.build_on == "device" or t.runtime == "tensorrt" else None)


def run_emulated(emu: Emulator, cpu: str, bundle: Bundle, names: Sequence[str],
                 inputs: Sequence[np.ndarray], timeout_s: Optional[float] = None) -> CpuRun:
    """One emulated python on ``cpu`` runs every artifact in ``names`` on ``inputs``."""
    artifacts = bundle.manifest["artifacts"]
    return run_files(emu, cpu, bundle, {n: (n, bundle.file(artifacts[n]["file"])) for n in names},
                     inputs, timeout_s)


def run_files(emu: Emulator, cpu: str, bundle: Bundle, runs: Dict[str, Tuple[str, Path]],
              inputs: Sequence[np.ndarray], timeout_s: Optional[float] = None) -> CpuRun:
    """One emulated python on ``cpu`` runs each ``runs[key] = (target, file)`` (an artifact of
    ``bundle``, or a candidate staged in it) on ``inputs``; results by key."""
    tmp_root = emu.layout.tmp
    tmp_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="verify-", dir=tmp_root))
    try:
        stage_job(folder, bundle.model["input"],
                  {k: (t, str(Path(f).resolve()), None) for k, (t, f) in runs.items()}, inputs,
                  0, "the emulated aarch64")
        out = folder / "out"
        out.mkdir()
        timeout = timeout_s or 300 + 60 * len(runs) * len(inputs)
        t0 = time.perf_counter()
        proc = emu.run_python(cpu, ["-m", DEVICE_JOB, folder / "job.json",
                                    folder / "inputs.npy", out], cwd=folder, timeout=timeout)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise EmulationError(f"{cpu}: the emulated run failed with exit code "
                                 f"{proc.returncode}:\n{tail}")
        result, symbols = read_output(out)
        return CpuRun(cpu, symbols=symbols, info=result["runs"], seconds=seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def emulated_entry(cpu: str, info: Dict, stats: Dict, verdict: Dict) -> Tuple[str, Dict]:
    """(fidelity key, ``fidelity_by_cpu`` entry) of one emulated measurement (``info``: the
    run's runtime and version)."""
    key = fidelity_key("aarch64", cpu, info["runtime"], info["version"])
    return key, fidelity_entry(EMULATED_MACHINE, cpu, True,
                               f"{info['runtime']} {info['version']}", stats, verdict)


def cost(run: CpuRun, images: int) -> Dict:
    """What emulation cost on one CPU: the whole process, and per image."""
    return {"process_s": round(run.seconds, 1), "images": images,
            "s_per_image": round(run.seconds / images, 2)}


def verify_emulated(bundle_path: Path, emulate: EmulateOptions,
                    images: Optional[Sequence[Path]] = None,
                    options: Optional[BuildOptions] = None) -> List[Dict]:
    """verify on the host and on each emulated CPU; records ``fidelity_by_cpu`` per artifact.

    Returns verify's rows, each with ``cpu`` (where it was measured) and ``measured_on`` (the
    manifest key); emulated rows have ``latency_p50_ms`` None and ``timing`` "emulated: no
    timing". Raises EmulationError when qemu or the cross compiler is missing (with the fix).
    """
    from sc2deploy.targets.registry import targets

    emulate.check_cpus()
    options = options or BuildOptions()
    bundle = Bundle.open(bundle_path)
    ensure_writable(bundle.path, "bundle")
    emu = Emulator(emulate.work, list(emulate.cpus), log=logger.info)
    emu.check_host()  # before the host measurement: refuse early
    reference = verify_reference(bundle, images)
    known = targets()
    rows: List[Dict] = []
    records: Dict[str, Dict[str, Dict]] = {}  # artifact -> key -> entry

    machine = platform.machine()
    host_cpu = core_name()
    for name in bundle.manifest.get("artifacts", {}):
        target = known.get(name)
        if target is None or target.missing("run"):
            rows.append({"target": name, "cpu": f"host {machine}",
                         "skipped": "cannot run here"})
            continue
        stats = evaluate(bundle, target, bundle.file(bundle.manifest["artifacts"][name]["file"]),
                         reference)
        verdict = options.verdict(target.precision, stats)
        version = runtime_version(target.run_requires[0]) if target.run_requires else "unknown"
        key = fidelity_key(machine, host_cpu, target.runtime_name, version)
        records.setdefault(name, {})[key] = fidelity_entry(
            machine, host_cpu, False, f"{target.runtime} {version}", stats, verdict)
        rows.append({**verify_row(bundle, name, target, stats, verdict),
                     "cpu": f"host {machine}", "measured_on": key})

    runnable, skipped = emulated_targets(bundle)
    indices = emulation_indices(len(reference.inputs), emulate.images)
    small = subset(reference, indices)
    if runnable:
        logger.info("emulation: setting up %s (cached by stamps) ...", emu.layout.work)
        emu.setup()
    for cpu in emulate.cpus:
        label = f"{cpu} (qemu)"
        for name, why in skipped.items():
            logger.info("  %s on %s: skipped (%s)", name, cpu, why)
            rows.append({"target": name, "cpu": label, "skipped": why})
        if not runnable:
            continue
        logger.info("emulation: %s runs %s on %d images ...", cpu, ", ".join(runnable),
                    len(indices))
        run = run_emulated(emu, cpu, bundle, runnable, small.inputs, emulate.timeout_s)
        per_image = []
        for name in runnable:
            info, target = run.info[name], known[name]
            if "skipped" in info:
                rows.append({"target": name, "cpu": label, "skipped": info["skipped"]})
                continue
            stats = fidelity_stats(bundle, small, run.symbols[name])
            verdict = options.verdict(target.precision, stats)
            key, entry = emulated_entry(cpu, info, stats, verdict)
            records.setdefault(name, {})[key] = entry
            rows.append({**verify_row(bundle, name, target, stats, verdict), "cpu": label,
                         "measured_on": key, "timing": NO_TIMING})
            per_image.append(f"{name} {info['seconds'] / len(indices):.2f}")
        spent = cost(run, len(indices))
        logger.info("emulation cost on %s: %.1f s for %d images (%d artifacts, process start "
                    "included) = %.2f s per image; head inference alone, s per image: %s", cpu,
                    run.seconds, len(indices), len(per_image), spent["s_per_image"],
                    ", ".join(per_image))
        for row in rows:
            if row.get("cpu") == label and "agreement_pct" in row:
                row["emulation"] = spent

    if records:
        record_fidelity(bundle.path, records)  # one transaction for every artifact
    return rows


def emulated_lines(bundle_path: Path, rows: List[Dict]) -> List[str]:
    """What ``verify --emulate`` prints: the table, each emulated CPU's cost, where it was
    recorded."""
    costs = {r["cpu"]: r["emulation"] for r in rows if r.get("emulation")}
    return [format_table(rows),
            *(f"{cpu}: {c['s_per_image']:.2f} s per image ({c['images']} images, every "
              f"artifact, {c['process_s']:.1f} s in all); {NO_TIMING}" for cpu, c in costs.items()),
            f"recorded: fidelity_by_cpu of each artifact in {bundle_path}/manifest.json"]
