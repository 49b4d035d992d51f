"""``sc2deploy stream``: the device end of the split pipeline, measured end to end (torch-free).

Per image::

    encode (load, preprocess, head, code) ─ queue (on disk) ─ POST ─ server ─ reply
    |◀──────────── encode ────────────▶|         |◀──── round trip ─────────────▶|
                                                  transfer = round trip − server's own ms

The request, its answers and refusals are :mod:`sc2deploy.wire`: an answer or a refusal
(a 4xx in sc2deploy's own format) is final; 5xx, 429, a 4xx in another format (a proxy
before the app is up) or a dropped connection is retried with exponential backoff under the
same request id.

The queue file holds every encoded container until its answer is in: a restarted
server or a dropped link loses nothing, and the request id makes a resent image count once.

From a camera (``camera``/``camera_command``), each image is the newest frame when the
previous one is answered (frames in between are skipped and counted, see
:mod:`sc2deploy.camera.source`); its age at encoding is measured. ``frames`` counts the
queue's frames, so a rerun sends what is pending and then captures the rest.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from sc2deploy import atomic, wire
from sc2deploy.bundle import Bundle
from sc2deploy.camera.source import open_camera
from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import CameraEnded, CameraError, Interrupted, UsageError
from sc2deploy.log import logger
from sc2deploy.measure import conditions
from sc2deploy.measure.links import load_link
from sc2deploy.measure.options import CODER_HELP
from sc2deploy.measure.progress import Progress
from sc2deploy.measure.stats import samples_entry, summarize
from sc2deploy.options import Option, ms_to_s, option, s_to_ms, validate
from sc2deploy.preprocess import list_images, sample_images
from sc2deploy.results.schema import header, utc_now
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.encoding import latent_codec

STAGES = ("encode", "transfer", "server", "total")
QUEUE_VERSION = 1
SEGMENT_HEADERS_BYTES = 66  # TCP (with timestamps), IPv4 and Ethernet headers of one segment
# Linux's struct tcp_info (append-only ABI): tcpi_total_retrans (u32); from 4.19 on
# tcpi_bytes_retrans (u64); from 5.3 on tcpi_dsack_dups (u32)
_TOTAL_RETRANS, _BYTES_RETRANS, _DSACK_DUPS = 100, 208, 216
RESENT_POLL_S = 0.005  # how often the wait for a resent segment's delivery looks


@dataclass(frozen=True)
class TcpCounts:
    """What TCP has sent again on a connection since it opened, and how many duplicates the
    peer has reported receiving (D-SACK; None where the kernel does not count them)."""

    resent_segments: int
    resent_bytes: int  # payload
    duplicates_seen: Optional[int]


def tcp_counts(sock) -> Optional[TcpCounts]:
    """The connection's :class:`TcpCounts`; None where the platform does not say (not
    Linux, a kernel before 4.19, not a TCP socket, a closed one)."""
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < _DSACK_DUPS:
        return None
    dups = struct.unpack_from("I", raw, _DSACK_DUPS)[0] if len(raw) >= _DSACK_DUPS + 4 else None
    return TcpCounts(struct.unpack_from("I", raw, _TOTAL_RETRANS)[0],
                     struct.unpack_from("Q", raw, _BYTES_RETRANS)[0], dups)


def read_token(token_file: Optional[Path]) -> str:
    """The bearer token: from ``token_file``, else the environment (``wire.TOKEN_ENV``)."""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the token file {token_file}: {exc}; give the file "
                             "`sc2deploy serve` wrote (--token-file)") from None
    else:
        token = os.environ.get(wire.TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no token: give --token-file FILE or set {wire.TOKEN_ENV} (the server "
                         "prints where it wrote its token)")
    return token


def frame_size(text: str) -> Tuple[int, int]:
    """``"640x480"`` → (640, 480) (``--camera-size``)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x480")


@dataclass(frozen=True)
class StreamOptions:
    """What ``sc2deploy stream`` sends, where, and how hard it insists. ``bundle`` None: the
    ladder's (:func:`sc2deploy.stream.adaptive.stream_ladder`); ``token`` None: from the
    environment (``wire.TOKEN_ENV``)."""

    server: str = option(flag="--server", required=True, metavar="URL", help="http://HOST:PORT")
    bundle: Optional[Path] = option(None, positional=True, nargs="?", type=Path,
                                    metavar="BUNDLE", help="bundle directory (or --ladder)")
    token: Optional[str] = field(default=None, repr=False, metadata={"option": Option(  # secret
        flag="--token-file", type=Path, metavar="FILE", parse=read_token,
        help=f"the server's token (default: ${wire.TOKEN_ENV})")})
    images: Optional[Path] = option(None, flag="--images", type=Path, metavar="DIR",
                                    help="images to send (default: the bundled samples)")
    target: str = option("onnx", flag="--target", metavar="TARGET",
                         help="artifact that runs the head (default: {default})")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    queue: Optional[Path] = option(  # the queue file (JSON, rewritten atomically after changes)
        None, flag="--queue", type=Path, metavar="FILE",
        help="the on-disk queue; a rerun resumes it (default: RESULTS.json.queue.json)")
    max_retries: int = option(30, flag="--max-retries", type=int, metavar="N",  # after the first
                              help="retries per image, with exponential backoff (default: "
                                   "{default})")
    interval_s: float = option(  # at most one image per interval (a camera's frame period)
        0.0, flag="--interval-ms", type=float, metavar="MS", parse=ms_to_s, show=s_to_ms,
        help="send at most one image per MS (a camera's frame period; default: 0)")
    link: Optional[str] = option(  # a link model to set next to the measured transfer
        None, flag="--link", metavar="NAME|FILE",
        help="a link model to record next to the measured transfer (as profile's --link), e.g. "
             "lora-ideal-37.5k")
    camera: Optional[str] = option(  # a V4L2 device (/dev/video0) or "-" (MJPEG on stdin)
        None, flag="--camera", metavar="DEVICE|-",
        help="send camera frames instead of images: a V4L2 device (/dev/video0; MJPEG, YUYV, "
             "RGB3 or GREY) or '-' for MJPEG on stdin")
    camera_command: Optional[str] = option(
        None, flag="--camera-command", metavar="CMD",
        help="send the MJPEG frames CMD writes to its stdout (a Pi CSI camera: rpicam-vid "
             "writing MJPEG to '-', see docs/serving.md, From a camera)")
    camera_size: Optional[Tuple[int, int]] = option(
        None, flag="--camera-size", type=frame_size, metavar="WxH",
        help="V4L2 frame size to ask for (the driver may adjust it)")
    camera_format: Optional[str] = option(  # default: see sc2deploy.camera.pixels
        None, flag="--camera-format", metavar="FOURCC",
        help="V4L2 pixel format (default: MJPG, then YUYV, RGB3, GREY, as offered)")
    frames: Optional[int] = option(  # with a camera: the frames to send, counting the queue's
        None, flag="--frames", type=int, metavar="N",
        help="with a camera: frames to send (a rerun sends the queue's pending frames, then "
             "captures the rest)")
    label: Optional[str] = option(None, flag="--label", metavar="NAME", help="name in reports")
    backoff_s: float = option(0.1, type=float, help="first wait before a retry; doubles per "
                                                    "retry up to max_backoff_s")
    max_backoff_s: float = option(2.0, type=float, help="longest wait before a retry")
    timeout_s: float = option(60.0, type=float, help="seconds per attempt")
    progress: bool = option(True, type=bool, help="progress bar on stderr")
    camera_stall_s: float = option(10.0, type=float,
                                   help="no frame for this long: the camera failed")

    @property
    def uses_camera(self) -> bool:
        return self.camera is not None or self.camera_command is not None

    def __post_init__(self):
        validate(self)
        if self.token is None:
            object.__setattr__(self, "token", read_token(None))
        split = urlsplit(self.server)
        if split.scheme != "http" or not split.hostname:
            raise UsageError(f"--server {self.server!r}: expected http://HOST:PORT (the address "
                             "`sc2deploy serve` prints)")
        if self.max_retries < 0 or self.backoff_s <= 0 or self.max_backoff_s < self.backoff_s \
                or self.timeout_s <= 0 or self.interval_s < 0:
            raise UsageError("retries must be >= 0 and 0 < backoff <= max backoff, timeout > 0, "
                             f"interval >= 0; got {self}")
        if self.camera is not None and self.camera_command is not None:
            raise UsageError("give --camera or --camera-command, not both")
        if self.uses_camera and self.images is not None:
            raise UsageError("give --images or a camera, not both")
        if self.uses_camera and (self.frames is None or self.frames < 1):
            raise UsageError(f"with a camera, give --frames N (N >= 1); got {self.frames}")
        if not self.uses_camera and self.frames is not None:
            raise UsageError("--frames is for a camera; with --images every image is sent")


class Queue:
    """Encoded images waiting for (or holding) their answer, persisted after every change."""

    def __init__(self, path: Optional[Path], bundle_digest: str):
        if path is None:
            raise UsageError("no queue file: give StreamOptions(queue=PATH) (sc2deploy stream: "
                             "--queue FILE, else RESULTS.json.queue.json)")
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

    def add(self, image: str, container: bytes, encode_ms: float, **extra) -> dict:
        entry = {"request_id": f"{self.run}-{len(self.entries):06d}", "encode_ms": encode_ms,
                 "bytes": len(container), "container": base64.b64encode(container).decode(),
                 "answer": None, "round_trip_ms": None, "status": None, "attempts": 0, **extra}
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
        self.headers = wire.request_headers(options.token, bundle_digest)
        self._conn: Optional[http.client.HTTPConnection] = None
        self.resent_bytes: Optional[int] = None  # on the wire, during the last answered post
        self._duplicates_due: Optional[int] = None  # D-SACKs once those bytes crossed

    def post(self, request_id: str, body: bytes, bundle: Optional[str] = None
             ) -> Tuple[int, dict]:
        """(status, JSON body); raises OSError/HTTPException when the link or server drops.
        ``bundle``: the digest of the bundle that encoded ``body`` (default: the client's).
        Where the platform says (:func:`tcp_counts`), ``resent_bytes`` is what TCP sent again
        meanwhile, headers included: bytes the link may still carry when the answer is in
        (:meth:`wait_for_resent`)."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {**self.headers, wire.REQUEST_ID_HEADER: request_id}
        if bundle is not None:
            headers[wire.BUNDLE_HEADER] = bundle
        before = tcp_counts(self._conn.sock) or TcpCounts(0, 0, 0)  # a new one starts at 0
        self.resent_bytes = self._duplicates_due = None
        try:
            self._conn.request("POST", wire.INFER_PATH, body, headers)
            sock = self._conn.sock  # a server that closes after its answer: gone after it
            response = self._conn.getresponse()
            after = tcp_counts(sock)  # the request is in: its counts are final
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if after is not None:
            segments = after.resent_segments - before.resent_segments
            self.resent_bytes = (after.resent_bytes - before.resent_bytes
                                 + SEGMENT_HEADERS_BYTES * segments)
            if segments and after.duplicates_seen is not None:
                self._duplicates_due = after.duplicates_seen + segments
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, {"error": raw[:200].decode("utf-8", "replace")}

    def wait_for_resent(self, expected_s: float) -> float:
        """After an answered post that TCP partly sent again: wait until the server has
        reported the duplicates (D-SACK: they have crossed the link), at most twice
        ``expected_s``; where it cannot be seen, ``expected_s``. Returns the seconds waited."""
        if expected_s <= 0:
            return 0.0
        start = time.monotonic()
        due, self._duplicates_due = self._duplicates_due, None
        while True:
            elapsed = time.monotonic() - start
            counts = tcp_counts(self._conn.sock) if self._conn is not None else None
            if due is None or counts is None or counts.duplicates_seen is None:
                time.sleep(max(0.0, expected_s - elapsed))  # cannot be seen: the expected time
                break
            if counts.duplicates_seen >= due or elapsed >= 2 * expected_s:
                break
            time.sleep(RESENT_POLL_S)
        return time.monotonic() - start

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
            status, reply = client.post(entry["request_id"], body, entry.get("bundle"))
        except (OSError, http.client.HTTPException) as exc:
            status, reply = None, {"error": f"{type(exc).__name__}: {exc}"}
        elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
        if wire.is_answer(status, reply, entry["request_id"]):
            entry.update(answer=reply, round_trip_ms=elapsed_ms, status=status)
            if client.resent_bytes is not None:
                entry["resent_bytes"] = client.resent_bytes
            return retries
        if wire.is_refusal(status, reply):
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
    if options.bundle is None:
        raise UsageError("no bundle to stream: give StreamOptions(bundle=...) (sc2deploy stream "
                         "BUNDLE), or a ladder to stream_ladder")
    created = utc_now()
    bundle = Bundle.open(options.bundle)
    digest = bundle.manifest["manifest_sha256"]
    images = None
    if not options.uses_camera:
        images = list_images(options.images) if options.images else sample_images()
    codec = latent_codec(bundle, options.coder)
    pre = bundle.preprocessing()
    link = load_link(options.link) if options.link else None
    queue = Queue(options.queue, digest)
    client = Client(options, digest)
    total = options.frames if options.uses_camera else len(images)
    progress = Progress("stream", total, enabled=options.progress)
    sender = Sender(client, queue, options, progress)
    camera = None
    with sender.sending(), load_runner(bundle, options.target) as runner:
        if options.uses_camera:
            camera = _from_camera(options, sender, queue, runner, codec, pre)
        else:
            for path in images:
                started = time.monotonic()
                if path.name not in queue.entries:
                    t0 = time.perf_counter_ns()
                    data = codec.encode(runner.infer(pre(path))[0])
                    queue.add(path.name, data, (time.perf_counter_ns() - t0) / 1e6)
                sender.send(path.name)
                time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))
    doc = sender.document(options, bundle, created, codec.coder, link, total)
    if camera is not None:
        doc["camera"] = camera
    return doc


class Sender:
    """Sends a queued image unless it is answered or refused; counts retries and progress.
    ``sending()`` wraps the send loop, ``document()`` makes the results of what was sent
    (the same for a fixed point, a camera and an adaptive ladder)."""

    def __init__(self, client: Client, queue: Queue, options: StreamOptions, progress):
        self.client, self.queue, self.options, self.progress = client, queue, options, progress
        self.retries = self.done = 0
        self.names: List[str] = []  # in the order sent
        self.interrupted = False

    @contextmanager
    def sending(self):
        """Around the send loop: an interrupt (Ctrl-C; SIGTERM where the CLI turns it into one)
        ends it, keeping what was measured and saving the queue, whose rerun sends the rest;
        the progress bar and the connection are closed either way."""
        try:
            yield self
        except KeyboardInterrupt:
            self.interrupted = True
            self.queue.save()
        finally:
            self.progress.close()
            self.client.close()

    def document(self, options: StreamOptions, bundle: Bundle, created: str, coder: str, link,
                 total: int) -> dict:
        """The ``stream`` results of what was sent (Interrupted if nothing was): complete when
        every one of ``total`` images was sent and answered, uninterrupted."""
        if not self.names:
            raise Interrupted(f"interrupted before any image was sent: no results written; the "
                              f"queue {options.queue} keeps what was encoded")
        doc = _document(options, bundle, created, self.names, self.queue, self.retries, coder)
        doc["link"] = link.summary([p["bytes"] for p in doc["predictions"]]) if link else None
        doc["interrupted"] = self.interrupted
        doc["executed"] = get_target(options.target).executed()
        doc["complete"] = doc["complete"] and not self.interrupted and len(self.names) >= total
        return doc

    def send(self, name: str) -> None:
        self.names.append(name)
        entry = self.queue.entries[name]
        if entry["status"] != wire.OK and not refused(entry):
            self.retries += send(self.client, entry, self.options)
            self.queue.save()
        self.done += 1
        self.progress.update(self.done)


MAX_UNDECODABLE = 10  # frames in a row that do not decode: the camera is broken


def _from_camera(options: StreamOptions, sender: Sender, queue: Queue, runner, codec, pre):
    """Send the queue's pending frames, then capture the rest; the camera's summary."""
    names = [n for n, e in queue.entries.items() if "frame_age_ms" in e]
    for name in names:
        sender.send(name)
    undecodable = in_a_row = 0
    ended = None
    with open_camera(options.camera, options.camera_command, options.camera_size,
                     options.camera_format, options.camera_stall_s) as capture:
        while len(names) < options.frames:
            started = time.monotonic()
            try:
                frame = capture.next()
            except CameraEnded as exc:
                ended = str(exc)
                logger.error("camera: %s after %d of %d frames; the results say so", exc,
                             len(names), options.frames)
                break
            t0 = time.perf_counter_ns()
            age_ms = (time.monotonic_ns() - frame.captured_ns) / 1e6
            try:
                image = capture.decode(frame.data)
            except CameraError as exc:
                undecodable, in_a_row = undecodable + 1, in_a_row + 1
                logger.warning("camera frame %d skipped: %s", frame.sequence, exc)
                if in_a_row >= MAX_UNDECODABLE:
                    raise CameraError(f"{in_a_row} camera frames in a row did not decode; "
                                      f"the last: {exc}") from None
                continue
            in_a_row = 0
            data = codec.encode(runner.infer(pre.transform(image))[0])
            name = f"frame-{len(queue.entries):06d}"
            queue.add(name, data, (time.perf_counter_ns() - t0) / 1e6, frame_age_ms=age_ms,
                      frame=frame.sequence, captured_utc=utc_now())
            names.append(name)
            sender.send(name)
            time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))
        summary = capture.summary()
    ages = [queue.entries[n]["frame_age_ms"] for n in names]
    summary.update(ended=ended or summary["ended"], undecodable=undecodable,
                   frame_age_ms=summarize(ages))
    return summary


def refused(entry: dict) -> bool:
    """Was the queued image refused (or its last try a 4xx)?"""
    return entry["status"] is not None and 400 <= entry["status"] < 500


def _document(options, bundle, created, names, queue: Queue, retries: int, coder: str) -> dict:
    entries = [queue.entries[n] for n in names]
    answered = [e for e in entries if e["status"] == wire.OK]
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
        "refused": sum(refused(e) for e in entries),
        "duplicates": len(ids) - len(set(ids)), "retries": retries,
        "replayed": sum(bool(e["answer"].get("replayed")) for e in answered),
        "latency_ms": {"encode": summarize(encode), "transfer": summarize(transfer),
                       "server": summarize(server), "total": summarize(total)},
        "samples": samples_entry({"encode": encode, "transfer": transfer, "server": server,
                                  "total": total}),
        "bytes": {"mean": float(sizes.mean()), "p50": float(np.percentile(sizes, 50)),
                  "p99": float(np.percentile(sizes, 99)), "min": float(sizes.min()),
                  "max": float(sizes.max())},
        "predictions": [_prediction(n, queue.entries[n]) for n in names],
        "conditions": conditions.collect(),
    }


def _prediction(image: str, entry: dict) -> dict:
    answer = entry["answer"] or {}
    extra = {k: entry[k] for k in ("frame", "frame_age_ms", "captured_utc", "adaptive",
                                   "resent_bytes") if k in entry}
    if answer.get("served_by"):
        extra["served_by"] = answer["served_by"]
    return {"image": image, "request_id": entry["request_id"], "bytes": entry["bytes"],
            "status": entry["status"], "round_trip_ms": entry["round_trip_ms"],
            "server_ms": (answer.get("server_ms") or {}).get("total"),
            "attempts": entry["attempts"], "outputs": answer.get("outputs"), **extra}


def answered_top1(doc: dict) -> List[Optional[int]]:
    """Top-1 class of the first task per image (None: no classification answer)."""
    top = []
    for p in doc["predictions"]:
        outputs = p["outputs"] or [{}]
        top.append(outputs[0]["top_k"][0]["class"] if "top_k" in outputs[0] else None)
    return top
