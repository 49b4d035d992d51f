"""`make arm-check`: the torch-free device runtime on aarch64 under qemu-user, byte for byte.

Everything is written under the work folder (default ``build/arm``)::

    host, x86_64 (.venv)                                        build/arm/
    sc2deploy export demo --input-size 64; build onnx, tflite ─> bundle/
    apt-get, private state (arm64 python3.11 .debs) ─ dpkg -x ─> sysroot/
    sdist ─ aarch64-linux-gnu-gcc ─ aarch64 wheel ─ pip ──────> dist/, pkg/
    sc2deploy[device,tflite]'s requirements, markers evaluated
      by the emulated python ─ pip --platform *_aarch64 ────> site/
    sdist built by the emulated Python (its own sysconfig) ───> pkg-sdist/

    run   x86_64 (.venv) ─┐
          qemu-aarch64-static -cpu cortex-a72 ─┼─ DEVICE_COMMANDS ─> run/PLATFORM/TARGET/
          qemu-aarch64-static -cpu cortex-a76 ─┘
    check containers (bytes) and int32 symbols equal x86_64's; any difference fails, except
          symbols off by one at .5 ties of the host's torch pre-round values (the gate's rule)

Host side: Python's standard library (and the gate's tie tolerance); apt-get, dpkg, pip, the cross compiler
and qemu are called as commands. Setup steps are skipped when their stamp
(``build/arm/stamps/STEP``) holds the same key. Needs the host packages
qemu-user-static and gcc-aarch64-linux-gnu (.ci/run installs them).

Usage::

    python scripts/arm_check.py [--cpu cortex-a72 --cpu cortex-a76] [--target onnx ...]
                                [--model ladon --checkpoint CKPT]
                                [--images 4] [--input-size 64] [--no-sdist] [--work DIR]
"""

import argparse
import ast
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sc2deploy.targets.gate import TIE_TOLERANCE

ROOT = Path(__file__).resolve().parent.parent
SUITE = "bookworm"  # Debian 12: python3.11
SYSROOT_PACKAGES = ("python3.11", "libstdc++6")  # libstdc++: onnxruntime, LiteRT
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# The device side is `pip install sc2deploy[device,tflite]`. pip's --platform does not evaluate
# environment markers for the target, so the emulated python evaluates them (REQUIREMENTS_SNIPPET)
# and the host's pip installs the result with --platform.
EXTRAS = ("device", "tflite")
BUILD_REQUIREMENTS = ("setuptools>=68", "wheel")  # also brings `packaging`
WHEEL_PLATFORM = "manylinux_2_17_aarch64"  # the C coder links only glibc (checked)
PLATFORM_TAGS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64",
                 "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
PIP_AARCH64 = ("--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311", *[a for tag in PLATFORM_TAGS for a in ("--platform", tag)])
PIP = (sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir",
       "--no-warn-conflicts", "--disable-pip-version-check")
HOST_TOOLS = {"qemu-aarch64-static": "qemu-user-static",
              "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
              "apt-get": "apt", "dpkg": "dpkg"}
CROSS_ENV = {"CC": "aarch64-linux-gnu-gcc", "LDSHARED": "aarch64-linux-gnu-gcc -shared",
             "SETUPTOOLS_EXT_SUFFIX": ".cpython-311-aarch64-linux-gnu.so"}
REFERENCE = "x86_64"
ELF_AARCH64 = 183  # e_machine
# what a wheel's library may link (ld.so: Debian's -fstack-protector uses its guard)
GLIBC_LIBRARIES = ("libc.so.6", "libm.so.6", "ld-linux-aarch64.so.1")

# /proc/cpuinfo as the Raspberry Pi 4 (BCM2711) and Pi 5 (BCM2712) report it; onnxruntime
# segfaults under qemu without an ARM one (qemu's -L looks paths up in the sysroot first).
CPUINFO = {
    "cortex-a72": {"features": "fp asimd evtstrm crc32 cpuid",
                   "variant": "0x0", "part": "0xd08", "revision": "3"},
    "cortex-a76": {"features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
                               "asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
                   "variant": "0x4", "part": "0xd0b", "revision": "1"},
}


# ---------------------------------------------------------------- device commands
# Run on every platform (x86_64 and each emulated CPU) for every target, in this order,
# with the platform's python; the output folder {out} is run/PLATFORM/TARGET.
# Placeholders: {bundle} {target} {out}; "{images}" alone expands to the image paths.
# targets=(...) restricts a command to those targets; emulated_once=True runs it on the
# first emulated CPU only; smoke=True also runs it with the package built from the sdist;
# host_only=True runs it on x86_64 only (it needs torch).

SYMBOLS_SNIPPET = r'''
import sys
from pathlib import Path
import numpy as np
from sc2deploy.bundle import Bundle
from sc2deploy.targets.encoding import latent_codec
from sc2deploy.targets import load_runner
bundle_dir, target, out, *images = sys.argv[1:]
bundle = Bundle.open(Path(bundle_dir))
pre = bundle.preprocessing()
with load_runner(bundle, target) as runner:
    symbols = np.stack([runner.infer(pre(Path(p)))[0] for p in images]).astype(np.int32)
np.save(Path(out) / "symbols.npy", symbols, allow_pickle=False)
codec = latent_codec(bundle, "c")
for p, s in zip(images, symbols):
    data = (Path(out) / "containers" / (Path(p).stem + ".s2c")).read_bytes()
    if not np.array_equal(codec.decode(data), s):
        sys.exit(f"{p}: its container does not decode to the head's symbols here")
if "torch" in sys.modules:
    sys.exit("the device runtime imported torch")
print(f"symbols {list(symbols.shape)} int32 written; every container decodes to them")
'''


# The torch fp32 head's values before rounding, on the host: a symbol that differs between
# two CPUs is a legitimate .5 tie when its value lies within TIE_TOLERANCE of k + 0.5.
PRE_ROUND_SNIPPET = r'''
import sys
from pathlib import Path
import numpy as np
import torch
from sc2deploy.bundle import Bundle
from sc2deploy.export.heads import head_from_arrays
bundle_dir, out, *images = sys.argv[1:]
bundle = Bundle.open(Path(bundle_dir))
pre = bundle.preprocessing()
module = head_from_arrays(bundle.model["family"], bundle.torch_head_arrays())
with torch.no_grad():
    values = np.stack([module.pre_round(torch.from_numpy(pre(Path(p)))).numpy()[0]
                       for p in images]).astype(np.float32)
np.save(Path(out) / "pre_round.npy", values, allow_pickle=False)
print(f"pre-round values {list(values.shape)} float32 written")
'''


@dataclass(frozen=True)
class DeviceCommand:
    name: str
    argv: Tuple[str, ...]  # after the python executable
    targets: Optional[Tuple[str, ...]] = None
    emulated_once: bool = False
    smoke: bool = False
    host_only: bool = False


DEVICE_COMMANDS = (
    DeviceCommand("encode", ("-m", "sc2deploy.cli", "encode", "{bundle}", "{images}", "--target",
                             "{target}", "--coder", "c", "-o", "{out}/containers"), smoke=True),
    DeviceCommand("symbols", ("-c", SYMBOLS_SNIPPET, "{bundle}", "{target}", "{out}", "{images}")),
    DeviceCommand("profile", ("-m", "sc2deploy.cli", "profile", "{bundle}", "--target", "{target}",
                              "--runs", "2", "--warmup", "1", "--energy", "none", "--coder", "c",
                              "-o", "{out}/profile.json"), targets=("onnx",), emulated_once=True),
    DeviceCommand("pre_round", ("-c", PRE_ROUND_SNIPPET, "{bundle}", "{out}", "{images}"),
                  host_only=True),
)

IMPORTS_SNIPPET = r'''
import importlib, os, platform, sys
from importlib import metadata
for name in ("sc2deploy.codec", "sc2deploy.targets.onnx", "sc2deploy.targets.tflite",
             "sc2deploy.measure", "sc2deploy.cli"):
    importlib.import_module(name)
problems = []
import sc2deploy
expected = os.environ["PYTHONPATH"].split(os.pathsep)[0]
if not sc2deploy.__file__.startswith(expected + os.sep):
    problems.append(f"sc2deploy imported from {sc2deploy.__file__}, not from {expected}")
if platform.machine() != "aarch64":
    problems.append(f"platform.machine() is {platform.machine()!r}, expected 'aarch64'")
if "torch" in sys.modules:
    problems.append("importing the device runtime imported torch")
try:
    import constriction
    problems.append(f"constriction is importable ({constriction.__file__})")
except ImportError:
    pass
from sc2deploy.codec.c_backend import library
lib = library()
found = []
try:
    from packaging.requirements import Requirement
    for extra in ("device", "tflite"):
        for line in metadata.requires("sc2deploy") or []:
            req = Requirement(line)
            if req.name == "sc2deploy":
                continue
            if req.marker and not req.marker.evaluate({"extra": extra}):
                continue
            try:
                version = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{req} (sc2deploy[{extra}] on aarch64) is not installed")
                continue
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name} {version} does not satisfy {req}")
            found.append(f"{req.name} {version}")
except ImportError:
    problems.append("packaging is missing: cannot check the extras' requirements")
print(f"python {platform.python_version()} {platform.machine()}; sc2deploy from {expected}; "
      f"C coder {os.path.basename(lib._name)}")
print("sc2deploy[device,tflite] on aarch64 needs: " + ", ".join(sorted(set(found))))
print("no torch imported, constriction not importable")
if problems:
    sys.exit("; ".join(problems))
'''

BUILD_SDIST_SNIPPET = r'''
import sys, sysconfig
from setuptools import build_meta
print(f"CC={sysconfig.get_config_var('CC')}")
print(build_meta.build_wheel(sys.argv[1]))
'''


REQUIREMENTS_SNIPPET = r'''
import sys
from importlib import metadata
from packaging.requirements import Requirement
out_file, *extras = sys.argv[1:]
found = set()
for line in metadata.requires("sc2deploy") or []:
    req = Requirement(line)
    if req.name != "sc2deploy" and (
            req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras)):
        found.add(req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
                  + str(req.specifier))
open(out_file, "w").write("".join(f"{r}\n" for r in sorted(found)))
'''


class CheckError(Exception):
    """A failure with a message that says what to do."""


def log(msg: str) -> None:
    print(f"arm-check: {msg}", flush=True)


# ---------------------------------------------------------------- small helpers (tested)

def pick_evenly(items: Sequence, n: int) -> list:
    """n items spread over the sequence, first one included, order kept."""
    if n <= 0 or not items:
        return []
    n = min(n, len(items))
    return [items[i * len(items) // n] for i in range(n)]


def expand_argv(argv: Sequence[str], values: Dict[str, str], images: Sequence[str]) -> List[str]:
    """Fill the {placeholders} of a command; "{images}" alone becomes every image path.

    The argument after "-c" (a Python snippet) is passed as it is.
    """
    out: List[str] = []
    for i, arg in enumerate(argv):
        if arg == "{images}":
            out.extend(images)
            continue
        if i == 0 or argv[i - 1] != "-c":
            for name, value in values.items():
                arg = arg.replace("{" + name + "}", value)
        out.append(arg)
    return out


def cpuinfo_text(cpu: str, count: int) -> str:
    """An ARM /proc/cpuinfo with `count` processors of model `cpu`."""
    info = CPUINFO[cpu]
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {variant}\n"
             "CPU part\t: {part}\nCPU revision\t: {revision}\n\n")
    return "".join(block.format(i=i, **info) for i in range(count))


def first_difference(a: bytes, b: bytes) -> Optional[int]:
    """Offset of the first differing byte (or of the end of the shorter); None if equal."""
    if a == b:
        return None
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def read_npy_int32(path: Path, kind: str = "i") -> Tuple[Tuple[int, ...], array]:
    """A C-ordered little-endian int32 (kind "i") or float32 ("f") .npy file, without numpy."""
    data = path.read_bytes()
    if data[:6] != b"\x93NUMPY":
        raise CheckError(f"{path} is not a .npy file")
    major = data[6]
    size_bytes = 2 if major == 1 else 4
    header_len = int.from_bytes(data[8:8 + size_bytes], "little")
    start = 8 + size_bytes
    header = ast.literal_eval(data[start:start + header_len].decode("latin1"))
    if header["descr"] not in (f"<{kind}4", f"|{kind}4") or header["fortran_order"]:
        raise CheckError(f"{path}: expected C-ordered <{kind}4 data, got {header}")
    values = array(kind)
    values.frombytes(data[start + header_len:])
    if sys.byteorder != "little":
        values.byteswap()
    shape = tuple(header["shape"])
    expected = 1
    for dim in shape:
        expected *= dim
    if len(values) != expected:
        raise CheckError(f"{path}: {len(values)} values for shape {shape}")
    return shape, values


def unravel(index: int, shape: Sequence[int]) -> Tuple[int, ...]:
    out = []
    for dim in reversed(shape):
        out.append(index % dim)
        index //= dim
    return tuple(reversed(out))


def symbols_difference(ref: Tuple[Tuple[int, ...], array], got: Tuple[Tuple[int, ...], array],
                       image: int, pre_round: Optional[Tuple[Tuple[int, ...], array]] = None
                       ) -> Tuple[Optional[str], bool]:
    """How the symbols of image `image` ([N, C, H, W] arrays) differ (None if equal), and
    whether every difference is a .5 tie (off by one where the host's pre-round value lies
    within TIE_TOLERANCE of k + 0.5: two correct float kernels may round it either way)."""
    (ref_shape, ref_values), (got_shape, got_values) = ref, got
    if ref_shape != got_shape:
        return f"symbol shape {list(got_shape)} instead of {list(ref_shape)}", False
    per_image = len(ref_values) // ref_shape[0] if ref_shape[0] else 0
    lo, hi = image * per_image, (image + 1) * per_image
    diff = [i for i in range(lo, hi) if ref_values[i] != got_values[i]]
    if not diff:
        return None, False
    ties = 0
    if pre_round is not None and pre_round[0] == ref_shape:
        ties = sum(1 for i in diff if abs(ref_values[i] - got_values[i]) == 1
                   and _near_half(pre_round[1][i]))
    where = unravel(diff[0] - lo, ref_shape[1:])
    text = (f"{len(diff)} of {per_image} symbols differ (first at [c, y, x] = {list(where)}: "
            f"{got_values[diff[0]]}, reference {ref_values[diff[0]]})")
    if ties:
        text += f", {ties} of them at .5 ties"
    return text, ties == len(diff)


def _near_half(value: float) -> bool:
    frac = abs(value) - math.floor(abs(value))
    return abs(frac - 0.5) <= TIE_TOLERANCE


def diff_summary(target: str, platform: str, stem: str, ref_bytes: Optional[bytes],
                 got_bytes: Optional[bytes], symbols: Optional[str],
                 reference: str = REFERENCE) -> Optional[str]:
    """One line saying how a platform's result for one image differs from the reference's."""
    parts = []
    if ref_bytes is None or got_bytes is None:
        parts.append("container missing on " + (reference if ref_bytes is None else platform))
    else:
        offset = first_difference(ref_bytes, got_bytes)
        if offset is not None:
            parts.append(f"container {len(got_bytes)} bytes ({reference}: {len(ref_bytes)}), "
                         f"first differing byte at offset {offset}")
    if symbols:
        parts.append(symbols)
    if not parts:
        return None
    return f"DIFFERENT: target {target}, cpu {platform}, image {stem}: " + "; ".join(parts)


def compare_runs(run_dir: Path, targets: Sequence[str], platforms: Sequence[str],
                 stems: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Compare run/PLATFORM/TARGET/{containers/STEM.s2c, symbols.npy} with platforms[0]'s.

    Returns (one line per differing image, one summary line per platform and target). A
    platform folder without containers was not run for that target and is skipped; one
    without symbols.npy is compared on container bytes only. An image whose symbols differ
    only at .5 ties (see symbols_difference; needs the reference's pre_round.npy) is counted
    apart and is not a problem: its container then differs too, as it must.
    """
    problems, lines = [], []
    reference = platforms[0]
    for target in targets:
        ref_dir = run_dir / reference / target
        ref_sym = read_npy_int32(ref_dir / "symbols.npy")
        pre_file = ref_dir / "pre_round.npy"
        pre_round = read_npy_int32(pre_file, "f") if pre_file.is_file() else None
        for platform in platforms[1:]:
            got_dir = run_dir / platform / target
            if not (got_dir / "containers").is_dir():
                continue
            sym_file = got_dir / "symbols.npy"
            got_sym = read_npy_int32(sym_file) if sym_file.is_file() else None
            same = tied = 0
            for i, stem in enumerate(stems):
                ref_b, got_b = (_read_or_none(d / "containers" / f"{stem}.s2c")
                                for d in (ref_dir, got_dir))
                sym, only_ties = (symbols_difference(ref_sym, got_sym, i, pre_round)
                                  if got_sym is not None else (None, False))
                if only_ties and ref_b is not None and got_b is not None:
                    tied += 1
                    lines.append(f"tie: target {target}, cpu {platform}, image {stem}: {sym}")
                    continue
                line = diff_summary(target, platform, stem, ref_b, got_b, sym, reference)
                if line:
                    problems.append(line)
                else:
                    same += 1
            what = "containers" + (" and int32 symbols" if got_sym is not None else "")
            lines.append(f"compare {target} {platform} vs {reference}: {same}/{len(stems)} "
                         f"images with identical {what}"
                         + (f", {tied} differing only at .5 ties" if tied else ""))
    return problems, lines


def _read_or_none(path: Path) -> Optional[bytes]:
    return path.read_bytes() if path.is_file() else None


class Stamps:
    """A setup step is done when its stamp file holds the step's key."""

    def __init__(self, folder: Path):
        self.folder = folder

    def fresh(self, name: str, key: str) -> bool:
        path = self.folder / name
        return path.is_file() and path.read_text() == key

    def clear(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def write(self, name: str, key: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / name).write_text(key)


def make_key(**fields) -> str:
    return json.dumps(fields, sort_keys=True)


def source_digest(root: Path) -> str:
    """sha256 over the package sources and build files (not caches or built libraries)."""
    files = [root / "setup.py", root / "setup.cfg", root / "pyproject.toml"]
    files += sorted(p for p in (root / "sc2deploy").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts
                    and not p.name.startswith("_rangecoder") and p.suffix != ".pyc")
    h = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        h.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total


def only_file(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise CheckError(f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def elf_machine(data: bytes) -> int:
    if data[:4] != b"\x7fELF":
        raise CheckError("not an ELF file")
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


# ---------------------------------------------------------------- running commands

def run(cmd: Sequence, log_file: Path, env: Optional[dict] = None, cwd: Optional[Path] = None,
        what: str = "") -> str:
    """Run a command and return its output (stdout and stderr), also written to log_file
    after the command line; fail with the output's tail."""
    cmd = [str(c) for c in cmd]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    text = proc.stdout.decode(errors="replace")
    log_file.write_text(f"$ {shlex.join(cmd)}\n(in {cwd or os.getcwd()})\n{text}")
    if proc.returncode != 0:
        tail = "\n".join("    " + line for line in text.splitlines()[-15:])
        hint = ""
        if proc.returncode < 0:
            hint = (f" (killed by signal {-proc.returncode}; under qemu a segfault at import "
                    "usually means the sysroot has no ARM /proc/cpuinfo)")
        raise CheckError(f"{what or cmd[0]} failed with exit code {proc.returncode}{hint}\n"
                         f"{tail}\n  full log: {log_file}")
    return text


class Layout:
    """Where everything lives in the work folder."""

    def __init__(self, work: Path):
        self.work = work
        self.apt = work / "apt"  # private apt state; removed once the sysroot is extracted
        self.sysroot = work / "sysroot"  # arm64 python3.11 (dpkg -x), ARM /proc/cpuinfo
        self.python = self.sysroot / "usr" / "bin" / "python3.11"
        self.sysroot_packages = work / "sysroot-packages.txt"
        self.build_site = work / "build-site"  # setuptools, wheel, packaging (pure Python)
        self.src = work / "src"  # copy of the working tree's package sources
        self.dist = work / "dist"  # sdist and cross-compiled wheel
        self.cross = work / "cross"  # unpacked sdist and its build folders
        self.pkg = work / "pkg"  # sc2deploy from the cross-compiled wheel
        self.requirements = work / "device-requirements.txt"
        self.site = work / "site"  # aarch64 wheels of the device requirements
        self.emu_build = work / "emu-build"  # the sdist built by the emulated python
        self.pkg_sdist = work / "pkg-sdist"  # sc2deploy from that wheel
        self.bundle = work / "bundle"
        self.run = work / "run"  # run/PLATFORM/TARGET: containers, symbols.npy, logs
        self.logs = work / "logs"  # setup logs
        self.stamps = work / "stamps"
        self.tmp = work / "tmp"  # TMPDIR and HOME of the commands


@dataclass(frozen=True)
class Platform:
    name: str
    cpu: Optional[str] = None  # None: this machine (x86_64, the .venv)
    packages: Optional[Path] = None  # emulated: where sc2deploy is installed
    smoke: bool = False  # only the smoke commands, first target


class ArmCheck:
    def __init__(self, args):
        self.args = args
        self.L = Layout(args.work.resolve())
        self.stamps = Stamps(self.L.stamps)
        self.setup_times: Dict[str, float] = {}
        self.run_times: Dict[str, float] = {}
        self.is_root = os.geteuid() == 0

    # ---- environment
    def host_env(self) -> dict:
        env = dict(os.environ, TMPDIR=str(self.L.tmp), PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        return env

    def emulated_env(self, packages: Path, extra: Sequence[Path] = ()) -> dict:
        path = os.pathsep.join(str(p) for p in (packages, *extra))
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                "HOME": str(self.L.tmp), "TMPDIR": str(self.L.tmp), "PYTHONPATH": path,
                "PYTHONNOUSERSITE": "1", "PYTHONFAULTHANDLER": "1"}

    def emulated(self, cpu: str, args: Sequence) -> List:
        return ["qemu-aarch64-static", "-cpu", cpu, "-L", self.L.sysroot, self.L.python, *args]

    def write_cpuinfo(self, cpu: str) -> None:
        proc = self.L.sysroot / "proc"
        proc.mkdir(exist_ok=True)
        (proc / "cpuinfo").write_text(cpuinfo_text(cpu, os.cpu_count() or 1))

    # ---- checks
    def check_host(self) -> None:
        missing = [f"{tool} (package {pkg})" for tool, pkg in HOST_TOOLS.items()
                   if shutil.which(tool) is None]
        if missing:
            raise CheckError("missing host tools: " + ", ".join(missing) + ". Install them with: "
                             "sudo apt-get install -y qemu-user-static gcc-aarch64-linux-gnu "
                             "(.ci/run does this)")
        if not KEYRING.is_file():
            raise CheckError(f"{KEYRING} not found: the arm64 packages are verified with "
                             "Debian's archive key (package debian-archive-keyring)")
        out = subprocess.run(["qemu-aarch64-static", "-cpu", "help"], capture_output=True,
                             text=True).stdout.split()
        for cpu in self.args.cpu:
            if cpu not in out:
                raise CheckError(f"qemu-aarch64-static does not emulate {cpu}; it knows: "
                                 + " ".join(w for w in out if w not in ("Available", "CPUs:")))

    # ---- setup steps
    def step(self, name: str, key: str, fn, output: Path) -> None:
        """Run fn unless the stamp holds this key and its output exists."""
        if self.stamps.fresh(name, key) and output.exists():
            log(f"setup {name}: cached (stamp {self.stamps.folder / name})")
            self.setup_times[name] = 0.0
            return
        self.stamps.clear(name)
        log(f"setup {name} ...")
        t0 = time.perf_counter()
        fn()
        self.setup_times[name] = time.perf_counter() - t0
        self.stamps.write(name, key)
        log(f"setup {name}: done in {self.setup_times[name]:.1f} s")

    def apt_options(self) -> List[str]:
        a = self.L.apt
        opts = {"APT::Architecture": "arm64", "APT::Architectures::": "arm64",
                "Dir::State": a / "state", "Dir::State::Lists": a / "lists",
                "Dir::State::Status": a / "status", "Dir::Cache": a / "cache",
                "Dir::Cache::Archives": a / "archives", "Dir::Etc::SourceList": a / "sources.list",
                "Dir::Etc::SourceParts": a / "sources.list.d",
                "Dir::Etc::Preferences": a / "preferences",
                "Dir::Etc::PreferencesParts": a / "preferences.d", "Dir::Log": a / "log",
                "Debug::NoLocking": "1"}
        if self.is_root:
            opts["APT::Sandbox::User"] = "root"  # the private folders are not _apt's
        return [x for k, v in opts.items() for x in ("-o", f"{k}={v}")]

    def sysroot_key(self) -> str:
        return make_key(suite=SUITE, mirror=self.args.mirror, security=self.args.security_mirror,
                        packages=SYSROOT_PACKAGES)

    def build_sysroot(self) -> None:
        a, sysroot = self.L.apt, self.L.sysroot
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(sysroot, ignore_errors=True)
        for d in ("state", "lists/partial", "cache", "archives/partial", "sources.list.d",
                  "preferences.d", "log"):
            (a / d).mkdir(parents=True, exist_ok=True)
        (a / "status").write_text("")
        opt = f"[arch=arm64 signed-by={KEYRING}]"
        (a / "sources.list").write_text(
            f"deb {opt} {self.args.mirror} {SUITE} main\n"
            f"deb {opt} {self.args.mirror} {SUITE}-updates main\n"
            f"deb {opt} {self.args.security_mirror} {SUITE}-security main\n")
        apt = ["apt-get", "-q", *self.apt_options()]
        run(apt + ["update"], a / "update.log", what="apt-get update (arm64, private state)")
        run(apt + ["-y", "--download-only", "--no-install-recommends", "install",
                   *SYSROOT_PACKAGES], a / "download.log",
            what="apt-get download of the arm64 packages")
        debs = sorted((a / "archives").glob("*.deb"))
        log(f"  {len(debs)} arm64 packages downloaded; extracting with dpkg -x")
        sysroot.mkdir(parents=True)
        for deb in debs:
            run(["dpkg", "-x", deb, sysroot], a / "dpkg.log", what=f"dpkg -x {deb.name}")
        self.L.sysroot_packages.write_text(
            "".join(d.name + "\n" for d in debs))
        if not self.L.python.is_file():
            raise CheckError(f"{self.L.python} missing after extracting the packages")
        shutil.rmtree(a)  # the .debs and lists (~50 MB) are not needed any more

    def install_build_tools(self) -> None:
        """setuptools, wheel (and packaging) for the emulated python: pure Python."""
        shutil.rmtree(self.L.build_site, ignore_errors=True)
        run([*PIP, "--target", self.L.build_site, "--only-binary=:all:", *BUILD_REQUIREMENTS],
            self.L.logs / "pip-build-site.log", env=self.host_env(),
            what="pip install of setuptools and wheel for the emulated python")

    def resolve_requirements(self) -> None:
        """The requirements of sc2deploy[device,tflite] as aarch64 evaluates their markers."""
        cpu = self.args.cpu[0]
        self.write_cpuinfo(cpu)
        run(self.emulated(cpu, ["-c", REQUIREMENTS_SNIPPET, self.L.requirements, *EXTRAS]),
            self.L.logs / "requirements.log",
            env=self.emulated_env(self.L.pkg, [self.L.build_site]),
            cwd=self.L.tmp, what="evaluating the requirements under emulation")
        log(f"  sc2deploy[{','.join(EXTRAS)}] on aarch64: "
            + ", ".join(self.L.requirements.read_text().split()))

    def site_key(self) -> str:
        return make_key(requirements=self.L.requirements.read_text(), tags=PLATFORM_TAGS,
                        constraints=(ROOT / "constraints.txt").read_text())

    def install_site(self) -> None:
        shutil.rmtree(self.L.site, ignore_errors=True)
        run([*PIP, "--target", self.L.site, *PIP_AARCH64, "-c", ROOT / "constraints.txt",
             "-r", self.L.requirements], self.L.logs / "pip-site.log", env=self.host_env(),
            what="pip install of the aarch64 wheels of the device requirements")

    def build_package(self) -> None:
        """sdist of the working tree, cross-compiled into an aarch64 wheel, installed in pkg/."""
        L = self.L
        for d in (L.src, L.dist, L.cross, L.pkg):
            shutil.rmtree(d, ignore_errors=True)
        L.src.mkdir(parents=True)
        for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, L.src / name)
        shutil.copytree(ROOT / "sc2deploy", L.src / "sc2deploy", ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", "_rangecoder*"))
        env = self.host_env()
        run([sys.executable, "setup.py", "sdist", "--dist-dir", L.dist], L.logs / "sdist.log",
            env=env, cwd=L.src, what="setup.py sdist")
        sdist = self.sdist()
        unpacked = self.unpack(sdist, L.cross)
        run([sys.executable, "setup.py", "build", "--build-base", L.cross / "build",
             "bdist_wheel", "--bdist-dir", L.cross / "bdist", "--plat-name", WHEEL_PLATFORM,
             "--dist-dir", L.dist], L.logs / "cross-wheel.log", env=dict(env, **CROSS_ENV),
            cwd=unpacked, what="cross-compiled bdist_wheel")
        wheel = only_file(L.dist, f"*-{WHEEL_PLATFORM}.whl")
        self.check_wheel_library(wheel)
        run([*PIP, "--target", L.pkg, "--no-deps", *PIP_AARCH64, wheel],
            L.logs / "pip-pkg.log", env=env, what=f"pip install {wheel.name}")
        log(f"  {sdist.name} -> {wheel.name}")

    def sdist(self) -> Path:
        return only_file(self.L.dist, "sc2deploy-*.tar.gz")

    @staticmethod
    def unpack(sdist: Path, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest)
        return dest / sdist.name[:-len(".tar.gz")]

    def check_wheel_library(self, wheel: Path) -> None:
        with zipfile.ZipFile(wheel) as z:
            libs = [n for n in z.namelist() if "/_rangecoder" in n and n.endswith(".so")]
            if len(libs) != 1:
                raise CheckError(f"{wheel.name} holds {libs}, expected one _rangecoder*.so")
            data = z.read(libs[0])
        if elf_machine(data) != ELF_AARCH64:
            raise CheckError(f"{libs[0]} in {wheel.name} is not an aarch64 library")
        so = self.L.tmp / "rangecoder-check.so"
        so.parent.mkdir(parents=True, exist_ok=True)
        so.write_bytes(data)
        readelf = shutil.which("aarch64-linux-gnu-readelf")
        if readelf:
            dyn = subprocess.run([readelf, "-d", str(so)], capture_output=True, text=True).stdout
            needed = [line.split("[")[-1].rstrip("]") for line in dyn.splitlines()
                      if "(NEEDED)" in line]
            extra = [n for n in needed if n not in GLIBC_LIBRARIES]
            if extra:
                raise CheckError(f"{libs[0]} in {wheel.name} needs {extra}: beyond glibc, "
                                 f"which a {WHEEL_PLATFORM} wheel may not")
        so.unlink()

    def build_sdist_emulated(self) -> None:
        """The emulated Python builds the sdist with Debian arm64's own sysconfig.

        Its compiler, aarch64-linux-gnu-gcc (Debian's CC on arm64), is the host's cross
        compiler: without binfmt, qemu-user can start native programs but not emulated ones.
        """
        L = self.L
        for d in (L.emu_build, L.pkg_sdist):
            shutil.rmtree(d, ignore_errors=True)
        unpacked = self.unpack(self.sdist(), L.emu_build)
        self.write_cpuinfo(self.args.cpu[0])
        run(self.emulated(self.args.cpu[0], ["-c", BUILD_SDIST_SNIPPET, L.emu_build]),
            L.logs / "emulated-sdist-build.log", cwd=unpacked,
            env=self.emulated_env(L.build_site), what="emulated build of the sdist")
        wheel = only_file(L.emu_build, "*-linux_aarch64.whl")
        self.check_wheel_library(wheel)
        run([*PIP, "--target", L.pkg_sdist, "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
             "--platform", "linux_aarch64", wheel], L.logs / "pip-pkg-sdist.log",
            env=self.host_env(), what=f"pip install {wheel.name}")
        log(f"  emulated python built {wheel.name}")

    def export_bundle(self) -> None:
        cli = [sys.executable, "-m", "sc2deploy.cli"]
        env = self.host_env()
        source = ([self.args.model] if self.args.checkpoint is None else
                  [self.args.model, "--checkpoint", self.args.checkpoint])
        run([*cli, "export", *source, "--input-size", self.args.input_size, "--out",
             self.L.bundle, "--force"], self.L.logs / "export.log", env=env,
            what="sc2deploy export")
        run([*cli, "build", self.L.bundle, *[a for t in self.args.target for a in ("--target", t)]],
            self.L.logs / "build.log", env=env, what="sc2deploy build")

    def check_imports(self) -> None:
        cpu = self.args.cpu[0]
        self.write_cpuinfo(cpu)
        out = run(self.emulated(cpu, ["-c", IMPORTS_SNIPPET]), self.L.logs / "imports.log",
                  env=self.emulated_env(self.L.pkg, [self.L.site]), cwd=self.L.tmp,
                  what=f"{cpu}: import check of the device runtime")
        for line in out.splitlines():
            log("  " + line)

    def setup(self) -> None:
        digest = source_digest(ROOT)
        L = self.L
        package_key = make_key(sources=digest, cross=CROSS_ENV)
        self.step("sysroot", self.sysroot_key(), self.build_sysroot, L.python)
        self.step("build-tools", make_key(build=BUILD_REQUIREMENTS), self.install_build_tools,
                  L.build_site)
        self.step("package", package_key, self.build_package, L.pkg / "sc2deploy")
        self.step("requirements", make_key(package=package_key, sysroot=self.sysroot_key(),
                                           extras=EXTRAS), self.resolve_requirements,
                  L.requirements)
        self.step("site", self.site_key(), self.install_site, L.site)
        if self.args.sdist:
            self.step("sdist-emulated", make_key(package=package_key, sysroot=self.sysroot_key(),
                                                 build=BUILD_REQUIREMENTS),
                      self.build_sdist_emulated, L.pkg_sdist / "sc2deploy")
        checkpoint = (None if self.args.checkpoint is None else
                      hashlib.sha256(self.args.checkpoint.read_bytes()).hexdigest())
        self.step("bundle", make_key(sources=digest, size=self.args.input_size,
                                     targets=self.args.target, model=self.args.model,
                                     checkpoint=checkpoint), self.export_bundle,
                  L.bundle / "manifest.json")
        t0 = time.perf_counter()
        log("emulated import check ...")
        self.check_imports()
        self.setup_times["imports"] = time.perf_counter() - t0

    # ---- runs
    def platforms(self) -> List[Platform]:
        out = [Platform(REFERENCE)]
        out += [Platform(cpu, cpu, self.L.pkg) for cpu in self.args.cpu]
        if self.args.sdist:
            cpu = self.args.cpu[0]
            out.append(Platform(f"{cpu}+sdist", cpu, self.L.pkg_sdist, smoke=True))
        return out

    def commands_for(self, platform: Platform, target: str) -> List[DeviceCommand]:
        out = []
        for cmd in DEVICE_COMMANDS:
            if cmd.targets is not None and target not in cmd.targets:
                continue
            if platform.smoke and not (cmd.smoke and target == self.args.target[0]):
                continue
            if cmd.emulated_once and (platform.smoke or platform.cpu != self.args.cpu[0]):
                continue
            if cmd.host_only and platform.cpu:
                continue
            out.append(cmd)
        return out

    def run_all(self, images: Sequence[Path]) -> None:
        """Every device command, each in its output folder: from the project root, python's
        sys.path[0] would import the working tree's sc2deploy instead of the installed one."""
        shutil.rmtree(self.L.run, ignore_errors=True)
        for platform in self.platforms():
            if platform.cpu:
                self.write_cpuinfo(platform.cpu)
            for target in self.args.target:
                out = self.L.run / platform.name / target
                out.mkdir(parents=True)
                values = {"bundle": str(self.L.bundle), "target": target, "out": str(out)}
                for cmd in self.commands_for(platform, target):
                    args = expand_argv(cmd.argv, values, [str(p) for p in images])
                    if platform.cpu:
                        argv = self.emulated(platform.cpu, args)
                        env = self.emulated_env(platform.packages, [self.L.site])
                    else:
                        argv, env = [sys.executable, *args], self.host_env()
                    label = f"{platform.name} {target} {cmd.name}"
                    t0 = time.perf_counter()
                    run(argv, out / f"{cmd.name}.log", env=env, cwd=out, what=label)
                    self.run_times[label] = time.perf_counter() - t0
                    log(f"run {label}: {self.run_times[label]:.1f} s")

    def compare(self, images: Sequence[Path]) -> List[str]:
        names = [p.name for p in self.platforms()]
        stems = [p.stem for p in images]
        problems, lines = compare_runs(self.L.run, self.args.target, names, stems)
        for line in lines:
            log(line)
        return problems

    def main(self) -> int:
        t_start = time.perf_counter()
        self.L.work.mkdir(parents=True, exist_ok=True)
        self.L.tmp.mkdir(exist_ok=True)
        self.check_host()
        samples = sorted((ROOT / "sc2deploy" / "data" / "samples").glob("*.jpg"))
        images = pick_evenly(samples, self.args.images)
        log(f"work folder {self.L.work}; cpus {', '.join(self.args.cpu)}; targets "
            f"{', '.join(self.args.target)}; images {', '.join(p.stem for p in images)}")
        self.setup()
        setup_s = time.perf_counter() - t_start
        t_run = time.perf_counter()
        self.run_all(images)
        problems = self.compare(images)
        run_s = time.perf_counter() - t_run
        shutil.rmtree(self.L.tmp, ignore_errors=True)
        size_mb = folder_size(self.L.work) / 1e6
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.setup_times.items())
        log(f"setup {setup_s:.1f} s ({steps}); run {run_s:.1f} s; "
            f"{self.L.work} holds {size_mb:.0f} MB")
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            log(f"FAILED: {len(problems)} image results differ from {REFERENCE}")
            return 1
        log("OK: containers and symbols identical on x86_64 and every emulated cpu")
        return 0


def parse_args(argv: Optional[Sequence[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=ROOT / "build" / "arm", metavar="DIR",
                   help="work folder (default: build/arm)")
    p.add_argument("--cpu", action="append", choices=sorted(CPUINFO),
                   help="emulated CPU model, repeatable (default: cortex-a72 and cortex-a76)")
    p.add_argument("--target", action="append", metavar="T",
                   help="bundle target, repeatable (default: onnx and tflite)")
    p.add_argument("--images", type=int, default=4, metavar="N",
                   help="sample images to encode (default: 4)")
    p.add_argument("--input-size", type=int, default=64, metavar="N",
                   help="bundle input size in pixels; small keeps emulation fast (default: 64)")
    p.add_argument("--model", default="demo", metavar="NAME",
                   help="model of the bundle (default: demo, the bundled student)")
    p.add_argument("--checkpoint", type=Path, metavar="CKPT",
                   help="checkpoint to export instead of the demo student (with --model)")
    p.add_argument("--no-sdist", dest="sdist", action="store_false",
                   help="skip building the sdist with the emulated python")
    p.add_argument("--mirror", default="http://deb.debian.org/debian", metavar="URL",
                   help="Debian mirror for the arm64 packages (default: %(default)s)")
    p.add_argument("--security-mirror", default="http://deb.debian.org/debian-security",
                   metavar="URL", help="Debian security mirror (default: %(default)s)")
    args = p.parse_args(argv)
    args.cpu = args.cpu or ["cortex-a72", "cortex-a76"]
    args.target = args.target or ["onnx", "tflite"]
    if args.images < 1:
        p.error("--images must be at least 1")
    if args.checkpoint is not None:
        if args.model == "demo":
            p.error("--checkpoint needs --model (entropic_student, ladon, singh)")
        if not args.checkpoint.is_file():
            p.error(f"checkpoint not found: {args.checkpoint}")
        args.checkpoint = args.checkpoint.resolve()
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return ArmCheck(parse_args(argv)).main()
    except CheckError as exc:
        print(f"arm-check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
