"""``build`` and ``verify``: artifacts gated on fidelity to the torch fp32 pipeline.

    bundle ─ builder(target) ─ artifact ─ runner ─ symbols ─┬─ tail.onnx ─ logits ─┐
    bundle ─ head_state.npz ─ torch fp32 head ─ symbols ────┼─ tail.onnx ─ logits ─┴─ top-1, KL
                                                            └─ agreement, ±1, |Δ|, rate change
    gate (sc2deploy.targets.gate.decide): on the task when the bundle has a tail, else symbols

What each target accepts (activations, search space, calibration, where it is
built) is read from its record (``sc2deploy.targets.registry``); the metric, the
rule and the thresholds are ``sc2deploy.targets.gate``.

Fidelity is measured on images not used for calibration: by default the
sample images are split in two halves (calibration, evaluation). A bundle with a tail is
judged on the task, whose verdict needs more images than the samples hold: its evaluation
images are ``--task-images`` (the user's), else ``TASK_IMAGES`` generated textures
(``sc2deploy.textures``, seed GATE_SEED: reproducible, never trained or evaluated on).
"""

import importlib.util
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from sc2deploy import __version__
from sc2deploy.atomic import ensure_writable
from sc2deploy.bundle import TXN_PREFIX, Bundle, Transaction
from sc2deploy.errors import BuildError, FidelityError, Interrupted, Sc2DeployError, UsageError
from sc2deploy.log import logger, step
from sc2deploy.machine import here_entry, here_key
from sc2deploy.options import option, validate
from sc2deploy.builders.speed import search_lines, speed_text, speed_vs_fp32, time_in_turns
from sc2deploy.preprocess import list_images, preprocessor, sample_images
from sc2deploy.targets.gate import (TASK_IMAGES, GateOptions, agreement, refuted,
                                   task_agreement)
from sc2deploy.targets.registry import (Fp16Options, Int8Options,  # re-exported
                                        Target, get_target)


@dataclass(frozen=True)
class BuildOptions:
    """How ``build`` makes and gates each target (``verify``: the gate only)."""

    calib: Optional[Sequence[Path]] = option(
        None, flag="--calib", type=Path, metavar="DIR", parse=list_images,
        help="calibration images (default: half of the bundled samples)")
    task_images: Optional[Sequence[Path]] = option(
        None, flag="--task-images", type=Path, metavar="DIR", parse=list_images,
        help=f"task gate (bundles with a tail): evaluation images, ideally >= {TASK_IMAGES} "
             f"and apart from --calib (default: {TASK_IMAGES} generated texture images)")
    search: bool = option(False, flag="--search", type=bool,
                          help="int8, onnx-fp16: try configurations, keep the fastest that "
                               "passes the gate (with --emulate: the first that passes on every "
                               "CPU)")
    allow_low_fidelity: bool = option(False, flag="--allow-low-fidelity", type=bool,
                                      help="keep an artifact that fails the gate")
    gate: GateOptions = option(GateOptions(), nested=GateOptions)
    int8: Int8Options = option(Int8Options(), nested=Int8Options)
    fp16: Optional[Fp16Options] = option(
        None, help="fp16 settings (Python API); None: keep in float what --keep-float names")
    latency_runs: int = option(10, type=int, minimum=1, help="timed inferences per artifact")

    def __post_init__(self):
        validate(self)

    def fp16_options(self) -> Fp16Options:
        """The fp16 settings: ``fp16``, else ``--keep-float`` (``int8.keep_float``)."""
        return self.fp16 if self.fp16 is not None else Fp16Options(self.int8.keep_float)

    def verdict(self, precision: str, stats: Dict) -> Dict:
        return self.gate.verdict(precision, stats)


def split_images(calib: Optional[Sequence[Path]]):
    """(calibration images, evaluation images); they never overlap."""
    samples = sample_images()
    if calib:
        names = {Path(p).resolve() for p in calib}
        return list(calib), [p for p in samples if p.resolve() not in names]
    half = len(samples) // 2
    return samples[:half], samples[half:]


@dataclass(frozen=True)
class EvalImages:
    """The images a verdict rests on and where they come from (said in the log and recorded)."""
    images: Sequence[Union[Path, np.ndarray]]  # files, or uint8 [H, W, 3] pixels (generated)
    source: str


def has_tail(bundle: Bundle) -> bool:
    """True when the bundle carries the classification tail the task gate runs."""
    return "file" in bundle.manifest.get("tail", {})


def task_images(bundle: Bundle, images: Optional[Sequence[Path]] = None,
                calib: Optional[Sequence[Path]] = None) -> EvalImages:
    """The task gate's images: ``images`` (the user's evaluation set), else ``TASK_IMAGES``
    generated textures (seed GATE_SEED). Fewer than ``TASK_IMAGES`` are used as given (the
    verdict then says what that costs); calibration images among them are warned about."""
    if images:
        images = list(images)
        used = {Path(p).resolve() for p in calib or ()}
        overlap = sum(Path(p).resolve() in used for p in images)
        if overlap:
            logger.warning("warning: %d of the %d task images also calibrate: the task "
                           "verdict is optimistic on them (give --task-images a set apart "
                           "from --calib)", overlap, len(images))
        if len(images) < TASK_IMAGES:
            logger.warning("warning: %d task images, fewer than %d: the verdict says what "
                           "that costs in certainty", len(images), TASK_IMAGES)
        folders = sorted({str(Path(p).parent) for p in images})
        return EvalImages(images, f"{len(images)} given images ({', '.join(folders)})"
                          + (f", {overlap} of them calibration images" if overlap else ""))
    from sc2deploy.textures import GATE_SEED, gate_images

    crop = bundle.preprocessing()
    size = max(256, crop.resize, *crop.crop)
    return EvalImages(gate_images(TASK_IMAGES, size),
                      f"{TASK_IMAGES} generated texture images (sc2deploy.textures, seed "
                      f"{GATE_SEED}, {size} px: no evaluation set given, see --task-images)")


def eval_images(bundle: Bundle, options: "BuildOptions", calib: Sequence[Path],
                evals: Sequence[Path]) -> EvalImages:
    """What a build measures on: the task's images when the task gate may decide, else
    ``evals`` (the samples not used to calibrate)."""
    if has_tail(bundle) and options.gate.kind != "symbols":
        return task_images(bundle, options.task_images, calib)
    if options.task_images:
        why = "has no tail (tail.onnx)" if not has_tail(bundle) else "is gated on symbols"
        raise UsageError(f"--task-images received, but {bundle.path} {why}: the task images "
                         "serve the task gate only; omit --task-images (symbols are measured "
                         "on the samples not used to calibrate)")
    return EvalImages(list(evals), f"{len(evals)} sample images not used to calibrate")


class Reference:
    """Torch fp32 symbols (and pre-rounding values, to spot .5 ties) on evaluation images
    (files, or uint8 [H, W, 3] pixels); ``source`` says where they come from."""

    def __init__(self, bundle: Bundle, images: Sequence[Union[Path, np.ndarray]],
                 source: Optional[str] = None):
        import torch  # host side: the reference is the torch fp32 head
        from PIL import Image

        from sc2deploy.export.heads import head_from_arrays

        self.module = head_from_arrays(bundle.model["family"], bundle.torch_head_arrays())
        pre = bundle.preprocessing()
        self.images = list(images)
        self.inputs = [pre.transform(Image.fromarray(p)) if isinstance(p, np.ndarray)
                       else pre(p) for p in images]
        self.source = source or f"{len(images)} images"
        with torch.no_grad():  # both heads' symbols are round(pre_round): run torch once
            self.pre_round = [self.module.pre_round(torch.from_numpy(x)).numpy()
                              for x in self.inputs]
        self.symbols = [np.round(v) for v in self.pre_round]
        side = self.module.output_names[1:]  # BQ: scale, zero_point (the tail's other inputs)
        with torch.no_grad():
            self.side = [dict(zip(side, (o.numpy() for o in self.module(torch.from_numpy(x))[1:])))
                         for x in self.inputs] if side else None
        self.server = server_outputs(bundle, self.symbols, self.side)


class StoredReference:
    """The torch outputs stored at export (reference.npz), for hosts without torch."""

    def __init__(self, bundle: Bundle):
        names = bundle.manifest["reference"]["images"]
        by_name = {p.name: p for p in sample_images()}
        if not all(n in by_name for n in names):
            raise UsageError("the bundle's reference images are not the bundled samples; "
                             "verify needs torch (or --images with torch) for this bundle")
        pre = bundle.preprocessing()
        self.images = [by_name[n] for n in names]
        self.inputs = [pre(p) for p in self.images]
        stored = bundle.reference()
        self.source = (f"the bundle's {len(names)} reference images (torch outputs stored at "
                       "export; no torch here)")
        self.symbols = [stored["symbols"][i:i + 1] for i in range(len(names))]
        self.pre_round = None
        side = bundle.model["latent"]["outputs"][1:]  # BQ: scale, zero_point
        self.side = [{n: stored[n][i:i + 1].astype(np.float32) for n in side}
                     for i in range(len(names))] if side else None
        self.server = server_outputs(bundle, self.symbols, self.side)


def server_outputs(bundle: Bundle, symbols, side=None) -> Dict[str, List[np.ndarray]]:
    """What the bundle's server-side models (tail.onnx, decoder.onnx) make of ``symbols``;
    ``side``: per image, the head's other outputs the tail takes (BQ: scale, zero_point)."""
    from sc2deploy.targets import SERVER_PARTS, load_server_runner

    out = {}
    for part in SERVER_PARTS:
        if "file" in bundle.manifest.get(part, {}):
            with load_server_runner(bundle, part) as runner:
                out[part] = [runner.infer(np.asarray(s, np.float32), side and side[i])
                             for i, s in enumerate(symbols)]
    return out


def _server_fidelity(bundle: Bundle, reference, symbols) -> Dict:
    """Task agreement (tail) and decoder distortion of the candidate's symbols."""
    got = server_outputs(bundle, symbols, getattr(reference, "side", None))  # fp32 scale (BQ)
    stats = {}
    if "tail" in got:
        stats["task"] = {**task_agreement(reference.server["tail"], got["tail"]),
                         "source": getattr(reference, "source", None)}
    if "decoder" in got:
        ref = np.concatenate([f.ravel() for f in reference.server["decoder"]]).astype(np.float64)
        new = np.concatenate([f.ravel() for f in got["decoder"]]).astype(np.float64)
        stats["decoder_relative_mse"] = float(np.sum((ref - new) ** 2) / max(np.sum(ref ** 2),
                                                                            1e-300))
    return stats


def pick_evenly(items: Sequence, n: int) -> list:
    """n items spread over the sequence, first one included, order kept."""
    if n <= 0 or not items:
        return []
    n = min(n, len(items))
    return [items[i * len(items) // n] for i in range(n)]


def emulation_indices(count: int, n: int) -> List[int]:
    """Which of ``count`` evaluation images are run under emulation (``n`` of them)."""
    return pick_evenly(list(range(count)), n)


def subset(reference, indices: Sequence[int]):
    """The reference restricted to some of its images (inputs, symbols, ties, the head's other
    outputs the tail takes, server)."""
    pick = (lambda seq: None if seq is None else [seq[i] for i in indices])
    source = getattr(reference, "source", None) or f"{len(reference.inputs)} images"
    if len(indices) != len(reference.inputs):
        source = f"{len(indices)} of {source}, picked evenly"
    return SimpleNamespace(inputs=pick(reference.inputs), symbols=pick(reference.symbols),
                           pre_round=pick(reference.pre_round),
                           side=pick(getattr(reference, "side", None)),
                           server={k: pick(v) for k, v in reference.server.items()},
                           source=source)


def preprocessed_as(bundle: Bundle, reference, mode: str):
    """``reference`` with its inputs preprocessed in ``mode`` (``sc2deploy.preprocess.MODES``);
    its symbols and server outputs stay the exact path's torch fp32 ones, so the gate measures
    what the mode changes. ``reduced_decodes`` (and ``source``) say how many images were
    decoded at reduced size."""
    from PIL import Image

    if mode == "exact":
        return reference
    pre = preprocessor(bundle.preprocessing(), mode)
    inputs, reduced = [], 0
    for image in reference.images:
        img = Image.fromarray(image) if isinstance(image, np.ndarray) else pre.load(image)
        reduced += getattr(img, "draft_scale", 1) > 1
        inputs.append(pre.transform(img))
    source = getattr(reference, "source", None) or f"{len(inputs)} images"
    return SimpleNamespace(**{**vars(reference), "inputs": inputs, "preprocess": mode,
                              "reduced_decodes": reduced,
                              "source": f"{source}; {mode} preprocessing, {reduced} of "
                                        f"{len(inputs)} decoded at reduced size"})


def evaluate(bundle: Bundle, target: Target, path: Path, reference: Reference,
             latency_runs: int = 10) -> Dict:
    """Agreement with the torch reference, rate change under the prior, latency p50."""
    runner_cls = target.load("runner")
    inp = bundle.model["input"]
    with runner_cls(path, inp["shape"], inp["name"], 1) as runner:
        symbols = [runner.infer(x) for x in reference.inputs]
        times = []
        for _ in range(latency_runs):
            start = time.perf_counter()
            runner.infer(reference.inputs[0])
            times.append(time.perf_counter() - start)
    return fidelity_stats(bundle, reference, symbols, 1e3 * float(np.median(times)), 1)


def fidelity_stats(bundle: Bundle, reference, symbols: Sequence[np.ndarray],
                   latency_p50_ms: Optional[float] = None,
                   latency_threads: Optional[int] = None) -> Dict:
    """The statistics of :func:`evaluate` for symbols computed elsewhere (one array per
    reference input, e.g. by an emulated CPU); latency None when it was not measured."""
    if len(symbols) != len(reference.inputs):
        raise FidelityError(f"received symbols for {len(symbols)} images, expected "
                            f"{len(reference.inputs)} (one per reference image)", {})
    stats = agreement(reference.symbols, symbols, reference.pre_round)
    stats.update(images=len(symbols), latency_p50_ms=latency_p50_ms,
                 latency_threads=latency_threads,
                 rate_change_pct=_rate_change(bundle, reference.symbols, symbols),
                 **_server_fidelity(bundle, reference, symbols))
    return stats


def _rate_change(bundle: Bundle, reference, candidate) -> Optional[float]:
    prior = bundle.prior()
    if prior is None:
        return None
    from sc2deploy.codec import LatentCodec

    codec = LatentCodec(prior)
    ref = sum(len(codec.encode(s[0])) for s in reference)
    new = sum(len(codec.encode(s[0])) for s in candidate)
    return 100.0 * (new - ref) / ref


def quantization(target: Target, recorded: Dict) -> Optional[str]:
    """What an int8 artifact quantizes: 'A8W8', 'A16W8' (16-bit activations), 'dynamic A8W8'
    or 'W8 only' (int8 weights; fp32 activations and arithmetic)."""
    if target.precision != "int8":
        return None
    activations = recorded.get("activations", "int8")
    return {"int16": "A16W8", "dynamic": "dynamic A8W8",
            "float": "W8 only"}.get(activations, "A8W8")


def build_targets(bundle_path: Path, names: Sequence[str], options: BuildOptions,
                  search: Optional[Callable[..., "Choice"]] = None) -> List[Dict]:
    """Build and gate each target on its own; return one row per target (failed ones too).

    Each target is one bundle transaction: it lands only when its gate passes,
    so a failure (or Ctrl-C) leaves the bundle and every earlier artifact as they were.
    ``search(txn, target, options, calibration, reference) -> Choice`` picks among the
    candidates (default :func:`host_search`: on this CPU;
    ``sc2deploy.orchestrate.emulation.search``: also on emulated CPUs, for every target).
    """
    bundle = Bundle.open(bundle_path)
    ensure_writable(bundle.path, "bundle")
    chosen = [get_target(n) for n in dict.fromkeys(names)]
    for target in chosen:  # refuse before anything is built
        if target.build_on == "device":
            raise UsageError(f"{target.name} is built on the device: run there "
                             f"`sc2deploy build-engine {bundle.path}`")
        missing = target.missing("build")
        if missing:
            raise UsageError(f"cannot build {target.name} here: {missing}")
        _check_activations(target, options)
    calib, evals = split_images(options.calib)
    measured = eval_images(bundle, options, calib, evals)
    if not measured.images:
        raise UsageError("no evaluation images left: --calib uses every sample image")
    with step(f"torch fp32 reference on {measured.source}"):
        reference = Reference(bundle, measured.images, measured.source)
    calibration = None
    if any(t.needs_calibration for t in chosen):
        pre = bundle.preprocessing()
        calibration = [pre(p) for p in calib]
    rows: List[Dict] = []
    for target in chosen:
        try:
            rows.append(_build_one(bundle_path, target, options, calibration, reference,
                                   search))
        except FidelityError as exc:
            logger.error("  %s", exc)
            rows.append({"target": target.name, "precision": target.precision,
                         "executed": target.executed(), "passed": False, "error": str(exc),
                         **exc.stats})
        except KeyboardInterrupt:
            kept = [r["target"] for r in rows if r["passed"]]
            raise Interrupted(
                f"interrupted while building {target.name}: the bundle is unchanged for it"
                + (f"; kept: {', '.join(kept)}" if kept else "")) from None
        # RuntimeError: torch.export / litert-torch converter failures (torch's errors derive
        # from it). onnxruntime's own errors derive from Exception only and are not caught.
        except (Sc2DeployError, RuntimeError) as exc:
            message = str(exc) + _runtime_hint(str(exc))
            logger.error("  %s: %s", target.name, message)
            rows.append({"target": target.name, "precision": target.precision,
                         "executed": target.executed(), "passed": False, "error": message})
    return rows


def _runtime_hint(message: str, advice: bool = True) -> str:
    """What a runtime's terse refusal means for these heads, where it is known and the
    message does not say it yet; ``advice``: also what to build instead (not in a search)."""
    if "DIV" in message and "zero_point" in message and "LiteRT refused" not in message:
        return ("; LiteRT refused to divide by a quantized value equal to its zero point: in "
                "these heads that is GDN's norm, whose calibrated range is too wide for int8 "
                "steps near its smallest values" + (
                    ". Build with --activations dynamic, or --search to try the target's other "
                    "configurations" if advice else ""))
    return ""


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _options_of(cfg: Union[Int8Options, Fp16Options]) -> Dict:
    """A configuration's fields, recorded for one refused before its builder said more."""
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def _check_activations(target: Target, options: BuildOptions) -> None:
    """Refuse, before anything is built, activations the target does not declare."""
    if not target.activations or (options.search and target.search):
        return  # no int8 options, or --search replaces them with the target's search space
    asked = options.int8.activations
    if asked not in target.activations:
        accepted = " or ".join(target.activations)
        raise UsageError(f"{target.name} accepts activations {accepted}, not {asked} (received "
                         f"--activations {asked}); build {target.name} with --activations "
                         f"{accepted}, in a separate `sc2deploy build` if other targets need "
                         f"{asked}")


def search_space(target: Target) -> List[Union[Int8Options, Fp16Options]]:
    """Configurations tried by --search, from cheapest to most float (the record's):
    Int8Options for int8 targets, Fp16Options (which nodes stay fp32) for fp16 ones."""
    return list(target.search)


def _with(options: BuildOptions, cfg) -> BuildOptions:
    """``options`` with one configuration of a search in the field its builder reads."""
    from dataclasses import replace

    return replace(options, **{"fp16" if isinstance(cfg, Fp16Options) else "int8": cfg})


@dataclass
class Candidate:
    """One configuration built on the host, with its fidelity and verdict on this CPU; or, in
    a search, one the converter or the runtime refused (``refused``: why; no artifact)."""
    config: Optional[Union[Int8Options, Fp16Options]]  # None: the target's only build
    stage: Path  # its staging folder (removed when another candidate is kept)
    path: Optional[Path]
    recorded: Dict
    stats: Dict
    verdict: Dict
    refused: Optional[str] = None

    def tried(self) -> Dict:
        """Its entry in the manifest's ``options.search``."""
        if self.refused:
            return {"options": self.recorded, "passed": False, "refused": self.refused}
        return {"options": self.recorded, "passed": self.verdict["passed"],
                "decision": self.verdict.get("decision"), **self.stats}

    def describe(self) -> str:
        return "default" if self.config is None else _describe(self.config, self.recorded)


@dataclass
class Choice:
    """What a search keeps: the candidate, the verdict that decides, where it was measured."""
    candidate: Candidate
    recorded: Dict  # options to record, with "search" (every configuration tried)
    verdict: Dict  # the deciding verdict, with "cpu": where it was taken
    fidelity_by_cpu: Dict  # key -> entry (sc2deploy.machine), the host's included
    tried: int = 1
    note: Optional[str] = None  # how it was picked, for the log and the row
    deciding: Optional[Dict] = None  # the stats the verdict was taken on (default: the host's)
    row: Dict = field(default_factory=dict)  # more fields for the build's row


def configurations(target: Target, options: BuildOptions) -> list:
    """What a build tries: the search space under --search, else the options as given."""
    return search_space(target) if options.search and target.search else [None]


def candidates(txn: Transaction, target: Target, options: BuildOptions, calibration,
               reference) -> Iterator[Candidate]:
    """Build each configuration in its own staging folder and measure it on this CPU. In a
    search, a configuration the converter or the runtime refuses is yielded as refused (its
    folder removed) and the search goes on; a build without a search raises the refusal."""
    builder = target.load("builder")
    for cfg in configurations(target, options):
        stage, recorded = txn.stage(), None
        try:
            path, recorded = builder(txn.bundle, options if cfg is None else _with(options, cfg),
                                     calibration, stage)
            stats = evaluate(txn.bundle, target, path, reference, options.latency_runs)
        # as build_targets catches: converter (RuntimeError) and runtime refusals
        except (Sc2DeployError, RuntimeError) as exc:
            if cfg is None:
                raise
            shutil.rmtree(stage, ignore_errors=True)
            found = Candidate(cfg, stage, None, recorded or _options_of(cfg), {},
                              {"passed": False, "cpu": host_cpu(target)},
                              refused=_first_line(str(exc)) + _runtime_hint(str(exc), False))
            logger.info("  tried %-70s refused: %s", found.describe(), found.refused)
            yield found
            continue
        verdict = {**options.verdict(target.precision, stats), "cpu": host_cpu(target)}
        found = Candidate(cfg, stage, path, recorded, stats, verdict)
        if cfg is not None:
            logger.info("  tried %-70s %8.4f %% equal, rate %+.3f %%,%s p50 %6.1f ms%s",
                        found.describe(), stats["agreement_pct"],
                        stats["rate_change_pct"] or 0.0, _task_text(stats),
                        stats["latency_p50_ms"], "  passes" if verdict["passed"] else "")
        yield found


def faithfulness(stats: Dict):
    """How close to the fp32 pipeline, for ranking failures: task first, then symbols."""
    task = stats.get("task")
    if task:
        return (task["top1_agree"] / max(task["images"], 1), -task["kl_mean"],
                stats["agreement_pct"])
    return (stats["agreement_pct"],)


SCREEN_IMAGES = 32  # a search's first look at each configuration (evenly picked images)
NEAR = 1.3  # screening p50s within this factor of a passing one's are measured and timed too


def host_search(txn: Transaction, target: Target, options, calibration, reference) -> Choice:
    """Keep the fastest configuration that passes the gate here (else the most faithful);
    losers' folders are removed at once.

    With several configurations and more than SCREEN_IMAGES images, each is first measured on
    SCREEN_IMAGES of them: under the task gate those images can refute a configuration (the
    interval wholly below the bar, or the KL above it) but not pass one, so the others are then
    measured on every image, fastest first (:func:`_confirm`): a verdict rests on every image.
    The ones that pass are then timed in turns (:func:`sc2deploy.builders.speed.time_in_turns`),
    and the fastest kept."""
    configs = configurations(target, options)
    screen = len(configs) > 1 and len(reference.inputs) > SCREEN_IMAGES
    first = (subset(reference, emulation_indices(len(reference.inputs), SCREEN_IMAGES))
             if screen else reference)
    tried, kept, least_bad, refused = [], [], None, []
    for found in candidates(txn, target, options, calibration, first):
        tried.append(found.tried())
        if found.refused:
            refused.append(found)
        elif not (screen and "evidence" in found.verdict and refuted(found.verdict)):
            kept.append((len(tried) - 1, found))
        elif least_bad is None or faithfulness(found.stats) > faithfulness(least_bad[1].stats):
            if least_bad is not None:
                shutil.rmtree(least_bad[1].stage)
            least_bad = (len(tried) - 1, found)
        else:
            shutil.rmtree(found.stage)
    if len(refused) == len(tried):
        raise every_one_refused(target, refused)
    if screen:  # every one refuted: the most faithful, measured on every image
        if least_bad is not None and kept:
            shutil.rmtree(least_bad[1].stage)
        kept = _confirm(txn, target, options, reference, kept or [least_bad], tried)
    _time_passing(txn.bundle, target, kept, reference.inputs[0], tried)
    kept = [found for _, found in kept]
    best = None
    for found in kept:
        ok = found.verdict["passed"]
        key = (ok, (-found.stats["latency_p50_ms"],) if ok else faithfulness(found.stats))
        if best is None or key > best[0]:
            if best is not None:
                shutil.rmtree(best[1].stage, ignore_errors=True)
            best = (key, found)
        else:
            shutil.rmtree(found.stage, ignore_errors=True)
    found = best[1]
    recorded = found.recorded if found.config is None else {**found.recorded, "search": tried}
    return Choice(found, recorded, found.verdict,
                  host_fidelity(target, found.stats, found.verdict), tried=len(tried),
                  note=refused_note(refused, len(tried)))


def _time_passing(bundle: Bundle, target: Target, kept: List[Tuple], x, tried: List[Dict]
                  ) -> None:
    """Time the passing candidates (index in ``tried``, candidate) in turns: their p50 then
    decides, here and in ``tried``, rather than each one's own short run."""
    passing = [(i, c) for i, c in kept if c.verdict["passed"]]
    if len(passing) < 2:
        return
    p50s = time_in_turns(bundle, [(target, c.path) for _, c in passing], x)
    for (index, found), p50 in zip(passing, p50s):
        found.stats["latency_p50_ms"] = p50
        tried[index] = {**tried[index], "latency_p50_ms": p50, "timed_in_turns": True}


def every_one_refused(target: Target, refused: Sequence[Candidate]) -> BuildError:
    """The error of a search whose every configuration was refused, each with its reason."""
    return BuildError(f"{target.name}: every one of the {len(refused)} configurations of the "
                      "search was refused: " + "; ".join(f"{c.describe()}: {c.refused}"
                                                         for c in refused)
                      + f" (try another {target.precision} target)")


def refused_note(refused: Sequence[Candidate], tried: int) -> Optional[str]:
    """The row's word on a search's refused configurations (None when none was)."""
    if not refused:
        return None
    return (f"{len(refused)} of {tried} configurations refused: "
            + "; ".join(f"{c.describe()}: {c.refused}" for c in refused))


def _confirm(txn: Transaction, target: Target, options, reference, screened: List[Tuple],
             tried: List[Dict]) -> List[Candidate]:
    """Screened (index in ``tried``, candidate) measured on every image, fastest first, until
    one passes and then those within NEAR of its screening p50 (a short run's noise could
    have ordered them wrongly; the slower ones are removed). Each measured one's entry in
    ``tried`` then holds its measure on every image."""
    measured, passed_at = [], None
    for index, found in sorted(screened, key=lambda e: e[1].stats["latency_p50_ms"]):
        if passed_at is not None and found.stats["latency_p50_ms"] > NEAR * passed_at:
            shutil.rmtree(found.stage, ignore_errors=True)  # slower than one that passes
            continue
        stats = evaluate(txn.bundle, target, found.path, reference, options.latency_runs)
        verdict = {**options.verdict(target.precision, stats), "cpu": host_cpu(target)}
        full = Candidate(found.config, found.stage, found.path, found.recorded, stats, verdict)
        logger.info("  on all %d images: %-53s %8.4f %% equal,%s %s", len(reference.inputs),
                    full.describe(), stats["agreement_pct"], _task_text(stats),
                    "passes" if verdict["passed"] else "does not pass")
        tried[index] = {**full.tried(), "screened": {"images": found.stats["images"],
                                                     "decision": found.verdict.get("decision")}}
        measured.append((index, full))
        if verdict["passed"] and passed_at is None:
            passed_at = found.stats["latency_p50_ms"]
    return measured


def host_cpu(target: Target) -> str:
    """This machine's fidelity key for ``target``'s runtime (where a host verdict is taken)."""
    runtime, module = target.runtime_name, target.runtime_module
    return here_key(runtime, module)


def _describe(cfg: Union[Int8Options, Fp16Options], recorded: Dict) -> str:
    keep_float = recorded.get("keep_float", cfg.keep_float)  # as resolved by the builder
    if isinstance(cfg, Fp16Options):
        if not keep_float:
            return "every node fp16"
        nodes = f"{len(keep_float)} node{'s' if len(keep_float) > 1 else ''}"
        return f"fp32: {', '.join(cfg.keep_float)} ({nodes})"
    if cfg.activations == "float":
        parts = ["W8 weights only, fp32 activations"]
    else:
        parts = [f"act {cfg.activations}", "per-channel" if cfg.per_channel else "per-tensor",
                 cfg.calibration]
    if cfg.reduce_range:
        parts.append("reduce-range")
    if keep_float:
        parts.append("float: " + ",".join(keep_float))
    return ", ".join(parts)


def _task_text(stats: Dict) -> str:
    task = stats.get("task")
    if not task:
        return ""
    lo, hi = task["top1_ci95_pct"]
    return (f" top-1 {task['top1_agree']}/{task['images']} (95 % {lo:.1f}-{hi:.1f} %), KL "
            f"{task['kl_mean']:.2e},")


def _refusal(target: Target, choice: Choice, options: BuildOptions, bundle: Bundle) -> str:
    """Why the gate refused ``target`` (which rule, on which CPU; with a search: that nothing
    passed and the most faithful configuration), what happened to the artifact, what to try."""
    stats, verdict, path = choice.deciding or choice.candidate.stats, choice.verdict, \
        choice.candidate.path
    task = stats.get("task")
    if verdict["rule"].startswith("task"):
        evidence = verdict["evidence"]
        failed = []
        if evidence["decision"] != "passed":
            failed.append(f"the top-1 agreement's lower bound ({evidence['certainty']})")
        if task["kl_mean"] > verdict["max_kl"]:
            failed.append(f"mean KL ({task['kl_mean']:.3g} > {verdict['max_kl']:g} nats)")
        what = (f"the server's top-1 equals the fp32 pipeline's on {task['top1_agree']} of "
                f"{task['images']} images, mean KL {task['kl_mean']:.3g} nats "
                f"({stats['agreement_pct']:.4f} % of symbols equal) on {verdict['cpu']}: it "
                f"fails {' and '.join(failed)}; the gate is {verdict['rule']}")
    else:
        what = (f"{stats['agreement_pct']:.4f} % of symbols equal the torch fp32 reference on "
                f"{verdict['cpu']}, below the {verdict['min_agreement_pct']} % required")
    if choice.tried > 1:
        what = (f"none of the {choice.tried} configurations tried passed the gate; the most "
                f"faithful ({choice.candidate.describe()}): {what}")
    if bundle.path in path.parents and TXN_PREFIX not in str(path):
        kept = f"{path.name} is the export's own and stays; {target.name} was not recorded"
    else:
        kept = "the new artifact was discarded; the bundle is unchanged"
    hints = []
    if target.search and not options.search:
        hints.append(f"--search to try other {target.precision} configurations")
    hints.append("--allow-low-fidelity to keep it anyway")
    return f"{target.name}: {what}; {kept} (try {', or '.join(hints)})"


def host_fidelity(target: Target, stats: Dict, verdict: Dict) -> Dict:
    """The build host's measurement, under its key (``sc2deploy.machine``)."""
    runtime, module = target.runtime_name, target.runtime_module
    verdict = {k: v for k, v in verdict.items() if k != "cpu"}
    return {here_key(runtime, module): here_entry(runtime, module, stats["images"], stats,
                                                  verdict)}


def _build_one(bundle_path: Path, target: Target, options, calibration, reference,
               search=None) -> Dict:
    start = time.perf_counter()
    bundle = Bundle.open(bundle_path)
    with bundle.transaction() as txn, \
            step(f"building {target.name} ({target.precision}, {target.runtime})"):
        choice = (search or host_search)(txn, target, options, calibration, reference)
        path, stats, verdict = choice.candidate.path, choice.candidate.stats, choice.verdict
        seconds = time.perf_counter() - start
        ok = verdict["passed"]
        logger.info("  %s: %.4f %% symbols equal (%d ties), %.4f %% within ±1, rate %+.3f %%,%s "
                    "p50 %.1f ms, %.1f KiB, %.1f s; gate %s on %s: %s", target.name,
                    stats["agreement_pct"], stats["ties"], stats["within_one_pct"],
                    stats["rate_change_pct"] or 0.0, _task_text(stats), stats["latency_p50_ms"],
                    path.stat().st_size / 1024, seconds, verdict["rule"], verdict["cpu"],
                    "passed" if ok else "FAILED")
        if choice.note:
            logger.info("  %s: %s", target.name, choice.note)
        scheme = quantization(target, choice.recorded)
        speed = speed_vs_fp32(bundle, target, path, reference.inputs[0]) if ok or \
            options.allow_low_fidelity else None
        if speed:
            logger.info("  %s: %s", target.name, speed_text(speed))
        row = {**choice.row, **({"speed": speed} if speed else {})}
        if "search" in choice.recorded:
            row["search_lines"] = search_lines(target.name, choice.recorded["search"],
                                               choice.candidate.recorded, ok)
        if not ok and not options.allow_low_fidelity:
            raise FidelityError(_refusal(target, choice, options, bundle),
                                {**stats, "rule": verdict["rule"], "measured_on": verdict["cpu"],
                                 **verdict_fields(verdict),
                                 "quantization": scheme, **row,
                                 **({"note": choice.note} if choice.note else {})})
        txn.add_artifact(target.name, path, precision=target.precision, target=target.name,
                         runtime=target.runtime, executed=target.executed(),
                         options=choice.recorded, fidelity=stats,
                         gate=verdict, fidelity_by_cpu=choice.fidelity_by_cpu,
                         build={"seconds": round(seconds, 2), "bytes": path.stat().st_size,
                                "sc2deploy": __version__},
                         **({"quantization": scheme} if scheme else {}),
                         **({"speed": speed} if speed else {}))
        txn.commit()
    return {"target": target.name, "passed": ok, "file": path.name, "rule": verdict["rule"],
            **verdict_fields(verdict),
            "measured_on": verdict["cpu"], "precision": target.precision, "quantization": scheme,
            "executed": target.executed(),
            **({"note": choice.note} if choice.note else {}), **row, **stats}


def verify_images(bundle: Bundle, images: Optional[Sequence[Path]] = None) -> EvalImages:
    """What verify measures on: ``images``, else the task gate's images (a bundle with a
    tail: the same images as ``build``'s), else the evaluation half of the samples."""
    if images:
        return EvalImages(list(images), f"{len(images)} given images")
    if has_tail(bundle):
        return task_images(bundle)
    evals = split_images(None)[1]
    return EvalImages(evals, f"{len(evals)} sample images not used to calibrate")


def verify_reference(bundle: Bundle, images: Optional[Sequence[Path]] = None):
    """verify's reference: torch fp32 on :func:`verify_images`; without torch, the outputs
    stored in the bundle at export (its reference images: fewer, and the verdict says so)."""
    if importlib.util.find_spec("torch") is not None:
        measured = verify_images(bundle, images)
        with step(f"torch fp32 reference on {measured.source}"):
            return Reference(bundle, measured.images, measured.source)
    if images is None:
        return StoredReference(bundle)
    raise UsageError("verify --images needs torch for the reference; without torch, verify "
                     "uses the torch outputs stored in the bundle (omit --images)")


def verify_row(bundle: Bundle, name: str, target: Target, stats: Dict, verdict: Dict) -> Dict:
    """One row of verify's table: the artifact, its statistics and the gate's verdict."""
    entry = bundle.manifest["artifacts"][name]
    return {"target": name, "precision": entry.get("precision", target.precision),
            "quantization": entry.get("quantization"), "executed": target.executed(),
            "passed": verdict["passed"], "rule": verdict["rule"], **verdict_fields(verdict),
            **stats}


def verdict_fields(verdict: Dict) -> Dict:
    """A row's copy of the verdict's decision and, for the task gate, its evidence."""
    return {"decision": verdict.get("decision"),
            **({"task_evidence": verdict["evidence"]} if "evidence" in verdict else {})}


def verify_bundle(bundle_path: Path, images: Optional[Sequence[Path]] = None,
                  options: Optional[BuildOptions] = None, preprocess: str = "exact"
                  ) -> List[Dict]:
    """Side-by-side fidelity of every artifact in the bundle (fresh measurement), each with
    the verdict of the gate (``options``: thresholds; default: the defaults).

    ``preprocess``: how the artifacts' inputs are preprocessed (``fast``: against the torch
    reference on exact inputs, see :func:`preprocessed_as`). Each measurement is recorded in
    its artifact's ``fidelity_by_cpu`` (``fidelity_by_preprocess.MODE`` for a mode other than
    exact) under this machine's key (its row then has ``measured_on``), unless the bundle is
    read-only (a warning)."""
    from sc2deploy.targets.registry import targets

    bundle = Bundle.open(bundle_path)
    preprocessor(bundle.preprocessing(), preprocess)  # an unknown mode fails before torch runs
    reference = preprocessed_as(bundle, verify_reference(bundle, images), preprocess)
    options = options or BuildOptions()
    known = targets()
    rows, records = [], {}
    for name in bundle.manifest.get("artifacts", {}):
        target = known.get(name)
        if target is None or target.missing("run"):
            rows.append({"target": name, "skipped": "cannot run here"})
            continue
        entry = bundle.manifest["artifacts"][name]
        stats = {**evaluate(bundle, target, bundle.file(entry["file"]), reference),
                 "preprocess": preprocess,
                 **({"reduced_decodes": reference.reduced_decodes}
                    if preprocess != "exact" else {})}
        verdict = options.verdict(target.precision, stats)
        records[name] = host_fidelity(target, stats, verdict)
        rows.append(verify_row(bundle, name, target, stats, verdict))
    if records and _try_record(bundle.path, records, preprocess):
        for row in rows:
            if row["target"] in records:
                row["measured_on"] = next(iter(records[row["target"]]))
    return rows


def record_fidelity(bundle_path: Path, records: Dict[str, Dict[str, Dict]],
                    preprocess: str = "exact") -> None:
    """Merge ``{artifact: {fidelity key: entry}}`` into each artifact's ``fidelity_by_cpu``
    (another preprocessing mode: ``fidelity_by_preprocess.MODE``), in one transaction."""
    bundle = Bundle.open(bundle_path)
    with bundle.transaction() as txn:
        for name, entries in records.items():
            artifact = txn.manifest["artifacts"].get(name)
            if artifact is None:
                continue
            if preprocess == "exact":
                artifact.setdefault("fidelity_by_cpu", {}).update(entries)
            else:
                artifact.setdefault("fidelity_by_preprocess", {}).setdefault(
                    preprocess, {}).update(entries)
        txn.commit()


def _try_record(bundle_path: Path, records: Dict[str, Dict[str, Dict]],
                preprocess: str = "exact") -> bool:
    """verify's record: skipped with a warning when the bundle cannot be written."""
    try:
        ensure_writable(bundle_path, "bundle")
    except Sc2DeployError as exc:
        logger.warning("warning: this CPU's fidelity was not recorded in the manifest: %s", exc)
        return False
    record_fidelity(bundle_path, records, preprocess)
    return True


def ran_text(row: Dict) -> str:
    """What ran a row's artifact, in words ("" when the row does not say)."""
    return (row.get("executed") or {}).get("text", "")


def format_table(rows: List[Dict]) -> str:
    """One line per target: precision (with the int8 scheme), what ran it, agreement, rate,
    latency, verdict; rows with a "cpu" (verify --emulate) also say which CPU measured them."""
    task = any(r.get("task") for r in rows)
    cpus = any(r.get("cpu") for r in rows)
    width = max([10] + [len(r.get("cpu") or "") for r in rows])
    ran_width = max([3] + [len(ran_text(r)) for r in rows])
    lines = [f"{'target':<14}" + (f" {'measured on':<{width}}" if cpus else "")
             + f" {'precision':<17} {'ran':<{ran_width}} {'equal %':>10} {'±1 %':>9} "
             f"{'mean|Δ|':>8} {'rate Δ %':>9}"
             + (f" {'top-1':>9} {'95 % CI':>11} {'KL nats':>9}" if task else "")
             + f" {'p50 ms':>8}  result"]
    notes = []
    for r in rows:
        precision = r.get("precision", "")
        if r.get("quantization"):
            precision = f"{precision} {r['quantization']}".strip()
        head = (f"{r['target']:<14}" + (f" {r.get('cpu') or '':<{width}}" if cpus else "")
                + f" {precision:<17} {ran_text(r):<{ran_width}}")
        if "skipped" in r:
            lines.append(f"{head} skipped: {r['skipped']}")
            continue
        if "agreement_pct" not in r:
            lines.append(f"{head} FAILED: {r.get('error', '')}")
            continue
        rate = "n/a" if r["rate_change_pct"] is None else f"{r['rate_change_pct']:+.3f}"
        verdict = "" if "passed" not in r else ("passed" if r["passed"] else "FAILED")
        if r.get("rule"):
            undecided = r.get("decision") == "undecided"
            verdict += f" ({r['rule'].split(':')[0]}{', undecided' if undecided else ''})"
        if r.get("timing"):
            verdict += f"; {r['timing']}"
        if r.get("speed"):
            verdict += f"; {speed_text(r['speed'])}"
        if r.get("note"):
            verdict += f"; {r['note']}"
        extra = ""
        if task:
            t = r.get("task")
            ci = t and "{:.1f}-{:.1f}".format(*t["top1_ci95_pct"])
            extra = (f" {t['top1_agree']:>4}/{t['images']:<4} {ci:>11} {t['kl_mean']:>9.2e}" if t
                     else f" {'n/a':>9} {'n/a':>11} {'n/a':>9}")
        if r.get("task_evidence"):
            where = f" on {r['cpu']}" if r.get("cpu") else ""
            source = (r.get("task") or {}).get("source")
            notes.append(f"{r['target']}{where}: {r['task_evidence']['certainty']}"
                         + (f"; images: {source}" if source else ""))
        p50 = "n/a" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.1f}"
        lines.append(f"{head} {r['agreement_pct']:>10.4f} "
                     f"{r['within_one_pct']:>9.4f} {r['mean_abs_diff']:>8.5f} {rate:>9}{extra} "
                     f"{p50:>8}  {verdict}")
    if notes:
        lines.append("task evidence (the gate: the 95 % interval's lower bound of the top-1 "
                     "agreement at or above the bar):")
        lines.extend(f"  {n}" for n in notes)
    for r in rows:
        lines.extend(r.get("search_lines", ()))
    return "\n".join(lines)


def next_steps(bundle: Path, rows: List[Dict]) -> List[str]:
    """What to run after a build: profile a target that ran on its own runtime; a host check
    ran another runtime, so its own is built and profiled on the device."""
    built = [(r, get_target(r["target"])) for r in rows if r["passed"]]
    own = [r["target"] for r, t in built if not t.host_check]
    lines = [f"next: sc2deploy profile {bundle} --target {own[0]} --link lora-sx1276-20dbm "
             "-o results.json"] if own else []
    for r, t in built:
        check = t.host_check
        if check:
            lines.append(f"{t.name} ran {ran_text(r)}; build and profile "
                         f"{check.device_runtime} on {check.device}: sc2deploy build-engine "
                         f"{bundle} --precision {t.precision}, then sc2deploy profile {bundle} "
                         f"--target {check.device_target}")
    return lines


def outcome_lines(bundle: Path, rows: List[Dict]) -> List[str]:
    """What ``build`` prints: the table, each emulated CPU's cost, what to run next, and which
    targets failed (refused, or kept anyway by --allow-low-fidelity)."""
    lines = [format_table(rows)]
    for row in rows:
        for cpu, c in row.get("emulation", {}).items():
            lines.append(f"{row['target']} on {cpu} (qemu): {c['inference_s_per_image']:.2f} s "
                         f"per image per candidate ({c['images']} images, {c['process_s']:.1f} "
                         "s in all); emulated: no timing")
    lines += next_steps(bundle, rows)
    failed = [r["target"] for r in rows if not r["passed"]]
    refused = [r["target"] for r in rows if not r["passed"] and "error" in r]
    kept = [t for t in failed if t not in refused]
    if refused:
        lines.append(f"failed: {', '.join(refused)} (the bundle is unchanged for them)")
    if kept:
        lines.append(f"failed the gate, kept anyway (--allow-low-fidelity): {', '.join(kept)}")
    return lines


def verify_lines(bundle: Path, rows: List[Dict], preprocess: str = "exact") -> List[str]:
    """What ``verify`` prints: the table, how the inputs were preprocessed, where each
    measurement was recorded."""
    lines = [format_table(rows)]
    measured = [r for r in rows if "reduced_decodes" in r]
    if measured:
        r = measured[0]
        lines.append(f"preprocessing: {preprocess} ({r['reduced_decodes']} of {r['images']} "
                     "images decoded at reduced size), compared with the torch reference on "
                     "exact inputs")
    keys = sorted({r["measured_on"] for r in rows if r.get("measured_on")})
    if keys:
        where = ("fidelity_by_cpu" if preprocess == "exact"
                 else f"fidelity_by_preprocess.{preprocess}")
        lines.append(f"recorded: {where} of each artifact in {bundle}/manifest.json (this CPU: "
                     f"{', '.join(keys)})")
    return lines


def to_json(rows: List[Dict]) -> str:
    return json.dumps(rows, indent=2)
