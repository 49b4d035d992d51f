"""The device client: queue on disk, request ids, retries with backoff; against a real server
logic (sc2deploy.serving.service) behind the standard library's HTTP server (the Ray Serve
front is tested in tests/serving/test_ray_app.py)."""

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sc2deploy.errors import Refused, UsageError
from sc2deploy.measure.stream import StreamOptions, answered_top1, read_token, stream
from sc2deploy.preprocess import sample_images
from sc2deploy.results.schema import validate
from sc2deploy.serving.service import ServeOptions, Service, refusal_body

TOKEN = "stream-test-token-0123456789"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for path in sample_images()[:6]:
        shutil.copy(path, folder / path.name)
    return folder


class Front:
    """Service behind http.server; ``faults`` lists what happens to the next requests:
    "drop" (answered, then the connection is closed before the reply), "503"."""

    def __init__(self, bundle):
        self.service = Service(ServeOptions(bundle=bundle.path), TOKEN)
        self.faults, self.seen = [], []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fault = front.faults.pop(0) if front.faults else None
                front.seen.append(self.headers["X-Request-Id"])
                if fault == "503":
                    return self._reply(503, {"error": "restarting"})
                try:
                    pending = front.service.prepare(
                        {k.lower(): v for k, v in self.headers.items()}, body)
                    status, reply = 200, front.service.run_batch([pending])[0]
                except Refused as exc:
                    status, reply = exc.status, refusal_body(exc)
                if fault == "drop":
                    self.close_connection = True
                    return
                self._reply(status, reply)

            def _reply(self, status, reply):
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.service.close()


@pytest.fixture
def front(split_bundle):
    f = Front(split_bundle)
    yield f
    f.close()


def options(bundle, url, tmp_path, images, **kw):
    return StreamOptions(bundle=bundle.path, server=url, token=kw.pop("token", TOKEN),
                         queue=tmp_path / "queue.json", images=images, backoff_s=0.01,
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


def test_lost_replies_and_503s_are_retried_without_duplicates(split_bundle, front, images,
                                                               tmp_path):
    reference = answered_top1(stream(options(split_bundle, front.url, tmp_path / "a", images)))
    front.faults = ["drop", "503", "503", None, "drop"]
    doc = stream(options(split_bundle, front.url, tmp_path / "b", images))
    assert doc["complete"] and doc["answered"] == 6 and doc["duplicates"] == 0
    assert doc["retries"] == 4 and doc["replayed"] == 2  # dropped replies answered from cache
    assert answered_top1(doc) == reference
    assert len(front.seen) == 6 + 6 + 4


def test_a_stopped_server_loses_nothing_and_a_rerun_resumes_the_queue(split_bundle, front,
                                                                      images, tmp_path):
    down = "http://127.0.0.1:9"  # discard port: connection refused
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
