"""`sc2deploy serve` on a real Ray Serve cluster (127.0.0.1): statuses, batching, a restart.

Ray starts once for this module (~20 s) and is shut down at its end.
"""

import http.client
import json
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sc2deploy.codec import container
from sc2deploy.stream.client import StreamOptions, answered_top1, stream
from sc2deploy.preprocess import sample_images
from sc2deploy.results.schema import validate
from sc2deploy.serving.service import ServeOptions, Service
from sc2deploy.targets.encoding import encode_images

ray_app = pytest.importorskip("sc2deploy.serving.ray_app", reason="Ray Serve is not installed "
                              "(pip install 'sc2deploy[serve]')")
TOKEN = "ray-test-token-0123456789abc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(split_bundle):
    options = ServeOptions(bundles=split_bundle.path, port=free_port(), max_batch=8,
                           batch_wait_ms=20, max_bytes=8192)
    url = ray_app.start(options, TOKEN)
    yield options, url
    ray_app.stop(shutdown_ray=True)


@pytest.fixture(scope="module")
def streams(split_bundle):
    return [data for _, data in encode_images(split_bundle, sample_images()[:8])]


def post(options, body, request_id="r", token=TOKEN, bundle=None, path="/v1/infer"):
    conn = http.client.HTTPConnection(options.host, options.port, timeout=30)
    headers = {"X-Request-Id": request_id, "X-Sc2deploy-Bundle": bundle or _digest(options)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    reply = response.status, json.loads(response.read()), response.getheader("WWW-Authenticate")
    conn.close()
    return reply


def _digest(options):
    return json.loads((options.bundle / "manifest.json").read_text())["manifest_sha256"]


def test_hostile_requests_get_a_status_and_good_ones_keep_being_served(server, streams):
    options, _ = server
    head, payload = container.unpack(streams[0])
    hostile = [  # (body, kwargs, status, text in the error)
        (streams[0], {"token": None}, 401, "missing or wrong bearer token"),
        (streams[0], {"token": "not-the-token-0123456789"}, 401, "wrong bearer token"),
        (streams[0] + bytes(9000), {}, 413, "accepts at most 8192"),
        (streams[0][:-7], {}, 400, "truncated stream"),
        (streams[0][:30] + b"\xff" + streams[0][31:], {}, 400, "checksum mismatch"),
        (container.pack(head.shape, head.prior_digest ^ 1, payload), {}, 409, "prior"),
        (streams[0], {"bundle": "f" * 64}, 409, "serves bundle"),
        (streams[0], {"path": "/admin"}, 404, "expected POST /v1/infer"),
    ]
    for i, (body, kwargs, status, text) in enumerate(hostile):
        got, reply, challenge = post(options, body, f"bad-{i}", **kwargs)
        assert (got, reply["status"]) == (status, status) and text in reply["error"], reply
        assert challenge == ("Bearer" if status == 401 else None)
        got, reply, _ = post(options, streams[1], f"good-{i}")
        assert got == 200 and reply["outputs"][0]["top_k"], reply


def test_concurrent_requests_are_batched_and_replays_answered_once(server, streams):
    options, _ = server
    for burst in range(5):  # on loaded cores the proxy may forward a burst > 20 ms apart
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: post(options, streams[i], f"batch-{burst}-{i}"),
                                    range(8)))
        assert all(status == 200 for status, _, _ in replies)
        if max(reply["batch_size"] for _, reply, _ in replies) > 1:
            break
    assert max(reply["batch_size"] for _, reply, _ in replies) > 1, "5 bursts, no batch"
    status, again, _ = post(options, streams[3], f"batch-{burst}-3")
    assert status == 200 and again["replayed"] is True
    assert again["outputs"] == replies[3][1]["outputs"]
    status, reply, _ = post(options, streams[4], f"batch-{burst}-3")
    assert status == 409 and "already used for another container" in reply["error"]


def test_a_server_restart_mid_stream_loses_and_duplicates_nothing(server, split_bundle,
                                                                  tmp_path, monkeypatch):
    from sc2deploy.stream import client as device

    options, url = server
    images = tmp_path / "images"
    images.mkdir()
    for path in sample_images()[:16]:
        shutil.copy(path, images / path.name)
    service = Service(options, TOKEN)  # the same decoding and tail, in this process
    expected = []
    for i, (_, data) in enumerate(encode_images(split_bundle, sorted(images.iterdir()))):
        headers = {"authorization": f"Bearer {TOKEN}", "x-request-id": f"e{i}",
                   "x-sc2deploy-bundle": _digest(options)}
        answer = service.run_batch([service.prepare(headers, data)])[0]
        expected.append(answer["outputs"][0]["top_k"][0]["class"])
    service.close()
    queue = tmp_path / "queue.json"
    run = StreamOptions(bundle=split_bundle.path, server=url, token=TOKEN, queue=queue,
                        images=images, interval_s=0.15, backoff_s=0.1, max_backoff_s=1.0,
                        max_retries=300, progress=False)  # ~5 min: a restart on a loaded CI
                        # machine once outlasted 60 retries (~1 min)
    stopped, sends = threading.Event(), []

    def send_once_serve_is_down(*args):  # from the 4th image on: only once Serve has stopped
        sends.append(1)
        if len(sends) > 3:
            assert stopped.wait(300), "Serve did not stop"
        return real_send(*args)

    real_send = device.send
    monkeypatch.setattr(device, "send", send_once_serve_is_down)
    result = {}
    client = threading.Thread(target=lambda: result.update(doc=stream(run)))
    client.start()
    deadline = time.monotonic() + 300
    while not _answered(queue) >= 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    ray_app.stop()  # the whole Serve instance: proxy, replicas, their replay caches
    stopped.set()
    ray_app.start(options, TOKEN)
    client.join(timeout=400)  # within the client's 300 retries
    assert not client.is_alive(), "the stream did not finish"
    doc = result["doc"]
    print(f"restart: {doc['retries']} retries, {doc['replayed']} replayed")
    assert doc["complete"] and doc["answered"] == doc["images"] == 16
    assert doc["duplicates"] == 0 and doc["retries"] > 0
    assert answered_top1(doc) == expected
    assert len({p["request_id"] for p in doc["predictions"]}) == 16
    validate(doc)  # served_by is recorded per image: the replica before and after the restart
    assert len({p["served_by"]["replica"] for p in doc["predictions"]}) == 2


def _answered(queue) -> int:
    try:
        entries = json.loads(queue.read_text())["entries"]
    except (OSError, ValueError):
        return 0
    return sum(e["status"] == 200 for e in entries.values())
