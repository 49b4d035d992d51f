"""The speed lines of a build: "no speed gain" below SPEED_GAIN, and the search's table."""

from sc2deploy.builders.speed import SPEED_GAIN, describe_options, search_lines, speed_text

A8W8 = {"activations": "int8", "per_channel": True, "calibration": "minmax",
        "reduce_range": False, "keep_float": []}
W8 = {**A8W8, "activations": "float"}


def _tried(passed_a8w8: bool, passed_w8: bool):
    return [{"options": A8W8, "latency_p50_ms": 4.2, "timed_in_turns": True, "passed": passed_a8w8,
             "task": {"top1_agree": 200 if passed_a8w8 else 181, "images": 200}},
            {"options": W8, "latency_p50_ms": 7.15, "passed": passed_w8,
             "task": {"top1_agree": 30, "images": 32}},
            {"options": {**A8W8, "activations": "int16"}, "refused": "no int16 kernel"}]


def test_speed_text_says_no_speed_gain_below_the_bar():
    fast = {"speedup": 1.52, "p50_ms": 8.1, "fp32_p50_ms": 12.3, "gain": True}
    slow = {"speedup": SPEED_GAIN - 0.01, "p50_ms": 10.0, "fp32_p50_ms": 10.4, "gain": False}
    assert speed_text(fast) == "1.52x fp32's speed (8.1 vs 12.3 ms, in turns)"
    assert speed_text(slow).startswith("no speed gain: 1.04x fp32's speed (10.0 vs 10.4 ms")
    assert speed_text(None) == ""


def test_search_lines_mark_the_kept_configuration_and_every_verdict():
    lines = search_lines("onnx-int8", _tried(True, False), A8W8)
    assert lines[0].startswith("onnx-int8 search: 3 configurations, the fastest that passes")
    assert lines[1].split() == ["act", "int8,", "per-channel,", "minmax", "p50", "4.2*", "ms",
                                "top-1", "200/200", "passes", "<-", "kept"]
    assert lines[2].split()[-6:] == ["p50", "7.2", "ms", "top-1", "30/32", "fails"]
    assert "refused: no int16 kernel" in lines[3]


def test_search_lines_say_when_none_passed():
    lines = search_lines("onnx-int8", _tried(False, False), A8W8, passed=False)
    assert lines[1].endswith("fails  <- the most faithful (none passed)")
    assert "kept" not in "".join(lines[1:])


def test_an_undecided_configuration_is_skipped_only_beside_one_that_passes():
    """Undecided: the task's interval straddles the bar. Screened only (on fewer images than
    the others) beside one that passes: not confirmed; measured on every image, or with none
    passing: it fails."""
    screened_only = {"options": W8, "latency_p50_ms": 9.0, "passed": False,
                     "decision": "undecided", "task": {"top1_agree": 31, "images": 32}}
    measured = {**screened_only, "task": {"top1_agree": 194, "images": 200}}
    passing = _tried(True, False)[:1]
    assert search_lines("onnx-int8", passing + [screened_only], A8W8)[2].endswith(
        "not confirmed: slower than one that passes")
    assert search_lines("onnx-int8", passing + [measured], A8W8)[2].endswith("194/200    fails")
    assert search_lines("onnx-int8", [measured], W8, passed=False)[1].endswith(
        "fails  <- the most faithful (none passed)")


def test_describe_options_in_a_few_words():
    assert describe_options(A8W8) == "act int8, per-channel, minmax"
    assert describe_options({**W8, "keep_float": ["/encoder/encoder.4/Conv"]}) == \
        "W8 only, float: encoder.4"
    assert describe_options({"keep_float": []}) == "every node fp16"
