"""A real OpenSSH server on 127.0.0.1 for the remote tests (profile --host, verify --host), and
the emulation tests' host tools.

The ``device`` fixture starts ``sshd -D`` with its own host key, user key and config in a
temporary folder; the "device" is this machine. Skipped, with the reason, when sshd is
missing or cannot start.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
EMULATION_TOOLS = ("qemu-aarch64-static", "aarch64-linux-gnu-gcc")


@pytest.fixture()
def emulation_tools():
    """Skip, saying why, when qemu-user or the cross compiler is missing."""
    missing = [t for t in EMULATION_TOOLS if shutil.which(t) is None]
    if missing:
        reason = (f"needs {', '.join(missing)} (.ci/run installs qemu-user-static and "
                  "gcc-aarch64-linux-gnu)")
        print("skipped:", reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sc2deploy-test",
                    "-f", str(path)], check=True, capture_output=True)
    return path


class Device:
    """What the tests need to reach the sshd fixture."""

    def __init__(self, root: Path, port: int, key: Path):
        self.root, self.port, self.key = root, port, key
        self.tmp = root / "remote-tmp"  # the device's TMPDIR: mktemp folders appear here
        self.user = os.environ.get("USER") or __import__("getpass").getuser()
        self.destination = f"{self.user}@127.0.0.1"

    def options(self, key: Path = None):
        return ["-F", str(self.root / "ssh_config"), "-i", str(key or self.key),
                "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={self.root / 'known_hosts'}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=accept-new",
                "-o", f"SetEnv=TMPDIR={self.tmp}",
                "-o", "KexAlgorithms=curve25519-sha256"]  # faster than the default on 2 busy cores

    def leftovers(self, kind: str = "profile"):
        """The remote runs' folders still on the device (login scripts may add other files)."""
        return sorted(p.name for p in self.tmp.glob(f"sc2deploy-{kind}.*"))

    free_port = staticmethod(_free_port)  # a port nothing listens on
    keygen = staticmethod(_keygen)  # a new ed25519 key pair at PATH (and PATH.pub)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        pytest.skip(f"{SSHD} or ssh-keygen is missing: apt-get install openssh-server")
    root = tmp_path_factory.mktemp("sshd")
    host_key, user_key = _keygen(root / "host_ed25519"), _keygen(root / "user_ed25519")
    (root / "authorized_keys").write_text((root / "user_ed25519.pub").read_text())
    (root / "ssh_config").write_text("")
    (root / "remote-tmp").mkdir()
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = _free_port()
    lines = [f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
             f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {root / 'authorized_keys'}",
             "PubkeyAuthentication yes", "PasswordAuthentication no",
             "KbdInteractiveAuthentication no", "PermitRootLogin yes", "StrictModes no",
             "UsePAM no", "AcceptEnv TMPDIR", "Subsystem sftp internal-sftp",
             "PerSourcePenalties no"]  # OpenSSH >= 9.8 would block 127.0.0.1 after a bad key
    config = root / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    test = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if "PerSourcePenalties" in test.stderr:  # older sshd: the option does not exist
        config.write_text("\n".join(lines[:-1]) + "\n")
        test = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if test.returncode != 0:
        pytest.skip(f"sshd rejects the test config: {test.stderr.strip()}")
    log = open(root / "sshd.log", "w")
    # SIGINT as on a real device: not ignored, even when pytest runs as a background job
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.skip(f"sshd exited with code {proc.returncode}: "
                        f"{(root / 'sshd.log').read_text().strip()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("sshd did not accept connections within 10 s")
            time.sleep(0.05)
    yield Device(root, port, user_key)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
