"""The noise-aware Pareto front: differences inside the noise are ties, not wins."""

from sc2deploy.report.pareto import front
from tests.helpers.results_factory import make_evaluation, make_result


def test_differences_inside_the_noise_are_ties():
    a = make_result("a", head_ms=40.0, bytes_mean=3000.0)
    b = make_result("b", head_ms=40.2, bytes_mean=3009.0)  # 0.2 ms, 9 B: inside the noise
    c = make_result("c", head_ms=80.0, bytes_mean=3400.0)  # clearly worse in every objective
    result = front([a, b, c])
    assert result.objectives == ("bytes", "latency", "energy")
    assert result.on_front == (True, True, False)
    assert result.ties[0] == (1,) and result.ties[1] == (0,) and result.ties[2] == ()


def test_clearly_better_in_one_objective_and_tied_elsewhere_dominates():
    a = make_result("a", bytes_mean=3000.0)
    b = make_result("b", bytes_mean=3300.0)  # 10 % more bytes, same latency and energy
    assert front([a, b]).on_front == (True, False)
    fast = make_result("fast", head_ms=10.0, bytes_mean=3300.0)  # a trade-off: both stay
    assert front([a, fast]).on_front == (True, True)


def test_accuracy_joins_when_every_result_has_an_evaluation():
    a = make_result("a", bytes_mean=3000.0)
    b = make_result("b", target="onnx-int8", bytes_mean=3300.0)
    evaluation = make_evaluation(targets=(("onnx", 3000.0, 50), ("onnx-int8", 3300.0, 90)),
                                 images=400)
    result = front([a, b], [evaluation])
    assert result.objectives == ("bytes", "latency", "energy", "accuracy")
    assert result.on_front == (True, True)  # b pays bytes for clearly better top-1
    other = make_evaluation(sha="cd" * 32)  # another bundle: not these results' accuracy
    assert front([a, b], [other]).objectives == ("bytes", "latency", "energy")
    none = make_result("none", energy="none")
    assert "energy" not in front([a, none]).objectives


def _host_check(**kwargs) -> dict:
    """A profile of tensorrt-fp16's host check: onnxruntime fp32 ran, not TensorRT."""
    from sc2deploy.targets import get_target

    doc = make_result("demo/tensorrt-fp16", target="tensorrt-fp16", **kwargs)
    doc.update(runtime="onnxruntime (host check) 1.31.1",
               executed=get_target("tensorrt-fp16").executed())
    return doc


def test_a_host_check_is_left_out_of_the_front_with_the_reason():
    from sc2deploy.report.document import render_markdown
    from sc2deploy.report.pareto import candidates, left_out
    from sc2deploy.report.tables import overview_table, pareto_table
    from sc2deploy.results.schema import validate

    own = make_result("demo/onnx", bytes_mean=3000.0)
    check = validate(_host_check(head_ms=10.0, bytes_mean=2000.0))  # would dominate `own`
    name = "demo/tensorrt-fp16 [host check: onnxruntime fp32]"
    assert [n for _, n in candidates([own, check])] == ["demo/onnx"]
    line = left_out([own, check])
    assert line.startswith(f"Not in the Pareto front: {name} ran onnxruntime fp32 (host check; "
                           "TensorRT not run): not the target's own runtime")
    assert [r[0] for r in pareto_table([own, check]).rows] == ["demo/onnx"]
    assert "onnxruntime fp32 (host check; TensorRT not run)" in overview_table([check]).rows[0]
    md = render_markdown([own, check])
    assert line in md and f"| {name} |" in md
    older = {k: v for k, v in check.items() if k != "executed"}  # written before "executed"
    assert "demo/tensorrt-fp16 [host check: onnxruntime]" in left_out([own, older])
    assert left_out([own]) is None


def test_with_accuracy_the_bytes_are_the_evaluated_images_and_the_table_names_both():
    from sc2deploy.report.tables import pareto_table

    a = make_result("a", bytes_mean=12_700.0)  # the profile's images
    b = make_result("b", target="onnx-int8", bytes_mean=12_700.0)
    evaluation = make_evaluation(targets=(("onnx", 20_000.0, 80), ("onnx-int8", 14_000.0, 80)),
                                 images=400)
    result = front([a, b], [evaluation])
    assert result.paired and result.on_front == (False, True)  # 14 kB beats 20 kB there
    cells = {row[0]: row[2] for row in pareto_table([a, b], [evaluation]).rows}
    assert cells["a"] == "20,000 (the 400 evaluated images); 12,700 (profile's images)"
    assert pareto_table([a]).rows[0][2] == "12,700"  # one set only: no names needed
