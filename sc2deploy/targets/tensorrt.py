"""TensorRT targets for Jetson: a TensorRT-ready ONNX built on the host, the engine on the device.

``tensorrt-fp16`` / ``tensorrt-int8`` (host): the graph TensorRT will parse (int8: explicit
Q/DQ, symmetric, zero point 0), checked in onnxruntime, plus the build recipe.
``tensorrt-fp16-engine`` / ``tensorrt-int8-engine`` (device): the serialized engine written
by ``sc2deploy build-engine`` with the TensorRT Python API, run by :class:`TensorRTRunner`.

UNVERIFIED ON HARDWARE: no GPU or TensorRT exists where sc2deploy is developed; the device
half follows NVIDIA's TensorRT 10 Python API documentation and is untested until someone runs
it on a Jetson.
"""

import numpy as np

from sc2deploy.errors import UsageError
from sc2deploy.targets.registry import Target, register
from sc2deploy.targets.runner import Runner

_HOST_BUILD = "sc2deploy.builders.tensorrt"
_ONNX_RUNNER = "sc2deploy.targets.onnx:OnnxRunner"
_TRT_RUNNER = "sc2deploy.targets.tensorrt:TensorRTRunner"

register(Target("tensorrt-fp16", "fp16", "onnxruntime (host check)", f"{_HOST_BUILD}:build_fp16",
                _ONNX_RUNNER, build_requires=("onnx", "onnxruntime"),
                run_requires=("onnxruntime",),
                description="TensorRT-ready fp32 ONNX + fp16 recipe (engine: build-engine)"))
register(Target("tensorrt-int8", "int8", "onnxruntime (host check)", f"{_HOST_BUILD}:build_int8",
                _ONNX_RUNNER, needs_calibration=True, build_requires=("onnx", "onnxruntime"),
                run_requires=("onnxruntime",),
                description="explicit Q/DQ ONNX (symmetric, zero point 0) + int8 recipe"))
for _precision in ("fp16", "int8"):
    register(Target(f"tensorrt-{_precision}-engine", _precision, "tensorrt",
                    f"{_HOST_BUILD}:build_on_device", _TRT_RUNNER, build_on="device",
                    build_requires=("tensorrt",), run_requires=("tensorrt", "cuda"),
                    description="serialized TensorRT engine, built on the Jetson"))


class TensorRTRunner(Runner):
    """TensorRT 10 engine with device buffers from cuda-python (no torch, no pycuda)."""

    def activate(self) -> None:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self._cudart = cudart
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise UsageError(f"TensorRT could not load {self.path}: engines are specific to the "
                             "device and TensorRT version that built them; rebuild it here")
        self._context = self._engine.create_execution_context()
        self._stream = _check(cudart.cudaStreamCreate())
        self._buffers = {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(self._engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            host = np.empty(shape, dtype=dtype)
            device = _check(cudart.cudaMalloc(host.nbytes))
            self._context.set_tensor_address(name, device)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            self._buffers[name] = (host, device, is_input)

    def infer_impl(self, x: np.ndarray) -> np.ndarray:
        cudart = self._cudart
        kinds = cudart.cudaMemcpyKind
        for host, device, is_input in self._buffers.values():
            if is_input:
                np.copyto(host, x)
                _check(cudart.cudaMemcpyAsync(device, host.ctypes.data, host.nbytes,
                                              kinds.cudaMemcpyHostToDevice, self._stream))
        if not self._context.execute_async_v3(self._stream):
            raise UsageError("TensorRT execution failed")
        outputs = [(h, d) for h, d, is_input in self._buffers.values() if not is_input]
        for host, device in outputs:
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, device, host.nbytes,
                                          kinds.cudaMemcpyDeviceToHost, self._stream))
        _check(cudart.cudaStreamSynchronize(self._stream))
        return outputs[0][0].copy()

    def deactivate(self) -> None:
        for _, device, _ in getattr(self, "_buffers", {}).values():
            self._cudart.cudaFree(device)
        if getattr(self, "_stream", None) is not None:
            self._cudart.cudaStreamDestroy(self._stream)
        self._buffers, self._stream = {}, None


def _check(result):
    """cuda-python returns (error, value...); raise on error, return the value."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise UsageError(f"CUDA call failed: {error}")
    return values[0] if len(values) == 1 else tuple(values)
