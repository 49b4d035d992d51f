"""A virtual machine whose kernel has a real V4L2 camera: Linux's vivid test driver.

The test's Python runs inside a qemu-system-x86_64 guest, booted from this machine's Debian
kernel (/boot/vmlinuz-*, its vivid module and what vivid needs) and an initramfs built
here with busybox; the guest sees this machine's files read-only over 9p (so it runs this
venv and this checkout) and writes only to one shared folder::

    host: initramfs (busybox, modules, init) ──▶ qemu-system-x86_64 (TCG: boots in ~7 s)
    guest init: insmod ... vivid ─ mount 9p "host" at /mnt (ro), "out" over its own path
               ─ chroot /mnt PYTHON OUT/guest.py > OUT/guest.log ─ poweroff

The shared folder keeps its path in the guest (it is $GUEST_OUT, $TMPDIR and $HOME there).

What it needs (Debian): qemu-system-x86, linux-image-amd64, busybox-static.
"""

import gzip
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

VIVID_OPTIONS = "n_devs=1 node_types=0x1"  # one device, a video capture node only
MODULES = ("vivid", "9pnet_virtio", "9p", "virtio_pci")


def kernel() -> Optional[str]:
    """The newest kernel in /boot whose modules include vivid, or None."""
    for vmlinuz in sorted(Path("/boot").glob("vmlinuz-*"), reverse=True):
        release = vmlinuz.name[len("vmlinuz-"):]
        if list(Path("/lib/modules", release).rglob("vivid.ko*")):
            return release
    return None


def missing() -> Optional[str]:
    """Why the VM cannot run here, or None."""
    tools = [t for t in ("qemu-system-x86_64", "busybox", "modprobe", "cpio")
             if shutil.which(t) is None and not Path("/sbin", t).exists()]
    if tools:
        return (f"needs {', '.join(tools)} (Debian: qemu-system-x86, busybox-static, kmod, "
                "cpio; .ci/run installs them)")
    if not _static(shutil.which("busybox")):
        return "busybox is not statically linked (Debian: busybox-static)"
    if kernel() is None:
        return "no kernel with the vivid module in /boot (Debian: linux-image-amd64)"
    return None


def _static(path: str) -> bool:
    """No PT_INTERP program header: the ELF64 binary needs no dynamic loader."""
    import struct

    data = Path(path).read_bytes()
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * size)[0] != 3 for i in range(count))


def _module_files(release: str) -> List[Path]:
    modprobe = shutil.which("modprobe") or "/sbin/modprobe"
    order: List[Path] = []
    for name in MODULES:
        out = subprocess.run([modprobe, "--show-depends", "-S", release, name], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("insmod "):
                path = Path(line.split()[1])
                if path not in order:
                    order.append(path)
    return order


INIT = """#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
ip link set lo up
for m in $(cat /modules/order); do
  case $m in vivid.ko) insmod /modules/$m {vivid} ;; *) insmod /modules/$m ;; esac
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro host /mnt
mount -t 9p -o trans=virtio,version=9p2000.L,rw out /mnt{out}
mount -t devtmpfs dev /mnt/dev
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
cd /mnt{out}
chroot /mnt /usr/bin/env -i PATH=/usr/bin:/bin HOME={out} TMPDIR={out} GUEST_OUT={out} \\
  PYTHONDONTWRITEBYTECODE=1 {env}{python} {out}/guest.py > /mnt{out}/guest.log 2>&1
echo $? > /mnt{out}/guest.rc
sync
poweroff -f
"""


def _initramfs(folder: Path, release: str, out: Path, env: Dict[str, str]) -> Path:
    root = folder / "initramfs"
    for d in ("bin", "dev", "proc", "sys", "mnt", "modules"):
        (root / d).mkdir(parents=True, exist_ok=True)
    busybox = root / "bin" / "busybox"
    shutil.copy(shutil.which("busybox"), busybox)
    for applet in ("sh", "mount", "insmod", "cat", "chroot", "echo", "sync", "poweroff", "ip"):
        (root / "bin" / applet).symlink_to("busybox")
    names = []
    for path in _module_files(release):
        data = path.read_bytes()
        if path.suffix == ".xz":
            import lzma
            data, path = lzma.decompress(data), path.with_suffix("")
        elif path.suffix == ".zst":
            raise RuntimeError(f"{path}: zstd-compressed modules are not handled")
        (root / "modules" / path.name).write_bytes(data)
        names.append(path.name)
    (root / "modules" / "order").write_text("\n".join(names) + "\n")
    init = root / "init"
    variables = "".join(f"{k}={shlex.quote(v)} " for k, v in env.items())
    init.write_text(INIT.format(vivid=VIVID_OPTIONS, python=sys.executable, out=out,
                                env=variables))
    init.chmod(0o755)
    files = subprocess.run(["find", ".", "-print0"], cwd=root, check=True,
                           capture_output=True).stdout
    archive = subprocess.run(["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=root,
                             input=files, check=True, capture_output=True).stdout
    out = folder / "initramfs.cpio.gz"
    out.write_bytes(gzip.compress(archive, 1))
    return out


def run_in_guest(folder: Path, script_text: str, timeout_s: float = 600,
                 env: Optional[Dict[str, str]] = None) -> tuple:
    """Run ``script_text`` with this Python inside the VM; (exit code, guest log, qemu log).

    The script finds the shared folder (``folder / "out"``) as $GUEST_OUT; ``env``: more
    variables of its environment (e.g. PYTHONPATH; paths are this machine's, as the guest
    sees its files at the same paths).
    """
    release = kernel()
    out = (folder / "out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "guest.py").write_text(script_text)
    initrd = _initramfs(folder, release, out, env or {})
    # TCG, not KVM: nested KVM hung at boot on the machines of this project (no output).
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1", "-nographic", "-no-reboot", "-nodefaults",
           "-serial", "stdio", "-kernel", f"/boot/vmlinuz-{release}", "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 quiet",
           "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={out},mount_tag=out,security_model=none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    rc_file, log_file = out / "guest.rc", out / "guest.log"
    rc = int(rc_file.read_text()) if rc_file.is_file() else None
    log = log_file.read_text() if log_file.is_file() else ""
    return rc, log, proc.stdout[-4000:] + proc.stderr[-2000:]
