"""``export``: checkpoint → verified bundle (head.onnx, prior.npz, reference.npz, manifest)."""

import datetime
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from sc2deploy import __version__
from sc2deploy.atomic import ensure_writable, replace_dir
from sc2deploy.bundle import FORMAT_VERSION, Bundle, sha256_file, write_manifest
from sc2deploy.errors import CheckpointError, UsageError
from sc2deploy.export.checkpoint import (CHECKPOINT_FILE, bottleneck_state, entropy_naming,
                                         load_state_dict, strip_data_parallel)
from sc2deploy.export.decoder import build_decoder, write_decoder
from sc2deploy.export.bq_tail import bq_no_tail_reason, build_bq_tail
from sc2deploy.export.tail import build_tail, no_tail_reason, reference_samples, write_tail
from sc2deploy.export.heads import BuiltHead, build_head, head_arrays
from sc2deploy.export.options import ExportOptions
from sc2deploy.export.onnx_head import OPSET, INPUT_NAME, export_onnx, verify_onnx
from sc2deploy.export.tables import AUTO, choose_formula
from sc2deploy.log import logger, step
from sc2deploy.machine import here_entry, here_key
from sc2deploy.preprocess import Preprocessing, sample_images
from sc2deploy.specs import (IMAGENET_MEAN, IMAGENET_STD, HeadSpec, demo_checkpoint,
                             demo_point, get_spec, is_demo)
from sc2deploy.targets.gate import decide

DECODER_CHECKS = 4  # reference latents the decoder's ONNX is checked on
TAIL_CHECKS = 16  # reference latents tail.onnx is checked on (logits and top-1)


def export_bundle(options: ExportOptions) -> Bundle:
    """Export ``options.model`` to a verified bundle at ``options.out`` and return it."""
    spec = get_spec(options.model)
    if options.input_size is not None:
        spec = spec.with_input_size(options.input_size)
    checkpoint = _checkpoint_path(options)
    out = Path(options.out)
    _check_destination(out, options.force)
    ensure_writable(out.parent, "the bundle's parent folder")

    with step(f"loading checkpoint {checkpoint}"):
        raw = load_state_dict(checkpoint)
        state, prefix = bottleneck_state(raw, spec.family)
        head = build_head(spec, state, choose_formula(options.tables_formula, entropy_naming(raw)))
        _note_unused_formula(options.tables_formula, head)
        decoder = build_decoder(state, head.prior.medians) if head.prior is not None else None
        tail, no_tail = _tail(strip_data_parallel(raw), spec, prefix, decoder)
    pre = Preprocessing(spec.resize, (spec.crop, spec.crop), IMAGENET_MEAN, IMAGENET_STD,
                        exif_transpose=options.exif_transpose)
    images = list(options.images) if options.images else sample_images()

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)
    try:
        manifest = _write_contents(work, spec, head, pre, images, decoder)
        manifest["tail"] = (_write_tail(work, tail, manifest) if tail is not None else
                            {"reason": no_tail})
        manifest["model"]["demo"] = is_demo(options.model)
        if is_demo(options.model):
            manifest["model"]["demo_point"] = demo_point(options.model)
        manifest["provenance"] = _provenance(checkpoint, prefix, head)
        write_manifest(work, manifest)
        replace_dir(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return Bundle.open(out)


def _checkpoint_path(options: ExportOptions) -> Path:
    if is_demo(options.model):
        if options.checkpoint is not None:
            raise UsageError(f"model {options.model!r} uses the bundled checkpoint; drop "
                             "--checkpoint or export 'entropic_student' with it")
        return demo_checkpoint(options.model)
    if options.checkpoint is None:
        raise UsageError(f"model {options.model!r} needs --checkpoint PATH (a torchdistill or "
                         "sc2bench checkpoint); only the demo ladder ships its own weights")
    path = Path(options.checkpoint)
    if path.is_dir():
        raise UsageError(f"--checkpoint {path} is a folder; {CHECKPOINT_FILE}")
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    return path


def _note_unused_formula(requested: str, head: BuiltHead) -> None:
    if requested == AUTO or head.tables_source == "computed":
        return
    why = ("the checkpoint stores CompressAI's update() tables, used as they are"
           if head.tables_source == "checkpoint" else "this model has no entropy model")
    logger.warning("  tables formula %s (--tables-formula) not used: %s", requested, why)


def _check_destination(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir() or any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise UsageError(f"--out {out} exists and is not a bundle; choose another path")
    if any(out.iterdir()) and not force:
        raise UsageError(f"bundle {out} already exists; pass --force to replace it")


def _write_contents(work: Path, spec: HeadSpec, head: BuiltHead, pre: Preprocessing,
                    images: List[Path], decoder: Optional[torch.nn.Module]) -> Dict:
    shape = spec.input_shape()
    onnx_path = work / "head.onnx"
    with step(f"exporting {spec.name} to ONNX (opset {OPSET}, input {list(shape)})"):
        export_onnx(head.module, shape, onnx_path, head.output_names,
                    {"sc2deploy_model": spec.name, "sc2deploy_family": spec.family})
    with step(f"preprocessing {len(images)} images and verifying onnxruntime against torch"):
        inputs = [pre(p) for p in images]
        reference, fidelity = verify_onnx(onnx_path, head.module, inputs)
    latent_shape = list(reference[0][0].shape[1:])
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": {
            "name": spec.name, "family": spec.family, "description": spec.description,
            "input": {"name": INPUT_NAME, "shape": list(shape), "layout": "NCHW",
                      "dtype": "float32", **pre.to_manifest()},
            "latent": {"shape": latent_shape, "outputs": list(head.output_names),
                       **_latent_meaning(spec)},
        },
        "artifacts": {"onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path),
                               "precision": "fp32", "opset": OPSET, "runtime": "onnxruntime",
                               "fidelity": fidelity,
                               "fidelity_by_cpu": _export_fidelity(fidelity)}},
    }
    manifest["prior"] = _write_prior(work, head)
    manifest["torch_head"] = _write_torch_head(work, spec, head)
    manifest["reference"] = _write_reference(work, head, reference, images)
    if decoder is not None:
        with step("exporting the decoder (server side) to ONNX"):
            symbols = [outs[0].astype(np.int32) for outs in reference[:DECODER_CHECKS]]
            manifest["decoder"] = write_decoder(work, decoder, symbols)
    return manifest


def _export_fidelity(fidelity: Dict) -> Dict:
    """The export's own check (every symbol equal to torch on this CPU, or no bundle) as
    head.onnx's ``fidelity_by_cpu`` entry, so that profile knows this CPU was verified."""
    verdict = decide("fp32", fidelity, None)
    return {here_key("onnxruntime", "onnxruntime"):
            here_entry("onnxruntime", "onnxruntime", fidelity["images"], fidelity, verdict)}


def _tail(state, spec: HeadSpec, prefix: str, decoder):
    """(tail module, None) or (None, why there is none); a broken tail never stops the head."""
    try:
        tail = (build_tail(state, prefix, decoder) if spec.family == "fp" else
                build_bq_tail(state, prefix, spec.bq_channels))
    except CheckpointError as exc:
        reason = f"the checkpoint's tail cannot be rebuilt: {exc}"
        logger.warning("  no tail exported: %s", reason)
        return None, reason
    if tail is None:
        reason = (no_tail_reason(prefix, decoder) if spec.family == "fp" else
                  bq_no_tail_reason(state, prefix))
        logger.info("  no tail exported: %s", reason)
        return None, reason
    return tail, None


def _write_tail(work: Path, tail, manifest: Dict) -> Dict:
    """tail.onnx, verified on the stored reference outputs of the head (all of its inputs)."""
    with step(f"exporting the tail (server side: {', '.join(tail.layers)}) to ONNX"):
        with np.load(work / manifest["reference"]["file"], allow_pickle=False) as data:
            samples = reference_samples(data, tail, TAIL_CHECKS)
        return write_tail(work, tail, samples)


def _latent_meaning(spec: HeadSpec) -> Dict:
    if spec.family == "fp":
        return {"dtype": "int32", "definition": "round(y - median[c])"}
    return {"dtype": "uint8", "definition": "round(clip(zero_point + y / scale, 0, 255)), "
            "scale = (max(y) - min(y)) / 255, zero_point = floor(clip(-min(y) / scale, 0, 255))"}


def _write_prior(work: Path, head: BuiltHead) -> Dict:
    if head.prior is None:
        return {"kind": "uint8-minmax", "note": "BQ baseline: no entropy model"}
    path = work / "prior.npz"
    head.prior.save(path)
    return {"file": path.name, "sha256": sha256_file(path), "kind": "factorized",
            "channels": head.prior.channels, "cdf_precision": 16,
            "tables_source": head.tables_source, "tables_formula": _formula_entry(head),
            "digest": head.prior.digest()}


def _formula_entry(head: BuiltHead) -> Optional[Dict]:
    if head.formula is None:
        return None
    return head.formula.to_manifest(used=head.tables_source == "computed")


def _write_torch_head(work: Path, spec: HeadSpec, head: BuiltHead) -> Dict:
    path = work / "head_state.npz"
    np.savez(path, **head_arrays(head.module))
    return {"file": path.name, "sha256": sha256_file(path), "family": spec.family,
            "note": "folded fp32 head for host-side builds and references (no pickle)"}


def _write_reference(work: Path, head: BuiltHead, reference, images: List[Path]) -> Dict:
    arrays = {}
    for i, name in enumerate(head.output_names):
        stacked = np.concatenate([outs[i] for outs in reference])
        if name == "symbols":
            lo, hi = stacked.min(), stacked.max()
            small = np.int16 if -2**15 <= lo and hi < 2**15 else np.int32
            stacked = stacked.astype(np.uint8 if head.prior is None else small)
        arrays[name] = stacked
    arrays["image_sha256"] = np.array([sha256_file(p) for p in images])
    path = work / "reference.npz"
    np.savez_compressed(path, **arrays)
    return {"file": path.name, "sha256": sha256_file(path), "source": "torch fp32",
            "images": [p.name for p in images]}


def _provenance(checkpoint: Path, prefix: str, head: BuiltHead) -> Dict:
    import onnx
    import onnxruntime

    return {
        "checkpoint": {"file": checkpoint.name, "sha256": sha256_file(checkpoint),
                       "key_prefix": prefix},
        "tables": head.tables_source,
        "tables_formula": _formula_entry(head),
        "tools": {"sc2deploy": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                  "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
                  "python": platform.python_version()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
