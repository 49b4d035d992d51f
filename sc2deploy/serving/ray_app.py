"""The Ray Serve deployment of :class:`~sc2deploy.serving.service.Service`.

Each replica checks and decodes a request as it arrives (refusals never wait for a
batch), then ``@serve.batch`` gathers up to ``max_batch`` decoded requests for at most
``batch_wait_ms`` and runs the tasks on them. Replicas scale out over the Ray cluster:
``ray_address`` joins an existing one (``ray start --head`` here, ``ray start --address``
on the other machines), whose every node then runs a proxy and may hold replicas. The
bundle travels with the deployment (its files, re-verified by hash on the replica's node),
so no other machine needs a copy. Answers name the node and replica that computed them.
Ray is imported only here (``pip install sc2deploy[serve]``).
"""

import asyncio
import json
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from sc2deploy import wire
from sc2deploy.errors import Refused, UsageError
from sc2deploy.log import logger
from sc2deploy.measure.ladder import open_family
from sc2deploy.serving.service import Pending, ServeOptions, Service, refusal_body

try:
    import ray
    from ray import serve
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - the serve extra is part of dev
    raise UsageError(f"sc2deploy serve needs Ray Serve ({exc}): pip install 'sc2deploy[serve]'"
                     ) from None

APP = "sc2deploy"
MAX_BUNDLE_BYTES = 1 << 30  # what a deployment carries to its replicas, per bundle


def bundle_files(folder: Path) -> Dict[str, bytes]:
    """Every file of the bundle, by path inside it (the replicas re-verify them)."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise UsageError(f"{folder} is not a bundle (no manifest.json)")
    files = {str(p.relative_to(folder)): p.read_bytes()
             for p in sorted(folder.rglob("*")) if p.is_file()}
    size = sum(map(len, files.values()))
    if size > MAX_BUNDLE_BYTES:
        raise UsageError(f"bundle {folder} holds {size:,} bytes, more than the "
                         f"{MAX_BUNDLE_BYTES:,} a deployment carries to its replicas")
    return files


def _unpack(files: Dict[str, bytes], bundle: str) -> tempfile.TemporaryDirectory:
    """The files in FOLDER/``bundle`` (the bundle folder's name: a ladder point's name)."""
    folder = tempfile.TemporaryDirectory(prefix="sc2deploy-bundle-")
    root = Path(folder.name, bundle)
    if bundle in ("", ".", "..") or "/" in bundle:
        raise UsageError(f"bundle name {bundle!r}: expected a folder name")
    for name, data in files.items():
        path = root / name
        if root.resolve() not in path.resolve().parents:
            raise UsageError(f"bundle file {name!r} points outside the bundle")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _json(status: int, body: dict) -> Response:
    headers = {wire.CHALLENGE_HEADER: wire.AUTH_SCHEME} if status == wire.UNAUTHORIZED else None
    return Response(json.dumps(body), status_code=status, media_type=wire.JSON_TYPE,
                    headers=headers)


@serve.deployment
class SplitServer:
    """One replica: a Service behind Ray Serve's HTTP proxy."""

    def __init__(self, options: ServeOptions, token: str,
                 bundles: List[Tuple[str, Dict[str, bytes]]]):
        self._bundles = [_unpack(files, name) for name, files in bundles]  # Service re-verifies
        paths = [Path(folder.name, name) for folder, (name, _) in zip(self._bundles, bundles)]
        self.service = Service(replace(options, bundles=tuple(paths)), token)
        context = serve.get_replica_context()
        self.identity = {"node": ray.get_runtime_context().get_node_id()[:12],
                         "replica": context.replica_id.unique_id}
        self.answer.set_max_batch_size(options.max_batch)
        self.answer.set_batch_wait_timeout_s(options.batch_wait_ms / 1e3)
        self._inflight: Dict[str, asyncio.Future] = {}

    async def __call__(self, request) -> Response:
        request_id = request.headers.get(wire.REQUEST_ID_HEADER, "")
        try:
            self.service.check_auth(request.headers)
            if request.url.path == wire.INFO_PATH and request.method == "GET":
                return _json(wire.OK, self.service.info())
            if request.url.path != wire.INFER_PATH or request.method != "POST":
                raise Refused(wire.NOT_FOUND, f"{request.method} {request.url.path}: expected "
                                              f"POST {wire.INFER_PATH} (or GET {wire.INFO_PATH})")
            declared = request.headers.get("content-length")
            self.service.check_size(int(declared) if declared and declared.isdigit() else None)
            body = await request.body()
            if request_id in self._inflight:  # the same id resent while its first is running
                return _json(wire.OK, wire.replayed(await asyncio.shield(
                    self._inflight[request_id])))
            pending = self.service.prepare(request.headers, body)
        except Refused as exc:
            return _json(exc.status, refusal_body(exc, request_id))
        if pending.answer is not None:
            return _json(wire.OK, wire.served_by(pending.answer, self.identity))
        future = asyncio.get_running_loop().create_future()
        self._inflight[pending.request_id] = future
        try:
            answer = await self.answer(pending)
            future.set_result(answer)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a waiting replay re-raises it, else it is dropped
            logger.exception("request %s failed", pending.request_id)
            return _json(wire.SERVER_ERROR, wire.refusal(wire.SERVER_ERROR, f"server error: {exc}",
                                                         pending.request_id))
        finally:
            del self._inflight[pending.request_id]
        return _json(wire.OK, wire.served_by(answer, self.identity))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def answer(self, batch: List[Pending]) -> List[dict]:
        return self.service.run_batch(batch)


def start(options: ServeOptions, token: str) -> str:
    """Start a local Ray cluster, or join ``options.ray_address``, and serve the bundle (or
    the family of bundles); returns the server's URL."""
    open_family(options.bundles)  # refused here, with the reason, before Ray starts
    bundles = [(Path(path).resolve().name, bundle_files(path)) for path in options.bundles]
    if not ray.is_initialized():
        try:
            ray.init(address=options.ray_address or "local", include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError) as exc:
            raise UsageError(f"cannot join the Ray cluster at {options.ray_address}: {exc} "
                             "(start it with `ray start --head`; with token auth, set "
                             "RAY_AUTH_MODE=token and the cluster's token here too)") from None
    serve.start(http_options={"host": options.host, "port": options.port})
    app = SplitServer.options(num_replicas=options.replicas,
                              max_ongoing_requests=options.max_ongoing).bind(
        options, token, bundles)
    serve.run(app, name=APP, route_prefix="/")
    return f"http://{options.host}:{options.port}"


def stop(shutdown_ray: bool = False, joined: bool = False) -> None:
    """Stop serving (and the Ray cluster this process started, if asked). On a cluster
    that was ``joined``, only this app is deleted: Serve and the cluster stay up.

    A local cluster that goes down anyway is not asked to shut Serve down first: its
    controller ends itself inside that request, which Ray reports on stdout as a failed
    ``graceful_shutdown`` task; the proxies and replicas end with the cluster."""
    if joined:
        serve.delete(APP)
    elif not shutdown_ray:
        serve.shutdown()
    if shutdown_ray and ray.is_initialized():
        ray.shutdown()


def serve_until_stopped(options: ServeOptions, token: str,
                        started: Callable[[str], None]) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop Ray (or leave the joined cluster);
    ``started(url)`` is called once the server answers."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop Ray cleanly on SIGTERM
    try:
        url = start(options, token)
        # Ray's core worker put its own SIGTERM handler in (a stack dump, then abort): SIGTERM
        # and SIGINT are Ctrl-C again, which stops Ray below
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler)
        started(url)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop(shutdown_ray=True, joined=options.ray_address is not None)
