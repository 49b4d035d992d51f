"""Valid results documents (docs/results.md, schema version 3, or 2, 1) built in the tests."""

from typing import Optional

import numpy as np

from sc2deploy.results.schema import SCHEMA, SCHEMA_VERSION

PRECISIONS = {"onnx": "fp32", "onnx-fp16": "fp16", "onnx-int8": "int8", "tflite": "fp32",
              "tflite-int8": "int8", "tensorrt-fp16-engine": "fp16"}
PI4_MODEL = "Raspberry Pi 4 Model B Rev 1.5"


def stats(p50: float, n: int = 50) -> dict:
    """Plausible summary statistics around ``p50`` (ms)."""
    return {"n": n, "mean": p50 * 1.04, "std": p50 * 0.08, "min": p50 * 0.9, "p50": p50,
            "p90": p50 * 1.12, "p95": p50 * 1.2, "p99": p50 * 1.45, "max": p50 * 1.8}


def make_result(label: str = "demo/onnx", target: str = "onnx", energy: str = "measured",
                complete: bool = True, kind: str = "device", head_ms: float = 40.0,
                bytes_mean: float = 3000.0, link: bool = True, server_ms: Optional[float] = 12.0,
                baselines: bool = True, device_model: Optional[str] = PI4_MODEL,
                energy_source: Optional[str] = None, host_timed_on: Optional[str] = None,
                cpu: Optional[str] = "Cortex-A72", version: int = SCHEMA_VERSION,
                samples: bool = True, decoder: bool = True) -> dict:
    """A complete valid results document; ``energy`` is "measured", "modeled" or "none";
    ``host_timed_on`` (modeled): the CPU whose time was modeled; ``version`` 1: the old
    layout (no ``host_timed_on``; modeled energy with a ci95, as version 1 wrote it);
    ``samples`` (version 3): raw per-image times around each stage's p50; ``decoder``
    (server): whether the bundle has a decoder (version 3 has no decoder stage without)."""
    n = 50 if complete else 17
    if kind == "server":
        latency = {"decode": stats(3.0, n), "decoder": stats(8.0, n), "total": stats(11.2, n)}
        if not decoder and version >= 3:
            del latency["decoder"]
            latency["total"] = stats(3.0, n)
    else:
        parts = {"load": 4.0, "preprocess": 6.0, "head": head_ms, "code": 2.5}
        latency = {s: stats(ms, n) for s, ms in parts.items()}
        latency["total"] = stats(sum(parts.values()), n)
    total_p50 = latency["total"]["p50"]
    doc = {
        "schema": SCHEMA, "schema_version": version, "kind": kind, "complete": complete,
        "label": label, "created_utc": "2026-11-22T05:40:00Z",
        "bundle": {"path": "build/demo-bundle", "model": "demo", "manifest_sha256": "ab" * 32,
                   "input_shape": [1, 3, 224, 224], "latent_shape": [24, 55, 55]},
        "coder": "c", "threads": 2,
        "runs": {"warmup": 5, "measured": n, "image_files": 32,
                 "stop": "runs" if complete else "interrupted"},
        "latency_ms": latency,
        "throughput_ips": 1000.0 / latency["total"]["mean"],
        "memory": {"peak_rss_mb": 180.5, "rss_start_mb": 150.0, "rss_after_warmup_mb": 170.0,
                   "rss_end_mb": 171.0, "rss_growth_mb": 1.0},
        "cpu_percent": 185.0,
        "conditions": {"device_model": device_model, "cpu": cpu, "machine": "aarch64",
                       "cores": 4, "governor": "performance", "nvpmodel": None,
                       "jetson_clocks": None, "throttled": "0x0",
                       "temperatures_c": {"before": {"cpu-thermal": 48.2},
                                          "after": {"cpu-thermal": 61.0}},
                       "python": "3.11.2", "packages": {"sc2deploy": "0.4.0", "numpy": "2.4.6"},
                       "hostname": "pi4", "kernel": "6.6.51"},
        "link": None, "server_ms": None, "end_to_end_ms": None, "baselines": [],
    }
    if samples and version >= 3:
        doc["samples"] = sample_times(latency)
    if kind == "server":
        doc["runtime"] = "torch 2.13.0"
        doc["decoder"] = ({"present": True, "file": "decoder.onnx"} if decoder else
                          {"present": False, "note": "head-only checkpoint"})
        return doc
    doc.update(target=target, precision=PRECISIONS.get(target, "fp32"),
               runtime="onnxruntime 1.31.1",
               bytes={"mean": bytes_mean, "p50": bytes_mean * 0.98, "p99": bytes_mean * 1.3,
                      "min": bytes_mean * 0.7, "max": bytes_mean * 1.4},
               energy=_energy(energy, total_p50, energy_source, host_timed_on, version))
    link_ms = bytes_mean * 8 / 37500 * 1e3 * 1.1
    if link:
        doc["link"] = {"name": "lora-sx1276-20dbm", "rate_bps": 37500.0, "tx_watts": 0.396,
                       "frame_payload_bytes": 255, "frame_overhead_bytes": 0,
                       "per_frame_ms": 0.0, "source": "Semtech SX1276 datasheet rev. 7",
                       "delay_ms": {"mean": link_ms, "p50": link_ms * 0.98,
                                    "p99": link_ms * 1.3},
                       "radio_joules_per_image": 0.396 * link_ms / 1e3,
                       "lora": {"sf": 6, "bw_hz": 500000.0}}
    if server_ms is not None:
        doc["server_ms"] = {"source": "given", "ms": server_ms, "from": "given by the user"}
    if link:
        doc["end_to_end_ms"] = {"device": total_p50, "link": link_ms, "server": server_ms,
                                "total": total_p50 + link_ms + (server_ms or 0.0)}
    if baselines:
        doc["baselines"] = [
            {"name": "jpeg-q75", "bytes_mean": 9800.0, "encode_ms_p50": 9.5,
             "link_ms": 9800 * 8 / 37.5 * 1.1 if link else None},
            {"name": "webp-q75", "bytes_mean": 7400.0, "encode_ms_p50": 21.0,
             "link_ms": 7400 * 8 / 37.5 * 1.1 if link else None}]
    return doc


def sample_times(latency: dict, seed: int = 0) -> dict:
    """A ``samples`` entry: n log-normal times per stage around the stage's p50."""
    rng = np.random.default_rng(seed)
    return {"cap": 10_000, "selection": "all", "latency_ms": {
        stage: [round(float(v), 4) for v in s["p50"] * rng.lognormal(0.0, 0.12, s["n"])]
        for stage, s in latency.items()}}


def _energy(kind: str, total_p50: float, source: Optional[str], host: Optional[str],
            version: int) -> dict:
    entry = {"kind": kind, "source": None, "detail": None,
             "unavailable": {"rapl": "no /sys/class/powercap/intel-rapl:*"},
             "sample_rate_hz": None, "idle_watts": None, "mean_watts": None,
             "joules_per_image": None, "host_timed_on": None}
    seconds = total_p50 / 1e3
    if kind == "measured":
        total = 4.1 * seconds
        entry.update(source=source or "ina2xx", detail="ina219 power1_input",
                     sample_rate_hz=98.0, idle_watts=2.3, mean_watts=4.1,
                     joules_per_image={"total": total, "dynamic": (4.1 - 2.3) * seconds,
                                       "ci95": [total * 0.95, total * 1.05], "repeats": 5})
    elif kind == "modeled":
        total = 5.4 * seconds
        entry.update(source=source or "model:rpi4", detail="Raspberry Pi 4 B: idle 2.2 W, "
                     "load 5.4 W (chipwired.com)", idle_watts=2.2, mean_watts=5.4,
                     joules_per_image={"total": total, "dynamic": (5.4 - 2.2) * seconds,
                                       "ci95": None, "repeats": 5}, host_timed_on=host)
        if version == 1:  # version 1 stored the timing spread as if it were a measurement CI
            entry["joules_per_image"]["ci95"] = [total * 0.97, total * 1.03]
    elif kind != "none":
        raise ValueError(f"energy kind {kind!r}: expected measured, modeled or none")
    if version == 1:
        del entry["host_timed_on"]
    return entry


def _proportion(k: int, n: int, key: str = "correct") -> dict:
    """k of n as a report proportion: percent and an approximate 95 % interval."""
    pct = 100.0 * k / n
    half = 196.0 * (k * (n - k) / n) ** 0.5 / n + 0.5
    return {key: k, "pct": pct, "ci95": [max(pct - half, 0.0), min(pct + half, 100.0)]}


def make_evaluation(label: str = "demo/evaluate", sha: str = "ab" * 32, model: str = "demo",
                    targets=(("onnx", 3000.0, 70), ("onnx-int8", 3100.0, 66)),
                    images: int = 100, baselines: bool = True) -> dict:
    """A valid evaluation document: ``targets`` are (target, mean bytes, top-1 correct);
    ``baselines``: JPEG and WebP at qualities 10-90 classified by a teacher."""
    rows = [{"target": t, "precision": PRECISIONS.get(t, "fp32"), "runtime": "onnxruntime",
             "images": images, "top1": _proportion(k, images),
             "top5": _proportion(min(k + 20, images), images),
             "bytes": {"mean": b, "p50": b, "min": b * 0.7, "max": b * 1.4},
             "top1_agreement": _proportion(min(k + 25, images), images, "same")}
            for t, b, k in targets]
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "evaluation",
           "complete": True, "label": label, "created_utc": "2026-11-22T05:40:00Z",
           "bundle": {"path": "build/demo-bundle", "model": model, "manifest_sha256": sha,
                      "input_shape": [1, 3, 224, 224], "latent_shape": [24, 55, 55]},
           "coder": "c", "top_k": 5,
           "dataset": {"images_dir": "images", "labels": "folders", "images": images,
                       "classes": 10, "labels_file": None, "class_names": None},
           "reference": "onnx", "targets": rows}
    if baselines:
        doc["baselines"] = [
            {"codec": codec, "quality": q, "model": "teacher", "images": images,
             "bytes": {"mean": size * q ** 0.8, "p50": size * q ** 0.8,
                       "min": size * q ** 0.8 * 0.7, "max": size * q ** 0.8 * 1.3},
             "top1": _proportion(min(40 + q // 2, images), images),
             "top5": _proportion(min(60 + q // 3, images), images)}
            for codec, size in (("jpeg", 600.0), ("webp", 420.0)) for q in (10, 30, 50, 70, 90)]
        doc["teacher"] = {"file": "teacher.onnx", "sha256": "cd" * 32, "images": images,
                          "top1": _proportion(min(95, images), images),
                          "top5": _proportion(images, images)}
    return doc


# The adaptive stream's ladder (issue 22): (name, top-1 %, reference bytes)
LADDER_POINTS = (("demo-beta0.1", 100.0, 2200.0), ("demo-beta1", 98.0, 580.0),
                 ("demo-beta3", 82.0, 240.0))


def make_adaptive_stream(chosen=("demo-beta0.1",) * 3 + ("demo-beta1",) * 3 + ("demo-beta3",),
                         e2e_ms=(600, 610, 2900, 1800, 1500, 1450, 700),
                         deadline_ms: float = 2500.0) -> dict:
    """A valid stream document of ``stream --ladder``: per image the point ``chosen`` and
    its measured end to end; each transfer = e2e − 20 ms encode − 5 ms server."""
    top1 = {name: pct for name, pct, _ in LADDER_POINTS}
    sizes = {name: int(b) for name, _, b in LADDER_POINTS}
    total = stats(sorted(e2e_ms)[len(e2e_ms) // 2], len(e2e_ms))
    predictions = []
    for i, (name, ms) in enumerate(zip(chosen, e2e_ms)):
        predictions.append({
            "image": f"img{i}.jpg", "request_id": f"r{i}", "bytes": sizes[name], "status": 200,
            "round_trip_ms": ms - 20.0, "server_ms": 5.0, "attempts": 1,
            "outputs": [{"task": "tail", "top_k": [{"class": 1, "probability": 0.9}]}],
            "adaptive": {"point": name, "fits": True, "reason": "test",
                         "estimate_bps": 40000.0 if i < 3 else 3000.0,
                         "predicted_bytes": float(sizes[name]), "predicted_e2e_ms": ms * 0.9,
                         "measured_e2e_ms": float(ms), "transfer_ms": ms - 25.0,
                         "met": ms <= deadline_ms, "estimate_after_bps": 3000.0}})
    met = sum(ms <= deadline_ms for ms in e2e_ms)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "stream", "complete": True,
        "label": "ladder/adaptive", "created_utc": "2026-12-07T05:40:00Z",
        "bundle": {"path": "build/demo-beta0.1", "model": "demo-beta0.1",
                   "manifest_sha256": "ab" * 32, "input_shape": [1, 3, 224, 224],
                   "latent_shape": [12, 55, 55]},
        "target": "onnx", "coder": "c", "server": "http://127.0.0.1:8000",
        "images": len(chosen), "answered": len(chosen), "refused": 0, "duplicates": 0,
        "retries": 0, "replayed": 0,
        "latency_ms": {"encode": stats(20.0, len(chosen)), "transfer": stats(1000.0, len(chosen)),
                       "server": stats(5.0, len(chosen)), "total": total},
        "bytes": {"mean": 1000.0, "p50": 580.0, "p99": 2200.0, "min": 240.0, "max": 2200.0},
        "predictions": predictions, "link": None, "interrupted": False,
        "adaptive": {
            "mode": "deadline", "deadline_ms": deadline_ms, "min_top1": None,
            "hysteresis": 0.1, "prior_bps": 40000.0, "estimator": "test",
            "overhead_bytes": 593,
            "points": [{"name": n, "bundle": "cd" * 32, "path": f"build/{n}", "top1": t,
                        "reference_bytes": b, "encode_ms": 20.0, "server_ms": 5.0}
                       for n, t, b in LADDER_POINTS],
            "summary": {"images": len(chosen), "met": met, "hit_rate": met / len(chosen),
                        "mean_top1": sum(top1[c] for c in chosen) / len(chosen),
                        "switches": sum(a != b for a, b in zip(chosen, chosen[1:])),
                        "images_per_point": {n: chosen.count(n) for n in top1}}}}


# 37.5 -> 5.5 -> 37.5 kbit/s, 30 s each (the LoRa spreading-factor change)
RATE_CHANGE = [(0.0, 37500.0), (30.0, 5500.0), (60.0, 37500.0)]


def make_replay(period_s: Optional[float] = None) -> dict:
    """A valid replay document: a synthetic 3-point ladder (300, 600, 1,500 B; device 20 ms,
    server 5 ms) on RATE_CHANGE for 90 s with a 500 ms deadline."""
    from sc2deploy.measure.adaptive import Point, PolicyOptions
    from sc2deploy.measure.replay import document, replay

    points = [Point("b300", 87.0, 300, 0.020, 0.005), Point("b600", 94.0, 600, 0.020, 0.005),
              Point("b1500", 98.0, 1500, 0.020, 0.005)]
    options = PolicyOptions(0.5)
    result = replay(points, RATE_CHANGE, options, duration_s=90, period_s=period_s)
    return document(result, RATE_CHANGE, points, options, label="synthetic/replay",
                    created_utc="2026-12-07T05:40:00Z", duration_s=90, period_s=period_s)
