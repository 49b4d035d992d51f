"""docs/cli.md, generated from the parser: every command's ``--help`` at a fixed width.

``python -m sc2deploy.clidoc --write docs/cli.md`` regenerates it (atomically); without
``--write`` it prints it. tests/test_cli.py fails while the committed file is stale.
"""

import argparse
import contextlib
import os
import sys
from typing import Dict, Iterator, List, Optional

from sc2deploy import atomic
from sc2deploy.cli import build_parser

WIDTH = 100  # argparse wraps at $COLUMNS - 2 (shutil.get_terminal_size)
REGENERATE = "python -m sc2deploy.clidoc --write docs/cli.md"
PINNED_ENV = {"COLUMNS": str(WIDTH), "PYTHON_COLORS": "0", "NO_COLOR": "1"}  # no terminal's say


@contextlib.contextmanager
def fixed_width() -> Iterator[None]:
    """Format help as on a 100-column terminal without colour, whatever this one is."""
    saved = {name: os.environ.get(name) for name in PINNED_ENV}
    os.environ.update(PINNED_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def commands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers, in the order of ``sc2deploy --help``."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def helps() -> Dict[str, str]:
    """``""``: ``sc2deploy --help``; ``NAME``: ``sc2deploy NAME --help``."""
    parser = build_parser()
    with fixed_width():
        text = {"": parser.format_help()}
        text.update((name, sub.format_help()) for name, sub in commands(parser).items())
    return text


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def render() -> str:
    text = helps()
    names = [name for name in text if name]
    lines: List[str] = [
        "# Command-line reference",
        "",
        f"<!-- Generated from sc2deploy.cli's parser by `{REGENERATE}`; do not edit. -->",
        "",
        f"Each command's `--help`, as printed at {WIDTH} columns by Python {python_version()} "
        "(argparse's layout differs a little between Python versions). What the options do in "
        "practice, with examples, is in the topic documents ([index](README.md)).",
        "",
        "Commands: " + ", ".join(f"[{n}](#sc2deploy-{n})" for n in names) + ".",
    ]
    for name, help_text in text.items():
        lines += ["", f"## sc2deploy {name}".rstrip(), "", "```text", help_text.rstrip("\n"),
                  "```"]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sc2deploy.clidoc",
                                     description="Print docs/cli.md, or write it with --write.")
    parser.add_argument("--write", metavar="FILE", help="write FILE atomically (docs/cli.md)")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        atomic.write_text(args.write, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
