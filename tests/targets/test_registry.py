"""Target records: capabilities as data, checked when registered, and every target tested."""

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from sc2deploy.errors import RegistryError, Sc2DeployError, UsageError
from sc2deploy.targets import registry
from sc2deploy.targets.registry import (GDN, LAST_CONV, TARGET_MODULES, Fp16Options,
                                        Int8Options, get_target, register, targets)

TESTS = Path(__file__).resolve().parents[1]
BUILDS_OR_RUNS = {"build_targets", "load_runner"}  # calls that build or run a target


def test_capabilities_are_declared():
    known = targets()
    assert list(known)[:3] == ["onnx", "onnx-fp16", "onnx-int8"]
    int8 = {n: t.activations for n, t in known.items() if t.activations}
    assert int8 == {"onnx-int8": ("int8", "int16", "float"),
                    "tflite-int8": ("int8", "dynamic", "float"),
                    "tensorrt-int8": ("int8",)}
    assert {n for n, t in known.items() if t.needs_calibration} == set(int8)
    assert {n for n, t in known.items() if t.host_check} == {"tensorrt-fp16", "tensorrt-int8"}
    assert {n for n, t in known.items() if t.build_on == "device"} == {
        "tensorrt-fp16-engine", "tensorrt-int8-engine"}
    assert all(t.builder is None for t in known.values() if t.build_on == "device")
    assert {n: len(known[n].search) for n in int8} == {"onnx-int8": 13, "tflite-int8": 4,
                                                        "tensorrt-int8": 2}
    assert Int8Options(keep_float=(LAST_CONV,)) in known["onnx-int8"].search
    assert {n for n, t in known.items() if t.search} == set(int8) | {"onnx-fp16"}
    assert Fp16Options(keep_float=(LAST_CONV, GDN)) in known["onnx-fp16"].search
    assert known["tensorrt-int8"].runtime == "onnxruntime (host check)"  # for display
    assert known["tensorrt-fp16"].executed() == {  # what runs it here, in every table
        "runtime": "onnxruntime", "precision": "fp32", "host_check": True,
        "text": "onnxruntime fp32 (host check; TensorRT not run)"}
    assert known["onnx-fp16"].executed()["text"] == "onnxruntime fp16"


def test_every_module_declares_its_targets():
    import importlib

    for name in TARGET_MODULES:
        module = importlib.import_module(f"sc2deploy.targets.{name}")
        assert module.TARGETS and all(isinstance(t, registry.Target) for t in module.TARGETS)
        assert all(targets()[t.name] is t for t in module.TARGETS)


def test_a_duplicate_or_unknown_precision_is_refused():
    onnx = get_target("onnx")
    with pytest.raises(RegistryError, match="target 'onnx' is registered twice: expected a new "
                                            "name; rename one of them"):
        register(onnx)
    with pytest.raises(RegistryError, match=r"target 'onnx-bf16': received precision 'bf16', "
                                            r"expected one of fp32, fp16, int8 \(fix its record"):
        register(replace(onnx, name="onnx-bf16", precision="bf16"))
    assert issubclass(RegistryError, Sc2DeployError) and "onnx-bf16" not in targets()


@pytest.mark.parametrize("change,match", [
    (dict(build_on="cloud"), "build_on 'cloud', expected host or device"),
    (dict(builder=None), "expected a builder exactly when built on the host"),
    (dict(runner="OnnxRunner"), "'OnnxRunner', expected 'module:attribute'"),
    (dict(activations=("int4",)), r"activations \['int4'\], expected some of int8, int16"),
    (dict(search=(Int8Options(activations="dynamic"),)), "search entry .* expected "
                                                         "Int8Options with activations among"),
    (dict(activations=()), r"activations \(\) for a int8 target built on the host, expected "
                           "them exactly for int8 host targets"),
    (dict(host_check=True), "host_check True, expected a HostCheck or None"),
])
def test_a_bad_record_is_refused_with_what_is_wrong(change, match):
    record = replace(get_target("onnx-int8"), name="onnx-int8-bad", **change)
    with pytest.raises(RegistryError, match=match):
        register(record)
    assert "onnx-int8-bad" not in targets()


@pytest.mark.parametrize("name,search,match", [
    ("onnx-fp16", (Int8Options(),), "search entry Int8Options.* expected Fp16Options for a "
                                    "fp16 target"),
    ("onnx-int8", (Fp16Options(),), "search entry Fp16Options.* expected Int8Options"),
    ("onnx", (Fp16Options(),), "search entry .* for a fp32 target, expected no search"),
])
def test_a_search_entry_of_the_wrong_kind_is_refused(name, search, match):
    record = replace(get_target(name), name=f"{name}-bad", search=search)
    with pytest.raises(RegistryError, match=match):
        register(record)
    assert f"{name}-bad" not in targets()


def test_unknown_target_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown target 'tpu'; known targets: onnx, onnx-fp16, "
                                         "onnx-int8, tensorrt-fp16"):
        get_target("tpu")


def _strings(node):
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def targets_under_test():
    """Target names each test (or fixture) builds or runs: {name: [where, ...]}.

    The rule: a name counts when it is a string literal in the arguments of a call to
    ``build_targets`` or ``load_runner``, or in the ``parametrize`` decorators of a function
    that makes such a call (e.g. device tests, skipped by detection where there is no device).
    Calls inside ``with pytest.raises(...)`` do not count: they test a refusal.
    """
    found = {}
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        refused = {id(c) for w in ast.walk(tree) if isinstance(w, ast.With)
                   and any(isinstance(i.context_expr, ast.Call)
                           and _called(i.context_expr) == "raises" for i in w.items)
                   for statement in w.body for c in ast.walk(statement)}
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            calls = [c for c in ast.walk(func) if isinstance(c, ast.Call)
                     and _called(c) in BUILDS_OR_RUNS and id(c) not in refused]
            if not calls:
                continue
            names = set().union(*(_strings(a) for c in calls for a in c.args + c.keywords))
            for decorator in func.decorator_list:
                if isinstance(decorator, ast.Call) and _called(decorator) == "parametrize":
                    names |= _strings(decorator)
            for name in names:
                found.setdefault(name, []).append(f"{path.relative_to(TESTS)}::{func.name}")
    return found


def test_every_registered_target_has_a_test():
    tested = targets_under_test()
    untested = [name for name in targets() if name not in tested]
    assert not untested, (
        f"registered targets with no test: {untested}; expected each to be built or run by a "
        "test: call build_targets(bundle, [NAME], ...) or load_runner(bundle, NAME) with the "
        "name as a literal (device-only targets: in a test skipped by detection)")


def test_the_no_test_rule_sees_the_tests_it_should():
    tested = targets_under_test()
    assert "builders/test_build.py::test_int8_options_and_search" in tested["onnx-int8"]
    assert any(w.startswith("builders/test_tensorrt.py") for w in tested["tensorrt-fp16-engine"])
    assert "tpu" not in tested
    refusal = "builders/test_tensorrt.py::test_engine_targets_are_built_on_the_device"
    assert refusal not in tested["tensorrt-int8-engine"]  # a refusal is not a test of it
