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

from sc2deploy.errors import DeviceError
from sc2deploy.targets.registry import HostCheck, Int8Options, Target
from sc2deploy.targets.runner import Runner

_HOST_BUILD = "sc2deploy.builders.tensorrt_build"
_HOST_CHECK = dict(runtime="onnxruntime (host check)",
                   runner="sc2deploy.targets.onnx:OnnxRunner",
                   build_requires=("onnx", "onnxruntime"), run_requires=("onnxruntime",))
_ENGINE = dict(runtime="tensorrt", runner="sc2deploy.targets.tensorrt:TensorRTRunner",
               build_on="device", build_requires=("tensorrt",),
               run_requires=("tensorrt", "cuda"))


def _checked(ran: str, precision: str) -> HostCheck:
    """The host check of ``tensorrt-PRECISION``: ``ran`` in onnxruntime, TensorRT not run."""
    return HostCheck(ran, "TensorRT", f"tensorrt-{precision}-engine", "the Jetson")


TARGETS = (
    Target("tensorrt-fp16", "fp16", builder=f"{_HOST_BUILD}:build_fp16",
           description="TensorRT-ready fp32 ONNX + fp16 recipe (engine: build-engine)",
           host_check=_checked("fp32", "fp16"), **_HOST_CHECK),
    # TensorRT's explicit quantization: symmetric int8 activations only
    Target("tensorrt-int8", "int8", builder=f"{_HOST_BUILD}:build_int8",
           needs_calibration=True, activations=("int8",),
           search=(Int8Options(), Int8Options(calibration="percentile")),
           description="explicit Q/DQ ONNX (symmetric, zero point 0) + int8 recipe",
           host_check=_checked("int8 Q/DQ", "int8"), **_HOST_CHECK),
    # built by `sc2deploy build-engine` (sc2deploy.builders.tensorrt_build.build_engine)
    Target("tensorrt-fp16-engine", "fp16",
           description="serialized TensorRT engine, built on the Jetson", **_ENGINE),
    Target("tensorrt-int8-engine", "int8",
           description="serialized TensorRT engine, built on the Jetson", **_ENGINE),
)


class TensorRTRunner(Runner):
    """TensorRT 10 engine with device buffers from cuda-python (no torch, no pycuda)."""

    def activate(self) -> None:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart

        self._cudart = cudart
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise DeviceError(f"TensorRT could not load {self.path}: received an engine this "
                              "TensorRT cannot deserialize, expected one built by this device "
                              "and TensorRT version; rebuild it here: sc2deploy build-engine "
                              "BUNDLE --precision P")
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
            raise DeviceError(f"TensorRT execution of {self.path.name} failed "
                              "(execute_async_v3 returned false), expected it to run: see "
                              "TensorRT's log above; rebuild the engine on this device")
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
        raise DeviceError(f"CUDA call failed: received {error}, expected cudaSuccess; check "
                          "the GPU (nvidia-smi / tegrastats) and free memory, then retry")
    return values[0] if len(values) == 1 else tuple(values)
