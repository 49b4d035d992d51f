"""The emulation library without qemu: cpuinfo, stamps, digests, and run_python's command."""

import json
import os
import sys

import pytest

from sc2deploy.orchestrate.emulation import emulator as emulation
from sc2deploy.orchestrate.emulation.emulator import EmulationError, Emulator, Stamps, source_digest


def test_cpuinfo_text():
    text = emulation.cpuinfo_text("cortex-a76", 2)
    assert text.count("processor\t:") == 2
    assert "CPU part\t: 0xd0b" in text and "asimddp" in text
    with pytest.raises(EmulationError, match="known: cortex-a72, cortex-a76"):
        emulation.cpuinfo_text("cortex-a53", 1)


def test_stamps(tmp_path):
    stamps = Stamps(tmp_path / "stamps")
    assert not stamps.fresh("site", "k1")
    stamps.write("site", "k1")
    assert stamps.fresh("site", "k1") and not stamps.fresh("site", "k2")
    stamps.clear("site")
    assert not stamps.fresh("site", "k1")


def test_source_digest_ignores_caches_and_built_library(tmp_path):
    for name in ("setup.py", "setup.cfg", "pyproject.toml"):
        (tmp_path / name).write_text(name)
    pkg = tmp_path / "sc2deploy"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    before = source_digest(tmp_path)
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "_rangecoder.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    assert source_digest(tmp_path) == before
    (pkg / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path) != before


def test_step_runs_once_per_key(tmp_path):
    lines = []
    emu = Emulator(tmp_path / "work", log=lines.append)
    out = tmp_path / "out"
    calls = []
    emu.step("thing", "k1", lambda: (calls.append(1), out.write_text("x")), out)
    emu.step("thing", "k1", lambda: calls.append(2), out)
    assert calls == [1] and lines[0] == "setup thing ..." and lines[-1].startswith(
        "setup thing: cached (stamp ")
    emu.step("thing", "k2", lambda: calls.append(3), out)
    assert calls == [1, 3]


def test_unknown_cpu_is_refused(tmp_path):
    with pytest.raises(EmulationError, match="expected one or more of cortex-a72, cortex-a76"):
        Emulator(tmp_path, ["cortex-a53"])


def test_run_python_needs_setup(tmp_path):
    with pytest.raises(EmulationError, match=r"run Emulator.setup\(\) first"):
        Emulator(tmp_path).run_python("cortex-a76", ["-c", "pass"])


def test_run_python_runs_qemu_with_the_sysroot_and_cpuinfo(tmp_path, monkeypatch):
    """A stand-in qemu-aarch64-static on PATH reports how it was called."""
    emu = Emulator(tmp_path / "work", ["cortex-a76"])
    L = emu.layout
    L.python.parent.mkdir(parents=True)
    L.python.write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qemu = bin_dir / emulation.QEMU
    qemu.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
                    "'env': dict(os.environ)}))\n")
    qemu.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    proc = emu.run_python("cortex-a76", ["-m", "sc2deploy.cli", "--version"], {"EXTRA": "1"})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["argv"] == ["-cpu", "cortex-a76", "-L", str(L.sysroot), str(L.python), "-m",
                            "sc2deploy.cli", "--version"]
    assert seen["cwd"] == str(L.tmp)
    env = seen["env"]
    assert env["PYTHONPATH"] == f"{L.pkg}:{L.site}" and env["EXTRA"] == "1"
    assert env["HOME"] == str(L.tmp) and "VIRTUAL_ENV" not in env
    assert "CPU part\t: 0xd0b" in (L.sysroot / "proc" / "cpuinfo").read_text()
