"""The bundle: a directory that is the contract between host and device (torch-free).

Layout::

    BUNDLE/
      manifest.json    versions, shapes, preprocessing, sha256 of every file, a self-digest
      head.onnx        the fp32 head (more artifacts are added by `targets`)
      prior.npz        entropy-model tables (factorized-prior heads only)
      reference.npz    torch reference outputs on the sample images
      head_state.npz   the folded fp32 head's weights, to rebuild the torch reference on a host
      decoder.onnx     server side: symbols -> decoder features (when the checkpoint has one)
      tail.onnx        server side: symbols -> logits (classification students with their tail)
      tail-NAME.onnx   more tasks' tails behind the same head (`sc2deploy add-tail`)

Opening a bundle verifies every hash and the manifest's own digest, and names
the first file that is missing or was modified. Writers change a bundle only
through a :class:`Transaction`::

    stage new files in BUNDLE/.sc2deploy-txn-*/ ─ gate ─ commit: journal, rename files,
                                                          rename manifest.json, remove folder
    failure or Ctrl-C before commit ─ folder removed: the bundle is byte-for-byte as it was
"""

import copy
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from sc2deploy import atomic
from sc2deploy.errors import BundleError
from sc2deploy.preprocess import Preprocessing
from sc2deploy.prior import PriorTables

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_DIGEST_KEY = "manifest_sha256"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != _DIGEST_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
                          ).hexdigest()


def write_manifest(folder: Path, manifest: dict) -> None:
    """Seal ``manifest`` with its digest and write it canonically."""
    sealed = {k: v for k, v in manifest.items() if k != _DIGEST_KEY}
    sealed[_DIGEST_KEY] = _digest(sealed)
    atomic.write_bytes(Path(folder) / MANIFEST, _canonical(sealed))


def file_entries(manifest: dict) -> Iterator[Tuple[str, dict]]:
    """(label, entry) for every manifest entry that names a file and its sha256."""
    for key in ("prior", "reference", "torch_head", "decoder", "tail"):
        entry = manifest.get(key)
        if isinstance(entry, dict) and "file" in entry:
            yield key, entry
    for name, entry in sorted(manifest.get("tails", {}).items()):
        yield f"tail {name}", entry
    for name, entry in manifest.get("artifacts", {}).items():
        yield f"artifact {name}", entry


class Bundle:
    """A verified bundle directory."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest

    @classmethod
    def open(cls, path: Path) -> "Bundle":
        """Open ``path`` and verify the manifest digest and every file hash."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not path.is_dir():
            raise BundleError(f"bundle not found: {path} is not a directory")
        if not manifest_path.is_file():
            raise BundleError(f"{path} is not a bundle: {MANIFEST} is missing")
        finish_commits(path)
        raw = manifest_path.read_bytes()
        try:
            manifest = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{manifest_path} is corrupt: {exc}") from None
        if not isinstance(manifest, dict):
            raise BundleError(f"{manifest_path} is corrupt: expected a JSON object")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BundleError(
                f"{manifest_path} has format_version {version!r}; this sc2deploy reads "
                f"format_version <= {FORMAT_VERSION}: upgrade sc2deploy")
        if manifest.get(_DIGEST_KEY) != _digest(manifest) or raw != _canonical(manifest):
            raise BundleError(f"{manifest_path} was modified after it was written "
                              "(its digest does not match): re-export the bundle")
        bundle = cls(path, manifest)
        for label, entry in file_entries(manifest):
            bundle._verify(label, entry)
        return bundle

    def _verify(self, label: str, entry: dict) -> None:
        file = self.file(entry["file"])
        if not file.is_file():
            raise BundleError(f"{label}: file {file} is missing from the bundle")
        if sha256_file(file) != entry.get("sha256"):
            raise BundleError(f"{label}: file {file} was modified (sha256 mismatch)")

    def file(self, name: str) -> Path:
        """Path of a file named in the manifest; refuses names that leave the bundle."""
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise BundleError(f"manifest names an unsafe path {name!r}")
        return self.path.joinpath(*rel.parts)

    @property
    def model(self) -> dict:
        return self.manifest["model"]

    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_manifest(self.model["input"])

    def prior(self) -> Optional[PriorTables]:
        entry = self.manifest.get("prior", {})
        if "file" not in entry:
            return None
        return PriorTables.load(self.file(entry["file"]))

    def reference(self) -> Dict[str, np.ndarray]:
        """Reference outputs of the torch model (arrays keyed by output name)."""
        return self._arrays("reference", "carries no reference outputs")

    def torch_head_arrays(self) -> Dict[str, np.ndarray]:
        """Weights of the folded fp32 head (rebuilt with ``sc2deploy.export.heads``)."""
        return self._arrays("torch_head", "carries no head_state.npz; re-export it")

    def _arrays(self, key: str, missing: str) -> Dict[str, np.ndarray]:
        entry = self.manifest.get(key)
        if not entry:
            raise BundleError(f"{self.path}: the bundle {missing}")
        with np.load(self.file(entry["file"]), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def transaction(self) -> "Transaction":
        """Stage changes to this bundle; nothing changes until ``commit()``."""
        return Transaction(self)


TXN_PREFIX = ".sc2deploy-txn-"
_JOURNAL = "COMMIT.json"


class Transaction:
    """Files staged in a hidden folder of the bundle, swapped in with the manifest on commit.

    Used as a context manager: leaving the block without ``commit()`` (an error,
    a refused gate, Ctrl-C) removes the folder. One writer at a time (flock).
    """

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self._lock = _lock(bundle.path)
        _discard_abandoned(bundle.path)
        self.folder = Path(tempfile.mkdtemp(prefix=TXN_PREFIX, dir=bundle.path))
        self.manifest = copy.deepcopy(bundle.manifest)
        self._moves: Dict[str, Path] = {}  # final file name -> staged file
        self._stages = 0

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stage(self) -> Path:
        """A fresh empty folder for one builder's output (several per search)."""
        self._stages += 1
        folder = self.folder / f"stage-{self._stages}"
        folder.mkdir()
        return folder

    def add_artifact(self, name: str, file: Path, **fields) -> None:
        """Record ``file`` (staged, or already in the bundle) as artifact ``name``."""
        file = Path(file)
        final = self.include(file) if self.folder in file.parents else \
            file.relative_to(self.bundle.path).as_posix()
        self.manifest.setdefault("artifacts", {})[name] = {
            "file": final, "sha256": sha256_file(file), **fields}

    def include(self, staged: Path) -> str:
        """Move the staged file to the bundle's top level on commit; returns its final name."""
        final = Path(staged).name
        if final in self._moves or final == MANIFEST or final.startswith(TXN_PREFIX):
            raise BundleError(f"staged file name {final!r} cannot be used in a bundle")
        self._moves[final] = Path(staged)
        return final

    def commit(self) -> Bundle:
        """Journal the renames, make them, swap the manifest in; signals held meanwhile."""
        with atomic.deferred_signals():
            write_manifest(self.folder, self.manifest)
            journal = {"moves": {final: staged.relative_to(self.folder).as_posix()
                                 for final, staged in self._moves.items()}}
            atomic.write_text(self.folder / _JOURNAL, json.dumps(journal))
            _finish(self.bundle.path, self.folder)
        self.close()
        return Bundle.open(self.bundle.path)

    def close(self) -> None:
        """Remove the staging folder (if still there) and release the lock."""
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BundleError(f"{path}: another sc2deploy command is writing this bundle; wait for "
                          "it to finish") from None
    return fd


def _finish(path: Path, folder: Path) -> None:
    """Make a journaled commit's renames (idempotent: a crash mid-way is finished later)."""
    journal = json.loads((folder / _JOURNAL).read_text())
    for final, staged in journal["moves"].items():
        if (folder / staged).exists():
            os.replace(folder / staged, path / final)
    if (folder / MANIFEST).exists():
        os.replace(folder / MANIFEST, path / MANIFEST)
    shutil.rmtree(folder, ignore_errors=True)


def finish_commits(path: Path) -> None:
    """Finish a commit that a crash (not Ctrl-C: it is held) cut short, if the bundle is writable."""
    pending = [f for f in Path(path).glob(TXN_PREFIX + "*") if (f / _JOURNAL).is_file()]
    if not pending or not os.access(path, os.W_OK):
        return
    try:
        fd = _lock(Path(path))
    except BundleError:
        return  # the writer holding the lock is still committing
    try:
        for folder in pending:
            _finish(Path(path), folder)
    finally:
        os.close(fd)


def _discard_abandoned(path: Path) -> None:
    """Remove staging folders of killed writers (we hold the lock: none of them is alive)."""
    for folder in path.glob(TXN_PREFIX + "*"):
        if (folder / _JOURNAL).is_file():
            _finish(path, folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
