"""Static int8 QDQ quantization with onnxruntime (``onnx-int8``; also TensorRT's Q/DQ graph).

Calibration runs sc2deploy's own calibrator pass so that the histogram size is
real (``quantize_static`` would use 128 bins for Entropy, i.e. MinMax ranges),
stores the ranges as a calibration cache, then quantizes from that cache.
"""

import contextlib
import io
import logging
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError, UsageError
from sc2deploy.targets.registry import LAST_CONV

HISTOGRAM_BINS = 2048
PERCENTILE = 99.999


def build_int8(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """Static QDQ, activations int8 or int16 (what the onnx-int8 record accepts)."""
    import onnx

    source = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    cfg = options.int8
    cfg = replace(cfg, keep_float=resolve_keep_float(onnx.load(str(source)), cfg.keep_float))
    path = stage / "head-int8.onnx"
    quantize(source, path, cfg, calibration, bundle.model["input"]["name"])
    return path, asdict(cfg)


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed inputs."""

    def __init__(self, inputs: Sequence[np.ndarray], name: str):
        self._items = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self._items, None)


def resolve_keep_float(model, keep: Sequence[str]) -> Tuple[str, ...]:
    """``keep`` with the ``LAST_CONV`` marker (of a search space) replaced by that node's name."""
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    resolved = []
    for entry in keep:
        resolved.extend(convs[-1:] if entry == LAST_CONV else [entry])
    return tuple(resolved)


def keep_float_nodes(model, keep: Sequence[str]):
    """Node names to leave in float: each entry is a node name or an op type."""
    names = {n.name for n in model.graph.node}
    op_types = {n.op_type for n in model.graph.node}
    unknown = [k for k in keep if k not in names and k not in op_types]
    if unknown:
        raise UsageError(f"--keep-float {unknown}: no such node or op type; nodes are "
                         f"{sorted(names)}")
    return [n.name for n in model.graph.node if n.name in keep or n.op_type in keep]


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
                activation_type=QuantType.QInt16 if cfg.activations == "int16"
                else QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=method,
                calibration_cache_path=cache, nodes_to_exclude=exclude,
                op_types_to_quantize=op_types,
                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                               **(extra or {})})
        except ValueError as exc:
            raise BuildError(f"onnxruntime's quantizer refused {source.name} with {cfg}: {exc}; "
                             "expected a configuration it supports: try other int8 options "
                             "or --search") from exc
