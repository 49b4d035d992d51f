"""The demo's ladder against JPEG/WebP on a generated set of a seed it never saw.

    python -m benchmarks.worth_unseen_seed --seed 7 [--demo build/demo] [--per-class 20]

Every bundle ``make demo`` wrote (OUT/demo-bundle and OUT/ladder/*) is evaluated (onnx)
on the generated set of ``--seed`` beside the teacher's JPEG/WebP baselines, and the
comparison at equal accuracy is printed as the demo prints it. Each baseline's mean
bytes are checked against an independent Pillow encoding of the same 224 px crops.
"""

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import parse, parser, positive, publish
from sc2deploy.measure.evaluate import (evaluate, evaluate_baselines, parse_baselines,
                                        read_labeled)
from sc2deploy.orchestrate.demo import DEMO_BASELINES, DEMO_TEACHER, REFERENCE_PIPELINE
from sc2deploy.orchestrate.demo_data import EVAL_SEED, TRAIN_SEED, write_labeled_set
from sc2deploy.report.worth import compare, format_comparison

FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}


def pillow_bytes(paths, crop: int, codec: str, quality: int) -> float:
    """Mean bytes of each image's centre crop saved by Pillow directly (generated images are
    already at the resize size, so the crop is all the preprocessing does)."""
    sizes = []
    for path in paths:
        with Image.open(path) as img:
            w, h = img.size
            left, top = (w - crop) // 2, (h - crop) // 2
            buf = io.BytesIO()
            img.convert("RGB").crop((left, top, left + crop, top + crop)).save(
                buf, format=FORMATS[codec], quality=quality)
            sizes.append(len(buf.getvalue()))
    return float(np.mean(sizes))


def run(demo: Path, seed: int, per_class: int) -> dict:
    bundles = [demo / "demo-bundle", *sorted(p for p in (demo / "ladder").iterdir()
                                             if (p / "manifest.json").is_file())]
    with tempfile.TemporaryDirectory() as tmp:
        data = read_labeled(write_labeled_set(Path(tmp) / "set", per_class, seed))
        docs = [evaluate(b, data, ["onnx"], label=b.name, progress=False) for b in bundles]
        docs[0].update(evaluate_baselines(bundles[0], data, DEMO_TEACHER,
                                          parse_baselines(DEMO_BASELINES), progress=False))
        crop = docs[0]["bundle"]["input_shape"][-1]
        checks = [{"codec": r["codec"], "quality": r["quality"], "evaluate": r["bytes"]["mean"],
                   "pillow": pillow_bytes(data.images, crop, r["codec"], r["quality"])}
                  for r in docs[0]["baselines"]]
    return {"seed": seed, "images": len(data.images), "comparison": compare(docs),
            "points": [{"bundle": d["label"], "bytes": d["targets"][0]["bytes"]["mean"],
                        "top1": d["targets"][0]["top1"]["pct"]} for d in docs],
            "baselines": [{**c, "top1": r["top1"]["pct"]}
                          for c, r in zip(checks, docs[0]["baselines"])]}


def summary(result: dict, command: str) -> str:
    lines = [f"`{command}` ({result['images']} images of seed {result['seed']})", "",
             "| pipeline | bytes/image | top-1 % | Pillow bytes (independent) |",
             "|---|---|---|---|"]
    lines += [f"| {p['bundle']} (onnx) | {p['bytes']:,.0f} | {p['top1']:.1f} | |"
              for p in sorted(result["points"], key=lambda p: p["bytes"])]
    lines += [f"| teacher on {b['codec']} q{b['quality']} | {b['evaluate']:,.0f} | "
              f"{b['top1']:.1f} | {b['pillow']:,.0f} |" for b in result["baselines"]]
    worst = max(abs(b["evaluate"] / b["pillow"] - 1) for b in result["baselines"])
    lines += ["", f"baseline bytes vs the independent Pillow encoding: largest difference "
              f"{100 * worst:.2f} %", "", format_comparison(result["comparison"],
                                                            REFERENCE_PIPELINE)]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = parser(__file__, __doc__)
    p.add_argument("--seed", type=int, required=True,
                   help=f"the generated set's seed (the demo trains on {TRAIN_SEED} and "
                        f"evaluates on {EVAL_SEED})")
    p.add_argument("--demo", type=Path, default=Path("build/demo"),
                   help="the demo's output folder")
    p.add_argument("--per-class", type=positive, default=20)
    args = parse(p, argv)
    if args.seed in (TRAIN_SEED, EVAL_SEED):
        p.error(f"--seed {args.seed} is one the demo uses; give another")
    publish(summary, run(args.demo, args.seed, args.per_class), __file__, argv, args.json)


if __name__ == "__main__":
    main()
