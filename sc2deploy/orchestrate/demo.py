"""``demo``: the whole flow on the bundled β ladder of demo students, in one folder.

::

    OUT/.demo-stage-PID ─ export every ladder point + build every target buildable here
        (int8/fp16: search) ─ replaces OUT/demo-bundle (the default point) and OUT/ladder
        (the other points) only when all are done (else they are as they were)
    OUT/demo-bundle ─ describe + verify table (the task gate: the demo has a tail)
        ─ OUT/eval: generated labeled images (demo_data, held-out seed)
        ─ evaluate every runnable target of every point; the teacher's JPEG/WebP baselines
                          ─ OUT/results/evaluation.json (default point + baselines),
                            OUT/results/evaluation-POINT.json (the other points)
        ─ profile-server  ─ OUT/results/server.json
        ─ profile each target that runs here (LoRa link; RAPL, else the rpi4 model)
                          ─ OUT/results/TARGET.json
        ─ OUT/report/report.html; the comparison with JPEG/WebP at equal accuracy printed

Ctrl-C (or SIGTERM) raises :class:`Interrupted` saying what was kept.
"""

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from sc2deploy import atomic
from sc2deploy.errors import Interrupted, UsageError
from sc2deploy.log import logger, step
from sc2deploy.specs import DEMO_DEFAULT_POINT, demo_ladder

DEMO_LINK = "lora-sx1276-20dbm"
DEMO_DEVICE_PROFILE = "rpi4"
DEMO_RUNS = 30
DEMO_TEACHER = Path(__file__).resolve().parent.parent / "data" / "demo_teacher.onnx"
DEMO_EVAL_PER_CLASS = 20  # x 10 classes = 200 images
DEMO_BASELINES = ("jpeg:1,2,5,10,15,25,50,75,90", "webp:1,2,5,10,15,25,50,75,90")
REFERENCE_PIPELINE = "entropic_student / onnx"  # the curve the demo's last lines compare


@dataclass(frozen=True)
class Demo:
    """What a demo run wrote."""

    bundle: Path  # OUT/demo-bundle (the default ladder point)
    report: Path  # OUT/report/report.html
    results: Tuple[Path, ...]  # OUT/results/server.json, one per profiled target, evaluations
    ladder: Tuple[Path, ...] = ()  # every point's bundle, the most bytes first


def run(out: Path, runs: int = DEMO_RUNS, targets: Optional[Sequence[str]] = None,
        echo: Callable[[str], None] = print, eval_per_class: int = DEMO_EVAL_PER_CLASS,
        points: Optional[Sequence[str]] = None) -> Demo:
    """Export, build, verify, evaluate, profile and report the demo ladder into ``out``.

    ``targets``: the targets to build (default: every one buildable on this host; the
    others are skipped and named). ``points``: the ladder points (default: all bundled; the
    default point is always among them). ``runs``: images measured per profile;
    ``eval_per_class``: generated images per class for the accuracy. ``echo`` receives
    the tables printed along the way.
    """
    from sc2deploy.bundle import Bundle
    from sc2deploy.builders.build import format_table, verify_bundle
    from sc2deploy.report.bundle_info import describe
    from sc2deploy.targets import targets as registry

    out = atomic.ensure_writable(out, "the demo folder")
    for final in (out / "demo-bundle", out / "ladder"):
        if final.exists() and not _is_demo_output(final):
            raise UsageError(f"{final} exists and is not a demo bundle folder; choose another "
                             "--out")
    points = _points(points)
    known = registry()
    wanted = list(known) if targets is None else list(targets)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise UsageError(f"unknown demo targets {unknown}; known: {', '.join(known)}")
    buildable = [n for n in wanted if known[n].build_on == "host" and not known[n].missing()]
    skipped = sorted(set(wanted) - set(buildable))
    if skipped:
        echo(f"targets not buildable here (skipped): {', '.join(skipped)}")
    bundles, passed = _export_and_build(out, points, buildable)
    target = bundles[DEMO_DEFAULT_POINT]
    echo(describe(Bundle.open(target)))
    echo(format_table(verify_bundle(target)))
    runnable = {p: [n for n in passed[p] if known[n].build_on == "host"
                    and not known[n].host_check] for p in points}
    try:
        evaluations = _evaluate(bundles, runnable, out, eval_per_class, echo)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while evaluating: the bundles {target} and "
                          f"{out / 'ladder'} are kept; no results or report written") from None
    demo = _profile(target, runnable[DEMO_DEFAULT_POINT], out, runs, echo, evaluations)
    return replace(demo, ladder=tuple(bundles[p] for p in points))


def _points(points: Optional[Sequence[str]]) -> List[str]:
    """The ladder points to run, the most bytes first; the default point always included."""
    ladder = demo_ladder()
    if DEMO_DEFAULT_POINT not in ladder:
        raise UsageError(f"the bundled ladder lacks its default point {DEMO_DEFAULT_POINT} "
                         f"(found: {', '.join(ladder) or 'none'}): run make demo-ladder")
    wanted = set(ladder if points is None else points) | {DEMO_DEFAULT_POINT}
    unknown = sorted(wanted - set(ladder))
    if unknown:
        raise UsageError(f"unknown ladder points {unknown}; bundled: {', '.join(ladder)}")
    return [p for p in ladder if p in wanted]


def _is_demo_output(folder: Path) -> bool:
    """A bundle (demo-bundle) or a folder of bundles only (ladder)."""
    if (folder / "manifest.json").is_file():
        return True
    return folder.is_dir() and folder.name == "ladder" and all(
        (p / "manifest.json").is_file() for p in folder.iterdir())


def _export_and_build(out: Path, points: Sequence[str],
                      buildable: Sequence[str]) -> Tuple[Dict[str, Path], List[dict]]:
    """Every point exported and built in a staging folder, then swapped in together.

    Returns (bundle folder by point, the targets that passed their gate by point)."""
    from sc2deploy.builders.build import BuildOptions, build_targets
    from sc2deploy.export import ExportOptions, export_bundle

    stage = out / f".demo-stage-{os.getpid()}"
    finals = {p: out / "demo-bundle" if p == DEMO_DEFAULT_POINT else out / "ladder" / p
              for p in points}
    passed: Dict[str, List[str]] = {}
    try:
        for i, point in enumerate(points):
            staged = stage / finals[point].relative_to(out)
            with step(f"ladder point {i + 1}/{len(points)}: {point}"):
                export_bundle(ExportOptions(model=point, out=staged, force=True))
                built = build_targets(staged, buildable, BuildOptions(search=True))
            passed[point] = [r["target"] for r in built if r["passed"]]
        with atomic.deferred_signals():
            atomic.replace_dir(stage / "demo-bundle", out / "demo-bundle")
            if (stage / "ladder").exists():
                atomic.replace_dir(stage / "ladder", out / "ladder")
            elif (out / "ladder").exists():
                shutil.rmtree(out / "ladder")
    except (KeyboardInterrupt, Interrupted):
        raise Interrupted(f"interrupted while exporting and building: {out / 'demo-bundle'} "
                          f"and {out / 'ladder'} are as they were") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return finals, passed


def _evaluate(bundles: Dict[str, Path], names: Dict[str, List[str]], out: Path,
              per_class: int, echo: Callable[[str], None]) -> List[Tuple[dict, Path]]:
    """Accuracy of every runnable target of every point (``names`` by point), and of the
    teacher's JPEG/WebP baselines, on a generated held-out set (OUT/eval)
    → OUT/results/evaluation*.json."""
    from sc2deploy.measure.evaluate import (evaluate, evaluate_baselines, format_baselines,
                                            format_evaluation, parse_baselines, read_labeled)
    from sc2deploy.orchestrate.demo_data import CLASSES, EVAL_SEED, write_labeled_set
    from sc2deploy.results.schema import write_results

    with step(f"generating the labeled eval set ({len(CLASSES)} classes x {per_class} images) "
              f"in {out / 'eval'}"):
        data = read_labeled(write_labeled_set(out / "eval", per_class, EVAL_SEED))
    docs = []
    for point, bundle in bundles.items():
        default = point == DEMO_DEFAULT_POINT
        mine = names[point]  # a point's build may fail a target's gate
        with step(f"evaluating {point}: {', '.join(mine)}"
                  + (" and the teacher's JPEG/WebP baselines" if default else "")):
            doc = evaluate(bundle, data, mine, label=point, progress=False)
            if default:
                doc.update(evaluate_baselines(bundle, data, DEMO_TEACHER,
                                              parse_baselines(DEMO_BASELINES), progress=False))
        echo(format_evaluation(doc) + ("\n" + format_baselines(doc) if default else ""))
        name = "evaluation.json" if default else f"evaluation-{point}.json"
        docs.append((doc, write_results(doc, out / "results" / name)))
    return docs


def _profile(bundle: Path, names: List[str], out: Path, runs: int,
             echo: Callable[[str], None], evaluations: List[Tuple[dict, Path]]) -> Demo:
    """Profile every runnable target with the LoRa link, then write the report."""
    from sc2deploy.measure.options import ProfileOptions, ServerOptions
    from sc2deploy.measure.power import discover
    from sc2deploy.measure.runtime import profile
    from sc2deploy.measure.server import profile_server, server_ms_from
    from sc2deploy.report.document import write_report
    from sc2deploy.report.summary import format_profile
    from sc2deploy.report.worth import compare, format_comparison
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
        report = write_report([*docs, *(doc for doc, _ in evaluations)], out / "report")
    echo(format_comparison(compare([doc for doc, _ in evaluations]), REFERENCE_PIPELINE))
    return Demo(bundle=bundle, report=report,
                results=(*written, *(path for _, path in evaluations)))
