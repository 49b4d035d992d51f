"""ONNX targets run by onnxruntime: ``onnx`` (fp32), ``onnx-fp16``, ``onnx-int8``."""

import numpy as np

from sc2deploy.targets.registry import Target, register
from sc2deploy.targets.runner import Runner

_RUNNER = "sc2deploy.targets.onnx:OnnxRunner"
_BUILD = "sc2deploy.builders.onnx"

register(Target("onnx", "fp32", "onnxruntime", f"{_BUILD}:build_fp32", _RUNNER,
                build_requires=("onnx", "onnxruntime"), run_requires=("onnxruntime",),
                description="the exported fp32 graph (any CPU)"))
register(Target("onnx-fp16", "fp16", "onnxruntime", f"{_BUILD}:build_fp16", _RUNNER,
                build_requires=("onnx", "onnxruntime"), run_requires=("onnxruntime",),
                description="fp16 weights and activations, fp32 input/output"))
register(Target("onnx-int8", "int8", "onnxruntime", "sc2deploy.builders.onnx_int8:build_int8",
                _RUNNER, needs_calibration=True, build_requires=("onnx", "onnxruntime"),
                run_requires=("onnxruntime",),
                description="static QDQ quantization calibrated on images"))


class OnnxRunner(Runner):
    """onnxruntime CPU session over one ONNX file."""

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.path), options,
                                             providers=["CPUExecutionProvider"])

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: x})[0]

    def deactivate(self) -> None:
        self._session = None
