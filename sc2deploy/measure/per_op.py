"""Per-op latency of the head with the runtime's own profiler (``profile --per-op``; torch-free).

::

    profile's measured loop (no profiler) ─────────────────────────────▶ head p50
    per-op pass: the same artifact, threads and inputs, a second session with
      onnxruntime's profiler (SessionOptions.enable_profiling)
      warm-up runs + runs ─ end_profiling ─ Chrome trace JSON (kept: RESULTS.ort-trace.json)
      ─ each run: the nodes' kernel times (cat "Node", NAME_kernel_time) inside its model_run
      ─ each node: p50, mean, share (its mean / the head p50: the shares add up, as the
        means do, to the mean of the runs' sums);  each run: its nodes' sum
    ratio            = p50 of the per-run node sums / head p50 of the measured loop
    ratio_profiled   = the same / head p50 timed around the profiled runs themselves
    ratio_unprofiled = the same / head p50 of the measured loop's runner, run before each
                       profiled run (no profiler, same moments: load that changed between
                       the loop and the pass moves neither)

onnxruntime runs an optimized graph: a node it made from an artifact node (NCHWc layout
``OUTPUT_nchwc``, precision casts removed) is traced to that node (``graph_node``, read from
the artifact by :mod:`sc2deploy.targets.onnx_graph`); the nodes it inserts (layout
reorders, casts) have no graph node. LiteRT's Python API has no op profiler: for tflite
targets the results say so instead of a profile.
"""

import bisect
import json
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.errors import DeviceError
from sc2deploy.measure.progress import Progress
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.onnx_graph import GraphNode, graph_nodes
from sc2deploy.targets.session import SessionSettings

MAX_RUNS = 200  # profiled runs at most (the trace grows by one event per node and run)
_KERNEL = "_kernel_time"
_ORT_PREFIXES = ("InsertedPrecisionFreeCast_",)  # names onnxruntime gives nodes it rewrites
_ORT_SUFFIXES = ("_nchwc",)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown version"


def unavailable(target) -> Optional[str]:
    """Why the per-op profile cannot run for ``target`` (a Target), or None when it can."""
    if target.host_check is not None:
        check = target.host_check
        return (f"per-op profile: not available for {target.name}: it runs onnxruntime as a "
                f"host check, not {check.device_runtime}; profile {check.device_target} on "
                f"{check.device}")
    runtime = target.runtime_name
    if runtime == "onnxruntime":
        return None
    if runtime == "litert":
        return ("per-op profile: not available for tflite in LiteRT's Python API "
                f"(ai-edge-litert {_version('ai-edge-litert')}: its Interpreter and "
                "CompiledModel have no op profiler; LiteRT's C++ benchmark_model "
                "--enable_op_profiling=true has one)")
    return f"per-op profile: not available for {target.name} ({target.runtime}) in sc2deploy"


def profile_ops(bundle, target_name: str, settings: Optional[SessionSettings],
                inputs: Sequence[np.ndarray],
                runs: int, warmup: int, head_p50_ms: float, show: bool = True,
                reference=None) -> Tuple[dict, Optional[list]]:
    """Run the head ``warmup + runs`` times under the runtime's profiler, cycling through
    ``inputs`` (preprocessed images) with the session ``settings`` (None: the runtime's
    defaults); (the results' ``per_op`` entry, the trace's events or None when the target has
    no profiler).

    ``reference``: an active runner of the same artifact without the profiler (the measured
    loop's), run on the same input before each profiled run and timed too: the head without
    the profiler at the same moments (``unprofiled_head_p50_ms``)."""
    target = get_target(target_name)
    reason = unavailable(target)
    if reason:
        return {"available": False, "reason": reason}, None
    artifact = bundle.file(bundle.manifest["artifacts"][target.name]["file"])
    wall_ns: List[int] = []
    unprofiled_ns: List[int] = []
    progress = Progress("per-op", warmup + runs, enabled=show)
    with tempfile.TemporaryDirectory(prefix="sc2deploy-per-op-") as folder:
        runner = load_runner(bundle, target_name, settings=settings)
        runner.profile_prefix = str(Path(folder) / "ort")
        with runner:
            try:
                for i in range(warmup + runs):
                    x = inputs[i % len(inputs)]
                    if reference is not None:
                        t0 = time.perf_counter_ns()
                        reference.infer(x)
                        unprofiled_ns.append(time.perf_counter_ns() - t0)
                    t0 = time.perf_counter_ns()
                    runner.infer(x)
                    wall_ns.append(time.perf_counter_ns() - t0)
                    progress.update(i + 1)
            finally:
                progress.close()
                trace = Path(runner.end_profiling())
            events = json.loads(trace.read_text(encoding="utf-8"))
    entry = summarize_trace(events, warmup, head_p50_ms, graph_nodes(artifact))
    entry["profiler"] = (f"onnxruntime {_version('onnxruntime')} "
                         "(SessionOptions.enable_profiling)")
    total = entry["nodes_sum_ms"]["p50"]
    for key, times in (("profiled", wall_ns), ("unprofiled", unprofiled_ns)):
        p50 = float(np.percentile(times[warmup:], 50)) / 1e6 if times[warmup:] else None
        entry[f"{key}_head_p50_ms"] = p50
        entry[f"ratio_{key}"] = total / p50 if p50 else None
    return entry, events


class _Graph:
    """The artifact's nodes by name and by output."""

    def __init__(self, nodes: Sequence[GraphNode]):
        self.names = {n.name: n for n in nodes}
        self.outputs = {o: n for n in nodes for o in n.outputs}


def graph_node_of(name: str, op_type: str, graph: Sequence[GraphNode]) -> Optional[str]:
    """The artifact node that onnxruntime's node ``name`` runs, or None (a node it inserted).

    The same name; else, without onnxruntime's prefixes and suffixes, a node of that name or
    the node with that output, when the op types agree (``FusedConv`` and ``QLinearConv``
    agree with ``Conv``)."""
    return _node_of(name, op_type, _Graph(graph))


def _node_of(name: str, op_type: str, graph: _Graph) -> Optional[str]:
    names = graph.names
    if name in names:
        return name
    stem = name
    for prefix in _ORT_PREFIXES:
        stem = stem[len(prefix):] if stem.startswith(prefix) else stem
    for suffix in _ORT_SUFFIXES:
        stem = stem[:-len(suffix)] if stem.endswith(suffix) else stem
    node = names.get(stem) or graph.outputs.get(stem)
    if node is not None and op_type.endswith(node.op_type):
        return node.name
    return None


def _runs(events: list) -> List[Tuple[int, int]]:
    """(start, end) in µs of every ``model_run`` of the trace, in time order."""
    runs = sorted((int(e["ts"]), int(e["ts"]) + int(e["dur"])) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    return runs


def summarize_trace(events: list, warmup: int, head_p50_ms: float,
                    graph: Sequence[GraphNode]) -> dict:
    """The ``per_op`` entry from onnxruntime's trace events: the runs after the first
    ``warmup`` model_runs, per node and per run."""
    runs = _runs(events)[warmup:]
    known = _Graph(graph)
    if not runs:
        raise DeviceError(f"onnxruntime's trace has {len(_runs(events))} model_run events, "
                          f"expected more than the {warmup} warm-up runs: its profiler did not "
                          "record the runs (check the onnxruntime version)")
    starts = [start for start, _ in runs]
    per_node: Dict[str, np.ndarray] = {}
    op_types: Dict[str, str] = {}
    order: List[str] = []
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith(_KERNEL):
            continue
        i = bisect.bisect_right(starts, int(e["ts"])) - 1
        if i < 0 or int(e["ts"]) > runs[i][1]:
            continue  # a warm-up run's node
        node = name[:-len(_KERNEL)]
        if node not in per_node:
            per_node[node] = np.zeros(len(runs))
            op_types[node] = str(e.get("args", {}).get("op_name", ""))
            order.append(node)
        per_node[node][i] += int(e["dur"]) / 1e3  # µs -> ms
    sums = np.sum(list(per_node.values()), axis=0) if per_node else np.zeros(len(runs))
    nodes = []
    for rank, node in enumerate(order):
        times = per_node[node]
        nodes.append({"name": node, "op_type": op_types[node],
                      "graph_node": _node_of(node, op_types[node], known),
                      "order": rank, "p50_ms": float(np.percentile(times, 50)),
                      "mean_ms": float(times.mean()),
                      "share_pct": 100.0 * float(times.mean()) / head_p50_ms
                      if head_p50_ms > 0 else 0.0})
    nodes.sort(key=lambda n: (-n["mean_ms"], n["order"]))
    model_run = np.array([(end - start) / 1e3 for start, end in runs])
    sum_p50 = float(np.percentile(sums, 50))
    return {"available": True, "runs": len(runs), "warmup": warmup,
            "head_p50_ms": head_p50_ms,
            "nodes_sum_ms": {"p50": sum_p50, "mean": float(sums.mean())},
            "model_run_p50_ms": float(np.percentile(model_run, 50)),
            "ratio": sum_p50 / head_p50_ms if head_p50_ms > 0 else None,
            "graph_nodes": len(graph), "nodes": nodes}
