"""Device runtime: cold start and peak RSS vs a torch encode, and the power sampler's overhead.

    python -m benchmarks.runtime [--bundle build/demo/demo-bundle] [--image FILE] [--starts 5]
                                 [--pairs 6] [--images-per-run 100] [--threads N] [--json PATH]

Cold start (``--starts`` fresh ``python -c`` processes of each kind, interleaved,
after one untimed start of each to warm the page cache)::

    device: import sc2deploy ─ Bundle.open ─ onnx runner ─ preprocess ─ head ─ C coder
            ─ print
    torch:  import torch + sc2deploy ─ Bundle.open ─ head_from_arrays ─ preprocess ─ torch
            head ─ constriction ─ print

Cold start is measured by this (parent) process: ``perf_counter`` from just
before the spawn to the arrival of the child's one output line (interpreter
start-up included, process teardown excluded). Peak RSS is the child's own
``ru_maxrss``, printed on that line. Both children must write the same
container bytes, and the device child must not have imported torch.

Sampler overhead: ``profile()`` on the bundle with ``energy="jetson"`` reading a
fixture sysfs tree shaped like a Jetson Orin Nano's hwmon INA3221 (constant
values; no I2C, so this is the Python side of sampling: thread wake-ups, the
GIL, six small file reads per sample) vs ``energy="none"``, alternated in pairs
(the order flips every pair). Overhead = median over pairs of
``jetson / none - 1`` for ``latency_ms.total`` p50 and mean. On a shared machine
run-to-run noise can exceed the effect (the verdict then says "not
resolvable"), so the sampler thread's own CPU time is also measured (its
``pthread_getcpuclockid`` clock) during an encode loop of the same building
blocks, which other processes barely affect: CPU ms per second of sampling,
i.e. % of one core. For an encode that keeps every core busy, the slowdown lies
between that divided by the cores (the work shared perfectly) and that itself
(each sample stalls the encode: the GIL, a straggling intra-op thread).
"""

import base64
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parse, parser, positive, publish
from sc2deploy.bundle import Bundle
from sc2deploy.codec import constriction_available
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.errors import Sc2DeployError
from sc2deploy.preprocess import load_image, sample_images
from sc2deploy.measure.power import JetsonINA3221
from sc2deploy.measure.runtime import ProfileOptions, profile
from sc2deploy.measure.sampler import Sampler
from sc2deploy.targets import load_runner

OVERHEAD_TARGET_PCT = 2.0

# argv of both children: BUNDLE IMAGE THREADS ("" = the runtime's default)
_CHILD_START = """\
import time
t0 = time.perf_counter()
"""
_CHILD_REPORT = """
import base64, json, resource, sys
print(json.dumps({"import_ms": 1e3 * (t_import - t0), "work_ms": 1e3 * (t_done - t_import),
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "torch_imported": "torch" in sys.modules,
                  "container": base64.b64encode(data).decode()}), flush=True)
"""
DEVICE_CHILD = _CHILD_START + """\
import sys
from sc2deploy.bundle import Bundle
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.preprocess import load_image
from sc2deploy.targets import load_runner
t_import = time.perf_counter()
bundle = Bundle.open(sys.argv[1])
codec = latent_codec(bundle, "c")
pre = bundle.preprocessing()
with load_runner(bundle, "onnx", int(sys.argv[3]) if sys.argv[3] else None) as runner:
    data = codec.encode(runner.infer(pre.transform(load_image(sys.argv[2])))[0])
t_done = time.perf_counter()
""" + _CHILD_REPORT
TORCH_CHILD = _CHILD_START + """\
import sys
import torch
from sc2deploy.bundle import Bundle
from sc2deploy.codec import LatentCodec
from sc2deploy.export.heads import head_from_arrays
from sc2deploy.preprocess import load_image
t_import = time.perf_counter()
if sys.argv[3]:
    torch.set_num_threads(int(sys.argv[3]))
bundle = Bundle.open(sys.argv[1])
codec = LatentCodec(bundle.prior(), "constriction")
pre = bundle.preprocessing()
head = head_from_arrays(bundle.model["family"], bundle.torch_head_arrays())
with torch.inference_mode():
    symbols = head(torch.from_numpy(pre.transform(load_image(sys.argv[2]))))[0].numpy()
data = codec.encode(symbols)
t_done = time.perf_counter()
""" + _CHILD_REPORT
CHILDREN = {"device": DEVICE_CHILD, "torch": TORCH_CHILD}
SAMPLER_THREAD = "sc2deploy-sampler"  # the name sampler.py gives its thread

# Jetson Orin Nano hwmon INA3221 rails: (label, mV, mA), constant
JETSON_RAILS = (("VDD_IN", 5056, 1184), ("VDD_CPU_GPU_CV", 5048, 312),
                ("VDD_SOC", 5040, 296))


class BenchmarkError(Exception):
    """A measurement could not be made; the message says why and what to do."""


def spawn(kind: str, bundle: Path, image: Path, threads) -> dict:
    """Run one fresh child of ``kind``; its report plus the parent-measured times."""
    argv = [sys.executable, "-c", CHILDREN[kind], str(bundle), str(image),
            "" if threads is None else str(threads)]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
        line = proc.stdout.readline()
        first_line_s = time.perf_counter() - start
        proc.communicate()
        exit_s = time.perf_counter() - start
        if proc.returncode != 0 or not line.strip():
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
            raise BenchmarkError(f"the {kind} child exited with {proc.returncode} before "
                                 f"reporting; its stderr ends with:\n  " + "\n  ".join(tail))
    report = json.loads(line)
    report.update(kind=kind, cold_start_s=first_line_s, exit_s=exit_s,
                  peak_rss_mb=report.pop("peak_rss_kib") / 1024)
    return report


def cold_start(bundle: Path, image: Path, starts: int, threads) -> dict:
    for kind in CHILDREN:  # untimed: page cache and .pyc files warm for both
        spawn(kind, bundle, image, threads)
    runs = {kind: [] for kind in CHILDREN}
    for i in range(starts):
        for kind in (("device", "torch") if i % 2 == 0 else ("torch", "device")):
            runs[kind].append(spawn(kind, bundle, image, threads))
            print(f"start {i + 1}/{starts} {kind}: {runs[kind][-1]['cold_start_s']:.2f} s",
                  file=sys.stderr)
    containers = {r["container"] for kind in runs for r in runs[kind]}
    if any(r["torch_imported"] for r in runs["device"]):
        raise BenchmarkError("the device child imported torch: device code must stay torch-free")
    data = base64.b64decode(next(iter(containers)))
    result = {"starts": starts, "threads": threads, "image": image.name,
              "identical_bytes": len(containers) == 1, "container_bytes": len(data),
              "container_sha256": hashlib.sha256(data).hexdigest()}
    for kind, reports in runs.items():
        for r in reports:
            del r["container"]
        result[kind] = {key: float(np.median([r[key] for r in reports]))
                        for key in ("cold_start_s", "exit_s", "import_ms", "work_ms",
                                    "peak_rss_mb")}
        result[kind]["runs"] = reports
    result["torch_vs_device_cold_start"] = (result["torch"]["cold_start_s"]
                                            / result["device"]["cold_start_s"])
    result["torch_vs_device_peak_rss"] = (result["torch"]["peak_rss_mb"]
                                          / result["device"]["peak_rss_mb"])
    return result


def jetson_fixture(root: Path) -> Path:
    """A sysfs tree with a Jetson Orin Nano hwmon INA3221 under ``root``; returns root."""
    dev = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    dev.mkdir(parents=True)
    (dev / "name").write_text("ina3221\n")
    for k, (label, mv, ma) in enumerate(JETSON_RAILS, 1):
        (dev / f"in{k}_label").write_text(f"{label}\n")
        (dev / f"in{k}_input").write_text(f"{mv}\n")
        (dev / f"curr{k}_input").write_text(f"{ma}\n")
    return root


def sampler_cpu(bundle_path: Path, root: Path, images: int, threads) -> dict:
    """CPU time of the sampler thread itself while the main thread encodes ``images``."""
    bundle = Bundle.open(bundle_path)
    codec, pre, paths = latent_codec(bundle, "c"), bundle.preprocessing(), sample_images()
    source = JetsonINA3221(root)
    reads = 1000
    start = time.perf_counter()
    for _ in range(reads):
        source.read_watts()
    read_us = 1e6 * (time.perf_counter() - start) / reads
    with load_runner(bundle, "onnx", threads) as runner:
        def encode(i):
            codec.encode(runner.infer(pre.transform(load_image(paths[i % len(paths)])))[0])

        for i in range(5):
            encode(i)
        sampler = Sampler(source, 0.01)
        with sampler:
            thread = next((t for t in threading.enumerate() if t.name == SAMPLER_THREAD), None)
            if thread is None:
                raise BenchmarkError(f"no thread named {SAMPLER_THREAD!r}: sampler.py changed "
                                     "its thread name; update SAMPLER_THREAD here")
            clock = time.pthread_getcpuclockid(thread.ident)
            s0, p0, w0 = time.clock_gettime(clock), time.process_time(), time.perf_counter_ns()
            for i in range(images):
                encode(i)
            s1, p1, w1 = time.clock_gettime(clock), time.process_time(), time.perf_counter_ns()
        samples = sampler.samples_in(w0, w1)
    thread_s, process_s, wall_s = s1 - s0, p1 - p0, (w1 - w0) / 1e9
    return {"images": images, "read_watts_us": read_us, "samples": samples,
            "sample_rate_hz": samples / wall_s, "thread_cpu_ms_per_s": 1e3 * thread_s / wall_s,
            "thread_cpu_us_per_sample": 1e6 * thread_s / max(1, samples),
            "process_cpu_s": process_s, "thread_cpu_s": thread_s,
            "share_of_process_cpu_pct": 100.0 * thread_s / max(1e-9, process_s - thread_s),
            "pct_of_one_core": 100.0 * thread_s / wall_s,
            "cores": os.cpu_count(),
            "overhead_all_cores_busy_pct": 100.0 * thread_s / wall_s / os.cpu_count()}


def sampler_overhead(bundle: Path, pairs: int, images: int, threads) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sc2deploy-sysfs-") as tmp:
        root = jetson_fixture(Path(tmp))
        cpu = sampler_cpu(bundle, root, images, threads)
        for i in range(pairs):
            docs = {}
            for energy in (("none", "jetson") if i % 2 == 0 else ("jetson", "none")):
                docs[energy] = profile(ProfileOptions(
                    bundle=bundle, target="onnx", runs=images, threads=threads, coder="c",
                    energy=energy, sysfs_root=root, idle_s=0.5, sample_interval_s=0.01,
                    baselines=False, progress=False))
            on, off = docs["jetson"], docs["none"]
            if on["energy"]["kind"] != "measured":
                raise BenchmarkError(f"the fixture sensor was not used: {on['energy']}")
            row = {"pair": i + 1, "order": "none first" if i % 2 == 0 else "jetson first",
                   "sample_rate_hz": on["energy"]["sample_rate_hz"]}
            for stat in ("p50", "mean"):
                a, b = on["latency_ms"]["total"][stat], off["latency_ms"]["total"][stat]
                row.update({f"jetson_{stat}_ms": a, f"none_{stat}_ms": b,
                            f"overhead_{stat}_pct": 100.0 * (a / b - 1.0)})
            rows.append(row)
            print(f"pair {i + 1}/{pairs}: p50 {row['none_p50_ms']:.2f} → "
                  f"{row['jetson_p50_ms']:.2f} ms ({row['overhead_p50_pct']:+.2f} %), "
                  f"{row['sample_rate_hz']:.1f} Hz", file=sys.stderr)

    def median(key):
        return float(np.median([r[key] for r in rows]))

    none_p50 = [r["none_p50_ms"] for r in rows]
    q1, q3 = np.percentile([r["overhead_p50_pct"] for r in rows], [25, 75])
    iqr = q3 - q1

    return {"pairs": pairs, "images_per_run": images, "sample_interval_s": 0.01,
            "rails": [r[0] for r in JETSON_RAILS], "rows": rows,
            "none_p50_ms": median("none_p50_ms"), "jetson_p50_ms": median("jetson_p50_ms"),
            "none_mean_ms": median("none_mean_ms"), "jetson_mean_ms": median("jetson_mean_ms"),
            "overhead_p50_pct": median("overhead_p50_pct"),
            "overhead_mean_pct": median("overhead_mean_pct"),
            "overhead_p50_pct_range": [min(r["overhead_p50_pct"] for r in rows),
                                       max(r["overhead_p50_pct"] for r in rows)],
            "none_p50_ms_range": [min(none_p50), max(none_p50)],
            "sample_rate_hz": median("sample_rate_hz"), "thread_cpu": cpu,
            "target_pct": OVERHEAD_TARGET_PCT,
            "overhead_p50_pct_iqr": float(iqr),
            "ab_resolves_target": bool(iqr < OVERHEAD_TARGET_PCT),
            "within_target_ab": median("overhead_p50_pct") <= OVERHEAD_TARGET_PCT,
            "within_target_cpu": cpu["pct_of_one_core"] <= OVERHEAD_TARGET_PCT,
            "within_target_cpu_best_case": (cpu["overhead_all_cores_busy_pct"]
                                            <= OVERHEAD_TARGET_PCT)}


def run(bundle_path: Path, image: Path, starts: int, pairs: int, images: int, threads) -> dict:
    bundle = Bundle.open(bundle_path)  # fails early, with the reason, on a bad bundle
    if "onnx" not in bundle.manifest.get("artifacts", {}):
        raise BenchmarkError(f"bundle {bundle_path} has no 'onnx' artifact; build it first: "
                             f"sc2deploy build {bundle_path} --target onnx")
    if bundle.prior() is None:
        raise BenchmarkError(f"bundle {bundle_path} ({bundle.model['name']}) has no entropy "
                             "model; this benchmark needs a factorized-prior head")
    bundle.torch_head_arrays()  # BundleError names the missing head_state.npz
    if importlib.util.find_spec("torch") is None:
        raise BenchmarkError("torch is not installed: the comparison needs the host "
                             "environment (make venv)")
    if not constriction_available():
        raise BenchmarkError("constriction is not installed: the torch-side encode uses it "
                             "(pip install constriction, or make venv)")
    if not image.is_file():
        raise BenchmarkError(f"image not found: {image}")
    started = time.perf_counter()
    result = {"bundle": {"model": bundle.model["name"],
                         "input_shape": bundle.model["input"]["shape"],
                         "latent_shape": bundle.model["latent"]["shape"]},
              "machine": {"python": platform.python_version(), "machine": platform.machine(),
                          "cores": os.cpu_count(), "load_avg_1m_start": os.getloadavg()[0]}}
    result["cold_start"] = cold_start(bundle.path, image, starts, threads)
    result["sampler"] = sampler_overhead(bundle.path, pairs, images, threads)
    result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    result["wall_s"] = time.perf_counter() - started
    return result


def markdown(result: dict, command: str) -> str:
    cs, sp = result["cold_start"], result["sampler"]
    dev, tor = cs["device"], cs["torch"]
    shape = "×".join(str(n) for n in result["bundle"]["input_shape"])
    lines = ["## Device runtime", "", f"Command: `{command}`", "",
             f"Bundle: {result['bundle']['model']}, input {shape}; image {cs['image']}; "
             f"threads: {cs['threads'] or 'runtime default'}; load average "
             f"{result['machine']['load_avg_1m_start']:.2f} → "
             f"{result['machine']['load_avg_1m_end']:.2f}; wall {result['wall_s']:.0f} s.", "",
             f"### Cold start to the first encoded image (median of {cs['starts']} fresh "
             "processes each, interleaved)", "",
             "| process | cold start s | of which imports ms | open+load+encode ms "
             "| until exit s | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for name, r in (("device (onnxruntime + C coder)", dev),
                    ("torch (torch head + constriction)", tor)):
        lines.append(f"| {name} | {r['cold_start_s']:.2f} | {r['import_ms']:.0f} | "
                     f"{r['work_ms']:.0f} | {r['exit_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    lines += ["",
              f"- torch / device: cold start **×{cs['torch_vs_device_cold_start']:.2f}**, "
              f"peak RSS **×{cs['torch_vs_device_peak_rss']:.2f}**",
              f"- identical container bytes (all {2 * cs['starts']} processes): "
              f"**{'yes' if cs['identical_bytes'] else 'NO'}** ({cs['container_bytes']:,} B, "
              f"sha256 {cs['container_sha256'][:16]}…); the device process never imported torch",
              "- cold start = spawn → the child's output line, timed by the parent "
              "(interpreter start-up included, teardown excluded); peak RSS = the child's "
              "own ru_maxrss", "",
              f"### Power sampler overhead ({sp['pairs']} pairs × {sp['images_per_run']} "
              f"images, fixture Jetson INA3221, {1e3 * sp['sample_interval_s']:.0f} ms "
              "interval)", "",
              "| pair | order | none p50 ms | jetson p50 ms | Δ p50 % | none mean ms "
              "| jetson mean ms | Δ mean % | samples/s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sp["rows"]:
        lines.append(f"| {r['pair']} | {r['order']} | {r['none_p50_ms']:.2f} | "
                     f"{r['jetson_p50_ms']:.2f} | {r['overhead_p50_pct']:+.2f} | "
                     f"{r['none_mean_ms']:.2f} | {r['jetson_mean_ms']:.2f} | "
                     f"{r['overhead_mean_pct']:+.2f} | {r['sample_rate_hz']:.1f} |")
    lo, hi = sp["overhead_p50_pct_range"]
    nlo, nhi = sp["none_p50_ms_range"]
    tc = sp["thread_cpu"]
    verdict = {True: "met", False: "NOT met"}
    ab_verdict = (verdict[sp["within_target_ab"]] if sp["ab_resolves_target"] else
                  f"not resolvable here (interquartile range of the pairs "
                  f"{sp['overhead_p50_pct_iqr']:.1f} % > {sp['target_pct']:.0f} %)")
    lines += ["",
              f"- A/B overhead, median over pairs: p50 **{sp['overhead_p50_pct']:+.2f} %** "
              f"(pairs range {lo:+.2f} … {hi:+.2f} %), mean "
              f"**{sp['overhead_mean_pct']:+.2f} %**; target ≤ {sp['target_pct']:.0f} %: "
              f"{ab_verdict}. Noise: the sampler-off p50 alone ranged "
              f"{nlo:.2f} … {nhi:.2f} ms across pairs.",
              f"- achieved sample rate: {sp['sample_rate_hz']:.1f} Hz (median; nominal "
              f"{1 / sp['sample_interval_s']:.0f} Hz)",
              f"- sampler thread CPU during {tc['images']} encodes: "
              f"{tc['thread_cpu_ms_per_s']:.2f} ms per s ({tc['samples']} samples, "
              f"{tc['sample_rate_hz']:.1f} Hz, {tc['thread_cpu_us_per_sample']:.0f} µs per "
              f"sample; `read_watts()` alone {tc['read_watts_us']:.0f} µs) = "
              f"**{tc['pct_of_one_core']:.2f} % of one core**. Slowdown of an encode that "
              f"keeps all {tc['cores']} cores busy: from "
              f"**{tc['overhead_all_cores_busy_pct']:.2f} %** (the sampler's CPU shared by "
              f"all cores) to **{tc['pct_of_one_core']:.2f} %** (every sample stalls the "
              f"encode: GIL, a straggling intra-op thread); target ≤ {sp['target_pct']:.0f} %: "
              f"{verdict[sp['within_target_cpu_best_case']]} in the best case, "
              f"{verdict[sp['within_target_cpu']]} in the worst"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = parser(__file__, __doc__,
               epilog="The bundle needs its 'onnx' artifact (sc2deploy build BUNDLE --target onnx) "
                      "and head_state.npz; torch and constriction must be installed (make venv).")
    p.add_argument("--bundle", default="build/demo/demo-bundle", type=Path,
                   help="bundle directory (default: %(default)s)")
    p.add_argument("--image", type=Path,
                   help="image to encode at cold start (default: the first bundled sample)")
    p.add_argument("--starts", type=positive, default=5,
                   help="fresh processes of each kind (default: %(default)s)")
    p.add_argument("--pairs", type=positive, default=6,
                   help="sampler on/off pairs of profile runs (default: %(default)s)")
    p.add_argument("--images-per-run", type=positive, default=100,
                   help="measured images per profile run (default: %(default)s)")
    p.add_argument("--threads", type=positive,
                   help="intra-op threads of onnxruntime and torch (default: theirs)")
    args = parse(p, argv)
    image = args.image or sample_images()[0]
    try:
        result = run(args.bundle, image, args.starts, args.pairs, args.images_per_run,
                     args.threads)
    except (BenchmarkError, Sc2DeployError) as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    publish(markdown, result, __file__, argv, args.json)


if __name__ == "__main__":
    main()
