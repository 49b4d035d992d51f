"""Progress bars (tqdm) on terminals only; nothing at all in pipes, logs and captures."""

import io
import subprocess
import sys

from sc2deploy.measure.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_bar_with_the_note(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with Progress("profile", 4) as progress:
        for i in range(4):
            progress.update(i + 1, "2.5 ms/img")
    text = term.getvalue()
    assert "profile: 100%" in text and "4/4" in text and "2.5 ms/img" in text
    assert text.endswith("\n")  # the finished bar stays on its line


def test_a_timed_run_shows_whole_seconds_and_stops_at_its_total(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    progress = Progress("profile", 2.0, "s")
    progress.update(0.7)
    progress.update(2.31)  # the last image ends after the deadline
    progress.close()
    last = term.getvalue().strip().split("\r")[-1]
    assert "100%" in last and "2/2 s" in last


def test_quiet_when_not_a_terminal_or_disabled(monkeypatch, capsys):
    for progress in (Progress("profile", 3), Progress("warmup", 0)):
        progress.update(1, "x")
        progress.close()
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    progress = Progress("profile", 3, enabled=False)
    progress.update(3)
    progress.close()
    assert term.getvalue() == "" and capsys.readouterr().err == ""


def test_no_terminal_no_tqdm_import():
    code = ("import sys\nfrom sc2deploy.measure.progress import Progress\n"
            "p = Progress('profile', 3)\np.update(3)\np.close()\nprint('tqdm' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False" and result.stderr == ""
