"""ONNX targets run by onnxruntime: ``onnx`` (fp32), ``onnx-fp16``, ``onnx-int8``."""

from typing import Dict, Optional

import numpy as np

from sc2deploy.errors import UsageError
from sc2deploy.targets.registry import FIRST_CONV, GDN, LAST_CONV, Fp16Options, Int8Options, Target
from sc2deploy.targets.runner import Runner
from sc2deploy.targets.session import onnxruntime_session_options

_RUNNER = "sc2deploy.targets.onnx:OnnxRunner"
_BUILD = "sc2deploy.builders.onnx_build"
_ORT = dict(runtime="onnxruntime", runner=_RUNNER, build_requires=("onnx", "onnxruntime"),
            run_requires=("onnxruntime",))

TARGETS = (
    Target("onnx", "fp32", builder=f"{_BUILD}:build_fp32",
           description="the exported fp32 graph (any CPU)", **_ORT),
    Target("onnx-fp16", "fp16", builder=f"{_BUILD}:build_fp16",
           search=(Fp16Options(), Fp16Options(keep_float=(LAST_CONV,)),
                   Fp16Options(keep_float=(GDN,)), Fp16Options(keep_float=(LAST_CONV, GDN))),
           description="fp16 weights and activations, fp32 input/output", **_ORT),
    Target("onnx-int8", "int8", builder="sc2deploy.builders.onnx_int8_build:build_int8",
           needs_calibration=True, activations=("int8", "int16", "float"),
           search=(Int8Options(), Int8Options(calibration="percentile"),
                   Int8Options(reduce_range=True), Int8Options(keep_float=(LAST_CONV,)),
                   Int8Options(activations="int16"),
                   Int8Options(activations="int16", per_channel=False),
                   Int8Options(activations="int16", calibration="percentile"),
                   Int8Options(activations="int16", keep_float=(LAST_CONV,)),
                   Int8Options(activations="int16", keep_float=(FIRST_CONV, LAST_CONV)),
                   Int8Options(activations="int16", calibration="percentile",
                               keep_float=(FIRST_CONV, LAST_CONV)),
                   Int8Options(activations="float"),
                   Int8Options(activations="float", keep_float=(LAST_CONV,)),
                   Int8Options(activations="float", keep_float=(FIRST_CONV, LAST_CONV))),
           description="static QDQ quantization calibrated on images (or int8 weights only)",
           **_ORT),
)


class OnnxRunner(Runner):
    """onnxruntime CPU session over one ONNX file.

    ``profile_prefix`` set before activating: onnxruntime's profiler records every node run
    (``SessionOptions.enable_profiling``); :meth:`end_profiling` writes its Chrome trace.
    """

    profile_prefix: Optional[str] = None

    def activate(self) -> None:
        import onnxruntime as ort

        options, providers = onnxruntime_session_options(self.settings)
        if self.profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = self.profile_prefix
        self._session = ort.InferenceSession(str(self.path), options, providers=providers)

    def end_profiling(self) -> str:
        """Stop onnxruntime's profiler; the path of the Chrome trace JSON it wrote."""
        if not self.profile_prefix or not self._active:
            raise UsageError("end_profiling needs an active runner made with profile_prefix")
        return self._session.end_profiling()

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: x})[0]

    def deactivate(self) -> None:
        self._session = None


class ServerRunner(OnnxRunner):
    """onnxruntime over a server-side model of the bundle (decoder.onnx, tail.onnx): it takes
    the symbols as float32 [1, C, H, W] and returns its float32 output as it is.

    Models with more inputs than the symbols (a BQ tail: ``scale``, ``zero_point``) name them
    in the graph; ``infer(symbols, side)`` takes them as float32 arrays keyed by name.
    """

    what = "symbols"

    def activate(self) -> None:
        super().activate()
        inputs = self._session.get_inputs()
        self.side_inputs = {i.name: tuple(i.shape) for i in inputs if i.name != self.input_name}
        self._side = {}
        first = next((i.shape for i in inputs if i.name == self.input_name), [1])
        self.batch_free = not self.side_inputs and not isinstance(first[0], int)

    def infer_batch(self, xs: np.ndarray) -> np.ndarray:
        """float32 [N, C, H, W] → outputs [N, ...] in one run, for a graph whose batch
        dimension is free (the tails sc2deploy exports)."""
        if not self.batch_free:
            raise UsageError(f"{self.path.name} has a batch dimension of 1: run it image by image")
        self.check_input(xs, (max(len(xs), 1), *self.input_shape[1:]))
        return self._session.run(None, {self.input_name: np.ascontiguousarray(xs)})[0]

    def infer(self, x: np.ndarray, side: Optional[Dict[str, np.ndarray]] = None) -> np.ndarray:
        if self._active:
            self._side = self._check_side(dict(side or {}))
        return super().infer(x)

    def _check_side(self, side: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = [n for n in self.side_inputs if n not in side]
        if missing:
            raise UsageError(f"Input tensor: {', '.join(missing)} | Missing. Note: "
                             f"{self.path.name} takes {self.input_name}, "
                             f"{', '.join(self.side_inputs)} (the head's outputs)")
        for name, shape in self.side_inputs.items():
            value = side[name]
            if not isinstance(value, np.ndarray) or value.dtype != np.float32:
                raise UsageError(f"Input tensor: {name} | Received dtype "
                                 f"{getattr(value, 'dtype', type(value).__name__)}. "
                                 "Note: expected float32")
            if value.shape != shape:
                raise UsageError(f"Input tensor: {name} | Received incompatible shape: "
                                 f"{value.shape}. Note: expected {shape}")
        return {n: side[n] for n in self.side_inputs}

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: x, **self._side})[0]

    def postprocess(self, y: np.ndarray) -> np.ndarray:
        return y
