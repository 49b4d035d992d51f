"""Profile on a device over SSH with the system ``ssh``/``scp`` (standard library only).

The user's ``~/.ssh/config`` (aliases, keys, jump hosts) is honored; ssh runs with
``BatchMode=yes`` so it never prompts::

    local                                   device (USER@HOST)
    ─────                                   ──────────────────
    ssh: PY -m sc2deploy --version  ──────▶ installed?          (else RemoteError)
    ssh: mktemp -d                  ──────▶ DIR=$TMPDIR/sc2deploy-profile.XXXXXX
    scp -r BUNDLE, image files      ──────▶ DIR/bundle, DIR/images
    ssh: PY -m sc2deploy profile    ──────▶ writes DIR/results.json   (output streamed back)
    scp DIR/results.json            ◀────── OUT (temp file + rename; complete runs only)
    scp DIR/results.ort-trace.json  ◀────── OUT_STEM.ort-trace.json (profile --per-op only)
    ssh: rm -rf DIR                 ──────▶ always (finally)

If the SSH connection drops (timeout, Ctrl-C), the remote run gets SIGINT, keeps what it
measured as a *partial* result (``complete: false``), which is fetched to
``OUT_STEM.partial.json`` and reported as an error, never passed off as complete.

:func:`profile_on_host` runs ``ProfileOptions`` on a ``RemoteOptions`` host (the remote
command line comes from the options' declaration, the deadline from :func:`remote_timeout`);
:func:`profile_remote` takes the ``sc2deploy profile`` arguments as they are.
``verify --host`` (``ssh.verify``) reaches the device with the same pieces.
"""

import codecs
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from sc2deploy import __version__, atomic
from sc2deploy.errors import RemoteError, UsageError
from sc2deploy.log import logger, step
from sc2deploy.preprocess import list_images

if TYPE_CHECKING:
    from sc2deploy.measure.options import ProfileOptions, RemoteOptions

INSTALL_HINT = "install with pip install 'sc2deploy[device]'"
RESERVED_ARGS = ("--images", "-o", "--out")
CLEANUP_TIMEOUT_S = 60.0
SALVAGE_TIMEOUT_S = 60.0
REMOTE_EXIT_WAIT_S = 10  # seconds the remote run gets to write partial results after SIGINT
REMOTE_TIMEOUT_S = 600.0  # copy + run + fetch, on top of the run's --duration and --idle

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOST = re.compile(r"[A-Za-z0-9_.%:\[\]-]+")
_TRACE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.ort-trace\.json")
_REMOTE_DIR = re.compile(r"/[A-Za-z0-9_./+-]*sc2deploy-(profile|verify)\.[A-Za-z0-9]+")


def parse_destination(destination: str) -> Tuple[Optional[str], str]:
    """``USER@HOST`` or ``HOST`` (an ssh_config alias too) -> (user or None, host)."""
    expected = ("expected USER@HOST or HOST (a name, an IP address or an ~/.ssh/config alias), "
                "e.g. pi@raspberrypi.local")
    if not isinstance(destination, str) or not destination.strip():
        raise UsageError(f"empty SSH destination {destination!r}: {expected}")
    if any(c.isspace() or not c.isprintable() for c in destination):
        raise UsageError(f"SSH destination {destination!r} contains spaces or control "
                         f"characters: {expected}")
    if destination.startswith("-"):
        raise UsageError(f"SSH destination {destination!r} starts with '-', which ssh would "
                         f"read as an option: {expected}")
    user, sep, host = destination.rpartition("@")
    if not sep:
        user = None
    elif not _USER.fullmatch(user):
        raise UsageError(f"SSH destination {destination!r}: bad user name {user!r}: {expected}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or host.startswith("-") or not _HOST.fullmatch(host) or "[" in host or "]" in host:
        raise UsageError(f"SSH destination {destination!r}: bad host {host!r}: {expected}")
    return user, host


def remote_timeout(options: "ProfileOptions") -> float:
    """Seconds for a whole remote round trip of ``options``."""
    return REMOTE_TIMEOUT_S + (options.duration_s or 0.0) + (options.idle_s or 0.0)


def profile_on_host(options: "ProfileOptions", remote: "RemoteOptions", out: Path) -> dict:
    """Measure ``options`` on ``remote.host``; write its results to ``out`` and return them
    (the remote command line is made from the options' declaration)."""
    from sc2deploy.measure.options import remote_argv  # here: importing remote needs no numpy

    if not remote.host:
        raise UsageError("no host given: expected --host USER@HOST (or RemoteOptions(host=...))")
    if options.images is None:
        raise UsageError("--host needs --images DIR (the folder copied to the device)")
    return profile_remote(remote.host, options.bundle, options.images, remote_argv(options),
                          out, port=remote.port, remote_python=remote.remote_python,
                          timeout=remote_timeout(options), ssh_options=remote.ssh_options)


class _Remote:
    """One device reached with the system ssh/scp; every call has a deadline."""

    def __init__(self, destination: str, port: Optional[int], ssh_options: Sequence[str],
                 deadline: float, timeout: float):
        self.user, self.host = parse_destination(destination)
        self.destination = f"{self.user}@{self.host}" if self.user else self.host
        self.label = self.destination + (f" (port {port})" if port else "")
        self.port = port
        self.deadline = deadline
        self.timeout = timeout
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise RemoteError(f"`{tool}` was not found on PATH: install the OpenSSH client "
                                  "(e.g. apt-get install openssh-client)")
        connect = max(1, min(15, int(timeout / 3)))  # leaves time to report why
        # ssh keeps the first value given for an option: BatchMode is forced, the user's
        # options override the timeouts below.
        self.options = ["-o", "BatchMode=yes", *ssh_options,
                        "-o", f"ConnectTimeout={connect}",
                        "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]

    # --- commands -------------------------------------------------------------------------
    def ssh_argv(self, script: str) -> List[str]:
        port = ["-p", str(self.port)] if self.port else []
        # The remote login shell receives one string; `sh -c` makes the script POSIX sh.
        return ["ssh", *self.options, *port, "--", self.destination,
                "sh -c " + shlex.quote(script)]

    def scp_argv(self, sources: Sequence[str], target: str, recursive: bool = False) -> List[str]:
        port = ["-P", str(self.port)] if self.port else []
        return ["scp", "-q", *(["-r"] if recursive else []), *self.options, *port, "--",
                *sources, target]

    def remote_path(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{path}" if self.user else f"{host}:{path}"

    def remaining(self, what: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RemoteError(f"timed out after {self.timeout:g} s before {what} on {self.label}: "
                              "raise the timeout, or check the link to the device")
        return left

    def run(self, argv: List[str], what: str, timeout: Optional[float] = None
            ) -> subprocess.CompletedProcess:
        """Run ssh/scp to completion, capturing output; a timeout kills it."""
        limit = self.remaining(what) if timeout is None else timeout
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=limit)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"timed out after {limit:.0f} s while {what} on {self.label} "
                              "(ssh was killed): check that the device is on and reachable, "
                              "or raise the timeout") from None

    def check(self, result: subprocess.CompletedProcess, what: str) -> str:
        """Stdout of a finished ssh/scp, or a RemoteError that says what went wrong."""
        if result.returncode != 0:
            raise connection_error(result.stderr, result.returncode, what, self.label)
        return result.stdout


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def connection_error(stderr: str, returncode: int, what: str, label: str) -> RemoteError:
    """Turn ssh/scp's stderr into an error that names the cause and the fix."""
    said = _tail(stderr, 4) or "(nothing on stderr)"
    causes = (
        ("Connection refused", "connection refused: is sshd running on the device, and is the "
                               "port right (--port)?"),
        ("Permission denied", "authentication failed: ssh runs with BatchMode=yes (no password "
                              "prompt); set up key login (ssh-copy-id USER@HOST) or name the key "
                              "in ~/.ssh/config"),
        ("Host key verification failed", "the device's host key is unknown or changed: connect "
                                         "once with plain `ssh` to check and accept it"),
        ("Could not resolve hostname", "the host name does not resolve: check the spelling, or "
                                       "use its IP address"),
        ("timed out", "the device did not answer in time: check that it is on and reachable"),
        ("No route to host", "the device is unreachable: check that it is on the same network"),
        ("Network is unreachable", "the network is unreachable from here"),
        ("Connection closed", "the device closed the connection (sshd refused or crashed)"),
        ("Connection reset", "the device reset the connection"),
    )
    for pattern, cause in causes:
        if pattern.lower() in stderr.lower():
            return RemoteError(f"ssh to {label} failed while {what}: {cause} (ssh said: {said})")
    return RemoteError(f"ssh to {label} failed while {what} (exit code {returncode}; ssh/scp "
                       f"said: {said})")


class _Pump(threading.Thread):
    """Copy a child's pipe to a local stream as it arrives; keep its last bytes."""

    def __init__(self, pipe, stream):
        super().__init__(daemon=True)
        self.pipe, self.stream = pipe, stream
        self.tail = deque(maxlen=64)

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            chunk = os.read(self.pipe.fileno(), 4096)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                self.tail.append(text)
                try:
                    self.stream.write(text)
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
            if not chunk:
                return

    def text(self) -> str:
        return "".join(self.tail)


def _check_inputs(bundle: Path, profile_args: Sequence[str], out: Path, remote_python: str,
                  port: Optional[int], timeout: float, ssh_options: Sequence[str]) -> List[str]:
    if not (Path(bundle) / "manifest.json").is_file():
        raise UsageError(f"{bundle} is not a bundle (no manifest.json): expected the folder "
                         "written by `sc2deploy export`")
    if isinstance(profile_args, str) or not all(isinstance(a, str) for a in profile_args):
        raise UsageError(f"profile_args must be a list of strings, got {profile_args!r}")
    for arg in profile_args:
        if arg.split("=", 1)[0] in RESERVED_ARGS:
            raise UsageError(f"profile_args sets {arg!r}: profile_remote passes --images and -o "
                             "itself (the copied images and the fetched results file)")
    if Path(out).is_dir():
        raise UsageError(f"-o {out} is a folder: expected the results .json file to write")
    return connection_inputs(remote_python, port, timeout, ssh_options)


def connection_inputs(remote_python: str, port: Optional[int], timeout: float,
                      ssh_options: Sequence[str]) -> List[str]:
    """Check how the device is reached; ``--remote-python`` as an argv prefix."""
    if isinstance(ssh_options, str) or not all(isinstance(a, str) for a in ssh_options):
        raise UsageError(f"ssh_options must be a list of strings, got {ssh_options!r}")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 1 <= port <= 65535):
        raise UsageError(f"SSH port {port!r} is invalid: expected an integer 1..65535")
    if not timeout > 0:
        raise UsageError(f"timeout {timeout!r} is invalid: expected seconds > 0")
    command = shlex.split(remote_python) if remote_python else []
    if not command or command[0].startswith("-"):
        raise UsageError(f"remote python {remote_python!r} is invalid: expected a command such "
                         "as python3 or /opt/venv/bin/python")
    return command


def profile_remote(destination: str, bundle: Path, images: Path, profile_args: Sequence[str],
                   out: Path, port: Optional[int] = None, remote_python: str = "python3",
                   timeout: float = 600, ssh_options: Sequence[str] = ()) -> dict:
    """Run ``sc2deploy profile`` on ``destination`` over SSH; write and return its results.

    ``profile_args``: options passed to the remote ``profile`` as they are (not --images/-o).
    ``timeout``: seconds for the whole round trip (copy, run, fetch); clean-up gets its own
    minute. ``ssh_options``: extra arguments for both ssh and scp (``-i KEY``, ``-o K=V``,
    ``-F FILE``, ``-J JUMP``). Raises RemoteError (connection, login, missing sc2deploy,
    failed or partial remote run) or UsageError (bad arguments).
    """
    out = Path(out)
    python = _check_inputs(bundle, profile_args, out, remote_python, port, timeout, ssh_options)
    image_files = [p.resolve() for p in list_images(images)]
    remote = _Remote(destination, port, ssh_options, time.monotonic() + timeout, timeout)
    check_sc2deploy(remote, python, remote_python)
    remote_dir = make_remote_dir(remote, "profile", "images")
    try:
        return _run_in(remote, remote_dir, python, Path(bundle), image_files, profile_args, out)
    finally:
        _cleanup(remote, remote_dir)


def check_sc2deploy(remote: _Remote, python: List[str], remote_python: str) -> None:
    """RemoteError unless ``python`` on the device runs ``-m sc2deploy`` (connection, login)."""
    with step(f"checking sc2deploy on {remote.label}"):
        result = remote.run(remote.ssh_argv(shlex.join([*python, "-m", "sc2deploy", "--version"])),
                            "checking sc2deploy")
        if result.returncode == 255:
            raise connection_error(result.stderr, 255, "connecting", remote.label)
        version = result.stdout.strip()
        if result.returncode != 0 or not version.startswith("sc2deploy"):
            said = _tail(result.stderr + result.stdout, 3) or f"exit code {result.returncode}"
            raise RemoteError(f"sc2deploy is not installed for {remote_python} on "
                              f"{remote.label}: {INSTALL_HINT} (the device said: {said})")
        if version != f"sc2deploy {__version__}":
            logger.warning("  the device has %s, this machine sc2deploy %s: results may differ "
                           "in format", version, __version__)


def make_remote_dir(remote: _Remote, kind: str, subdir: str) -> str:
    """A new ``$TMPDIR/sc2deploy-KIND.XXXXXX`` on the device (with ``subdir``); its path."""
    made = remote.check(remote.run(remote.ssh_argv(
        f'd=$(mktemp -d "${{TMPDIR:-/tmp}}/sc2deploy-{kind}.XXXXXX") && mkdir "$d/{subdir}" '
        '&& echo "$d"'), "creating a temporary folder"), "creating a temporary folder")
    lines = made.strip().splitlines()
    remote_dir = lines[-1].strip() if lines else ""
    if not _REMOTE_DIR.fullmatch(remote_dir):
        raise RemoteError(f"`mktemp -d` on {remote.label} printed {made.strip()!r}; expected "
                          "an absolute path with plain characters: check TMPDIR on the device")
    return remote_dir


def interruptible(remote_dir: str, command: str) -> str:
    """A remote script that runs ``command`` and SIGINTs it when the ssh connection ends."""
    # The shell execs python under its own pid ($$). A watcher holding ssh's stdin (fd 3) sends
    # it SIGINT when the connection ends (our timeout, Ctrl-C, a dropped link): the run then
    # stops (profile: writes what it measured as partial results) and exits.
    return (f"echo $$ > {remote_dir}/pid; exec 3<&0 </dev/null; "
            "( cat <&3 >/dev/null 2>&1; kill -0 $$ 2>/dev/null && kill -INT $$ ) "
            ">/dev/null 2>&1 & "
            f"export PYTHONUNBUFFERED=1; exec {command} 3<&-")


def _run_in(remote: _Remote, remote_dir: str, python: List[str], bundle: Path,
            image_files: List[Path], profile_args: Sequence[str], out: Path) -> dict:
    size_mb = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 1e6
    with step(f"copying the bundle ({size_mb:.1f} MB) and {len(image_files)} images to "
              f"{remote.label}:{remote_dir}"):
        remote.check(remote.run(remote.scp_argv([str(bundle.resolve())],
                                                remote.remote_path(f"{remote_dir}/bundle"),
                                                recursive=True), "copying the bundle"),
                     "copying the bundle")
        remote.check(remote.run(remote.scp_argv([str(p) for p in image_files],
                                                remote.remote_path(f"{remote_dir}/images/")),
                                "copying the images"), "copying the images")

    command = shlex.join([*python, "-m", "sc2deploy", "profile", f"{remote_dir}/bundle",
                          "--images", f"{remote_dir}/images", "-o", f"{remote_dir}/results.json",
                          *profile_args])
    logger.info("• running on %s: %s", remote.label, command)
    start = time.monotonic()
    status, returncode, stderr = _stream(remote, remote.ssh_argv(interruptible(remote_dir,
                                                                               command)))
    logger.info("  remote run ended after %.1f s (%s)", time.monotonic() - start,
                status if status != "exited" else f"exit code {returncode}")
    if status != "exited":
        kept = _salvage(remote, remote_dir, out)
        why = ("interrupted (Ctrl-C)" if status == "interrupted" else
               f"stopped: timed out after {remote.timeout:g} s (raise the timeout, or use fewer "
               "--runs or a shorter --duration)")
        raise RemoteError(f"the remote run on {remote.label} was {why}{kept}")
    if returncode == 255 and _looks_like_ssh_failure(stderr):
        raise connection_error(stderr, returncode, "running sc2deploy profile", remote.label)
    return _fetch_trace(remote, remote_dir, out, _fetch(remote, remote_dir, out, returncode,
                                                        stderr))


def _stream(remote: _Remote, argv: List[str]) -> Tuple[str, Optional[int], str]:
    """Run ssh with its output copied to ours as it comes.

    Returns (status, exit code, stderr text); status is "exited", "timeout" (ssh killed at
    the deadline) or "interrupted" (Ctrl-C).
    """
    # Its own session: Ctrl-C reaches only us, and we stop ssh, so the remote run always gets
    # its SIGINT and its partial results can be fetched.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    pumps = [_Pump(proc.stdout, sys.stdout), _Pump(proc.stderr, sys.stderr)]
    for pump in pumps:
        pump.start()
    status = "exited"
    try:
        proc.wait(timeout=max(0.0, remote.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        status = "timeout"
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pump in pumps:
            pump.join(timeout=5)
        proc.stdin.close()
    return status, proc.returncode, pumps[1].text()


def _looks_like_ssh_failure(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(s in lowered for s in ("connection refused", "permission denied",
                                      "connection closed", "connection reset", "timed out",
                                      "broken pipe", "host key verification failed",
                                      "could not resolve hostname", "no route to host"))


def _fetch(remote: _Remote, remote_dir: str, out: Path, returncode: int, stderr: str) -> dict:
    """Fetch results.json to ``out`` if the run completed; otherwise keep it as partial."""
    with step(f"fetching the results to {out}"):
        tmp, fetched = _download(remote, remote_dir, out, None)
    try:
        if returncode != 0:
            kept = _keep_partial(tmp, out) if fetched else ""
            raise RemoteError(f"`sc2deploy profile` on {remote.label} failed with exit code "
                              f"{returncode}{kept}. Its last lines:\n{_tail(stderr)}")
        if not fetched:
            raise RemoteError(f"`sc2deploy profile` on {remote.label} exited 0 but wrote no "
                              f"results file. Its last lines:\n{_tail(stderr)}")
        try:
            doc = json.loads(Path(tmp).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            kept = _keep_partial(tmp, out)
            raise RemoteError(f"the results fetched from {remote.label} are not valid JSON "
                              f"({exc}){kept}") from None
        if not isinstance(doc, dict) or doc.get("complete") is not True:
            said = doc.get("complete") if isinstance(doc, dict) else doc
            kept = _keep_partial(tmp, out)
            raise RemoteError(f"the remote run on {remote.label} did not complete (its results "
                              f"say complete: {said!r}){kept}; run it again for complete results")
        os.replace(tmp, out)
        return doc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fetch_trace(remote: _Remote, remote_dir: str, out: Path, doc: dict) -> dict:
    """``profile --per-op``: fetch the raw trace the device wrote beside its results to
    ``trace_path(out)``, then name it in the results at ``out``."""
    from sc2deploy.results.schema import trace_path, write_results

    name = (doc.get("per_op") or {}).get("trace")
    if not name:
        return doc
    if not _TRACE_NAME.fullmatch(name):
        raise RemoteError(f"the results from {remote.label} name the per-op trace {name!r}; "
                          "expected a file name such as results.ort-trace.json")
    local = trace_path(out)
    with step(f"fetching the per-op trace to {local}"):
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{local.name}.", suffix=".tmp")
        os.close(fd)
        try:
            remote.check(remote.run(remote.scp_argv([remote.remote_path(f"{remote_dir}/{name}")],
                                                    tmp), "fetching the per-op trace"),
                         "fetching the per-op trace")
            atomic.make_readable(tmp)
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    doc = {**doc, "per_op": {**doc["per_op"], "trace": local.name}}
    write_results(doc, out)
    return doc


def _download(remote: _Remote, remote_dir: str, out: Path, timeout: Optional[float]
              ) -> Tuple[str, bool]:
    """scp DIR/results.json to a temp file beside ``out``: (temp path, whether it arrived)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    result = remote.run(remote.scp_argv([remote.remote_path(f"{remote_dir}/results.json")], tmp),
                        "fetching the results", timeout)
    if result.returncode != 0 and "no such file" not in result.stderr.lower():
        os.unlink(tmp)
        raise connection_error(result.stderr, result.returncode, "fetching the results",
                               remote.label)
    return tmp, result.returncode == 0 and os.path.getsize(tmp) > 0


def _keep_partial(tmp: str, out: Path) -> str:
    from sc2deploy.results.schema import partial_path

    partial = partial_path(out)
    os.replace(tmp, partial)
    return f"; its partial results were kept as {partial} (not {out})"


def _salvage(remote: _Remote, remote_dir: str, out: Path) -> str:
    """After a stopped run: wait for the remote process to exit, keep any results as partial."""
    try:
        remote.run(remote.ssh_argv(_wait_exit_script(remote_dir)),
                   "waiting for the remote run to stop", SALVAGE_TIMEOUT_S)
        tmp, fetched = _download(remote, remote_dir, out, SALVAGE_TIMEOUT_S)
    except RemoteError as exc:
        return f"; its partial results could not be fetched ({exc})"
    if fetched:
        return _keep_partial(tmp, out)
    os.unlink(tmp)
    return "; it wrote no results"


def _wait_exit_script(remote_dir: str, then: str = "") -> str:
    """Wait up to REMOTE_EXIT_WAIT_S for the remote run to exit, SIGTERM it if still there.

    The pid counts only while its command line names ``remote_dir`` (Linux /proc), so a
    reused pid is never waited for or signalled.
    """
    alive = f'kill -0 "$p" 2>/dev/null && grep -qaF {remote_dir} /proc/"$p"/cmdline 2>/dev/null'
    return (f'p=$(cat {remote_dir}/pid 2>/dev/null); if [ -n "$p" ]; then n=0; '
            f'while {alive} && [ $n -lt {REMOTE_EXIT_WAIT_S * 5} ]; '
            f'do sleep 0.2; n=$((n+1)); done; {alive} && kill -TERM "$p"; fi; '
            f'{then}exit 0')


def _cleanup(remote: _Remote, remote_dir: str) -> None:
    """Remove the remote folder (after a run still going got time to stop)."""
    script = _wait_exit_script(remote_dir, then=f"rm -rf {remote_dir} || exit 1; ")
    try:
        result = remote.run(remote.ssh_argv(script), "removing the temporary folder",
                            CLEANUP_TIMEOUT_S)
    except RemoteError as exc:
        logger.warning("could not remove %s on %s: %s", remote_dir, remote.label, exc)
        return
    if result.returncode != 0:
        logger.warning("could not remove %s on %s (exit code %d): %s; remove it by hand",
                       remote_dir, remote.label, result.returncode, _tail(result.stderr, 3))
