"""Sweep of 3 checkpoints x 2 targets: wall time with a process pool vs one at a time.

The three checkpoints are the first three points of the bundled demo β ladder; each is
exported and built for ``onnx`` and ``tflite``, then profiled. Both sweeps run in this one
invocation.

    python -m benchmarks.sweep [--workers 3] [--runs 20] [--json FILE]
"""

import tempfile
import time
from pathlib import Path

from benchmarks.common import parse, parser, publish
from sc2deploy.log import configure
from sc2deploy.orchestrate.sweep import Checkpoint, Sweep, run_sweep
from sc2deploy.specs import demo_ladder


def summary_of(result, command):
    rows = "\n".join(f"| {r['workers']} | {r['seconds']:.0f} | {r['prepare_seconds']:.0f} | "
                     f"{r['ok']}/{r['items']} |" for r in result["runs"])
    return (f"Command: `{command}`\n\n| workers | wall s | export+build s | items ok |\n"
            f"|---|---|---|---|\n{rows}\n\nspeed-up of the pool: "
            f"{result['speedup']:.2f}x (wall), {result['prepare_speedup']:.2f}x (export+build)\n")


def main(argv=None):
    p = parser(__file__, __doc__)
    p.add_argument("--workers", type=int, default=3, help="pool size (default: 3)")
    p.add_argument("--runs", type=int, default=20, help="images profiled per item")
    args = parse(p, argv)
    configure(verbose=False)
    result = {"runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoints = tuple(Checkpoint(point, point) for point in demo_ladder()[:3])
        for workers in (1, args.workers):
            sweep = Sweep(checkpoints, ("onnx", "tflite"), workers=workers,
                          profile={"runs": args.runs, "warmup": 3, "energy": "none",
                                   "link": "lora-sx1276-20dbm", "idle_s": 0.0})
            start = time.perf_counter()
            _, summary = run_sweep(sweep, Path(tmp) / f"out-{workers}")
            result["runs"].append({
                "workers": workers, "seconds": time.perf_counter() - start,
                "prepare_seconds": summary["prepare_seconds"], "items": len(summary["items"]),
                "ok": sum(i["status"] == "ok" for i in summary["items"])})
    one, pool = result["runs"]
    result["speedup"] = one["seconds"] / pool["seconds"]
    result["prepare_speedup"] = one["prepare_seconds"] / pool["prepare_seconds"]
    publish(summary_of, result, __file__, argv, args.json)


if __name__ == "__main__":
    main()
