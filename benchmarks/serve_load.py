"""Serving under load: N simulated devices against `sc2deploy serve`, with and without batching,
and a server restart mid-run.

    python -m benchmarks.serve_load [--bundle build/demo/demo-bundle] [--devices 32]
                                    [--duration 60] [--max-batch 8] [--json PATH]

Each device is a thread of this process with its own HTTP connection (the client of
``sc2deploy stream``: request ids, retries with backoff). It sends the bundle's containers
of the sample images (encoded once, before the runs: the server's load, not the devices')
back to back, and waits for each answer (p50/p99: from the first send to the answer,
retries and their backoff included). First, the tail alone (when the bundle has one): images/s
on one core for ``--max-batch`` latents run one at a time vs as one batch. Then runs of
``--duration`` seconds each:
``--max-batch 1`` (one request at a time), ``--max-batch N`` (the replica chooses how a batch
runs through the tail: ``--tail-batch auto``), ``--max-batch N`` with the tail forced to run
each batch at once (when its batch dimension is free), and ``--max-batch N`` with the whole
Serve instance stopped and started again at half time. Every request id a device
sent must come back exactly once (lost = sent - answered; duplicates = ids answered twice).
The server (Ray Serve, one replica) and the devices share this machine's cores.
"""

import base64
import http.client
import json
import os
import socket
import threading
import time
from collections import Counter

import numpy as np

from benchmarks.common import parse, parser, positive, publish
from sc2deploy import wire
from sc2deploy.bundle import Bundle
from sc2deploy.preprocess import sample_images
from sc2deploy.serving import batching, ray_app
from sc2deploy.serving.service import ServeOptions
from sc2deploy.stream.client import Client, StreamOptions, send
from sc2deploy.targets import load_server_runner
from sc2deploy.targets.encoding import encode_images, latent_codec

TOKEN = "serve-load-benchmark-token-0123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _device(index, containers, stream_options, digest, stop, out):
    client = Client(stream_options, digest)
    sent, answered, trips, retries = [], [], [], 0
    n = 0
    while not stop.is_set():
        entry = {"request_id": f"d{index:03d}-{n:06d}", "attempts": 0,
                 "container": containers[n % len(containers)]}
        sent.append(entry["request_id"])
        t0 = time.perf_counter()
        retries += send(client, entry, stream_options)
        if entry.get("status") == wire.OK:
            answered.append(entry["answer"]["request_id"])
            trips.append((time.perf_counter() - t0) * 1e3)  # retries and their waits included
        n += 1
    client.close()
    out[index] = {"sent": sent, "answered": answered, "trips": trips, "retries": retries}


def tail_alone(bundle, data, batch: int, seconds: float = 5.0) -> dict:
    """The tail on one thread: ``batch`` latents one at a time vs as one batch (images/s)."""
    codec, shape = latent_codec(bundle), tuple(bundle.model["latent"]["shape"])
    latents = [codec.decode(d, shape) for d in data]
    x = np.stack([latents[i % len(latents)] for i in range(batch)]).astype(np.float32)
    rates = {}
    with load_server_runner(bundle, "tail", threads=1) as runner:
        for name, mode in (("one_at_a_time", "single"), ("batched", "batched")):
            batching.run(runner, x, mode)  # warm-up
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                batching.run(runner, x, mode)
                count += batch
            rates[name] = count / (time.perf_counter() - start)
        free = runner.batch_free
    return {"batch": batch, "batch_free": free, **rates,
            "ratio": rates["batched"] / rates["one_at_a_time"]}


def _info(options) -> dict:
    """The server's GET /v1/info (how its replica runs a batch through the tail)."""
    conn = http.client.HTTPConnection(options.host, options.port, timeout=30)
    conn.request("GET", wire.INFO_PATH,
                 headers={wire.AUTHORIZATION_HEADER: wire.authorization(TOKEN)})
    info = json.loads(conn.getresponse().read())
    conn.close()
    return info


def run(bundle, containers, devices, duration, max_batch, restart, tail_batch="auto") -> dict:
    options = ServeOptions(bundles=bundle.path, port=_free_port(), max_batch=max_batch,
                           batch_wait_ms=5.0, tail_batch=tail_batch)
    url = ray_app.start(options, TOKEN)
    batching = _info(options)["batching"]
    stream_options = StreamOptions(bundle=bundle.path, server=url, token=TOKEN,
                                   queue=None, max_retries=200, backoff_s=0.05,
                                   max_backoff_s=1.0, progress=False)
    stop, out = threading.Event(), {}
    threads = [threading.Thread(target=_device, args=(i, containers, stream_options,
                                                      bundle.manifest["manifest_sha256"],
                                                      stop, out)) for i in range(devices)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    restart_s = None
    if restart:
        time.sleep(duration / 2)
        t0 = time.perf_counter()
        ray_app.stop()
        ray_app.start(options, TOKEN)
        restart_s = time.perf_counter() - t0
        time.sleep(max(0.0, duration - (time.perf_counter() - start)))
    else:
        time.sleep(duration)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ray_app.stop()
    sent = [i for d in out.values() for i in d["sent"]]
    answered = [i for d in out.values() for i in d["answered"]]
    trips = np.array([t for d in out.values() for t in d["trips"]])
    counts = Counter(answered)
    return {"max_batch": max_batch, "tail_batch": tail_batch, "batching": batching,
            "restart": restart,
            "restart_s": restart_s,
            "devices": devices, "seconds": elapsed, "sent": len(sent),
            "answered": len(answered), "lost": len(set(sent) - set(answered)),
            "duplicates": sum(c - 1 for c in counts.values() if c > 1),
            "retries": sum(d["retries"] for d in out.values()),
            "images_per_s": len(answered) / elapsed,
            "p50_ms": float(np.percentile(trips, 50)), "p99_ms": float(np.percentile(trips, 99))}


def summary_of(result: dict, command: str) -> str:
    lines = [f"`{command}` — bundle {result['bundle']} ({result['tasks']}), "
             f"{result['bytes_mean']:.0f} B per container, {os.cpu_count()} cores shared by the "
             "server and the devices", "",
             "| run | images/s | p50 ms | p99 ms | sent | answered | lost | duplicates | "
             "retries |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    tail = result.get("tail_alone")
    if tail:
        lines[1:1] = ["", f"tail alone, 1 thread: {tail['one_at_a_time']:.1f} images/s one at a "
                      f"time, {tail['batched']:.1f} as batches of {tail['batch']} "
                      f"({tail['ratio']:.2f}x; batch dimension "
                      f"{'free' if tail['batch_free'] else '1: run image by image'})"]
    for r in result["runs"]:
        tail = r["batching"].get("tail")
        how = f"tail {tail['mode']}" + (" (forced)" if r["tail_batch"] != "auto" else "")
        name = f"max-batch {r['max_batch']}" + (f", {how}" if tail else "") + (
            f", restart at {result['duration'] / 2:.0f} s ({r['restart_s']:.1f} s down)"
            if r["restart"] else "")
        lines.append(f"| {name} | {r['images_per_s']:.1f} | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {r['sent']} | {r['answered']} | {r['lost']} | "
                     f"{r['duplicates']} | {r['retries']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = parser(__file__, __doc__)
    p.add_argument("--bundle", default="build/demo/demo-bundle", help="bundle to serve")
    p.add_argument("--devices", type=positive, default=32, help="simulated devices")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    p.add_argument("--max-batch", type=positive, default=8, help="batch size of the batched runs")
    args = parse(p, argv)
    bundle = Bundle.open(args.bundle)
    data = [d for _, d in encode_images(bundle, sample_images()[:8])]
    containers = [base64.b64encode(d).decode() for d in data]
    result = {"bundle": args.bundle, "duration": args.duration,
              "tasks": "tail" if "file" in bundle.manifest.get("tail", {}) else "decoding only",
              "bytes_mean": float(np.mean([len(d) for d in data])), "runs": []}
    if result["tasks"] == "tail":
        result["tail_alone"] = tail_alone(bundle, data, args.max_batch)
        print(result["tail_alone"], flush=True)
    runs = [(1, False, "auto"), (args.max_batch, False, "auto")]
    if result.get("tail_alone", {}).get("batch_free"):  # the other choice too, forced
        runs.append((args.max_batch, False, "batched"))
    try:
        for max_batch, restart, tail_batch in [*runs, (args.max_batch, True, "auto")]:
            result["runs"].append(run(bundle, containers, args.devices, args.duration,
                                      max_batch, restart, tail_batch))
            print(result["runs"][-1], flush=True)
    finally:
        ray_app.stop(shutdown_ray=True)
    publish(summary_of, result, __file__, argv, args.json)


if __name__ == "__main__":
    main()
