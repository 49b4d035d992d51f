"""One logger for sc2deploy, and a timed step helper for long work."""

import contextlib
import logging
import os
import sys
import tempfile
import time

logger = logging.getLogger("sc2deploy")

# Native libraries' log thresholds, read when they load (after configure()); the user's own
# settings win. 2 = errors only: TensorFlow/LiteRT's C++ (absl) INFO and WARNING lines and
# oneDNN's banner go, their errors stay. TF_ENABLE_ONEDNN_OPTS=0: the LiteRT converter's
# TensorFlow leaves its oneDNN kernels off (on AVX-512 CPUs it announces them on stderr by a
# log call no threshold silences), so conversions compute alike on every x86 CPU.
NATIVE_LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2", "ONEDNN_VERBOSE": "0",
                  "TF_ENABLE_ONEDNN_OPTS": "0"}
# Python loggers of third parties whose warnings concern their own setup, not the user's work:
# torchao's "Failed to load .../_C_*.so" (CUDA kernels on a CPU machine), torch's pytree notice
# to converter authors, absl's (litert-torch). Their errors still show.
QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "absl")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (redirections and captures apply)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def configure(verbose: bool = True) -> None:
    """Send sc2deploy's messages to stderr and silence third parties' routine logs
    (idempotent)."""
    quiet_third_parties()
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False  # libraries that configure the root logger must not echo us


@contextlib.contextmanager
def step(title: str):
    """Log ``title`` when work starts and its duration when it ends."""
    logger.info("• %s ...", title)
    start = time.perf_counter()
    yield
    logger.info("  done in %.1f s", time.perf_counter() - start)


def quiet_third_parties() -> None:
    """Errors only from the libraries of ``NATIVE_LOG_ENV`` and ``QUIET_LOGGERS``; call it
    before they load (the CLI does, in ``configure``)."""
    for name, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def native_stderr_without(*prefixes: str):
    """Hold back what is written to file descriptor 2 meanwhile (native code included) and
    pass it on without the lines that start with one of ``prefixes``: for C++ INFO lines
    that no setting silences (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate").
    Where descriptor 2 is closed, nothing is held back."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not line.startswith(prefixes))
            if kept:
                with open(2, "wb", closefd=False) as stderr:
                    stderr.write(kept.encode())
