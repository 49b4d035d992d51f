"""`serve` holds a family of bundles (issue 22): each container routed to its bundle by the prior
digest in its header, foreign containers refused with 409, bundles of another family refused
at start with the reason; engine-free, then on a real Ray Serve and through the CLI."""

import http.client
import json
import socket

import numpy as np
import onnxruntime as ort
import pytest

from sc2deploy.cli import main
from sc2deploy.codec import container
from sc2deploy.errors import Refused, UsageError
from sc2deploy.wire import BUNDLE_HEADER, REQUEST_ID_HEADER
from sc2deploy.preprocess import sample_images
from sc2deploy.serving.service import ServeOptions, Service
from sc2deploy.targets.encoding import encode_images

TOKEN = "family-test-token-0123456789"


@pytest.fixture(scope="module")
def encoded(ladder_bundles, split_bundle):
    """Two images encoded by every ladder point, and by a bundle of another family."""
    images = sample_images()[:2]
    return {b.path.name: [data for _, data in encode_images(b, images)]
            for b in [*ladder_bundles, split_bundle]}


@pytest.fixture(scope="module")
def service(ladder_bundles):
    first, *rest = [b.path for b in ladder_bundles]
    s = Service(ServeOptions(bundles=(first, *rest)), TOKEN)
    yield s
    s.close()


def headers(bundle, request_id):
    return {"authorization": f"Bearer {TOKEN}", REQUEST_ID_HEADER.lower(): request_id,
            BUNDLE_HEADER.lower(): bundle.manifest["manifest_sha256"]}


def tail_top1(bundle, latent) -> int:
    session = ort.InferenceSession(str(bundle.file("tail.onnx")),
                                   providers=["CPUExecutionProvider"])
    return int(np.argmax(session.run(None, {"symbols": latent[None].astype(np.float32)})[0]))


def test_every_container_is_decoded_and_answered_by_its_own_bundle(ladder_bundles, encoded,
                                                                    service):
    pending, expected = [], []
    for bundle in ladder_bundles:
        for i, data in enumerate(encoded[bundle.path.name]):
            item = service.prepare(headers(bundle, f"{bundle.path.name}-{i}"), data)
            assert item.latent.shape == tuple(bundle.model["latent"]["shape"])
            pending.append(item)
            expected.append((bundle.manifest["manifest_sha256"], tail_top1(bundle, item.latent)))
    answers = service.run_batch(pending)  # one batch mixing the three bundles
    got = [(a["bundle"], a["outputs"][0]["top_k"][0]["class"]) for a in answers]
    assert got == expected
    priors = {len({container.unpack(d)[0].prior_digest for d in v}) for v in encoded.values()}
    assert priors == {1}  # each bundle's containers carry one prior digest, its own


def test_info_lists_every_bundle(ladder_bundles, service):
    info = service.info()
    assert [b["bundle"] for b in info["bundles"]] == \
        [b.manifest["manifest_sha256"] for b in ladder_bundles]
    assert [b["name"] for b in info["bundles"]] == ["demo-beta0.1", "demo-beta1", "demo-beta3"]
    assert len({b["prior_digest"] for b in info["bundles"]}) == 3
    assert all(b["tasks"] == ["tail"] for b in info["bundles"])
    json.dumps(info)


def test_a_container_of_a_foreign_bundle_is_409_and_the_next_is_served(ladder_bundles,
                                                                       split_bundle, encoded,
                                                                       service):
    foreign = encoded[split_bundle.path.name][0]
    with pytest.raises(Refused, match="serves bundles .*encode with one of them") as info:
        service.prepare(headers(split_bundle, "foreign-1"), foreign)
    assert info.value.status == 409
    with pytest.raises(Refused, match=r"coded with prior [0-9a-f]{4}, this server's priors are")\
            as info:  # a foreign container under a served bundle's name
        service.prepare(headers(ladder_bundles[0], "foreign-2"), foreign)
    assert info.value.status == 409
    with pytest.raises(Refused, match="coded with the prior of bundle demo-beta3.*names "
                                      "demo-beta0.1") as info:
        service.prepare(headers(ladder_bundles[0], "mixed"), encoded["demo-beta3"][0])
    assert info.value.status == 409
    decoded = service.decoded
    good = service.prepare(headers(ladder_bundles[2], "after-foreign"), encoded["demo-beta3"][1])
    assert service.run_batch([good])[0]["outputs"][0]["top_k"] and service.decoded == decoded + 1


def test_a_bundle_of_another_family_is_refused_at_start_with_the_reason(ladder_bundles,
                                                                        split_bundle,
                                                                        head_only_bundle):
    first = ladder_bundles[0].path
    with pytest.raises(UsageError, match=r"does not belong to the family .*input\.crop: "
                                         r"\[64, 64\] \(the first bundle's: \[224, 224\]\)"):
        Service(ServeOptions(bundles=(first, split_bundle.path)), TOKEN)
    with pytest.raises(UsageError, match=r"does not belong to the family .*tasks"):
        Service(ServeOptions(bundles=(first, head_only_bundle.path)), TOKEN)
    with pytest.raises(UsageError, match="is given twice"):
        Service(ServeOptions(bundles=(first, first)), TOKEN)


def test_the_cli_refuses_a_foreign_bundle_before_starting_anything(ladder_bundles, split_bundle,
                                                                   tmp_path, capsys):
    token = tmp_path / "token"
    assert main(["serve", str(ladder_bundles[0].path), str(split_bundle.path),
                 "--token-file", str(token)]) == 2
    err = capsys.readouterr().err
    assert f"bundle {split_bundle.path} does not belong to the family" in err, err
    assert not token.exists()


# ---- on a real Ray Serve (127.0.0.1)

def test_ray_serve_routes_a_family_and_refuses_foreign_containers(ladder_bundles, split_bundle,
                                                                  encoded, service):
    ray_app = pytest.importorskip("sc2deploy.serving.ray_app", reason="Ray Serve is not "
                                  "installed (pip install 'sc2deploy[serve]')")
    first, *rest = [b.path for b in ladder_bundles]
    options = ServeOptions(bundles=(first, *rest), port=free_port(), max_batch=4)
    ray_app.start(options, TOKEN)
    try:
        status, info = request(options, "GET", "/v1/info", None, {})
        assert status == 200
        assert [b["name"] for b in info["bundles"]] == ["demo-beta0.1", "demo-beta1",
                                                        "demo-beta3"]
        for bundle in ladder_bundles:
            data = encoded[bundle.path.name][0]
            status, reply = request(options, "POST", "/v1/infer", data,
                                    headers(bundle, f"ray-{bundle.path.name}"))
            expected = service.run_batch([service.prepare(headers(bundle, f"here-"
                                                                  f"{bundle.path.name}"), data)])
            assert status == 200 and reply["bundle"] == bundle.manifest["manifest_sha256"]
            assert reply["outputs"] == expected[0]["outputs"]
        status, reply = request(options, "POST", "/v1/infer", encoded[split_bundle.path.name][0],
                                headers(ladder_bundles[1], "ray-foreign"))
        assert (status, reply["status"]) == (409, 409) and "this server's priors are" in \
            reply["error"]
        status, reply = request(options, "POST", "/v1/infer", encoded["demo-beta1"][1],
                                headers(ladder_bundles[1], "ray-after"))
        assert status == 200 and reply["outputs"][0]["top_k"]
    finally:
        ray_app.stop(shutdown_ray=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(options, method, path, body, head):
    conn = http.client.HTTPConnection(options.host, options.port, timeout=60)
    try:
        conn.request(method, path, body, head or {"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()
