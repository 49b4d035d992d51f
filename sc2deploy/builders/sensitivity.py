"""``explain``: per-layer sensitivity of an int8 build of the head (host side).

For every quantizable node N of ``head.onnx`` (the op types onnxruntime's quantizer
handles), two builds with ``quantize_static`` from the same calibration images::

    head.onnx ─ quantize_static(every other node excluded) ─ "N int8 alone" ──┐
    head.onnx ─ quantize_static(N excluded)                ─ "N fp32 alone" ──┤
    head.onnx ─ quantize_static                            ─ "all int8" ──────┤
         ┌────────────────────────────────────────────────────────────────────┘
         ├─ runner ─ symbols ─ build.fidelity_stats: symbols changed %, rate Δ % (bytes
         │                     under the bundle's prior), the tail's top-1 and KL
         └─ qdq_loss_debug: activations of N's output and of the pre-rounding output
                            against fp32 ─ SQNR dB (compute_activation_error)

Nodes are ranked by the harm of quantizing them alone (the task's KL and flips when the
bundle has a tail, else the symbols changed). ``tflite-int8``: the same with ai-edge-quantizer
(:func:`_explain_tflite`).
"""

import contextlib
import io
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from sc2deploy import __version__, atomic
from sc2deploy.builders.build import (BuildOptions, Reference, eval_images, evaluate, has_tail,
                                      pick_evenly, split_images)
from sc2deploy.builders.onnx_int8_build import _quiet, quantize
from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError, DeviceError, UsageError
from sc2deploy.log import logger, step
from sc2deploy.machine import here_key
from sc2deploy.options import option, validate
from sc2deploy.preprocess import list_images
from sc2deploy.targets.onnx_graph import graph_nodes
from sc2deploy.targets.registry import Int8Options, get_target

SCHEMA = "sc2deploy-sensitivity"
VERSION = 1
TARGETS = ("onnx-int8", "tflite-int8")
EVAL_IMAGES = 64  # evaluation images by default (picked evenly from the gate's images)
ROUND = 116  # TFLite's builtin code of ROUND (ops after it move integer symbols: kept float)
SQNR_IMAGES = 4  # images whose every activation is kept for the SQNR (~35 MB each at 224 px)


@dataclass(frozen=True)
class ExplainOptions:
    """Which int8 build ``explain`` takes apart, on how many images."""

    target: str = option("onnx-int8", flag="--target", choices=TARGETS,
                         help="int8 target to explain (default: {default})")
    images: int = option(EVAL_IMAGES, flag="--images", type=int, metavar="N",
                         help="evaluation images, picked evenly from the task gate's images (a "
                              "bundle with a tail) or the samples not used to calibrate "
                              "(default: {default})")
    sqnr_images: int = option(SQNR_IMAGES, flag="--sqnr-images", type=int, metavar="N",
                              help="images whose activations give the SQNR (every activation "
                                   "is kept; default: {default})")
    activations: str = option(  # int16: A16W8 (each node then int16 activations alone)
        "int8", flag="--activations", choices=("int8", "int16"),
        help="activation type of the quantized nodes (default: {default})")
    calib: Optional[Sequence[Path]] = option(  # default: the first half of the sample images
        None, flag="--calib", type=Path, metavar="DIR", parse=list_images,
        help="calibration images (default: half of the bundled samples)")
    task_images: Optional[Sequence[Path]] = option(
        None, flag="--task-images", type=Path, metavar="DIR", parse=list_images,
        help="evaluation images of a bundle with a tail (default: the task gate's generated "
             "images)")

    def __post_init__(self):
        if self.target not in TARGETS:
            raise UsageError(f"explain --target {self.target!r}: expected one of "
                             f"{', '.join(TARGETS)}")
        if self.images < 1 or self.sqnr_images < 1:
            raise UsageError(f"--images {self.images}, --sqnr-images {self.sqnr_images}: "
                             "expected at least 1 of each")
        if self.activations not in ("int8", "int16"):
            raise UsageError(f"--activations {self.activations!r}: expected int8 or int16 "
                             "(static activations: what a node kept alone in float is "
                             "compared against)")
        validate(self)


def _no_progress(title: str, total: int):
    class _Silent:
        def update(self, done, note=""):
            pass

        def close(self):
            pass
    return _Silent()


def quantizable_nodes(model) -> List:
    """The nodes onnxruntime's static quantizer quantizes (its QDQ and QLinear op types),
    in graph order."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    ops = set(QDQRegistry) | set(QLinearOpsRegistry)
    return [n for n in model.graph.node if n.op_type in ops and n.name]


def pre_round_tensor(model) -> str:
    """The tensor the symbols are rounded from (the Round node's input), else the first
    output."""
    output = model.graph.output[0].name
    producer = next((n for n in model.graph.node if output in n.output), None)
    return producer.input[0] if producer is not None and producer.op_type == "Round" else output


def explain(bundle_path: Path, options: ExplainOptions,
            progress: Callable = _no_progress) -> Dict:
    """The sensitivity document (``progress(title, total)``: an object with ``update(done,
    note)`` and ``close()``, e.g. ``sc2deploy.measure.progress.Progress``)."""
    bundle = Bundle.open(bundle_path)
    target = get_target(options.target)
    missing = target.missing("build") or target.missing("run")
    if missing:
        raise UsageError(f"cannot explain {target.name} here: {missing}")
    calib_paths, evals = split_images(options.calib)
    chosen = eval_images(bundle, BuildOptions(task_images=options.task_images), calib_paths,
                         evals)
    picked = pick_evenly(list(chosen.images), options.images)
    if not picked:
        raise UsageError("no evaluation images left: --calib uses every sample image")
    source = (chosen.source if len(picked) == len(chosen.images)
              else f"{len(picked)} of {chosen.source}, picked evenly")
    with step(f"torch fp32 reference on {source}"):
        reference = Reference(bundle, picked, source)
    pre = bundle.preprocessing()
    calibration = [pre(p) for p in calib_paths]
    cfg = Int8Options(activations=options.activations)
    run = _explain_tflite if target.name == "tflite-int8" else _explain_onnx
    with tempfile.TemporaryDirectory(prefix="sc2deploy-explain-") as tmp:
        return run(bundle, target, cfg, calibration, reference, options, Path(tmp), progress,
                   len(calib_paths))


def _explain_onnx(bundle, target, cfg, calibration, reference, options, tmp: Path, progress,
                  n_calib: int) -> Dict:
    import onnx
    import onnxruntime

    source = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    model = onnx.load(str(source))
    nodes = quantizable_nodes(model)
    if not nodes:
        raise BuildError(f"{source.name}: received no node onnxruntime quantizes (Conv, MatMul, "
                         "Mul ...), expected at least one: nothing to explain")
    names = [n.name for n in nodes]
    input_name = bundle.model["input"]["name"]
    sqnr = _Activations(source, reference.inputs[:options.sqnr_images], input_name, tmp,
                        pre_round_tensor(model))

    def measure(label: str, op=None, keep_float=None) -> Optional[Dict]:
        """op: (name, type, output) quantized alone; keep_float: the one left fp32."""
        excluded = ([n for n in names if n != op[0]] if op is not None
                    else [keep_float[0]] if keep_float is not None else [])
        path = tmp / f"{label}.onnx"
        quantize(source, path, replace(cfg, keep_float=tuple(excluded)), calibration,
                 input_name)
        if not any(n.op_type == "QuantizeLinear" for n in graph_nodes(path)):
            return None  # the quantizer left everything in float
        stats = _evaluate(bundle, target, path, reference)
        if stats is None:
            return _BROKEN
        return {**_metrics(stats), **sqnr.of(path, op or keep_float)}

    return _sweep(bundle, target, [(n.name, n.op_type, n.output[0]) for n in nodes], measure,
                  reference, progress, {
                      "runtime": f"onnxruntime {onnxruntime.__version__}",
                      "measured_on": here_key("onnxruntime", "onnxruntime"),
                      "quantizer": {"tool": "onnxruntime.quantization.quantize_static (QDQ)",
                                    "activations": cfg.activations,
                                    "per_channel": cfg.per_channel,
                                    "calibration": cfg.calibration,
                                    "weights": "int8 symmetric"},
                      "sqnr": {"tool": "onnxruntime.quantization.qdq_loss_debug",
                               "images": len(sqnr.inputs), "output_tensor": sqnr.output,
                               "graph_optimization": "disabled"},
                      "graph_file": source.name},
                  lambda path: {n.name for n in graph_nodes(path)},
                  tmp / "all-int8.onnx", n_calib)


def _sweep(bundle, target, ops, measure, reference, progress, header: Dict, names_in,
           all_int8: Path, n_calib: int) -> Dict:
    """All int8, then each op (name, type, output tensor) int8 alone and fp32 alone; ranked.
    ``names_in(path)``: the node names of a built model (every ranked name must be one)."""
    total = 1 + 2 * len(ops)
    bar = progress(f"explain {target.name}", total)
    rows = []
    try:
        with step(f"{total} quantizations of {len(ops)} nodes, each measured on "
                  f"{len(reference.inputs)} images"):
            baseline = measure("all-int8")
            if baseline is None:
                raise BuildError(f"{target.name}: the quantizer quantized no node of the head; "
                                 "expected an int8 graph to explain")
            bar.update(1, "all int8")
            in_graph = names_in(all_int8)
            for i, op in enumerate(ops):
                alone = measure(f"int8-{i}", op=op)
                bar.update(2 + 2 * i, op[0])
                kept = measure(f"fp32-{i}", keep_float=op)
                bar.update(3 + 2 * i, op[0])
                if alone is None:
                    logger.info("  %s (%s): the quantizer leaves it in float alone; skipped",
                                op[0], op[1])
                    continue
                rows.append({"name": op[0], "op_type": str(getattr(op[1], "value", op[1])),
                             "int8_alone": alone, "fp32_alone": kept})
                logger.info("  %-40s int8 alone: %.3f %% symbols changed; fp32 alone: %s",
                            op[0], alone["symbols_changed_pct"],
                            "n/a" if kept is None else f"{kept['symbols_changed_pct']:.3f} %")
    finally:
        bar.close()
    absent = [r["name"] for r in rows if r["name"] not in in_graph]
    if absent:
        raise BuildError(f"nodes {absent} are not in the int8 graph the quantizer built; "
                         "expected it to keep node names: report this with the bundle")
    with_tail = has_tail(bundle)
    rows.sort(key=lambda r: harm(r["int8_alone"], with_tail), reverse=True)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    artifact = bundle.manifest.get("artifacts", {}).get(target.name)
    in_artifact = None
    if artifact is not None:
        try:
            names = names_in(bundle.file(artifact["file"]))
            in_artifact = all(r["name"] in names for r in rows)
        except Exception:  # another format of the artifact (e.g. PT2E's op names): unknown
            in_artifact = None
    graph_file = header.pop("graph_file")
    return {
        "schema": SCHEMA, "version": VERSION, "created_utc": _now(), "sc2deploy": __version__,
        "bundle": {"path": str(bundle.path), "model": bundle.model.get("name"),
                   "manifest_sha256": bundle.manifest.get("manifest_sha256")},
        "target": target.name, **header,
        "images": {"calibration": n_calib, "evaluation": len(reference.inputs),
                   "source": reference.source},
        "has_tail": with_tail,
        "rank_by": ("int8 alone: mean KL through the tail, then top-1 flips, then symbols "
                    "changed" if with_tail else "int8 alone: symbols changed %, then lowest "
                    "output SQNR"),
        "all_int8": baseline,
        "graph": {"file": graph_file, "nodes_in_int8_graph": True,
                  "bundle_artifact": artifact and artifact["file"],
                  "nodes_in_bundle_artifact": in_artifact},
        "nodes": rows,
    }


# a build whose head computes NaN or infinite symbols (e.g. GDN's norm quantized to 0), or that
# the runtime refuses to run
_BROKEN = {"symbols_changed_pct": 100.0, "within_one_pct": 0.0, "rate_change_pct": None,
           "task": None, "output_sqnr_db": None, "node_sqnr_db": None,
           "non_finite": True}


def _evaluate(bundle, target, path: Path, reference) -> Optional[Dict]:
    """``build.evaluate`` of one build; None when its head computes NaN or infinite symbols
    or the runtime refuses to run it (LiteRT: a DIV by a value at its zero point)."""
    try:
        return evaluate(bundle, target, path, reference, latency_runs=1)
    except (DeviceError, RuntimeError) as exc:
        if isinstance(exc, DeviceError) and "NaN or infinite" not in str(exc):
            raise
        logger.info("  %s: %s", path.stem, str(exc).splitlines()[0])
        return None


def harm(metrics: Dict, with_tail: bool):
    """The ranking key (larger: more harmful); NaN or infinite symbols first."""
    if metrics.get("non_finite"):
        return (math.inf, math.inf, math.inf)
    task = metrics.get("task")
    if with_tail and task:
        return (task["kl_mean"], task["images"] - task["top1_agree"],
                metrics["symbols_changed_pct"])
    sqnr = metrics.get("output_sqnr_db")
    return (metrics["symbols_changed_pct"], -(sqnr if sqnr is not None else math.inf))


def _metrics(stats: Dict) -> Dict:
    task = stats.get("task")
    return {"symbols_changed_pct": 100.0 - stats["agreement_pct"],
            "within_one_pct": stats["within_one_pct"],
            "rate_change_pct": stats["rate_change_pct"],
            "task": task and {k: task[k] for k in ("images", "top1_agree",
                                                   "top1_agreement_pct", "top1_ci95_pct",
                                                   "kl_mean", "kl_max")}}


def _finite(value: float) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


class _Activations:
    """SQNR (dB) of a quantized model's activations against the fp32 model's, by
    onnxruntime's qdq_loss_debug (graph optimizations off, as it runs them)."""

    def __init__(self, source: Path, inputs, input_name: str, tmp: Path, output: str):
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                             modify_model_output_intermediate_tensors)

        self.inputs, self.tmp, self.output = list(inputs), tmp, output
        self.feeds = [{input_name: x} for x in self.inputs]  # what collect_activations iterates
        augmented = tmp / "fp32-activations.onnx"
        with _quiet():
            modify_model_output_intermediate_tensors(str(source), str(augmented))
            self.float = collect_activations(str(augmented), self.feeds)

    def of(self, qdq: Path, node) -> Dict:
        """``node``: (name, type, output tensor) or None. ``node_sqnr_db``: at its output (as
        its consumers read it: after its Q/DQ when quantized); ``output_sqnr_db``: the values
        the symbols are rounded from."""
        from onnxruntime.quantization.qdq_loss_debug import (
            collect_activations, compute_activation_error,
            compute_signal_to_quantization_noice_ratio as sqnr, create_activation_matching,
            modify_model_output_intermediate_tensors)

        augmented = self.tmp / f"{qdq.stem}-activations.onnx"
        with _quiet(), np.errstate(divide="ignore", invalid="ignore"):
            modify_model_output_intermediate_tensors(str(qdq), str(augmented))
            got = collect_activations(str(augmented), self.feeds)
            matched = {k: v for k, v in create_activation_matching(got, self.float).items()
                       if "float" in v}
            errors = compute_activation_error(matched)
            result = {"output_sqnr_db": _finite(sqnr(self.float[self.output], got[self.output]))}
            if node is not None:
                tensor = node[2]
                value = (errors[tensor]["xmodel_err"] if tensor in errors
                         else sqnr(self.float[tensor], got[tensor]))
                result["node_sqnr_db"] = _finite(value)
        augmented.unlink(missing_ok=True)
        return result


def _explain_tflite(bundle, target, cfg, calibration, reference, options, tmp: Path, progress,
                    n_calib: int) -> Dict:
    """The same measures for LiteRT, by ai-edge-quantizer (static min/max, int8 weights per
    channel) on the bundle's fp32 ``tflite`` (converted now when the bundle has none), ops
    after the rounding (they move integer symbols) always float:
    per-op recipes by regex on the op's scope (its output tensors' names); SQNR by
    ``Quantizer.validate`` (its SNR, in dB). The ``tflite-int8`` artifact itself is built by
    PT2E: the ranking says which layers matter, its numbers are ai-edge-quantizer's."""
    import re

    from ai_edge_quantizer import algorithm_manager, quantizer, qtyping
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl, validation_utils

    from sc2deploy.builders.tflite_build import build_fp32

    bits = {"int8": 8, "int16": 16}[cfg.activations]
    entry = bundle.manifest.get("artifacts", {}).get("tflite")
    if entry is not None:
        source = bundle.file(entry["file"])
    else:
        with step("converting the fp32 head to TFLite (the bundle has no tflite artifact)"):
            source, _ = build_fp32(bundle, None, None, tmp)
    model = tfl.read_model(source.read_bytes())
    graph = model.subgraphs[0]
    supported = set(algorithm_manager.get_supported_ops(
        algorithm_manager.AlgorithmName.MIN_MAX_UNIFORM_QUANT)) - {
        qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT}
    ops, after, rounding, symbols = [], [], None, set()
    for op in graph.operators:  # in execution order
        name = tfl.TFL_OP_CODE_TO_NAME.get(model.operatorCodes[op.opcodeIndex].builtinCode)
        scope = tfl.get_op_scope(op, graph.tensors)
        if symbols & set(op.inputs):  # moves the integer symbols (NCHW transpose): stays float
            symbols |= set(op.outputs)
            if name in supported and scope:
                after.append((scope, name))
        elif name in supported and scope:
            ops.append((scope, name, tfl.get_tensor_name(graph.tensors[op.outputs[0]])))
        if model.operatorCodes[op.opcodeIndex].builtinCode == ROUND:
            rounding = tfl.get_tensor_name(graph.tensors[op.inputs[0]])
            symbols |= set(op.outputs)
    if not ops:
        raise BuildError(f"{source.name}: received no op ai-edge-quantizer quantizes, expected "
                         "at least one: nothing to explain")
    from sc2deploy.targets.tflite import _interpreter_class

    interpreter = _interpreter_class()(model_path=str(source))
    signature, spec = next(iter(interpreter.get_signature_list().items()))
    feed = spec["inputs"][0]
    output = rounding or tfl.get_tensor_name(graph.tensors[graph.outputs[0]])
    calib_data = {signature: [{feed: x} for x in calibration]}
    test_data = {signature: [{feed: x} for x in reference.inputs[:options.sqnr_images]]}

    def quantizer_for(keep_float=None, alone=None):
        q = quantizer.Quantizer(str(source))
        if alone is None:
            q.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, bits, 8)
        else:
            q.add_static_config(f"^{re.escape(alone[0])}$", alone[1], bits, 8)
        q.update_quantization_recipe(".*", qtyping.TFLOperationName.OUTPUT,
                                     algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        for scope, name in after + ([keep_float[:2]] if keep_float is not None else []):
            q.update_quantization_recipe(
                f"^{re.escape(scope)}$", name,
                algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
        return q

    with _quiet_all():
        calibrated = quantizer_for().calibrate(calib_data)

    def measure(label: str, op=None, keep_float=None) -> Optional[Dict]:
        path = tmp / f"{label}.tflite"
        try:
            q = quantizer_for(keep_float, alone=op if keep_float is None else None)
            with _quiet_all():
                q.quantize(calibrated, serialize_to_path=str(path), enable_progress_report=False)
                checked = q.validate(test_data, [validation_utils.ValidationErrorMetric.SNR],
                                     use_xnnpack=True, num_threads=1).get_all_tensor_results()
        except ValueError as exc:  # the quantizer refuses what it does not support
            logger.info("  %s: ai-edge-quantizer refused it (%s); skipped", label, exc)
            return None
        stats = _evaluate(bundle, target, path, reference)
        if stats is None:
            return _BROKEN
        result = {**_metrics(stats), "output_sqnr_db": _snr_db(checked.get(output))}
        node = op or keep_float
        if node is not None:
            result["node_sqnr_db"] = _snr_db(checked.get(node[2]))
        return result

    return _sweep(bundle, target, ops, measure, reference, progress, {
        "runtime": "litert (ai-edge-litert), quantized by ai-edge-quantizer",
        "measured_on": here_key("litert", "ai_edge_litert"),
        "quantizer": {"tool": "ai-edge-quantizer (static min/max, per-op recipes by regex)",
                      "activations": cfg.activations, "per_channel": True,
                      "calibration": "minmax", "weights": "int8 symmetric"},
        "sqnr": {"tool": "ai_edge_quantizer Quantizer.validate (SNR)",
                 "images": len(test_data[signature]), "output_tensor": output,
                 "graph_optimization": "XNNPACK"},
        "graph_file": source.name},
        lambda path: _scopes(tfl, path), tmp / "all-int8.tflite", n_calib)


def _scopes(tfl, path: Path) -> set:
    """The op scopes (output tensor names) of a .tflite file."""
    model = tfl.read_model(Path(path).read_bytes())
    return {tfl.get_op_scope(op, g.tensors) for g in model.subgraphs for op in g.operators}


def _snr_db(value) -> Optional[float]:
    snr = value and value.get("snr")
    return _finite(10.0 * math.log10(snr)) if snr and snr > 0 else None


@contextlib.contextmanager
def _quiet_all():
    """ai-edge-quantizer and LiteRT print to stdout and stderr: keep the table readable."""
    with _quiet(), contextlib.redirect_stderr(io.StringIO()), \
            np.errstate(divide="ignore", invalid="ignore"):
        yield


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_results(doc: Dict, path: Path) -> Path:
    """Write the sensitivity document atomically (JSON, mode 0644)."""
    import json

    return atomic.write_text(path, json.dumps(doc, indent=2) + "\n")
