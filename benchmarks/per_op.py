"""Per-op profile: do the nodes' times sum to the head's measured p50 (target: within 10 %)?

    python -m benchmarks.per_op [--bundle build/demo/demo-bundle] [--targets onnx,...]
                                [--repeats 3] [--runs 100] [--warmup 10] [--threads 1]
                                [--json PATH]

For each onnx target of the bundle, ``--repeats`` times, interleaved (target after target,
then again): ``profile(--per-op)`` on the bundled sample images, energy off, no baselines.
Each run gives ``ratio`` = p50 of the per-run sum of the nodes' kernel times (onnxruntime's
profiler, a second session after the measured loop) / the head's p50 in the measured loop,
``ratio_unprofiled`` = the same sum / the p50 of the measured loop's runner (no profiler)
run just before each profiled run, and ``ratio_profiled`` = the same sum / the head's p50
timed around the profiled runs themselves. The verdict takes the median ``ratio`` over the
repeats of each target.
"""

import statistics
import time

from benchmarks.common import parse, parser, positive, publish
from sc2deploy.bundle import Bundle
from sc2deploy.measure.runtime import ProfileOptions, profile

TOLERANCE = 0.10


def run(args) -> dict:
    bundle = Bundle.open(args.bundle)
    targets = [t for t in args.targets.split(",") if t in bundle.manifest["artifacts"]]
    rows = []
    start = time.monotonic()
    for repeat in range(args.repeats):
        for target in targets:
            doc = profile(ProfileOptions(bundle=args.bundle, target=target, runs=args.runs,
                                         warmup=args.warmup, threads=args.threads,
                                         energy="none", baselines=False, per_op=True,
                                         progress=False))
            entry = doc["per_op"]
            rows.append({"repeat": repeat + 1, "target": target,
                         "head_p50_ms": entry["head_p50_ms"],
                         "profiled_head_p50_ms": entry["profiled_head_p50_ms"],
                         "nodes_sum_p50_ms": entry["nodes_sum_ms"]["p50"],
                         "model_run_p50_ms": entry["model_run_p50_ms"],
                         "unprofiled_head_p50_ms": entry["unprofiled_head_p50_ms"],
                         "ratio": entry["ratio"], "ratio_profiled": entry["ratio_profiled"],
                         "ratio_unprofiled": entry["ratio_unprofiled"],
                         "nodes": len(entry["nodes"]),
                         "top": entry["nodes"][0]["graph_node"] or entry["nodes"][0]["name"],
                         "top_share_pct": entry["nodes"][0]["share_pct"]})
    verdicts = {}
    for target in targets:
        ratios = [r["ratio"] for r in rows if r["target"] == target]
        median = statistics.median(ratios)
        verdicts[target] = {"median_ratio": median, "min": min(ratios), "max": max(ratios),
                            "median_ratio_unprofiled": statistics.median(
                                r["ratio_unprofiled"] for r in rows if r["target"] == target),
                            "median_ratio_profiled": statistics.median(
                                r["ratio_profiled"] for r in rows if r["target"] == target),
                            "within_10pct": abs(median - 1) <= TOLERANCE}
    return {"bundle": str(args.bundle), "runs": args.runs, "warmup": args.warmup,
            "threads": args.threads, "rows": rows, "verdicts": verdicts,
            "wall_s": time.monotonic() - start}


def summary(result: dict, command: str) -> str:
    lines = [f"Command: `{command}`", "",
             f"Bundle {result['bundle']}; {result['runs']} measured and profiled runs after "
             f"{result['warmup']} warm-up; threads {result['threads']}; wall "
             f"{result['wall_s']:.0f} s", "",
             "| repeat | target | head p50 ms (loop) | nodes sum p50 ms | ratio | head p50 ms "
             "(unprofiled, interleaved) | ratio_unprofiled | head p50 ms (profiled runs) | "
             "ratio_profiled | model_run p50 ms | top node (share) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['repeat']} | {r['target']} | {r['head_p50_ms']:.2f} | "
                     f"{r['nodes_sum_p50_ms']:.2f} | {r['ratio']:.3f} | "
                     f"{r['unprofiled_head_p50_ms']:.2f} | {r['ratio_unprofiled']:.3f} | "
                     f"{r['profiled_head_p50_ms']:.2f} | {r['ratio_profiled']:.3f} | "
                     f"{r['model_run_p50_ms']:.2f} | {r['top']} ({r['top_share_pct']:.1f} %) |")
    lines.append("")
    for target, v in result["verdicts"].items():
        lines.append(f"- {target}: median ratio **{v['median_ratio']:.3f}** (range "
                     f"{v['min']:.3f} … {v['max']:.3f}); against the unprofiled head timed "
                     f"between the profiled runs: {v['median_ratio_unprofiled']:.3f}; against "
                     f"the profiled runs' own head p50: {v['median_ratio_profiled']:.3f}; "
                     "target (ratio within 10 %): "
                     + ("met" if v["within_10pct"] else "NOT met"))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = parser(__file__, __doc__)
    p.add_argument("--bundle", default="build/demo/demo-bundle")
    p.add_argument("--targets", default="onnx,onnx-fp16,onnx-int8")
    p.add_argument("--repeats", type=positive, default=3)
    p.add_argument("--runs", type=positive, default=100)
    p.add_argument("--warmup", type=positive, default=10)
    p.add_argument("--threads", type=positive, default=1)
    args = parse(p, argv)
    result = run(args)
    publish(summary, result, __file__, argv, args.json)
    return 0 if all(v["within_10pct"] for v in result["verdicts"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
