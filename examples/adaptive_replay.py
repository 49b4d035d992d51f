"""The adaptive ladder replayed on a link whose rate drops and recovers (`sc2deploy replay`).

    python examples/adaptive_replay.py [OUT_DIR]      (default: a new temporary folder)

Exports three points of the bundled demo ladder (from more bytes and accuracy to fewer),
measures each one's top-1, container bytes and encode time on the demo's generated labeled
set, then models the adaptive device policy on a throughput trace (37.5 -> 5.5 -> 37.5 kbit/s,
one image every 2 s, deadline 1 s) against each point alone. Offline; about 30 s on 2 cores.
The same with four points: BENCHMARKS.md, "Adaptive ladder"; the policy: docs/adaptive.md.
"""

import json
import sys
import tempfile
from pathlib import Path

from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.measure.evaluate import evaluate, format_evaluation, read_labeled
from sc2deploy.measure.replay import ReplayOptions, format_header, replay_ladder
from sc2deploy.orchestrate.demo_data import EVAL_SEED, write_labeled_set
from sc2deploy.results.schema import write_results

POINTS = ("demo-beta0.1", "demo-beta1", "demo-beta3")  # from the most bytes to the fewest
TRACE = [[0, 37500], [30, 5500], [60, 37500]]  # [t_start_s, bits_per_s]: LoRa-like rates


def main(out: Path) -> None:
    # The ladder: one bundle per point (as `sc2deploy export demo-beta0.1 --out ...`).
    bundles = [export_bundle(ExportOptions(model=p, out=out / "ladder" / p, force=True)).path
               for p in POINTS]

    # Each point's accuracy and bytes (as `sc2deploy evaluate BUNDLE --images DIR -o ...`), on
    # the demo's generated textures: 10 classes x 20 images, in ImageFolder layout (DIR/CLASS/).
    data = read_labeled(write_labeled_set(out / "eval", per_class=20, seed=EVAL_SEED))
    evaluations = []
    for point, bundle in zip(POINTS, bundles):
        doc = evaluate(bundle, data, ["onnx"], label=point, progress=False)
        print(format_evaluation(doc))
        evaluations.append(write_results(doc, out / f"evaluation-{point}.json"))

    # The trace and the replay (as `sc2deploy replay --ladder ... --evaluation ... -o ...`).
    trace = out / "trace.json"
    trace.write_text(json.dumps(TRACE))
    options = ReplayOptions(bundles=tuple(bundles), evaluations=tuple(evaluations), trace=trace,
                            deadline_ms=1000, interval_ms=2000)
    result, doc = replay_ladder(options)
    path = write_results(doc, out / "replay.json")
    print(format_header(doc))
    print(result.table())
    print(f"results: {path} (`sc2deploy report {path} -o DIR` draws the timeline)")
    print("the same from the shell: sc2deploy replay --ladder "
          + " ".join(map(str, bundles)) + " --evaluation "
          + " ".join(map(str, evaluations))
          + f" --trace {trace} --deadline-ms 1000 --interval-ms 2000 -o {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1
         else Path(tempfile.mkdtemp(prefix="sc2deploy-example.")))
