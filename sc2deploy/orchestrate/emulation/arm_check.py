"""`make arm-check`: the torch-free device runtime on aarch64 under qemu-user, byte for byte.

Everything is written under the work folder (default ``build/arm``)::

    host, x86_64 (.venv)                                        build/arm/
    sc2deploy export demo --input-size 64; build onnx, tflite ─> bundle/
    Emulator.setup() (emulator.py): sysroot, cross-built wheel,
      aarch64 site-packages, the sdist built emulated ────────> sysroot/, pkg/, site/, ...

    run   x86_64 (.venv) ─┐
          qemu-aarch64-static -cpu cortex-a72 ─┼─ DEVICE_COMMANDS ─> run/PLATFORM/TARGET/
          qemu-aarch64-static -cpu cortex-a76 ─┘
    check containers (bytes) and int32 symbols equal x86_64's (compare.py); any difference
          fails, except symbols off by one at .5 ties of the host's torch pre-round values
          (the gate's rule)
    fidelity  the reduced-precision artifacts (onnx-fp16, onnx-int8 --search, tflite-fp16,
          tflite-int8 --search: those that build here) per CPU, by emulation/verify.py:
          agreement with torch fp32 and the gate's verdict, printed, never a failure
          (they legitimately differ by CPU: fp16 runs native fp16 kernels on an A76)

Setup steps are skipped when their stamp (``build/arm/stamps/STEP``) holds the same key.
Needs the host packages qemu-user-static and gcc-aarch64-linux-gnu (.ci/run installs them).

Usage::

    python -m sc2deploy.orchestrate.emulation.arm_check [--cpu cortex-a72 --cpu cortex-a76]
        [--target onnx ...] [--model ladon --checkpoint CKPT] [--no-reduced]
        [--images 4] [--input-size 64] [--no-sdist] [--work DIR]
"""

import argparse
import hashlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sc2deploy.errors import Sc2DeployError
from sc2deploy.orchestrate.compare import compare_runs
from sc2deploy.orchestrate.emulation.emulator import (CPUINFO, DEBIAN_MIRROR,
                                                      DEBIAN_SECURITY_MIRROR, ROOT, Emulator,
                                                      folder_size, make_key, run)

REFERENCE = "x86_64"
SAMPLES = ROOT / "sc2deploy" / "data" / "samples"

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
from sc2deploy.builders.build import Reference
from sc2deploy.bundle import Bundle
bundle_dir, out, *images = sys.argv[1:]
reference = Reference(Bundle.open(Path(bundle_dir)), [Path(p) for p in images])
values = np.concatenate(reference.pre_round).astype(np.float32)
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


def log(msg: str) -> None:
    print(f"arm-check: {msg}", flush=True)


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


# ---------------------------------------------------------------- reduced precision
# sc2deploy.targets is imported where it is used: this module imports light (test_rooms.py).
def reduced_targets() -> List[str]:
    """The fp16/int8 targets built and run on a CPU that can build here (registry order):
    not TensorRT (a Jetson GPU), not a host check of a Jetson artifact."""
    from sc2deploy.targets.registry import targets

    known = targets()
    return [name for name, t in known.items()
            if t.precision != "fp32" and t.build_on == "host" and not t.host_check
            and t.runtime != "tensorrt" and t.missing("build") is None
            and t.missing("run") is None]


def row_platform(row: Dict) -> str:
    """verify_emulated's "host x86_64" / "cortex-a76 (qemu)" as this check's platform name."""
    cpu = row.get("cpu", "")
    return cpu[len("host "):] if cpu.startswith("host ") else cpu.replace(" (qemu)", "")


def fidelity_lines(rows: Sequence[Dict], names: Sequence[str],
                   platforms: Sequence[str]) -> Tuple[List[str], str]:
    """One line per reduced-precision target and platform from verify_emulated's rows, and
    a summary; a target absent from a platform's rows is "not measured"."""
    from sc2deploy.targets.gate import threshold

    by_key = {(r["target"], row_platform(r)): r for r in rows if r.get("target") in names}
    lines, below, undecided, missing, passed = [], [], [], [], 0
    for name in names:
        for plat in platforms:
            r = by_key.get((name, plat))
            head = f"fidelity {name} {plat}: "
            if r is None or "agreement_pct" not in r:
                why = "not built" if r is None else r.get("skipped", "no result")
                lines.append(head + f"not measured ({why})")
                missing.append(f"{name} on {plat}")
                continue
            precision = r["precision"]
            gate = (f"{threshold(precision):g} %" if r["rule"].startswith("symbols")
                    else r["rule"])
            decision = r.get("decision") or ("passed" if r["passed"] else "failed")
            verdict = {"passed": "passes", "undecided": "undecided by"}.get(decision, "below")
            lines.append(head + f"{r['agreement_pct']:.4f} % symbols equal "
                         f"({r['images']} images) — {verdict} the {precision} gate ({gate})")
            if decision == "passed":
                passed += 1
            else:
                (undecided if decision == "undecided" else below).append(f"{name} on {plat}")
    total = len(names) * len(platforms)
    summary = (f"fidelity summary: {passed}/{total} reduced-precision results pass their gate"
               + (f"; below it: {', '.join(below)}" if below else "")
               + (f"; too few images to decide: {', '.join(undecided)}" if undecided else "")
               + (f"; not measured: {', '.join(missing)}" if missing else "")
               + " (informational: reduced precision may differ by CPU, not a failure)")
    return lines, summary


@dataclass(frozen=True)
class Platform:
    name: str
    cpu: Optional[str] = None  # None: this machine (x86_64, the .venv)
    packages: Optional[Path] = None  # emulated: where sc2deploy is installed
    smoke: bool = False  # only the smoke commands, first target


class ArmCheck:
    def __init__(self, args):
        self.args = args
        self.emu = Emulator(args.work, args.cpu, sdist=args.sdist, mirror=args.mirror,
                            security_mirror=args.security_mirror, log=log)
        self.L = self.emu.layout
        self.bundle = self.L.work / "bundle"
        self.run_dir = self.L.work / "run"  # run/PLATFORM/TARGET: containers, symbols.npy, logs
        self.setup_times = self.emu.setup_times
        self.run_times: Dict[str, float] = {}
        self.reduced_times: Dict[str, float] = {}  # what the reduced-precision part costs

    def export_bundle(self) -> None:
        cli = [sys.executable, "-m", "sc2deploy.cli"]
        env = self.emu.host_env()
        source = ([self.args.model] if self.args.checkpoint is None else
                  [self.args.model, "--checkpoint", self.args.checkpoint])
        run([*cli, "export", *source, "--input-size", self.args.input_size, "--out",
             self.bundle, "--force"], self.L.logs / "export.log", env=env,
            what="sc2deploy export")
        run([*cli, "build", self.bundle, *[a for t in self.args.target for a in ("--target", t)]],
            self.L.logs / "build.log", env=env, what="sc2deploy build")
        if self.args.reduced:
            self.build_reduced(cli, env)

    def build_reduced(self, cli: List[str], env: dict) -> None:
        """fp16 artifacts as built by default, int8 ones with --search; kept when below the
        gate on x86_64 too (--allow-low-fidelity): their verdict is shown, a failed build
        only logged."""
        from sc2deploy.targets.registry import targets

        t0 = time.perf_counter()
        known = targets()
        for label, names, flags in (
                ("fp16", [t for t in self.args.reduced if known[t].precision != "int8"], []),
                ("int8", [t for t in self.args.reduced if known[t].precision == "int8"],
                 ["--search"])):
            if not names:
                continue
            try:
                run([*cli, "build", self.bundle, *[a for t in names for a in ("--target", t)],
                     *flags, "--allow-low-fidelity"], self.L.logs / f"build-{label}.log",
                    env=env, what=f"sc2deploy build {' '.join(names)}")
            except Sc2DeployError as exc:
                log(f"{label} build failed (not a failure of the check): {exc}")
        self.reduced_times["build"] = time.perf_counter() - t0
        log(f"reduced-precision build ({', '.join(self.args.reduced)}): "
            f"{self.reduced_times['build']:.1f} s")

    def setup(self) -> None:
        self.emu.setup()
        checkpoint = (None if self.args.checkpoint is None else
                      hashlib.sha256(self.args.checkpoint.read_bytes()).hexdigest())
        self.emu.step("bundle", make_key(sources=self.emu.source_digest(),
                                         size=self.args.input_size, targets=self.args.target,
                                         reduced=self.args.reduced,
                                         model=self.args.model, checkpoint=checkpoint),
                      self.export_bundle, self.bundle / "manifest.json")
        t0 = time.perf_counter()
        log("emulated import check ...")
        self.emu.check_imports()
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
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for platform in self.platforms():
            if platform.cpu:
                self.emu.write_cpuinfo(platform.cpu)
            for target in self.args.target:
                out = self.run_dir / platform.name / target
                out.mkdir(parents=True)
                values = {"bundle": str(self.bundle), "target": target, "out": str(out)}
                for cmd in self.commands_for(platform, target):
                    args = expand_argv(cmd.argv, values, [str(p) for p in images])
                    if platform.cpu:
                        argv = self.emu.command(platform.cpu, args)
                        env = self.emu.emulated_env(platform.packages, [self.L.site])
                    else:
                        argv, env = [sys.executable, *args], self.emu.host_env()
                    label = f"{platform.name} {target} {cmd.name}"
                    t0 = time.perf_counter()
                    run(argv, out / f"{cmd.name}.log", env=env, cwd=out, what=label)
                    self.run_times[label] = time.perf_counter() - t0
                    log(f"run {label}: {self.run_times[label]:.1f} s")

    def compare(self, images: Sequence[Path]) -> List[str]:
        names = [p.name for p in self.platforms()]
        stems = [p.stem for p in images]
        problems, lines = compare_runs(self.run_dir, self.args.target, names, stems)
        for line in lines:
            log(line)
        return problems

    def fidelity(self) -> None:
        """verify_emulated on this check's bundle (every artifact, on the host and each
        emulated CPU, few images; recorded in fidelity_by_cpu); prints the reduced-precision
        lines. Never fails the check: an error is printed as such."""
        from sc2deploy.orchestrate.emulation.verify import EmulateOptions, verify_emulated

        t0 = time.perf_counter()
        platforms = [REFERENCE, *self.args.cpu]
        if (self.args.mirror, self.args.security_mirror) != (DEBIAN_MIRROR,
                                                             DEBIAN_SECURITY_MIRROR):
            # verify_emulated's Emulator uses the default mirrors: its setup would rebuild
            # this work folder's sysroot under another stamp key
            log("fidelity: NOT MEASURED (not a failure of the check): verify_emulated takes "
                "no --mirror; run without --mirror/--security-mirror to measure it")
            return
        try:
            rows = verify_emulated(self.bundle, EmulateOptions(
                cpus=tuple(self.args.cpu), images=self.args.images, work=self.L.work))
        except Sc2DeployError as exc:
            log(f"fidelity: NOT MEASURED (not a failure of the check): {exc}")
            rows = []
        lines, summary = fidelity_lines(rows, self.args.reduced, platforms)
        for line in lines + [summary]:
            log(line)
        self.reduced_times["fidelity"] = time.perf_counter() - t0

    def main(self) -> int:
        t_start = time.perf_counter()
        self.L.work.mkdir(parents=True, exist_ok=True)
        self.L.tmp.mkdir(exist_ok=True)
        self.emu.check_host()
        images = pick_evenly(sorted(SAMPLES.glob("*.jpg")), self.args.images)
        log(f"work folder {self.L.work}; cpus {', '.join(self.args.cpu)}; targets "
            f"{', '.join(self.args.target)}; images {', '.join(p.stem for p in images)}")
        self.setup()
        setup_s = time.perf_counter() - t_start
        t_run = time.perf_counter()
        self.run_all(images)
        problems = self.compare(images)
        run_s = time.perf_counter() - t_run
        if self.args.reduced:
            self.fidelity()
        shutil.rmtree(self.L.tmp, ignore_errors=True)
        size_mb = folder_size(self.L.work) / 1e6
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.setup_times.items())
        log(f"setup {setup_s:.1f} s ({steps}); run {run_s:.1f} s; "
            f"{self.L.work} holds {size_mb:.0f} MB")
        if self.args.reduced:
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.reduced_times.items())
            cached = "" if "build" in self.reduced_times else " (build cached by its stamp)"
            log(f"reduced precision added {sum(self.reduced_times.values()):.1f} s "
                f"({parts}){cached}")
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            log(f"FAILED: {len(problems)} image results differ from {REFERENCE}")
            return 1
        log("OK: containers and symbols identical on x86_64 and every emulated cpu")
        return 0


def parse_args(argv: Optional[Sequence[str]] = None):
    p = argparse.ArgumentParser(prog="python -m sc2deploy.orchestrate.emulation.arm_check",
                                description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("--work", type=Path, default=ROOT / "build" / "arm", metavar="DIR",
                   help="work folder (default: build/arm)")
    p.add_argument("--cpu", action="append", choices=sorted(CPUINFO),
                   help="emulated CPU model, repeatable (default: cortex-a72 and cortex-a76)")
    p.add_argument("--target", action="append", metavar="T",
                   help="bundle target, repeatable (default: onnx and tflite)")
    p.add_argument("--no-reduced", dest="reduced", action="store_false",
                   help="skip the fp16/int8 artifacts' fidelity per CPU (shown, never a "
                        "failure)")
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
    p.add_argument("--mirror", default=DEBIAN_MIRROR, metavar="URL",
                   help="Debian mirror for the arm64 packages (default: %(default)s)")
    p.add_argument("--security-mirror", default=DEBIAN_SECURITY_MIRROR,
                   metavar="URL", help="Debian security mirror (default: %(default)s)")
    args = p.parse_args(argv)
    args.cpu = args.cpu or ["cortex-a72", "cortex-a76"]
    args.target = args.target or ["onnx", "tflite"]
    args.reduced = reduced_targets() if args.reduced else []
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
    except Sc2DeployError as exc:
        print(f"arm-check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
