"""sc2deploy evaluate: accuracy, intervals and bytes of a bundle's targets on labeled images."""

import json
import math

import numpy as np
import onnxruntime as ort
import pytest

from sc2deploy.cli import main
from sc2deploy.errors import UsageError
from sc2deploy.measure.evaluate import (evaluate, evaluate_baselines, format_baselines,
                                        format_evaluation, image_folder, labels_file,
                                        parse_baselines, read_labeled)
from sc2deploy.orchestrate.demo import DEMO_TEACHER
from sc2deploy.preprocess import sample_images
from sc2deploy.results.schema import load_results, validate, write_results
from sc2deploy.targets.encoding import encode_images

N = 8  # images: the first half labeled with the fp32 pipeline's own top-1, the rest not


@pytest.fixture(scope="module")
def logits(student_bundle):
    """The fp32 pipeline's logits per sample image, by onnxruntime directly (no codec: the
    codec is lossless, which evaluate checks on every container)."""
    b = student_bundle
    head = ort.InferenceSession(str(b.file("head.onnx")), providers=["CPUExecutionProvider"])
    tail = ort.InferenceSession(str(b.file("tail.onnx")), providers=["CPUExecutionProvider"])
    pre = b.preprocessing()
    return [tail.run(None, {"symbols": head.run(None, {"image": pre(p)})[0]})[0][0]
            for p in sample_images()[:N]]


def _wrong_label(row: np.ndarray) -> int:
    """A class outside the top-5 (so the image counts in neither top-1 nor top-5)."""
    return int(np.argsort(-row, kind="stable")[-1])


@pytest.fixture()
def flat(tmp_path, logits):
    """A flat folder of N images and a CSV: half labeled right, half with their last class."""
    folder = tmp_path / "flat"
    folder.mkdir()
    rows = ["filename,class_index"]
    for i, path in enumerate(sample_images()[:N]):
        (folder / path.name).write_bytes(path.read_bytes())
        label = int(np.argmax(logits[i])) if i < N // 2 else _wrong_label(logits[i])
        rows.append(f"{path.name},{label}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels


def _wilson_pct(k, n):
    """The 95 % Wilson score interval in percent, written out by hand (z = 1.96)."""
    z2, p = 1.96 ** 2, k / n
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = 1.96 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [100 * max(0.0, centre - half), 100 * min(1.0, centre + half)]


def test_known_accuracy_intervals_and_bytes(student_bundle, flat, tmp_path):
    folder, labels = flat
    doc = evaluate(student_bundle.path, read_labeled(folder, labels), coder="c",
                   progress=False)
    validate(doc)
    assert doc["kind"] == "evaluation" and doc["reference"] == "onnx" and doc["top_k"] == 5
    assert doc["dataset"] == {"images_dir": str(folder), "labels": "file", "images": N,
                              "classes": 10, "labels_file": str(labels), "class_names": None}
    (row,) = [r for r in doc["targets"] if r["target"] == "onnx"]
    assert row["precision"] == "fp32" and row["runtime"].startswith("onnxruntime")
    assert row["images"] == N
    assert row["top1"]["correct"] == row["top5"]["correct"] == N // 2
    assert row["top1"]["pct"] == 50.0
    assert row["top1"]["ci95"] == pytest.approx(_wilson_pct(4, 8), abs=1e-9)
    assert row["top1"]["ci95"] == pytest.approx([21.52, 78.48], abs=0.01)
    assert row["top1_agreement"] == {"same": N, "pct": 100.0,
                                     "ci95": pytest.approx(_wilson_pct(8, 8), abs=1e-9)}
    sizes = [len(c) for _, c in encode_images(student_bundle, sorted(folder.iterdir()),
                                              coder="c")]
    assert row["bytes"] == {"mean": pytest.approx(np.mean(sizes)), "p50": np.median(sizes),
                            "min": min(sizes), "max": max(sizes)}
    write_results(doc, tmp_path / "e.json")
    assert load_results([tmp_path / "e.json"])[0]["targets"] == doc["targets"]
    text = format_evaluation(doc)
    assert "onnx" in text and "top-1  50.0 % [21.5, 78.5]" in text and "agree 8/8" in text


def test_image_folder_indices_follow_sorted_names_or_the_class_list(tmp_path):
    src = sample_images()
    for name, images in (("zebra", src[:2]), ("ant", src[2:3]), ("moth", src[3:5])):
        (tmp_path / name).mkdir()
        for p in images:
            (tmp_path / name / p.name).write_bytes(p.read_bytes())
    data = image_folder(tmp_path)
    assert data.class_names == ("ant", "moth", "zebra")
    assert data.labels == (0, 1, 1, 2, 2)
    (tmp_path.parent / "classes.txt").write_text("zebra\nmoth\n\nant\nbee\n")
    data = read_labeled(tmp_path, classes=tmp_path.parent / "classes.txt")
    assert data.labels == (2, 1, 1, 0, 0) and data.class_names[-1] == "bee"


def test_the_cli_writes_results_and_report_reads_them(student_bundle, tmp_path, logits,
                                                      capsys):
    pytest.importorskip("matplotlib")
    root = tmp_path / "val"
    for i, path in enumerate(sample_images()[:4]):
        cls = root / f"c{int(np.argmax(logits[i])):02d}"
        cls.mkdir(parents=True, exist_ok=True)
        (cls / path.name).write_bytes(path.read_bytes())
    (tmp_path / "classes.txt").write_text("".join(f"c{k:02d}\n" for k in range(10)))
    out = tmp_path / "r" / "eval.json"
    assert main(["evaluate", str(student_bundle.path), "--images", str(root), "--classes",
                 str(tmp_path / "classes.txt"), "--coder", "c", "--label", "tiny/eval",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tiny/eval: 4 images, 10 classes" in printed and f"results written: {out}" in printed
    doc = json.loads(out.read_text())
    assert doc["targets"][0]["top1"]["correct"] == 4
    from tests.helpers.results_factory import make_result

    assert main(["report", str(out), "-o", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Accuracy" in md and ("| tiny/eval | onnx | fp32 | onnxruntime fp32 | 4 | "
                                    "100.0 [51.0, 100.0] |") in md
    profile = tmp_path / "device.json"
    write_results(make_result("demo/onnx"), profile)
    assert main(["report", str(profile), str(out), "-o", str(tmp_path / "both")]) == 0
    md = (tmp_path / "both" / "report.md").read_text()
    assert "2 results (1 device, 0 server, 1 evaluation)" in md
    assert "## Accuracy" in md and "## Energy per image" in md and "tiny/eval" in md
    csv_text = (tmp_path / "both" / "results.csv").read_text()
    assert "demo/onnx" in csv_text and "tiny/eval" not in csv_text


def test_a_bundle_without_a_tail_says_how_to_get_one(flat, head_only_bundle):
    folder, labels = flat
    with pytest.raises(UsageError, match=r"has no tail \(tail.onnx\).*export a checkpoint "
                                         r"that has layer2-4 and fc"):
        evaluate(head_only_bundle.path, read_labeled(folder, labels), progress=False)


def test_a_label_beyond_the_classes_is_refused(student_bundle, flat):
    folder, labels = flat
    lines = labels.read_text().splitlines()
    lines[1] = f"{lines[1].split(',')[0]},10"
    labels.write_text("\n".join(lines))
    with pytest.raises(UsageError, match=r"1 images have a class index beyond the tail's 10 "
                                         r"classes \(0..9\), e.g. .*-> 10: fix the labels"):
        evaluate(student_bundle.path, read_labeled(folder, labels), progress=False)


def test_bad_folders_and_labels_are_refused_in_one_line(tmp_path, flat):
    folder, labels = flat
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:-1]))
    with pytest.raises(UsageError, match=r"1 of 8 images in .* have no label in .*labels.csv: "
                                         r"sample_07.jpg"):
        labels_file(folder, labels)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="image folder .*empty is empty: expected class "):
        read_labeled(tmp_path / "empty")
    (tmp_path / "empty" / "cat").mkdir()
    with pytest.raises(UsageError, match="class folder .*cat is empty"):
        read_labeled(tmp_path / "empty")
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=r"unknown file .*notes.txt: expected only images in "
                                         r"the class folder cat"):
        read_labeled(tmp_path / "empty")
    with pytest.raises(UsageError, match=r"unknown file .*sample_00.jpg: expected only class "
                                         r"folders .*give --labels FILE"):
        read_labeled(folder)
    (tmp_path / "bad.json").write_text('{"a.jpg": -1}')
    with pytest.raises(UsageError, match=r"key 'a.jpg': class index -1; expected an integer"):
        labels_file(folder, tmp_path / "bad.json")
    with pytest.raises(UsageError, match="give one of them, not both"):
        read_labeled(folder, labels, classes=labels)


def test_evaluate_runs_without_torch(student_bundle, flat, tmp_path):
    from tests.helpers.blocked_imports import run_cli_without_torch

    folder, labels = flat
    out = tmp_path / "e.json"
    result = run_cli_without_torch("evaluate", student_bundle.path, "--images", folder,
                                   "--labels", labels, "--coder", "c", "--teacher", DEMO_TEACHER,
                                   "--baselines", "jpeg:10", "-o", out)
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["targets"][0]["top1"]["correct"] == N // 2
    assert [(b["codec"], b["quality"], b["images"]) for b in doc["baselines"]] == [("jpeg", 10, N)]
    assert "input-compression baselines (teacher demo_teacher.onnx" in result.stdout


def test_each_target_runs_through_its_own_runtime(student_bundle, flat, tmp_path):
    import shutil

    from sc2deploy.builders.build import BuildOptions, build_targets
    from sc2deploy.bundle import Bundle

    shutil.copytree(student_bundle.path, tmp_path / "b")
    # random weights: fp16 may flip a few top-1s of 200, which the gate refuses; kept anyway
    assert [r["target"] for r in build_targets(tmp_path / "b", ["onnx-fp16"],
                                               BuildOptions(allow_low_fidelity=True))] == [
        "onnx-fp16"]
    folder, labels = flat
    data = read_labeled(folder, labels)
    doc = evaluate(tmp_path / "b", data, coder="c", progress=False)  # default: all that run
    assert [r["target"] for r in doc["targets"]] == ["onnx", "onnx-fp16"]
    fp16 = doc["targets"][1]
    assert fp16["precision"] == "fp16" and fp16["images"] == N
    sizes = [len(c) for _, c in encode_images(Bundle.open(tmp_path / "b"), data.images,
                                              "onnx-fp16", coder="c")]
    assert fp16["bytes"]["mean"] == pytest.approx(np.mean(sizes))
    same = fp16["top1_agreement"]["same"]
    assert fp16["top1_agreement"]["ci95"] == pytest.approx(_wilson_pct(same, N), abs=1e-9)
    only = evaluate(tmp_path / "b", data, ["onnx"], coder="c", progress=False)
    assert [r["target"] for r in only["targets"]] == ["onnx"]
    with pytest.raises(UsageError, match="unknown target 'nope'; known targets: onnx"):
        evaluate(tmp_path / "b", data, ["nope"], progress=False)


def test_the_schema_names_the_key_at_fault(student_bundle, flat):
    from sc2deploy.errors import ResultsError

    folder, labels = flat
    doc = evaluate(student_bundle.path, read_labeled(folder, labels), ["onnx"], coder="c",
                   progress=False)
    doc["targets"][0]["top1"]["ci95"] = [0.0]
    with pytest.raises(ResultsError, match=r"e.json: targets\[0\].top1.ci95: expected a list "
                                           r"of 2 items, got 1"):
        validate(doc, "e.json")
    del doc["dataset"]
    with pytest.raises(ResultsError, match="e.json: missing required key 'dataset'"):
        validate(doc, "e.json")


# ---------------------------------------------------------------- input-compression baselines

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The demo's generated task, 2 images per class (held-out seed)."""
    from sc2deploy.orchestrate.demo_data import EVAL_SEED, write_labeled_set

    return read_labeled(write_labeled_set(tmp_path_factory.mktemp("gen") / "eval", 2, EVAL_SEED))


def _teacher_top1(session, x):
    return int(np.argmax(session.run(None, {"image": x})[0]))


def test_baselines_compress_decode_and_classify_each_image(student_bundle, generated, tmp_path):
    import io

    from PIL import Image

    from sc2deploy.bundle import sha256_file
    from sc2deploy.measure.baselines import image_bytes

    points = parse_baselines(["jpeg:5,90", "webp:50"])
    assert points == (("jpeg", 5), ("jpeg", 90), ("webp", 50))
    extra = evaluate_baselines(student_bundle.path, generated, DEMO_TEACHER, points,
                               progress=False)
    n = len(generated.images)
    teacher = ort.InferenceSession(str(DEMO_TEACHER), providers=["CPUExecutionProvider"])
    pre = student_bundle.preprocessing()
    clean = sum(_teacher_top1(teacher, pre(p)) == y
                for p, y in zip(generated.images, generated.labels))
    assert extra["teacher"] == {"file": str(DEMO_TEACHER), "sha256": sha256_file(DEMO_TEACHER),
                                "images": n, "top1": {"correct": clean, **_proportion(clean, n)},
                                "top5": extra["teacher"]["top5"],
                                "ms_p50": {"server": pytest.approx(
                                    extra["teacher"]["ms_p50"]["server"])}}
    assert extra["teacher"]["ms_p50"]["server"] > 0
    rows = {(r["codec"], r["quality"]): r for r in extra["baselines"]}
    assert list(rows) == list(points)
    for (codec, q), row in rows.items():  # an independent decode + teacher run
        sizes, correct = [], 0
        for p, y in zip(generated.images, generated.labels):
            payload = image_bytes(p, pre, codec, q)
            sizes.append(len(payload))
            x = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"), dtype=np.float32)
            x = (x / 255 - np.float32(pre.mean)) / np.float32(pre.std)
            correct += _teacher_top1(teacher, x.transpose(2, 0, 1)[None].astype(np.float32)) == y
        assert row["model"] == "teacher" and row["images"] == n
        assert row["bytes"] == {"mean": pytest.approx(np.mean(sizes)), "p50": np.median(sizes),
                                "min": min(sizes), "max": max(sizes)}
        assert row["top1"]["correct"] == correct
        assert row["top1"]["ci95"] == pytest.approx(_wilson_pct(correct, n), abs=1e-9)
        assert row["top1"]["correct"] <= row["top5"]["correct"] <= n
        assert set(row["ms_p50"]) == {"device", "server"} and min(row["ms_p50"].values()) > 0
    assert rows["jpeg", 5]["bytes"]["mean"] < rows["jpeg", 90]["bytes"]["mean"]
    assert rows["jpeg", 5]["top1"]["correct"] < rows["jpeg", 90]["top1"]["correct"]
    doc = {**evaluate(student_bundle.path, generated, ["onnx"], coder="c", progress=False),
           **extra}
    validate(doc)
    text = format_baselines(doc)
    assert f"teacher demo_teacher.onnx: top-1 {100 * clean / n:.1f} %" in text
    assert "jpeg  q5" in text and "webp  q50" in text


def _proportion(k, n):
    return {"pct": 100 * k / n, "ci95": pytest.approx(_wilson_pct(k, n), abs=1e-9)}


def test_bad_baselines_and_teachers_are_refused(student_bundle, generated, tmp_path, capsys):
    for spec, match in (("png:10", r"--baselines 'png:10': expected CODEC:Q1,Q2,\.\.\. with "
                                   r"CODEC one of jpeg, webp"),
                        ("jpeg", r"--baselines 'jpeg': expected CODEC:Q1"),
                        ("jpeg:0", r"--baselines 'jpeg:0': quality '0'; expected integers from "
                                   r"1 to 100")):
        with pytest.raises(UsageError, match=match):
            parse_baselines([spec])
    tail = student_bundle.file("tail.onnx")
    with pytest.raises(UsageError, match=r"--teacher .*tail.onnx: its inputs are \[\('symbols'"
                                         r".*one input of shape \[1, 3, 224, 224\]"):
        evaluate_baselines(student_bundle.path, generated, tail, (("jpeg", 10),), False)
    with pytest.raises(UsageError, match=r"--teacher .*nope.onnx: file not found"):
        evaluate_baselines(student_bundle.path, generated, tmp_path / "nope.onnx", (), False)
    out = tmp_path / "e.json"
    assert main(["evaluate", str(student_bundle.path), "--images", str(generated.root),
                 "--baselines", "jpeg:10", "-o", str(out)]) == 2
    assert "--baselines needs --teacher ONNX" in capsys.readouterr().err
    assert not out.exists()


def test_a_class_count_other_than_the_tails_is_warned_about(student_bundle, tmp_path, capsys):
    """2 class folders on a 10-class tail are taken as classes 0 and 1: said on one line."""
    root = tmp_path / "val"
    for name, path in zip(("n01", "n02"), sample_images()[:2]):
        (root / name).mkdir(parents=True)
        (root / name / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "e.json"
    assert main(["evaluate", str(student_bundle.path), "--images", str(root), "--coder", "c",
                 "-o", str(out)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings
    assert (f"warning: {root} has 2 class folders but the tail has 10 classes: folder i of the "
            "sorted names is taken as class i (0..1)") in warnings[0]
    assert "--classes FILE" in warnings[0]

    classes = tmp_path / "classes.txt"  # the model's 10 classes, in its order: no warning
    classes.write_text("".join(f"n{k:02d}\n" for k in range(10)))
    assert main(["evaluate", str(student_bundle.path), "--images", str(root), "--classes",
                 str(classes), "--coder", "c", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    classes.write_text("n01\nn02\nn03\n")
    assert main(["evaluate", str(student_bundle.path), "--images", str(root), "--classes",
                 str(classes), "--coder", "c", "-o", str(out)]) == 0
    assert f"warning: --classes {classes} names 3 classes but the tail has 10" in \
        capsys.readouterr().err
