"""``demo``: the whole flow on the bundled demo student, in one folder.

::

    OUT/.demo-bundle.new-PID ─ export demo + build every target buildable here (int8: search)
        ─ replaces OUT/demo-bundle only when both are done (else it is as it was)
    OUT/demo-bundle ─ describe + verify table (the task gate: the demo has a tail)
        ─ OUT/eval: generated labeled images (demo_data, held-out seed)
        ─ evaluate every runnable target + the teacher's JPEG/WebP baselines
                          ─ OUT/results/evaluation.json
        ─ profile-server  ─ OUT/results/server.json
        ─ profile each target that runs here (LoRa link; RAPL, else the rpi4 model)
                          ─ OUT/results/TARGET.json
        ─ OUT/report/report.html

Ctrl-C (or SIGTERM) raises :class:`Interrupted` saying what was kept.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from sc2deploy import atomic
from sc2deploy.errors import Interrupted, UsageError
from sc2deploy.log import logger, step
from sc2deploy.specs import DEMO_MODEL

DEMO_LINK = "lora-sx1276-20dbm"
DEMO_DEVICE_PROFILE = "rpi4"
DEMO_RUNS = 30
DEMO_TEACHER = Path(__file__).resolve().parent.parent / "data" / "demo_teacher.onnx"
DEMO_EVAL_PER_CLASS = 20  # x 10 classes = 200 images: 95 % Wilson interval [80.5, 90.1] at 86 %
DEMO_BASELINES = ("jpeg:5,10,25,50,75,90", "webp:5,10,25,50,90")


@dataclass(frozen=True)
class Demo:
    """What a demo run wrote."""

    bundle: Path  # OUT/demo-bundle
    report: Path  # OUT/report/report.html
    results: Tuple[Path, ...]  # OUT/results/server.json, one per profiled target, evaluation


def run(out: Path, runs: int = DEMO_RUNS, targets: Optional[Sequence[str]] = None,
        echo: Callable[[str], None] = print, eval_per_class: int = DEMO_EVAL_PER_CLASS) -> Demo:
    """Export, build, verify, profile and report the demo student into ``out``.

    ``targets``: the targets to build (default: every one buildable on this host; the
    others are skipped and named). ``runs``: images measured per profile;
    ``eval_per_class``: generated images per class for the accuracy. ``echo`` receives
    the tables printed along the way.
    """
    from sc2deploy.bundle import Bundle
    from sc2deploy.builders.build import BuildOptions, build_targets, format_table, verify_bundle
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.report.bundle_info import describe
    from sc2deploy.targets import targets as registry

    out = atomic.ensure_writable(out, "the demo folder")
    target = out / "demo-bundle"
    if target.exists() and not (target / "manifest.json").is_file():
        raise UsageError(f"{target} exists and is not a bundle; choose another --out")
    known = registry()
    wanted = list(known) if targets is None else list(targets)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise UsageError(f"unknown demo targets {unknown}; known: {', '.join(known)}")
    buildable = [n for n in wanted if known[n].build_on == "host" and not known[n].missing()]
    skipped = sorted(set(wanted) - set(buildable))
    if skipped:
        echo(f"targets not buildable here (skipped): {', '.join(skipped)}")
    # Export and build beside the old demo bundle; it is replaced only when both are done.
    staged = out / f".demo-bundle.new-{os.getpid()}"
    try:
        export_bundle(ExportOptions(model=DEMO_MODEL, out=staged, force=True))
        rows = build_targets(staged, buildable, BuildOptions(search=True))
        atomic.replace_dir(staged, target)
    except (KeyboardInterrupt, Interrupted):
        raise Interrupted(f"interrupted while exporting and building: {target} is as it was"
                          ) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    echo(describe(Bundle.open(target)))
    echo(format_table(verify_bundle(target)))
    built = [r["target"] for r in rows if r["passed"]]
    runnable = [n for n in built if known[n].build_on == "host"
                and not known[n].host_check]
    try:
        evaluation = _evaluate(target, runnable, out, eval_per_class, echo)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while evaluating: the bundle {target} is kept; no "
                          "results or report written") from None
    return _profile(target, runnable, out, runs, echo, evaluation)


def _evaluate(bundle: Path, names: List[str], out: Path, per_class: int,
              echo: Callable[[str], None]) -> Tuple[dict, Path]:
    """Accuracy of every runnable target and of the teacher's JPEG/WebP baselines on a
    generated held-out set (OUT/eval) → OUT/results/evaluation.json."""
    from sc2deploy.measure.evaluate import (evaluate, evaluate_baselines, format_baselines,
                                            format_evaluation, parse_baselines, read_labeled)
    from sc2deploy.orchestrate.demo_data import CLASSES, EVAL_SEED, write_labeled_set
    from sc2deploy.results.schema import write_results

    with step(f"generating the labeled eval set ({len(CLASSES)} classes x {per_class} images) "
              f"in {out / 'eval'}"):
        data = read_labeled(write_labeled_set(out / "eval", per_class, EVAL_SEED))
    with step(f"evaluating {', '.join(names)} and the teacher's JPEG/WebP baselines"):
        doc = evaluate(bundle, data, names, label="demo/evaluate", progress=False)
        doc.update(evaluate_baselines(bundle, data, DEMO_TEACHER,
                                      parse_baselines(DEMO_BASELINES), progress=False))
    echo(format_evaluation(doc) + "\n" + format_baselines(doc))
    return doc, write_results(doc, out / "results" / "evaluation.json")


def _profile(bundle: Path, names: List[str], out: Path, runs: int,
             echo: Callable[[str], None], evaluation: Tuple[dict, Path]) -> Demo:
    """Profile every runnable target with the LoRa link, then write the report."""
    from sc2deploy.measure.options import ProfileOptions, ServerOptions
    from sc2deploy.measure.power import discover
    from sc2deploy.measure.runtime import profile
    from sc2deploy.measure.server import profile_server, server_ms_from
    from sc2deploy.report.document import write_report
    from sc2deploy.report.summary import format_profile
    from sc2deploy.results.schema import write_results

    results = out / "results"
    rapl, reasons = discover(kind="rapl")
    energy = "rapl" if rapl is not None else "model"
    if rapl is None:
        logger.info("energy: RAPL unavailable (%s); modeling with the %r device profile on "
                    "this machine's timings, labeled 'modeled, host-timed on CPU'",
                    reasons.get("rapl"), DEMO_DEVICE_PROFILE)
    with step("profiling the server side (range decoding and the decoder)"):
        server_doc = profile_server(ServerOptions(bundle=bundle, runs=runs, progress=False))
        written = [write_results(server_doc, results / "server.json")]
    server = server_ms_from(server_doc, "server.json")
    docs = [server_doc]
    for name in names:
        with step(f"profiling {name} ({energy} energy, {DEMO_LINK})"):
            doc = profile(ProfileOptions(
                bundle=bundle, target=name, runs=runs, warmup=3, threads=None, link=DEMO_LINK,
                energy=energy, device_profile=DEMO_DEVICE_PROFILE,
                model_host_time=energy == "model", idle_s=1.0, server=server, progress=False))
            written.append(write_results(doc, results / f"{name}.json"))
            docs.append(doc)
            echo(format_profile(doc))
        if not doc["complete"]:
            raise Interrupted(f"interrupted while profiling {name}: the bundle {bundle} and "
                              f"the results in {results} are kept ({name}.json is PARTIAL); "
                              "no report written")
    with step("writing the report"):
        report = write_report([*docs, evaluation[0]], out / "report")
    return Demo(bundle=bundle, report=report, results=(*written, evaluation[1]))
