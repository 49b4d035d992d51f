"""The server's logic without the engine: refusals with a status, decoding, the tail, replays."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from sc2deploy.codec import container
from sc2deploy.wire import BUNDLE_HEADER, REQUEST_ID_HEADER
from sc2deploy.preprocess import sample_images
from sc2deploy.errors import Refused
from sc2deploy.serving.service import ServeOptions, Service
from sc2deploy.targets.encoding import encode_images

from tests.helpers.symbols import assert_same_top1

TOKEN = "t0ken-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def streams(split_bundle):
    return [data for _, data in encode_images(split_bundle, sample_images()[:3])]


@pytest.fixture(scope="module")
def service(split_bundle):
    s = Service(ServeOptions(bundles=split_bundle.path, max_bytes=4096), TOKEN)
    yield s
    s.close()


def headers(bundle, request_id="img-1", token=TOKEN):
    return {"authorization": f"Bearer {token}", REQUEST_ID_HEADER.lower(): request_id,
            BUNDLE_HEADER.lower(): bundle.manifest["manifest_sha256"]}


def test_answers_with_the_tails_top_k_and_timings(split_bundle, streams, service):
    pending = [service.prepare(headers(split_bundle, f"a-{i}"), s) for i, s in enumerate(streams)]
    answers = service.run_batch(pending)
    session = ort.InferenceSession(str(split_bundle.file("tail.onnx")),
                                   providers=["CPUExecutionProvider"])
    alone, served = [], []
    for i, (item, answer) in enumerate(zip(pending, answers)):
        alone.append(session.run(None, {"symbols": item.latent[None].astype(np.float32)})[0])
        (out,) = answer["outputs"]
        assert answer["request_id"] == f"a-{i}" and answer["batch_size"] == 3
        assert out["task"] == "tail" and len(out["top_k"]) == 5
        served.append(np.eye(alone[-1].shape[1])[out["top_k"][0]["class"]])  # its top-1
        ms = answer["server_ms"]
        assert ms["decode"] > 0 and ms["tail"] > 0
        assert ms["total"] == pytest.approx(ms["decode"] + ms["tail"])
        json.dumps(answer)  # what the engine sends
    assert_same_top1(alone, served)  # the batch may run at once: same classes, bar near ties


@pytest.mark.parametrize("change,status,match", [
    (lambda h, b: ({**h, "authorization": ""}, b), 401, "missing or wrong bearer token"),
    (lambda h, b: ({**h, "authorization": "Bearer " + "x" * 30}, b), 401, "wrong bearer"),
    (lambda h, b: (h, b + bytes(5000)), 413, "accepts at most 4096"),
    (lambda h, b: ({**h, REQUEST_ID_HEADER.lower(): "a b/../"}, b), 400, "expected 1-64"),
    (lambda h, b: ({**h, BUNDLE_HEADER.lower(): "0" * 64}, b), 409, "serves bundle"),
    (lambda h, b: (h, b[:-9]), 400, "invalid container: truncated stream"),
    (lambda h, b: (h, b[:20] + bytes([b[20] ^ 0xFF]) + b[21:]), 400, "checksum mismatch"),
    (lambda h, b: (h, b"GIF89a" + b), 400, "not an sc2deploy stream"),
])
def test_hostile_requests_are_refused_and_the_next_is_served(split_bundle, streams, service,
                                                             change, status, match):
    decoded = service.decoded
    bad_headers, bad_body = change(headers(split_bundle, "bad-1"), streams[0])
    with pytest.raises(Refused, match=match) as info:
        service.prepare(bad_headers, bad_body)
    assert info.value.status == status and service.decoded == decoded  # nothing decoded
    good = service.prepare(headers(split_bundle, "after-bad"), streams[1])
    assert service.run_batch([good])[0]["outputs"][0]["top_k"]


def test_a_container_of_another_prior_is_409(split_bundle, streams, service):
    head, payload = container.unpack(streams[0])
    other = container.pack(head.shape, head.prior_digest ^ 1, payload)
    with pytest.raises(Refused, match="coded with prior") as info:
        service.prepare(headers(split_bundle, "prior"), other)
    assert info.value.status == 409


def test_a_replayed_request_id_gets_the_same_answer_and_is_decoded_once(split_bundle, streams,
                                                                        service):
    first = service.run_batch([service.prepare(headers(split_bundle, "replay"), streams[2])])[0]
    decoded = service.decoded
    again = service.prepare(headers(split_bundle, "replay"), streams[2])
    assert service.decoded == decoded and again.answer["replayed"] is True
    assert again.answer["outputs"] == first["outputs"]
    assert service.run_batch([again])[0] == again.answer
    with pytest.raises(Refused, match="already used for another container") as info:
        service.prepare(headers(split_bundle, "replay"), streams[0])
    assert info.value.status == 409


def test_the_replay_cache_is_bounded(split_bundle, streams):
    s = Service(ServeOptions(bundles=split_bundle.path, cache_size=2), TOKEN)
    try:
        for i in range(3):
            s.run_batch([s.prepare(headers(split_bundle, f"c-{i}"), streams[0])])
        assert s.prepare(headers(split_bundle, "c-2"), streams[0]).answer is not None
        assert s.prepare(headers(split_bundle, "c-0"), streams[0]).answer is None  # forgotten
    finally:
        s.close()


def test_a_head_only_bundle_answers_with_decoding_alone(head_only_bundle, few_images):
    s = Service(ServeOptions(bundles=head_only_bundle.path), TOKEN)
    try:
        (_, data), = list(encode_images(head_only_bundle, few_images[:1]))
        (answer,) = s.run_batch([s.prepare(headers(head_only_bundle, "demo"), data)])
        assert answer["outputs"] == [{"task": "decode",
                                       "latent_shape": head_only_bundle.model["latent"]["shape"]}]
        assert set(answer["server_ms"]) == {"decode", "total"}
    finally:
        s.close()


def test_options_are_checked():
    with pytest.raises(Exception, match="--replicas, --max-batch"):
        ServeOptions(bundles="b", replicas=0, max_batch=0)


def test_one_request_answers_every_tail_of_the_bundle(split_bundle, streams, tmp_path):
    import copy
    import shutil

    from tests.helpers.reference_models import classification_student, write_student
    from sc2deploy.export.extra_tail import AddTailOptions, add_tail

    first, second = classification_student(), classification_student(seed=11)
    second.encoder = copy.deepcopy(first.encoder)  # the same head, another task's tail
    second.entropy_bottleneck = copy.deepcopy(first.entropy_bottleneck)
    write_student(tmp_path / "second.pt", second, "sc2bench")
    shutil.copytree(split_bundle.path, tmp_path / "b")
    bundle = add_tail(AddTailOptions(tmp_path / "b", "second", tmp_path / "second.pt"))
    sessions = {name: ort.InferenceSession(str(bundle.file(file)),
                                           providers=["CPUExecutionProvider"])
                for name, file in (("default", "tail.onnx"), ("second", "tail-second.onnx"))}
    s = Service(ServeOptions(bundles=bundle.path), TOKEN)
    try:
        assert s.info()["tasks"] == ["tail", "tail:second"]
        item = s.prepare(headers(bundle, "both"), streams[0])
        (answer,) = s.run_batch([item])
    finally:
        s.close()
    assert [(o["task"], o["name"]) for o in answer["outputs"]] == [("tail", "default"),
                                                                    ("tail", "second")]
    x = item.latent[None].astype(np.float32)
    for out in answer["outputs"]:
        logits = sessions[out["name"]].run(None, {"symbols": x})[0][0]
        assert out["top_k"][0]["class"] == int(np.argmax(logits))
    ms = answer["server_ms"]
    assert ms["tail"] > 0 and ms["tail:second"] > 0
    assert ms["total"] == pytest.approx(ms["decode"] + ms["tail"] + ms["tail:second"])
