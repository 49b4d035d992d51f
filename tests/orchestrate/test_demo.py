"""demo.run on a reduced configuration: staged export/build, profiles, report, and what an
interruption keeps. Exporting is replaced by a copy of the session's demo bundle (the full
`sc2deploy demo` runs in tests/test_cli.py)."""

import json
import shutil

import pytest

from sc2deploy.bundle import Bundle
from sc2deploy.errors import Interrupted, UsageError
from sc2deploy.orchestrate import demo
from sc2deploy.specs import DEMO_DEFAULT_POINT, demo_ladder


@pytest.fixture
def copy_export(demo_bundle, monkeypatch):
    """export_bundle as a copy of the session's demo bundle; records the staging folders."""
    staged = []

    def export_bundle(options):
        staged.append(options.out)
        shutil.copytree(demo_bundle.path, options.out)
        return Bundle.open(options.out)

    monkeypatch.setattr("sc2deploy.export.export_bundle", export_bundle)
    return staged


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reduced_run_profiles_and_reports(copy_export, tmp_path):
    pytest.importorskip("matplotlib", reason="the report needs matplotlib")
    out = tmp_path / "demo"
    printed = []
    other = next(p for p in demo_ladder() if p != DEMO_DEFAULT_POINT)
    result = demo.run(out, runs=2, targets=["onnx", "tensorrt-fp16", "tensorrt-fp16-engine"],
                      echo=printed.append, eval_per_class=1, points=[other])
    assert result.bundle == out / "demo-bundle" and (result.bundle / "manifest.json").is_file()
    assert result.report == out / "report" / "report.html" and result.report.is_file()
    assert set(result.ladder) == {out / "demo-bundle", out / "ladder" / other}
    # the host check is built, not profiled; the device-built engine is skipped and named
    assert sorted(p.name for p in result.results) == sorted(
        ["server.json", "onnx.json", "evaluation.json", f"evaluation-{other}.json"])
    assert printed[0] == "targets not buildable here (skipped): tensorrt-fp16-engine"
    assert "tensorrt-fp16" in Bundle.open(result.bundle).manifest["artifacts"]
    onnx = json.loads((out / "results" / "onnx.json").read_text())
    assert onnx["runs"]["measured"] == 2 and onnx["link"]["name"] == demo.DEMO_LINK
    assert onnx["server_ms"]["source"] == "measured"
    assert onnx["energy"]["kind"] in ("measured", "modeled")
    assert sorted(p.name for p in copy_export) == sorted(["demo-bundle", other])
    assert not any(p.exists() for p in copy_export)  # staged beside, then moved
    assert sorted(p.name for p in out.iterdir()) == ["demo-bundle", "eval", "ladder", "report",
                                                     "results"]
    # the task: generated labeled images, every runnable target, the teacher's baselines
    evaluation = json.loads((out / "results" / "evaluation.json").read_text())
    assert evaluation["dataset"]["images"] == 10 and evaluation["dataset"]["classes"] == 10
    assert [r["target"] for r in evaluation["targets"]] == ["onnx"]
    assert set(evaluation["targets"][0]["ms_p50"]) == {"device", "server"}
    assert evaluation["label"] == DEMO_DEFAULT_POINT
    assert evaluation["teacher"]["file"] == str(demo.DEMO_TEACHER)
    assert [(b["codec"], b["quality"]) for b in evaluation["baselines"]] == [
        (c, int(q)) for c, qs in (s.split(":") for s in demo.DEMO_BASELINES)
        for q in qs.split(",")]
    assert len(demo.DEMO_BASELINES) == 2 and all(
        len(s.split(":")[1].split(",")) >= 8 for s in demo.DEMO_BASELINES)
    assert any("input-compression baselines" in text for text in printed)
    assert printed[-1].startswith("worth deploying, at top-1 >= ")
    assert "entropic_student / onnx, bytes per image: " in printed[-1]
    report = (out / "report" / "report.md").read_text()
    assert "## Accuracy" in report and "## Worth deploying" in report


def test_a_folder_that_is_not_a_bundle_is_never_replaced(copy_export, tmp_path):
    (tmp_path / "demo-bundle").mkdir()
    (tmp_path / "demo-bundle" / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match=r"demo-bundle exists and is not a demo bundle folder; "
                                         r"choose another --out$"):
        demo.run(tmp_path, runs=2, targets=["onnx"], points=[])
    assert copy_export == [] and (tmp_path / "demo-bundle" / "mine.txt").read_text() == "keep"


def test_unknown_ladder_points_are_refused_naming_the_bundled_ones(tmp_path):
    with pytest.raises(UsageError, match=r"^unknown ladder points \['demo-beta99'\]; bundled: "
                                         r"demo-beta"):
        demo.run(tmp_path, targets=["onnx"], points=["demo-beta99"])


def test_unknown_targets_are_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(UsageError, match=r"^unknown demo targets \['onnx-int4'\]; known: onnx, "):
        demo.run(tmp_path, targets=["onnx", "onnx-int4"])


def test_interrupted_build_keeps_the_earlier_demo_bundle(copy_export, demo_bundle, tmp_path,
                                                         monkeypatch):
    shutil.copytree(demo_bundle.path, tmp_path / "demo-bundle")
    before = snapshot(tmp_path)

    def build_targets(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sc2deploy.builders.build.build_targets", build_targets)
    with pytest.raises(Interrupted, match=r"^interrupted while exporting and building: .*"
                                          r"demo-bundle and .*ladder are as they were$"):
        demo.run(tmp_path, runs=2, targets=["onnx"], points=[])
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-bundle"]  # no staging left


def test_interrupted_profile_keeps_results_and_writes_no_report(copy_export, tmp_path,
                                                                monkeypatch):
    from sc2deploy.measure import runtime

    measure = runtime.profile
    monkeypatch.setattr(runtime, "profile", lambda options: dict(measure(options),
                                                                 complete=False))
    with pytest.raises(Interrupted, match=r"^interrupted while profiling onnx: the bundle .* "
                                          r"are kept \(onnx.json is PARTIAL\); no report "
                                          r"written$"):
        demo.run(tmp_path, runs=2, targets=["onnx"], echo=lambda text: None, eval_per_class=1,
                 points=[])
    assert (tmp_path / "results" / "onnx.json").is_file()
    assert (tmp_path / "results" / "evaluation.json").is_file()
    assert not (tmp_path / "report").exists()


def test_the_demo_exports_its_tail_and_tail_onnx_gives_the_torch_tails_top1(demo_bundle):
    """The bundled student has a task: tail.onnx, fed with the head's symbols, ranks as the
    torch tail rebuilt from the checkpoint (independently of the export's own check)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from sc2deploy.export.checkpoint import bottleneck_state, load_state_dict
    from sc2deploy.export.decoder import build_decoder
    from sc2deploy.specs import demo_checkpoint
    from sc2deploy.export.tail import build_tail
    from sc2deploy.orchestrate.demo_data import CLASSES
    from tests.helpers.symbols import assert_same_top1

    tail = demo_bundle.manifest["tail"]
    assert tail["output"]["shape"] == [1, len(CLASSES)] and "file" in tail
    assert tail["verification"]["top1_identical"] == tail["verification"]["images"]
    raw = load_state_dict(demo_checkpoint("demo"))
    state, prefix = bottleneck_state(raw, "fp")
    medians = np.load(demo_bundle.file("prior.npz"))["medians"]
    torch_tail = build_tail(raw, prefix, build_decoder(state, medians))
    session = ort.InferenceSession(str(demo_bundle.file("tail.onnx")),
                                   providers=["CPUExecutionProvider"])
    with np.load(demo_bundle.file(demo_bundle.manifest["reference"]["file"])) as ref:
        symbols = ref["symbols"][:8].astype(np.float32)
    got, want = [], []
    for s in symbols:
        got.append(session.run(None, {"symbols": s[None]})[0])
        with torch.no_grad():
            want.append(torch_tail(torch.from_numpy(s[None])).numpy())
        assert np.max(np.abs(got[-1] - want[-1])) <= 1e-4 * np.max(np.abs(want[-1]))
    assert_same_top1(want, got)
