"""``add-tail``: another task's tail behind the bundle's head (one encoding, several tasks).

::

    CKPT ─ its head == the bundle's head? (refused otherwise) ─ its tail ─ tail-NAME.onnx,
         verified on the bundle's reference outputs ─ manifest["tails"][NAME] (one Transaction)

A tail trained behind another encoder would receive symbols it was not trained on, so the
checkpoint's folded head (encoder and medians) must equal the bundle's ``head_state.npz``.
"""

import re
from pathlib import Path
from typing import Dict

import numpy as np

from sc2deploy.bundle import Bundle, sha256_file
from sc2deploy.errors import CheckpointError, ExportError, UsageError
from sc2deploy.export.bq_tail import bq_no_tail_reason, build_bq_tail
from sc2deploy.export.checkpoint import (bottleneck_state, entropy_naming, load_state_dict,
                                         strip_data_parallel)
from sc2deploy.export.decoder import build_decoder
from sc2deploy.export.heads import build_head, head_arrays
from sc2deploy.export.options import AddTailOptions
from sc2deploy.export.pipeline import TAIL_CHECKS
from sc2deploy.export.tables import AUTO, TABLE_FORMULAS, choose_formula
from sc2deploy.export.tail import build_tail, no_tail_reason, reference_samples, write_tail
from sc2deploy.log import step
from sc2deploy.specs import get_spec

NAME = re.compile(r"[a-z0-9_-]{1,32}")
RESERVED = ("tail", "default")  # the main tail is "tail" in the manifest, "default" in answers


def add_tail(options: AddTailOptions) -> Bundle:
    """Add ``tail-NAME.onnx`` of ``options.checkpoint`` to the bundle and return it reopened."""
    check_name(options.name)
    bundle = Bundle.open(options.bundle)
    if options.name in bundle.manifest.get("tails", {}) and not options.replace:
        raise UsageError(f"bundle {bundle.path} already has a tail named {options.name!r}; "
                         "pass --replace to replace it, or choose another --name")
    spec = get_spec(bundle.model["name"])
    with step(f"loading checkpoint {options.checkpoint}"):
        raw = load_state_dict(options.checkpoint)
        state, prefix = bottleneck_state(raw, spec.family)
        head = build_head(spec, state, choose_formula(_formula(bundle), entropy_naming(raw)))
        _check_same_head(bundle, head_arrays(head.module), options.checkpoint)
        decoder = build_decoder(state, head.prior.medians) if head.prior is not None else None
        full = strip_data_parallel(raw)
        tail = (build_tail(full, prefix, decoder) if spec.family == "fp" else
                build_bq_tail(full, prefix, spec.bq_channels))
    if tail is None:
        why = (no_tail_reason(prefix, decoder) if spec.family == "fp" else
               bq_no_tail_reason(full, prefix))
        raise CheckpointError(f"{options.checkpoint} has no classification tail to add: {why}")
    samples = reference_samples(bundle.reference(), tail, TAIL_CHECKS)
    with bundle.transaction() as txn:
        with step(f"exporting tail {options.name!r} ({', '.join(tail.layers)}) to ONNX"):
            folder = txn.stage()
            entry = write_tail(folder, tail, samples, f"tail-{options.name}.onnx")
        entry["file"] = txn.include(folder / entry["file"])
        entry["checkpoint"] = {"file": Path(options.checkpoint).name,
                               "sha256": sha256_file(Path(options.checkpoint))}
        txn.manifest.setdefault("tails", {})[options.name] = entry
        return txn.commit()


def check_name(name: str) -> None:
    """A tail name: 1-32 of a-z 0-9 _ -, and not one the main tail answers to."""
    if not NAME.fullmatch(name or "") or name in RESERVED:
        raise UsageError(f"tail name {name!r}: expected 1-32 characters of a-z 0-9 _ -, other "
                         f"than {' and '.join(map(repr, RESERVED))} (the bundle's own tail)")


def _formula(bundle: Bundle) -> str:
    """The tables formula the bundle's head was exported with (else auto)."""
    recorded = (bundle.manifest.get("prior", {}).get("tables_formula") or {}).get("formula")
    return recorded if recorded in TABLE_FORMULAS else AUTO


def _check_same_head(bundle: Bundle, arrays: Dict[str, np.ndarray], checkpoint: Path) -> None:
    theirs = bundle.torch_head_arrays()
    differ = sorted(k for k in set(arrays) | set(theirs)
                    if k not in arrays or k not in theirs
                    or not np.array_equal(arrays[k], theirs[k]))
    if differ:
        raise ExportError(f"{checkpoint}: its head differs from bundle {bundle.path}'s head in "
                          f"{', '.join(differ[:6])}{' …' if len(differ) > 6 else ''}; a tail "
                          "trained behind another encoder would receive symbols it was not "
                          "trained on. Add only tails trained on this bundle's (frozen) head")
