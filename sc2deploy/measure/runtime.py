"""The device runtime: encode images from a bundle and measure every stage (torch-free).

Per image::

    file ─ load (decode) ─ preprocess (resize/crop/normalize) ─ head (runner) ─ code ─ bytes

Each stage is timed with ``perf_counter_ns``. A power sampler runs in its own
thread during an idle baseline and the measured loop; energy per image comes
from consecutive windows of the loop (repeats → confidence interval). Ctrl-C
ends the loop early and the partial result says so (``complete: false``).
"""

import platform
import resource
import signal
import sys
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.measure.baselines import image_bytes
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.errors import Interrupted, UsageError
from sc2deploy.log import logger
from sc2deploy.machine import unverified_warning
from sc2deploy.preprocess import list_images, preprocessor, sample_images
from sc2deploy.measure import conditions
from sc2deploy.measure.energy_models import get_profile, host_timed_on
from sc2deploy.measure.links import load_link
from sc2deploy.measure.options import DEFAULT_RUNS, ProfileOptions
from sc2deploy.measure.power import discover
from sc2deploy.measure.progress import Progress
from sc2deploy.results.schema import header, utc_now
from sc2deploy.measure.sampler import Sampler
from sc2deploy.measure.tuning import tuned_settings
from sc2deploy.measure.stats import mean_ci95, ns_to_ms, samples_entry, summarize
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.session import SessionSettings

STAGES = ("load", "preprocess", "head", "code")
RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "litert": "ai-edge-litert",
                    "tensorrt": "tensorrt"}
BASELINES = (("jpeg", 75), ("webp", 75))


class _Loop:
    """Per-image timestamps and sizes of the measured loop."""

    def __init__(self):
        self.stage_ns = {s: [] for s in STAGES}
        self.ends_ns: List[int] = []
        self.nbytes: List[int] = []
        self.start_ns = 0
        self.peak_rss = 0  # bytes, sampled after every image (outside the timed stages)

    def __len__(self) -> int:
        return len(self.ends_ns)


def _rss_mb(process) -> float:
    return process.memory_info().rss / 2 ** 20


def _process_peak_rss_mb() -> float:
    """Peak RSS of the whole process so far (includes work done before profiling)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def _energy_source(options: ProfileOptions):
    """(source or None, reasons for the others, kind: measured/modeled/none)."""
    if options.energy == "none":
        return None, {}, "none"
    if options.energy == "model":
        return None, {}, "modeled"
    source, reasons = discover(options.sysfs_root, options.energy, options.pmic_command)
    if source is not None:
        return source, reasons, "measured"
    if options.energy == "auto" and options.device_profile:
        return None, reasons, "modeled"
    if options.energy != "auto":
        raise UsageError(f"energy source {options.energy!r} is unavailable: "
                         f"{reasons.get(options.energy, 'not found')}")
    return None, reasons, "none"


def _model_profile(options: ProfileOptions):
    """(profile, host_timed_on): a model applies to time measured on the profile's device;
    elsewhere only with --model-host-time (else a UsageError, before anything is measured)."""
    model = get_profile(options.device_profile)
    root = Path(options.sysfs_root)
    timed_on = host_timed_on(model, conditions.device_model(root), conditions.cpu_model(root),
                             platform.machine(), options.model_host_time)
    if timed_on is not None:
        logger.info("energy: modeling a %s with this machine's time (--model-host-time): "
                    "labeled 'host-timed on %s'", model.device, timed_on)
    elif options.model_host_time:
        logger.info("energy: this machine is a %s; --model-host-time is not needed",
                    model.device)
    return model, timed_on


def profile(options: ProfileOptions) -> dict:
    """Run the measurement and return the results document (see docs/results.md)."""
    import psutil

    process = psutil.Process()
    created = utc_now()
    source, reasons, energy_kind = _energy_source(options)
    model_profile, timed_on = (_model_profile(options) if energy_kind == "modeled"
                               else (None, None))
    bundle = Bundle.open(options.bundle)
    target = get_target(options.target)
    artifact = bundle.manifest.get("artifacts", {}).get(target.name, {})
    warning = unverified_warning(artifact, target.name, target.runtime_name,
                                 target.runtime_module, options.sysfs_root)
    if warning:
        logger.warning("warning: %s", warning)
    settings, session = _session(bundle, target, options.threads)
    images = list_images(options.images) if options.images else sample_images()
    link = load_link(options.link) if options.link else None
    codec = latent_codec(bundle, options.coder)
    pre = preprocessor(bundle.preprocessing(), options.preprocess)
    cond = conditions.collect(options.sysfs_root)
    runs = options.runs if options.runs is not None or options.duration_s else DEFAULT_RUNS
    loop, interrupted, per_op, loop_end = _Loop(), False, None, None
    cpu_start = rss_start = rss_after_warmup = None
    sampler = Sampler(source, options.sample_interval_s) if source is not None else None
    idle = None
    try:
        with ExitStack() as stack:
            runner = stack.enter_context(load_runner(bundle, options.target, settings=settings))
            if sampler is not None:
                stack.enter_context(sampler)
                idle = _idle_baseline(options.idle_s)
            rss_start = _rss_mb(process)
            _warmup(runner, codec, pre, images, options.warmup, options.progress)
            rss_after_warmup = _rss_mb(process)
            cpu_start = process.cpu_times()
            _measure(runner, codec, pre, images, runs, options.duration_s, loop,
                     options.progress, process)
            loop_end = process.cpu_times(), _rss_mb(process)  # before the per-op pass
            if options.per_op:
                per_op = _per_op(bundle, options, pre, images, loop, runner)
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: keeping the %d images measured so far", len(loop))
    wall_s = (loop.ends_ns[-1] - loop.start_ns) / 1e9 if loop.ends_ns else None
    cpu_percent = None
    if wall_s:
        cpu_end = loop_end[0] if loop_end else process.cpu_times()
        cpu_percent = 100.0 * ((cpu_end.user - cpu_start.user) +
                               (cpu_end.system - cpu_start.system)) / wall_s
    rss_end = loop_end[1] if loop_end else _rss_mb(process)
    cond["temperatures_c"]["after"] = conditions.temperatures(Path(options.sysfs_root))
    latency, samples = _latency(loop)
    nbytes = np.asarray(loop.nbytes, dtype=np.float64)
    doc = {
        **header("device", not interrupted and len(loop) > 0,
                 options.label or f"{bundle.model['name']}/{options.target}", created, bundle),
        "target": target.name, "precision": " ".join(filter(None, (
            target.precision,
            bundle.manifest["artifacts"].get(target.name, {}).get("quantization")))),
        "runtime": _runtime_version(target.runtime), "executed": target.executed(),
        "coder": codec.coder, "threads": session["threads"], "session": session,
        "preprocess": pre.mode,
        "runs": {"warmup": options.warmup, "measured": len(loop), "image_files": len(images),
                 "stop": "interrupted" if interrupted else
                 ("duration" if options.duration_s else "runs")},
        "latency_ms": latency,
        "samples": samples,
        "throughput_ips": len(loop) / wall_s if wall_s else 0.0,
        "bytes": _bytes_stats(nbytes),
        "memory": {"peak_rss_mb": max(loop.peak_rss / 2 ** 20, rss_after_warmup or 0.0),
                   "process_peak_rss_mb": _process_peak_rss_mb(), "rss_start_mb": rss_start,
                   "rss_after_warmup_mb": rss_after_warmup, "rss_end_mb": rss_end,
                   "rss_growth_mb": (rss_end - rss_after_warmup
                                     if rss_after_warmup is not None else None)},
        "cpu_percent": cpu_percent,
        "conditions": cond,
        "energy": _energy(energy_kind, source, reasons, sampler, idle, loop, model_profile,
                          options.energy_repeats, timed_on),
        "link": link.summary(nbytes) if link is not None and nbytes.size else None,
        "server_ms": options.server,
    }
    doc["end_to_end_ms"] = _end_to_end(doc, link, nbytes)
    doc["baselines"] = (_baselines(images, pre, link) if options.baselines and not interrupted
                        else [])
    if options.per_op:
        doc["per_op"] = per_op or {"available": False,
                                   "reason": "per-op profile: not run (interrupted)"}
    return doc


def _per_op(bundle, options: ProfileOptions, pre, images, loop: _Loop, runner
            ) -> Optional[dict]:
    """The ``per_op`` entry, its trace events under ``trace_events`` (written beside the
    results by ``write_measured``); None when nothing was measured. ``runner`` (the measured
    loop's) runs unprofiled between the profiled runs."""
    from sc2deploy.measure.per_op import MAX_RUNS, profile_ops

    if not len(loop):
        return None
    inputs = [pre(path) for path in images[:min(len(loop), 16)]]
    head_p50 = float(np.percentile(ns_to_ms(loop.stage_ns["head"]), 50))
    entry, events = profile_ops(bundle, options.target, runner.settings, inputs,
                                min(len(loop), MAX_RUNS), max(options.warmup, 1), head_p50,
                                options.progress, reference=runner)
    if events is not None:
        entry["trace_events"] = events
    return entry


def _session(bundle: Bundle, target, threads: Optional[int]) -> Tuple[SessionSettings, dict]:
    """The settings the head runs with, and the results' ``session`` entry: --threads, else
    what ``sc2deploy tune`` chose on this CPU and runtime, else the runtime's defaults."""
    tuned = None if threads is not None else \
        tuned_settings(bundle, target.name, target.runtime_name, target.runtime_module)
    if tuned is None:
        settings = SessionSettings(threads)
        source = "--threads" if threads is not None else \
            "the runtime's defaults (sc2deploy tune has not run on this CPU)"
    else:
        settings, entry = tuned
        source = f"sc2deploy tune on this CPU: {entry['why']}"
        logger.info("session: %s (sc2deploy tune on this CPU)", settings.describe())
    return settings, {**settings.to_dict(), "source": source}


def _idle_baseline(seconds: float) -> Optional[tuple]:
    """Sleep with the sampler running; the window is integrated once sampling has ended."""
    if seconds <= 0:
        return None
    start = time.perf_counter_ns()
    time.sleep(seconds)
    return start, time.perf_counter_ns()


def _warmup(runner, codec, pre, images, count: int, show: bool) -> None:
    progress = Progress("warmup", count, enabled=show and count > 0)
    for i in range(count):
        path = images[i % len(images)]
        codec.encode(runner.infer(pre(path))[0])
        progress.update(i + 1)
    progress.close()


def _measure(runner, codec, pre, images, runs, duration_s, loop: _Loop, show: bool,
             process) -> None:
    clock = time.perf_counter_ns
    deadline = clock() + int(duration_s * 1e9) if duration_s else None
    progress = Progress("profile", duration_s or runs, "s" if duration_s else "img", show)
    stages = [loop.stage_ns[s] for s in STAGES]
    loop.start_ns = clock()
    i = 0
    try:
        while (i < runs) if deadline is None else (clock() < deadline):
            path = images[i % len(images)]
            t0 = clock()
            img = pre.load(path)  # fast mode: JPEGs decoded at reduced size
            t1 = clock()
            x = pre.transform(img)
            t2 = clock()
            symbols = runner.infer(x)[0]
            t3 = clock()
            data = codec.encode(symbols)
            t4 = clock()
            for store, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                store.append(value)
            loop.ends_ns.append(t4)
            loop.nbytes.append(len(data))
            loop.peak_rss = max(loop.peak_rss, process.memory_info().rss)
            i += 1
            done = (t4 - loop.start_ns) / 1e9 if deadline else i
            progress.update(done, f"{(t4 - t0) / 1e6:.1f} ms/img")
    finally:
        progress.close()


def _latency(loop: _Loop):
    """(``latency_ms`` summaries, ``samples``: the per-image times, bounded)."""
    times = {s: ns_to_ms(loop.stage_ns[s]) for s in STAGES}
    total = np.sum([loop.stage_ns[s] for s in STAGES], axis=0) if len(loop) else []
    times["total"] = ns_to_ms(total)
    return {s: summarize(v) for s, v in times.items()}, samples_entry(times)


def _bytes_stats(nbytes: np.ndarray) -> dict:
    if not nbytes.size:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0, "min": 0.0, "max": 0.0}
    return {"mean": float(nbytes.mean()), "p50": float(np.percentile(nbytes, 50)),
            "p99": float(np.percentile(nbytes, 99)), "min": float(nbytes.min()),
            "max": float(nbytes.max())}


def _windows(loop: _Loop, repeats: int):
    """Consecutive (start_ns, end_ns, images) windows splitting the measured loop."""
    n = len(loop)
    bounds = np.linspace(0, n, min(repeats, n) + 1).astype(int)
    starts = [loop.start_ns] + loop.ends_ns[:-1]
    return [(starts[a], loop.ends_ns[b - 1], b - a) for a, b in zip(bounds[:-1], bounds[1:])
            if b > a]


def _energy(kind, source, reasons, sampler, idle, loop, model_profile, repeats,
            timed_on=None) -> dict:
    entry = {"kind": kind, "source": None, "detail": None, "unavailable": reasons,
             "sample_rate_hz": None, "idle_watts": None, "mean_watts": None,
             "joules_per_image": None, "host_timed_on": None}
    if kind == "measured":
        entry.update(source=source.kind, detail=source.describe(),
                     sample_rate_hz=sampler.rate_hz(),
                     sampler_cpu_percent=sampler.cpu_percent(),
                     failed_reads=sampler.failed_reads)
        if sampler.error:
            entry.update(kind="none", detail=f"sensor failed during the run: {sampler.error}")
            return entry
        idle_w = sampler.joules(*idle) / ((idle[1] - idle[0]) / 1e9) if idle else None
        windows = _windows(loop, repeats)
        if not windows:
            return entry
        per_image, dynamic = [], []
        for start, end, count in windows:
            joules = sampler.joules(start, end)
            per_image.append(joules / count)
            if idle_w is not None:
                dynamic.append((joules - idle_w * (end - start) / 1e9) / count)
        total_j = sampler.joules(windows[0][0], windows[-1][1])
        span_s = (windows[-1][1] - windows[0][0]) / 1e9
        mean, ci = mean_ci95(per_image)
        entry.update(idle_watts=idle_w, mean_watts=total_j / span_s,
                     joules_per_image={"total": mean,
                                       "dynamic": float(np.mean(dynamic)) if dynamic else None,
                                       "ci95": list(ci) if ci else None,
                                       "repeats": len(windows),
                                       "samples_in_loop": sampler.samples_in(windows[0][0],
                                                                             windows[-1][1])})
    elif kind == "modeled":
        # No ci95: the spread of a model is the spread of the time, not measurement precision.
        p = model_profile
        entry.update(source=f"model:{p.name}", detail=p.source, idle_watts=p.idle_watts,
                     mean_watts=p.active_watts, host_timed_on=timed_on)
        if len(loop):
            seconds = [(end - start) / 1e9 / count
                       for start, end, count in _windows(loop, repeats)]
            dynamic = (None if p.idle_watts is None else
                       float(np.mean([(p.active_watts - p.idle_watts) * s for s in seconds])))
            entry["joules_per_image"] = {"total": float(np.mean([p.active_watts * s
                                                                  for s in seconds])),
                                         "dynamic": dynamic, "ci95": None,
                                         "repeats": len(seconds)}
    return entry


def _runtime_version(runtime: str) -> str:
    package = RUNTIME_PACKAGES.get(runtime.split()[0])
    try:
        return f"{runtime} {metadata.version(package)}" if package else runtime
    except metadata.PackageNotFoundError:
        return runtime


def _end_to_end(doc: dict, link, nbytes: np.ndarray) -> Optional[dict]:
    if link is None or not nbytes.size:
        return None
    device = doc["latency_ms"]["total"]["p50"]
    link_ms = link.delay_ms(int(round(nbytes.mean())))
    server = doc["server_ms"]["ms"] if doc["server_ms"] else None
    return {"device": device, "link": link_ms, "server": server,
            "total": device + link_ms + (server or 0.0)}


def _baselines(images, pre, link, count: int = 16) -> List[dict]:
    """JPEG/WebP of the head's input crop: bytes and device time (load+resize+crop+encode)."""
    rows = []
    for fmt, quality in BASELINES:
        sizes, times = [], []
        for path in images[:count]:
            t0 = time.perf_counter_ns()
            sizes.append(len(image_bytes(path, pre, fmt, quality)))
            times.append(time.perf_counter_ns() - t0)
        mean = float(np.mean(sizes))
        rows.append({"name": f"{fmt}-q{quality}", "bytes_mean": mean,
                     "encode_ms_p50": float(np.percentile(ns_to_ms(times), 50)),
                     "link_ms": link.delay_ms(int(round(mean))) if link else None})
    return rows


def stop_on_signals() -> None:
    """SIGINT and SIGTERM end a measurement early with partial results, even when the
    process was started with SIGINT ignored (background jobs of non-interactive shells).

    For a command's main thread: :func:`profile` and ``profile_server`` keep what they
    measured when a KeyboardInterrupt arrives."""
    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


def measure_and_write(measure, options, out: Path) -> Tuple[dict, Path]:
    """Run ``measure(options)`` (:func:`profile` or ``profile_server``) with SIGINT and
    SIGTERM ending it early; (results, where written). Partial results (``complete: false``)
    never replace an existing file: they go beside it (``OUT.partial.json``); nothing is
    written when it was stopped before measuring (Interrupted)."""
    from sc2deploy.results.schema import trace_path, write_measured

    stop_on_signals()
    try:
        doc = measure(options)
    except KeyboardInterrupt:
        raise Interrupted("interrupted before any image was measured: nothing written, "
                          "earlier files are as they were") from None
    written = write_measured(doc, out)
    per_op = doc.get("per_op") or {}
    if "trace_events" in per_op:  # written beside the results: name it as they do
        doc["per_op"] = {**{k: v for k, v in per_op.items() if k != "trace_events"},
                         "trace": trace_path(written).name}
    return doc, written
