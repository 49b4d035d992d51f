"""``build``, ``build-engine``, ``verify``, ``explain``, ``tune``, ``targets``: artifacts
built into a bundle and gated on fidelity, measured again, explained and tuned."""

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Sequence, Tuple

from sc2deploy import atomic
from sc2deploy.builders.build import BuildOptions
from sc2deploy.builders.sensitivity import ExplainOptions
from sc2deploy.builders.tensorrt_build import WORKSPACE_MB
from sc2deploy.errors import Sc2DeployError, UsageError
from sc2deploy.measure.options import RemoteOptions
from sc2deploy.measure.tuning import TuneOptions
from sc2deploy.options import Command, option, spec_of, validate
from sc2deploy.orchestrate.emulation.emulator import CPUS
from sc2deploy.orchestrate.emulation.verify import EmulateOptions
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP, list_images
from sc2deploy.targets.gate import GateOptions

BUNDLE = dict(positional=True, type=Path, metavar="BUNDLE", help="bundle directory")


def _with_help(cls, name: str, help: str):
    """Field ``name`` of ``cls`` declared again with another help (a subclass's)."""
    f = next(f for f in fields(cls) if f.name == name)
    return dataclasses.field(default=f.default,
                             metadata={"option": dataclasses.replace(spec_of(f), help=help)})


@dataclass(frozen=True)
class SearchEmulateOptions(EmulateOptions):
    """build's emulate group: the same flags; --emulate says what a search does with it."""

    cpus: Tuple[str, ...] = _with_help(
        EmulateOptions, "cpus",
        "with --search: also measure each configuration on this aarch64 CPU emulated by "
        "qemu-user and keep the first that passes on the host and every CPU (by fidelity only) "
        f"(repeatable; {', '.join(CPUS)})")


@dataclass(frozen=True)
class BuildCommandOptions:
    bundle: Path = option(**BUNDLE)
    targets: Tuple[str, ...] = option(flag="--target", repeat=True, required=True, metavar="T",
                                      help="target to build (repeat for several); see "
                                           "`sc2deploy targets`")
    build: BuildOptions = option(BuildOptions(), nested=BuildOptions)
    emulate: SearchEmulateOptions = option(SearchEmulateOptions(), nested=SearchEmulateOptions)


def build(options: BuildCommandOptions) -> int:
    from sc2deploy.builders.build import build_targets, outcome_lines

    if options.emulate.cpus:
        from sc2deploy.orchestrate.emulation.search import build_emulated

        rows = build_emulated(options.bundle, options.targets, options.build, options.emulate)
    else:
        rows = build_targets(options.bundle, options.targets, options.build)
    print("\n".join(outcome_lines(options.bundle, rows)))
    return 0 if all(r["passed"] for r in rows) else 1


@dataclass(frozen=True)
class BuildEngineOptions:
    bundle: Path = option(**BUNDLE)
    precision: str = option(flag="--precision", choices=("fp16", "int8"), required=True,
                            help="engine precision (build tensorrt-PRECISION on the host first)")
    workspace_mb: int = option(WORKSPACE_MB, flag="--workspace-mb", type=int, metavar="MB",
                               help="builder workspace (default: {default})")


def build_engine(options: BuildEngineOptions) -> int:
    from sc2deploy.builders.tensorrt_build import build_engine as build_it

    engine = build_it(options.bundle, options.precision, options.workspace_mb)
    print(f"engine written: {engine}\nnext: sc2deploy verify {options.bundle}")
    return 0


@dataclass(frozen=True)
class VerifyOptions:
    bundle: Path = option(**BUNDLE)
    images: Optional[Sequence[Path]] = option(
        None, flag="--images", type=Path, metavar="DIR", parse=list_images,
        help="evaluation images (default: the half of the samples not used to calibrate)")
    gate: GateOptions = option(GateOptions(), nested=GateOptions)
    emulate: EmulateOptions = option(EmulateOptions(), nested=EmulateOptions)
    remote: RemoteOptions = option(RemoteOptions(), nested=RemoteOptions)
    host_images: Optional[int] = option(None, flag="--host-images", type=int, metavar="N",
                                        help="with --host: evaluation images run on the device "
                                             "(default: all)")
    preprocess: str = option("exact", flag="--preprocess", choices=PREPROCESS_MODES,
                             help=MODES_HELP)
    json: bool = option(False, flag="--json", type=bool, help="print the rows as JSON")

    def __post_init__(self):
        validate(self)
        if self.remote.host and self.emulate.cpus:
            raise UsageError("give --host or --emulate, not both: run verify once for each")
        where = "--host" if self.remote.host else "--emulate" if self.emulate.cpus else None
        if where and self.preprocess != "exact":
            raise UsageError(f"verify {where} measures exact preprocessing only; got "
                             f"--preprocess {self.preprocess}: run verify --preprocess "
                             f"{self.preprocess} here (without --host/--emulate)")


def verify(options: VerifyOptions) -> int:
    from sc2deploy.builders.build import to_json, verify_bundle, verify_lines

    gated = BuildOptions(gate=options.gate)
    if options.remote.host:
        from sc2deploy.orchestrate.ssh.verify import remote_lines, verify_remote

        rows = verify_remote(options.bundle, options.remote, options.images, gated,
                             options.host_images)
        lines = remote_lines(options.bundle, rows, options.remote.host, gated)
    elif options.emulate.cpus:
        from sc2deploy.orchestrate.emulation.verify import emulated_lines, verify_emulated

        rows = verify_emulated(options.bundle, options.emulate, options.images, gated)
        lines = emulated_lines(options.bundle, rows)
    else:
        rows = verify_bundle(options.bundle, options.images, gated, options.preprocess)
        lines = verify_lines(options.bundle, rows, options.preprocess)
    print(to_json(rows) if options.json else "\n".join(lines))
    return 0


@dataclass(frozen=True)
class ExplainCommandOptions:
    bundle: Path = option(**BUNDLE)
    out: Path = option(flag="--out", short="-o", type=Path, required=True, metavar="RESULTS.json",
                       help="results file (kind: sensitivity; the figure goes beside it)")
    explain: ExplainOptions = option(ExplainOptions(), nested=ExplainOptions)
    figure: bool = option(True, flag="--no-figure", type=bool,
                          help="write no figure (RESULTS.png)")


def explain(options: ExplainCommandOptions) -> int:
    from sc2deploy.builders.sensitivity import explain as explain_build, write_results
    from sc2deploy.measure.progress import Progress
    from sc2deploy.report.sensitivity import format_sensitivity, summary_lines, write_figure

    atomic.ensure_writable(options.out.parent, "the folder of the results file")
    doc = explain_build(options.bundle, options.explain,
                        lambda title, total: Progress(title, total, "build"))
    written = write_results(doc, options.out)
    print(format_sensitivity(doc))
    figure = None
    if options.figure:
        try:
            figure = write_figure(doc, options.out)
        except Sc2DeployError as exc:  # no matplotlib: the table and the results are kept
            print(f"figure: not drawn ({exc})")
    print("\n".join(summary_lines(doc, written, figure)))
    return 0


def tune(options: TuneOptions) -> int:
    from sc2deploy.measure.tuning import format_tuning, outcome_line, record, tune as time_them

    result = time_them(options)
    print(format_tuning(result, options.target))
    if not options.dry_run:
        record(options, result)
    print(outcome_line(options, result))
    return 0


@dataclass(frozen=True)
class TargetsOptions:
    """``targets`` takes no arguments."""


def list_targets(options: TargetsOptions) -> int:
    from sc2deploy.targets.registry import target_lines

    for line in target_lines():
        print(line)
    return 0


COMMANDS = {
    "build": Command("build target artifacts into a bundle, gated on fidelity",
                     BuildCommandOptions, build),
    "build-engine": Command("on a Jetson: build the TensorRT engine", BuildEngineOptions,
                            build_engine),
    "verify": Command("compare every built target with the torch reference", VerifyOptions,
                      verify),
    "explain": Command("per-layer sensitivity of an int8 build: each quantizable node int8 "
                       "alone and fp32 alone, ranked (table, figure, results file)",
                       ExplainCommandOptions, explain),
    "tune": Command("time a target's session settings (threads, graph optimization, XNNPACK) "
                    "on this CPU and record the fastest for profile", TuneOptions, tune),
    "targets": Command("list the targets and whether they can build here", TargetsOptions,
                       list_targets),
}
