"""The device side of ``verify --host`` and ``--emulate``: artifacts run on inputs by a python
without torch (on the device over ssh, or on an emulated aarch64 CPU)::

    python -m sc2deploy.targets.device_job JOB.json INPUTS.npy OUT
      JOB.json    {"input": NAME, "shape": [...], "where": "this device", "timing_runs": N,
                   "runs": {KEY: {"target": T, "file": F, "sha256": S or null}}}
                  F relative to JOB.json's folder (or absolute); S, when given, is checked
      INPUTS.npy  [N, 1, C, H, W] float32, preprocessed on the host
      OUT/I.npy        int32 symbols [N, 1, C', H', W'] of the I-th run that ran
      OUT/result.json  {"machine", "cpu", "cpu_model", "python",
                        "runs": {KEY: {"runtime", "version", "seconds", "latency_p50_ms",
                                       "array"} or {KEY: {"skipped": why}}}}

``timing_runs`` timed inferences of the first input follow each symbol pass (one thread, as
``verify`` measures on the host); 0 records no latency (null: under emulation, time means
nothing). The host writes the job with :func:`stage_job` and reads the output with
:func:`read_output`.
"""

import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.bundle import sha256_file
from sc2deploy.machine import core_name, cpu_model
from sc2deploy.targets.registry import get_target

MODULE = "sc2deploy.targets.device_job"  # run as ``python -m MODULE JOB.json INPUTS.npy OUT``


def stage_job(folder: Path, model_input: Dict, runs: Dict[str, Tuple[str, str, Optional[str]]],
              inputs: Sequence[np.ndarray], timing_runs: int, where: str) -> None:
    """Write ``folder``/job.json and inputs.npy; ``runs[key] = (target, file, sha256)``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "inputs.npy", np.stack(inputs).astype(np.float32), allow_pickle=False)
    (folder / "job.json").write_text(json.dumps({
        "input": model_input["name"], "shape": list(model_input["shape"]), "where": where,
        "timing_runs": int(timing_runs),
        "runs": {k: {"target": t, "file": f, "sha256": s} for k, (t, f, s) in runs.items()}}),
        encoding="utf-8")


def read_output(out: Path) -> Tuple[Dict, Dict[str, List[np.ndarray]]]:
    """(result.json, {key: symbols} of every run that ran) from the job's OUT folder."""
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    symbols = {key: list(np.load(out / entry["array"], allow_pickle=False))
               for key, entry in result["runs"].items() if "skipped" not in entry}
    return result, symbols


def run_job(job_file: Path, inputs_file: Path, out: Path) -> None:
    """Run every run of the job on the inputs; write OUT/I.npy and OUT/result.json. Exits
    (SystemExit with the reason) when a copied artifact does not match its sha256."""
    job = json.loads(job_file.read_text())
    inputs = np.load(inputs_file, allow_pickle=False)
    dists = importlib.metadata.packages_distributions()
    result = {}
    for i, (key, run) in enumerate(job["runs"].items()):
        file = job_file.parent / run["file"]
        if run["sha256"] and sha256_file(file) != run["sha256"]:
            raise SystemExit(f"{key}: the copied artifact {run['file']} does not match the "
                             "manifest's sha256 (damaged in transfer?): run it again")
        spec = get_target(run["target"])
        missing = spec.missing("run")
        if missing:
            result[key] = {"skipped": f"cannot run on {job['where']}: {missing}"}
            continue
        module = spec.runtime_module
        version = importlib.metadata.version(dists.get(module, [module])[0])
        with spec.load("runner")(file, job["shape"], job["input"], 1) as runner:
            t0 = time.perf_counter()
            symbols = np.stack([runner.infer(x) for x in inputs]).astype(np.int32)
            seconds = time.perf_counter() - t0
            times = []
            for _ in range(job["timing_runs"]):
                t = time.perf_counter()
                runner.infer(inputs[0])
                times.append(time.perf_counter() - t)
        np.save(out / f"{i}.npy", symbols, allow_pickle=False)
        result[key] = {"runtime": spec.runtime, "version": version, "seconds": seconds,
                       "latency_p50_ms": 1e3 * float(np.median(times)) if times else None,
                       "array": f"{i}.npy"}
    if "torch" in sys.modules:
        raise SystemExit("the device runtime imported torch")
    (out / "result.json").write_text(json.dumps({
        "machine": platform.machine(), "cpu": core_name(), "cpu_model": cpu_model(),
        "python": platform.python_version(), "runs": result}))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        raise SystemExit(f"usage: python -m {MODULE} JOB.json INPUTS.npy OUT (got {args})")
    job_file, inputs_file, out = map(Path, args)
    run_job(job_file, inputs_file, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
