"""``verify --host USER@HOST``: each artifact's fidelity and speed, measured on the device.

The device runs only the heads; the reference, preprocessing and statistics stay here::

    host (.venv): torch fp32 reference on the evaluation images ─ inputs.npy (float32)
    ssh: PY -m sc2deploy --version  ──────▶ installed?           (else RemoteError)
    ssh: mktemp -d                  ──────▶ DIR=$TMPDIR/sc2deploy-verify.XXXXXX
    scp -r the artifacts, job.json, inputs.npy ──────▶ DIR
    ssh: PY -m sc2deploy.targets.device_job DIR/job.json DIR/inputs.npy DIR/out
                                    ──────▶ DIR/out: symbols per artifact, machine, CPU,
                                            runtime and version, p50 latency (1 thread)
    scp -r DIR/out                  ◀────── a local temporary folder
    ssh: rm -rf DIR                 ──────▶ always (finally)
    host: fidelity_stats + the gate's verdict ─ bundle transaction ─
          manifest["artifacts"][T]["fidelity_by_cpu"]["MACHINE/CPU/RUNTIME-VERSION"]

The device job is :mod:`sc2deploy.targets.device_job` (also run by ``verify --emulate``); it
checks each copied artifact's sha256. The device's python needs sc2deploy[device] (as for
``profile --host``). Any failure
(connection, login, missing sc2deploy, the device script, a timeout) is a RemoteError
and leaves the bundle as it was: the manifest is written only after everything arrived.
"""

import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.atomic import ensure_writable
from sc2deploy.builders.build import (BuildOptions, emulation_indices, fidelity_stats,
                                      format_table, record_fidelity, subset, verify_reference,
                                      verify_row)
from sc2deploy.bundle import Bundle
from sc2deploy.errors import RemoteError, UsageError
from sc2deploy.log import logger, step
from sc2deploy.machine import fidelity_key
from sc2deploy.orchestrate.fidelity_by_cpu import fidelity_entry, split_artifacts
from sc2deploy.orchestrate.ssh.remote import (INSTALL_HINT, REMOTE_TIMEOUT_S, _cleanup,
                                              _looks_like_ssh_failure, _Remote, _stream, _tail,
                                              check_sc2deploy, connection_error,
                                              connection_inputs, interruptible, make_remote_dir)
from sc2deploy.targets.device_job import MODULE as DEVICE_JOB, read_output, stage_job

if TYPE_CHECKING:
    from sc2deploy.measure.options import RemoteOptions


def device_targets(bundle: Bundle) -> Tuple[List[str], Dict[str, str]]:
    """(artifacts the device is asked to run, {artifact: why not} for the others)."""
    return split_artifacts(bundle, lambda target: None)


def verify_remote(bundle_path: Path, remote: "RemoteOptions",
                  images: Optional[Sequence[Path]] = None,
                  options: Optional[BuildOptions] = None, host_images: Optional[int] = None,
                  timeout_s: float = REMOTE_TIMEOUT_S) -> List[Dict]:
    """verify on ``remote.host`` over ssh; records ``fidelity_by_cpu`` under the device's key.

    ``host_images``: how many evaluation images the device runs (picked evenly; default
    all). Returns verify's rows, each with ``cpu`` (the device's CPU and destination),
    ``measured_on`` (the manifest key) and the device's ``latency_p50_ms``.
    """
    from sc2deploy.targets.registry import targets

    options = options or BuildOptions()
    if not remote.host:
        raise UsageError("no host given: expected --host USER@HOST (or RemoteOptions(host=...))")
    if host_images is not None and host_images < 1:
        raise UsageError(f"--host-images {host_images}: expected at least 1")
    python = connection_inputs(remote.remote_python, remote.port, timeout_s, remote.ssh_options)
    bundle = Bundle.open(bundle_path)
    ensure_writable(bundle.path, "bundle")
    names, skipped = device_targets(bundle)
    if not names:
        raise UsageError(f"{bundle.path} has no artifact a device can run (artifacts: "
                         f"{', '.join(bundle.manifest.get('artifacts', {})) or 'none'}): build "
                         f"one first, e.g. sc2deploy build {bundle.path} --target onnx")
    reference = verify_reference(bundle, images)
    small = subset(reference, emulation_indices(len(reference.inputs),
                                                host_images or len(reference.inputs)))
    link = _Remote(remote.host, remote.port, remote.ssh_options, time.monotonic() + timeout_s,
                   timeout_s)
    with tempfile.TemporaryDirectory(prefix="sc2deploy-verify-") as tmp:
        local = Path(tmp)
        _stage(bundle, names, small.inputs, options.latency_runs, local / "send")
        device, symbols = _run_on_device(link, python, remote.remote_python, local, names)

    where = f"{device['cpu']} ({link.destination})"  # the table's "measured on"
    rows = [{"target": name, "cpu": where, "skipped": why} for name, why in skipped.items()]
    records: Dict[str, Dict[str, Dict]] = {}  # artifact -> key -> entry
    known = targets()
    for name in names:
        info = device["runs"][name]
        if "skipped" in info:
            rows.append({"target": name, "cpu": where, "skipped": info["skipped"]})
            continue
        stats = fidelity_stats(bundle, small, symbols[name], info["latency_p50_ms"], 1)
        verdict = options.verdict(known[name].precision, stats)
        runtime = info["runtime"].split(" ")[0]
        key = fidelity_key(device["machine"], device["cpu"], runtime, info["version"])
        records.setdefault(name, {})[key] = fidelity_entry(
            device["machine"], device["cpu"], False, f"{runtime} {info['version']}", stats,
            verdict)
        rows.append({**verify_row(bundle, name, known[name], stats, verdict), "cpu": where,
                     "measured_on": key})
    if records:
        record_fidelity(bundle.path, records)  # one transaction for every artifact
    return rows


def remote_lines(bundle_path: Path, rows: List[Dict], host: str,
                 options: Optional[BuildOptions] = None) -> List[str]:
    """What ``verify --host`` prints: the table, how the device timed, where it was recorded."""
    runs = (options or BuildOptions()).latency_runs
    return [format_table(rows),
            f"measured on {host} over ssh: p50 ms of {runs} inferences, 1 thread",
            f"recorded: fidelity_by_cpu of each artifact in {bundle_path}/manifest.json"]


def _stage(bundle: Bundle, names: Sequence[str], inputs: Sequence[np.ndarray],
           runs: int, folder: Path) -> None:
    """What the device needs: the artifacts, the job (with their sha256) and the inputs."""
    artifacts = bundle.manifest["artifacts"]
    for name in names:
        target = folder / "artifacts" / artifacts[name]["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle.file(artifacts[name]["file"]), target)
    stage_job(folder, bundle.model["input"],
              {n: (n, f"artifacts/{artifacts[n]['file']}", artifacts[n]["sha256"])
               for n in names}, inputs, runs, "this device")


def _run_on_device(link: _Remote, python: List[str], remote_python: str, local: Path,
                   names: Sequence[str]) -> Tuple[Dict, Dict[str, List[np.ndarray]]]:
    """Copy, run the device script, fetch its output; the remote folder is always removed."""
    check_sc2deploy(link, python, remote_python)
    remote_dir = make_remote_dir(link, "verify", "out")
    try:
        sent = sorted((local / "send").iterdir())
        size_mb = sum(p.stat().st_size for p in (local / "send").rglob("*") if p.is_file()) / 1e6
        with step(f"copying {', '.join(names)}, the manifest and the inputs ({size_mb:.1f} MB) "
                  f"to {link.label}:{remote_dir}"):
            link.check(link.run(link.scp_argv([str(p) for p in sent],
                                              link.remote_path(f"{remote_dir}/"), recursive=True),
                                "copying the bundle"), "copying the bundle")
        command = shlex.join([*python, "-m", DEVICE_JOB, f"{remote_dir}/job.json",
                              f"{remote_dir}/inputs.npy", f"{remote_dir}/out"])
        command += " >&2"  # whatever the device prints is log, never our (--json) stdout
        logger.info("• running on %s: %s", link.label, ", ".join(names))
        start = time.monotonic()
        status, returncode, stderr = _stream(link, link.ssh_argv(interruptible(remote_dir,
                                                                                command)))
        logger.info("  the device script ended after %.1f s (%s)", time.monotonic() - start,
                    status if status != "exited" else f"exit code {returncode}")
        _check_run(link, status, returncode, stderr)
        with step("fetching the symbols"):
            link.check(link.run(link.scp_argv([link.remote_path(f"{remote_dir}/out")],
                                              str(local), recursive=True),
                                "fetching the symbols"), "fetching the symbols")
    finally:
        _cleanup(link, remote_dir)
    return _read(local / "out", names, link.label)


def _check_run(link: _Remote, status: str, returncode: Optional[int], stderr: str) -> None:
    if status != "exited":
        why = ("interrupted (Ctrl-C)" if status == "interrupted" else
               f"stopped: timed out after {link.timeout:g} s (use fewer --host-images)")
        raise RemoteError(f"verify on {link.label} was {why}; the bundle is unchanged")
    if returncode == 255 and _looks_like_ssh_failure(stderr):
        raise connection_error(stderr, returncode, "running the device script", link.label)
    if returncode != 0:
        hint = f" ({INSTALL_HINT})" if "ModuleNotFoundError" in stderr else ""
        raise RemoteError(f"the device script on {link.label} failed with exit code "
                          f"{returncode}{hint}; the bundle is unchanged. Its last lines:\n"
                          f"{_tail(stderr)}")


def _read(out: Path, names: Sequence[str], label: str
          ) -> Tuple[Dict, Dict[str, List[np.ndarray]]]:
    """The device's result.json and the symbols of every artifact it ran."""
    try:
        device, symbols = read_output(out)
        absent = ", ".join(n for n in names if n not in device["runs"])
        problem = absent and f"no result for {absent}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = str(exc)
    if problem:
        raise RemoteError(f"the output fetched from {label} is incomplete or corrupt ({problem}); "
                          "expected result.json and one symbols .npy per artifact run: run it "
                          "again")
    return device, symbols
