"""A family of bundles: the points of one β ladder (issue 22), torch-free.

The points share the input (shape and preprocessing) and the task (tails and their classes);
heads, priors and tails differ. ``serve`` holds them all and routes each container by the
prior digest in its header, so their 16-bit prior digests must differ too::

    bundle ─ signature: input + tasks ──┐
    bundle ─ signature ─────────────────┼─ equal? ─ prior digests distinct? ─ one family
    bundle ─ signature ─────────────────┘

:func:`ladder_points` turns the family into the adaptive policy's points: top-1 and per-image
ms (where it was evaluated; the stream re-times them) from each bundle's ``evaluate`` results,
reference bytes from its reference latents coded with its own prior (no head is run).
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.codec import container
from sc2deploy.errors import UsageError
from sc2deploy.measure.adaptive import Point
from sc2deploy.results.schema import load_results

FAMILY = "the points of one ladder: same input and task, different heads, priors and tails"


def signature(bundle: Bundle) -> dict:
    """What every point of a family shares: the input and each task's output shape."""
    manifest = bundle.manifest
    tasks = {}
    if isinstance(manifest.get("tail"), dict):
        tasks["tail"] = manifest["tail"].get("output", {}).get("shape")
    for name, entry in sorted(manifest.get("tails", {}).items()):
        tasks[f"tail:{name}"] = entry.get("output", {}).get("shape")
    if not tasks and isinstance(manifest.get("decoder"), dict):
        tasks["decoder"] = manifest["decoder"].get("output", {}).get("shape")
    return {"input": bundle.model["input"], "tasks": tasks or "decoding alone"}


def prior16(bundle: Bundle) -> Optional[int]:
    """The 16-bit prior digest a container of this bundle carries (None: no prior)."""
    digest = bundle.manifest.get("prior", {}).get("digest")
    return container.prior_digest16(digest) if digest else None


def check_family(bundles: Sequence[Bundle]) -> None:
    """UsageError naming the first bundle that is not of the first one's family, given twice,
    or whose containers the server could not tell apart (same 16-bit prior digest)."""
    first, base = bundles[0], signature(bundles[0])
    seen: Dict[str, Bundle] = {}
    priors: Dict[int, Bundle] = {}
    for bundle in bundles:
        digest = bundle.manifest["manifest_sha256"]
        if digest in seen:
            raise UsageError(f"bundle {bundle.path} is given twice (the same manifest as "
                             f"{seen[digest].path}): give each ladder point once")
        seen[digest] = bundle
        diff = differences(base, signature(bundle))
        if diff:
            raise UsageError(f"bundle {bundle.path} does not belong to the family of "
                             f"{first.path} ({FAMILY}): {'; '.join(diff[:4])}. Give only the "
                             "points of one ladder, or serve the other bundle on its own")
        p16 = prior16(bundle)
        if p16 is not None and p16 in priors and len(bundles) > 1:
            raise UsageError(f"bundles {priors[p16].path} and {bundle.path} have priors with the "
                             f"same 16-bit digest {p16:04x}: their containers cannot be told "
                             "apart; serve them from two servers")
        if p16 is not None:
            priors[p16] = bundle


def differences(a, b, path: str = "") -> List[str]:
    """Where two JSON values differ, as "path: a vs b"."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            here = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                out.append(f"{here}: {'missing' if key not in b else 'only here'} "
                           f"(first: {a.get(key, 'missing')!r}, this: {b.get(key, 'missing')!r})")
            else:
                out += differences(a[key], b[key], here)
        return out
    return [] if a == b else [f"{path}: {b!r} (the first bundle's: {a!r})"]


def open_family(paths: Sequence[Path]) -> List[Bundle]:
    """Open (and verify) every bundle, then check that they are one family."""
    if not paths:
        raise UsageError("no bundles: give at least one bundle directory")
    bundles = [Bundle.open(p) for p in paths]
    check_family(bundles)
    return bundles


def point_name(bundle: Bundle, names: Sequence[str] = ()) -> str:
    """The point's name: the bundle folder's name (its path when another point has it)."""
    name = bundle.path.name
    return str(bundle.path) if name in names else name


def reference_bytes(bundle: Bundle, codec) -> float:
    """Mean container bytes of the bundle's reference latents, coded with its prior."""
    symbols = bundle.reference().get("symbols")
    if symbols is None or not len(symbols):
        raise UsageError(f"bundle {bundle.path} carries no reference latents to predict its "
                         "bytes from; re-export it")
    return float(np.mean([len(codec.encode(z)) for z in symbols]))


def evaluated(bundle: Bundle, evaluations: Sequence[dict], target: str) -> dict:
    """The ``target`` entry of this bundle's evaluation (matched by manifest digest)."""
    digest = bundle.manifest["manifest_sha256"]
    for doc in evaluations:
        if doc.get("kind") == "evaluation" and doc["bundle"]["manifest_sha256"] == digest:
            for entry in doc["targets"]:
                if entry["target"] == target:
                    return entry
    raise UsageError(f"no evaluation of bundle {bundle.path} (manifest {digest[:12]}) with target "
                     f"{target} among the {len(evaluations)} --evaluation file(s): run `sc2deploy "
                     f"evaluate {bundle.path} --images DIR --target {target} -o EVAL.json` and "
                     "give it with --evaluation (the policy needs each point's top-1)")


def ladder_points(bundles: Sequence[Bundle], codecs: Sequence, evaluations: Sequence[dict],
                  target: str) -> List[Point]:
    """One policy point per bundle: top-1 and p50 device/server ms from its evaluation,
    reference bytes from its reference latents."""
    points: List[Point] = []
    for bundle, codec in zip(bundles, codecs):
        entry = evaluated(bundle, evaluations, target)
        ms = entry.get("ms_p50") or {}
        points.append(Point(point_name(bundle, [p.name for p in points]), entry["top1"]["pct"],
                            reference_bytes(bundle, codec), ms.get("device", 0.0) / 1e3,
                            ms.get("server", 0.0) / 1e3))
    return points


def load_evaluations(paths: Sequence[Path]) -> List[dict]:
    """Evaluation results files (``sc2deploy evaluate -o``), validated."""
    docs = load_results(paths)
    wrong = [str(p) for p, d in zip(paths, docs) if d["kind"] != "evaluation"]
    if wrong:
        raise UsageError(f"--evaluation expects results of `sc2deploy evaluate`; "
                         f"{', '.join(wrong)} hold another kind")
    return docs


def describe(points: Sequence[Point], bundles: Sequence[Bundle], overhead: float = 0
             ) -> List[dict]:
    """The points as the results record them (``overhead``: bytes per send in ``p.bytes``
    besides the container)."""
    return [{"name": p.name, "bundle": b.manifest["manifest_sha256"], "path": str(b.path),
             "top1": p.top1, "reference_bytes": p.bytes - overhead, "encode_ms": p.encode_s * 1e3,
             "server_ms": p.server_s * 1e3} for p, b in zip(points, bundles)]
