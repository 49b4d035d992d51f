"""The host-side logic of the ARM check (the emulated run itself is `make arm-check`)."""

import numpy as np
import pytest

from sc2deploy.orchestrate.emulation import arm_check as arm
from sc2deploy.orchestrate.compare import (CompareError, compare_runs, first_difference,
                                           read_npy_int32)


def test_pick_evenly():
    assert arm.pick_evenly(list(range(32)), 4) == [0, 8, 16, 24]
    assert arm.pick_evenly([1, 2], 5) == [1, 2]
    assert arm.pick_evenly([], 3) == []


def test_expand_argv_fills_placeholders_but_not_snippets():
    argv = ("-m", "x", "{bundle}", "{images}", "-o", "{out}/c", "-c", "print({out})")
    got = arm.expand_argv(argv, {"bundle": "B", "out": "O"}, ["a.jpg", "b.jpg"])
    assert got == ["-m", "x", "B", "a.jpg", "b.jpg", "-o", "O/c", "-c", "print({out})"]


def test_device_commands_only_use_known_placeholders():
    for cmd in arm.DEVICE_COMMANDS:
        args = arm.expand_argv(cmd.argv, {"bundle": "B", "target": "T", "out": "O"}, ["i"])
        code = {args[i + 1] for i, a in enumerate(args[:-1]) if a == "-c"}
        assert not [a for a in args if "{" in a and a not in code], cmd.name


def test_first_difference():
    assert first_difference(b"abc", b"abc") is None
    assert first_difference(b"abc", b"abd") == 2
    assert first_difference(b"ab", b"abc") == 2


def test_read_npy_int32(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 2, 2) - 7
    np.save(tmp_path / "a.npy", a)
    shape, values = read_npy_int32(tmp_path / "a.npy")
    assert shape == (2, 3, 2, 2) and list(values) == a.ravel().tolist()
    np.save(tmp_path / "f.npy", a.astype(np.float32))
    with pytest.raises(CompareError, match="expected C-ordered <i4"):
        read_npy_int32(tmp_path / "f.npy")


def _write_run(run, platform, target, containers, symbols):
    folder = run / platform / target
    (folder / "containers").mkdir(parents=True)
    for stem, data in containers.items():
        (folder / "containers" / f"{stem}.s2c").write_bytes(data)
    if symbols is not None:
        np.save(folder / "symbols.npy", symbols.astype(np.int32))


def test_compare_runs_identical_and_different(tmp_path):
    sym = np.zeros((2, 3, 4, 5), np.int32)
    ref = {"img0": b"\x01\x02\x03", "img1": b"\x04\x05"}
    _write_run(tmp_path, "x86_64", "onnx", ref, sym)
    _write_run(tmp_path, "cortex-a72", "onnx", ref, sym)
    bad = sym.copy()
    bad[1, 2, 3, 4] = 7
    bad[1, 0, 1, 0] = -1
    _write_run(tmp_path, "cortex-a76", "onnx", {"img0": ref["img0"], "img1": b"\x04\x06\x00"},
               bad)
    _write_run(tmp_path, "cortex-a72+sdist", "onnx", {"img0": ref["img0"]}, None)
    problems, lines = compare_runs(
        tmp_path, ["onnx"], ["x86_64", "cortex-a72", "cortex-a76", "cortex-a72+sdist"],
        ["img0", "img1"])
    assert lines[0] == ("compare onnx cortex-a72 vs x86_64: 2/2 images with identical "
                        "containers and int32 symbols")
    assert lines[2].endswith("1/2 images with identical containers")
    assert problems == [
        "DIFFERENT: target onnx, cpu cortex-a76, image img1: container 3 bytes (x86_64: 2), "
        "first differing byte at offset 1; 2 of 60 symbols differ (first at [c, y, x] = "
        "[0, 1, 0]: -1, reference 0)",
        "DIFFERENT: target onnx, cpu cortex-a72+sdist, image img1: container missing on "
        "cortex-a72+sdist",
    ]


def test_symbols_off_by_one_at_a_half_tie_are_not_a_difference(tmp_path):
    """The tie rule: a flip counts only where the host's pre-round value is within
    TIE_TOLERANCE of k + 0.5; its container then differs, as it must."""
    sym = np.zeros((2, 3, 4, 5), np.int32)
    pre = np.full(sym.shape, 0.2, np.float32)
    pre[0, 1, 2, 3] = 0.5 + 2e-5  # a tie: either rounding is correct
    pre[1, 1, 1, 1] = 0.49  # not a tie
    tied, wrong = sym.copy(), sym.copy()
    tied[0, 1, 2, 3] = 1
    wrong[1, 1, 1, 1] = 1
    both = tied.copy()
    both[1, 1, 1, 1] = 1
    ref = {"img0": b"\x01", "img1": b"\x02"}
    _write_run(tmp_path, "x86_64", "onnx", ref, sym)
    np.save(tmp_path / "x86_64" / "onnx" / "pre_round.npy", pre)
    _write_run(tmp_path, "cortex-a72", "onnx", {"img0": b"\x09", "img1": b"\x02"}, tied)
    _write_run(tmp_path, "cortex-a76", "onnx", {"img0": b"\x09", "img1": b"\x07"}, both)
    problems, lines = compare_runs(tmp_path, ["onnx"], ["x86_64", "cortex-a72", "cortex-a76"],
                                   ["img0", "img1"])
    summary = {line.split(" vs ")[0]: line for line in lines if line.startswith("compare")}
    assert summary["compare onnx cortex-a72"].endswith(
        "1/2 images with identical containers and int32 symbols, 1 differing only at .5 ties")
    assert any(line.startswith("tie: target onnx, cpu cortex-a72, image img0: 1 of 60 symbols "
                               "differ") and line.endswith("1 of them at .5 ties")
               for line in lines)
    assert len(problems) == 1 and "cpu cortex-a76, image img1" in problems[0]
    assert "1 of 60 symbols differ" in problems[0]


def test_commands_for_platforms():
    args = arm.parse_args(["--work", "w"])
    check = arm.ArmCheck(args)
    names = {p.name: p for p in check.platforms()}
    assert list(names) == ["x86_64", "cortex-a72", "cortex-a76", "cortex-a72+sdist"]
    run = {(p, t): [c.name for c in check.commands_for(names[p], t)]
           for p in names for t in args.target}
    assert run[("x86_64", "onnx")] == ["encode", "symbols", "pre_round"]
    assert run[("cortex-a72", "onnx")] == ["encode", "symbols", "profile"]
    assert run[("cortex-a76", "onnx")] == ["encode", "symbols"]
    assert run[("cortex-a72", "tflite")] == ["encode", "symbols"]
    assert run[("cortex-a72+sdist", "onnx")] == ["encode"]
    assert run[("cortex-a72+sdist", "tflite")] == []


def test_defaults_and_errors_of_the_command_line(capsys):
    args = arm.parse_args([])
    assert args.work == arm.ROOT / "build" / "arm" and args.cpu == ["cortex-a72", "cortex-a76"]
    assert args.target == ["onnx", "tflite"] and args.sdist and args.images == 4
    with pytest.raises(SystemExit):
        arm.parse_args(["--checkpoint", "x.pt"])
    assert "--checkpoint needs --model" in capsys.readouterr().err


def _row(target, cpu, pct, passed, precision="fp16", rule="symbols: >= 99.9 % equal"):
    return {"target": target, "cpu": cpu, "precision": precision, "passed": passed,
            "rule": rule, "agreement_pct": pct, "images": 4}


def test_fidelity_lines_and_summary_on_synthetic_results():
    """verify_emulated's rows -> one line per reduced target and platform, and a summary;
    fp32 rows are not listed, a missing or skipped result is "not measured"."""
    from sc2deploy.targets.gate import threshold

    rows = [
        _row("onnx", "host x86_64", 100.0, True, "fp32", "symbols: exact bar .5 ties"),
        _row("onnx-fp16", "host x86_64", 99.97, True),
        _row("onnx-fp16", "cortex-a72 (qemu)", 99.97, True),
        _row("onnx-fp16", "cortex-a76 (qemu)", 99.745412, False),
        _row("onnx-int8", "host x86_64", 99.61, True, "int8", "symbols: >= 99.0 % equal"),
        {"target": "onnx-int8", "cpu": "cortex-a72 (qemu)", "skipped": "cannot run here"},
        _row("onnx-int8", "cortex-a76 (qemu)", 99.6, True, "int8",
             "task: top-1 equal on >= 95 % of 4 images"),
        {**_row("tflite-fp16", "cortex-a72 (qemu)", 100.0, False, "fp16", "task: 4 images"),
         "decision": "undecided"},
    ]
    lines, summary = arm.fidelity_lines(rows, ["onnx-fp16", "onnx-int8"],
                                        ["x86_64", "cortex-a72", "cortex-a76"])
    assert lines == [
        "fidelity onnx-fp16 x86_64: 99.9700 % symbols equal (4 images) — passes the fp16 "
        "gate (99.9 %)",
        "fidelity onnx-fp16 cortex-a72: 99.9700 % symbols equal (4 images) — passes the fp16 "
        "gate (99.9 %)",
        "fidelity onnx-fp16 cortex-a76: 99.7454 % symbols equal (4 images) — below the fp16 "
        "gate (99.9 %)",
        f"fidelity onnx-int8 x86_64: 99.6100 % symbols equal (4 images) — passes the int8 "
        f"gate ({threshold('int8'):g} %)",
        "fidelity onnx-int8 cortex-a72: not measured (cannot run here)",
        "fidelity onnx-int8 cortex-a76: 99.6000 % symbols equal (4 images) — passes the int8 "
        "gate (task: top-1 equal on >= 95 % of 4 images)",
    ]
    assert summary == ("fidelity summary: 4/6 reduced-precision results pass their gate; "
                       "below it: onnx-fp16 on cortex-a76; not measured: onnx-int8 on "
                       "cortex-a72 (informational: reduced precision may differ by CPU, not a "
                       "failure)")
    lines, summary = arm.fidelity_lines(rows, ["tflite-fp16"], ["cortex-a72"])
    assert lines == ["fidelity tflite-fp16 cortex-a72: 100.0000 % symbols equal (4 images) — "
                     "undecided by the fp16 gate (task: 4 images)"]
    assert summary == ("fidelity summary: 0/1 reduced-precision results pass their gate; too "
                       "few images to decide: tflite-fp16 on cortex-a72 (informational: reduced "
                       "precision may differ by CPU, not a failure)")
    lines, summary = arm.fidelity_lines([], ["tflite-fp16"], ["x86_64"])
    assert lines == ["fidelity tflite-fp16 x86_64: not measured (not built)"]
    assert summary.startswith("fidelity summary: 0/1 reduced-precision results pass")


def test_reduced_targets_are_the_buildable_cpu_ones():
    from sc2deploy.targets.registry import targets

    known = targets()
    names = arm.reduced_targets()
    assert "onnx" not in names and "tflite" not in names
    assert not [n for n in names if n.startswith("tensorrt")]
    assert all(known[n].missing("build") is None for n in names)
    assert arm.parse_args(["--no-reduced"]).reduced == []
    assert arm.parse_args([]).reduced == names
