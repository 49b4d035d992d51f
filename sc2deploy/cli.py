"""Command-line interface: a thin layer over the Python API.

Every command is one row of ``COMMANDS``: its help, its handler (a few lines over the
Python API) and its arguments; the ``profile`` and ``profile-server`` flags come from the
fields of their options classes (``sc2deploy.measure.options``). User errors print one
line on stderr and exit with code 2; ``--debug`` shows the traceback instead.
"""

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import List, Optional

from sc2deploy import __version__, atomic
from sc2deploy.atomic import fix_for
from sc2deploy.bundle import Bundle
from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import Interrupted, Sc2DeployError
from sc2deploy.log import configure, logger
from sc2deploy.measure.options import (CODER_HELP, ProfileOptions, RemoteOptions, ServerOptions,
                                       add_arguments, from_namespace)
from sc2deploy.measure.tuning import TuneOptions
from sc2deploy.orchestrate.emulation import CPUS as EMULATED_CPUS
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP, list_images
from sc2deploy.serving.batching import MODES as TAIL_BATCH_MODES, refuse_unbatchable
from sc2deploy.report.summary import format_profile
from sc2deploy.specs import DEMO_MODEL, HEADS, demo_ladder

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI; no option may be abbreviated (``serve --token X`` must not be taken for
    ``--token-file X``)."""
    parser = argparse.ArgumentParser(
        prog="sc2deploy", description="Deploy the heads of split-computing models to edge devices.",
        allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"sc2deploy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, handler, *arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, allow_abbrev=False)
        for add in arguments:
            add(p)
        p.set_defaults(func=handler)
    return parser


def arg(*flags, **kwargs):
    """One ``add_argument`` call, as data."""
    return lambda parser: parser.add_argument(*flags, **kwargs)


def options(cls):
    """The flags declared by the fields of an options class."""
    return lambda parser: add_arguments(parser, cls)


def out(metavar: str, help_text: str, *flags: str):
    return arg(*(flags or ("-o", "--out")), type=Path, required=True, metavar=metavar,
               help=help_text)


BUNDLE = arg("bundle", type=Path, metavar="BUNDLE", help="bundle directory")
GATE = (arg("--gate", choices=("auto", "task", "symbols"), default="auto",
            help="what decides: task = the server's predictions (needs a tail), symbols; "
                 "auto = task when the bundle has a tail (fp32: always symbols)"),
        arg("--min-agreement", type=float, metavar="PCT", help="symbols gate: required %% of "
            "symbols equal to torch (default: fp32 100, fp16 99.9, int8 99)"),
        arg("--min-top1", type=float, metavar="PCT", help="task gate: the bar for the lower "
            "bound of the 95 %% interval of the top-1 agreement with the fp32 pipeline "
            "(default: 95)"),
        arg("--max-kl", type=float, metavar="NATS", help="task gate: mean KL divergence of the "
            "predictions from the fp32 pipeline's (default: 0.01)"))
CODER = arg("--coder", choices=CODERS, help=CODER_HELP)
PREPROCESS = arg("--preprocess", choices=PREPROCESS_MODES, default="exact", help=MODES_HELP)
TARGET = arg("--target", default="onnx", help="artifact that runs the head (default: onnx)")


def switch(flag: str, help_text: str):
    return arg(flag, action="store_true", help=help_text)


def emulate(help_text: str) -> tuple:
    """--emulate CPU (repeatable), --emulate-images, --emulate-work (build --search, verify)."""
    return (
        arg("--emulate", action="append", default=[], metavar="CPU", choices=EMULATED_CPUS,
            help=f"{help_text} (repeatable; {', '.join(EMULATED_CPUS)})"),
        arg("--emulate-images", type=int, default=4, metavar="N",
            help="evaluation images run under emulation (default: 4; ~0.5-4.5 s per 224 px "
                 "image and artifact)"),
        arg("--emulate-work", type=Path, metavar="DIR",
            help="the emulation's work folder, shared with `make arm-check` "
                 "(default: build/arm of the source checkout)"))


def emulate_options(args):
    """The EmulateOptions of --emulate, --emulate-images and --emulate-work."""
    from sc2deploy.orchestrate.verify_emulated import EmulateOptions

    return EmulateOptions(cpus=tuple(dict.fromkeys(args.emulate)), images=args.emulate_images,
                          **({"work": args.emulate_work} if args.emulate_work else {}))


def _frame_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x480")


def images(help_text: str):
    return arg("--images", type=Path, metavar="DIR", help=help_text)


def _export(args) -> int:
    from sc2deploy.export import ExportOptions, export_bundle

    bundle = export_bundle(ExportOptions(
        model=args.model, out=args.out, checkpoint=args.checkpoint, input_size=args.input_size,
        images=list_images(args.images) if args.images else None, force=args.force,
        exif_transpose=args.exif_transpose, tables_formula=args.tables_formula))
    print(f"bundle written: {bundle.path}\nnext: sc2deploy info {bundle.path}")
    return 0


def _add_tail(args) -> int:
    from sc2deploy.export.extra_tail import AddTailOptions, add_tail

    bundle = add_tail(AddTailOptions(bundle=args.bundle, name=args.name,
                                     checkpoint=args.checkpoint, replace=args.replace))
    entry = bundle.manifest["tails"][args.name]
    print(f"tail {args.name!r} added: {bundle.file(entry['file'])}\n"
          f"next: sc2deploy serve {bundle.path}  (answers every tail in one request)")
    return 0


def _info(args) -> int:
    from sc2deploy.report.bundle_info import describe

    bundle = Bundle.open(args.bundle)
    print(json.dumps(bundle.manifest, indent=2, sort_keys=True) if args.json else describe(bundle))
    return 0


def _build(args) -> int:
    from sc2deploy.builders.build import (BuildOptions, Int8Options, build_targets, format_table,
                                          next_steps)

    int8 = Int8Options(per_channel=args.per_channel == "on", reduce_range=args.reduce_range,
                       activations=args.activations, calibration=args.calibration,
                       keep_float=tuple(args.keep_float))
    options = BuildOptions(calib=list_images(args.calib) if args.calib else None,
                           task_images=list_images(args.task_images) if args.task_images else None,
                           search=args.search, allow_low_fidelity=args.allow_low_fidelity,
                           int8=int8, **_gate(args))
    if args.emulate:
        from sc2deploy.orchestrate.search_emulated import build_emulated

        rows = build_emulated(args.bundle, args.target, options, emulate_options(args))
    else:
        rows = build_targets(args.bundle, args.target, options)
    print(format_table(rows))
    for row in rows:
        for cpu, c in row.get("emulation", {}).items():
            print(f"{row['target']} on {cpu} (qemu): {c['inference_s_per_image']:.2f} s per "
                  f"image per candidate ({c['images']} images, {c['process_s']:.1f} s in all); "
                  "emulated: no timing")
    failed = [r["target"] for r in rows if not r["passed"]]
    for line in next_steps(args.bundle, rows):
        print(line)
    refused = [r["target"] for r in rows if not r["passed"] and "error" in r]
    kept = [t for t in failed if t not in refused]
    if refused:
        print(f"failed: {', '.join(refused)} (the bundle is unchanged for them)")
    if kept:
        print(f"failed the gate, kept anyway (--allow-low-fidelity): {', '.join(kept)}")
    return 1 if failed else 0


def _gate(args) -> dict:
    return {"gate": args.gate, "min_agreement": args.min_agreement, "min_top1": args.min_top1,
            "max_kl": args.max_kl}


def _build_engine(args) -> int:
    from sc2deploy.builders.tensorrt_build import build_engine

    engine = build_engine(args.bundle, args.precision, args.workspace_mb)
    print(f"engine written: {engine}\nnext: sc2deploy verify {args.bundle}")
    return 0


def _verify(args) -> int:
    from sc2deploy.builders.build import BuildOptions, format_table, to_json, verify_bundle

    images = list_images(args.images) if args.images else None
    remote = from_namespace(RemoteOptions, args)
    if remote.host:
        from sc2deploy.errors import UsageError
        from sc2deploy.orchestrate.verify_remote import verify_remote

        if args.emulate:
            raise UsageError("give --host or --emulate, not both: run verify once for each")
        _exact_only(args, "--host")
        options = BuildOptions(**_gate(args))
        rows = verify_remote(args.bundle, remote, images, options, args.host_images)
        print(to_json(rows) if args.json else format_table(rows))
        if not args.json:
            print(f"measured on {remote.host} over ssh: p50 ms of {options.latency_runs} "
                  "inferences, 1 thread\nrecorded: fidelity_by_cpu of each artifact in "
                  f"{args.bundle}/manifest.json")
        return 0
    if not args.emulate:
        rows = verify_bundle(args.bundle, images, BuildOptions(**_gate(args)), args.preprocess)
        print(to_json(rows) if args.json else format_table(rows))
        measured = [r for r in rows if "reduced_decodes" in r]
        if measured and not args.json:
            r = measured[0]
            print(f"preprocessing: {args.preprocess} ({r['reduced_decodes']} of {r['images']} "
                  "images decoded at reduced size), compared with the torch reference on exact "
                  "inputs")
        keys = sorted({r["measured_on"] for r in rows if r.get("measured_on")})
        if keys and not args.json:
            where = ("fidelity_by_cpu" if args.preprocess == "exact"
                     else f"fidelity_by_preprocess.{args.preprocess}")
            print(f"recorded: {where} of each artifact in {args.bundle}/manifest.json "
                  f"(this CPU: {', '.join(keys)})")
        return 0
    from sc2deploy.orchestrate.verify_emulated import verify_emulated

    _exact_only(args, "--emulate")
    rows = verify_emulated(args.bundle, emulate_options(args), images, BuildOptions(**_gate(args)))
    print(to_json(rows) if args.json else format_table(rows))
    if not args.json:
        costs = {r["cpu"]: r["emulation"] for r in rows if r.get("emulation")}
        for cpu, c in costs.items():
            print(f"{cpu}: {c['s_per_image']:.2f} s per image ({c['images']} images, every "
                  f"artifact, {c['process_s']:.1f} s in all); emulated: no timing")
        print(f"recorded: fidelity_by_cpu of each artifact in {args.bundle}/manifest.json")
    return 0


def _exact_only(args, where: str) -> None:
    if args.preprocess != "exact":
        from sc2deploy.errors import UsageError

        raise UsageError(f"verify {where} measures exact preprocessing only; got --preprocess "
                         f"{args.preprocess}: run verify --preprocess {args.preprocess} here "
                         "(without --host/--emulate)")


def _explain(args) -> int:
    from sc2deploy.builders.sensitivity import ExplainOptions, explain, write_results
    from sc2deploy.measure.progress import Progress
    from sc2deploy.report.sensitivity import format_sensitivity, summary_lines, write_figure

    options = ExplainOptions(
        target=args.target, images=args.images, sqnr_images=args.sqnr_images,
        activations=args.activations, calib=list_images(args.calib) if args.calib else None,
        task_images=list_images(args.task_images) if args.task_images else None)
    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    doc = explain(args.bundle, options, lambda title, total: Progress(title, total, "build"))
    written = write_results(doc, args.out)
    print(format_sensitivity(doc))
    figure = None
    if not args.no_figure:
        try:
            figure = write_figure(doc, args.out)
        except Sc2DeployError as exc:  # no matplotlib: the table and the results are kept
            print(f"figure: not drawn ({exc})")
    print("\n".join(summary_lines(doc, written, figure)))
    return 0


def _tune(args) -> int:
    from sc2deploy.measure.tuning import format_tuning, record, tune

    options = from_namespace(TuneOptions, args)
    result = tune(options)
    print(format_tuning(result, options.target))
    if options.dry_run:
        print("--dry-run: the bundle is as it was")
    else:
        record(options, result)
        print(f"recorded in {options.bundle}: artifacts.{options.target}.sessions_by_cpu"
              f"[{result['key']}]; `sc2deploy profile` uses it on this CPU")
    return 0


def _targets(args) -> int:
    from sc2deploy.targets import targets

    for name, t in targets().items():
        state = t.missing("build") or "buildable here"
        print(f"{name:<21} {t.precision:<5} {t.runtime:<25} built on {t.build_on:<6}  {state}")
    return 0


def _encode(args) -> int:
    from sc2deploy.orchestrate.containers import encode_to_folder

    encode_to_folder(args.bundle, args.images, args.out, args.target, args.coder,
                     preprocess=args.preprocess)
    return 0


def _decode(args) -> int:
    from sc2deploy.orchestrate.containers import decode_to_file

    shape = decode_to_file(args.bundle, args.stream, args.out, args.coder)
    print(f"{args.stream} -> {args.out} (int32 {list(shape)})")
    return 0


def _profile(args) -> int:
    from sc2deploy.measure.runtime import profile
    from sc2deploy.orchestrate.remote import profile_on_host

    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    options, remote = from_namespace(ProfileOptions, args), from_namespace(RemoteOptions, args)
    if not remote.host:
        code = _measure(profile, options, args.out, "sc2deploy report {out} -o REPORT_DIR")
    else:
        doc = profile_on_host(options, remote, args.out)
        print(f"{format_profile(doc)}\nresults written: {args.out} (measured on {remote.host})")
        code = 0
    if options.per_op and code == 0:
        from sc2deploy.report.per_op import figure_beside

        drawn = figure_beside(args.out)
        if drawn:
            print(drawn)
    return code


def _profile_server(args) -> int:
    from sc2deploy.measure.server import profile_server

    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    return _measure(profile_server, from_namespace(ServerOptions, args), args.out,
                    "sc2deploy profile BUNDLE --server-results {out} -o RESULTS.json")


def _measure(measure, options, out: Path, next_command: str) -> int:
    from sc2deploy.measure.runtime import measure_and_write

    doc, written = measure_and_write(measure, options, out)
    print(format_profile(doc))
    if not doc["complete"]:
        kept = f"; {out} is as it was" if written != out else ""
        print(f"interrupted: PARTIAL results ({doc['runs']['measured']} images) written to "
              f"{written}{kept}")
        return EXIT_INTERRUPTED
    print(f"results written: {out}\nnext: {next_command.format(out=out)}")
    return 0


def _sweep(args) -> int:
    from sc2deploy.orchestrate.sweep import load_sweep, run_sweep, summary_lines

    sweep = load_sweep(args.sweep, workers=args.workers)
    atomic.ensure_writable(args.out, "the sweep folder")
    _, summary = run_sweep(sweep, args.out)
    print("\n".join(summary_lines(summary, args.out)))
    return 1 if any(i["status"] != "ok" for i in summary["items"]) else 0


def _report(args) -> int:
    from sc2deploy.report.document import parse_formats, write_report
    from sc2deploy.results.schema import load_results

    formats = parse_formats(args.format)
    with atomic.output_folder(args.out, "the report folder"):  # removed again if refused
        written = write_report(load_results(args.results), args.out, formats)
    print(f"report written: {written}")
    return 0


def _replay(args) -> int:
    from sc2deploy.measure.replay import ReplayOptions, format_header, replay_ladder
    from sc2deploy.results.schema import write_results

    options = ReplayOptions(
        bundles=tuple(args.ladder), evaluations=tuple(args.evaluation), trace=args.trace,
        deadline_ms=args.deadline_ms, target=args.target, min_top1=args.min_top1,
        duration_s=args.duration_s, interval_ms=args.interval_ms, prior_kbps=args.prior_kbps,
        latency_ms=args.latency_ms, overhead_bytes=args.overhead_bytes, link=args.link,
        device_profile=args.device_profile, label=args.label)
    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    result, doc = replay_ladder(options)
    written = write_results(doc, args.out)
    print(f"{format_header(doc)}\n{result.table()}\nresults written: {written}\n"
          f"next: sc2deploy report {args.out} -o REPORT_DIR")
    return 0


def _evaluate(args) -> int:
    from sc2deploy.errors import UsageError
    from sc2deploy.measure.evaluate import (evaluate, evaluate_baselines, format_baselines,
                                            format_evaluation, parse_baselines, read_labeled)
    from sc2deploy.results.schema import write_results

    if args.baselines and args.teacher is None:
        raise UsageError("--baselines needs --teacher ONNX: the classifier that sees the "
                         "JPEG/WebP-compressed images")
    points = parse_baselines(args.baselines)
    with atomic.output_folder(args.out.parent, "the folder of the results file"):
        data = read_labeled(args.images, args.labels, args.classes)
        doc = evaluate(args.bundle, data, args.target, args.coder, args.label,
                       preprocess=args.preprocess)
        text = format_evaluation(doc)
        if args.teacher is not None:
            doc.update(evaluate_baselines(args.bundle, data, args.teacher, points))
            text += "\n" + format_baselines(doc)
        written = write_results(doc, args.out)
    print(f"{text}\nresults written: {written}\nnext: sc2deploy report {args.out} -o REPORT_DIR")
    return 0


def _demo(args) -> int:
    from sc2deploy.orchestrate import demo

    result = demo.run(args.out)
    print(f"demo bundle: {result.bundle.resolve()}\nreport: {result.report.resolve()}")
    return 0


def _serve(args) -> int:
    import signal
    import time

    from sc2deploy.measure.ladder import open_family
    from sc2deploy.serving.auth import server_token
    from sc2deploy.serving.service import ServeOptions

    options = ServeOptions(bundle=args.bundle[0], family=tuple(args.bundle[1:]),
                           host=args.host, port=args.port,
                           replicas=args.replicas, max_batch=args.max_batch,
                           batch_wait_ms=args.batch_wait_ms, max_ongoing=args.max_ongoing,
                           max_bytes=args.max_bytes,
                           coder=args.coder, threads=args.threads, ray_address=args.ray_address,
                           tail_batch=args.tail_batch)
    for bundle in open_family(options.bundles):  # one ladder's points, or refused with why
        refuse_unbatchable(bundle, options.tail_batch)
    token, where = server_token(args.token_file)
    from sc2deploy.serving import ray_app

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop Ray cleanly on SIGTERM
    try:
        url = ray_app.start(options, token)
        # Ray's core worker put its own SIGTERM handler in (a stack dump, then abort): SIGTERM
        # and SIGINT are Ctrl-C again, which stops Ray below
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler)
        print(f"serving {' '.join(map(str, options.bundles))} at {url} (token: {where})",
              flush=True)
        if args.token_file is None and "generated" in where:
            print(f"token: {token}", flush=True)
        which = (f"--ladder {' '.join(map(str, options.bundles))} --deadline-ms MS "
                 "--evaluation EVAL.json ..." if options.family else str(options.bundle))
        print(f"next, on the device: sc2deploy stream {which} --server {url} "
              "--token-file TOKEN_FILE --images DIR -o RESULTS.json", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        ray_app.stop(shutdown_ray=True, joined=options.ray_address is not None)
    logger.info("sc2deploy serve: stopped")
    return 0


def _stream(args) -> int:
    from sc2deploy.measure.runtime import stop_on_signals
    from sc2deploy.measure.stream import StreamOptions, read_token, stream
    from sc2deploy.results.schema import write_measured

    ladder = _ladder(args)
    atomic.ensure_writable(args.out.parent, "the folder of the results file")
    queue = args.queue or args.out.with_name(args.out.name + ".queue.json")
    stop_on_signals()
    run = stream
    if ladder is not None:
        from sc2deploy.measure.adaptive_stream import stream_ladder

        run = partial(stream_ladder, ladder=ladder)
    doc = run(StreamOptions(
        bundle=ladder.bundles[0] if ladder else args.bundle, server=args.server,
        token=read_token(args.token_file),
        queue=queue, images=args.images, target=args.target, coder=args.coder,
        max_retries=args.max_retries, interval_s=args.interval_ms / 1e3, link=args.link,
        label=args.label, camera=args.camera, camera_command=args.camera_command,
        camera_size=args.camera_size, camera_format=args.camera_format, frames=args.frames))
    written = write_measured(doc, args.out)
    ms = doc["latency_ms"]
    if doc["link"]:
        print(f"link model {doc['link']['name']}: p50 {doc['link']['delay_ms']['p50']:.1f} ms "
              f"(measured transfer p50 {doc['latency_ms']['transfer']['p50']:.1f} ms)")
    camera = doc.get("camera")
    if camera:
        f = camera["frames"]
        print(f"camera {camera['source']} ({camera['format']}): {f['captured']} frames captured, "
              f"{f['taken']} encoded, {f['skipped']} skipped while the link was busy, "
              f"{camera['cut_frames']} cut, {camera['undecodable']} undecodable; frame age at "
              f"encoding p50 {camera['frame_age_ms']['p50']:.1f} ms"
              + (f"\ncamera ended early: {camera['ended']}" if camera["ended"] else ""))
    print(f"{doc['answered']}/{doc['images']} images answered, {doc['refused']} refused, "
          f"{doc['retries']} retries, {doc['duplicates']} duplicates; p50 ms: encode "
          f"{ms['encode']['p50']:.1f}, transfer {ms['transfer']['p50']:.1f}, server "
          f"{ms['server']['p50']:.1f}, total {ms['total']['p50']:.1f}")
    kept = "" if written == args.out else f"; {args.out} is as it was"
    if doc["interrupted"]:
        print(f"interrupted: PARTIAL results ({doc['answered']} images answered) written to "
              f"{written}{kept}\nthe same command resumes: the queue {queue} sends only what "
              "is unanswered")
        return EXIT_INTERRUPTED
    if ladder is not None:
        a = doc["adaptive"]["summary"]
        used = ", ".join(f"{n} x{k}" for n, k in a["images_per_point"].items() if k)
        print(f"adaptive ({doc['adaptive']['mode']}): deadline {ladder.deadline_ms:g} ms met for "
              f"{a['met']}/{a['images']} images; points: {used}; {a['switches']} switches; "
              f"expected top-1 {a['mean_top1'] or 0:.1f} %")
    print(f"results written: {written}{kept} (queue: {queue})")
    return 0 if doc["complete"] else 1


def _ladder(args):
    """The adaptive stream's ladder options (None: one bundle, as given)."""
    from sc2deploy.errors import UsageError
    from sc2deploy.measure.adaptive_stream import LadderOptions

    if (args.bundle is None) == (not args.ladder):
        raise UsageError("give one BUNDLE, or --ladder B1 B2 ... (an adaptive stream), not both")
    adaptive = {"--deadline-ms": args.deadline_ms, "--evaluation": args.evaluation or None,
                "--min-top1": args.min_top1, "--prior-kbps": args.prior_kbps}
    if not args.ladder:
        given = [flag for flag, value in adaptive.items() if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: for an adaptive stream; give --ladder too")
        return None
    missing = [flag for flag in ("--deadline-ms", "--evaluation") if adaptive[flag] is None]
    if missing:
        raise UsageError(f"--ladder needs {' and '.join(missing)} (the deadline per image; each "
                         "point's `sc2deploy evaluate` results, for its top-1)")
    return LadderOptions(tuple(args.ladder), tuple(args.evaluation), args.deadline_ms,
                         args.min_top1, args.prior_kbps)


COMMANDS = {  # name: (help, handler, *arguments), in the order of `sc2deploy --help`
    "export": (
        "export a checkpoint's head to a verified bundle", _export,
        arg("model", metavar="MODEL", help=f"one of: {', '.join([DEMO_MODEL, *HEADS])}; "
            f"the demo ladder's points: {', '.join(demo_ladder())}"),
        arg("--checkpoint", type=Path, metavar="CKPT",
            help="torchdistill/sc2bench checkpoint (not needed for 'demo')"),
        arg("--input-size", type=int, metavar="N",
            help="square input size in pixels (default: the model's own)"),
        images("verification images (default: the bundled samples)"),
        out("BUNDLE", "bundle directory to write", "--out"),
        switch("--force", "replace an existing bundle"),
        arg("--tables-formula", default="auto",  # = export.tables.TABLE_FORMULAS
            choices=("auto", "compressai-1.2.4", "compressai-1.2.6"),
            help="pmf used when the checkpoint has no stored update() tables: compressai-1.2.4 "
                 "(sign trick, CompressAI <= 1.2.4), compressai-1.2.6 (CompressAI >= 1.2.6), "
                 "auto (by parameter names: _matrix{i} and _matrices.{i} -> compressai-1.2.4, "
                 "matrices.{i} -> compressai-1.2.6)"),
        switch("--exif-transpose", "preprocessing applies the images' EXIF orientation "
                                   "(default: ignored, as by the training loaders)")),
    "add-tail": (
        "add another task's tail, trained behind the bundle's head, to the bundle", _add_tail,
        BUNDLE, arg("--name", required=True, metavar="NAME",
                    help="the tail's name: 1-32 of a-z 0-9 _ - (not 'tail' or 'default'); "
                         "the file is tail-NAME.onnx"),
        arg("--checkpoint", type=Path, required=True, metavar="CKPT",
            help="full student checkpoint whose head equals the bundle's (refused otherwise)"),
        switch("--replace", "replace an existing tail of that name")),
    "info": ("verify a bundle and describe it", _info, BUNDLE,
             switch("--json", "print the manifest as JSON")),
    "build": (
        "build target artifacts into a bundle, gated on fidelity", _build, BUNDLE,
        arg("--target", action="append", required=True, metavar="T",
            help="target to build (repeat for several); see `sc2deploy targets`"),
        arg("--calib", type=Path, metavar="DIR",
            help="calibration images (default: half of the bundled samples)"),
        arg("--task-images", type=Path, metavar="DIR",
            help="task gate (bundles with a tail): evaluation images, ideally >= 200 and apart "
                 "from --calib (default: 200 generated texture images)"),
        switch("--search", "int8, onnx-fp16: try configurations, keep the fastest that passes "
               "the gate (with --emulate: the first that passes on every CPU)"),
        switch("--allow-low-fidelity", "keep an artifact that fails the gate"), *GATE,
        arg("--per-channel", choices=("on", "off"), default="on",
            help="int8: per-channel weight scales (default: on)"),
        switch("--reduce-range", "int8: 7-bit weights"),
        arg("--activations", choices=("int8", "int16", "dynamic", "float"), default="int8",
            help="int8: activation type (int16 = A16W8 for onnx; dynamic for tflite; float = "
                 "int8 weights only)"),
        arg("--calibration", choices=("minmax", "entropy", "percentile"), default="minmax",
            help="int8: calibration method (default: minmax)"),
        arg("--keep-float", action="append", default=[], metavar="NODE",
            help="int8, onnx-fp16: node name, op type, '<last Conv>' or (fp16) '<GDN>' left "
                 "in float (repeatable)"),
        *emulate("with --search: also measure each configuration on this aarch64 CPU emulated "
                 "by qemu-user and keep the first that passes on the host and every CPU (by "
                 "fidelity only)")),
    "build-engine": (
        "on a Jetson: build the TensorRT engine", _build_engine, BUNDLE,
        arg("--precision", choices=("fp16", "int8"), required=True,
            help="engine precision (build tensorrt-PRECISION on the host first)"),
        arg("--workspace-mb", type=int, default=256, metavar="MB",
            help="builder workspace (default: 256)")),
    "verify": ("compare every built target with the torch reference", _verify, BUNDLE,
               images("evaluation images (default: the half of the samples not used to "
                      "calibrate)"), *GATE,
               *emulate("also measure on this aarch64 CPU emulated by qemu-user and record "
                        "fidelity_by_cpu in the manifest"),
               options(RemoteOptions),
               arg("--host-images", type=int, metavar="N",
                   help="with --host: evaluation images run on the device (default: all)"),
               PREPROCESS, switch("--json", "print the rows as JSON")),
    "explain": (
        "per-layer sensitivity of an int8 build: each quantizable node int8 alone and fp32 "
        "alone, ranked (table, figure, results file)", _explain, BUNDLE,
        arg("--target", choices=("onnx-int8", "tflite-int8"), default="onnx-int8",
            help="int8 target to explain (default: onnx-int8)"),
        arg("--images", type=int, default=64, metavar="N",
            help="evaluation images, picked evenly from the task gate's images (a bundle with "
                 "a tail) or the samples not used to calibrate (default: 64)"),
        arg("--sqnr-images", type=int, default=4, metavar="N",
            help="images whose activations give the SQNR (every activation is kept; "
                 "default: 4)"),
        arg("--activations", choices=("int8", "int16"), default="int8",
            help="activation type of the quantized nodes (default: int8)"),
        arg("--calib", type=Path, metavar="DIR",
            help="calibration images (default: half of the bundled samples)"),
        arg("--task-images", type=Path, metavar="DIR",
            help="evaluation images of a bundle with a tail (default: the task gate's "
                 "generated images)"),
        switch("--no-figure", "write no figure (RESULTS.png)"),
        out("RESULTS.json", "results file (kind: sensitivity; the figure goes beside it)")),
    "tune": ("time a target's session settings (threads, graph optimization, XNNPACK) on "
             "this CPU and record the fastest for profile", _tune, options(TuneOptions)),
    "targets": ("list the targets and whether they can build here", _targets),
    "encode": ("encode images to containers with a bundle", _encode, BUNDLE,
               arg("images", type=Path, nargs="+", metavar="IMAGE", help="image files"),
               TARGET, CODER, PREPROCESS,
               out("DIR", "folder for the containers: one IMAGE_STEM.s2c per image")),
    "decode": ("decode a container (or a batch of them) to a latent", _decode,
               arg("bundle", type=Path, metavar="BUNDLE", help="bundle that encoded it"),
               arg("stream", type=Path, metavar="IN", help=".s2c container or batch file"),
               CODER, out("LATENT.npy", "int32 latent: [C,H,W] for one container, [N,C,H,W] "
                                        "for a batch")),
    "profile": ("encode images with a bundle here (or on --host) and measure latency, bytes, "
                "memory and energy", _profile, options(ProfileOptions), options(RemoteOptions),
                out("RESULTS.json", "results file (written atomically; partial on Ctrl-C or "
                                    "SIGTERM)")),
    "profile-server": ("measure the server side: range decoding and the decoder, per image",
                       _profile_server, options(ServerOptions),
                       out("RESULTS.json", "results file")),
    "sweep": ("checkpoints x targets x hosts from one YAML file, one report", _sweep,
              arg("sweep", type=Path, metavar="SWEEP.yaml", help="the sweep file"),
              arg("--workers", type=int, metavar="N", help="parallel export/build processes "
                  "(default: the file's, else one per 4 cores)"),
              out("DIR", "folder for bundles/, results/, report/ and sweep.json")),
    "report": ("latency/energy/accuracy report from profiling and evaluation results", _report,
               arg("results", type=Path, nargs="+", metavar="RESULTS",
                   help="results files of profile / profile-server / evaluate / stream / "
                        "replay (an adaptive stream or a replay: the adaptive timeline)"),
               arg("--format", default="all", metavar="LIST",
                   help="what to write, comma-separated: html (figures embedded), md, png, "
                        "pdf, svg (each figure), latex, csv (each table, in tables/; csv also "
                        "results.csv) (default: all)"),
               out("DIR", "folder for report.html, report.md, the figures and tables/")),
    "evaluate": (
        "top-1/top-5 accuracy and bytes per image of each target on labeled images", _evaluate,
        BUNDLE, arg("--images", type=Path, required=True, metavar="DIR",
                    help="labeled images: DIR/CLASS/IMAGE (ImageFolder: class index = position "
                         "of CLASS in the sorted folder names), or flat with --labels"),
        arg("--labels", type=Path, metavar="FILE", help="class indices of a flat DIR: CSV "
            "filename,class_index or JSON {filename: index}"),
        arg("--classes", type=Path, metavar="FILE", help="class folder names, one per line, in "
            "the model's class order (default: sorted, as ImageNet's WNIDs)"),
        arg("--target", action="append", default=[], metavar="T", help="target to evaluate "
            "besides the fp32 pipeline (repeatable; default: every artifact that runs here)"),
        CODER, PREPROCESS,
        arg("--label", metavar="NAME", help="name in reports (default: MODEL/evaluate)"),
        arg("--teacher", type=Path, metavar="ONNX", help="classifier of the head's input, for "
            "the input-compression baselines (the demo's: sc2deploy/data/demo_teacher.onnx)"),
        arg("--baselines", action="append", default=[], metavar="CODEC:Q,...", help="compress "
            "each preprocessed image with jpeg or webp at these qualities and classify it with "
            "--teacher (repeatable), e.g. jpeg:10,25,50,75,90"),
        out("RESULTS.json", "results file (kind: evaluation)")),
    "demo": ("run the whole flow on the bundled demo students (the β ladder) and compare "
             "them with JPEG/WebP", _demo,
             out("DIR", "folder for the demo's outputs (its bundle: DIR/demo-bundle)", "--out")),
    "serve": (
        "serve a bundle's server side (decoding, tail) on Ray Serve, behind a token", _serve,
        arg("bundle", type=Path, nargs="+", metavar="BUNDLE", help="bundle directory; several: "
            "the points of one ladder (same input and task), each container routed to the "
            "bundle whose prior coded it"),
        arg("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"),
        arg("--port", type=int, default=8000, help="port (default: 8000)"),
        arg("--token-file", type=Path, metavar="FILE", help="bearer token file; generated "
            "(mode 0600) when missing (default: $SC2DEPLOY_TOKEN, else a printed new token)"),
        arg("--replicas", type=int, default=1, metavar="N", help="replicas (default: 1)"),
        arg("--max-batch", type=int, default=8, metavar="N",
            help="dynamic batching: at most N requests per batch; 1: none (default: 8)"),
        arg("--batch-wait-ms", type=float, default=5.0, metavar="MS",
            help="longest wait for a batch to fill (default: 5)"),
        arg("--tail-batch", choices=TAIL_BATCH_MODES, default="auto",
            help="run a batch through each tail at once or image by image; auto: whichever "
                 "is faster on this CPU, timed at start on the bundle's reference latents "
                 "(default)"),
        arg("--max-ongoing", type=int, default=64, metavar="N",
            help="requests a replica holds at once, >= --max-batch (default: 64; Ray Serve's "
                 "own default of 5 cut throughput ~10x with 32 devices here)"),
        arg("--max-bytes", type=int, default=1 << 20, metavar="N",
            help="larger requests are refused with 413 (default: 1 MiB)"),
        arg("--threads", type=int, default=1, metavar="N",
            help="onnxruntime threads per replica (default: 1)"),
        arg("--ray-address", metavar="HOST:PORT", help="join this existing Ray cluster (see "
            "docs/serving.md, Several machines): replicas and proxies spread over its nodes (default: a "
            "local cluster)"), CODER),
    "stream": (
        "encode images, send them to `sc2deploy serve` and measure end to end", _stream,
        arg("bundle", type=Path, nargs="?", metavar="BUNDLE", help="bundle directory (or "
            "--ladder)"),
        arg("--server", required=True, metavar="URL", help="http://HOST:PORT"),
        arg("--token-file", type=Path, metavar="FILE",
            help="the server's token (default: $SC2DEPLOY_TOKEN)"),
        images("images to send (default: the bundled samples)"), TARGET, CODER,
        arg("--queue", type=Path, metavar="FILE", help="the on-disk queue; a rerun resumes "
            "it (default: RESULTS.json.queue.json)"),
        arg("--max-retries", type=int, default=30, metavar="N",
            help="retries per image, with exponential backoff (default: 30)"),
        arg("--interval-ms", type=float, default=0.0, metavar="MS",
            help="send at most one image per MS (a camera's frame period; default: 0)"),
        arg("--link", metavar="NAME|FILE", help="a link model to record next to the measured "
            "transfer (as profile's --link), e.g. lora-ideal-37.5k"),
        arg("--camera", metavar="DEVICE|-", help="send camera frames instead of images: a V4L2 "
            "device (/dev/video0; MJPEG, YUYV, RGB3 or GREY) or '-' for MJPEG on stdin"),
        arg("--camera-command", metavar="CMD", help="send the MJPEG frames CMD writes to its "
            "stdout (a Pi CSI camera: rpicam-vid writing MJPEG to '-', see docs/serving.md, From a camera)"),
        arg("--camera-size", type=_frame_size, metavar="WxH",
            help="V4L2 frame size to ask for (the driver may adjust it)"),
        arg("--camera-format", metavar="FOURCC", help="V4L2 pixel format (default: MJPG, then "
            "YUYV, RGB3, GREY, as offered)"),
        arg("--frames", type=int, metavar="N", help="with a camera: frames to send (a rerun "
            "sends the queue's pending frames, then captures the rest)"),
        arg("--label", metavar="NAME", help="name in reports"),
        arg("--ladder", type=Path, nargs="+", metavar="BUNDLE", help="adapt to the link: per "
            "image, the most accurate of these points (one ladder, as `serve` holds them) whose "
            "predicted end to end meets --deadline-ms"),
        arg("--deadline-ms", type=float, metavar="MS", help="with --ladder: end to end per image"),
        arg("--evaluation", type=Path, nargs="+", metavar="RESULTS", help="with --ladder: "
            "`sc2deploy evaluate` results of every point (its top-1 and ms)"),
        arg("--min-top1", type=float, metavar="PCT", help="with --ladder: choose the least "
            "device + radio energy (radio: --link's TX power x airtime) among points with "
            "top-1 >= PCT instead"),
        arg("--prior-kbps", type=float, metavar="K", help="with --ladder: the link's rate "
            "before the first answer (default: --link's model)"),
        out("RESULTS.json", "results file (kind: stream)")),
    "replay": (
        "model the adaptive ladder on a throughput trace: the policy against every fixed point",
        _replay,
        arg("--ladder", type=Path, nargs="+", required=True, metavar="BUNDLE",
            help="the points of one ladder (as `serve` holds them)"),
        arg("--evaluation", type=Path, nargs="+", required=True, metavar="RESULTS",
            help="`sc2deploy evaluate` results of every point: its top-1, mean container "
                 "bytes and median device/server ms"),
        arg("--trace", type=Path, required=True, metavar="TRACE.json|csv",
            help="the link's rate over time: JSON [[t_start_s, bits_per_s], ...] or CSV "
                 "with the header t_start_s,bits_per_s"),
        arg("--deadline-ms", type=float, required=True, metavar="MS", help="end to end per image"),
        TARGET,
        arg("--min-top1", type=float, metavar="PCT", help="choose the least device + radio "
            "energy among points with top-1 >= PCT instead (needs --link and/or "
            "--device-profile)"),
        arg("--link", metavar="NAME|FILE", help="with --min-top1: the radio's TX power"),
        arg("--device-profile", metavar="NAME", help="with --min-top1: device watts x each "
            "point's encode time (e.g. rpi4)"),
        arg("--duration-s", type=float, metavar="S", help="seconds replayed (default: the "
            "last segment lasts as long as the one before it)"),
        arg("--interval-ms", type=float, default=0.0, metavar="MS", help="begin an image at "
            "most every MS (default: 0, back to back)"),
        arg("--prior-kbps", type=float, metavar="K", help="the estimate before the first send "
            "(default: the trace's first rate)"),
        arg("--latency-ms", type=float, default=0.0, metavar="MS",
            help="the link's fixed delay per send (default: 0)"),
        arg("--overhead-bytes", type=float, default=0.0, metavar="N", help="bytes every send "
            "carries besides the container, e.g. headers (default: 0)"),
        arg("--label", metavar="NAME", help="name in reports"),
        out("RESULTS.json", "results file (kind: replay)")),
}


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
