"""Shared pieces of the profiling report: names, formats, energy labels, end-to-end bars."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.measure.energy_models import PROFILES, host_name


PARTIAL = "partial (interrupted)"
NO_ENERGY = "no energy data"
# Figure key: file stem (each written as .png, .pdf and .svg).
FIGURES = {"end_to_end": "latency_end_to_end", "cdf": "latency_cdf",
           "stages": "latency_stages", "energy": "energy_per_image",
           "pareto": "bytes_vs_latency", "rate_accuracy": "rate_accuracy",
           "rate_agreement": "rate_agreement", "worth": "worth_deploying",
           "adaptive": "adaptive_timeline"}
PLOTS = {key: f"{stem}.png" for key, stem in FIGURES.items()}
STAGE_ORDER = ("load", "preprocess", "head", "code", "decode", "decoder", "encode",
               "transfer", "server", "reply")
COLORS = {"device": "#4C72B0", "link": "#DD8452", "server": "#55A868", "reply": "#8172B3",
          "radio": "#DD8452"}
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD")
DASH = "—"


# ---------------------------------------------------------------- names and numbers

def names(docs: Sequence[dict]) -> List[str]:
    """One unique display name per result: its label (``#2``… on repeats), flagged when a host
    check ran it (:func:`host_check_of`) and when incomplete (interrupted, or a stream with
    images unanswered)."""
    seen: Dict[str, int] = {}
    out = []
    for doc in docs:
        label = doc["label"]
        seen[label] = seen.get(label, 0) + 1
        name = label if seen[label] == 1 else f"{label} #{seen[label]}"
        name += f" [{host_check_of(doc)}]" if host_check_of(doc) else ""
        out.append(name if doc["complete"] else f"{name} [{incomplete_tag(doc)}]")
    return out


def incomplete_tag(doc: dict) -> str:
    """Why a result is incomplete: interrupted, or (a stream) images left unanswered."""
    if doc["kind"] != "stream" or doc.get("interrupted"):
        return PARTIAL
    return f"{doc['answered']}/{doc['images']} answered"


def reached_nothing(doc: dict) -> bool:
    """A stream none of whose images was answered: it measured no end-to-end time."""
    return doc["kind"] == "stream" and doc["answered"] == 0


HOST_CHECK = "(host check)"  # in the runtime of a host check's results written before executed


def executed_of(doc: dict) -> Optional[dict]:
    """What ran a device result's head (``executed``); older files: read from ``runtime`` and
    ``precision`` (a host check's runtime says "(host check)"; what it ran is not known)."""
    if doc.get("executed"):
        return doc["executed"]
    if doc["kind"] != "device":
        return None
    runtime, check = doc["runtime"].split(" ")[0], HOST_CHECK in doc["runtime"]
    precision = None if check else doc["precision"]
    text = (f"{runtime} (host check; not the target's runtime)" if check
            else f"{runtime} {precision}")
    return {"runtime": runtime, "precision": precision, "host_check": check, "text": text}


def host_check_of(doc: dict) -> Optional[str]:
    """'host check: onnxruntime fp32' for a result whose head did not run on its target's own
    runtime, else None."""
    ran = executed_of(doc)
    if not ran or not ran["host_check"]:
        return None
    return "host check: " + " ".join(filter(None, (ran["runtime"], ran["precision"])))


def ran_text(doc: dict) -> Optional[str]:
    """What ran a device result's head, in words (None for other kinds)."""
    ran = executed_of(doc)
    return ran["text"] if ran else None


def fmt_num(value: Optional[float], unit: str = "") -> str:
    """A number with about three significant digits (``—`` for None)."""
    if value is None:
        return DASH
    v = float(value)
    if v == 0:
        text = "0"
    elif abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    elif abs(v) >= 1:
        text = f"{v:.2f}"
    else:
        text = f"{v:.3g}"
    return f"{text} {unit}".rstrip()


def fmt_int(value: Optional[float]) -> str:
    return DASH if value is None else f"{float(value):,.0f}"


def cell_text(value) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def dig(doc: dict, *keys, default=None):
    """doc[k1][k2]... or ``default`` when a level is missing or null."""
    for key in keys:
        if not isinstance(doc, dict) or doc.get(key) is None:
            return default
        doc = doc[key]
    return doc


def has_stage(doc: dict, stage: str) -> bool:
    """Whether the configuration has ``stage``: schema <= 2 server documents time a
    "decoder" stage (~0 ms) even when the bundle has no decoder; it is not shown."""
    if stage == "decoder" and dig(doc, "decoder", "present") is False:
        return False
    return stage in doc["latency_ms"]


def stage_names(doc: dict) -> List[str]:
    stages = [s for s in STAGE_ORDER if has_stage(doc, s)]
    stages += sorted(s for s in doc["latency_ms"] if s not in STAGE_ORDER and s != "total")
    return stages + ["total"]


def samples_of(doc: dict, stage: str) -> Optional[np.ndarray]:
    """The raw per-image times (ms) of ``stage``, or None (schema <= 2, or not sampled)."""
    times = dig(doc, "samples", "latency_ms", stage)
    return np.asarray(times, dtype=np.float64) if times else None


def spread(doc: dict, stage: str = "total") -> Tuple[float, float, float]:
    """(low, p50, high): the interquartile range of the samples, else p50 ± 0.53 (p90 − p50),
    what the interquartile range is for a normal distribution (0.674 / 1.282 σ)."""
    s = doc["latency_ms"][stage]
    times = samples_of(doc, stage)
    if times is not None:
        q1, q3 = np.percentile(times, [25, 75])
        return float(q1), s["p50"], float(q3)
    half = 0.526 * (s["p90"] - s["p50"])
    return s["p50"] - half, s["p50"], s["p50"] + half


def radio_joules(doc: dict) -> Optional[float]:
    """Modeled radio energy per image (the link model: TX power × airtime), or None."""
    return dig(doc, "link", "radio_joules_per_image")


def same_config(a: dict, b: dict) -> bool:
    """Two documents of one bundle and target (e.g. a stream and a device result)."""
    return (a["bundle"]["manifest_sha256"] == b["bundle"]["manifest_sha256"]
            and a.get("target") == b.get("target"))


def all_stages(docs: Sequence[dict]) -> List[str]:
    stages: List[str] = []
    for doc in docs:
        stages += [s for s in stage_names(doc) if s not in stages and s != "total"]
    known = [s for s in STAGE_ORDER if s in stages]
    return known + [s for s in stages if s not in known] + ["total"]


def device_key(doc: dict) -> str:
    cond = doc.get("conditions") or {}
    return str(cond.get("device_model") or cond.get("hostname") or cond.get("cpu") or "device")


def energy_kind_of(doc: dict) -> str:
    """'measured', 'modeled' or 'none' (no energy block or no J/image)."""
    energy = doc.get("energy")
    if not energy or energy.get("joules_per_image") is None:
        return "none"
    return energy["kind"]


def host_timed_on(doc: dict) -> Optional[str]:
    """The CPU whose time modeled energy multiplied when that machine is not the profile's
    device (``--model-host-time``), else None. Schema 1 files predate the field: there it is
    inferred from the recorded device model and the profile's device."""
    energy = doc.get("energy") or {}
    if energy.get("kind") != "modeled":
        return None
    if "host_timed_on" in energy:
        return energy["host_timed_on"]
    source = energy.get("source") or ""
    profile = PROFILES.get(source[len("model:"):]) if source.startswith("model:") else None
    cond = doc.get("conditions") or {}
    if profile is None or profile.matches(cond.get("device_model")):
        return None
    return host_name(cond.get("cpu"), cond.get("machine"))


def modeled_tag(doc: dict) -> str:
    """'modeled', or 'modeled, host-timed on CPU' when the time is not the device's."""
    host = host_timed_on(doc)
    return "modeled" if host is None else f"modeled, host-timed on {host}"


def energy_label_of(doc: dict) -> str:
    """'measured (rapl)', 'modeled (rpi4)', 'modeled (rpi4, host-timed on CPU)' or
    'no energy data'."""
    kind = energy_kind_of(doc)
    if kind == "none":
        return NO_ENERGY
    source = doc["energy"].get("source") or "unknown source"
    if kind == "modeled" and source.startswith("model:"):
        source = source[len("model:"):]
    host = host_timed_on(doc) if kind == "modeled" else None
    where = "" if host is None else f", host-timed on {host}"
    return f"{kind} ({source}{where})"


def energy_ci95(doc: dict) -> Optional[List[float]]:
    """The 95 % CI of measured J/image; None for modeled energy, whose spread is only that of
    the time (schema 1 files stored one), and where there is none."""
    if energy_kind_of(doc) != "measured":
        return None
    return dig(doc, "energy", "joules_per_image", "ci95")


def server_time_ms(doc: dict) -> Optional[float]:
    e2e = doc.get("end_to_end_ms")
    if e2e and e2e.get("server") is not None:
        return e2e["server"]
    return dig(doc, "server_ms", "ms")


@dataclass
class Bar:
    """One stacked end-to-end bar: a result or an input-compression baseline."""

    short: str
    device: float
    link: float
    server: float
    link_name: Optional[str]
    server_source: Optional[str]  # "measured", "given", "assumed = result's", None: 0
    baseline: bool = False
    partial: bool = False
    context: str = ""  # baselines: link and device
    reply: Optional[float] = None  # measured streams: the server's answer back
    measured: bool = False  # a stream: every part measured (else the link is modeled)

    @property
    def has_server(self) -> bool:
        return self.server_source is not None

    @property
    def name(self) -> str:
        return f"{self.short} ({self.context})" if self.context else self.short

    @property
    def notes(self) -> List[str]:
        notes = [self.context] if self.context else []
        if self.measured:
            return notes + ["measured end to end"]
        if not self.link_name and not self.baseline:
            notes.append("no link")
        if not self.has_server:
            notes.append("no server time: 0 ms")
        return notes


def _stream_bar(doc: dict, name: str) -> Bar:
    """A measured split-pipeline run: the p50 of each stage it has."""
    lat = doc["latency_ms"]
    part = {s: dig(lat, s, "p50") for s in ("encode", "transfer", "server", "reply")}
    return Bar(name, part["encode"] or 0.0, part["transfer"] or 0.0, part["server"] or 0.0,
               dig(doc, "link", "name") or "measured link",
               "measured" if part["server"] is not None else None, partial=not doc["complete"],
               reply=part["reply"], measured=True)


def end_to_end_bars(docs: Sequence[dict]) -> List[Bar]:
    """Device results, each followed by the measured streams of its bundle and target, the
    other streams, then each distinct baseline (name, link, device) once."""
    bars, seen = [], set()
    all_names = names(docs)
    streams = [(d, n) for d, n in zip(docs, all_names)
               if d["kind"] == "stream" and not reached_nothing(d)]
    for doc, name in zip(docs, all_names):
        if doc["kind"] != "device":
            continue
        e2e = doc.get("end_to_end_ms") or {}
        server = server_time_ms(doc)
        link_name = dig(doc, "link", "name")
        source = dig(doc, "server_ms", "source", default="given") if server is not None else None
        bars.append(Bar(name, e2e.get("device", doc["latency_ms"]["total"]["p50"]),
                         e2e.get("link", 0.0) if link_name else 0.0, server or 0.0, link_name,
                         source, partial=not doc["complete"]))
        mine = [(s, n) for s, n in streams if same_config(s, doc)]
        bars += [_stream_bar(s, n) for s, n in mine]
        streams = [(s, n) for s, n in streams if (s, n) not in mine]
    bars += [_stream_bar(s, n) for s, n in streams]
    devices = {device_key(d) for d in docs if d.get("baselines")}
    for doc in docs:
        for base in doc.get("baselines") or []:
            link_name = dig(doc, "link", "name") if base["link_ms"] is not None else None
            key = (base["name"], link_name, device_key(doc))
            if key in seen:
                continue
            seen.add(key)
            where = f", {device_key(doc)}" if len(devices) > 1 else ""
            # The student's server time (decoder + tail) is not the teacher's on a decoded
            # image: a baseline has no server time of its own, and its bar says so.
            bars.append(Bar(f"baseline {base['name']}", base["encode_ms_p50"],
                             base["link_ms"] or 0.0, 0.0, link_name, None,
                             baseline=True, context=f"{link_name or 'no link'}{where}"))
    return bars


def baseline_rows(docs: Sequence[dict]) -> List[Tuple[dict, dict, str]]:
    """(baseline, its result, result name), one per distinct (name, device)."""
    out, seen = [], set()
    for doc, name in zip(docs, names(docs)):
        for base in doc.get("baselines") or []:
            key = (base["name"], device_key(doc))
            if key not in seen:
                seen.add(key)
                out.append((base, doc, name))
    return out


# ---------------------------------------------------------------- plots
