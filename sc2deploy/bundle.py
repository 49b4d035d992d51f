"""The bundle: a directory that is the contract between host and device (torch-free).

Layout::

    BUNDLE/
      manifest.json    versions, shapes, preprocessing, sha256 of every file, a self-digest
      head.onnx        the fp32 head (more artifacts are added by `targets`)
      prior.npz        entropy-model tables (factorized-prior heads only)
      reference.npz    torch reference outputs on the sample images
      head_state.npz   the folded fp32 head's weights, to rebuild the torch reference on a host

Opening a bundle verifies every hash and the manifest's own digest, and names
the first file that is missing or was modified.
"""

import copy
import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

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
    (Path(folder) / MANIFEST).write_bytes(_canonical(sealed))


def file_entries(manifest: dict) -> Iterator[Tuple[str, dict]]:
    """(label, entry) for every manifest entry that names a file and its sha256."""
    for key in ("prior", "reference", "torch_head", "decoder"):
        entry = manifest.get(key)
        if isinstance(entry, dict) and "file" in entry:
            yield key, entry
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

    def add_artifact(self, name: str, file: Path, **fields) -> None:
        """Record a file already inside the bundle as artifact ``name`` and reseal."""
        file = Path(file)
        rel = file.relative_to(self.path).as_posix()
        manifest = copy.deepcopy(self.manifest)
        manifest.setdefault("artifacts", {})[name] = {
            "file": rel, "sha256": sha256_file(file), **fields}
        write_manifest(self.path, manifest)
        self.manifest = json.loads((self.path / MANIFEST).read_bytes())
