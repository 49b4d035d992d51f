"""The device client: queue on disk, request ids, retries with backoff; against a real server
logic (sc2deploy.serving.service) behind the standard library's HTTP server, with faults
(tests/helpers/service_front.py; the Ray Serve front is tested in tests/serving/test_ray_app.py)."""

import http.client
import json
import os
import signal
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.service_front import ServiceFront

from sc2deploy.errors import UsageError
from sc2deploy.stream.client import (Client, StreamOptions, TcpCounts, answered_top1,
                                     read_token, stream, tcp_counts)
from sc2deploy.preprocess import sample_images
from sc2deploy.results.schema import validate

TOKEN = "stream-test-token-0123456789"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for path in sample_images()[:6]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def front(split_bundle):
    f = ServiceFront([split_bundle], TOKEN)
    yield f
    f.close()


@pytest.fixture
def down():
    """The URL of a port that refuses connections: bound here, never listening."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{bound.getsockname()[1]}"


def options(bundle, url, tmp_path, images, **kw):
    return StreamOptions(bundle=bundle.path, server=url, token=kw.pop("token", TOKEN),
                         queue=kw.pop("queue", tmp_path / "queue.json"), images=images, backoff_s=0.01,
                         max_backoff_s=0.05, progress=False, **kw)


def test_every_image_is_answered_once_and_measured(split_bundle, front, images, tmp_path):
    doc = validate(stream(options(split_bundle, front.url, tmp_path, images)))
    assert doc["kind"] == "stream" and doc["complete"]
    assert (doc["images"], doc["answered"], doc["duplicates"], doc["retries"]) == (6, 6, 0, 0)
    ms = doc["latency_ms"]
    assert ms["encode"]["n"] == ms["transfer"]["n"] == 6
    assert 0 < ms["server"]["p50"] and 0 < ms["transfer"]["p50"]
    assert ms["total"]["p50"] > ms["encode"]["p50"]
    assert all(isinstance(c, int) for c in answered_top1(doc))
    assert len(set(p["request_id"] for p in doc["predictions"])) == 6
    if sys.platform.startswith("linux"):  # what TCP sent again, per answer: none over loopback
        assert [p["resent_bytes"] for p in doc["predictions"]] == [0] * 6


def test_tcp_counts_are_the_sockets_own():
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as sock:
        counts = tcp_counts(sock)
        if sys.platform.startswith("linux"):
            assert counts in (TcpCounts(0, 0, 0), TcpCounts(0, 0, None))
        else:
            assert counts is None  # the platform does not say: no hold, no field
    assert tcp_counts(None) is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert tcp_counts(udp) is None


def test_the_wait_for_resent_bytes_is_bounded(split_bundle, tmp_path, images):
    """Nothing resent: no wait; resent where no duplicates can be seen (no connection):
    the expected time; duplicates due that never come: at most twice the expected time."""
    client = Client(options(split_bundle, "http://127.0.0.1:9", tmp_path, images), "digest")
    assert client.wait_for_resent(0.0) == 0.0
    assert 0.05 <= client.wait_for_resent(0.05) < 0.5
    server = socket.create_server(("127.0.0.1", 0))
    with server:
        client = Client(options(split_bundle, f"http://127.0.0.1:{server.getsockname()[1]}",
                                tmp_path, images), "digest")
        client._conn = http.client.HTTPConnection("127.0.0.1", server.getsockname()[1])
        client._conn.connect()
        client._duplicates_due = 1  # a duplicate this connection will never report
        waited = client.wait_for_resent(0.05)
        client.close()
    assert 0.05 <= waited < 0.5 and (not sys.platform.startswith("linux") or waited >= 0.1)


def test_lost_replies_and_503s_are_retried_without_duplicates(split_bundle, front, images,
                                                               tmp_path):
    reference = answered_top1(stream(options(split_bundle, front.url, tmp_path / "a", images)))
    front.faults = ["drop", "503", "503", None, "drop"]
    doc = stream(options(split_bundle, front.url, tmp_path / "b", images))
    assert doc["complete"] and doc["answered"] == 6 and doc["duplicates"] == 0
    assert doc["retries"] == 4 and doc["replayed"] == 2  # dropped replies answered from cache
    assert answered_top1(doc) == reference
    assert len(front.seen) == 6 + 6 + 4


def test_a_404_that_is_not_a_refusal_of_sc2deploy_is_retried(split_bundle, front, images,
                                                              tmp_path):
    front.faults = ["404", "404"]
    doc = stream(options(split_bundle, front.url, tmp_path, images))
    assert doc["complete"] and doc["answered"] == 6 and doc["refused"] == 0
    assert doc["retries"] == 2 and len(front.seen) == 8


def test_a_stopped_server_loses_nothing_and_a_rerun_resumes_the_queue(split_bundle, front,
                                                                      images, tmp_path, down):
    doc = stream(options(split_bundle, down, tmp_path, images, max_retries=1))
    assert not doc["complete"] and doc["answered"] == 0 and doc["retries"] == 6
    queued = json.loads((tmp_path / "queue.json").read_text())["entries"]
    assert len(queued) == 6 and all(e["container"] for e in queued.values())
    doc = stream(options(split_bundle, front.url, tmp_path, images))
    assert doc["complete"] and doc["answered"] == 6 and doc["duplicates"] == 0
    assert sorted(front.seen) == sorted(e["request_id"] for e in queued.values())


def test_a_refused_image_is_not_retried_and_says_why(split_bundle, front, images, tmp_path):
    doc = stream(options(split_bundle, front.url, tmp_path, images, token="wrong-token-012345678"))
    assert not doc["complete"] and doc["refused"] == 6 and doc["retries"] == 0
    assert {p["status"] for p in doc["predictions"]} == {401} and len(front.seen) == 6


def test_options_and_token_are_checked(split_bundle, tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="expected http://HOST:PORT") as info:
        StreamOptions(bundle=split_bundle.path, server="ftp://x", token="secret-never-shown",
                      queue=tmp_path / "q")
    assert "secret-never-shown" not in str(info.value)
    monkeypatch.delenv("SC2DEPLOY_TOKEN", raising=False)
    with pytest.raises(UsageError, match="cannot read the token file"):
        read_token(tmp_path / "missing")


def test_the_stream_document_is_written_and_reported(split_bundle, front, images, tmp_path):
    from sc2deploy.report.document import write_report
    from sc2deploy.results.schema import load_results, write_results

    doc = stream(options(split_bundle, front.url, tmp_path, images, label="split/stream"))
    assert len(doc["samples"]["latency_ms"]["transfer"]) == 6
    path = write_results(doc, tmp_path / "stream.json")
    report = write_report(load_results([path]), tmp_path / "report")
    assert "split/stream" in (tmp_path / "report" / "report.md").read_text(), report


# ---- frames from a camera (a real camera command on a pipe: tests/helpers/mjpeg_camera.py)

CAMERA_SCRIPT = Path(__file__).parents[1] / "helpers" / "mjpeg_camera.py"
CAMERA = f"{sys.executable} {CAMERA_SCRIPT}"


def camera_options(bundle, url, tmp_path, **kw):
    kw.setdefault("camera_command", f"{CAMERA} 30 10000 --no-dht")
    return options(bundle, url, tmp_path, None, **kw)


def test_camera_frames_are_encoded_fresh_sent_once_and_counted(split_bundle, front, tmp_path):
    doc = validate(stream(camera_options(split_bundle, front.url, tmp_path, frames=4,
                                         interval_s=0.2)))
    assert doc["complete"] and (doc["images"], doc["answered"], doc["duplicates"]) == (4, 4, 0)
    cam = doc["camera"]
    assert (cam["kind"], cam["format"], cam["ended"], cam["undecodable"]) == \
        ("command", "MJPG", None, 0)
    frames = [p["frame"] for p in doc["predictions"]]
    assert frames == sorted(set(frames)) and frames[-1] >= 6  # ~6 frames per 200 ms
    assert cam["frames"]["taken"] == 4 and cam["frames"]["skipped"] >= frames[-1] - 3
    assert cam["frame_age_ms"]["n"] == 4 and cam["frame_age_ms"]["max"] < 1000
    assert all(p["image"].startswith("frame-") and p["captured_utc"] for p in doc["predictions"])
    assert all(isinstance(c, int) for c in answered_top1(doc))


def test_a_camera_rerun_sends_the_pending_frames_then_captures_the_rest(split_bundle, front,
                                                                        tmp_path, down):
    doc = stream(camera_options(split_bundle, down, tmp_path, frames=3, max_retries=0))
    assert not doc["complete"] and doc["answered"] == 0 and doc["images"] == 3
    pending = list(json.loads((tmp_path / "queue.json").read_text())["entries"].values())
    doc = validate(stream(camera_options(split_bundle, front.url, tmp_path, frames=5)))
    assert doc["complete"] and (doc["images"], doc["answered"], doc["duplicates"]) == (5, 5, 0)
    assert front.seen[:3] == [e["request_id"] for e in pending]  # the queue goes first
    assert doc["camera"]["frames"]["taken"] == 2 and len(set(front.seen)) == 5


def test_a_camera_that_ends_early_keeps_what_was_sent_and_says_so(split_bundle, front, tmp_path):
    doc = validate(stream(camera_options(split_bundle, front.url, tmp_path, frames=5,
                                         camera_command=f"{CAMERA} 100 2 --then fail")))
    assert not doc["complete"] and 1 <= doc["answered"] == doc["images"] <= 2
    assert "exited with code 3" in doc["camera"]["ended"]


def test_camera_options_are_checked(split_bundle, tmp_path, images):
    def make(**kw):
        return StreamOptions(bundle=split_bundle.path, server="http://127.0.0.1:1", token=TOKEN,
                             queue=tmp_path / "q", **kw)

    with pytest.raises(UsageError, match="give --images or a camera, not both"):
        make(images=images, camera="-", frames=1)
    with pytest.raises(UsageError, match="with a camera, give --frames N"):
        make(camera="/dev/video0")
    with pytest.raises(UsageError, match="--frames is for a camera"):
        make(frames=3)
    with pytest.raises(UsageError, match="--camera or --camera-command, not both"):
        make(camera="-", camera_command="x", frames=1)


def test_the_cli_streams_mjpeg_from_stdin(split_bundle, front, tmp_path):
    producer = subprocess.Popen([sys.executable, str(CAMERA_SCRIPT), "30", "10000"],
                                stdout=subprocess.PIPE)
    env = dict(os.environ, SC2DEPLOY_TOKEN=TOKEN)
    try:
        proc = subprocess.run([sys.executable, "-m", "sc2deploy", "stream", str(split_bundle.path),
                               "--server", front.url, "--camera", "-", "--frames", "3",
                               "-o", str(tmp_path / "cam.json")], stdin=producer.stdout,
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        producer.kill()
        producer.wait()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "camera - (MJPG):" in proc.stdout and "3/3 images answered" in proc.stdout
    doc = json.loads((tmp_path / "cam.json").read_text())
    assert doc["camera"]["kind"] == "stdin" and doc["answered"] == 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_stream_keeps_what_it_measured_and_the_rerun_sends_the_rest(
        split_bundle, front, images, tmp_path, signum):
    out, queue = tmp_path / "s.json", tmp_path / "s.json.queue.json"
    earlier = b'{"an earlier complete stream": true}\n'
    out.write_bytes(earlier)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sc2deploy", "stream", str(split_bundle.path), "--server",
         front.url, "--images", str(images), "--interval-ms", "1500", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, SC2DEPLOY_TOKEN=TOKEN))
    deadline = time.monotonic() + 120
    while len(front.seen) < 2:  # two answered; the third waits for its interval
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    partial = tmp_path / "s.partial.json"
    assert out.read_bytes() == earlier and f"written to {partial}; {out} is as it was" in stdout
    doc = validate(json.loads(partial.read_text()))
    assert doc["interrupted"] and not doc["complete"]
    assert doc["executed"]["text"] == "onnxruntime fp32"  # what ran the head
    assert doc["answered"] == len(front.seen) == doc["images"] >= 2
    assert doc["latency_ms"]["total"]["n"] == doc["answered"]
    sent = list(front.seen)
    rerun = stream(options(split_bundle, front.url, tmp_path, images, queue=queue))
    assert rerun["complete"] and rerun["answered"] == 6 and not rerun["interrupted"]
    assert sorted(front.seen[len(sent):]) == sorted(set(front.seen) - set(sent))  # no resend
    assert len(front.seen) == 6
