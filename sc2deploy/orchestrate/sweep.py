"""``sweep``: many checkpoints x targets x hosts from one YAML file, one report.

::

    SWEEP.yaml ─ export + build per checkpoint (process pool, in parallel)
               ─ profile per (checkpoint, target, host) (one at a time: timings stay clean)
               ─ DIR/results/*.json ─ DIR/report (Pareto table across all) + DIR/sweep.json

A failed item is recorded with its error in ``sweep.json`` and the rest go on.
"""

import json
import os
import re
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sc2deploy import atomic
from sc2deploy.errors import Interrupted, Sc2DeployError, UsageError
from sc2deploy.log import logger
from sc2deploy.config_files import read_mapping
from sc2deploy.measure.options import ProfileOptions
from sc2deploy.options import from_mapping, sweep_keys

LOCAL = "local"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PROFILE_KEYS = set(sweep_keys(ProfileOptions))  # declared with the options' fields
BUILD_KEYS = {"search", "allow_low_fidelity", "min_agreement"}


@dataclass(frozen=True)
class Checkpoint:
    name: str
    model: str
    path: Optional[Path] = None  # None for the bundled demo
    input_size: Optional[int] = None


@dataclass(frozen=True)
class Sweep:
    checkpoints: Tuple[Checkpoint, ...]
    targets: Tuple[str, ...]
    hosts: Tuple[str, ...] = (LOCAL,)
    images: Optional[Path] = None
    profile: Dict[str, object] = field(default_factory=dict)  # ProfileOptions' sweep keys
    build: Dict[str, object] = field(default_factory=dict)
    workers: int = 1
    remote_python: str = "python3"


def load_sweep(path: Path, workers: Optional[int] = None) -> Sweep:
    """Read and check a sweep file; relative paths are relative to the file. ``workers``
    overrides the file's number of export/build processes."""
    path = Path(path)
    data = read_mapping(path, "sweep file")
    known = {"checkpoints", "targets", "hosts", "images", "profile", "build", "workers",
             "remote_python"}
    _no_unknown(data, known, str(path))
    base = path.parent

    def resolve(p):
        return None if p is None else (base / str(p)).resolve()

    items = data.get("checkpoints")
    if not isinstance(items, list) or not items:
        raise UsageError(f"{path}: 'checkpoints' must be a non-empty list")
    checkpoints = []
    for i, item in enumerate(items):
        where = f"{path}: checkpoints[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected a mapping (name, model, checkpoint)")
        _no_unknown(item, {"name", "model", "checkpoint", "input_size"}, where)
        name = str(item.get("name", ""))
        if not _NAME.match(name):
            raise UsageError(f"{where}: 'name' must be letters, digits, '.', '_' or '-', "
                             f"got {name!r}")
        if "model" not in item:
            raise UsageError(f"{where}: 'model' is required (e.g. ladon, entropic_student, demo)")
        checkpoints.append(Checkpoint(name, str(item["model"]), resolve(item.get("checkpoint")),
                                      item.get("input_size")))
    names = [c.name for c in checkpoints]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: checkpoint names must be unique, got {names}")
    targets = data.get("targets")
    if not isinstance(targets, list) or not targets:
        raise UsageError(f"{path}: 'targets' must be a non-empty list, e.g. [onnx, tflite]")
    profile = data.get("profile") or {}
    build = data.get("build") or {}
    from_mapping(ProfileOptions, profile, f"{path}: profile", bundle=base)  # checked now
    _no_unknown(build, BUILD_KEYS, f"{path}: build")
    in_file = data.get("workers", default_workers())
    if isinstance(in_file, bool) or not isinstance(in_file, int) or in_file < 1:
        raise UsageError(f"{path}: 'workers' must be an integer >= 1, got {in_file!r}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    workers = in_file if workers is None else workers
    hosts = data.get("hosts") or [LOCAL]
    return Sweep(tuple(checkpoints), tuple(str(t) for t in targets), tuple(map(str, hosts)),
                 resolve(data.get("images")), dict(profile), dict(build), workers,
                 str(data.get("remote_python", "python3")))


def default_workers() -> int:
    """One process per 4 cores: each build already uses several threads (2 cores here: 1)."""
    return max(1, (os.cpu_count() or 1) // 4)


def _no_unknown(data: dict, known: set, where: str) -> None:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping")
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")


def _build_options(build: dict):
    """The sweep file's ``build`` mapping (keys: BUILD_KEYS) as BuildOptions."""
    from sc2deploy.builders.build import BuildOptions
    from sc2deploy.targets.gate import GateOptions

    given = {k: v for k, v in build.items() if k != "min_agreement"}
    return BuildOptions(**given, gate=GateOptions(min_agreement=build.get("min_agreement")))


def _prepare(checkpoint: Checkpoint, targets: Tuple[str, ...], build: dict, out: Path,
             threads: int) -> dict:
    """Worker: export one checkpoint and build its targets (each failure kept apart)."""
    import torch

    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.log import configure
    from sc2deploy.builders.build import build_targets

    configure(verbose=False)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    record = {"checkpoint": checkpoint.name, "bundle": str(out), "targets": {}}
    try:
        export_bundle(ExportOptions(model=checkpoint.model, out=out,
                                    checkpoint=checkpoint.path,
                                    input_size=checkpoint.input_size, force=True))
    except Sc2DeployError as exc:
        record["error"] = f"export: {exc}"
        return record
    for name in targets:
        try:
            if name != "onnx":  # export already made and verified the onnx artifact
                build_targets(out, [name], _build_options(build))
            record["targets"][name] = "built"
        except Sc2DeployError as exc:
            record["targets"][name] = f"build failed: {exc}"
    record["seconds"] = time.perf_counter() - start
    return record


def _prepare_safely(*args) -> dict:
    try:
        return _prepare(*args)
    except Exception as exc:  # a worker must report, never take the sweep down
        return {"checkpoint": args[0].name, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "targets": {}}


def prepare_all(sweep: Sweep, out: Path) -> List[dict]:
    """Export and build every checkpoint, ``sweep.workers`` at a time."""
    workers = min(sweep.workers, len(sweep.checkpoints))
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [(c, sweep.targets, sweep.build, out / "bundles" / c.name, threads)
            for c in sweep.checkpoints]
    if workers == 1:
        return [_prepare_safely(*job) for job in jobs]
    records = []
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_prepare_safely, *job): job[0].name for job in jobs}
        for future in as_completed(futures):
            record = future.result()
            logger.info("  %s: %s", record["checkpoint"], record.get("error") or
                        f"ready in {record.get('seconds', 0):.0f} s")
            records.append(record)
    order = {c.name: i for i, c in enumerate(sweep.checkpoints)}
    return sorted(records, key=lambda r: order[r["checkpoint"]])


def _profile_one(sweep: Sweep, bundle: Path, target: str, host: str, label: str,
                 out: Path) -> dict:
    from sc2deploy.results.schema import write_measured
    from sc2deploy.measure.runtime import profile

    options = from_mapping(ProfileOptions, sweep.profile, "sweep profile", bundle=bundle,
                           target=target, images=sweep.images, label=label, progress=False)
    if host == LOCAL:
        doc = profile(options)
        written = write_measured(doc, out)  # partial results never replace an earlier run's
        if not doc["complete"]:
            raise Interrupted(f"interrupted while profiling {label}: its PARTIAL results are in "
                              f"{written}; the sweep's earlier results are as they were")
        return doc
    from sc2deploy.preprocess import sample_images
    from sc2deploy.measure.options import RemoteOptions
    from sc2deploy.orchestrate.ssh.remote import profile_on_host

    images = sweep.images or sample_images()[0].parent
    return profile_on_host(replace(options, images=images),
                           RemoteOptions(host=host, remote_python=sweep.remote_python), out)


def run_sweep(sweep: Sweep, out: Path) -> Tuple[Path, dict]:
    """Run the whole sweep; returns the report path and the summary written to sweep.json."""
    from sc2deploy.report.document import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logger.info("• exporting and building %d checkpoints x %d targets (%d workers)",
                len(sweep.checkpoints), len(sweep.targets), sweep.workers)
    prepared = prepare_all(sweep, out)
    prepare_s = time.perf_counter() - start
    items, docs = [], []
    for record in prepared:
        for target in sweep.targets:
            state = record["targets"].get(target)
            for host in sweep.hosts:
                item = {"checkpoint": record["checkpoint"], "target": target, "host": host}
                if record.get("error") or state != "built":
                    item.update(status="failed", error=record.get("error") or state)
                    logger.warning("  skipped %s/%s on %s: %s", item["checkpoint"], target,
                                   host, item["error"])
                    items.append(item)
                    continue
                label = f"{record['checkpoint']}/{target}" + ("" if host == LOCAL else f"@{host}")
                result = out / "results" / f"{label.replace('/', '_').replace('@', '_at_')}.json"
                logger.info("• profiling %s", label)
                try:
                    docs.append(_profile_one(sweep, Path(record["bundle"]), target, host,
                                             label, result))
                    item.update(status="ok", results=str(result))
                except Interrupted:
                    raise
                except Sc2DeployError as exc:
                    item.update(status="failed", error=f"profile: {exc}")
                    logger.warning("  %s failed: %s", label, exc)
                items.append(item)
    summary = {"prepare": prepared, "items": items, "prepare_seconds": prepare_s,
               "total_seconds": time.perf_counter() - start, "workers": sweep.workers}
    report = write_report(docs, out / "report") if docs else None
    summary["report"] = str(report) if report else None
    atomic.write_text(out / "sweep.json", json.dumps(summary, indent=2, default=str))
    return report, summary


def summary_lines(summary: dict, out: Path) -> List[str]:
    """What ``sc2deploy sweep`` prints: one line per item, the totals, the report."""
    items = summary["items"]
    lines = [f"{i['checkpoint']:<20} {i['target']:<14} {i['host']:<18} {i['status']}"
             + (f": {i['error']}" if i.get("error") else "") for i in items]
    ok = sum(i["status"] == "ok" for i in items)
    lines.append(f"sweep: {ok} of {len(items)} items ok in {summary['total_seconds']:.0f} s "
                 f"(export/build {summary['prepare_seconds']:.0f} s, {summary['workers']} "
                 f"workers); summary: {Path(out) / 'sweep.json'}")
    return lines + ([f"report: {summary['report']}"] if summary.get("report") else [])
