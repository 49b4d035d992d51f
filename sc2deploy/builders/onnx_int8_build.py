"""Static int8 QDQ quantization with onnxruntime (``onnx-int8``; also TensorRT's Q/DQ graph).

Calibration runs sc2deploy's own calibrator pass so that the histogram size is
real (``quantize_static`` would use 128 bins for Entropy, i.e. MinMax ranges),
stores the ranges as a calibration cache, then quantizes from that cache.

Activations ``float`` (W8, weight-only) stores each Conv's weights as int8 with one
symmetric scale per output channel, dequantized in the graph; activations and
arithmetic stay fp32 (the file is smaller, inference is not faster)::

    W_int8 ─ DequantizeLinear(scale, axis 0) ─ Conv(x fp32) ─ fp32
"""

import contextlib
import io
import logging
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from sc2deploy.builders.onnx_build import keep_float_nodes
from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError

HISTOGRAM_BINS = 2048
PERCENTILE = 99.999


def build_int8(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """Static QDQ, activations int8 or int16, or int8 weights only (activations float): what
    the onnx-int8 record accepts. Markers in ``keep_float`` are resolved to node names."""
    import onnx

    source = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    cfg = options.int8
    cfg = replace(cfg, keep_float=tuple(keep_float_nodes(onnx.load(str(source)),
                                                         cfg.keep_float)))
    path = stage / "head-int8.onnx"
    if cfg.activations == "float":
        quantize_weights(source, path, cfg.keep_float)
    else:
        quantize(source, path, cfg, calibration, bundle.model["input"]["name"])
    return path, asdict(cfg)


def quantize_weights(source: Path, dest: Path, keep_float: Sequence[str] = ()) -> None:
    """Write ``source`` with each Conv's weights (but those of ``keep_float`` nodes) stored as
    int8, symmetric per output channel, behind a DequantizeLinear."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    weights = {t.name: t for t in model.graph.initializer}
    dequantize = []
    for node in model.graph.node:
        if node.op_type != "Conv" or node.name in keep_float or node.input[1] not in weights:
            continue
        tensor = weights.pop(node.input[1])
        w = numpy_helper.to_array(tensor).astype(np.float64)
        peak = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127)
        name = tensor.name
        model.graph.initializer.remove(tensor)
        model.graph.initializer.extend([
            numpy_helper.from_array(q.astype(np.int8), f"{name}_int8"),
            numpy_helper.from_array(scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros_like(scale, np.int8), f"{name}_zero_point")])
        dequantize.append(helper.make_node(
            "DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"], [name],
            name=f"{node.name}/weight_DequantizeLinear", axis=0))
    if not dequantize:
        raise BuildError(f"{source.name}: received no Conv with initializer weights outside "
                         f"--keep-float {list(keep_float)}, expected at least one to quantize: "
                         "keep fewer nodes in float")
    nodes = dequantize + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dest))


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed inputs."""

    def __init__(self, inputs: Sequence[np.ndarray], name: str):
        self._items = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self._items, None)


@contextlib.contextmanager
def _quiet():
    """onnxruntime.quantization prints and logs advice on the root logger: keep it quiet."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def activation_type(activations: str, symmetric: bool):
    """int16 (A16W8); int8: unsigned with a zero point for onnxruntime's CPU kernels (x86's
    int8 dot products, VNNI's VPDPBUSD, multiply u8 by s8: S8S8 ran 0.52x fp32's speed where
    U8S8 ran 1.2-1.5x), signed with zero point 0 where ``symmetric`` (TensorRT)."""
    from onnxruntime.quantization import QuantType

    if activations == "int16":
        return QuantType.QInt16
    return QuantType.QInt8 if symmetric else QuantType.QUInt8


def quantize(source: Path, dest: Path, cfg, calibration: Sequence[np.ndarray], input_name: str,
             symmetric: bool = False, op_types=None, extra=None) -> None:
    """Write a QDQ model of ``source`` to ``dest`` (symmetric: zero points 0, for TensorRT)."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          create_calibrator, quantize_static)
    from onnxruntime.quantization.calibrate import save_tensors_data

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[cfg.calibration]
    model = onnx.load(str(source))
    with tempfile.TemporaryDirectory(prefix="sc2deploy-calib-") as tmp, _quiet():
        calibrator = create_calibrator(
            Path(source), augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=method,
            extra_options={"num_bins": HISTOGRAM_BINS, "num_quantized_bins": 256,
                           "percentile": PERCENTILE, "symmetric": symmetric})
        exclude = keep_float_nodes(model, cfg.keep_float)
        try:  # the quantizer refuses what it does not support with ValueError
            calibrator.collect_data(_Reader(calibration, input_name))
            cache = Path(tmp) / "ranges.json"
            save_tensors_data(calibrator.compute_data(), cache)
            quantize_static(
                str(source), str(dest), None, quant_format=QuantFormat.QDQ,
                per_channel=cfg.per_channel, reduce_range=cfg.reduce_range,
                activation_type=activation_type(cfg.activations, symmetric),
                weight_type=QuantType.QInt8, calibrate_method=method,
                calibration_cache_path=cache, nodes_to_exclude=exclude,
                op_types_to_quantize=op_types,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                               **(extra or {})})
        except ValueError as exc:
            raise BuildError(f"onnxruntime's quantizer refused {source.name} with {cfg}: {exc}; "
                             "expected a configuration it supports: try other int8 options "
                             "or --search") from exc
