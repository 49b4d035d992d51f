"""TFLite targets run by LiteRT: ``tflite`` (fp32), ``tflite-fp16``, ``tflite-int8``.

Converted on the host from the torch head with litert-torch (no TensorFlow);
run with ai-edge-litert, or tflite-runtime as a fallback (same Interpreter API).
"""

import importlib.util

import numpy as np

from sc2deploy.errors import UsageError
from sc2deploy.log import native_stderr_without
from sc2deploy.targets.registry import Int8Options, Target
from sc2deploy.targets.runner import Runner

_RUNTIME = "ai_edge_litert" if importlib.util.find_spec("ai_edge_litert") else "tflite_runtime"
_LITERT = dict(runtime="litert", runner="sc2deploy.targets.tflite:TFLiteRunner",
               build_requires=("torch", "litert_torch"), run_requires=(_RUNTIME,))
_BUILD = "sc2deploy.builders.tflite_build"
XNNPACK_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate"  # once per process, on stderr

TARGETS = (
    Target("tflite", "fp32", builder=f"{_BUILD}:build_fp32", description="fp32 TFLite",
           **_LITERT),
    Target("tflite-fp16", "fp16", builder=f"{_BUILD}:build_fp16",
           description="fp16 weights (LiteRT float casting)", **_LITERT),
    # keep_float names encoder layers of the torch head (indices), not ONNX nodes
    Target("tflite-int8", "int8", builder=f"{_BUILD}:build_int8", needs_calibration=True,
           activations=("int8", "dynamic", "float"),
           search=(Int8Options(), Int8Options(keep_float=("0", "4")),
                   Int8Options(activations="dynamic"),
                   Int8Options(activations="float")),
           description="int8 via PT2E static quantization, calibrated", **_LITERT),
)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise UsageError("no TFLite runtime: pip install ai-edge-litert") from None
    return Interpreter


class TFLiteRunner(Runner):
    """LiteRT interpreter over one .tflite file; (de)quantizes int8 inputs/outputs."""

    def activate(self) -> None:
        with native_stderr_without(XNNPACK_NOTICE):
            self._interpreter = _interpreter_class()(model_path=str(self.path),
                                                     num_threads=self.threads)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        spec = self._input
        if np.dtype(spec["dtype"]) in (np.int8, np.uint8):
            scale, zero_point = spec["quantization"]
            info = np.iinfo(spec["dtype"])
            x = np.clip(np.round(x / scale) + zero_point, info.min, info.max)
            x = x.astype(spec["dtype"])  # clipped first: casts never wrap
        self._interpreter.set_tensor(spec["index"], x)
        self._interpreter.invoke()
        y = self._interpreter.get_tensor(self._output["index"])
        if np.dtype(self._output["dtype"]) in (np.int8, np.uint8):
            scale, zero_point = self._output["quantization"]
            y = (y.astype(np.float32) - zero_point) * scale
        return y

    def deactivate(self) -> None:
        self._interpreter = None
