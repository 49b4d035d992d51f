"""Codec benchmark: size vs ideal, and throughput of the C coder vs constriction vs CompressAI.

    python -m benchmarks.codec [--bundle DIR] [--images 100] [--repeats 5] [--json PATH]
                               [--markdown BENCHMARKS.md]

Latents come from the demo student's head (onnxruntime) on the bundled sample
images and deterministic variants of them (flips, other crops) up to
``--images``. CompressAI's rANS coder is the ``compressai.ans`` extension of
CompressAI 1.2.8 (installed ``--no-deps``; loaded directly, without torch).
"""

import glob
import importlib.machinery
import importlib.util
import time
from pathlib import Path

import numpy as np

from benchmarks.common import parse, parser, publish
from sc2deploy.bundle import Bundle
from sc2deploy.codec import LatentCodec
from sc2deploy.codec.container import HEADER_SIZE
from sc2deploy.preprocess import Preprocessing, sample_images
from sc2deploy.targets import load_runner


def variants(pre: Preprocessing, count: int):
    """``count`` normalized inputs: each sample image, flipped, then at other scales."""
    images = sample_images()
    scales = [(pre.resize, False), (pre.resize, True), (pre.resize + 32, False),
              (pre.resize + 32, True), (pre.resize + 64, False)]
    for i in range(count):
        resize, flip = scales[(i // len(images)) % len(scales)]
        x = Preprocessing(resize, pre.crop, pre.mean, pre.std)(images[i % len(images)])
        yield np.ascontiguousarray(x[..., ::-1]) if flip else x


def latents_for(bundle: Bundle, count: int) -> np.ndarray:
    with load_runner(bundle, "onnx") as runner:
        return np.stack([runner.infer(x)[0] for x in variants(bundle.preprocessing(), count)])


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def compressai_ans():
    """CompressAI's rANS extension, or None when CompressAI is not installed."""
    spec = importlib.util.find_spec("compressai")
    if spec is None:
        return None
    path = glob.glob(str(Path(spec.submodule_search_locations[0]) / "ans*.so"))[0]
    loader = importlib.machinery.ExtensionFileLoader("compressai.ans", path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def compressai_speed(ans, prior, latents, repeats):
    """(encode s, decode s, bytes) over all latents, lists prepared outside the timing."""
    c = prior.channels
    cdfs = [prior.quantized_cdf[i, : prior.cdf_lengths[i]].tolist() for i in range(c)]
    lengths, offsets = prior.cdf_lengths.tolist(), prior.offsets.tolist()
    per_image = latents[0].size
    indexes = np.repeat(np.arange(c), per_image // c).tolist()
    symbols = [x.ravel().tolist() for x in latents]
    encoder, decoder = ans.RansEncoder(), ans.RansDecoder()
    streams = []

    def encode():
        streams[:] = [encoder.encode_with_indexes(s, indexes, cdfs, lengths, offsets)
                      for s in symbols]

    def decode():
        for stream in streams:
            decoder.decode_with_indexes(stream, indexes, cdfs, lengths, offsets)

    enc = best_time(encode, repeats)
    dec = best_time(decode, repeats)
    assert decoder.decode_with_indexes(streams[0], indexes, cdfs, lengths, offsets) == symbols[0]
    return enc, dec, sum(len(s) for s in streams)


def run(bundle_path, count, repeats):
    bundle = Bundle.open(bundle_path)
    prior = bundle.prior()
    latents = latents_for(bundle, count)
    n_symbols = latents.size
    ideal_bits = sum(prior.bits_per_symbol(x) * x.size for x in latents)
    result = {"images": len(latents), "symbols_per_image": int(latents[0].size),
              "ideal_bytes": ideal_bits / 8}
    streams = {}
    for coder in ("constriction", "c"):
        codec = LatentCodec(prior, coder)
        encoded = [codec.encode(x) for x in latents]
        streams[coder] = encoded
        enc = best_time(lambda: [codec.encode(x) for x in latents], repeats)
        dec = best_time(lambda: [codec.decode(s) for s in encoded], repeats)
        assert all(np.array_equal(codec.decode(s), x) for s, x in zip(encoded, latents))
        result[coder] = {"encode_msym_s": n_symbols / enc / 1e6,
                         "decode_msym_s": n_symbols / dec / 1e6,
                         "bytes": sum(len(s) for s in encoded)}
    identical = sum(a == b for a, b in zip(streams["c"], streams["constriction"]))
    payload = result["c"]["bytes"] - HEADER_SIZE * len(latents)
    result["overhead_pct"] = 100 * (payload / result["ideal_bytes"] - 1)
    result["identical_cases"] = identical
    result["c_vs_constriction_encode"] = (result["c"]["encode_msym_s"]
                                          / result["constriction"]["encode_msym_s"])
    result["c_vs_constriction_decode"] = (result["c"]["decode_msym_s"]
                                          / result["constriction"]["decode_msym_s"])
    ans = compressai_ans()
    if ans is not None:
        enc, dec, size = compressai_speed(ans, prior, latents, repeats)
        result["compressai_rans"] = {"encode_msym_s": n_symbols / enc / 1e6,
                                     "decode_msym_s": n_symbols / dec / 1e6, "bytes": size,
                                     "overhead_pct": 100 * (size / result["ideal_bytes"] - 1)}
        result["c_vs_compressai_encode"] = (result["c"]["encode_msym_s"]
                                            / result["compressai_rans"]["encode_msym_s"])
        result["c_vs_compressai_decode"] = (result["c"]["decode_msym_s"]
                                            / result["compressai_rans"]["decode_msym_s"])
    return result


def markdown(r: dict, command: str) -> str:
    rows = [("sc2deploy C coder", r["c"]), ("constriction 0.5.0", r["constriction"])]
    if "compressai_rans" in r:
        rows.append(("CompressAI 1.2.8 rANS", r["compressai_rans"]))
    lines = [
        "## Codec", "", f"Command: `{command}`", "",
        f"{r['images']} latents of the demo student ({r['symbols_per_image']:,} symbols each), "
        "whole-container encode/decode (header, escapes) for sc2deploy's coders; CompressAI's "
        "`encode_with_indexes` with its lists prepared outside the timing. Best of the repeats.",
        "", "| coder | encode Msym/s | decode Msym/s | bytes |", "|---|---|---|---|"]
    for name, row in rows:
        lines.append(f"| {name} | {row['encode_msym_s']:.1f} | {row['decode_msym_s']:.1f} | "
                     f"{row['bytes']:,} |")
    lines += ["", f"- ideal (−Σ log2 p): {r['ideal_bytes']:,.0f} bytes; sc2deploy payload overhead "
              f"{r['overhead_pct']:.4f} % (+ {HEADER_SIZE} B header per image)",
              f"- C vs constriction: encode ×{r['c_vs_constriction_encode']:.2f}, decode "
              f"×{r['c_vs_constriction_decode']:.2f}; identical streams "
              f"{r['identical_cases']}/{r['images']}"]
    if "c_vs_compressai_encode" in r:
        lines.append(f"- C vs CompressAI rANS: encode ×{r['c_vs_compressai_encode']:.2f}, "
                     f"decode ×{r['c_vs_compressai_decode']:.2f}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = parser(__file__, __doc__)
    p.add_argument("--bundle", default="build/demo/demo-bundle")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--markdown", type=Path, help="write the summary section to this file")
    args = parse(p, argv)
    publish(markdown, run(args.bundle, args.images, args.repeats), __file__, argv, args.json,
            args.markdown)


if __name__ == "__main__":
    main()
