"""What the server does with a request, engine-free: refuse, decode, run the tasks, remember.

::

    headers, body ─ token? 401 ─ size? 413 ─ request id? 400 ─ replay? cached answer
                  ─ bundle / prior digest? 409 ─ container, decoding? 400 (CodecError's text)
                  (a family of bundles: routed to the one whose prior coded the container)
                  ─ Pending ─ run_batch: every task ─ answer
    tasks: tail.onnx, then every tail-NAME.onnx | else decoder.onnx | else decoding alone

A refusal decodes nothing and leaves the service as it was: the next request is served.
"""

import hashlib
import math
import time
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.codec import container
from sc2deploy.errors import CodecError, Refused, UsageError
from sc2deploy.log import logger
from sc2deploy.measure.ladder import open_family
from sc2deploy.measure.stream import BUNDLE_HEADER, PROTOCOL, REQUEST_ID, REQUEST_ID_HEADER
from sc2deploy.serving import batching
from sc2deploy.serving.auth import authorized
from sc2deploy.targets import NAMED_TAIL, load_server_runner, server_parts, tail_parts
from sc2deploy.targets.encoding import latent_codec


@dataclass(frozen=True)
class ServeOptions:
    """How ``sc2deploy serve`` serves a bundle."""

    bundle: Path
    family: Tuple[Path, ...] = ()  # more bundles of bundle's family (a ladder's other points)
    host: str = "127.0.0.1"
    port: int = 8000
    replicas: int = 1
    max_batch: int = 8  # 1: no batching
    batch_wait_ms: float = 5.0
    max_ongoing: int = 64  # requests a replica holds at once (Ray Serve's default is 5)
    max_bytes: int = 1 << 20  # larger bodies: 413
    top_k: int = 5
    coder: Optional[str] = None
    threads: Optional[int] = 1  # onnxruntime threads per replica
    cache_size: int = 4096  # answers kept per replica for replayed request ids
    ray_address: Optional[str] = None  # join this Ray cluster (None: start a local one)
    tail_batch: str = "auto"  # batching.MODES: how a batch runs through each model

    @property
    def bundles(self) -> Tuple[Path, ...]:
        return (Path(self.bundle), *map(Path, self.family))

    def __post_init__(self):
        checks = {"--port": 0 <= self.port <= 65535, "--replicas": self.replicas >= 1,
                  "--max-batch": self.max_batch >= 1,
                  "--max-ongoing": self.max_ongoing >= self.max_batch,
                  "--batch-wait-ms": self.batch_wait_ms >= 0,
                  "--max-bytes": self.max_bytes >= container.HEADER_SIZE,
                  "--top-k": self.top_k >= 1, "cache_size": self.cache_size >= 1,
                  "--tail-batch": self.tail_batch in batching.MODES}
        bad = [flag for flag, ok in checks.items() if not ok]
        if bad:
            raise UsageError(f"invalid serve options {', '.join(bad)} in {self}: expected a port "
                             "0-65535, replicas/max-batch/top-k >= 1, max ongoing >= max batch, "
                             f"batch wait >= 0 ms, tail batch one of {', '.join(batching.MODES)}, "
                             f"max bytes >= {container.HEADER_SIZE}")


@dataclass
class Pending:
    """A decoded request waiting for its batch."""

    request_id: str
    body_sha256: str
    latent: np.ndarray
    decode_ms: float
    answer: Optional[dict] = field(default=None)  # set for a replayed request id
    member: Optional["Member"] = field(default=None, repr=False)  # the bundle it is routed to


class ReplayCache:
    """Answers by request id, oldest forgotten first (bounded)."""

    def __init__(self, size: int):
        self.size = size
        self._answers: "OrderedDict[str, tuple]" = OrderedDict()

    def get(self, request_id: str, body_sha256: str) -> Optional[dict]:
        if request_id not in self._answers:
            return None
        sha, answer = self._answers[request_id]
        if sha != body_sha256:
            raise Refused(409, f"request id {request_id!r} was already used for another "
                               "container: give every image its own request id")
        self._answers.move_to_end(request_id)
        return {**answer, "replayed": True}

    def put(self, request_id: str, body_sha256: str, answer: dict) -> None:
        self._answers[request_id] = (body_sha256, answer)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)


class Member:
    """One bundle a replica serves: its codec, prior digest, latent shape and runners."""

    def __init__(self, bundle: Bundle, options: "ServeOptions", stack: ExitStack):
        self.path, self.name = bundle.path, bundle.path.name
        self.digest = bundle.manifest["manifest_sha256"]
        self.codec = latent_codec(bundle, options.coder)
        self.prior16 = container.prior_digest16(self.codec.prior.digest())
        self.shape = tuple(bundle.model["latent"]["shape"])
        self.tasks = {part: stack.enter_context(load_server_runner(bundle, part, options.threads))
                      for part in _tasks(bundle)}
        latents = bundle.reference()["symbols"] if self.tasks else None
        self.batching = {part: batching.choose(runner, latents, options.max_batch,
                                               options.tail_batch)
                         for part, runner in self.tasks.items()}
        for part, choice in self.batching.items():
            logger.info("%s %s: %s (%s)", self.name, part, choice["mode"], choice["why"])
        for runner in self.tasks.values():  # the first run allocates: no request waits for it
            batching.run(runner, latents[:1].astype(np.float32), "single")

    def info(self) -> dict:
        return {"bundle": self.digest, "name": self.name, "prior_digest": f"{self.prior16:04x}",
                "tasks": list(self.tasks) or ["decode"], "latent_shape": list(self.shape),
                "batching": self.batching}


class Service:
    """One replica's state: each bundle's codec and server-side runners (a family of bundles
    is routed by the prior digest in the container's header), the replay cache."""

    def __init__(self, options: ServeOptions, token: str):
        self.options, self.token = options, token
        bundles = open_family(options.bundles)
        self._stack = ExitStack()
        try:
            self.members = [Member(bundle, options, self._stack) for bundle in bundles]
        except BaseException:
            self._stack.close()
            raise
        self.by_prior = {m.prior16: m for m in self.members}
        self.by_digest = {m.digest: m for m in self.members}
        first = self.members[0]  # a single bundle's server: as before
        self.digest, self.codec, self.shape = first.digest, first.codec, first.shape
        self.tasks, self.batching = first.tasks, first.batching
        self.cache = ReplayCache(options.cache_size)
        self.decoded = 0  # requests decoded (not replayed), for tests and logs

    def close(self) -> None:
        self._stack.close()

    def info(self) -> dict:
        return {"protocol": PROTOCOL, "bundle": self.digest, "tasks": list(self.tasks) or
                ["decode"], "latent_shape": list(self.shape), "coder": self.codec.coder,
                "max_bytes": self.options.max_bytes, "batching": self.batching,
                "bundles": [m.info() for m in self.members]}

    def check_auth(self, headers: Mapping[str, str]) -> None:
        if not authorized(headers.get("authorization"), self.token):
            raise Refused(401, "missing or wrong bearer token: send 'Authorization: Bearer "
                               "TOKEN' with the token `sc2deploy serve` printed or wrote")

    def check_size(self, declared: Optional[int]) -> None:
        if declared is not None and declared > self.options.max_bytes:
            raise Refused(413, f"request body of {declared} bytes; this server accepts at most "
                               f"{self.options.max_bytes} (sc2deploy serve --max-bytes)")

    def prepare(self, headers: Mapping[str, str], body: bytes) -> Pending:
        """Check and decode one request (headers with lower-case names); raises Refused."""
        self.check_auth(headers)
        self.check_size(len(body))
        request_id = headers.get(REQUEST_ID_HEADER.lower(), "")
        if not REQUEST_ID.fullmatch(request_id):
            raise Refused(400, f"{REQUEST_ID_HEADER} {request_id[:80]!r}: expected 1-64 "
                               "characters of A-Z a-z 0-9 . _ : -")
        sha = hashlib.sha256(body).hexdigest()
        cached = self.cache.get(request_id, sha)
        if cached is not None:
            return Pending(request_id, sha, np.zeros(0), 0.0, cached)
        declared = headers.get(BUNDLE_HEADER.lower(), "")
        if declared not in self.by_digest:
            raise Refused(409, f"{BUNDLE_HEADER} {declared[:80]!r}: this server serves bundle"
                               f"{'s' if len(self.members) > 1 else ''} {self._digests()}; "
                               "encode with one of them")
        t0 = time.perf_counter_ns()
        try:
            head, _ = container.unpack(body)
            member = self._route(head.prior_digest, self.by_digest[declared])
            latent = member.codec.decode(body, member.shape)
        except CodecError as exc:
            raise Refused(400, f"invalid container: {exc}") from None
        self.decoded += 1
        return Pending(request_id, sha, latent, (time.perf_counter_ns() - t0) / 1e6, member=member)

    def _route(self, prior_digest: int, declared: "Member") -> "Member":
        """The bundle whose prior coded the container; it must be the one the header names."""
        member = self.by_prior.get(prior_digest)
        if member is None:
            priors = ", ".join(f"{m.prior16:04x} ({m.name})" for m in self.members)
            raise Refused(409, f"container coded with prior {prior_digest:04x}, this server's "
                               f"prior{'s are' if len(self.members) > 1 else ' is'} {priors}: "
                               "encode with a bundle the server serves (GET /v1/info lists them)")
        if member is not declared:
            raise Refused(409, f"container coded with the prior of bundle {member.name} "
                               f"({member.digest[:12]}), but {BUNDLE_HEADER} names "
                               f"{declared.name} ({declared.digest[:12]}): send the digest of "
                               "the bundle that encoded it")
        return member

    def _digests(self) -> str:
        return ", ".join(m.digest if len(self.members) == 1 else f"{m.digest} ({m.name})"
                         for m in self.members)

    def run_batch(self, batch: Sequence[Pending]) -> List[dict]:
        """Answers of a batch, in order; new answers are remembered for replays. Each bundle's
        tasks run on its new latents, at once or one by one (``batching``); a task's ms is
        the whole group's, which each image waited."""
        computed: Dict[int, tuple] = {}
        for member in self.members:
            group = [k for k, item in enumerate(batch)
                     if item.answer is None and (item.member or self.members[0]) is member]
            if group:
                results = self._run(member, [batch[k].latent for k in group])
                computed.update(zip(group, results))
        answers = []
        for k, item in enumerate(batch):
            if item.answer is not None:
                answers.append(item.answer)
                continue
            outputs, task_ms = computed[k]
            member = item.member or self.members[0]
            answer = {"protocol": PROTOCOL, "request_id": item.request_id,
                      "bundle": member.digest, "outputs": outputs, "batch_size": len(batch),
                      "replayed": False,
                      "server_ms": {"decode": item.decode_ms, **task_ms,
                                    "total": item.decode_ms + sum(task_ms.values())}}
            self.cache.put(item.request_id, item.body_sha256, answer)
            answers.append(answer)
        return answers

    def _run(self, member: Member, latents: Sequence[np.ndarray]) -> List[tuple]:
        """(outputs, task ms) per latent."""
        if not member.tasks:
            return [([{"task": "decode", "latent_shape": list(z.shape)}], {}) for z in latents]
        x = np.stack(latents).astype(np.float32)
        per_image = [([], {}) for _ in latents]
        for part, runner in member.tasks.items():
            t0 = time.perf_counter_ns()
            y = batching.run(runner, x, member.batching[part]["mode"])
            ms = (time.perf_counter_ns() - t0) / 1e6
            for (outputs, task_ms), row in zip(per_image, y):
                task_ms[part] = ms
                outputs.append(_output(part, row[None], self.options.top_k))
        return per_image


def _tasks(bundle: Bundle) -> List[str]:
    """The main tail then every named tail; with no tail the decoder, else nothing (decoding
    alone)."""
    return tail_parts(bundle) or [p for p in server_parts(bundle) if p == "decoder"]


def _output(part: str, y: np.ndarray, top_k: int) -> dict:
    if part != "tail" and not part.startswith(NAMED_TAIL):
        return {"task": part, "shape": list(y.shape)}
    logits = y.reshape(-1).astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:top_k]
    return {"task": "tail", "name": part[len(NAMED_TAIL):] if part != "tail" else "default",
            "top_k": [{"class": int(c), "probability": float(p[c])}
                      for c in order if math.isfinite(p[c])]}


def refusal_body(exc: Refused, request_id: str = "") -> Dict[str, object]:
    return {"error": str(exc), "status": exc.status, "request_id": request_id}
