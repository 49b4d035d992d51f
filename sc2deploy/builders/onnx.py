"""Host-side builders of the fp32 and fp16 ONNX targets."""

from pathlib import Path
from typing import Dict, Tuple

from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError


def build_fp32(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """The fp32 graph is the export's own ``head.onnx``: nothing to convert."""
    return bundle.file(bundle.manifest["artifacts"]["onnx"]["file"]), {}


def build_fp16(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """fp16 weights and activations; inputs and outputs stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    sort_topologically(model.graph)  # the converter appends its input casts at the end
    onnx.checker.check_model(model, full_check=True)
    path = stage / "head-fp16.onnx"
    onnx.save(model, str(path))
    return path, {"keep_io_types": True}


def sort_topologically(graph) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            stuck = [i for i in pending[0].input if i not in available]
            raise BuildError(
                f"received a graph with a cycle or an undefined input ({len(pending)} nodes "
                f"cannot be ordered; {pending[0].name or pending[0].op_type} waits for "
                f"{stuck}), expected each input made by a graph input, an initializer or an "
                "earlier node: the converter wrote a broken graph; try another onnxruntime "
                "version, or report it with `pip show onnxruntime`")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
