"""A batch through a tail at once or image by image: the same answers, the choice measured."""

import re

import numpy as np
import onnx
import pytest

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.wire import BUNDLE_HEADER, REQUEST_ID_HEADER
from sc2deploy.preprocess import sample_images
from sc2deploy.serving import batching
from sc2deploy.serving.service import ServeOptions, Service
from sc2deploy.targets import load_server_runner
from sc2deploy.targets.encoding import encode_images
from sc2deploy.targets.onnx import ServerRunner

from tests.helpers.symbols import assert_same_top1

TOKEN = "batching-test-token-0123456789"


def headers(bundle, request_id):
    return {"authorization": f"Bearer {TOKEN}", REQUEST_ID_HEADER.lower(): request_id,
            BUNDLE_HEADER.lower(): bundle.manifest["manifest_sha256"]}


@pytest.fixture(scope="module")
def latents(split_bundle):
    return split_bundle.reference()["symbols"][:6].astype(np.float32)


@pytest.fixture(scope="module")
def batch_one_tail(split_bundle, tmp_path_factory):
    """The split bundle's tail.onnx with its batch dimension fixed to 1 (as exported before)."""
    model = onnx.load(str(split_bundle.file("tail.onnx")))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path_factory.mktemp("static") / "tail.onnx"
    onnx.save(model, str(path))
    return path


def test_the_exported_tail_has_a_free_batch_dimension(split_bundle):
    entry = split_bundle.manifest["tail"]
    assert entry["batch"] == "free" and entry["input"]["shape"][0] == 1
    graph = onnx.load(str(split_bundle.file("tail.onnx"))).graph
    for value in (graph.input[0], graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_a_batch_at_once_answers_as_each_image_alone(split_bundle, latents):
    with load_server_runner(split_bundle, "tail", threads=1) as runner:
        assert runner.batch_free
        together = batching.run(runner, latents, "batched")
        alone = batching.run(runner, latents, "single")
        assert together.shape == alone.shape == (len(latents), alone.shape[1])
        scale = np.abs(alone).max()
        assert np.max(np.abs(together - alone)) <= 1e-4 * scale  # the export's own limit
        assert_same_top1(alone, together)


def test_auto_times_both_on_this_cpu_and_keeps_the_faster(split_bundle, latents):
    with load_server_runner(split_bundle, "tail", threads=1) as runner:
        choice = batching.choose(runner, latents, 4, "auto")
        assert choice["mode"] in ("batched", "single")
        single, batched = (float(v) for v in re.findall(r"([\d.]+) ms", choice["why"]))
        assert choice["mode"] == ("batched" if batched < single else "single")
        assert "4 reference latents on this CPU" in choice["why"]
        assert batching.choose(runner, latents, 1, "auto") == {"mode": "single",
                                                               "why": "--max-batch 1"}
        assert batching.choose(runner, latents, 8, "batched")["mode"] == "batched"
        assert batching.choose(runner, latents, 8, "single")["mode"] == "single"


def test_a_batch_one_graph_runs_image_by_image(split_bundle, batch_one_tail, latents):
    entry = split_bundle.manifest["tail"]
    with ServerRunner(batch_one_tail, entry["input"]["shape"], entry["input"]["name"], 1) as r:
        assert not r.batch_free
        assert batching.choose(r, latents, 8, "auto") == {
            "mode": "single", "why": "tail.onnx: batch dimension of 1"}
        with pytest.raises(UsageError, match="--tail-batch batched: tail.onnx has a batch "
                                             "dimension of 1"):
            batching.choose(r, latents, 8, "batched")
        with pytest.raises(UsageError, match="batch dimension of 1: run it image by image"):
            r.infer_batch(latents)
        with load_server_runner(split_bundle, "tail", threads=1) as free:
            np.testing.assert_array_equal(batching.run(r, latents, "single"),
                                          batching.run(free, latents, "single"))


def test_infer_batch_refuses_a_wrong_shape_or_dtype(split_bundle, latents):
    with load_server_runner(split_bundle, "tail", threads=1) as runner:
        with pytest.raises(UsageError, match="incompatible shape"):
            runner.infer_batch(latents[:, :-1])
        with pytest.raises(UsageError, match="incompatible shape"):
            runner.infer_batch(latents[:0])
        with pytest.raises(UsageError, match="expected float32"):
            runner.infer_batch(latents.astype(np.float64))


@pytest.mark.parametrize("mode", ["batched", "single"])
def test_the_service_answers_a_batch_the_same_either_way(split_bundle, mode):
    data = [d for _, d in encode_images(split_bundle, sample_images()[:4])]
    s = Service(ServeOptions(bundles=split_bundle.path, tail_batch=mode), TOKEN)
    try:
        assert s.info()["batching"] == {"tail": {"mode": mode, "why": f"--tail-batch {mode}"}}
        batch = s.run_batch([s.prepare(headers(split_bundle, f"{mode}-{i}"), d)
                             for i, d in enumerate(data)])
        alone = [s.run_batch([s.prepare(headers(split_bundle, f"{mode}-alone-{i}"), d)])[0]
                 for i, d in enumerate(data)]
    finally:
        s.close()
    # the tail's ms is the whole batch's, which each image waited
    assert {a["server_ms"]["tail"] for a in batch} == {batch[0]["server_ms"]["tail"]}
    assert [a["batch_size"] for a in batch] == [4] * 4
    for together, one in zip(batch, alone):
        want = {c["class"]: c["probability"] for c in one["outputs"][0]["top_k"]}
        got = {c["class"]: c["probability"] for c in together["outputs"][0]["top_k"]}
        common = set(want) & set(got)  # top-5 sets may swap a near tie at the 5th place
        assert len(common) >= 4
        assert all(got[c] == pytest.approx(want[c], rel=1e-3, abs=1e-6) for c in common)


def test_an_unknown_mode_is_refused():
    with pytest.raises(UsageError, match="--tail-batch"):
        ServeOptions(bundles="b", tail_batch="always")


def test_batched_is_refused_before_start_for_a_batch_one_tail(split_bundle):
    batching.refuse_unbatchable(split_bundle, "batched")  # its tail's batch is free
    old = Bundle.open(split_bundle.path)
    del old.manifest["tail"]["batch"]  # as bundles exported before batched tails are
    batching.refuse_unbatchable(old, "auto")
    with pytest.raises(UsageError, match=r"--tail-batch batched: tail.onnx of .* has a batch "
                                         "dimension of 1"):
        batching.refuse_unbatchable(old, "batched")
