"""`sc2deploy serve` and `sc2deploy stream` in two network namespaces joined by a veth pair,
the device's side shaped by tc tbf to LoRa's 37.5 kbit/s: measured transfer vs bytes x 8 / 37,500.

Root only; the namespaces (named after this process) and every process in them are removed
when the test ends. Skipped, with the reason, where namespaces cannot be made.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from sc2deploy.measure.links import BUILTIN
from sc2deploy.preprocess import sample_images

pytest.importorskip("ray", reason="Ray Serve is not installed (pip install 'sc2deploy[serve]')")
RATE_BPS = 37500
SERVER_IP, DEVICE_IP, PORT = "10.213.0.1", "10.213.0.2", 8000


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def namespaces():
    """(server namespace, device namespace), the device's veth shaped to 37.5 kbit/s."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("iproute2 (ip, tc) is not installed")
    server, device = f"s2d{os.getpid()}s", f"s2d{os.getpid()}d"
    made = []
    try:
        for name in (server, device):
            result = ip("netns", "add", name, check=False)
            if result.returncode:
                pytest.skip(f"cannot make a network namespace ({result.stderr.strip()}): "
                            "needs root and a kernel with network namespaces")
            made.append(name)
        va, vb = f"s2v{os.getpid()}s"[-15:], f"s2v{os.getpid()}d"[-15:]
        ip("link", "add", va, "type", "veth", "peer", "name", vb)
        for name, veth, addr in ((server, va, SERVER_IP), (device, vb, DEVICE_IP)):
            ip("link", "set", veth, "netns", name)
            ip("-n", name, "addr", "add", f"{addr}/24", "dev", veth)
            ip("-n", name, "link", "set", veth, "up")
            ip("-n", name, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", device, "tc", "qdisc", "add", "dev", vb, "root",
                        "tbf", "rate", f"{RATE_BPS}bit", "burst", "1600", "latency", "400ms"],
                       check=True, capture_output=True)
        yield server, device
    finally:
        for name in made:
            _kill_all_in(name)
            ip("netns", "del", name, check=False)


def _kill_all_in(namespace: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if pids:
            time.sleep(2)


def sc2deploy(namespace, *args, **kwargs):
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-m", "sc2deploy",
                             *map(str, args)], text=True, **kwargs)


def test_a_lora_shaped_link_delays_containers_as_its_arithmetic(namespaces, demo_bundle,
                                                                tmp_path):
    server_ns, device_ns = namespaces
    token, images, out = tmp_path / "token", tmp_path / "images", tmp_path / "stream.json"
    images.mkdir()
    for path in sample_images()[:3]:
        shutil.copy(path, images / path.name)
    server = sc2deploy(server_ns, "serve", demo_bundle.path, "--host", SERVER_IP, "--port", PORT,
                       "--token-file", token, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ready = server.stdout.readline()
        assert ready.startswith("serving "), f"server did not start: {ready!r}"
        assert oct(token.stat().st_mode & 0o777) == "0o600"
        client = sc2deploy(device_ns, "stream", demo_bundle.path, "--server",
                           f"http://{SERVER_IP}:{PORT}", "--token-file", token, "--images",
                           images, "--link", "lora-ideal-37.5k", "-o", out,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = client.communicate(timeout=180)
        assert client.returncode == 0, stderr[-2000:]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    doc = json.loads(out.read_text())
    assert doc["complete"] and doc["answered"] == 3 and doc["duplicates"] == 0
    modeled = BUILTIN["lora-ideal-37.5k"]
    assert doc["link"]["name"] == modeled.name  # the model, recorded next to the measurement
    ms = {stage: doc["latency_ms"][stage]["p50"] for stage in doc["latency_ms"]}
    link_ms = doc["link"]["delay_ms"]["p50"]
    print(f"p50: transfer {ms['transfer']:.0f} ms measured vs {link_ms:.0f} ms modeled; end to "
          f"end {ms['total']:.0f} ms measured vs {ms['encode'] + link_ms + ms['server']:.0f} ms "
          "(encode + modeled link + server)")
    ratios = []
    for p in doc["predictions"]:
        arithmetic = modeled.delay_ms(p["bytes"])  # bytes x 8 / 37,500
        (output,) = p["outputs"]  # the demo's tail: its top-5 classes
        assert output["task"] == "tail" and len(output["top_k"]) == 5
        transfer = p["round_trip_ms"] - p["server_ms"]
        print(f"{p['image']}: {p['bytes']} B, transfer {transfer:.0f} ms, bytes x 8 / 37,500 "
              f"= {arithmetic:.0f} ms, ratio {transfer / arithmetic:.3f}; LoRa SF6 frames "
              f"{BUILTIN['lora-sx1276-20dbm'].delay_ms(p['bytes']):.0f} ms")
        # HTTP headers (~250 B) and TCP/IP headers (40 B per 1448 B segment) ride the link too;
        # an image may also wait out one TCP retransmission timeout (1 s on a fresh connection)
        # when tbf's queue drops part of a window: seen once in CI (ratio 1.46)
        assert 0.95 < transfer / arithmetic and transfer - arithmetic < 1500
        ratios.append(transfer / arithmetic)
    assert 0.95 < sorted(ratios)[len(ratios) // 2] < 1.3  # the median image: the arithmetic

