"""Shared fixtures: the demo bundle, a head-only copy, the high-rate
student and a tiny split student, exported once per test session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


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
    from reference_models import classification_student, write_student
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
    from reference_models import classification_student, write_student
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
    """Three points of the demo ladder (~2,200, ~580 and ~240 B per image), most bytes first:
    one family (issue 22), each folder named after its point."""
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    folder = tmp_path_factory.mktemp("ladder")
    return [export_bundle(ExportOptions(model=name, out=folder / name, images=sample_images()[:4]))
            for name in ("demo-beta0.1", "demo-beta1", "demo-beta3")]


@pytest.fixture(scope="session")
def ladder_evaluations(ladder_bundles, tmp_path_factory):
    """`sc2deploy evaluate` results (target onnx) of every ladder point on 100 held-out demo
    images (10 per class of seed 2): each point's top-1 and ms for the adaptive stream."""
    from sc2deploy.measure.evaluate import evaluate, image_folder
    from sc2deploy.orchestrate.demo_data import write_labeled_set
    from sc2deploy.results.schema import write_results

    folder = tmp_path_factory.mktemp("ladder-eval")
    data = image_folder(write_labeled_set(folder / "images", 10, seed=2))
    return [write_results(evaluate(b.path, data, targets=("onnx",), label=b.path.name,
                                   progress=False), folder / f"{b.path.name}.json")
            for b in ladder_bundles]
