"""Preprocessing exact vs fast, and the device encode per image against the sc2bench path.

    python -m benchmarks.preprocess [--bundle build/demo/demo-bundle] [--target onnx]
                                    [--rounds 5] [--camera-size 1280x960] [--json PATH]

One thread everywhere (onnxruntime intra-op 1, ``torch.set_num_threads(1)``), the same JPEG
files for every method, per-image times, methods interleaved (their order rotates each
round); each ratio compares methods measured in this run. Two image sets: the bundled
samples as they are (256-512 px: too small for a reduced decode at 256 px) and the same
photos re-encoded as camera-sized JPEGs (``--camera-size``, quality 90), where the fast
path decodes at 1/2 to 1/8::

    preprocess  exact: load_image ─ resize ─ crop ─ normalize      (training's arithmetic)
                fast:  DCT-scaled JPEG decode ─ fused resize+crop ─ table look-up
    encode      sc2deploy exact|fast: preprocess ─ head (TARGET, onnxruntime) ─ C coder
                sc2bench: exact preprocess ─ torch head ─ CompressAI's compress (its
                EntropyBottleneck.compress: lists of symbols, indexes and tables, rANS)

The torch head is the bundle's folded fp32 head (head_state.npz); sc2deploy exact and
sc2bench must give the same symbols (ties aside: the count of differing symbols is shown).
"""

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.codec import compressai_ans
from benchmarks.common import parse, parser, positive, publish
from sc2deploy.bundle import Bundle
from sc2deploy.errors import Sc2DeployError
from sc2deploy.images import load_image
from sc2deploy.preprocess import preprocessor, sample_images
from sc2deploy.targets import load_runner
from sc2deploy.targets.encoding import latent_codec


class BenchmarkError(Exception):
    """A measurement could not be made; the message says why and what to do."""


def camera_copies(images, size, folder: Path):
    """The photos re-encoded as ``size`` (w, h) JPEGs, quality 90, in ``folder``."""
    from PIL import Image

    out = []
    for p in images:
        path = folder / f"{p.stem}-{size[0]}x{size[1]}.jpg"
        load_image(p).resize(size, Image.BICUBIC).save(path, quality=90)
        out.append(path)
    return out


def sc2bench_encoder(bundle: Bundle):
    """CompressAI's EntropyBottleneck.compress on symbols round(y - median), as sc2bench
    calls it per image: tables converted to lists on every call, rANS encode."""
    import torch

    ans = compressai_ans()
    if ans is None:
        raise BenchmarkError("CompressAI is not installed: the sc2bench path needs its rANS "
                             "coder (make venv installs compressai --no-deps)")
    prior = bundle.prior()
    cdf = torch.from_numpy(prior.quantized_cdf.astype(np.int32))
    lengths = torch.from_numpy(prior.cdf_lengths.astype(np.int32))
    offsets = torch.from_numpy(prior.offsets.astype(np.int32))
    encoder = ans.RansEncoder()

    def compress(symbols):  # [C, H, W], one image
        indexes = torch.arange(symbols.shape[0], dtype=torch.int32).view(-1, 1, 1)
        indexes = indexes.expand_as(symbols)
        return encoder.encode_with_indexes(symbols.reshape(-1).int().tolist(),
                                           indexes.reshape(-1).int().tolist(), cdf.tolist(),
                                           lengths.reshape(-1).int().tolist(),
                                           offsets.reshape(-1).int().tolist())
    return compress


def measure(bundle: Bundle, target: str, paths, rounds: int) -> dict:
    """Per-image ms of each method, interleaved; symbols compared once."""
    import torch

    from sc2deploy.export.heads import head_from_arrays

    torch.set_num_threads(1)
    exact = preprocessor(bundle.preprocessing(), "exact")
    fast = preprocessor(bundle.preprocessing(), "fast")
    codec = latent_codec(bundle, "c")
    head = head_from_arrays(bundle.model["family"], bundle.torch_head_arrays())
    compress = sc2bench_encoder(bundle)
    clock = time.perf_counter_ns
    with load_runner(bundle, target, 1) as runner, torch.inference_mode():
        methods = {
            "preprocess exact": lambda p: exact.transform(exact.load(p)),
            "preprocess fast": lambda p: fast.transform(fast.load(p)),
            "encode sc2deploy exact": lambda p: codec.encode(runner.infer(exact(p))[0]),
            "encode sc2deploy fast": lambda p: codec.encode(runner.infer(fast(p))[0]),
            "encode sc2bench": lambda p: compress(head(torch.from_numpy(exact(p)))[0]),
        }
        differing = sum(int(np.sum(runner.infer(exact(p))[0]
                                   != head(torch.from_numpy(exact(p)))[0].numpy()))
                        for p in paths)
        for fn in methods.values():  # warm-up: one image each
            fn(paths[0])
        times = {name: [] for name in methods}
        names = list(methods)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                for p in paths:
                    t0 = clock()
                    methods[name](p)
                    times[name].append((clock() - t0) / 1e6)
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
    ms = {name: float(np.median(v)) for name, v in times.items()}
    return {"images": len(paths), "per_image_ms_p50": ms,
            "scales": sorted({fast.load(p).draft_scale for p in paths}),
            "symbols_differing_torch_vs_target": differing,
            "preprocess_exact_vs_fast": ms["preprocess exact"] / ms["preprocess fast"],
            "sc2bench_vs_sc2deploy_exact": ms["encode sc2bench"] / ms["encode sc2deploy exact"],
            "sc2bench_vs_sc2deploy_fast": ms["encode sc2bench"] / ms["encode sc2deploy fast"]}


def run(bundle_path: Path, target: str, rounds: int, camera, limit) -> dict:
    bundle = Bundle.open(bundle_path)
    if target not in bundle.manifest.get("artifacts", {}):
        raise BenchmarkError(f"bundle {bundle_path} has no {target!r} artifact; build it "
                             f"first: sc2deploy build {bundle_path} --target {target}")
    if bundle.prior() is None:
        raise BenchmarkError(f"bundle {bundle_path} has no entropy model: this benchmark needs "
                             "a factorized-prior head")
    images = sample_images()[:limit]
    started = time.perf_counter()
    result = {"bundle": {"model": bundle.model["name"], "target": target,
                         "input_shape": bundle.model["input"]["shape"],
                         "resize": bundle.preprocessing().resize},
              "machine": {"python": platform.python_version(), "machine": platform.machine(),
                          "cores": os.cpu_count(), "load_avg_1m_start": os.getloadavg()[0]},
              "rounds": rounds, "threads": 1, "sets": {}}
    result["sets"]["samples"] = measure(bundle, target, images, rounds)
    if camera:
        with tempfile.TemporaryDirectory(prefix="sc2deploy-bench-") as tmp:
            copies = camera_copies(images, camera, Path(tmp))
            result["sets"][f"{camera[0]}x{camera[1]} JPEG q90"] = measure(bundle, target,
                                                                          copies, rounds)
    result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    result["wall_s"] = time.perf_counter() - started
    return result


def markdown(result: dict, command: str) -> str:
    b, m = result["bundle"], result["machine"]
    lines = ["## Preprocessing and the device encode vs the sc2bench path", "",
             f"Command: `{command}`", "",
             f"Bundle: {b['model']}, target {b['target']}, resize {b['resize']}; 1 thread; "
             f"{result['rounds']} interleaved rounds; load average {m['load_avg_1m_start']:.2f}"
             f" → {m['load_avg_1m_end']:.2f} on {m['cores']} cores; wall "
             f"{result['wall_s']:.0f} s.", "",
             "| images | DCT scales | preprocess exact ms | fast ms | exact / fast "
             "| encode sc2deploy exact ms | fast ms | sc2bench ms | sc2bench / exact "
             "| sc2bench / fast | symbols ≠ |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in result["sets"].items():
        ms = s["per_image_ms_p50"]
        lines.append(
            f"| {name} ({s['images']}) | {', '.join(f'1/{k}' for k in s['scales'])} "
            f"| {ms['preprocess exact']:.2f} | {ms['preprocess fast']:.2f} "
            f"| ×{s['preprocess_exact_vs_fast']:.2f} | {ms['encode sc2deploy exact']:.2f} "
            f"| {ms['encode sc2deploy fast']:.2f} | {ms['encode sc2bench']:.2f} "
            f"| ×{s['sc2bench_vs_sc2deploy_exact']:.2f} | ×{s['sc2bench_vs_sc2deploy_fast']:.2f} "
            f"| {s['symbols_differing_torch_vs_target']} |")
    lines += ["", "- ms: median per image; preprocess = decode + resize + crop + normalize; "
              "encode = preprocess + head + code. symbols ≠: the target's symbols against "
              "the torch head's on exact inputs (.5 ties)"]
    return "\n".join(lines) + "\n"


def _size(text: str):
    if text in ("0", "none"):
        return None
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv=None):
    p = parser(__file__, __doc__,
               epilog="Needs torch and CompressAI (make venv) and the bundle's TARGET artifact.")
    p.add_argument("--bundle", default="build/demo/demo-bundle", type=Path,
                   help="bundle directory (default: %(default)s)")
    p.add_argument("--target", default="onnx", help="artifact of the sc2deploy path "
                   "(default: %(default)s)")
    p.add_argument("--rounds", type=positive, default=5,
                   help="interleaved rounds over the images (default: %(default)s)")
    p.add_argument("--camera-size", type=_size, default=(1280, 960), metavar="WxH",
                   help="also the samples re-encoded at this size; 0: skip "
                        "(default: 1280x960)")
    p.add_argument("--images", type=positive, metavar="N",
                   help="only the first N samples (default: all)")
    args = parse(p, argv)
    try:
        result = run(args.bundle, args.target, args.rounds, args.camera_size, args.images)
    except (BenchmarkError, Sc2DeployError) as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    publish(markdown, result, __file__, argv, args.json)


if __name__ == "__main__":
    main()
