"""Host-side builders of the fp32 and fp16 ONNX targets."""

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError, UsageError
from sc2deploy.targets.registry import FIRST_CONV, GDN, LAST_CONV


def build_fp32(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """The fp32 graph is the export's own ``head.onnx``: nothing to convert."""
    return bundle.file(bundle.manifest["artifacts"]["onnx"]["file"]), {}


def build_fp16(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """fp16 weights and activations; inputs and outputs stay float32, and so do the nodes of
    ``options.fp16_options().keep_float`` (names, op types or markers, resolved here)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    model = onnx.load(str(source))
    keep = keep_float_nodes(model, options.fp16_options().keep_float)
    model = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep or None)
    drop_duplicate_nodes(model.graph)  # a value read by two float nodes gets two equal Casts
    sort_topologically(model.graph)  # the converter appends its input casts at the end
    onnx.checker.check_model(model, full_check=True)
    path = stage / "head-fp16.onnx"
    onnx.save(model, str(path))
    return path, {"keep_io_types": True, "keep_float": keep}


def keep_float_nodes(model, keep: Sequence[str]) -> List[str]:
    """Names of the nodes ``keep`` leaves in float, in graph order: each entry is a node name,
    an op type, or a marker (``LAST_CONV``, ``FIRST_CONV``, ``GDN``)."""
    nodes = list(model.graph.node)
    convs = [n.name for n in nodes if n.op_type == "Conv"]
    markers = {LAST_CONV: convs[-1:], FIRST_CONV: convs[:1], GDN: gdn_nodes(model.graph)}
    unknown = [k for k in keep if k not in markers and k not in {n.name for n in nodes}
               and k not in {n.op_type for n in nodes}]
    if unknown:
        raise UsageError(f"--keep-float {unknown}: no such node or op type; expected a node "
                         f"name, an op type or one of {', '.join(markers)}; nodes are "
                         f"{sorted(n.name for n in nodes)}")
    chosen = {name for k in keep if k in markers for name in markers[k]}
    chosen |= {n.name for n in nodes if n.name in keep or n.op_type in keep}
    return [n.name for n in nodes if n.name in chosen]


def gdn_nodes(graph) -> List[str]:
    """The nodes of each GDN normalization (``x * 1/(beta + gamma |x|)`` or
    ``x / sqrt(beta + gamma x²)``), in graph order::

        x ─ Abs|Pow|Mul(x,x) ─ Conv ─ Reciprocal|Sqrt|Rsqrt ... ─┐
        └──────────────────────────────────────────────────────── Mul|Div ─ y

    i.e. from a node that makes |x| or x² to the first node after it that uses x again, and
    every node on the way (with the Constants only they read)."""
    nodes = list(graph.node)
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in nodes for o in n.output}
    found = set()
    for start in nodes:
        squares = start.op_type == "Mul" and len(set(start.input)) == 1
        if start.op_type not in ("Abs", "Pow") and not squares:
            continue
        x = start.input[0]
        after, frontier = {}, list(start.output)
        while frontier:  # every node fed, directly or not, by |x|
            for n in consumers.get(frontier.pop(), []):
                if n.name not in after:
                    after[n.name] = n
                    frontier.extend(n.output)
        ends = [n for n in nodes if n.name in after and x in n.input]
        if not ends or not any(n.op_type == "Conv" for n in after.values()):
            continue
        on_path, frontier = {ends[0].name}, list(ends[0].input)
        while frontier:  # walk back from the end to the start
            n = producer.get(frontier.pop())
            if n is not None and n.name in after and n.name not in on_path:
                on_path.add(n.name)
                frontier.extend(n.input)
        found |= on_path | {start.name}
        read = {n.name: [c.name for o in n.output for c in consumers.get(o, [])]
                for n in nodes if n.op_type == "Constant"}
        found |= {name for name, by in read.items() if by and set(by) <= found}
    return [n.name for n in nodes if n.name in found]


def drop_duplicate_nodes(graph) -> None:
    """Remove each node equal to an earlier one (same op, inputs, outputs and attributes)."""
    seen, kept = set(), []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


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
