"""Adapt to a real link that changes (issue 22): `sc2deploy serve` holds three demo-ladder points
in a namespace of its own; `sc2deploy stream --ladder` runs in a device namespace whose veth is
shaped by tc tbf, the rate changed by the test mid-run (37.5 -> 5.5 -> 37.5 kbit/s, by the
number of images answered); the adaptive client against each fixed point on the same trace
and images. Another trace: SC2DEPLOY_TEST_LINK_TRACE="0:37500,8:4000,20:37500" (from the Nth
image answered: bit/s); the checks on when the client switched hold for the default trace only.

Root only (tests/helpers/netns.py); skipped, with the reason, where namespaces cannot be made.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from sc2deploy.preprocess import sample_images
from tests.helpers import netns

pytest.importorskip("ray", reason="Ray Serve is not installed (pip install 'sc2deploy[serve]')")
SERVER_IP, DEVICE_IP, PORT = "10.214.0.1", "10.214.0.2", 8000
DEFAULT_TRACE = [(0, 37500), (8, 5500), (20, 37500)]  # (from the Nth image answered, bit/s)


def trace_from_env():
    text = os.environ.get("SC2DEPLOY_TEST_LINK_TRACE", "").strip()
    if not text:
        return DEFAULT_TRACE
    trace = [tuple(int(v) for v in step.split(":")) for step in text.split(",")]
    assert trace[0][0] == 0 and all(a < b for (a, _), (b, _) in zip(trace, trace[1:])), \
        f"SC2DEPLOY_TEST_LINK_TRACE: expected 0:BPS,N:BPS,... with N rising, got {text!r}"
    return trace


TRACE = trace_from_env()
IMAGES = 32  # every sample image
DEADLINE_MS = 2000  # at 5.5 kbit/s over HTTP: ~1.25 kB ~2.5 s, ~0.48 kB ~1.4 s, ~0.31 kB ~1.1 s


def shape(device_ns, veth, rate_bps, verb="change"):
    """tbf on the device's uplink; a queue of 5 s so that TCP segments wait, not drop."""
    subprocess.run(["ip", "netns", "exec", device_ns, "tc", "qdisc", verb, "dev", veth, "root",
                    "tbf", "rate", f"{rate_bps}bit", "burst", "1600", "latency", "5s"],
                   check=True, capture_output=True)


def tx_bytes(device_ns, veth) -> int:
    """Bytes the device's veth has sent (every packet: IP, TCP and HTTP headers included)."""
    out = subprocess.run(["ip", "-n", device_ns, "-s", "-j", "link", "show", "dev", veth],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["stats64"]["tx"]["bytes"]


def retransmitted(device_ns) -> int:
    """TCP segments the device's namespace has sent again (RetransSegs of its /proc/net/snmp)."""
    lines = [line.split() for line in subprocess.run(
        ["ip", "netns", "exec", device_ns, "cat", "/proc/net/snmp"], check=True,
        capture_output=True, text=True).stdout.splitlines() if line.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])


def answered(queue) -> int:
    try:
        entries = json.loads(queue.read_text())["entries"]
    except (OSError, ValueError):
        return 0
    return sum(e["status"] == 200 for e in entries.values())


def stream_on_trace(device_ns, veth, bundles, evaluations, token, images, out):
    """`stream --ladder` over ``bundles`` while the rate follows TRACE; its results and the
    times at which each rate was set (monotonic s)."""
    shape(device_ns, veth, TRACE[0][1])
    sent_before, resent_before = tx_bytes(device_ns, veth), retransmitted(device_ns)
    queue = out.with_name(out.name + ".queue.json")
    client = netns.sc2deploy(
        device_ns, "stream", "--ladder", *[b.path for b in bundles], "--deadline-ms",
        DEADLINE_MS, "--evaluation", *evaluations, "--link", "lora-ideal-37.5k", "--server",
        f"http://{SERVER_IP}:{PORT}", "--token-file", token, "--images", images, "-o", out,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    changes = []
    try:
        for after, rate in TRACE[1:]:
            while answered(queue) < after and client.poll() is None:
                time.sleep(0.01)
            shape(device_ns, veth, rate)
            changes.append((after, rate))
        stdout, stderr = client.communicate(timeout=400)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, stderr[-3000:]
    doc = json.loads(out.read_text())
    containers = sum(p["bytes"] for p in doc["predictions"])
    overhead = (tx_bytes(device_ns, veth) - sent_before - containers) / len(doc["predictions"])
    return doc, stdout, overhead, retransmitted(device_ns) - resent_before


def test_the_adaptive_client_meets_the_deadline_on_a_link_that_changes(
        ladder_bundles, ladder_evaluations, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for path in sample_images()[:IMAGES]:
        shutil.copy(path, images / path.name)
    token = tmp_path / "token"
    with netns.star("s2a", SERVER_IP, [DEVICE_IP]) as (server_ns, (device_ns,), (veth,)):
        shape(device_ns, veth, TRACE[0][1], "add")
        log = open(tmp_path / "serve.log", "w")
        server = netns.sc2deploy(server_ns, "serve", *[b.path for b in ladder_bundles], "--host",
                                 SERVER_IP, "--port", PORT, "--token-file", token,
                                 stdout=subprocess.PIPE, stderr=log)
        try:
            ready = server.stdout.readline()
            assert ready.startswith("serving "), \
                f"server did not start: {ready!r}; {(tmp_path / 'serve.log').read_text()[-2000:]}"
            runs = {}
            for name, bundles in [("adaptive", ladder_bundles),
                                  *[(b.path.name, [b]) for b in ladder_bundles]]:
                doc, stdout, overhead, resent = stream_on_trace(device_ns, veth, bundles,
                                                        ladder_evaluations, token, images,
                                                        tmp_path / f"{name}.json")
                runs[name] = doc
                print(f"{name}: {stdout.strip().splitlines()[-2]}")
                print(f"{name}: {overhead:.0f} B sent per image besides the container, "
                      f"{doc['adaptive']['overhead_bytes']} B modeled; {resent} TCP segments "
                      "sent again")
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    adaptive = runs["adaptive"]
    rows = [p["adaptive"] for p in adaptive["predictions"]]
    for k, r in enumerate(rows):
        print(f"{k:2d} {r['point']:<13} estimate {r['estimate_bps'] / 1e3:5.1f} kbit/s, "
              f"predicted {r['predicted_e2e_ms']:5.0f} ms, measured {r['measured_e2e_ms']:5.0f}"
              f" ms{'' if r['met'] else ' LATE'}")
    summary = adaptive["adaptive"]["summary"]
    assert adaptive["complete"] and summary["images"] == IMAGES
    points = {p["name"]: p for p in adaptive["adaptive"]["points"]}
    top = max(points.values(), key=lambda p: (p["top1"], -p["reference_bytes"]))["name"]
    chosen = [r["point"] for r in rows]
    if TRACE == DEFAULT_TRACE:
        assert chosen[1:8] == [top] * 7  # fast: the most accurate
        assert top not in chosen[10:20]  # slow: fewer bytes, at most two images after the change
        assert chosen[-3:] == [top] * 3  # fast again
        switch = next(k for k in range(TRACE[2][0], IMAGES) if chosen[k] == top)
        print(f"back on {top} {switch - TRACE[2][0]} image(s) after the rise")
    # the image sent as the rate dropped is late (the target: >= 95 %, 31 of 32, met
    # here with the settling rule);
    # one more is tolerated for a loaded machine
    assert summary["hit_rate"] >= 0.9, summary
    for name in points:
        fixed = runs[name]["adaptive"]["summary"]
        print(f"fixed {name}: deadline met {fixed['hit_rate']:.0%}, top-1 "
              f"{fixed['mean_top1']:.1f} % vs adaptive {summary['hit_rate']:.0%}, "
              f"{summary['mean_top1']:.1f} %")
        assert fixed["hit_rate"] <= 0.8 or fixed["mean_top1"] < summary["mean_top1"], fixed
