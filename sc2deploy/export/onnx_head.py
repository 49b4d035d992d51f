"""Export a head to ONNX and verify onnxruntime against torch, symbol for symbol."""

import warnings
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from sc2deploy import __version__
from sc2deploy.errors import ExportError
from sc2deploy.targets.gate import agreement, is_exact
from sc2deploy.log import logger

OPSET = 17
INPUT_NAME = "image"


def export_onnx(module: torch.nn.Module, input_shape: Sequence[int], path: Path,
                output_names: Sequence[str], metadata: Dict[str, str],
                input_name: str = INPUT_NAME) -> None:
    """Write ``module`` as a static-shape opset-17 ONNX graph and check it fully."""
    import onnx

    dummy = torch.zeros(*input_shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is ours
        torch.onnx.export(module, (dummy,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[input_name], output_names=list(output_names),
                          do_constant_folding=True)
    model = onnx.load(str(path))
    casts = [n.name for n in model.graph.node if n.op_type == "Cast"]
    if casts:
        raise ExportError(f"exported graph contains Cast nodes {casts}; the head must output "
                          "float32 integer values (clip and cast outside the graph)")
    for key, value in {"producer": f"sc2deploy {__version__}", **metadata}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def run_onnx(path: Path, inputs: Sequence[np.ndarray]) -> List[List[np.ndarray]]:
    """Run the ONNX file on each input with onnxruntime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, {INPUT_NAME: x}) for x in inputs]


def run_torch(module: torch.nn.Module, inputs: Sequence[np.ndarray]) -> List[List[np.ndarray]]:
    """Run the torch module on each input; always returns a list of outputs per input."""
    results = []
    with torch.no_grad():
        for x in inputs:
            out = module(torch.from_numpy(x))
            out = out if isinstance(out, tuple) else (out,)
            results.append([o.numpy() for o in out])
    return results


def verify_onnx(path: Path, module: torch.nn.Module, inputs: Sequence[np.ndarray]):
    """Fail unless onnxruntime reproduces every torch symbol (bar rare .5 ties) exactly.

    Returns the torch reference outputs and the agreement statistics.
    """
    reference = run_torch(module, inputs)
    candidate = run_onnx(path, inputs)
    with torch.no_grad():
        pre_round = [module.pre_round(torch.from_numpy(x)).numpy() for x in inputs]
    stats = agreement([r[0] for r in reference], [c[0] for c in candidate], pre_round)
    logger.info("  onnxruntime vs torch: %d mismatches (%d at .5 ties) over %d symbols, %d images",
                stats["mismatches"], stats["ties"], stats["values"], len(inputs))
    if not is_exact(stats):
        raise ExportError(
            f"onnxruntime disagrees with torch on {stats['mismatches']} of {stats['values']} "
            f"symbols ({stats['ties']} at .5 ties); the export is not faithful and was not "
            "written")
    for ref, cand in zip(reference, candidate):
        for name, r, c in zip(module.output_names[1:], ref[1:], cand[1:]):
            if not np.allclose(r, c, rtol=1e-5, atol=0):
                raise ExportError(f"onnxruntime output {name} = {c} differs from torch {r}")
    return reference, {**stats, "images": len(inputs)}
