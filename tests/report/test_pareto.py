"""The noise-aware Pareto front: differences inside the noise are ties, not wins."""

from results_factory import make_evaluation, make_result
from sc2deploy.report.pareto import front


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
