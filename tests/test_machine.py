"""Fidelity keys: which CPU and runtime a measurement was taken on."""

from sc2deploy.machine import (core_name, fidelity_key, here_key, unverified_warning)


def _root(tmp_path, cpuinfo):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    return tmp_path


def test_arm_cores_are_named_as_qemu_names_them(tmp_path):
    pi5 = _root(tmp_path, "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n"
                          "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n")
    assert core_name(pi5) == "cortex-a76"  # the same key as `verify --emulate cortex-a76`
    assert fidelity_key("aarch64", "cortex-a76", "onnxruntime", "1.31.1") == \
        "aarch64/cortex-a76/onnxruntime-1.31.1"


def test_x86_cpus_by_model_name(tmp_path):
    root = _root(tmp_path, "processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n")
    assert core_name(root) == "AMD EPYC 7B13 64-Core Processor"
    assert fidelity_key("x86_64", core_name(root), "onnxruntime", "1.2") == \
        "x86_64/amd-epyc-7b13-64-core-processor/onnxruntime-1.2"


def test_profile_warns_only_on_an_unverified_cpu(tmp_path):
    key = here_key("onnxruntime", "onnxruntime")
    assert unverified_warning({"fidelity_by_cpu": {key: {}}}, "onnx", "onnxruntime",
                              "onnxruntime") is None
    warning = unverified_warning({"fidelity_by_cpu": {"aarch64/cortex-a72/onnxruntime-1.31.1":
                                                      {}}}, "onnx-fp16", "onnxruntime",
                                 "onnxruntime")
    assert warning.startswith(f"onnx-fp16 was never verified on this CPU ({key})")
    assert "aarch64/cortex-a72/onnxruntime-1.31.1" in warning and "--emulate" in warning


def test_no_warning_for_an_artifact_the_bundle_does_not_have():
    assert unverified_warning({}, "onnx-fp16", "onnxruntime", "onnxruntime") is None


def test_a_bundle_from_before_fidelity_by_cpu_is_told_how_to_record_this_cpu():
    warning = unverified_warning({"file": "head.onnx", "fidelity": {}}, "onnx", "onnxruntime",
                                 "onnxruntime")
    assert "no recorded CPU" not in warning
    assert "a CPU the bundle does not record" in warning
    assert "run `sc2deploy verify BUNDLE` here (it records this CPU)" in warning
