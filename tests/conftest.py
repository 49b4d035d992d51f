"""Shared fixtures: the demo bundle, a head-only copy, the high-rate
student and a tiny split student, exported once per test session."""

import pytest


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory):
    from sc2deploy.export import ExportOptions, export_bundle

    return export_bundle(ExportOptions(model="demo", out=tmp_path_factory.mktemp("demo") / "b"))


@pytest.fixture(scope="session")
def head_only_bundle(tmp_path_factory):
    """The demo student without its decoder and tail (the published head-only layout)."""
    import torch

    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.export.checkpoint import load_state_dict
    from sc2deploy.specs import demo_checkpoint
    from sc2deploy.preprocess import sample_images

    folder = tmp_path_factory.mktemp("head-only")
    head = {k: v for k, v in load_state_dict(demo_checkpoint("demo")).items()
            if ".encoder." in k or ".entropy_bottleneck." in k}
    torch.save(head, folder / "head.pt")
    return export_bundle(ExportOptions(model="entropic_student", out=folder / "b",
                                       checkpoint=folder / "head.pt",
                                       images=sample_images()[:1]))


@pytest.fixture(scope="session")
def split_bundle(tmp_path_factory):
    """A tiny classification student (64 px input, 8x15x15 latent) with its tail.onnx."""
    from tests.helpers.reference_models import classification_student, write_student
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    folder = tmp_path_factory.mktemp("split")
    write_student(folder / "student.pt", classification_student(), "sc2bench")
    return export_bundle(ExportOptions(model="entropic_student", checkpoint=folder / "student.pt",
                                       out=folder / "b", images=sample_images()[:2],
                                       input_size=64))


@pytest.fixture(scope="session")
def student_bundle(tmp_path_factory):
    """The high-rate classification student (~4.9 bits/symbol, 224 px) with its tail.onnx."""
    from tests.helpers.reference_models import classification_student, write_student
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    folder = tmp_path_factory.mktemp("student")
    write_student(folder / "student.pt", classification_student(), "sc2bench")
    return export_bundle(ExportOptions(model="entropic_student", checkpoint=folder / "student.pt",
                                       out=folder / "b", images=sample_images()[:2]))


@pytest.fixture(scope="session")
def few_images():
    from sc2deploy.preprocess import sample_images

    return sample_images()[:4]


@pytest.fixture(scope="session")
def ladder_bundles(tmp_path_factory):
    """Three points of the demo ladder (~1,250, ~480 and ~310 B per image), most bytes first:
    one family (issue 22), each folder named after its point."""
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    folder = tmp_path_factory.mktemp("ladder")
    return [export_bundle(ExportOptions(model=name, out=folder / name, images=sample_images()[:4]))
            for name in ("demo-beta0.1", "demo-beta1", "demo-beta3")]


# The adaptive policy's tests need a ladder whose top-1 rises with its bytes. On the 100
# images below the bundled points tie (98 %: the coarse-latent ladder keeps its top-1 down to
# ~300 B), so the evaluation files state a trade-off in its place: this top-1 per point, with
# the measured bytes and times.
TRADEOFF_TOP1 = {"demo-beta0.1": 99.0, "demo-beta1": 96.0, "demo-beta3": 80.0}


@pytest.fixture(scope="session")
def ladder_evaluations(ladder_bundles, tmp_path_factory):
    """`sc2deploy evaluate` results (target onnx) of every ladder point on 100 held-out demo
    images (10 per class of seed 2): each point's bytes and ms as measured, its top-1 from
    TRADEOFF_TOP1, for the adaptive stream and the replay."""
    from sc2deploy.measure.evaluate import evaluate, image_folder
    from sc2deploy.orchestrate.demo_data import write_labeled_set
    from sc2deploy.results.schema import write_results
    from sc2deploy.targets.gate import wilson_interval

    folder = tmp_path_factory.mktemp("ladder-eval")
    data = image_folder(write_labeled_set(folder / "images", 10, seed=2))
    out = []
    for b in ladder_bundles:
        doc = evaluate(b.path, data, targets=("onnx",), label=b.path.name, progress=False)
        for target in doc["targets"]:
            n = target["images"]
            correct = round(TRADEOFF_TOP1[b.path.name] * n / 100)
            target["top1"] = {"correct": correct, "pct": 100 * correct / n,
                              "ci95": [100 * v for v in wilson_interval(correct, n)]}
        out.append(write_results(doc, folder / f"{b.path.name}.json"))
    return out


@pytest.fixture(scope="session")
def ladder_evaluations_timed(ladder_evaluations, tmp_path_factory):
    """ladder_evaluations with device 20 ms and server 5 ms per image: the measured top-1 and
    bytes, times that do not depend on how busy this machine was when it evaluated (replay)."""
    import json

    folder = tmp_path_factory.mktemp("ladder-eval-timed")
    out = []
    for path in ladder_evaluations:
        doc = json.loads(path.read_text())
        for target in doc["targets"]:
            target["ms_p50"] = {"device": 20.0, "server": 5.0}
        out.append(folder / path.name)
        out[-1].write_text(json.dumps(doc))
    return out
