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

from sc2deploy import wire
from sc2deploy.bundle import Bundle
from sc2deploy.codec import container
from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import CodecError, Refused, UsageError
from sc2deploy.log import logger
from sc2deploy.measure.ladder import open_family
from sc2deploy.measure.options import CODER_HELP
from sc2deploy.options import option, validate
from sc2deploy.serving import batching
from sc2deploy.serving.auth import authorized
from sc2deploy.targets import NAMED_TAIL, load_server_runner, server_parts, tail_parts
from sc2deploy.targets.encoding import latent_codec


@dataclass(frozen=True)
class ServeOptions:
    """How ``sc2deploy serve`` serves a bundle, or the points of one ladder."""

    bundles: Tuple[Path, ...] = option(  # one bundle, or one ladder's points (a family)
        positional=True, nargs="+", type=Path, metavar="BUNDLE",
        help="bundle directory; several: the points of one ladder (same input and task), each "
             "container routed to the bundle whose prior coded it")
    host: str = option("127.0.0.1", flag="--host", metavar="HOST",
                       help="address to bind (default: {default})")
    port: int = option(8000, flag="--port", type=int, metavar="PORT",
                       help="port (default: {default})")
    replicas: int = option(1, flag="--replicas", type=int, metavar="N",
                           help="replicas (default: {default})")
    max_batch: int = option(8, flag="--max-batch", type=int, metavar="N",  # 1: no batching
                            help="dynamic batching: at most N requests per batch; 1: none "
                                 "(default: {default})")
    batch_wait_ms: float = option(5.0, flag="--batch-wait-ms", type=float, metavar="MS",
                                  help="longest wait for a batch to fill (default: {default})")
    tail_batch: str = option(  # how a batch runs through each model
        "auto", flag="--tail-batch", choices=batching.MODES,
        help="run a batch through each tail at once or image by image; auto: whichever is "
             "faster on this CPU, timed at start on the bundle's reference latents (default)")
    max_ongoing: int = option(  # requests a replica holds at once (Ray Serve's default is 5)
        64, flag="--max-ongoing", type=int, metavar="N",
        help="requests a replica holds at once, >= --max-batch (default: 64; Ray Serve's own "
             "default of 5 cut throughput ~10x with 32 devices here)")
    max_bytes: int = option(1 << 20, flag="--max-bytes", type=int, metavar="N",  # else 413
                            help="larger requests are refused with 413 (default: 1 MiB)")
    threads: int = option(1, flag="--threads", type=int, metavar="N",
                          help="onnxruntime threads per replica (default: {default})")
    ray_address: Optional[str] = option(  # None: start a local cluster
        None, flag="--ray-address", metavar="HOST:PORT",
        help="join this existing Ray cluster (see docs/serving.md, Several machines): replicas "
             "and proxies spread over its nodes (default: a local cluster)")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    top_k: int = option(5, type=int, help="classes in each answer of a classification tail")
    cache_size: int = option(4096, type=int,
                             help="answers kept per replica for replayed request ids")

    @property
    def bundle(self) -> Path:
        """The first bundle (the ladder's first point)."""
        return self.bundles[0]

    @property
    def family(self) -> Tuple[Path, ...]:
        """The other bundles of the family (a ladder's other points)."""
        return self.bundles[1:]

    def __post_init__(self):
        if isinstance(self.bundles, (str, Path)):
            object.__setattr__(self, "bundles", (self.bundles,))
        object.__setattr__(self, "bundles", tuple(map(Path, self.bundles)))
        validate(self)
        if not self.bundles:
            raise UsageError("no bundle to serve: give at least one BUNDLE")
        checks = {"--port": 0 <= self.port <= 65535, "--replicas": self.replicas >= 1,
                  "--max-batch": self.max_batch >= 1,
                  "--max-ongoing": self.max_ongoing >= self.max_batch,
                  "--batch-wait-ms": self.batch_wait_ms >= 0,
                  "--max-bytes": self.max_bytes >= container.HEADER_SIZE,
                  "--top-k": self.top_k >= 1, "cache_size": self.cache_size >= 1}
        bad = [flag for flag, ok in checks.items() if not ok]
        if bad:
            raise UsageError(f"invalid serve options {', '.join(bad)} in {self}: expected a port "
                             "0-65535, replicas/max-batch/top-k >= 1, max ongoing >= max batch, "
                             f"batch wait >= 0 ms, max bytes >= {container.HEADER_SIZE}")


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
            raise Refused(wire.CONFLICT, f"request id {request_id!r} was already used for "
                                         "another container: give every image its own request id")
        self._answers.move_to_end(request_id)
        return wire.replayed(answer)

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
        return {"protocol": wire.PROTOCOL, "bundle": self.digest, "tasks": list(self.tasks) or
                ["decode"], "latent_shape": list(self.shape), "coder": self.codec.coder,
                "max_bytes": self.options.max_bytes, "batching": self.batching,
                "bundles": [m.info() for m in self.members]}

    def check_auth(self, headers: Mapping[str, str]) -> None:
        if not authorized(headers.get(wire.AUTHORIZATION_HEADER.lower()), self.token):
            raise Refused(wire.UNAUTHORIZED, "missing or wrong bearer token: send "
                          f"'{wire.AUTHORIZATION_HEADER}: {wire.authorization('TOKEN')}' with the "
                          "token `sc2deploy serve` printed or wrote")

    def check_size(self, declared: Optional[int]) -> None:
        if declared is not None and declared > self.options.max_bytes:
            raise Refused(wire.TOO_LARGE, f"request body of {declared} bytes; this server "
                          f"accepts at most {self.options.max_bytes} (sc2deploy serve --max-bytes)")

    def prepare(self, headers: Mapping[str, str], body: bytes) -> Pending:
        """Check and decode one request (headers with lower-case names); raises Refused."""
        self.check_auth(headers)
        self.check_size(len(body))
        request_id = headers.get(wire.REQUEST_ID_HEADER.lower(), "")
        if not wire.REQUEST_ID.fullmatch(request_id):
            raise Refused(wire.BAD_REQUEST, f"{wire.REQUEST_ID_HEADER} {request_id[:80]!r}: "
                          "expected 1-64 characters of A-Z a-z 0-9 . _ : -")
        sha = hashlib.sha256(body).hexdigest()
        cached = self.cache.get(request_id, sha)
        if cached is not None:
            return Pending(request_id, sha, np.zeros(0), 0.0, cached)
        declared = headers.get(wire.BUNDLE_HEADER.lower(), "")
        if declared not in self.by_digest:
            raise Refused(wire.CONFLICT, f"{wire.BUNDLE_HEADER} {declared[:80]!r}: this server "
                          f"serves bundle{'s' if len(self.members) > 1 else ''} "
                          f"{self._digests()}; encode with one of them")
        t0 = time.perf_counter_ns()
        try:
            head, _ = container.unpack(body)
            member = self._route(head.prior_digest, self.by_digest[declared])
            latent = member.codec.decode(body, member.shape)
        except CodecError as exc:
            raise Refused(wire.BAD_REQUEST, f"invalid container: {exc}") from None
        self.decoded += 1
        return Pending(request_id, sha, latent, (time.perf_counter_ns() - t0) / 1e6, member=member)

    def _route(self, prior_digest: int, declared: "Member") -> "Member":
        """The bundle whose prior coded the container; it must be the one the header names."""
        member = self.by_prior.get(prior_digest)
        if member is None:
            priors = ", ".join(f"{m.prior16:04x} ({m.name})" for m in self.members)
            raise Refused(wire.CONFLICT, f"container coded with prior {prior_digest:04x}, this "
                          f"server's prior{'s are' if len(self.members) > 1 else ' is'} "
                          f"{priors}: encode with a bundle the server serves (GET "
                          f"{wire.INFO_PATH} lists them)")
        if member is not declared:
            raise Refused(wire.CONFLICT, f"container coded with the prior of bundle "
                          f"{member.name} ({member.digest[:12]}), but {wire.BUNDLE_HEADER} names "
                          f"{declared.name} ({declared.digest[:12]}): send the digest of the "
                          "bundle that encoded it")
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
            answer = wire.answer(item.request_id, member.digest, outputs,
                                 {"decode": item.decode_ms, **task_ms,
                                  "total": item.decode_ms + sum(task_ms.values())}, len(batch))
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


def started_lines(options: ServeOptions, url: str, token: str, where: str,
                  token_file: Optional[Path]) -> List[str]:
    """What ``sc2deploy serve`` prints once it answers: what it serves where, the token's
    source (the token too when it was generated and kept in no file) and the device's
    command."""
    bundles = " ".join(map(str, options.bundles))
    lines = [f"serving {bundles} at {url} (token: {where})"]
    if token_file is None and "generated" in where:
        lines.append(f"token: {token}")
    which = (f"--ladder {bundles} --deadline-ms MS --evaluation EVAL.json ..." if options.family
             else str(options.bundle))
    return lines + [f"next, on the device: sc2deploy stream {which} --server {url} "
                    "--token-file TOKEN_FILE --images DIR -o RESULTS.json"]


def refusal_body(exc: Refused, request_id: str = "") -> Dict[str, object]:
    return wire.refusal(exc.status, str(exc), request_id)
