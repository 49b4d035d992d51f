"""Latency of every built target at 1 and 2 threads vs torch eager, in the same run.

    python -m benchmarks.targets [--bundle build/demo/demo-bundle] [--runs 30] [--json PATH]

The bundle should have its targets built (``make demo`` builds every target that
builds here). Reports p50/p90 per target and threads, what ran it (a host check
says so), the ratio to torch eager at the same thread count, and each target's
recorded symbol agreement.
"""

import time

import numpy as np
import torch

from benchmarks.common import parse, parser, publish
from sc2deploy.bundle import Bundle
from sc2deploy.export.heads import head_from_arrays
from sc2deploy.preprocess import sample_images
from sc2deploy.targets import load_runner, targets


def percentiles(fn, x, runs: int):
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.percentile(times, 50)), 1e3 * float(np.percentile(times, 90))


def run(bundle_path: str, runs: int):
    bundle = Bundle.open(bundle_path)
    x = bundle.preprocessing()(sample_images()[-1])
    module = head_from_arrays(bundle.model["family"], bundle.torch_head_arrays())
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            eager = percentiles(lambda a: module(torch.from_numpy(a)), x, runs)
        rows.append({"target": "torch eager", "ran": "torch fp32", "threads": threads,
                     "p50_ms": eager[0],
                     "p90_ms": eager[1], "vs_torch": 1.0, "agreement_pct": 100.0})
        known = targets()
        for name, entry in bundle.manifest["artifacts"].items():
            if name not in known or known[name].missing("run"):
                continue
            with load_runner(bundle, name, threads=threads) as runner:
                p50, p90 = percentiles(runner.infer, x, runs)
            rows.append({"target": name, "ran": known[name].executed()["text"],
                         "threads": threads, "p50_ms": p50, "p90_ms": p90,
                         "vs_torch": p50 / eager[0],
                         "agreement_pct": entry.get("fidelity", {}).get("agreement_pct")})
    return rows


def markdown(rows, command: str) -> str:
    lines = ["## Targets", "", f"Command: `{command}`", "",
             "| target | ran | threads | p50 ms | p90 ms | p50 / torch eager | symbols equal % |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        agree = "–" if r["agreement_pct"] is None else f"{r['agreement_pct']:.4f}"
        lines.append(f"| {r['target']} | {r['ran']} | {r['threads']} | {r['p50_ms']:.1f} | "
                     f"{r['p90_ms']:.1f} | "
                     f"×{r['vs_torch']:.2f} | {agree} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = parser(__file__, __doc__)
    p.add_argument("--bundle", default="build/demo/demo-bundle")
    p.add_argument("--runs", type=int, default=30)
    args = parse(p, argv)
    publish(markdown, run(args.bundle, args.runs), __file__, argv, args.json)


if __name__ == "__main__":
    main()
