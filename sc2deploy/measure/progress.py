"""A dependency-free progress line on stderr (a bar on terminals, every 10 % otherwise)."""

import sys
import time


class Progress:
    def __init__(self, title: str, total: float, unit: str = "img", enabled: bool = True):
        self.title, self.total, self.unit = title, total, unit
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._last_decile = -1
        self._last_draw = 0.0

    def update(self, done: float, note: str = "") -> None:
        if not self.enabled or self.total <= 0:
            return
        frac = min(1.0, done / self.total)
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1 and frac < 1.0:
                return
            self._last_draw = now
            bar = "#" * int(frac * 30)
            sys.stderr.write(f"\r{self.title} [{bar:<30}] {frac:4.0%} {note}  ")
            sys.stderr.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            sys.stderr.write(f"{self.title}: {frac:4.0%} {note}\n")

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
