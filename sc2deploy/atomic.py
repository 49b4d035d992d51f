"""Writers that never leave a partial file, and signals held back while files are swapped in.

Every file sc2deploy writes is first written under a temporary name in the
destination folder and then renamed over the final name (``os.replace`` is
atomic on POSIX). Where several renames must happen together, SIGINT and
SIGTERM are deferred until the last one is done (torch-free).
"""

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence, Tuple, Union

from sc2deploy.errors import OutputError

FILE_MODE = 0o644  # results, reports and bundle files are readable by everyone, like `cp`
_DEFERRED = (signal.SIGINT, signal.SIGTERM)


def make_readable(path: Union[str, Path], mode: int = FILE_MODE) -> None:
    """Give a temporary file (mkstemp makes them 0600) its final mode, under the umask."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, mode & ~mask)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver them (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {s: signal.getsignal(s) for s in _DEFERRED}
    for s in _DEFERRED:
        signal.signal(s, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in received[:1]:
            os.kill(os.getpid(), signum)


def write_bytes(path: Union[str, Path], data: bytes, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        make_readable(tmp, mode)
        try:
            os.replace(tmp, path)
        except IsADirectoryError:  # the OSError would name the temporary file
            raise OutputError(f"{path} is a folder; expected the path of a file to write: "
                              f"name a file (e.g. {path / 'NAME'}) or choose another path"
                              ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: Union[str, Path], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def ensure_writable(folder: Union[str, Path], what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be made there, before any work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".sc2deploy-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {folder} is not writable ({exc.strerror or exc}): "
                          f"{fix_for(exc)}") from None
    return folder


@contextlib.contextmanager
def output_folder(folder: Union[str, Path], what: str) -> Iterator[Path]:
    """``ensure_writable(folder, what)`` for a command's output folder, undone when the
    command fails: the folders it created go again while they are empty, so a refused
    command leaves nothing behind (a partial output stays, with what it holds)."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        yield ensure_writable(folder, what)
    except BaseException:
        for path in created:
            try:
                path.rmdir()
            except OSError:  # not empty (or not ours any more): kept
                break
        raise


def fix_for(exc: OSError) -> str:
    """What a user can do about ``exc``."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "choose a folder you can write to, or fix its permissions"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space and run the command again"
    if exc.errno == errno.ENOENT:
        return "check that the path exists"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return "a file is in the way: choose another path"
    return "check the path and run the command again"


def swap_in(moves: Sequence[Tuple[Path, Path]]) -> None:
    """Rename every (staged, final) pair, with signals held until all are done."""
    with deferred_signals():
        for staged, final in moves:
            os.replace(staged, final)


def replace_dir(staged: Path, final: Path) -> None:
    """Put the folder ``staged`` at ``final``, removing the old one; signals held meanwhile."""
    with deferred_signals():
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
        os.replace(staged, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
