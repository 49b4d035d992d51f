"""matplotlib plumbing of the report's figures: an Agg figure, saving PNG/PDF/SVG, log axes.

matplotlib is imported lazily (``pip install 'sc2deploy[report]'``); pyplot is never used.
Figures are sized for a paper (7 in wide, 8 pt text); PNGs at 200 dpi, PDF and SVG keep text
as text (TrueType in PDF, ``<text>`` in SVG) so a reader can search and edit it.
"""

import functools
import importlib
from pathlib import Path
from typing import Callable, Dict, Sequence

from sc2deploy.atomic import deferred_signals
from sc2deploy.errors import UsageError

FIGURE_FORMATS = ("png", "pdf", "svg")
WIDTH_IN = 7.0
PNG_DPI = 200
_RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7.5,
       "ytick.labelsize": 7.5, "legend.fontsize": 7.5, "pdf.fonttype": 42,
       "svg.fonttype": "none", "svg.hashsalt": "sc2deploy", "hatch.linewidth": 0.6}
# No dates or versions inside the files: the same results give the same bytes.
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
             "svg": {"Date": None, "Creator": None}}


# Every matplotlib module the report uses, imported at once with Ctrl-C held: an interrupt
# inside a module's import (CPython 3.11) surfaces as RuntimeError or ImportError, not as
# KeyboardInterrupt, and would end the command with a traceback.
_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg",
            "matplotlib.backends.backend_pdf", "matplotlib.backends.backend_svg",
            "matplotlib.lines", "matplotlib.patches", "matplotlib.ticker")


@functools.lru_cache(maxsize=None)
def _matplotlib():
    try:
        with deferred_signals():
            import matplotlib

            for name in _MODULES:
                importlib.import_module(name)
    except ImportError:
        raise UsageError("reports need matplotlib, which is not installed: "
                         "pip install 'sc2deploy[report]'") from None
    return matplotlib


def styled(draw: Callable) -> Callable:
    """Run a drawing function with the report's matplotlib settings (fonts, text in vectors)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with _matplotlib().rc_context(_RC):
            return draw(*args, **kwargs)
    return wrapper


def new_figure(height: float, width: float = WIDTH_IN):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend change)."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, stem: Path, formats: Sequence[str] = FIGURE_FORMATS) -> Dict[str, Path]:
    """Write ``fig`` as ``stem.png``, ``stem.pdf``, ``stem.svg`` (those in ``formats``)."""
    out = {}
    with _matplotlib().rc_context(_RC):
        for fmt in formats:
            path = Path(stem).with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            out[fmt] = path
    return out


def save_png_atomically(fig, path: Path) -> Path:
    """Write ``fig`` as the PNG ``path`` through a temporary file beside it: an earlier
    figure stays whole until the new one is complete."""
    from sc2deploy import atomic

    path = Path(path)
    staged = path.with_name(f".{path.stem}.staged")
    try:
        written = save(fig, staged, ("png",))["png"]
        atomic.make_readable(written)
        atomic.swap_in([(written, path)])
    finally:
        staged.with_suffix(".png").unlink(missing_ok=True)
    return path


def flag_partial_ticks(ax, partial: Sequence[bool]) -> None:
    for tick, flag in zip(ax.get_yticklabels(), partial):
        if flag:
            tick.set_color("#B22222")


def log_scale(ax, which: str, ticks: str = "125") -> None:
    """Log scale with plain-number ticks: at 1, 2, 5 x 10^k ("125"), 1, 1.5, 2, 3, 5, 7
    ("dense", ranges under a decade) or 10^k only ("decades", narrow panels)."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    subs = {"125": (1.0, 2.0, 5.0), "dense": (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
            "decades": (1.0,)}[ticks]
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=15))
    axis.set_major_formatter(StrMethodFormatter("{x:,.6g}"))
    axis.set_minor_formatter(NullFormatter())


def wants_log(values: Sequence[float], ratio: float) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) > 1 and min(values) > 0 and max(positive) / min(positive) > ratio
