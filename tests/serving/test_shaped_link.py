"""`sc2deploy serve` and `sc2deploy stream` in network namespaces (tests/helpers/netns.py: the
server's bridge, one namespace per device), each device's link shaped by tc tbf to LoRa's
37.5 kbit/s: measured transfer vs bytes x 8 / 37,500, for one device and for four at once.

Root only; the namespaces (named after this process) and every process in them are removed
when the test ends. Skipped, with the reason, where namespaces cannot be made.
"""

import contextlib
import json
import shutil
import signal
import subprocess

import pytest

from sc2deploy.measure.links import BUILTIN
from sc2deploy.preprocess import sample_images
from tests.helpers import netns

pytest.importorskip("ray", reason="Ray Serve is not installed (pip install 'sc2deploy[serve]')")
RATE_BPS = 37500
SERVER_IP, PORT = "10.213.0.1", 8000


@contextlib.contextmanager
def lora_star(devices: int):
    """(server namespace, device namespaces), each device's own link shaped to 37.5 kbit/s."""
    addresses = [f"10.213.0.{2 + i}" for i in range(devices)]
    with netns.star("s2d", SERVER_IP, addresses) as (server, leaves, veths):
        for leaf, veth in zip(leaves, veths):
            subprocess.run(["ip", "netns", "exec", leaf, "tc", "qdisc", "add", "dev", veth,
                            "root", "tbf", "rate", f"{RATE_BPS}bit", "burst", "1600", "latency",
                            "400ms"], check=True, capture_output=True)
        yield server, leaves


sc2deploy = netns.sc2deploy


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory):
    """The ladder's largest point at 896 px: ~20 kB containers, far above tbf's 1,600 B burst
    (the demo's own ~0.5 kB containers would pass inside the burst, unshaped)."""
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images
    from sc2deploy.specs import demo_ladder

    return export_bundle(ExportOptions(model=demo_ladder()[0], input_size=896,
                                       out=tmp_path_factory.mktemp("big") / "b",
                                       images=sample_images()[:4]))


def serve_and_stream(server_ns, device_namespaces, bundle, tmp_path, images_each: int):
    """``sc2deploy serve`` in ``server_ns``; one ``sc2deploy stream`` per device namespace, all
    at once, each with its own ``images_each`` images; returns their results documents."""
    token = tmp_path / "token"
    server = sc2deploy(server_ns, "serve", bundle.path, "--host", SERVER_IP, "--port", PORT,
                       "--token-file", token, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    clients, outs = [], []
    try:
        ready = server.stdout.readline()
        assert ready.startswith("serving "), f"server did not start: {ready!r}"
        assert oct(token.stat().st_mode & 0o777) == "0o600"
        for k, device_ns in enumerate(device_namespaces):
            images, out = tmp_path / f"images{k}", tmp_path / f"stream{k}.json"
            images.mkdir()
            for path in sample_images()[k * images_each:(k + 1) * images_each]:
                shutil.copy(path, images / path.name)
            clients.append(sc2deploy(device_ns, "stream", bundle.path, "--server",
                                     f"http://{SERVER_IP}:{PORT}", "--token-file", token,
                                     "--images", images, "--link", "lora-ideal-37.5k", "-o", out,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            outs.append(out)
        for client in clients:
            _, stderr = client.communicate(timeout=300)
            assert client.returncode == 0, stderr[-2000:]
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    return [json.loads(out.read_text()) for out in outs]


def transfer_ratios(doc) -> list:
    """Measured transfer / (bytes x 8 / 37,500) per image, each image's bound checked."""
    modeled = BUILTIN["lora-ideal-37.5k"]
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
        # when tbf's queue drops part of a window (seen once in CI: ratio 1.46), plus the Ray
        # proxy's queueing on loaded cores (counted as transfer: only server_ms is subtracted)
        assert 0.95 < transfer / arithmetic and transfer - arithmetic < 2500
        ratios.append(transfer / arithmetic)
    return ratios


def test_a_lora_shaped_link_delays_containers_as_its_arithmetic(big_bundle, tmp_path):
    with lora_star(1) as (server_ns, devices):
        doc, = serve_and_stream(server_ns, devices, big_bundle, tmp_path, 3)
    assert doc["complete"] and doc["answered"] == 3 and doc["duplicates"] == 0
    modeled = BUILTIN["lora-ideal-37.5k"]
    assert doc["link"]["name"] == modeled.name  # the model, recorded next to the measurement
    ms = {stage: doc["latency_ms"][stage]["p50"] for stage in doc["latency_ms"]}
    link_ms = doc["link"]["delay_ms"]["p50"]
    print(f"p50: transfer {ms['transfer']:.0f} ms measured vs {link_ms:.0f} ms modeled; end to "
          f"end {ms['total']:.0f} ms measured vs {ms['encode'] + link_ms + ms['server']:.0f} ms "
          "(encode + modeled link + server)")
    ratios = transfer_ratios(doc)
    assert 0.95 < sorted(ratios)[len(ratios) // 2] < 1.3  # the median image: the arithmetic


def test_many_devices_each_on_its_own_lora_link(big_bundle, tmp_path):
    """Four devices stream at once, each over its own 37.5 kbit/s link: each is delayed by its
    own link's arithmetic, not by the others; all answered once."""
    with lora_star(4) as (server_ns, devices):
        docs = serve_and_stream(server_ns, devices, big_bundle, tmp_path, 2)
    ratios = []
    for doc in docs:
        assert doc["complete"] and doc["answered"] == 2 and doc["duplicates"] == 0
        ratios += transfer_ratios(doc)
    assert len({p["request_id"] for doc in docs for p in doc["predictions"]}) == 8
    print(f"4 devices at once: transfer / arithmetic, median {sorted(ratios)[4]:.3f}, "
          f"max {max(ratios):.3f}")
    # One shared 37.5 kbit/s link would make the median about 4x. The 896 px tails of four
    # devices arriving together queue on 2 cores in the Ray proxy, which counts as transfer
    # (only server_ms is subtracted): up to ~1.5 s more for some images here.
    assert 0.95 < sorted(ratios)[len(ratios) // 2] < 2.0
