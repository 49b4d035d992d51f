"""Rooms import only downward: read from the code of every module, and checked by importing.

The rooms are declared in sc2deploy/rooms.py (and tabled from it in docs/development.md,
which must agree). Every module of the package (pkgutil.walk_packages) must belong to a
room; each of its imports of sc2deploy, at module level or inside a function, must name its
own room or one the room may import; the rooms' import graph has no cycle; the device rooms
never import torch, onnx, matplotlib or a converter, and import for real with those blocked.
"""

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import sc2deploy
from sc2deploy.rooms import (CLI, CORE, DEVICE_ROOMS, HOST_ONLY_PACKAGES, MAY_IMPORT, PACKAGES,
                             REGENERATE, ROOMS, layout, replace_layout)
from tests.helpers.blocked_imports import BLOCK, TORCH_BLOCK, run_cli_without_torch

ROOT = Path(__file__).resolve().parent.parent


def room_of(module: str) -> str:
    if module in CORE:
        return "core"
    if module in CLI:
        return "cli"
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in PACKAGES:
        return parts[1]
    raise AssertionError(f"module {module} belongs to no room: add it to a room "
                         f"(sc2deploy/rooms.py), then run `{REGENERATE}`")


def all_modules():
    """Every Python module of the package (the C coder's shared library is not one)."""
    names = ["sc2deploy"]
    for info in pkgutil.walk_packages(sc2deploy.__path__, "sc2deploy."):
        if importlib.util.find_spec(info.name).origin.endswith(".py"):
            names.append(info.name)
    return names


def imports_of(module: str):
    """(imported module, line) for every import statement in the module's source."""
    origin = importlib.util.find_spec(module).origin
    tree = ast.parse(Path(origin).read_text(), origin)
    package = module if origin.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:  # `from sc2deploy import atomic` names a module too
                name = f"{base}.{alias.name}"
                if base.startswith("sc2deploy") and importlib.util.find_spec(base) and \
                        _is_module(name):
                    yield name, node.lineno


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _internal(name: str) -> str:
    """The sc2deploy module an import refers to (a module, never an attribute)."""
    while name and not _is_module(name):
        name = name.rpartition(".")[0]
    return name


MODULES = all_modules()


def test_the_declaration_is_consistent():
    assert set(MAY_IMPORT) == set(ROOMS) and set(DEVICE_ROOMS) <= set(ROOMS)
    for room, allowed in MAY_IMPORT.items():
        assert allowed <= set(ROOMS) - {room}, f"room {room} may import unknown rooms"
        if room in DEVICE_ROOMS:
            assert allowed <= set(DEVICE_ROOMS), f"device room {room} may import a host room"


def test_the_layout_in_the_docs_is_the_declaration():
    docs = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    assert layout() in docs, (
        "docs/development.md's rooms table differs from sc2deploy/rooms.py: regenerate it "
        f"with `{REGENERATE}`")
    assert replace_layout(docs) == docs  # what --write would write: the file as it is
    with pytest.raises(ValueError, match="expected one pair of markers"):
        replace_layout("no table here")


def test_every_module_is_in_a_room():
    assert len(MODULES) > 40
    for module in MODULES:
        room_of(module)


@pytest.mark.parametrize("module", MODULES)
def test_imports_go_only_downward(module):
    room = room_of(module)
    for name, line in imports_of(module):
        top = name.split(".")[0]
        if top == "sc2deploy":
            target = room_of(_internal(name))
            assert target == room or target in MAY_IMPORT[room], (
                f"{module}:{line} imports {name} (room {target}); room {room} may import only "
                f"{sorted(MAY_IMPORT[room]) or 'itself'}")
        elif room in DEVICE_ROOMS:
            assert top not in HOST_ONLY_PACKAGES, (
                f"{module}:{line} imports {name}: device room {room} must not (host only)")


def test_rooms_form_no_cycle():
    edges = {room: set() for room in MAY_IMPORT}
    for module in MODULES:
        room = room_of(module)
        for name, _ in imports_of(module):
            if name.split(".")[0] == "sc2deploy":
                target = room_of(_internal(name))
                if target != room:
                    edges[room].add(target)
    done, visiting = set(), []

    def visit(room):
        assert room not in visiting, f"rooms import in a cycle: {' -> '.join(visiting + [room])}"
        if room in done:
            return
        visiting.append(room)
        for target in edges[room]:
            visit(target)
        visiting.pop()
        done.add(room)

    for room in edges:
        visit(room)


def test_device_rooms_import_without_host_packages():
    """Every device module imports with torch, onnx, matplotlib and constriction blocked."""
    device = [m for m in MODULES if room_of(m) in DEVICE_ROOMS]
    code = (BLOCK.format(blocked=HOST_ONLY_PACKAGES + ("constriction",))
            + "".join(f"import {m}\n" for m in device) + "print('ok', len(sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_cli_starts_without_torch():
    """`sc2deploy --help` and the device commands' parsers need no host package."""
    code = BLOCK.format(blocked=HOST_ONLY_PACKAGES) + (
        "from sc2deploy.cli import build_parser\nbuild_parser()\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_info_runs_without_torch(demo_bundle):
    result = run_cli_without_torch("info", demo_bundle.path)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout


def test_profile_runs_without_torch_or_constriction(demo_bundle, tmp_path):
    out = tmp_path / "r.json"
    result = run_cli_without_torch("profile", demo_bundle.path, "--runs", "2", "--warmup", "0",
                                   "--energy", "none", "--no-baselines", "-o", out)
    assert result.returncode == 0, result.stderr
    assert '"coder": "c"' in out.read_text()


def test_export_needs_torch_and_says_so():
    code = TORCH_BLOCK + "from sc2deploy.export import export_bundle"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked for this test: torch" in result.stderr


@pytest.mark.parametrize("modules,heavy", [
    # the ARM check and the emulation: the standard library only, at import time
    (("sc2deploy.orchestrate.emulation.arm_check", "sc2deploy.orchestrate.emulation.emulator"),
     ("numpy", "torch", "onnxruntime", "sc2deploy.targets", "tarfile", "zipfile")),
    # remote profiling runs before anything heavy is needed
    (("sc2deploy.orchestrate.ssh.remote",), ("numpy", "torch", "PIL", "onnxruntime")),
    # the wire protocol and the rooms: the standard library only
    (("sc2deploy.wire", "sc2deploy.rooms"), ("numpy", "PIL", "sc2deploy.bundle")),
    # the command line and the options it declares: every runtime is loaded by the command
    (("sc2deploy.cli", "sc2deploy.export"),
     ("torch", "onnx", "onnxruntime", "ray", "matplotlib", "ai_edge_litert", "tensorflow")),
    # results and reports: matplotlib only where plots are drawn
    (("sc2deploy.results.schema", "sc2deploy.report.document"), ("matplotlib", "torch")),
])
def test_modules_import_light(modules, heavy):
    code = (f"import sys\nimport {', '.join(modules)}\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{modules} import {result.stdout.strip()}"
