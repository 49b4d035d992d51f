"""A progress bar on stderr by tqdm, on terminals only: quiet in logs, pipes and captures.

``Progress(title, total, unit, enabled)``, then ``update(done, note)`` with the absolute
count done (images, or seconds for a timed run) and ``close()``. tqdm is imported only when
a bar is shown, so a device command that is not on a terminal never pays for it.
"""

import os
import sys

# a timed run counts float seconds: show them whole
_SECONDS_FORMAT = "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"


class Progress:
    def __init__(self, title: str, total: float, unit: str = "img", enabled: bool = True):
        self.title, self.total, self.unit = title, total, unit
        self.enabled = enabled
        self._bar = None
        stream = sys.stderr
        if not enabled or total <= 0 or not _is_terminal(stream):
            return
        from tqdm import tqdm

        # a pseudo-terminal may report a size of 0 x 0, where tqdm would draw nothing
        sized = _columns(stream) > 0
        self._bar = tqdm(total=total, desc=title, unit=unit, file=stream, disable=None,
                         dynamic_ncols=sized, ncols=None if sized else 80,
                         nrows=None if sized else 24,
                         bar_format=_SECONDS_FORMAT if unit == "s" else None)

    def update(self, done: float, note: str = "") -> None:
        """``done`` of ``total`` so far; ``note`` is shown after the bar."""
        bar = self._bar
        if bar is None:
            return
        if note:
            bar.set_postfix_str(note, refresh=False)
        bar.update(min(done, self.total) - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0
