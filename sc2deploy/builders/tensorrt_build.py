"""TensorRT: the host half (TensorRT-ready ONNX + recipe) and ``build-engine`` on the Jetson.

The host half is tested here; ``build_engine`` needs TensorRT (JetPack) and is
UNVERIFIED ON HARDWARE until someone runs it on a Jetson.
"""

import shutil
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from sc2deploy import __version__
from sc2deploy.atomic import ensure_writable
from sc2deploy.bundle import Bundle, sha256_file
from sc2deploy.errors import BuildError, DeviceError, UsageError
from sc2deploy.log import logger, step

WORKSPACE_MB = 256
TIMING_CACHE = "timing.cache"
TRTEXEC = "/usr/src/tensorrt/bin/trtexec"


def _recipe(onnx_name: str, precision: str) -> Dict:
    flags = ["--fp16"] if precision == "fp16" else ["--int8", "--fp16"]
    engine = f"head-{precision}.engine"
    command = " ".join([TRTEXEC, f"--onnx={onnx_name}", f"--saveEngine={engine}", *flags,
                        f"--memPoolSize=workspace:{WORKSPACE_MB}M",
                        "--timingCacheFile=timing.cache"])
    return {"build_on": "device", "workspace_mb": WORKSPACE_MB, "flags": flags,
            "engine": engine, "trtexec": command,
            "sc2deploy": f"sc2deploy build-engine BUNDLE --precision {precision}"}


def build_fp16(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """TensorRT builds fp16 from the fp32 graph; the host check runs it in onnxruntime fp32."""
    path = stage / "head-trt-fp16.onnx"
    shutil.copyfile(bundle.file(bundle.manifest["artifacts"]["onnx"]["file"]), path)
    return path, {"recipe": _recipe(path.name, "fp16"),
                  "host_check": "onnxruntime fp32 graph; fp16 accuracy is measured on the device"}


def build_int8(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """Explicit quantization: Q/DQ before each Conv, symmetric int8, zero point 0, float bias.

    Activations are int8 only (the tensorrt-int8 record accepts nothing else)."""
    from sc2deploy.builders.onnx_int8_build import quantize

    path = stage / "head-trt-int8.onnx"
    quantize(bundle.file(bundle.manifest["artifacts"]["onnx"]["file"]), path, options.int8,
             calibration, bundle.model["input"]["name"], symmetric=True, op_types=["Conv"],
             extra={"OpTypesToExcludeOutputQuantization": ["Conv"], "QuantizeBias": False,
                    "DedicatedQDQPair": True})
    problems = tensorrt_problems(path)
    if problems:
        raise BuildError(f"received a Q/DQ graph TensorRT would reject ({'; '.join(problems)}), "
                         "expected TensorRT 10's explicit quantization rules: try "
                         "--calibration percentile or --search")
    return path, {"recipe": _recipe(path.name, "int8"), "qdq": "symmetric int8, zero point 0",
                  "calibration": options.int8.calibration,
                  "host_check": "Q/DQ graph run in onnxruntime"}


def tensorrt_problems(path: Path) -> List[str]:
    """What TensorRT 10's explicit quantization would refuse in a Q/DQ graph."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    problems = [] if opset >= 13 else [f"opset {opset} < 13"]
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{node.name}: Q/DQ in domain {node.domain}")
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and (zero.dtype != np.int8 or np.any(zero != 0)):
            problems.append(f"{node.name}: zero point must be int8 0")
        source = inits.get(node.input[0])
        if source is not None and source.dtype == np.int32:
            problems.append(f"{node.name}: dequantizes an int32 bias")
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        scale = inits.get(node.input[1])
        if scale is not None and scale.size > 1 and (source is None or axis != 0):
            problems.append(f"{node.name}: per-channel scales only on weights, axis 0")
        if set(node.output) & outputs:
            problems.append(f"{node.name}: Q/DQ produces a graph output")
    return problems


def jetson_release() -> str:
    """L4T release line of a Jetson (``/etc/nv_tegra_release``), or 'unknown'."""
    path = Path("/etc/nv_tegra_release")
    return path.read_text().splitlines()[0].strip("# ") if path.is_file() else "unknown"


def build_engine(bundle_path: Path, precision: str, workspace_mb: int = WORKSPACE_MB) -> Path:
    """Parse the TensorRT-ready ONNX, build and store the engine (needs TensorRT 10)."""
    try:
        import tensorrt as trt
    except ImportError:
        raise UsageError("TensorRT is not installed: run build-engine on the Jetson, where "
                         "JetPack provides `import tensorrt`") from None
    bundle = Bundle.open(bundle_path)
    ensure_writable(bundle.path, "bundle")
    source = f"tensorrt-{precision}"
    if source not in bundle.manifest.get("artifacts", {}):
        raise UsageError(f"build {source} on the host first: sc2deploy build BUNDLE --target "
                         f"{source}")
    onnx_path = bundle.file(bundle.manifest["artifacts"][source]["file"])
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise DeviceError(f"TensorRT could not parse {onnx_path.name}: {'; '.join(errors)}; "
                          f"expected the {source} graph to parse: rebuild it on the host with "
                          f"this sc2deploy (sc2deploy build BUNDLE --target {source})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    cache_path = bundle.path / TIMING_CACHE
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    start = time.perf_counter()
    with bundle.transaction() as txn:
        with step(f"building the {precision} TensorRT engine"):
            serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise DeviceError(f"TensorRT built no {precision} engine (build_serialized_network "
                              "returned None; see its log above): try a larger --workspace-mb "
                              "or free GPU memory")
        stage = txn.stage()
        engine = stage / f"head-{precision}.engine"
        engine.write_bytes(bytes(serialized))
        (stage / TIMING_CACHE).write_bytes(bytes(config.get_timing_cache().serialize()))
        txn.include(stage / TIMING_CACHE)
        txn.add_artifact(f"tensorrt-{precision}-engine", engine, precision=precision,
                         target=f"tensorrt-{precision}-engine", runtime="tensorrt",
                         options={"workspace_mb": workspace_mb, "source": onnx_path.name,
                                  "timing_cache": TIMING_CACHE},
                         build={"seconds": round(time.perf_counter() - start, 1),
                                "bytes": engine.stat().st_size, "sc2deploy": __version__,
                                "tensorrt": trt.__version__, "l4t": jetson_release(),
                                "source_sha256": sha256_file(onnx_path)})
        bundle = txn.commit()
    logger.info("  equivalent: %s", bundle.manifest["artifacts"][source]["options"]["recipe"]
                ["trtexec"])
    return bundle.path / f"head-{precision}.engine"
