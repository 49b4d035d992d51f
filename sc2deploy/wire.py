"""The wire protocol of the split pipeline, defined once: what ``sc2deploy stream`` (the device,
:mod:`sc2deploy.stream`) and ``sc2deploy serve`` (:mod:`sc2deploy.serving`) say to each other.
Documented in docs/serving.md (Protocol)::

    POST /v1/infer                       body: one container (docs/bitstream.md)
    Authorization: Bearer TOKEN          X-Request-Id: [A-Za-z0-9._:-]{1,64}
    Content-Type: application/octet-stream
    X-Sc2deploy-Bundle: the manifest_sha256 of the bundle that encoded the container
        (a server of a family of bundles routes by the prior digest in the container's
        header, which must be that same bundle's)
    200 → answer(): JSON {protocol, request_id, bundle, outputs: [{task, ...}],
                          server_ms: {decode, TASK..., total}, batch_size, replayed,
                          served_by: {node, replica}}   (replayed(), served_by())
    4xx → refusal(): JSON {error, status, request_id}, decoded nothing; final, never retried:
          401 no or wrong token (with WWW-Authenticate: Bearer), 413 body too large,
          400 bad request id or container, 409 another bundle, prior or a reused request id,
          404 another path
    5xx, 429, a 4xx in another format (a proxy before the app is up), a dropped connection
        → retried by the device with exponential backoff, under the same request id
    GET /v1/info (same token)            → JSON {protocol, bundle, tasks, ..., bundles}

A core module: the standard library only.
"""

import re
from typing import Dict, List, Mapping, Optional

PROTOCOL = 1
INFER_PATH = "/v1/infer"
INFO_PATH = "/v1/info"

AUTHORIZATION_HEADER = "Authorization"
AUTH_SCHEME = "Bearer"  # also the server's WWW-Authenticate challenge
CHALLENGE_HEADER = "WWW-Authenticate"
REQUEST_ID_HEADER = "X-Request-Id"
BUNDLE_HEADER = "X-Sc2deploy-Bundle"
CONTENT_TYPE_HEADER = "Content-Type"
CONTAINER_TYPE = "application/octet-stream"  # a request's body
JSON_TYPE = "application/json"  # every answer's and refusal's body
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TOKEN_ENV = "SC2DEPLOY_TOKEN"  # the token, on both sides, unless a token file is given

OK = 200
BAD_REQUEST = 400  # a bad request id, an invalid container
UNAUTHORIZED = 401  # no or wrong bearer token
NOT_FOUND = 404  # another path or method
CONFLICT = 409  # another bundle or prior; a request id reused for another container
TOO_LARGE = 413  # a body over the server's --max-bytes
TOO_MANY_REQUESTS = 429  # a 4xx that is retried, like 5xx
SERVER_ERROR = 500


def authorization(token: str) -> str:
    """The Authorization header's value that carries ``token``."""
    return f"{AUTH_SCHEME} {token}"


def bearer_token(header: Optional[str]) -> Optional[str]:
    """The token an Authorization header carries (the scheme's case ignored); None without one."""
    scheme, _, given = (header or "").partition(" ")
    return given.strip() if scheme.lower() == AUTH_SCHEME.lower() else None


def request_headers(token: str, bundle: str) -> Dict[str, str]:
    """A request's headers but its request id: the token, the body's type, the bundle digest."""
    return {AUTHORIZATION_HEADER: authorization(token), CONTENT_TYPE_HEADER: CONTAINER_TYPE,
            BUNDLE_HEADER: bundle}


def answer(request_id: str, bundle: str, outputs: List[dict], server_ms: Dict[str, float],
           batch_size: int) -> dict:
    """A 200 answer's body (the server adds ``served_by``; ``replayed`` is set on a resend)."""
    return {"protocol": PROTOCOL, "request_id": request_id, "bundle": bundle,
            "outputs": outputs, "batch_size": batch_size, "replayed": False,
            "server_ms": server_ms}


def replayed(answer: Mapping) -> dict:
    """The answer again, to a resent request id (computed once, sent again)."""
    return {**answer, "replayed": True}


def served_by(answer: Mapping, identity: Mapping[str, str]) -> dict:
    """The answer with where it was computed: ``identity`` = {node, replica}."""
    return {**answer, "served_by": dict(identity)}


def is_answer(status: Optional[int], body: Mapping, request_id: str) -> bool:
    """Is this the answer to request ``request_id``?"""
    return status == OK and body.get("request_id") == request_id


def refusal(status: int, error: str, request_id: str = "") -> dict:
    """A refusal's body."""
    return {"error": error, "status": status, "request_id": request_id}


def is_refusal(status: Optional[int], body: Mapping) -> bool:
    """A final answer: a 4xx (not 429) in the refusal's own format. Other 4xx come from
    something in front of the server (Ray's proxy answers 404 while the app is still
    deploying): retried, like 5xx."""
    return status is not None and 400 <= status < 500 and status != TOO_MANY_REQUESTS \
        and body.get("status") == status and "request_id" in body
