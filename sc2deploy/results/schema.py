"""Profiling results documents: schema checks, loading, atomic writing.

The schema is documented in docs/results.md. Validation names the file and the
key path at fault, e.g. ``a.json: latency_ms.total.p99: expected a number, got 'x'``.
Files of every version up to SCHEMA_VERSION are read (version 1: no
``energy.host_timed_on``, modeled energy may carry a ``ci95``; versions 1 and 2: no
``samples``).
Standard library only (no numpy, no matplotlib).
"""

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

from sc2deploy import atomic
from sc2deploy.errors import ResultsError

SCHEMA = "sc2deploy-results"
SCHEMA_VERSION = 3  # 2: energy.host_timed_on, modeled energy has no ci95; 3: samples
STAT_KEYS = ("n", "mean", "std", "min", "p50", "p90", "p95", "p99", "max")
DEVICE_STAGES = ("load", "preprocess", "head", "code", "total")
SERVER_STAGES = ("decode", "decoder", "total")  # version 3: "decoder" only with a decoder
KINDS = ("device", "server", "evaluation", "stream", "replay")
STREAM_STAGES = ("encode", "transfer", "server", "total")  # sc2deploy stream (docs/results.md)
ENERGY_KINDS = ("measured", "modeled", "none")
SAMPLE_CAP = 10_000  # raw per-image samples kept per stage (docs/results.md)
SAMPLE_SELECTIONS = ("all", "uniform")


class _Invalid(Exception):
    """Internal: a key path and what is wrong there."""

    def __init__(self, path: str, message: str, wrong_type: bool = False):
        super().__init__(path, message)
        self.path, self.message, self.wrong_type = path, message, wrong_type


# A check takes (value, key path) and raises _Invalid.
Check = Callable[[object, str], None]


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type(what: str, test: Callable[[object], bool]) -> Check:
    def check(value, path):
        if not test(value):
            raise _Invalid(path, f"expected {what}, got {_show(value)}", wrong_type=True)
    return check


STR = _type("a string", lambda v: isinstance(v, str))
INT = _type("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
_NUMBER = _type("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))


def NUM(value, path):  # noqa: N802 (a check, like the other constants)
    _NUMBER(value, path)
    if not math.isfinite(value):
        raise _Invalid(path, f"expected a finite number, got {_show(value)}")
BOOL = _type("true or false", lambda v: isinstance(v, bool))


def _nullable(check: Check) -> Check:
    def nullable(value, path):
        if value is not None:
            try:
                check(value, path)
            except _Invalid as exc:
                if exc.path != path or not exc.wrong_type:
                    raise
                raise _Invalid(path, exc.message.replace("expected ", "expected null or ", 1))
    return nullable


def _one_of(*values: str) -> Check:
    def one_of(value, path):
        if value not in values:
            raise _Invalid(path, f"expected one of {', '.join(map(repr, values))}, "
                                 f"got {_show(value)}")
    return one_of


def _list(item: Check, length: Optional[int] = None) -> Check:
    def list_of(value, path):
        if not isinstance(value, list):
            raise _Invalid(path, f"expected a list, got {_show(value)}", wrong_type=True)
        if length is not None and len(value) != length:
            raise _Invalid(path, f"expected a list of {length} items, got {len(value)}")
        for i, v in enumerate(value):
            item(v, f"{path}[{i}]")
    return list_of


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(required: Dict[str, Check], optional: Optional[Dict[str, Check]] = None,
            extra: Optional[Check] = None) -> Check:
    """A JSON object: ``required`` keys must be there; ``extra`` checks unlisted keys."""
    optional = optional or {}

    def obj(value, path):
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected an object, got {_show(value)}", wrong_type=True)
        for key, check in required.items():
            if key not in value:
                raise _Invalid(path, f"missing required key {key!r}")
            check(value[key], _join(path, key))
        for key, v in value.items():
            if key in required:
                continue
            if key in optional:
                optional[key](v, _join(path, key))
            elif extra is not None:
                extra(v, _join(path, str(key)))
    return obj


STATS = _object({k: NUM for k in STAT_KEYS})
BUNDLE = _object({"path": STR, "model": STR, "manifest_sha256": STR,
                  "input_shape": _list(INT, 4), "latent_shape": _list(INT, 3)})
RUNS = _object({"warmup": INT, "measured": INT, "image_files": INT,
                "stop": _one_of("runs", "duration", "interrupted")})
BYTES = _object({k: NUM for k in ("mean", "p50", "p99", "min", "max")})
# Descriptive: keys optional, types checked.
MEMORY = _object({}, {k: _nullable(NUM) for k in (
    "peak_rss_mb", "process_peak_rss_mb", "rss_start_mb", "rss_after_warmup_mb", "rss_end_mb",
    "rss_growth_mb")})
CONDITIONS = _object({}, {**{k: _nullable(STR) for k in (
    "device_model", "cpu", "machine", "governor", "nvpmodel", "jetson_clocks", "throttled",
    "python", "hostname")}, "cores": _nullable(INT), "temperatures_c": _object({}),
    "packages": _object({}, extra=STR)})
JOULES = _object({"total": NUM, "dynamic": _nullable(NUM), "ci95": _nullable(_list(NUM, 2)),
                  "repeats": INT})
ENERGY_V1 = {"kind": _one_of(*ENERGY_KINDS), "source": _nullable(STR),
             "detail": _nullable(STR), "unavailable": _object({}, extra=STR),
             "sample_rate_hz": _nullable(NUM), "idle_watts": _nullable(NUM),
             "mean_watts": _nullable(NUM), "joules_per_image": _nullable(JOULES)}
_ENERGY_V2 = _object({**ENERGY_V1, "host_timed_on": _nullable(STR)})


def _energy_v2(value, path):
    """Version 2: a model has no measurement precision (no ci95), and only modeled energy can
    be host-timed (time measured on a machine that is not the profile's device)."""
    _ENERGY_V2(value, path)
    joules = value["joules_per_image"]
    if value["kind"] == "modeled" and joules is not None and joules["ci95"] is not None:
        raise _Invalid(_join(path, "joules_per_image.ci95"),
                       "expected null for modeled energy (a model has no measurement "
                       "precision; the timing spread is in latency_ms), got "
                       f"{_show(joules['ci95'])}")
    if value["kind"] != "modeled" and value["host_timed_on"] is not None:
        raise _Invalid(_join(path, "host_timed_on"), "expected null unless kind is 'modeled', "
                                                     f"got {_show(value['host_timed_on'])}")


ENERGY = {1: _object(ENERGY_V1), 2: _energy_v2}
LINK = _object({"name": STR, "rate_bps": NUM, "tx_watts": _nullable(NUM),
                "frame_payload_bytes": _nullable(INT), "frame_overhead_bytes": INT,
                "per_frame_ms": NUM, "source": STR,
                "delay_ms": _object({k: NUM for k in ("mean", "p50", "p99")}),
                "radio_joules_per_image": _nullable(NUM)})
SERVER_MS = _object({"source": _one_of("measured", "given"), "ms": NUM, "from": STR})
END_TO_END = _object({"device": NUM, "link": NUM, "server": _nullable(NUM), "total": NUM})
BASELINE = _object({"name": STR, "bytes_mean": NUM, "encode_ms_p50": NUM,
                    "link_ms": _nullable(NUM)})
# What ran the head: host_check true = another runtime than the target's (docs/results.md)
EXECUTED = _object({"runtime": STR, "precision": STR, "host_check": BOOL, "text": STR})
SESSION = _object({"threads": _nullable(INT), "optimization": _one_of("basic", "extended", "all"),
                   "xnnpack": BOOL, "source": STR})  # what ran the head (sc2deploy tune)

# profile --per-op: each node of the head as the runtime's profiler timed it (docs/results.md)
PER_OP_NODE = _object({"name": STR, "op_type": STR, "graph_node": _nullable(STR), "order": INT,
                       "p50_ms": NUM, "mean_ms": NUM, "share_pct": NUM})
_PER_OP_PROFILE = _object({"available": BOOL, "profiler": STR, "runs": INT, "warmup": INT,
                           "head_p50_ms": NUM, "profiled_head_p50_ms": _nullable(NUM),
                           "unprofiled_head_p50_ms": _nullable(NUM),
                           "ratio_unprofiled": _nullable(NUM),
                           "nodes_sum_ms": _object({"p50": NUM, "mean": NUM}),
                           "model_run_p50_ms": NUM, "ratio": _nullable(NUM),
                           "ratio_profiled": _nullable(NUM),
                           "graph_nodes": INT, "nodes": _list(PER_OP_NODE)},
                          {"trace": _nullable(STR), "trace_events": _list(_object({}))})
_PER_OP_NONE = _object({"available": BOOL, "reason": STR})


def PER_OP(value, path):  # noqa: N802 (a check, like the other constants)
    """A per-op profile, or why there is none (``available: false`` and a ``reason``)."""
    _object({"available": BOOL})(value, path)
    (_PER_OP_PROFILE if value["available"] else _PER_OP_NONE)(value, path)


_SAMPLES = _object({"cap": INT, "selection": _one_of(*SAMPLE_SELECTIONS),
                    "latency_ms": _object({}, extra=_list(NUM))})


def SAMPLES(value, path):  # noqa: N802 (a check, like the other constants)
    """Raw per-image times: at most ``cap`` per stage, only stages the document has in
    ``latency_ms`` (checked in :func:`_with_samples`)."""
    _SAMPLES(value, path)
    if not 1 <= value["cap"] <= SAMPLE_CAP:
        raise _Invalid(_join(path, "cap"), f"expected an integer from 1 to {SAMPLE_CAP}, "
                                           f"got {_show(value['cap'])}")
    for stage, times in value["latency_ms"].items():
        if len(times) > value["cap"]:
            raise _Invalid(_join(path, f"latency_ms.{stage}"),
                           f"expected at most cap = {value['cap']} samples, got {len(times)}")


def _with_samples(check: Check) -> Check:
    """``check``, then: every sampled stage is a ``latency_ms`` stage, with min(n, cap)
    samples."""
    def checked(doc, path):
        check(doc, path)
        for stage, times in (doc.get("samples") or {}).get("latency_ms", {}).items():
            where = _join(path, f"samples.latency_ms.{stage}")
            if stage not in doc["latency_ms"]:
                raise _Invalid(where, f"expected a stage of latency_ms "
                                      f"({', '.join(doc['latency_ms'])}), got {stage!r}")
            expected = min(doc["latency_ms"][stage]["n"], doc["samples"]["cap"])
            if len(times) != expected:
                raise _Invalid(where, f"expected min(latency_ms.{stage}.n, cap) = {expected:g} "
                                      f"samples, got {len(times)}")
    return checked


CI95 = _list(NUM, 2)
PROPORTION = {"pct": NUM, "ci95": CI95}  # percent, 95 % Wilson interval in percent
# evaluate's bytes per image: BYTES without p99
BYTE_STATS = _object({k: NUM for k in ("mean", "p50", "min", "max")})
# evaluate's median times per image on the machine that evaluated: device (the head and the
# range coder; a baseline's image encoder) and server (decoding and the tail or the teacher)
DEVICE_SERVER_MS = _object({"device": NUM, "server": NUM})
EVALUATED = _object({"target": STR, "precision": STR, "runtime": STR, "images": INT,
                     "top1": _object({"correct": INT, **PROPORTION}),
                     "top5": _object({"correct": INT, **PROPORTION}),
                     "bytes": BYTE_STATS,
                     "top1_agreement": _object({"same": INT, **PROPORTION})},
                    {"ms_p50": DEVICE_SERVER_MS, "executed": EXECUTED})
DATASET = _object({"images_dir": STR, "labels": _one_of("folders", "file"), "images": INT,
                   "classes": INT, "labels_file": _nullable(STR),
                   "class_names": _nullable(_list(STR))})
TEACHER = _object({"file": STR, "sha256": STR, "images": INT,
                   "top1": _object({"correct": INT, **PROPORTION}),
                   "top5": _object({"correct": INT, **PROPORTION})},
                  {"ms_p50": _object({"server": NUM})})
CODEC_BASELINE = _object({"codec": _one_of("jpeg", "webp"), "quality": INT, "model": STR,
                          "images": INT, "bytes": BYTE_STATS,
                          "top1": _object({"correct": INT, **PROPORTION}),
                          "top5": _object({"correct": INT, **PROPORTION})},
                         {"ms_p50": DEVICE_SERVER_MS})
# "uint8": BQ bundles' raw containers (scale, zero point, symbols), no range coder.
EVALUATION = _object({"complete": BOOL, "label": STR, "created_utc": STR, "bundle": BUNDLE,
                      "coder": _one_of("c", "constriction", "uint8"), "top_k": INT,
                      "dataset": DATASET, "reference": STR, "targets": _list(EVALUATED)},
                     {"teacher": TEACHER, "baselines": _list(CODEC_BASELINE),
                      "preprocess": _one_of("exact", "fast")})


CAMERA = _object({"source": STR, "kind": _one_of("v4l2", "command", "stdin"), "format": STR,
                  "frames": _object({k: INT for k in ("captured", "skipped", "taken")}),
                  "cut_frames": INT, "undecodable": INT, "ended": _nullable(STR),
                  "frame_age_ms": STATS}, {"card": STR, "width": INT, "height": INT})

# stream --ladder and replay: the adaptive policy's options and choices (docs/results.md)
ADAPTIVE_OPTIONS = {"mode": _one_of("deadline", "energy"), "deadline_ms": NUM,
                    "min_top1": _nullable(NUM), "hysteresis": NUM, "prior_bps": NUM,
                    "estimator": STR, "overhead_bytes": NUM}
CHOICE = _object({"point": STR, "fits": BOOL, "reason": STR, "estimate_bps": NUM,
                  "predicted_bytes": NUM, "predicted_e2e_ms": NUM},
                 {"predicted_j": NUM, "measured_e2e_ms": NUM, "transfer_ms": NUM, "met": BOOL,
                  "estimate_after_bps": NUM, "waited_ms": NUM})
STREAM_ADAPTIVE = _object({**ADAPTIVE_OPTIONS, "points": _list(_object({
    "name": STR, "bundle": STR, "path": STR, "top1": NUM, "reference_bytes": NUM,
    "encode_ms": NUM, "server_ms": NUM})), "summary": _object({
        "images": INT, "met": INT, "hit_rate": _nullable(NUM), "mean_top1": _nullable(NUM),
        "switches": INT, "images_per_point": _object({}, extra=INT)})})

STREAM = _object({"complete": BOOL, "label": STR, "created_utc": STR, "bundle": BUNDLE,
                  "target": STR, "coder": _one_of("c", "constriction"), "server": STR,
                  **{k: INT for k in ("images", "answered", "refused", "duplicates", "retries",
                                      "replayed")},
                  "latency_ms": _object({s: STATS for s in STREAM_STAGES}, extra=STATS),
                  "bytes": BYTES, "predictions": _list(_object({
                      "image": STR, "request_id": STR, "bytes": INT, "status": _nullable(INT),
                      "round_trip_ms": _nullable(NUM), "server_ms": _nullable(NUM),
                      "attempts": INT, "outputs": _nullable(_list(_object({"task": STR})))},
                      {"frame": INT, "frame_age_ms": NUM, "captured_utc": STR,
                       "resent_bytes": INT,
                       "served_by": _object({"node": STR, "replica": STR}),
                       "adaptive": CHOICE}))},
                 {"conditions": CONDITIONS, "samples": _nullable(SAMPLES),
                  "link": _nullable(LINK), "camera": CAMERA, "interrupted": BOOL,
                  "executed": EXECUTED, "adaptive": STREAM_ADAPTIVE})


def _names(points: list) -> List[str]:
    return [p["name"] for p in points]


def _known_point(name: str, known: List[str], path: str) -> None:
    if name not in known:
        raise _Invalid(path, f"expected one of the ladder's points ({', '.join(known)}), "
                             f"got {_show(name)}")


def _met(met: bool, e2e_ms: float, deadline_ms: float, path: str) -> None:
    if met != (e2e_ms <= deadline_ms):
        raise _Invalid(path, f"expected {e2e_ms <= deadline_ms} (end to end {e2e_ms:g} ms, "
                             f"deadline {deadline_ms:g} ms), got {_show(met)}")


def _stream(doc, path):
    """STREAM, then the adaptive choices: only with the document's ``adaptive``, of its
    points, ``met`` and ``measured_e2e_ms`` together and consistent with the deadline."""
    STREAM(doc, path)
    adaptive = doc.get("adaptive")
    for i, p in enumerate(doc["predictions"]):
        choice, where = p.get("adaptive"), _join(path, f"predictions[{i}].adaptive")
        if choice is None:
            continue
        if adaptive is None:
            raise _Invalid(where, "a choice of an adaptive stream, but the document has no "
                                  "'adaptive' record (its options and points)")
        _known_point(choice["point"], _names(adaptive["points"]), _join(where, "point"))
        if ("met" in choice) != ("measured_e2e_ms" in choice):
            raise _Invalid(where, "expected 'met' and 'measured_e2e_ms' together (an answered "
                                  "image has both, an unanswered one neither)")
        if "met" in choice:
            _met(choice["met"], choice["measured_e2e_ms"], adaptive["deadline_ms"],
                 _join(where, "met"))


REPLAY_SUMMARY = _object({"images": INT, "met": INT, "hit_rate": NUM, "mean_top1": NUM,
                          "switches": INT})
_REPLAY = _object({
    "complete": BOOL, "label": STR, "created_utc": STR, "target": _nullable(STR),
    "trace": _object({"source": _nullable(STR), "segments": _list(_list(NUM, 2)),
                      "duration_s": NUM}),
    "adaptive": _object({**ADAPTIVE_OPTIONS, "latency_ms": NUM, "period_s": _nullable(NUM),
                         "tx_watts": _nullable(NUM), "device_profile": _nullable(STR),
                         "link": _nullable(STR), "points": _list(_object({
                             "name": STR, "bundle": _nullable(STR), "path": _nullable(STR),
                             "top1": NUM, "bytes": NUM, "encode_ms": NUM, "server_ms": NUM,
                             "energy_j": _nullable(NUM)})),
                         "summary": REPLAY_SUMMARY}),
    "images": _list(_object({"index": INT, "start_s": NUM, "point": STR, "fits": BOOL,
                             "estimate_bps": NUM, "true_bps": NUM, "predicted_e2e_ms": NUM,
                             "e2e_ms": NUM, "met": BOOL})),
    "fixed": _list(_object({"point": STR, "summary": REPLAY_SUMMARY})),
    "switching": _list(_object({"t_change_s": NUM, "from_bps": NUM, "to_bps": NUM,
                                "fitting_point": STR, "delay_s": _nullable(NUM),
                                "delay_images": _nullable(INT)}))})


def REPLAY(doc, path):  # noqa: N802 (a check, like the other constants)
    """``sc2deploy replay``: the trace starts at 0 s with increasing times and positive
    rates; every point named is the ladder's; the summary counts the images listed; ``met``
    agrees with the deadline."""
    _REPLAY(doc, path)
    segments, where = doc["trace"]["segments"], _join(path, "trace.segments")
    if not segments or segments[0][0] != 0:
        raise _Invalid(where, "expected segments [t_start_s, bits_per_s], the first at 0 s")
    for k, (t, bps) in enumerate(segments):
        if bps <= 0 or (k and t <= segments[k - 1][0]):
            raise _Invalid(f"{where}[{k}]", "expected increasing start times and rates > 0, "
                                             f"got {_show([t, bps])}")
    adaptive = doc["adaptive"]
    known, deadline = _names(adaptive["points"]), adaptive["deadline_ms"]
    for i, image in enumerate(doc["images"]):
        _known_point(image["point"], known, _join(path, f"images[{i}].point"))
        _met(image["met"], image["e2e_ms"], deadline, _join(path, f"images[{i}].met"))
    for i, run in enumerate(doc["fixed"]):
        _known_point(run["point"], known, _join(path, f"fixed[{i}].point"))
    for i, switch in enumerate(doc["switching"]):
        _known_point(switch["fitting_point"], known,
                     _join(path, f"switching[{i}].fitting_point"))
    summary, images = adaptive["summary"], doc["images"]
    if (summary["images"], summary["met"]) != (len(images), sum(i["met"] for i in images)):
        raise _Invalid(_join(path, "adaptive.summary"),
                       f"expected images {len(images)} and met {sum(i['met'] for i in images)} "
                       f"(the images listed), got {summary['images']} and {summary['met']}")


def _top_level(kind: str, version: int) -> Check:
    if kind == "evaluation":
        return EVALUATION
    if kind == "stream":
        return _with_samples(_stream)
    if kind == "replay":
        return REPLAY
    stages = DEVICE_STAGES if kind == "device" else SERVER_STAGES
    if kind == "server" and version >= 3:
        stages = tuple(s for s in stages if s != "decoder")
    required = {"complete": BOOL, "label": STR, "created_utc": STR, "bundle": BUNDLE,
                "coder": _one_of("c", "constriction"), "runs": RUNS,
                "latency_ms": _object({s: STATS for s in stages}, extra=STATS)}
    optional = {"threads": _nullable(INT), "session": SESSION, "throughput_ips": NUM,
                "memory": MEMORY,
                "preprocess": _one_of("exact", "fast"),  # absent: exact (before --preprocess)
                "cpu_percent": _nullable(NUM), "conditions": CONDITIONS,
                "link": _nullable(LINK), "server_ms": _nullable(SERVER_MS),
                "end_to_end_ms": _nullable(END_TO_END), "baselines": _list(BASELINE),
                "executed": EXECUTED, "per_op": PER_OP}
    if version >= 3:
        optional["samples"] = _nullable(SAMPLES)
    energy = ENERGY[min(version, max(ENERGY))]  # ENERGY changed last in version 2
    device = {"target": STR, "precision": STR, "runtime": STR, "bytes": BYTES, "energy": energy}
    if kind == "device":
        required.update(device)
    else:  # a server result may still carry them
        optional.update(device, energy=_nullable(energy))
    top = _object(required, optional)
    return _with_samples(top) if version >= 3 else top


def validate(doc, source: str = "<results>") -> dict:
    """Check ``doc`` against the results schema; return it, or raise ResultsError."""
    if not isinstance(doc, dict):
        raise ResultsError(f"{source}: expected a JSON object (a results document), "
                           f"got {type(doc).__name__}")
    if "schema" not in doc:
        raise ResultsError(f"{source}: missing required key 'schema' (expected {SCHEMA!r}): "
                           "not an sc2deploy results file?")
    if doc["schema"] != SCHEMA:
        raise ResultsError(f"{source}: schema: expected {SCHEMA!r}, got {_show(doc['schema'])}: "
                           "not an sc2deploy results file")
    version = doc.get("schema_version")
    if "schema_version" not in doc:
        raise ResultsError(f"{source}: missing required key 'schema_version'")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultsError(f"{source}: schema_version: expected an integer >= 1, "
                           f"got {_show(version)}")
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema_version {version} is newer than this sc2deploy "
                           f"reads (up to {SCHEMA_VERSION}): upgrade sc2deploy "
                           "(pip install -U sc2deploy) to read it")
    try:
        if "kind" not in doc:
            raise _Invalid("", "missing required key 'kind'")
        _one_of(*KINDS)(doc["kind"], "kind")
        _top_level(doc["kind"], version)(doc, "")
    except _Invalid as exc:
        where = f"{exc.path}: " if exc.path else ""
        raise ResultsError(f"{source}: {where}{exc.message}") from None
    return doc


def load_results(paths: Iterable[Union[str, Path]]) -> List[dict]:
    """Read and validate results files (JSON objects), in the order given."""
    docs = []
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ResultsError(f"{path}: cannot read the results file: {reason}") from None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ResultsError(f"{path}: not valid JSON: {exc}") from None
        docs.append(validate(doc, str(path)))
    if not docs:
        raise ResultsError("no results files given: expected one or more results.json paths")
    return docs


def write_results(doc: dict, path: Union[str, Path]) -> Path:
    """Validate ``doc`` and write it as JSON atomically (temp file + rename in the same folder)."""
    path = Path(path)
    validate(doc, str(path))
    try:
        text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: the results cannot be written as JSON: {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text)
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write the results file ({exc.strerror or exc}): "
                           f"{atomic.fix_for(exc)}") from None
    return path


def partial_path(path: Union[str, Path]) -> Path:
    """Where incomplete results go when ``path`` already holds a file: beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def trace_path(path: Union[str, Path]) -> Path:
    """Where the per-op profile's raw trace (Chrome trace JSON) of the results ``path`` goes."""
    path = Path(path)
    return path.with_name(f"{path.stem}.ort-trace.json")


def write_measured(doc: dict, path: Union[str, Path]) -> Path:
    """Write a measurement's results; incomplete ones never replace an existing file (an
    earlier complete run stays byte-identical): they go to :func:`partial_path`.

    A per-op profile's raw trace (``per_op.trace_events``) goes beside them, to
    :func:`trace_path`, written first; the results name it in ``per_op.trace``."""
    path = Path(path)
    if not doc.get("complete", True) and path.exists():
        path = partial_path(path)
    per_op = doc.get("per_op")
    if isinstance(per_op, dict) and "trace_events" in per_op:
        trace = trace_path(path)
        write_trace(per_op["trace_events"], trace)
        doc = {**doc, "per_op": {**{k: v for k, v in per_op.items() if k != "trace_events"},
                                 "trace": trace.name}}
    return write_results(doc, path)


def write_trace(events: list, path: Union[str, Path]) -> Path:
    """Write a profiler's trace events as Chrome trace JSON (chrome://tracing, Perfetto)."""
    path = Path(path)
    try:
        text = json.dumps(events, allow_nan=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text + "\n")
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: the trace cannot be written as JSON: {exc}") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot write the trace ({exc.strerror or exc}): "
                           f"{atomic.fix_for(exc)}") from None
    return path


def utc_now() -> str:
    """The ``created_utc`` value: now, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(kind: str, complete: bool, label: str, created_utc: str, bundle) -> dict:
    """The keys every results document starts with (device and server documents alike)."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": kind,
            "complete": complete, "label": label, "created_utc": created_utc,
            "bundle": bundle_entry(bundle)}


def bundle_entry(bundle) -> dict:
    """The ``bundle`` entry of a results document for an open Bundle."""
    model = bundle.model
    return {"path": str(bundle.path), "model": model["name"],
            "manifest_sha256": bundle.manifest.get("manifest_sha256"),
            "input_shape": list(model["input"]["shape"]),
            "latent_shape": list(model["latent"]["shape"])}
