"""Shared fixtures: the demo bundle is exported once per test session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory):
    from sc2deploy.export import ExportOptions, export_bundle

    return export_bundle(ExportOptions(model="demo", out=tmp_path_factory.mktemp("demo") / "b"))


@pytest.fixture(scope="session")
def few_images():
    from sc2deploy.preprocess import sample_images

    return sample_images()[:4]
