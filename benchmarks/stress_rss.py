"""RSS over many encodes in one process through the device runtime's building blocks.

    python -m benchmarks.stress_rss [--bundle build/demo/demo-bundle] [--images 10000]
                                    [--warmup 20] [--every 500] [--max-growth-mb 20]
                                    [--target onnx] [--coder c] [--threads N] [--json PATH]

The loop of ``sc2deploy profile`` (energy none, no baselines), written out here
so that RSS can be read between images::

    Bundle.open ─ latent_codec ─ load_runner ─ warmup ─ RSS ─┐
        ┌────────────────────────────────────────────────────┘
        └ N × (load_image ─ transform ─ infer ─ encode), RSS every --every images

Images cycle through the bundled samples (or ``--image-dir``). Every repeat of
an image must give the same container bytes. Exits with status 1 when RSS
after the last image exceeds RSS after the warmup by more than
``--max-growth-mb`` (or when bytes differ); a 96 px bundle
(``sc2deploy export demo --input-size 96``) keeps 10,000 images short.
"""

import hashlib
import resource
import sys
import time
from pathlib import Path

import psutil

from benchmarks.common import non_negative, parse, parser, positive, publish
from sc2deploy.bundle import Bundle
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.errors import Sc2DeployError
from sc2deploy.preprocess import list_images, load_image, sample_images
from sc2deploy.measure.progress import Progress
from sc2deploy.targets import load_runner


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2 ** 20


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB (bytes on macOS)
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024


def run(bundle_path: Path, images: int, warmup: int, every: int, target: str, coder: str,
        threads, image_dir) -> dict:
    process = psutil.Process()
    started = time.perf_counter()
    bundle = Bundle.open(bundle_path)
    paths = list_images(image_dir) if image_dir else sample_images()
    codec = latent_codec(bundle, coder)
    pre = bundle.preprocessing()
    digests = {}
    mismatches = 0
    curve = []
    with load_runner(bundle, target, threads) as runner:
        rss_loaded = rss_mb(process)
        for i in range(warmup):
            codec.encode(runner.infer(pre.transform(load_image(paths[i % len(paths)])))[0])
        rss_after_warmup = rss_mb(process)
        progress = Progress("stress", images)
        loop_start = time.perf_counter()
        for i in range(images):
            path = paths[i % len(paths)]
            data = codec.encode(runner.infer(pre.transform(load_image(path)))[0])
            digest = hashlib.sha256(data).digest()
            if digests.setdefault(path, digest) != digest:
                mismatches += 1
            done = i + 1
            if done % every == 0 or done == images:
                curve.append({"images": done, "rss_mb": rss_mb(process),
                              "seconds": time.perf_counter() - loop_start})
                progress.update(done, f"RSS {curve[-1]['rss_mb']:.1f} MB")
        progress.close()
        loop_s = time.perf_counter() - loop_start
    final = curve[-1]["rss_mb"]
    return {"bundle": {"model": bundle.model["name"],
                       "input_shape": bundle.model["input"]["shape"],
                       "latent_shape": bundle.model["latent"]["shape"]},
            "target": target, "coder": codec.coder, "threads": threads,
            "images": images, "warmup": warmup, "image_files": len(paths),
            "rss_loaded_mb": rss_loaded, "rss_after_warmup_mb": rss_after_warmup,
            "rss_final_mb": final, "growth_mb": final - rss_after_warmup,
            "max_rss_in_loop_mb": max(p["rss_mb"] for p in curve),
            "peak_rss_mb": peak_rss_mb(),
            "byte_mismatches": mismatches, "curve": curve,
            "loop_s": loop_s, "images_per_s": images / loop_s,
            "wall_s": time.perf_counter() - started}


def markdown(result: dict, command: str) -> str:
    r = result
    shape = "×".join(str(n) for n in r["bundle"]["input_shape"])
    lines = ["### RSS over a long run", "", f"Command: `{command}`", "",
             f"{r['images']:,} images ({r['image_files']} files cycled) after {r['warmup']} "
             f"warm-up images, {r['bundle']['model']} input {shape}, target {r['target']}, "
             f"coder {r['coder']}, threads {r['threads'] or 'runtime default'}.", "",
             "| images | RSS MB | Δ vs after warm-up MB | elapsed s |", "|---|---|---|---|",
             f"| 0 (after warm-up) | {r['rss_after_warmup_mb']:.1f} | 0.0 | 0 |"]
    for p in r["curve"]:
        lines.append(f"| {p['images']:,} | {p['rss_mb']:.1f} | "
                     f"{p['rss_mb'] - r['rss_after_warmup_mb']:+.1f} | {p['seconds']:.0f} |")
    verdict = "PASS" if r["passed"] else "FAIL"
    same = "yes" if r["byte_mismatches"] == 0 else f"NO ({r['byte_mismatches']} differ)"
    lines += ["",
              f"- RSS after warm-up {r['rss_after_warmup_mb']:.1f} MB, after image "
              f"{r['images']:,} {r['rss_final_mb']:.1f} MB: growth **{r['growth_mb']:+.1f} MB** "
              f"(bound {r['max_growth_mb']:.0f} MB: {verdict}); highest reading "
              f"{r['max_rss_in_loop_mb']:.1f} MB",
              f"- same container bytes on every repeat of an image: {same}",
              f"- loop {r['loop_s']:.0f} s ({r['images_per_s']:.1f} images/s), wall "
              f"{r['wall_s']:.0f} s"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = parser(__file__, __doc__,
               epilog="Exit status: 0 pass, 1 RSS grew more than --max-growth-mb or bytes "
                      "differed, 2 usage or bundle error.")
    p.add_argument("--bundle", default="build/demo/demo-bundle", type=Path,
                   help="bundle directory (default: %(default)s)")
    p.add_argument("--images", type=positive, default=10000,
                   help="measured images (default: %(default)s)")
    p.add_argument("--warmup", type=non_negative, default=20,
                   help="images before the reference RSS (default: %(default)s)")
    p.add_argument("--every", type=positive, default=500,
                   help="read RSS every N images (default: %(default)s)")
    p.add_argument("--max-growth-mb", type=float, default=20.0,
                   help="allowed RSS growth after the warmup (default: %(default)s)")
    p.add_argument("--target", default="onnx", help="artifact to run (default: onnx)")
    p.add_argument("--coder", default="c", help="c or constriction (default: c)")
    p.add_argument("--threads", type=positive, help="runtime threads (default: its own)")
    p.add_argument("--image-dir", type=Path,
                   help="folder of images to cycle (default: the bundled samples)")
    args = parse(p, argv)
    if args.max_growth_mb < 0:
        p.error(f"--max-growth-mb must be >= 0, got {args.max_growth_mb}")
    try:
        result = run(args.bundle, args.images, args.warmup, args.every, args.target,
                     args.coder, args.threads, args.image_dir)
    except Sc2DeployError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    result["max_growth_mb"] = args.max_growth_mb
    result["passed"] = result["growth_mb"] <= args.max_growth_mb and not result["byte_mismatches"]
    publish(markdown, result, __file__, argv, args.json)
    if not result["passed"]:
        print(f"{p.prog}: FAIL: RSS grew {result['growth_mb']:+.1f} MB (bound "
              f"{args.max_growth_mb:.0f} MB), {result['byte_mismatches']} byte mismatches",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
