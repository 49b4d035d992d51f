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
