"""Bundles are verified on open: any modified or missing file is named."""

import json
import shutil

import pytest

from sc2deploy.bundle import MANIFEST, Bundle, write_manifest
from sc2deploy.errors import BundleError


@pytest.fixture()
def bundle_copy(demo_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    return dst


def _flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["head.onnx", "prior.npz", "reference.npz", "head_state.npz"])
def test_modified_file_is_named(bundle_copy, name):
    Bundle.open(bundle_copy)
    _flip_byte(bundle_copy / name)
    with pytest.raises(BundleError, match=f"{name} was modified"):
        Bundle.open(bundle_copy)


@pytest.mark.parametrize("offset", [0, 10, 200, -3])
def test_modified_manifest_is_detected(bundle_copy, offset):
    path = bundle_copy / MANIFEST
    _flip_byte(path, offset % path.stat().st_size)
    with pytest.raises(BundleError, match=MANIFEST):
        Bundle.open(bundle_copy)


def test_missing_file_is_named(bundle_copy):
    (bundle_copy / "prior.npz").unlink()
    with pytest.raises(BundleError, match="prior.npz is missing"):
        Bundle.open(bundle_copy)


def test_newer_format_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["format_version"] = 99
    write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="format_version 99.*upgrade sc2deploy"):
        Bundle.open(bundle_copy)


def test_unsafe_paths_are_refused(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["artifacts"]["onnx"]["file"] = "../outside.onnx"
    write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="unsafe path"):
        Bundle.open(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        Bundle.open(tmp_path / "nothing")
    with pytest.raises(BundleError, match="manifest.json is missing"):
        Bundle.open(tmp_path)


def test_add_artifact_reseals(bundle_copy):
    bundle = Bundle.open(bundle_copy)
    extra = bundle_copy / "extra.bin"
    extra.write_bytes(b"artifact")
    bundle.add_artifact("extra", extra, precision="fp32")
    reopened = Bundle.open(bundle_copy)
    assert reopened.manifest["artifacts"]["extra"]["file"] == "extra.bin"
    _flip_byte(extra)
    with pytest.raises(BundleError, match="artifact extra: file .*extra.bin was modified"):
        Bundle.open(bundle_copy)
