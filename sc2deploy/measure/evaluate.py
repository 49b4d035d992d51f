"""Accuracy and rate of a bundle's targets on a labeled image folder (device side, torch-free).

::

    image ─ preprocess ─┬─ head (onnx, fp32) ─ symbols ─ encode ─ bytes ─ decode ─ tail ─ top-5
                        └─ head (target T)   ─ symbols ─ encode ─ bytes ─ decode ─ tail ─ top-5

Every target runs the whole pipeline through its own runtime; the container is the real one
(the bundle's prior, the chosen coder) and is decoded again and checked before the tail (the
server's classifier, tail.onnx) sees it. BQ baselines send uint8 symbols with the scale and
zero point (no prior); those two come from head.onnx (fp32) for every target, as runners
return symbols only. Per target: top-1/top-5 accuracy with 95 % Wilson intervals, bytes per
image and the agreement of its top-1 with the fp32 pipeline's.

Labels: an ImageFolder layout (``DIR/CLASS/*.jpg``; the class index is the position of CLASS
among the sorted folder names, as torchvision's ImageFolder; ``classes`` overrides the order)
or a labels file (CSV ``filename,class_index`` or JSON ``{filename: index}``) over a flat DIR.
"""

import csv
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.errors import CodecError, UsageError
from sc2deploy.log import logger
from sc2deploy.measure.baselines import bq_bytes
from sc2deploy.measure.progress import Progress
from sc2deploy.measure.runtime import _runtime_version
from sc2deploy.preprocess import IMAGE_SUFFIXES, preprocessor
from sc2deploy.results.schema import header, utc_now
from sc2deploy.targets import get_target, load_runner, load_server_runner
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.targets.gate import wilson_interval

REFERENCE = "onnx"  # the fp32 pipeline: the bundle's head.onnx
TOP_K = 5


@dataclass(frozen=True)
class LabeledImages:
    """Images with their class indices, and where the labels came from."""

    root: Path
    images: Tuple[Path, ...]
    labels: Tuple[int, ...]
    source: str  # "folders" (ImageFolder layout) or "file" (--labels)
    class_names: Optional[Tuple[str, ...]] = None  # by index (folders), None for a labels file
    labels_path: Optional[Path] = None  # the --labels or --classes file


# ---------------------------------------------------------------- labels

def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _visible(folder: Path) -> List[Path]:
    """The entries of ``folder`` except hidden ones (``.DS_Store``, ``.git`` ...), sorted."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _unknown(path: Path, expected: str) -> UsageError:
    kind = "folder" if path.is_dir() else "file"
    return UsageError(f"unknown {kind} {path}: expected {expected} (image suffixes: "
                      f"{', '.join(IMAGE_SUFFIXES)}); move it out of the image folder")


def read_class_list(path: Path) -> List[str]:
    """Class folder names, one per line, in the model's class order (blank lines ignored)."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--classes {path}: cannot read it: {exc}") from None
    names = [n for n in names if n]
    if not names:
        raise UsageError(f"--classes {path}: no class names in it; expected one class folder "
                         "name per line, in the model's class order")
    seen = set()
    for n in names:
        if n in seen:
            raise UsageError(f"--classes {path}: class {n!r} is listed twice; expected each "
                             "class folder name once")
        seen.add(n)
    return names


def image_folder(root: Path, classes: Optional[Sequence[str]] = None) -> LabeledImages:
    """``root/CLASS/IMAGE`` files: class index = position of CLASS in sorted folder names
    (torchvision's ImageFolder), or in ``classes`` when given."""
    root = _folder(root)
    entries = _visible(root)
    for p in entries:
        if not p.is_dir():
            raise _unknown(p, "only class folders in an ImageFolder layout (DIR/CLASS/IMAGE); "
                              "for a flat folder of images give --labels FILE")
    if not entries:
        raise UsageError(f"image folder {root} is empty: expected class folders "
                         "(DIR/CLASS/IMAGE), or images and --labels FILE")
    order = list(classes) if classes is not None else [p.name for p in entries]
    index = {name: i for i, name in enumerate(order)}
    images, labels = [], []
    for folder in entries:
        if folder.name not in index:
            raise UsageError(f"class folder {folder} is not in the --classes list "
                             f"({len(order)} names): add it, or move the folder out")
        files = _visible(folder)
        for p in files:
            if not _is_image(p):
                raise _unknown(p, f"only images in the class folder {folder.name}")
        if not files:
            raise UsageError(f"class folder {folder} is empty: expected images of class "
                             f"{folder.name!r}; remove the folder or add its images")
        images += files
        labels += [index[folder.name]] * len(files)
    return LabeledImages(root, tuple(images), tuple(labels), "folders", tuple(order))


def labels_file(root: Path, path: Path) -> LabeledImages:
    """A flat folder of images labeled by a CSV (``filename,class_index``) or JSON file."""
    root = _folder(root)
    table = _read_labels(Path(path))
    entries = _visible(root)
    for p in entries:
        if not _is_image(p):
            raise _unknown(p, "only images in the folder given with --labels (a flat folder)")
    if not entries:
        raise UsageError(f"image folder {root} is empty: expected the images named in {path}")
    unlabeled = [p.name for p in entries if p.name not in table]
    if unlabeled:
        shown = ", ".join(unlabeled[:3]) + (" ..." if len(unlabeled) > 3 else "")
        raise UsageError(f"{len(unlabeled)} of {len(entries)} images in {root} have no label in "
                         f"{path}: {shown}; add them to the labels file or move them out")
    unused = len(table) - len(entries)
    if unused:
        logger.info("%s: %d labels name files that are not in %s (not evaluated)", path,
                    unused, root)
    return LabeledImages(root, tuple(entries), tuple(table[p.name] for p in entries), "file",
                         labels_path=Path(path))


def _folder(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"image folder not found: {root}")
    return root


def _read_labels(path: Path) -> Dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--labels {path}: cannot read it: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--labels {path}: not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise UsageError(f"--labels {path}: expected a JSON object {{filename: class "
                             f"index}}, got {type(raw).__name__}")
        pairs = [(str(k), v, f"key {k!r}") for k, v in raw.items()]
    else:
        rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
        if rows and len(rows[0]) == 2 and not rows[0][1].strip().lstrip("-").isdigit():
            rows = rows[1:]  # a header line (filename,class_index)
        pairs = []
        for n, row in enumerate(rows, 1):
            if len(row) != 2:
                raise UsageError(f"--labels {path}: row {n} has {len(row)} fields {row!r}; "
                                 "expected filename,class_index")
            value = row[1].strip()
            pairs.append((row[0].strip(), int(value) if value.lstrip("-").isdigit() else value,
                          f"row {n}"))
    table = {}
    for name, value, where in pairs:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError(f"--labels {path}: {where}: class index {value!r}; expected an "
                             "integer >= 0")
        if name in table:
            raise UsageError(f"--labels {path}: {where}: {name!r} is labeled twice")
        table[name] = value
    if not table:
        raise UsageError(f"--labels {path}: no labels in it; expected filename,class_index rows "
                         "(CSV) or {filename: index} (JSON)")
    return table


def read_labeled(images: Path, labels: Optional[Path] = None,
                 classes: Optional[Path] = None) -> LabeledImages:
    """The labeled images of a folder (ImageFolder layout, or flat with a labels file)."""
    if labels is not None and classes is not None:
        raise UsageError("--classes orders class folders (ImageFolder layout); --labels gives "
                         "the class indices directly: give one of them, not both")
    if labels is not None:
        return labels_file(images, labels)
    if classes is None:
        return image_folder(images)
    return replace(image_folder(images, read_class_list(classes)), labels_path=Path(classes))


# ---------------------------------------------------------------- evaluation

def _tail_classes(bundle: Bundle) -> int:
    tail = bundle.manifest.get("tail", {})
    if "file" not in tail:
        why = f" (export said: {tail['reason']})" if tail.get("reason") else ""
        raise UsageError(f"bundle {bundle.path} has no tail (tail.onnx){why}: evaluate needs a "
                         "classification student exported with its tail; export a checkpoint "
                         "that has layer2-4 and fc (sc2deploy export MODEL --checkpoint CKPT)")
    return int(tail["output"]["shape"][-1])


def _class_count_mismatch(data: LabeledImages, classes: int) -> Optional[str]:
    """Why the folders' class indices are likely not the tail's classes: their count differs
    from the tail's (None when it does not, and for a labels file, whose indices are given)."""
    if data.source != "folders" or not data.class_names or len(data.class_names) == classes:
        return None
    n = len(data.class_names)
    if data.labels_path is not None:
        return (f"--classes {data.labels_path} names {n} classes but the tail has {classes}: "
                "class indices follow the list's order, so they are the tail's only if the list "
                f"is the model's own class order; give the model's {classes} class names in order")
    return (f"{data.root} has {n} class folders but the tail has {classes} classes: folder i of "
            f"the sorted names is taken as class i (0..{n - 1}), right only if they are the "
            f"model's first {n} classes in its order; give --classes FILE (the model's "
            f"{classes} class folder names, in its order) or --labels FILE")


class _Container:
    """The real container: the bundle's prior and range coder (fp students)."""

    def __init__(self, bundle: Bundle, coder: Optional[str]):
        self._codec = latent_codec(bundle, coder)
        self.coder = self._codec.coder

    def encode(self, symbols: np.ndarray, side: Dict[str, np.ndarray]) -> bytes:
        return self._codec.encode(symbols)

    def decode(self, data: bytes, shape) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        return self._codec.decode(data, shape), {}


class _BQContainer:
    """BQ's container (``measure.baselines.bq_bytes`` raw): scale (float32), zero point
    (uint8), the uint8 symbols; the tail takes all three."""

    coder = "uint8"

    def encode(self, symbols: np.ndarray, side: Dict[str, np.ndarray]) -> bytes:
        return bq_bytes(symbols, float(side["scale"][0]), int(side["zero_point"][0]))["raw"]

    def decode(self, data: bytes, shape) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        q = np.frombuffer(data, np.uint8, offset=5)
        if q.size != int(np.prod(shape)):
            raise CodecError(f"BQ container holds {q.size} symbols, expected {int(np.prod(shape))} "
                             f"for the latent shape {list(shape)}")
        return q.reshape(shape).astype(np.int32), {
            "scale": np.frombuffer(data[:4], np.float32).copy(),
            "zero_point": np.frombuffer(data[4:5], np.uint8).astype(np.float32)}


def _container(bundle: Bundle, coder: Optional[str]):
    if bundle.prior() is not None:
        return _Container(bundle, coder)
    if coder is not None:
        raise UsageError(f"--coder {coder}: bundle {bundle.path} is a BQ baseline, its latent is "
                         "sent as uint8 (scale, zero point, symbols): drop --coder")
    return _BQContainer()


def _side_outputs(bundle: Bundle):
    """x → the head's outputs besides the symbols that the tail takes (BQ: scale and zero
    point, from head.onnx in fp32: runners return symbols only); {} for one-input tails."""
    names = [i["name"] for i in bundle.manifest["tail"].get("inputs", [])[1:]]
    if not names:
        return lambda x: {}
    import onnxruntime as ort

    head = bundle.file(bundle.manifest["artifacts"][REFERENCE]["file"])
    session = ort.InferenceSession(str(head), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    if not set(names) <= set(outputs):
        raise UsageError(f"tail.onnx takes {', '.join(names)} but head.onnx outputs "
                         f"{', '.join(outputs)}: re-export the bundle")
    return lambda x: dict(zip(names, session.run(names, {bundle.model["input"]["name"]: x})))


def runnable_targets(bundle: Bundle) -> List[str]:
    """The fp32 pipeline first, then every other artifact of the bundle that can run here."""
    names = [REFERENCE]
    for name in bundle.manifest.get("artifacts", {}):
        if name == REFERENCE:
            continue
        try:
            why = get_target(name).missing("run")
        except UsageError as exc:  # an artifact of a target this sc2deploy does not know
            why = str(exc)
        if why:
            logger.info("evaluate: skipping %s: %s", name, why)
        else:
            names.append(name)
    return names


def _ms_p50(**ns: Sequence[int]) -> Dict[str, float]:
    """Median milliseconds of each named list of nanosecond timings."""
    return {k: float(np.median(np.asarray(v, np.float64))) / 1e6 for k, v in ns.items()}


def _proportion(k: int, n: int) -> dict:
    lo, hi = wilson_interval(k, n)
    return {"pct": 100.0 * k / n if n else 0.0, "ci95": [100.0 * lo, 100.0 * hi]}


def evaluate(bundle_path: Path, data: LabeledImages, targets: Sequence[str] = (),
             coder: Optional[str] = None, label: Optional[str] = None,
             progress: bool = True, preprocess: str = "exact") -> dict:
    """The ``evaluation`` results document of ``targets`` (default: every runnable one);
    ``preprocess``: ``sc2deploy.preprocess.MODES``, for every target alike."""
    bundle = Bundle.open(bundle_path)
    pre = preprocessor(bundle.preprocessing(), preprocess)
    classes = _tail_classes(bundle)
    wrong = [(p, c) for p, c in zip(data.images, data.labels) if c >= classes]
    if wrong:
        p, c = wrong[0]
        raise UsageError(f"{len(wrong)} images have a class index beyond the tail's {classes} "
                         f"classes (0..{classes - 1}), e.g. {p} -> {c}: fix the labels"
                         + ("" if data.source == "file" else
                            " (the class index is the folder's position in the sorted folder "
                            "names, or in --classes)"))
    mismatch = _class_count_mismatch(data, classes)
    if mismatch:
        logger.warning("warning: %s", mismatch)
    names = list(dict.fromkeys([REFERENCE, *targets])) if targets else runnable_targets(bundle)
    codec = _container(bundle, coder)
    latent_shape = tuple(bundle.model["latent"]["shape"])
    k = min(TOP_K, classes)
    n = len(data.images)
    top1 = {t: np.zeros(n, dtype=bool) for t in names}
    top5 = {t: np.zeros(n, dtype=bool) for t in names}
    first = {t: np.zeros(n, dtype=np.int64) for t in names}
    nbytes = {t: np.zeros(n, dtype=np.int64) for t in names}
    device_ns = {t: np.zeros(n, dtype=np.int64) for t in names}
    server_ns = {t: np.zeros(n, dtype=np.int64) for t in names}
    with ExitStack() as stack:
        heads = {t: stack.enter_context(load_runner(bundle, t)) for t in names}
        tail = stack.enter_context(load_server_runner(bundle, "tail"))
        side_of = _side_outputs(bundle)
        bar = stack.enter_context(Progress("evaluate", n, enabled=progress))
        for i, (path, truth) in enumerate(zip(data.images, data.labels)):
            x = pre(path)
            side = side_of(x)
            for t, head in heads.items():
                t0 = time.perf_counter_ns()
                symbols = head.infer(x)[0]
                container = codec.encode(symbols, side)
                t1 = time.perf_counter_ns()
                decoded, got = codec.decode(container, latent_shape)
                logits = np.asarray(tail.infer(decoded[None].astype(np.float32),
                                               got)).reshape(-1)
                device_ns[t][i], server_ns[t][i] = t1 - t0, time.perf_counter_ns() - t1
                if not np.array_equal(decoded, symbols) or any(
                        not np.array_equal(got[k], v) for k, v in side.items()):
                    raise CodecError(f"{path}: {t}: the container decodes to other symbols than "
                                     f"were encoded ({codec.coder} coder): report this bug")
                best = np.argsort(-logits, kind="stable")[:k]
                first[t][i] = best[0]
                top1[t][i] = best[0] == truth
                top5[t][i] = truth in best
                nbytes[t][i] = len(container)
            bar.update(i + 1)
    rows = []
    for t in names:
        spec = get_target(t)
        quantization = bundle.manifest["artifacts"].get(t, {}).get("quantization")
        b = nbytes[t].astype(np.float64)
        same, c1, c5 = (int((first[t] == first[REFERENCE]).sum()), int(top1[t].sum()),
                        int(top5[t].sum()))
        rows.append({
            "target": t, "precision": " ".join(filter(None, (spec.precision, quantization))),
            "runtime": _runtime_version(spec.runtime), "executed": spec.executed(), "images": n,
            "top1": {"correct": c1, **_proportion(c1, n)},
            "top5": {"correct": c5, **_proportion(c5, n)},
            "bytes": {"mean": float(b.mean()), "p50": float(np.median(b)),
                      "min": float(b.min()), "max": float(b.max())},
            "top1_agreement": {"same": same, **_proportion(same, n)},
            "ms_p50": _ms_p50(device=device_ns[t], server=server_ns[t])})
    return {**header("evaluation", True, label or f"{bundle.model['name']}/evaluate",
                     utc_now(), bundle),
            "coder": codec.coder, "top_k": k, "preprocess": pre.mode,
            "dataset": {"images_dir": str(data.root), "labels": data.source, "images": n,
                        "classes": classes,
                        "labels_file": None if data.labels_path is None else str(data.labels_path),
                        "class_names": list(data.class_names) if data.class_names else None},
            "reference": REFERENCE, "targets": rows}


def format_evaluation(doc: dict) -> str:
    """The printed summary: one line per target."""
    d = doc["dataset"]
    lines = [f"{doc['label']}: {d['images']} images, {d['classes']} classes, coder "
             f"{doc['coder']}; top-1 agreement with the fp32 pipeline ({doc['reference']})"]
    for r in doc["targets"]:
        t1, t5, a = r["top1"], r["top5"], r["top1_agreement"]
        lines.append(f"  {r['target']:<16} top-1 {t1['pct']:5.1f} % [{t1['ci95'][0]:.1f}, "
                     f"{t1['ci95'][1]:.1f}]  top-{doc['top_k']} {t5['pct']:5.1f} % "
                     f"[{t5['ci95'][0]:.1f}, {t5['ci95'][1]:.1f}]  {r['bytes']['mean']:.0f} B/image"
                     f"  agree {a['same']}/{r['images']} ({a['pct']:.1f} %)"
                     f"  ran {r.get('executed', {}).get('text', r['runtime'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- input-compression baselines
#
#   image ─ preprocess (crop) ─┬─────────────────────────────── teacher ─ top-5  ("teacher")
#                              └─ JPEG/WebP at Q ─ bytes ─ decode ─ teacher ─ top-5  (a baseline)

BASELINE_MODEL = "teacher"


def parse_baselines(specs: Sequence[str]) -> Tuple[Tuple[str, int], ...]:
    """``["jpeg:10,50", "webp:90"]`` → ``(("jpeg", 10), ("jpeg", 50), ("webp", 90))``."""
    from sc2deploy.measure.baselines import IMAGE_FORMATS

    points: List[Tuple[str, int]] = []
    for spec in specs:
        codec, sep, qualities = str(spec).partition(":")
        codec = codec.strip().lower()
        if codec not in IMAGE_FORMATS or not sep:
            raise UsageError(f"--baselines {spec!r}: expected CODEC:Q1,Q2,... with CODEC one of "
                             f"{', '.join(IMAGE_FORMATS)}, e.g. jpeg:10,50,90")
        for q in qualities.split(","):
            q = q.strip()
            if not q.isdigit() or not 1 <= int(q) <= 100:
                raise UsageError(f"--baselines {spec!r}: quality {q!r}; expected integers from "
                                 "1 to 100 separated by commas, e.g. jpeg:10,50,90")
            if (codec, int(q)) not in points:
                points.append((codec, int(q)))
    return tuple(points)


def _teacher_session(path: Path, bundle: Bundle, labels: Sequence[int]):
    """An onnxruntime session of the teacher, checked against the head's input and the labels."""
    import onnxruntime as ort

    path = Path(path)
    what = "expected an ONNX classifier of the head's preprocessed input"
    if not path.is_file():
        raise UsageError(f"--teacher {path}: file not found; {what}")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise UsageError(f"--teacher {path}: onnxruntime cannot load it ({exc}); {what}") from None
    inputs, expected = session.get_inputs(), list(bundle.model["input"]["shape"])
    shape = list(inputs[0].shape) if len(inputs) == 1 else []
    if len(shape) != 4 or any(isinstance(d, int) and d != e for d, e in zip(shape, expected)):
        raise UsageError(f"--teacher {path}: its inputs are "
                         f"{[(i.name, i.shape) for i in inputs]}; {what}: one input of shape "
                         f"{expected}")
    classes = session.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and max(labels, default=0) >= classes:
        raise UsageError(f"--teacher {path}: it outputs {classes} classes but a label is "
                         f"{max(labels)}; give the teacher of this task")
    return session


def _ranked(session, x: np.ndarray) -> np.ndarray:
    """The teacher's best TOP_K classes (all of them when it has fewer), best first."""
    logits = np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0]).reshape(-1)
    return np.argsort(-logits, kind="stable")[:TOP_K]


def _accuracy(ranked: np.ndarray, labels: np.ndarray) -> Dict[str, dict]:
    n = len(labels)
    c1, c5 = int((ranked[:, 0] == labels).sum()), int((ranked == labels[:, None]).any(1).sum())
    return {"top1": {"correct": c1, **_proportion(c1, n)},
            "top5": {"correct": c5, **_proportion(c5, n)}}


def evaluate_baselines(bundle_path: Path, data: LabeledImages, teacher: Path,
                       points: Sequence[Tuple[str, int]], progress: bool = True) -> dict:
    """The ``teacher`` and ``baselines`` entries of an evaluation document.

    Each image is preprocessed as the head's input, compressed by each (codec, quality) of
    ``points`` (Pillow), decoded and classified by ``teacher`` (ONNX, onnxruntime); the
    teacher on the uncompressed input is the ``teacher`` entry.
    """
    import io

    from PIL import Image

    from sc2deploy.bundle import sha256_file
    from sc2deploy.measure.baselines import compress

    bundle = Bundle.open(bundle_path)
    session = _teacher_session(teacher, bundle, data.labels)
    pre = bundle.preprocessing()
    normalize = replace(pre, resize=min(pre.crop), exif_transpose=False)  # on cropped images
    n = len(data.images)
    clean: List[np.ndarray] = []
    clean_ns: List[int] = []
    ranked: Dict[Tuple[str, int], List[np.ndarray]] = {p: [] for p in points}
    sizes: Dict[Tuple[str, int], List[int]] = {p: [] for p in points}
    encode_ns: Dict[Tuple[str, int], List[int]] = {p: [] for p in points}
    server_ns: Dict[Tuple[str, int], List[int]] = {p: [] for p in points}
    with Progress("baselines", n, enabled=progress) as bar:
        for i, path in enumerate(data.images):
            img = pre.cropped_image(path)
            t0 = time.perf_counter_ns()
            clean.append(_ranked(session, normalize.transform(img)))
            clean_ns.append(time.perf_counter_ns() - t0)
            for p in points:
                t0 = time.perf_counter_ns()
                payload = compress(img, *p)
                t1 = time.perf_counter_ns()
                with Image.open(io.BytesIO(payload)) as decoded:
                    ranked[p].append(_ranked(session, normalize.transform(decoded.convert("RGB"))))
                encode_ns[p].append(t1 - t0)
                server_ns[p].append(time.perf_counter_ns() - t1)
                sizes[p].append(len(payload))
            bar.update(i + 1)
    labels = np.asarray(data.labels, dtype=np.int64)
    rows = []
    for p in points:
        b = np.asarray(sizes[p], dtype=np.float64)
        rows.append({"codec": p[0], "quality": p[1], "model": BASELINE_MODEL, "images": n,
                     "bytes": {"mean": float(b.mean()), "p50": float(np.median(b)),
                               "min": float(b.min()), "max": float(b.max())},
                     **_accuracy(np.stack(ranked[p]), labels),
                     "ms_p50": _ms_p50(device=encode_ns[p], server=server_ns[p])})
    return {"teacher": {"file": str(teacher), "sha256": sha256_file(Path(teacher)),
                        "images": n, **_accuracy(np.stack(clean), labels),
                        "ms_p50": _ms_p50(server=clean_ns)},
            "baselines": rows}


def format_baselines(doc: dict) -> str:
    """The printed summary of the baselines: the teacher, then one line per codec and quality."""
    t = doc["teacher"]
    lines = [f"input-compression baselines ({BASELINE_MODEL} {Path(t['file']).name}: top-1 "
             f"{t['top1']['pct']:.1f} % [{t['top1']['ci95'][0]:.1f}, {t['top1']['ci95'][1]:.1f}]"
             " on uncompressed inputs)"]
    for r in doc["baselines"]:
        t1 = r["top1"]
        lines.append(f"  {r['codec']:<5} q{r['quality']:<3}  top-1 {t1['pct']:5.1f} % "
                     f"[{t1['ci95'][0]:.1f}, {t1['ci95'][1]:.1f}]  "
                     f"{r['bytes']['mean']:.0f} B/image")
    return "\n".join(lines)
