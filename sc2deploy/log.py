"""One logger for sc2deploy, and a timed step helper for long work."""

import contextlib
import logging
import sys
import time

logger = logging.getLogger("sc2deploy")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (redirections and captures apply)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def configure(verbose: bool = True) -> None:
    """Send sc2deploy's messages to stderr (idempotent)."""
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
