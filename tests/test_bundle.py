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


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_transaction_commits_artifact_and_manifest_together(bundle_copy):
    bundle = Bundle.open(bundle_copy)
    with bundle.transaction() as txn:
        extra = txn.stage() / "extra.bin"
        extra.write_bytes(b"artifact")
        txn.add_artifact("extra", extra, precision="fp32")
        assert not (bundle_copy / "extra.bin").exists()  # nothing lands before commit
        reopened = txn.commit()
    assert reopened.manifest["artifacts"]["extra"]["file"] == "extra.bin"
    assert not list(bundle_copy.glob(".sc2deploy-txn-*"))
    assert oct((bundle_copy / "manifest.json").stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    _flip_byte(bundle_copy / "extra.bin")
    with pytest.raises(BundleError, match="artifact extra: file .*extra.bin was modified"):
        Bundle.open(bundle_copy)


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_transaction_left_without_commit_changes_nothing(bundle_copy):
    before = _snapshot(bundle_copy)
    with pytest.raises(RuntimeError, match="builder failed"):
        with Bundle.open(bundle_copy).transaction() as txn:
            staged = txn.stage() / "head.onnx"  # would replace the export's own file
            staged.write_bytes(b"half-written")
            txn.add_artifact("onnx", staged)
            raise RuntimeError("builder failed")
    assert _snapshot(bundle_copy) == before


def test_one_writer_at_a_time(bundle_copy):
    bundle = Bundle.open(bundle_copy)
    with bundle.transaction():
        with pytest.raises(BundleError, match="another sc2deploy command is writing"):
            bundle.transaction()


def test_a_commit_cut_short_by_a_crash_is_finished_on_open(bundle_copy):
    """A journaled commit killed between its renames (SIGKILL, power loss) rolls forward."""
    import json

    from sc2deploy.bundle import write_manifest

    bundle = Bundle.open(bundle_copy)
    txn = bundle.transaction()
    staged = txn.stage() / "extra.bin"
    staged.write_bytes(b"artifact")
    txn.add_artifact("extra", staged)
    write_manifest(txn.folder, txn.manifest)
    moves = {"extra.bin": staged.relative_to(txn.folder).as_posix()}
    (txn.folder / "COMMIT.json").write_text(json.dumps({"moves": moves}))
    staged.replace(bundle_copy / "extra.bin")  # the first rename happened, then the crash
    import os

    os.close(txn._lock)  # a dead process holds no lock
    txn._lock = None
    reopened = Bundle.open(bundle_copy)
    assert reopened.manifest["artifacts"]["extra"]["file"] == "extra.bin"
    assert not list(bundle_copy.glob(".sc2deploy-txn-*"))


def test_abandoned_staging_is_removed_by_the_next_writer(bundle_copy):
    before = _snapshot(bundle_copy)
    leftover = bundle_copy / ".sc2deploy-txn-killed"
    (leftover / "stage-1").mkdir(parents=True)
    (leftover / "stage-1" / "head-int8.onnx").write_bytes(b"partial")
    Bundle.open(bundle_copy).transaction().close()
    assert _snapshot(bundle_copy) == before
