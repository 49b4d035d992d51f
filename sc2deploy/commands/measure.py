"""``profile``, ``profile-server``, ``sweep``, ``report``, ``evaluate``, ``replay``: measure a
bundle here or on a device, many at once, its accuracy and the adaptive ladder on a trace;
report the results."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from sc2deploy import atomic
from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import EXIT_INTERRUPTED, UsageError
from sc2deploy.measure.evaluate import parse_baselines
from sc2deploy.measure.options import CODER_HELP, ProfileOptions, RemoteOptions, ServerOptions
from sc2deploy.measure.replay import ReplayOptions
from sc2deploy.options import Command, option, validate
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP as PREPROCESS_HELP
from sc2deploy.report.document import FORMATS, parse_formats

NEXT_REPORT = "sc2deploy report {out} -o REPORT_DIR"


def results_file(help_text: str, metavar: str = "RESULTS.json"):
    """The ``-o/--out`` field of a command that writes one file (or folder)."""
    return option(flag="--out", short="-o", type=Path, required=True, metavar=metavar,
                  help=help_text)


@dataclass(frozen=True)
class ProfileCommandOptions:
    profile: ProfileOptions = option(nested=ProfileOptions)
    remote: RemoteOptions = option(nested=RemoteOptions)
    out: Path = results_file("results file (written atomically; partial on Ctrl-C or SIGTERM)")


def profile(options: ProfileCommandOptions) -> int:
    from sc2deploy.orchestrate.ssh.remote import profile_on_host
    from sc2deploy.report.summary import format_profile

    out = options.out
    atomic.ensure_writable(out.parent, "the folder of the results file")
    if options.remote.host:
        doc = profile_on_host(options.profile, options.remote, out)
        print(f"{format_profile(doc)}\nresults written: {out} (measured on "
              f"{options.remote.host})")
        code = 0
    else:
        from sc2deploy.measure.runtime import profile as measure

        code = _measure(measure, options.profile, out, NEXT_REPORT)
    if options.profile.per_op and code == 0:
        from sc2deploy.report.per_op import figure_beside

        drawn = figure_beside(out)
        if drawn:
            print(drawn)
    return code


@dataclass(frozen=True)
class ProfileServerOptions:
    server: ServerOptions = option(nested=ServerOptions)
    out: Path = results_file("results file")


def profile_server(options: ProfileServerOptions) -> int:
    from sc2deploy.measure.server import profile_server as measure

    atomic.ensure_writable(options.out.parent, "the folder of the results file")
    return _measure(measure, options.server, options.out,
                    "sc2deploy profile BUNDLE --server-results {out} -o RESULTS.json")


def _measure(measure, options, out: Path, next_command: str) -> int:
    """Run ``measure(options)`` into ``out``, print what it measured; the exit code."""
    from sc2deploy.measure.runtime import measure_and_write
    from sc2deploy.report.summary import measured_lines

    doc, written = measure_and_write(measure, options, out)
    print("\n".join(measured_lines(doc, out, written, next_command.format(out=out))))
    return 0 if doc["complete"] else EXIT_INTERRUPTED


@dataclass(frozen=True)
class SweepOptions:
    sweep: Path = option(positional=True, type=Path, metavar="SWEEP.yaml", help="the sweep file")
    out: Path = results_file("folder for bundles/, results/, report/ and sweep.json", "DIR")
    workers: Optional[int] = option(None, flag="--workers", type=int, metavar="N",
                                    help="parallel export/build processes (default: the "
                                         "file's, else one per 4 cores)")


def sweep(options: SweepOptions) -> int:
    from sc2deploy.orchestrate.sweep import load_sweep, run_sweep, summary_lines

    loaded = load_sweep(options.sweep, workers=options.workers)
    atomic.ensure_writable(options.out, "the sweep folder")
    _, summary = run_sweep(loaded, options.out)
    print("\n".join(summary_lines(summary, options.out)))
    return 1 if any(i["status"] != "ok" for i in summary["items"]) else 0


@dataclass(frozen=True)
class ReportOptions:
    results: Tuple[Path, ...] = option(
        positional=True, type=Path, nargs="+", metavar="RESULTS",
        help="results files of profile / profile-server / evaluate / stream / replay (an "
             "adaptive stream or a replay: the adaptive timeline)")
    out: Path = results_file("folder for report.html, report.md, the figures and tables/",
                             "DIR")
    formats: Tuple[str, ...] = option(
        FORMATS, flag="--format", metavar="LIST", parse=parse_formats,
        help="what to write, comma-separated: html (figures embedded), md, png, pdf, svg (each "
             "figure), latex, csv (each table, in tables/; csv also results.csv) (default: all)")


def report(options: ReportOptions) -> int:
    from sc2deploy.report.document import write_report
    from sc2deploy.results.schema import load_results

    with atomic.output_folder(options.out, "the report folder"):  # removed again if refused
        written = write_report(load_results(options.results), options.out, options.formats)
    print(f"report written: {written}")
    return 0


@dataclass(frozen=True)
class EvaluateOptions:
    bundle: Path = option(positional=True, type=Path, metavar="BUNDLE", help="bundle directory")
    images: Path = option(flag="--images", type=Path, required=True, metavar="DIR",
                          help="labeled images: DIR/CLASS/IMAGE (ImageFolder: class index = "
                               "position of CLASS in the sorted folder names), or flat with "
                               "--labels")
    out: Path = results_file("results file (kind: evaluation)")
    labels: Optional[Path] = option(None, flag="--labels", type=Path, metavar="FILE",
                                    help="class indices of a flat DIR: CSV filename,class_index "
                                         "or JSON {filename: index}")
    classes: Optional[Path] = option(None, flag="--classes", type=Path, metavar="FILE",
                                     help="class folder names, one per line, in the model's "
                                          "class order (default: sorted, as ImageNet's WNIDs)")
    targets: Tuple[str, ...] = option((), flag="--target", repeat=True, metavar="T",
                                      help="target to evaluate besides the fp32 pipeline "
                                           "(repeatable; default: every artifact that runs "
                                           "here)")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    preprocess: str = option("exact", flag="--preprocess", choices=PREPROCESS_MODES,
                             help=PREPROCESS_HELP)
    label: Optional[str] = option(None, flag="--label", metavar="NAME",
                                  help="name in reports (default: MODEL/evaluate)")
    teacher: Optional[Path] = option(None, flag="--teacher", type=Path, metavar="ONNX",
                                     help="classifier of the head's input, for the "
                                          "input-compression baselines (the demo's: "
                                          "sc2deploy/data/demo_teacher.onnx)")
    baselines: Sequence[Tuple[str, int]] = option(  # (codec, quality) points
        (), flag="--baselines", repeat=True, metavar="CODEC:Q,...", parse=parse_baselines,
        help="compress each preprocessed image with jpeg or webp at these qualities and "
             "classify it with --teacher (repeatable), e.g. jpeg:10,25,50,75,90")

    def __post_init__(self):
        validate(self)
        if self.baselines and self.teacher is None:
            raise UsageError("--baselines needs --teacher ONNX: the classifier that sees the "
                             "JPEG/WebP-compressed images")


def evaluate(options: EvaluateOptions) -> int:
    from sc2deploy.measure.evaluate import (evaluate as run, evaluate_baselines,
                                            format_baselines, format_evaluation, read_labeled)
    from sc2deploy.results.schema import write_results

    out = options.out
    with atomic.output_folder(out.parent, "the folder of the results file"):
        data = read_labeled(options.images, options.labels, options.classes)
        doc = run(options.bundle, data, options.targets, options.coder, options.label,
                  preprocess=options.preprocess)
        text = format_evaluation(doc)
        if options.teacher is not None:
            doc.update(evaluate_baselines(options.bundle, data, options.teacher,
                                          options.baselines))
            text += "\n" + format_baselines(doc)
        written = write_results(doc, out)
    print(f"{text}\nresults written: {written}\nnext: {NEXT_REPORT.format(out=out)}")
    return 0


@dataclass(frozen=True)
class ReplayCommandOptions:
    replay: ReplayOptions = option(nested=ReplayOptions)
    out: Path = results_file("results file (kind: replay)")


def replay(options: ReplayCommandOptions) -> int:
    from sc2deploy.measure.replay import format_header, replay_ladder
    from sc2deploy.results.schema import write_results

    atomic.ensure_writable(options.out.parent, "the folder of the results file")
    result, doc = replay_ladder(options.replay)
    written = write_results(doc, options.out)
    print(f"{format_header(doc)}\n{result.table()}\nresults written: {written}\n"
          f"next: {NEXT_REPORT.format(out=options.out)}")
    return 0


COMMANDS = {
    "profile": Command("encode images with a bundle here (or on --host) and measure latency, "
                       "bytes, memory and energy", ProfileCommandOptions, profile),
    "profile-server": Command("measure the server side: range decoding and the decoder, per "
                              "image", ProfileServerOptions, profile_server),
    "sweep": Command("checkpoints x targets x hosts from one YAML file, one report",
                     SweepOptions, sweep),
    "report": Command("latency/energy/accuracy report from profiling and evaluation results",
                      ReportOptions, report),
    "evaluate": Command("top-1/top-5 accuracy and bytes per image of each target on labeled "
                        "images", EvaluateOptions, evaluate),
    "replay": Command("model the adaptive ladder on a throughput trace: the policy against "
                      "every fixed point", ReplayCommandOptions, replay),
}
