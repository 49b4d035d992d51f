"""``sc2deploy stream``: the device end of the split pipeline, measured end to end (torch-free).

Per image::

    encode (load, preprocess, head, code) ─ queue (on disk) ─ POST ─ server ─ reply
    |◀──────────── encode ────────────▶|         |◀──── round trip ─────────────▶|
                                                  transfer = round trip − server's own ms

The wire format (one definition, used by :mod:`sc2deploy.serving` too)::

    POST /v1/infer                       body: one container (docs/bitstream.md)
    Authorization: Bearer TOKEN          X-Request-Id: [A-Za-z0-9._:-]{1,64}
    X-Sc2deploy-Bundle: the bundle's manifest_sha256
    200 → JSON {protocol, request_id, bundle, outputs: [{task, ...}], server_ms, batch_size,
                replayed}
    4xx → JSON {error, status, request_id}: refused, never retried
    5xx, 503, a dropped connection → retried with exponential backoff, same request id

The queue file holds every encoded container until its answer is in: a restarted
server or a dropped link loses nothing, and the request id makes a resent image count once.
"""

import base64
import http.client
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from sc2deploy import atomic
from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.log import logger
from sc2deploy.measure import conditions
from sc2deploy.measure.links import load_link
from sc2deploy.measure.progress import Progress
from sc2deploy.measure.stats import samples_entry, summarize
from sc2deploy.preprocess import list_images, sample_images
from sc2deploy.results.schema import header, utc_now
from sc2deploy.targets import load_runner
from sc2deploy.targets.encoding import latent_codec

PROTOCOL = 1
INFER_PATH = "/v1/infer"
INFO_PATH = "/v1/info"
REQUEST_ID_HEADER = "X-Request-Id"
BUNDLE_HEADER = "X-Sc2deploy-Bundle"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TOKEN_ENV = "SC2DEPLOY_TOKEN"
STAGES = ("encode", "transfer", "server", "total")
QUEUE_VERSION = 1


@dataclass(frozen=True)
class StreamOptions:
    """What ``sc2deploy stream`` sends, where, and how hard it insists."""

    bundle: Path
    server: str  # http://HOST:PORT
    token: str = field(repr=False)  # never printed
    queue: Path  # the queue file (JSON, rewritten atomically after every change)
    images: Optional[Path] = None  # default: the bundled samples
    target: str = "onnx"
    coder: Optional[str] = None
    max_retries: int = 30  # attempts after the first, per image
    backoff_s: float = 0.1  # first wait; doubles per retry up to max_backoff_s
    max_backoff_s: float = 2.0
    timeout_s: float = 60.0  # per attempt
    interval_s: float = 0.0  # at most one image per interval (a camera's frame period)
    link: Optional[str] = None  # a link model (name or file) to set next to the measured transfer
    label: Optional[str] = None
    progress: bool = True

    def __post_init__(self):
        split = urlsplit(self.server)
        if split.scheme != "http" or not split.hostname:
            raise UsageError(f"--server {self.server!r}: expected http://HOST:PORT (the address "
                             "`sc2deploy serve` prints)")
        if self.max_retries < 0 or self.backoff_s <= 0 or self.max_backoff_s < self.backoff_s \
                or self.timeout_s <= 0 or self.interval_s < 0:
            raise UsageError("retries must be >= 0 and 0 < backoff <= max backoff, timeout > 0, "
                             f"interval >= 0; got {self}")


def read_token(token_file: Optional[Path]) -> str:
    """The bearer token: from ``token_file``, else the SC2DEPLOY_TOKEN environment variable."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the token file {token_file}: {exc}; give the file "
                             "`sc2deploy serve` wrote (--token-file)") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no token: give --token-file FILE or set {TOKEN_ENV} (the server "
                         "prints where it wrote its token)")
    return token


class Queue:
    """Encoded images waiting for (or holding) their answer, persisted after every change."""

    def __init__(self, path: Path, bundle_digest: str):
        self.path = Path(path)
        atomic.ensure_writable(self.path.parent, "the folder of the queue file")
        self.entries: Dict[str, dict] = {}  # image name -> entry
        self.run = secrets.token_hex(6)
        if self.path.is_file():
            data = json.loads(self.path.read_text())
            if data.get("version") != QUEUE_VERSION or data.get("bundle") != bundle_digest:
                raise UsageError(f"queue {self.path} belongs to another bundle or sc2deploy; "
                                 "remove it or give another --queue")
            self.run, self.entries = data["run"], data["entries"]
        self.bundle = bundle_digest

    def add(self, image: str, container: bytes, encode_ms: float) -> dict:
        entry = {"request_id": f"{self.run}-{len(self.entries):06d}", "encode_ms": encode_ms,
                 "bytes": len(container), "container": base64.b64encode(container).decode(),
                 "answer": None, "round_trip_ms": None, "status": None, "attempts": 0}
        self.entries[image] = entry
        self.save()
        return entry

    def save(self) -> None:
        atomic.write_text(self.path, json.dumps({"version": QUEUE_VERSION, "run": self.run,
                                                 "bundle": self.bundle,
                                                 "entries": self.entries}))


class Client:
    """One persistent HTTP connection to the server; reconnects after any failure."""

    def __init__(self, options: StreamOptions, bundle_digest: str):
        split = urlsplit(options.server)
        self.host, self.port = split.hostname, split.port or 80
        self.timeout = options.timeout_s
        self.headers = {"Authorization": f"Bearer {options.token}",
                        "Content-Type": "application/octet-stream", BUNDLE_HEADER: bundle_digest}
        self._conn: Optional[http.client.HTTPConnection] = None

    def post(self, request_id: str, body: bytes) -> Tuple[int, dict]:
        """(status, JSON body); raises OSError/HTTPException when the link or server drops."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request("POST", INFER_PATH, body,
                               {**self.headers, REQUEST_ID_HEADER: request_id})
            response = self._conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, {"error": raw[:200].decode("utf-8", "replace")}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def send(client: Client, entry: dict, options: StreamOptions) -> int:
    """Send until answered or refused; returns the retries it took."""
    body = base64.b64decode(entry["container"])
    retries = 0
    while True:
        entry["attempts"] += 1
        t0 = time.perf_counter_ns()
        try:
            status, reply = client.post(entry["request_id"], body)
        except (OSError, http.client.HTTPException) as exc:
            status, reply = None, {"error": f"{type(exc).__name__}: {exc}"}
        elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
        if status == 200 and reply.get("request_id") == entry["request_id"]:
            entry.update(answer=reply, round_trip_ms=elapsed_ms, status=200)
            return retries
        if status is not None and 400 <= status < 500 and status != 429:
            entry.update(status=status, answer={"error": reply.get("error", "")})
            logger.error("request %s refused with %d: %s", entry["request_id"], status,
                         reply.get("error", ""))
            return retries
        if retries >= options.max_retries:
            entry["status"] = status or 0
            return retries
        wait = min(options.max_backoff_s, options.backoff_s * 2 ** retries)
        logger.info("request %s: %s; retry in %.2f s", entry["request_id"],
                    status or reply["error"], wait)
        retries += 1
        time.sleep(wait)


def stream(options: StreamOptions) -> dict:
    """Encode, send and measure every image; return a results document of kind ``stream``."""
    created = utc_now()
    bundle = Bundle.open(options.bundle)
    digest = bundle.manifest["manifest_sha256"]
    images = list_images(options.images) if options.images else sample_images()
    codec = latent_codec(bundle, options.coder)
    pre = bundle.preprocessing()
    link = load_link(options.link) if options.link else None
    queue = Queue(options.queue, digest)
    client = Client(options, digest)
    progress = Progress("stream", len(images), enabled=options.progress)
    retries = 0
    try:
        with load_runner(bundle, options.target) as runner:
            for i, path in enumerate(images):
                started = time.monotonic()
                entry = queue.entries.get(path.name)
                if entry is None:
                    t0 = time.perf_counter_ns()
                    data = codec.encode(runner.infer(pre(path))[0])
                    entry = queue.add(path.name, data, (time.perf_counter_ns() - t0) / 1e6)
                if entry["status"] != 200 and not _refused(entry):
                    retries += send(client, entry, options)
                    queue.save()
                progress.update(i + 1)
                time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))
    finally:
        progress.close()
        client.close()
    doc = _document(options, bundle, created, images, queue, retries, codec.coder)
    doc["link"] = link.summary([p["bytes"] for p in doc["predictions"]]) if link else None
    return doc


def _refused(entry: dict) -> bool:
    return entry["status"] is not None and 400 <= entry["status"] < 500


def _document(options, bundle, created, images, queue: Queue, retries: int, coder: str) -> dict:
    entries = [queue.entries[p.name] for p in images]
    answered = [e for e in entries if e["status"] == 200]
    ids = [e["answer"]["request_id"] for e in answered]
    encode = [e["encode_ms"] for e in answered]
    server = [e["answer"]["server_ms"]["total"] for e in answered]
    trip = [e["round_trip_ms"] for e in answered]
    sizes = np.array([e["bytes"] for e in entries], dtype=np.float64)
    transfer = np.subtract(trip, server)
    total = np.add(encode, trip)
    return {
        **header("stream", len(answered) == len(entries), options.label or
                 f"{bundle.model['name']}/{options.target}/stream", created, bundle),
        "target": options.target, "coder": coder, "server": options.server,
        "images": len(entries), "answered": len(answered),
        "refused": sum(_refused(e) for e in entries),
        "duplicates": len(ids) - len(set(ids)), "retries": retries,
        "replayed": sum(bool(e["answer"].get("replayed")) for e in answered),
        "latency_ms": {"encode": summarize(encode), "transfer": summarize(transfer),
                       "server": summarize(server), "total": summarize(total)},
        "samples": samples_entry({"encode": encode, "transfer": transfer, "server": server,
                                  "total": total}),
        "bytes": {"mean": float(sizes.mean()), "p50": float(np.percentile(sizes, 50)),
                  "p99": float(np.percentile(sizes, 99)), "min": float(sizes.min()),
                  "max": float(sizes.max())},
        "predictions": [_prediction(p.name, queue.entries[p.name]) for p in images],
        "conditions": conditions.collect(),
    }


def _prediction(image: str, entry: dict) -> dict:
    answer = entry["answer"] or {}
    return {"image": image, "request_id": entry["request_id"], "bytes": entry["bytes"],
            "status": entry["status"], "round_trip_ms": entry["round_trip_ms"],
            "server_ms": (answer.get("server_ms") or {}).get("total"),
            "attempts": entry["attempts"], "outputs": answer.get("outputs")}


def answered_top1(doc: dict) -> List[Optional[int]]:
    """Top-1 class of the first task per image (None: no classification answer)."""
    top = []
    for p in doc["predictions"]:
        outputs = p["outputs"] or [{}]
        top.append(outputs[0]["top_k"][0]["class"] if "top_k" in outputs[0] else None)
    return top
