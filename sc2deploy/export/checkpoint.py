"""Safe loading of torchdistill / sc2bench checkpoints and key normalization.

Checkpoints are untrusted: they are unpickled with ``weights_only=True`` and
only ``argparse.Namespace`` (what torchdistill stores as ``args``) is allowed
besides tensors and plain containers. Any other global is refused by name.
"""

import argparse
import pickle
import re
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import torch
from torch import Tensor

from sc2deploy.errors import CheckpointError

ALLOWED_GLOBALS = (argparse.Namespace,)
PREFIXES = {
    "fp": ("backbone.body.bottleneck_layer.", "backbone.bottleneck_layer.",
           "bottleneck_layer.", ""),
    "bq": ("bottleneck.", ""),
}
_PARTS = ("encoder.", "entropy_bottleneck.", "decoder.")
_ANCHOR = {"fp": "encoder.0.weight", "bq": "encoder.0.weight"}
_EB_NAME = re.compile(r"^entropy_bottleneck\.(?:_?(matri|bias|factor))(?:ces|es|s|x)?\.?(\d+)$")
_EB_PLURAL = {"matri": "matrices", "bias": "biases", "factor": "factors"}
_NAMING = re.compile(r"\d+$")
CHECKPOINT_FILE = ("expected one checkpoint file written by torch.save (e.g. ckpt.pt): name the "
                   "file inside it")


def load_state_dict(path: Path) -> Dict[str, Tensor]:
    """Load a checkpoint without executing arbitrary pickle; return its state dict."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; {CHECKPOINT_FILE}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not _looks_like_torch_save(path):
        raise CheckpointError(f"cannot read checkpoint {path}: not a file written by torch.save")
    try:
        with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_refusal(path, str(exc))) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path} holds a {type(obj).__name__}; expected a torchdistill checkpoint "
            "(a dict with 'model') or a state dict"
        )
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors; expected a state dict")
    return tensors


def _looks_like_torch_save(path: Path) -> bool:
    """A zip archive (torch >= 1.6) or a pickle stream (legacy format)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _refusal(path: Path, message: str) -> str:
    names = _unsafe_globals(path) or re.findall(r"GLOBAL\s+([\w.]+)", message)
    if names:
        what = "the globals " + ", ".join(sorted(set(names)))
    else:
        reason = next((ln.strip() for ln in message.splitlines()
                       if ln.strip().startswith("Unsupported")), "unsupported pickle content")
        what = f"pickle content that weights-only loading refuses ({reason})"
    return (
        f"refused to load {path}: it needs {what}, not allowed in an untrusted checkpoint "
        "(only tensors, plain containers and argparse.Namespace are). Re-save it as a "
        "plain state dict with torch.save(model.state_dict(), PATH)"
    )


def _unsafe_globals(path: Path):
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in ALLOWED_GLOBALS}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: fall back to torch's message
        return []
    return [g for g in found if g not in allowed]


def bottleneck_state(state: Dict[str, Tensor], family: str) -> Tuple[Dict[str, Tensor], str]:
    """Strip the bottleneck's key prefix and normalize entropy-bottleneck names.

    Returns the renamed sub-dict and the prefix that was found; tail keys
    (layer2…, fc…) are ignored.
    """
    state = strip_data_parallel(state)
    anchor = _ANCHOR[family]
    for prefix in PREFIXES[family]:
        if prefix + anchor in state:
            sub = {k[len(prefix):]: v for k, v in state.items()
                   if k.startswith(prefix) and k[len(prefix):].startswith(_PARTS)}
            return {_normalize_name(k): v for k, v in sub.items()}, prefix
    tried = ", ".join(repr(p + anchor) for p in PREFIXES[family])
    raise CheckpointError(
        f"no {family} bottleneck found: none of the keys {tried} is present. "
        f"First keys in the checkpoint: {_preview(state)}"
    )


def strip_data_parallel(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Drop DataParallel's ``module.`` prefix when every key has it."""
    if all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _normalize_name(key: str) -> str:
    m = _EB_NAME.match(key)
    if m:
        return f"entropy_bottleneck.{_EB_PLURAL[m.group(1)]}.{m.group(2)}"
    return key


def entropy_naming(state: Dict[str, Tensor]) -> Optional[str]:
    """Which CompressAI generation's names the entropy bottleneck's matrices have, if any.

    Returns ``"matrices.{i}"``, ``"_matrices.{i}"``, ``"_matrix{i}"`` or None; call it
    on the loaded checkpoint, before :func:`bottleneck_state` normalizes the names.
    """
    found = set()
    for key in state:
        name = "entropy_bottleneck." + key.rpartition("entropy_bottleneck.")[2]
        m = _EB_NAME.match(name)
        if m and m.group(1) == "matri":
            found.add(_NAMING.sub("{i}", name[len("entropy_bottleneck."):]))
    if len(found) > 1:
        raise CheckpointError(
            f"entropy_bottleneck matrices are named in several CompressAI styles "
            f"({', '.join(sorted(found))}); expected one of matrices.{{i}}, _matrices.{{i}}, "
            "_matrix{i}. Re-save the checkpoint from a single model")
    return found.pop() if found else None


def _preview(keys: Iterable[str], n: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:n])
    return shown + (f", … ({len(keys)} keys)" if len(keys) > n else "")


def check_shapes(state: Dict[str, Tensor], expected: Dict[str, Tuple[int, ...]], what: str) -> None:
    """Raise one error listing every missing or mis-shaped key."""
    problems = []
    for key, shape in expected.items():
        if key not in state:
            problems.append(f"missing {key} (expected shape {list(shape)})")
        elif tuple(state[key].shape) != tuple(shape):
            problems.append(f"{key} has shape {list(state[key].shape)}, expected {list(shape)}")
    if problems:
        raise CheckpointError(f"checkpoint does not fit {what}:\n  " + "\n  ".join(problems))
