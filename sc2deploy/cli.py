"""Command-line interface: a thin layer over the Python API.

User errors print one line on stderr and exit with code 2; ``--debug`` shows
the traceback instead.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from sc2deploy import __version__, atomic
from sc2deploy.atomic import fix_for
from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import Interrupted, Sc2DeployError, UsageError
from sc2deploy.log import configure, logger, step
from sc2deploy.report.summary import format_profile
from sc2deploy.specs import DEMO_MODEL, HEADS

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sc2deploy", description="Deploy the heads of split-computing models to edge devices.")
    parser.add_argument("--version", action="version", version=f"sc2deploy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="export a checkpoint's head to a verified bundle")
    p.add_argument("model", metavar="MODEL",
                   help=f"one of: {', '.join([DEMO_MODEL, *HEADS])}")
    p.add_argument("--checkpoint", type=Path, metavar="CKPT",
                   help="torchdistill/sc2bench checkpoint (not needed for 'demo')")
    p.add_argument("--input-size", type=int, metavar="N",
                   help="square input size in pixels (default: the model's own)")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="verification images (default: the bundled samples)")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE",
                   help="bundle directory to write")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--tables-formula", default="auto",  # = export.tables.TABLE_FORMULAS
                   choices=("auto", "compressai-1.2.4", "compressai-1.2.6"),
                   help="pmf used when the checkpoint has no stored update() tables: "
                        "compressai-1.2.4 (sign trick, CompressAI <= 1.2.4), compressai-1.2.6 "
                        "(CompressAI >= 1.2.6), auto (by parameter names: _matrix{i} and "
                        "_matrices.{i} -> compressai-1.2.4, matrices.{i} -> compressai-1.2.6)")
    p.add_argument("--exif-transpose", action="store_true",
                   help="preprocessing applies the images' EXIF orientation (default: ignored, "
                        "as by the training loaders)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("info", help="verify a bundle and describe it")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("build", help="build target artifacts into a bundle, gated on fidelity")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--target", action="append", required=True, metavar="T",
                   help="target to build (repeat for several); see `sc2deploy targets`")
    p.add_argument("--calib", type=Path, metavar="DIR",
                   help="calibration images (default: half of the bundled samples)")
    p.add_argument("--search", action="store_true",
                   help="int8: try configurations, keep the fastest that passes the gate")
    p.add_argument("--allow-low-fidelity", action="store_true",
                   help="keep an artifact that fails the symbol-agreement gate")
    p.add_argument("--min-agreement", type=float, metavar="PCT",
                   help="required %% of symbols equal to torch (default: fp32 100, fp16 99.9, "
                        "int8 99)")
    p.add_argument("--per-channel", choices=("on", "off"), default="on",
                   help="int8: per-channel weight scales (default: on)")
    p.add_argument("--reduce-range", action="store_true", help="int8: 7-bit weights")
    p.add_argument("--activations", choices=("int8", "int16", "dynamic"), default="int8",
                   help="int8: activation type (int16 = A16W8 for onnx; dynamic for tflite)")
    p.add_argument("--calibration", choices=("minmax", "entropy", "percentile"),
                   default="minmax", help="int8: calibration method (default: minmax)")
    p.add_argument("--keep-float", action="append", default=[], metavar="NODE",
                   help="int8: node name or op type left in float (repeatable)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("build-engine", help="on a Jetson: build the TensorRT engine")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--precision", choices=("fp16", "int8"), required=True,
                   help="engine precision (build tensorrt-PRECISION on the host first)")
    p.add_argument("--workspace-mb", type=int, default=256, metavar="MB",
                   help="builder workspace (default: 256)")
    p.set_defaults(func=_cmd_build_engine)

    p = sub.add_parser("verify", help="compare every built target with the torch reference")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="evaluation images (default: the half of the samples not used to "
                        "calibrate)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("targets", help="list the targets and whether they can build here")
    p.set_defaults(func=_cmd_targets)

    p = sub.add_parser("encode", help="encode images to containers with a bundle")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--target", default="onnx", help="artifact that runs the head (default: onnx)")
    _add_coder(p)
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="folder for the containers: one IMAGE_STEM.s2c per image")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a container (or a batch of them) to a latent")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle that encoded it")
    p.add_argument("stream", type=Path, metavar="IN", help=".s2c container or batch file")
    _add_coder(p)
    p.add_argument("-o", "--out", type=Path, required=True, metavar="LATENT.npy",
                   help="int32 latent: [C,H,W] for one container, [N,C,H,W] for a batch")
    p.set_defaults(func=_cmd_decode)

    _add_profile_parsers(sub)

    p = sub.add_parser("demo", help="run the whole flow on the bundled demo student")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the demo's outputs (its bundle: DIR/demo-bundle)")
    p.set_defaults(func=_cmd_demo)
    return parser


def _add_profile_parsers(sub) -> None:
    from sc2deploy.measure.energy_models import ENERGY_CHOICES, PROFILES
    from sc2deploy.measure.links import BUILTIN

    p = sub.add_parser("profile", help="encode images with a bundle here (or on --host) and "
                                       "measure latency, bytes, memory and energy")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--target", default="onnx", help="artifact that runs the head (default: onnx)")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="image folder, cycled through (default: the bundled samples)")
    p.add_argument("--warmup", type=int, default=5, metavar="N",
                   help="images encoded before measuring (default: 5)")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--runs", type=int, metavar="N", help="images to measure (default: 50)")
    stop.add_argument("--duration", type=float, metavar="S", help="measure for S seconds")
    p.add_argument("--threads", type=int, metavar="N", help="runtime threads (default: its own)")
    _add_coder(p)
    p.add_argument("--link", metavar="NAME|FILE",
                   help=f"link model: {', '.join(BUILTIN)}, or a .json/.yaml profile")
    p.add_argument("--energy", choices=ENERGY_CHOICES, default="auto",
                   help="energy source (default: auto = first sensor found, else modeled with "
                        "--device-profile, else none)")
    p.add_argument("--device-profile", metavar="NAME",
                   help=f"power profile for modeled energy: {', '.join(PROFILES)}; applied "
                        "only on its device (see --model-host-time)")
    p.add_argument("--model-host-time", action="store_true",
                   help="model the profile's energy anyway when this machine is not its "
                        "device, with this machine's timings (labeled 'host-timed on CPU')")
    p.add_argument("--sysfs-root", type=Path, default=Path("/"), metavar="DIR",
                   help="where sensors are looked up (default: /; a fixture tree in tests)")
    p.add_argument("--pmic-command", metavar="CMD",
                   help="command printing Pi 5 pmic_read_adc output (default: vcgencmd "
                        "pmic_read_adc; with --sysfs-root, ROOT/usr/bin/vcgencmd if present)")
    p.add_argument("--idle", type=float, default=2.0, metavar="S",
                   help="idle baseline before the run, sampler running (default: 2 s)")
    p.add_argument("--sample-interval", type=float, default=10.0, metavar="MS",
                   help="power sampling interval (default: 10 ms)")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="energy windows for the confidence interval (default: 5)")
    server = p.add_mutually_exclusive_group()
    server.add_argument("--server-ms", type=float, metavar="MS",
                        help="server time per image, given by you")
    server.add_argument("--server-results", type=Path, metavar="FILE",
                        help="server time from a `sc2deploy profile-server` result")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the JPEG/WebP input-compression baselines")
    p.add_argument("--label", help="name of this configuration in reports")
    p.add_argument("--host", metavar="USER@HOST",
                   help="run on this device over ssh/scp (your ~/.ssh/config applies)")
    p.add_argument("--port", type=int, metavar="N", help="ssh port (with --host)")
    p.add_argument("--remote-python", default="python3", metavar="PATH",
                   help="python with sc2deploy[device] on the host (default: python3)")
    p.add_argument("--ssh-option", action="append", default=[], metavar="OPT",
                   help="extra ssh/scp argument, repeatable, e.g. --ssh-option=-i "
                        "--ssh-option=KEY (most settings belong in ~/.ssh/config)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="RESULTS.json",
                   help="results file (written atomically; partial on Ctrl-C or SIGTERM)")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser("profile-server", help="measure the server side: range decoding and "
                                              "the decoder, per image")
    p.add_argument("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="images encoded first, untimed (default: the bundled samples)")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="images decoded before measuring (default: 3)")
    p.add_argument("--runs", type=int, default=50, metavar="N",
                   help="images to measure (default: 50)")
    p.add_argument("--threads", type=int, metavar="N", help="decoder threads")
    _add_coder(p)
    p.add_argument("--label", help="name of this configuration in reports")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="RESULTS.json",
                   help="results file")
    p.set_defaults(func=_cmd_profile_server)

    p = sub.add_parser("sweep", help="checkpoints x targets x hosts from one YAML file, one "
                                     "report")
    p.add_argument("sweep", type=Path, metavar="SWEEP.yaml", help="the sweep file")
    p.add_argument("--workers", type=int, metavar="N",
                   help="parallel export/build processes (default: the file's, else one "
                        "per 4 cores)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="folder for bundles/, results/, report/ and sweep.json")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="latency/energy report from profiling results")
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS",
                   help="results files of profile / profile-server")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="folder for report.md, report.html, results.csv and the plots")
    p.set_defaults(func=_cmd_report)


def _add_coder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coder", choices=CODERS,
                        help="range coder (default: constriction if installed, else c)")


def _cmd_export(args) -> int:
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import list_images

    images = list_images(args.images) if args.images else None
    bundle = export_bundle(ExportOptions(model=args.model, out=args.out,
                                         checkpoint=args.checkpoint, input_size=args.input_size,
                                         images=images, force=args.force,
                                         exif_transpose=args.exif_transpose,
                                         tables_formula=args.tables_formula))
    print(f"bundle written: {bundle.path}")
    print(f"next: sc2deploy info {bundle.path}")
    return 0


def _cmd_info(args) -> int:
    from sc2deploy.bundle import Bundle
    from sc2deploy.report.bundle_info import describe

    bundle = Bundle.open(args.bundle)
    print(json.dumps(bundle.manifest, indent=2, sort_keys=True) if args.json else describe(bundle))
    return 0


def _cmd_build(args) -> int:
    from sc2deploy.preprocess import list_images
    from sc2deploy.builders.build import BuildOptions, Int8Options, build_targets, format_table

    int8 = Int8Options(per_channel=args.per_channel == "on", reduce_range=args.reduce_range,
                       activations=args.activations, calibration=args.calibration,
                       keep_float=tuple(args.keep_float))
    options = BuildOptions(calib=list_images(args.calib) if args.calib else None,
                           allow_low_fidelity=args.allow_low_fidelity, search=args.search,
                           int8=int8, min_agreement=args.min_agreement)
    rows = build_targets(args.bundle, args.target, options)
    print(format_table(rows))
    failed = [r["target"] for r in rows if not r["passed"]]
    built = [r["target"] for r in rows if r["passed"]]
    if built:
        print(f"next: sc2deploy profile {args.bundle} --target {built[0]} "
              "--link lora-sx1276-20dbm -o results.json")
    if failed:
        print(f"failed: {', '.join(failed)} (the bundle is unchanged for them)")
        return 1
    return 0


def _cmd_build_engine(args) -> int:
    from sc2deploy.builders.tensorrt import build_engine

    engine = build_engine(args.bundle, args.precision, args.workspace_mb)
    print(f"engine written: {engine}")
    print(f"next: sc2deploy verify {args.bundle}")
    return 0


def _cmd_verify(args) -> int:
    from sc2deploy.preprocess import list_images
    from sc2deploy.builders.build import format_table, to_json, verify_bundle

    rows = verify_bundle(args.bundle, list_images(args.images) if args.images else None)
    print(to_json(rows) if args.json else format_table(rows))
    return 0


def _cmd_targets(args) -> int:
    from sc2deploy.targets import targets

    for name, t in targets().items():
        state = t.missing("build") or "buildable here"
        print(f"{name:<21} {t.precision:<5} {t.runtime:<25} built on {t.build_on:<6}  {state}")
    return 0


def _cmd_encode(args) -> int:
    from sc2deploy.bundle import Bundle
    from sc2deploy.targets.encoding import encode_images

    stems = [p.stem for p in args.images]
    if len(set(stems)) != len(stems):
        raise UsageError("two images share a file name stem; their containers would collide")
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise UsageError(f"image not found: {', '.join(missing)}")
    bundle = Bundle.open(args.bundle)
    atomic.ensure_writable(args.out, "--out")
    written = 0
    try:
        for path, data in encode_images(bundle, args.images, args.target, args.coder):
            dest = atomic.write_bytes(args.out / f"{path.stem}.s2c", data)
            written += 1
            print(f"{path} -> {dest} ({len(data)} bytes)")
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {written} of {len(args.images)} containers written to "
                          f"{args.out}, each complete") from None
    return 0


def _cmd_decode(args) -> int:
    import io

    import numpy as np

    from sc2deploy.bundle import Bundle
    from sc2deploy.targets.encoding import latent_codec

    if not args.stream.is_file():
        raise UsageError(f"stream not found: {args.stream}")
    bundle = Bundle.open(args.bundle)
    atomic.ensure_writable(args.out.parent, "the folder of --out")
    codec = latent_codec(bundle, args.coder)
    latents = codec.decode_batch(args.stream.read_bytes(), bundle.model["latent"]["shape"])
    if not latents:
        raise UsageError(f"{args.stream} is empty")
    latent = latents[0] if len(latents) == 1 else np.stack(latents)
    buf = io.BytesIO()
    np.save(buf, latent, allow_pickle=False)
    atomic.write_bytes(args.out, buf.getvalue())
    print(f"{args.stream} -> {args.out} (int32 {list(latent.shape)})")
    return 0


def _cmd_profile(args) -> int:
    import shlex

    from sc2deploy.results.schema import load_results, write_results
    from sc2deploy.measure.runtime import ProfileOptions, given_server_ms, profile
    from sc2deploy.measure.server import server_ms_from

    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    server = None
    if args.server_ms is not None:
        server = given_server_ms(args.server_ms)
    elif args.server_results is not None:
        server = server_ms_from(load_results([args.server_results])[0], str(args.server_results))
    options = ProfileOptions(
        bundle=args.bundle, target=args.target, images=args.images, warmup=args.warmup,
        runs=args.runs, duration_s=args.duration, threads=args.threads, coder=args.coder,
        link=args.link, energy=args.energy, device_profile=args.device_profile,
        model_host_time=args.model_host_time, sysfs_root=args.sysfs_root,
        pmic_command=shlex.split(args.pmic_command) if args.pmic_command else None,
        idle_s=args.idle, sample_interval_s=args.sample_interval / 1e3,
        energy_repeats=args.repeats, server=server, baselines=not args.no_baselines,
        label=args.label)
    if args.host:
        return _profile_remote(args, options)
    _stop_on_signals()
    try:
        doc = profile(options)
    except KeyboardInterrupt:
        logger.error("interrupted before any image was measured: nothing written")
        return 130
    write_results(doc, args.out)
    print(format_profile(doc))
    if not doc["complete"]:
        print(f"interrupted: PARTIAL results ({doc['runs']['measured']} images) written to "
              f"{args.out}")
        return 130
    print(f"results written: {args.out}")
    print(f"next: sc2deploy report {args.out} -o REPORT_DIR")
    return 0


REMOTE_TIMEOUT_S = 600.0  # copy + run + fetch, on top of --duration


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM end a measurement early with partial results, even when the
    process was started with SIGINT ignored (background jobs of non-interactive shells)."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


def _profile_remote(args, options) -> int:
    from sc2deploy.orchestrate.remote import profile_remote
    from sc2deploy.measure.runtime import remote_argv

    if args.images is None:
        raise UsageError("--host needs --images DIR (the folder copied to the device)")
    timeout = REMOTE_TIMEOUT_S + (args.duration or 0.0) + (args.idle or 0.0)
    doc = profile_remote(args.host, args.bundle, args.images, remote_argv(options), args.out,
                         port=args.port, remote_python=args.remote_python, timeout=timeout,
                         ssh_options=args.ssh_option)
    print(format_profile(doc))
    print(f"results written: {args.out} (measured on {args.host})")
    return 0


def _cmd_profile_server(args) -> int:
    from sc2deploy.results.schema import write_results
    from sc2deploy.measure.server import ServerOptions, profile_server

    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    _stop_on_signals()
    doc = profile_server(ServerOptions(bundle=args.bundle, images=args.images,
                                       warmup=args.warmup, runs=args.runs, coder=args.coder,
                                       threads=args.threads, label=args.label))
    write_results(doc, args.out)
    print(format_profile(doc))
    if not doc["complete"]:
        print(f"interrupted: PARTIAL results written to {args.out}")
        return 130
    print(f"results written: {args.out}")
    print(f"next: sc2deploy profile BUNDLE --server-results {args.out} -o RESULTS.json")
    return 0


def _cmd_sweep(args) -> int:
    import dataclasses

    from sc2deploy.orchestrate.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    atomic.ensure_writable(args.out, "the sweep folder")
    if args.workers is not None:
        if args.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {args.workers}")
        sweep = dataclasses.replace(sweep, workers=args.workers)
    report, summary = run_sweep(sweep, args.out)
    failed = [i for i in summary["items"] if i["status"] != "ok"]
    for item in summary["items"]:
        print(f"{item['checkpoint']:<20} {item['target']:<14} {item['host']:<18} "
              f"{item['status']}" + (f": {item['error']}" if item.get("error") else ""))
    print(f"sweep: {len(summary['items']) - len(failed)} of {len(summary['items'])} items ok "
          f"in {summary['total_seconds']:.0f} s (export/build {summary['prepare_seconds']:.0f} s, "
          f"{sweep.workers} workers); summary: {Path(args.out) / 'sweep.json'}")
    if report:
        print(f"report: {report}")
    return 1 if failed else 0


def _cmd_report(args) -> int:
    from sc2deploy.report.document import write_report
    from sc2deploy.results.schema import load_results

    atomic.ensure_writable(args.out, "the report folder")
    html = write_report(load_results(args.results), args.out)
    print(f"report written: {html}")
    return 0


def _cmd_demo(args) -> int:
    from sc2deploy.bundle import Bundle
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.report.bundle_info import describe
    from sc2deploy.targets import targets
    from sc2deploy.builders.build import BuildOptions, build_targets, format_table, verify_bundle

    out = atomic.ensure_writable(args.out, "the demo folder")
    target = out / "demo-bundle"
    if target.exists() and not (target / "manifest.json").is_file():
        raise UsageError(f"{target} exists and is not a bundle; choose another --out")
    buildable = [n for n, t in targets().items() if t.build_on == "host" and not t.missing()]
    skipped = sorted(set(targets()) - set(buildable))
    if skipped:
        print(f"targets not buildable here (skipped): {', '.join(skipped)}")
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
    print(describe(Bundle.open(target)))
    print(format_table(verify_bundle(target)))
    built = [r["target"] for r in rows if r["passed"]]
    html = _demo_profile(target, [n for n in built if targets()[n].build_on == "host"
                                  and "host check" not in targets()[n].runtime], out)
    print(f"demo bundle: {target.resolve()}")
    print(f"report: {html.resolve()}")
    return 0


DEMO_LINK = "lora-sx1276-20dbm"
DEMO_DEVICE_PROFILE = "rpi4"


def _demo_profile(bundle: Path, names: List[str], out: Path) -> Path:
    """Profile every runnable target with the LoRa link, then write the report."""
    from sc2deploy.measure.power import discover
    from sc2deploy.report.document import write_report
    from sc2deploy.results.schema import write_results
    from sc2deploy.measure.runtime import ProfileOptions, profile
    from sc2deploy.measure.server import ServerOptions, profile_server, server_ms_from

    results = out / "results"
    rapl, reasons = discover(kind="rapl")
    energy = "rapl" if rapl is not None else "model"
    if rapl is None:
        logger.info("energy: RAPL unavailable (%s); modeling with the %r device profile on "
                    "this machine's timings, labeled 'modeled, host-timed on CPU'",
                    reasons.get("rapl"), DEMO_DEVICE_PROFILE)
    with step("profiling the server side (range decoding; the demo student has no decoder)"):
        server_doc = profile_server(ServerOptions(bundle=bundle, runs=30, progress=False))
        write_results(server_doc, results / "server.json")
    server = server_ms_from(server_doc, "server.json")
    docs = [server_doc]
    for name in names:
        with step(f"profiling {name} ({energy} energy, {DEMO_LINK})"):
            doc = profile(ProfileOptions(
                bundle=bundle, target=name, runs=30, warmup=3, threads=None, link=DEMO_LINK,
                energy=energy, device_profile=DEMO_DEVICE_PROFILE,
                model_host_time=energy == "model", idle_s=1.0, server=server, progress=False))
            write_results(doc, results / f"{name}.json")
            docs.append(doc)
            print(format_profile(doc))
        if not doc["complete"]:
            raise Interrupted(f"interrupted while profiling {name}: the bundle {bundle} and "
                              f"the results in {results} are kept ({name}.json is PARTIAL); "
                              "no report written")
    with step("writing the report"):
        return write_report(docs, out / "report")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure()
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `sc2deploy info --json | head`: the reader left
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (KeyboardInterrupt, Interrupted) as exc:
        if args.debug:
            raise
        kept = str(exc) if isinstance(exc, Interrupted) else (
            "interrupted: every output is written atomically, so nothing partial was left and "
            "earlier files are as they were")
        logger.error("sc2deploy %s: %s", args.command, kept)
        return EXIT_INTERRUPTED
    except Sc2DeployError as exc:
        if args.debug:
            raise
        logger.error("sc2deploy %s: error: %s", args.command, exc)
        return EXIT_USER_ERROR
    except OSError as exc:
        if args.debug:
            raise
        where = exc.filename or "a file"
        logger.error("sc2deploy %s: error: %s: %s: %s", args.command, where,
                     exc.strerror or exc, fix_for(exc))
        return EXIT_USER_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
