"""sc2deploy's device runtime on an emulated aarch64 CPU: qemu-user, no binfmt, no chroot.

Everything is written under one work folder (``build/arm`` for ``make arm-check``)::

    apt-get, private state (arm64 python3.11 .debs) ─ dpkg -x ─> sysroot/ (+ ARM /proc/cpuinfo)
    sdist ─ aarch64-linux-gnu-gcc ─ aarch64 wheel ─ pip ──────> dist/, pkg/
    sc2deploy[device,tflite]'s requirements, markers evaluated
      by the emulated python ─ pip --platform *_aarch64 ────> site/
    sdist built by the emulated Python (its own sysconfig) ───> pkg-sdist/   (sdist=True)

    run_python(cpu, argv):  qemu-aarch64-static -cpu CPU -L sysroot/ sysroot/usr/bin/python3.11 ARGV

Host side: Python's standard library; apt-get, dpkg, pip, the cross compiler and qemu are
called as commands. A setup step is skipped when its stamp (``WORK/stamps/STEP``) holds the
same key. Needs the host packages qemu-user-static, gcc-aarch64-linux-gnu and
libc6-dev-arm64-cross (.ci/run installs them), and a source checkout of sc2deploy (the
wheel is cross-built from it)::

    emu = Emulator(Path("build/arm"), cpus=("cortex-a76",))
    emu.check_host()
    emu.setup()  # ~1-2 min the first time, seconds when cached
    proc = emu.run_python("cortex-a76", ["-m", "sc2deploy.cli", "info", "BUNDLE"])

The sysroot holds one /proc/cpuinfo: run one emulated CPU model at a time per work folder.
"""

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from sc2deploy.errors import EmulationError
from sc2deploy.log import logger

ROOT = Path(__file__).resolve().parents[3]  # the source checkout the wheel is built from
QEMU = "qemu-aarch64-static"
SUITE = "bookworm"  # Debian 12: python3.11
SYSROOT_PACKAGES = ("python3.11", "libstdc++6")  # libstdc++: onnxruntime, LiteRT
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
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
HOST_TOOLS = {QEMU: "qemu-user-static", "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
              "apt-get": "apt", "dpkg": "dpkg"}
CROSS_ENV = {"CC": "aarch64-linux-gnu-gcc", "LDSHARED": "aarch64-linux-gnu-gcc -shared",
             "SETUPTOOLS_EXT_SUFFIX": ".cpython-311-aarch64-linux-gnu.so",
             "SC2DEPLOY_CTYPES_ONLY": "1"}  # setup.py: the Python headers here are x86's
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
CPUS = tuple(sorted(CPUINFO))

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


# ---------------------------------------------------------------- small helpers (tested)

def cpuinfo_text(cpu: str, count: int) -> str:
    """An ARM /proc/cpuinfo with `count` processors of model `cpu`."""
    if cpu not in CPUINFO:
        raise EmulationError(f"no /proc/cpuinfo for cpu {cpu!r}; known: {', '.join(CPUS)}")
    info = CPUINFO[cpu]
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: {variant}\n"
             "CPU part\t: {part}\nCPU revision\t: {revision}\n\n")
    return "".join(block.format(i=i, **info) for i in range(count))


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
        raise EmulationError(f"expected one {pattern} in {folder}, "
                             f"found {[p.name for p in found]}")
    return found[0]


def elf_machine(data: bytes) -> int:
    if data[:4] != b"\x7fELF":
        raise EmulationError("not an ELF file")
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


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
        raise EmulationError(f"{what or cmd[0]} failed with exit code {proc.returncode}{hint}\n"
                             f"{tail}\n  full log: {log_file}")
    return text


class Layout:
    """Where the emulation lives in the work folder."""

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
        self.logs = work / "logs"  # setup logs
        self.stamps = work / "stamps"
        self.tmp = work / "tmp"  # TMPDIR and HOME of the commands


# ---------------------------------------------------------------- the emulator

class Emulator:
    """An aarch64 Python 3.11 with sc2deploy[device,tflite] in ``work``, run by qemu-user.

    ``cpus``: the CPU models to be emulated (checked against qemu; the first one runs the
    setup's emulated steps). ``sdist``: also build the sdist with the emulated Python
    (into ``pkg-sdist/``). ``source``: the sc2deploy checkout the wheel is built from.
    ``log``: where progress lines go (default: the sc2deploy logger).
    """

    def __init__(self, work: Path, cpus: Sequence[str] = ("cortex-a72", "cortex-a76"), *,
                 sdist: bool = False, mirror: str = DEBIAN_MIRROR,
                 security_mirror: str = DEBIAN_SECURITY_MIRROR, source: Path = ROOT,
                 log: Optional[Callable[[str], None]] = None):
        unknown = [c for c in cpus if c not in CPUINFO]
        if not cpus or unknown:
            raise EmulationError(f"cpus {list(cpus)}: expected one or more of {', '.join(CPUS)}")
        self.cpus = tuple(cpus)
        self.sdist = sdist
        self.mirror, self.security_mirror = mirror, security_mirror
        self.source = Path(source)
        self.layout = Layout(Path(work).resolve())
        self.stamps = Stamps(self.layout.stamps)
        self.log = log or logger.info
        self.setup_times: Dict[str, float] = {}
        self.is_root = os.geteuid() == 0
        self._digest: Optional[str] = None

    # ---- environment
    def host_env(self) -> dict:
        env = dict(os.environ, TMPDIR=str(self.layout.tmp), PIP_DISABLE_PIP_VERSION_CHECK="1")
        env.pop("PYTHONPATH", None)
        return env

    def emulated_env(self, packages: Path, extra: Sequence[Path] = ()) -> dict:
        """The whole environment of an emulated python: packages first on its path."""
        path = os.pathsep.join(str(p) for p in (packages, *extra))
        tmp = str(self.layout.tmp)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                "HOME": tmp, "TMPDIR": tmp, "PYTHONPATH": path,
                "PYTHONNOUSERSITE": "1", "PYTHONFAULTHANDLER": "1"}

    def command(self, cpu: str, args: Sequence) -> List:
        """The command line that runs the emulated python with ``args`` on ``cpu``."""
        L = self.layout
        return [QEMU, "-cpu", cpu, "-L", L.sysroot, L.python, *args]

    def write_cpuinfo(self, cpu: str) -> None:
        proc = self.layout.sysroot / "proc"
        proc.mkdir(exist_ok=True)
        (proc / "cpuinfo").write_text(cpuinfo_text(cpu, os.cpu_count() or 1))

    def run_python(self, cpu: str, argv: Sequence, env: Optional[Mapping[str, str]] = None, *,
                   packages: Optional[Path] = None, cwd: Optional[Path] = None,
                   timeout: Optional[float] = None) -> "subprocess.CompletedProcess[str]":
        """Run the emulated python with ``argv`` (e.g. ``["-m", "sc2deploy.cli", ...]`` or
        ``["-c", CODE, ...]``) on ``cpu``, after :meth:`setup`; output captured as text.

        ``env`` is added to the emulated python's own minimal environment; ``packages`` is
        the sc2deploy it imports (default: the cross-built wheel's); ``cwd`` defaults to the
        work folder's tmp/ (from a checkout, ``sys.path[0]`` would import its sc2deploy).
        The exit code is not checked: that is the caller's.
        """
        L = self.layout
        if cpu not in CPUINFO:
            raise EmulationError(f"cpu {cpu!r}: expected one of {', '.join(CPUS)}")
        if not L.python.is_file():
            raise EmulationError(f"{L.python} not found: run Emulator.setup() first "
                                 f"(work folder {L.work})")
        L.tmp.mkdir(parents=True, exist_ok=True)
        self.write_cpuinfo(cpu)
        full_env = self.emulated_env(packages or L.pkg, [L.site])
        full_env.update(env or {})
        return subprocess.run([str(a) for a in self.command(cpu, argv)], capture_output=True,
                              text=True, env=full_env, cwd=cwd or L.tmp, timeout=timeout)

    # ---- checks
    def check_host(self) -> None:
        missing = [f"{tool} (package {pkg})" for tool, pkg in HOST_TOOLS.items()
                   if shutil.which(tool) is None]
        if missing:
            raise EmulationError("missing host tools: " + ", ".join(missing) + ". Install them "
                                 "with: sudo apt-get install -y qemu-user-static "
                                 "gcc-aarch64-linux-gnu (.ci/run does this)")
        if not KEYRING.is_file():
            raise EmulationError(f"{KEYRING} not found: the arm64 packages are verified with "
                                 "Debian's archive key (package debian-archive-keyring)")
        if not (self.source / "setup.py").is_file():
            raise EmulationError(f"no setup.py in {self.source}: the aarch64 wheel is built "
                                 "from a source checkout of sc2deploy")
        out = subprocess.run([QEMU, "-cpu", "help"], capture_output=True,
                             text=True).stdout.split()
        for cpu in self.cpus:
            if cpu not in out:
                raise EmulationError(f"{QEMU} does not emulate {cpu}; it knows: "
                                     + " ".join(w for w in out if w not in ("Available", "CPUs:")))

    # ---- setup steps
    def step(self, name: str, key: str, fn, output: Path) -> None:
        """Run fn unless the stamp holds this key and its output exists."""
        if self.stamps.fresh(name, key) and output.exists():
            self.log(f"setup {name}: cached (stamp {self.stamps.folder / name})")
            self.setup_times[name] = 0.0
            return
        self.stamps.clear(name)
        self.log(f"setup {name} ...")
        t0 = time.perf_counter()
        fn()
        self.setup_times[name] = time.perf_counter() - t0
        self.stamps.write(name, key)
        self.log(f"setup {name}: done in {self.setup_times[name]:.1f} s")

    def source_digest(self) -> str:
        """The sources' digest, computed once per Emulator."""
        if self._digest is None:
            self._digest = source_digest(self.source)
        return self._digest

    def package_key(self) -> str:
        return make_key(sources=self.source_digest(), cross=CROSS_ENV)

    def apt_options(self) -> List[str]:
        a = self.layout.apt
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
        return make_key(suite=SUITE, mirror=self.mirror, security=self.security_mirror,
                        packages=SYSROOT_PACKAGES)

    def build_sysroot(self) -> None:
        L = self.layout
        a, sysroot = L.apt, L.sysroot
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(sysroot, ignore_errors=True)
        for d in ("state", "lists/partial", "cache", "archives/partial", "sources.list.d",
                  "preferences.d", "log"):
            (a / d).mkdir(parents=True, exist_ok=True)
        (a / "status").write_text("")
        opt = f"[arch=arm64 signed-by={KEYRING}]"
        (a / "sources.list").write_text(
            f"deb {opt} {self.mirror} {SUITE} main\n"
            f"deb {opt} {self.mirror} {SUITE}-updates main\n"
            f"deb {opt} {self.security_mirror} {SUITE}-security main\n")
        apt = ["apt-get", "-q", *self.apt_options()]
        run(apt + ["update"], a / "update.log", what="apt-get update (arm64, private state)")
        run(apt + ["-y", "--download-only", "--no-install-recommends", "install",
                   *SYSROOT_PACKAGES], a / "download.log",
            what="apt-get download of the arm64 packages")
        debs = sorted((a / "archives").glob("*.deb"))
        self.log(f"  {len(debs)} arm64 packages downloaded; extracting with dpkg -x")
        sysroot.mkdir(parents=True)
        for deb in debs:
            run(["dpkg", "-x", deb, sysroot], a / "dpkg.log", what=f"dpkg -x {deb.name}")
        L.sysroot_packages.write_text("".join(d.name + "\n" for d in debs))
        if not L.python.is_file():
            raise EmulationError(f"{L.python} missing after extracting the packages")
        shutil.rmtree(a)  # the .debs and lists (~50 MB) are not needed any more

    def install_build_tools(self) -> None:
        """setuptools, wheel (and packaging) for the emulated python: pure Python."""
        L = self.layout
        shutil.rmtree(L.build_site, ignore_errors=True)
        run([*PIP, "--target", L.build_site, "--only-binary=:all:", *BUILD_REQUIREMENTS],
            L.logs / "pip-build-site.log", env=self.host_env(),
            what="pip install of setuptools and wheel for the emulated python")

    def resolve_requirements(self) -> None:
        """The requirements of sc2deploy[device,tflite] as aarch64 evaluates their markers."""
        L, cpu = self.layout, self.cpus[0]
        self.write_cpuinfo(cpu)
        run(self.command(cpu, ["-c", REQUIREMENTS_SNIPPET, L.requirements, *EXTRAS]),
            L.logs / "requirements.log", env=self.emulated_env(L.pkg, [L.build_site]),
            cwd=L.tmp, what="evaluating the requirements under emulation")
        self.log(f"  sc2deploy[{','.join(EXTRAS)}] on aarch64: "
                 + ", ".join(L.requirements.read_text().split()))

    def site_key(self) -> str:
        return make_key(requirements=self.layout.requirements.read_text(), tags=PLATFORM_TAGS,
                        constraints=(self.source / "constraints.txt").read_text())

    def install_site(self) -> None:
        L = self.layout
        shutil.rmtree(L.site, ignore_errors=True)
        run([*PIP, "--target", L.site, *PIP_AARCH64, "-c", self.source / "constraints.txt",
             "-r", L.requirements], L.logs / "pip-site.log", env=self.host_env(),
            what="pip install of the aarch64 wheels of the device requirements")

    def build_package(self) -> None:
        """sdist of the working tree, cross-compiled into an aarch64 wheel, installed in pkg/."""
        L = self.layout
        for d in (L.src, L.dist, L.cross, L.pkg):
            shutil.rmtree(d, ignore_errors=True)
        L.src.mkdir(parents=True)
        for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
            shutil.copy2(self.source / name, L.src / name)
        shutil.copytree(self.source / "sc2deploy", L.src / "sc2deploy",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_rangecoder*"))
        env = self.host_env()
        run([sys.executable, "setup.py", "sdist", "--dist-dir", L.dist], L.logs / "sdist.log",
            env=env, cwd=L.src, what="setup.py sdist")
        sdist = self.sdist_file()
        unpacked = self.unpack(sdist, L.cross)
        run([sys.executable, "setup.py", "build", "--build-base", L.cross / "build",
             "bdist_wheel", "--bdist-dir", L.cross / "bdist", "--plat-name", WHEEL_PLATFORM,
             "--dist-dir", L.dist], L.logs / "cross-wheel.log", env=dict(env, **CROSS_ENV),
            cwd=unpacked, what="cross-compiled bdist_wheel")
        wheel = only_file(L.dist, f"*-{WHEEL_PLATFORM}.whl")
        self.check_wheel_library(wheel)
        run([*PIP, "--target", L.pkg, "--no-deps", *PIP_AARCH64, wheel],
            L.logs / "pip-pkg.log", env=env, what=f"pip install {wheel.name}")
        self.log(f"  {sdist.name} -> {wheel.name}")

    def sdist_file(self) -> Path:
        return only_file(self.layout.dist, "sc2deploy-*.tar.gz")

    @staticmethod
    def unpack(sdist: Path, dest: Path) -> Path:
        import tarfile

        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest)
        return dest / sdist.name[:-len(".tar.gz")]

    def check_wheel_library(self, wheel: Path) -> None:
        import zipfile

        with zipfile.ZipFile(wheel) as z:
            libs = [n for n in z.namelist() if "/_rangecoder." in n and n.endswith(".so")]
            if len(libs) != 1:
                raise EmulationError(f"{wheel.name} holds {libs}, expected one _rangecoder.*.so")
            data = z.read(libs[0])
            for name in (n for n in z.namelist() if n.endswith(".so")):  # entry points too
                if elf_machine(z.read(name)) != ELF_AARCH64:
                    raise EmulationError(f"{name} in {wheel.name} is not an aarch64 library")
        so = self.layout.tmp / "rangecoder-check.so"
        so.parent.mkdir(parents=True, exist_ok=True)
        so.write_bytes(data)
        readelf = shutil.which("aarch64-linux-gnu-readelf")
        if readelf:
            dyn = subprocess.run([readelf, "-d", str(so)], capture_output=True, text=True).stdout
            needed = [line.split("[")[-1].rstrip("]") for line in dyn.splitlines()
                      if "(NEEDED)" in line]
            extra = [n for n in needed if n not in GLIBC_LIBRARIES]
            if extra:
                raise EmulationError(f"{libs[0]} in {wheel.name} needs {extra}: beyond glibc, "
                                     f"which a {WHEEL_PLATFORM} wheel may not")
        so.unlink()

    def build_sdist_emulated(self) -> None:
        """The emulated Python builds the sdist with Debian arm64's own sysconfig.

        Its compiler, aarch64-linux-gnu-gcc (Debian's CC on arm64), is the host's cross
        compiler: without binfmt, qemu-user can start native programs but not emulated ones.
        """
        L, cpu = self.layout, self.cpus[0]
        for d in (L.emu_build, L.pkg_sdist):
            shutil.rmtree(d, ignore_errors=True)
        unpacked = self.unpack(self.sdist_file(), L.emu_build)
        self.write_cpuinfo(cpu)
        run(self.command(cpu, ["-c", BUILD_SDIST_SNIPPET, L.emu_build]),
            L.logs / "emulated-sdist-build.log", cwd=unpacked,
            env=self.emulated_env(L.build_site), what="emulated build of the sdist")
        wheel = only_file(L.emu_build, "*-linux_aarch64.whl")
        self.check_wheel_library(wheel)
        run([*PIP, "--target", L.pkg_sdist, "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
             "--platform", "linux_aarch64", wheel], L.logs / "pip-pkg-sdist.log",
            env=self.host_env(), what=f"pip install {wheel.name}")
        self.log(f"  emulated python built {wheel.name}")

    def setup(self) -> None:
        """Every setup step whose stamp is stale: sysroot, build tools, the cross-built
        package, the device requirements and their aarch64 wheels (and the emulated sdist
        build with ``sdist=True``)."""
        L = self.layout
        L.tmp.mkdir(parents=True, exist_ok=True)
        package_key = self.package_key()
        self.step("sysroot", self.sysroot_key(), self.build_sysroot, L.python)
        self.step("build-tools", make_key(build=BUILD_REQUIREMENTS), self.install_build_tools,
                  L.build_site)
        self.step("package", package_key, self.build_package, L.pkg / "sc2deploy")
        self.step("requirements", make_key(package=package_key, sysroot=self.sysroot_key(),
                                           extras=EXTRAS), self.resolve_requirements,
                  L.requirements)
        self.step("site", self.site_key(), self.install_site, L.site)
        if self.sdist:
            self.step("sdist-emulated", make_key(package=package_key, sysroot=self.sysroot_key(),
                                                 build=BUILD_REQUIREMENTS),
                      self.build_sdist_emulated, L.pkg_sdist / "sc2deploy")

    def check_imports(self) -> None:
        """The device runtime imports on the first cpu, from the wheel, without torch."""
        L, cpu = self.layout, self.cpus[0]
        self.write_cpuinfo(cpu)
        out = run(self.command(cpu, ["-c", IMPORTS_SNIPPET]), L.logs / "imports.log",
                  env=self.emulated_env(L.pkg, [L.site]), cwd=L.tmp,
                  what=f"{cpu}: import check of the device runtime")
        for line in out.splitlines():
            self.log("  " + line)
