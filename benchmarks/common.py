"""What the benchmarks share: their parser with ``--json``, argparse types, and the output."""

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence


def command(module_file: str, argv: Optional[Sequence[str]] = None) -> str:
    """The command line that runs this benchmark with argv (default: this run's)."""
    shown = sys.argv[1:] if argv is None else argv
    return " ".join([f"python -m benchmarks.{Path(module_file).stem}", *shown])


def parser(module_file: str, doc: str, epilog: Optional[str] = None,
           json_option: bool = True) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring's first line, and ``--json PATH`` unless told."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks.{Path(module_file).stem}",
                                description=doc.splitlines()[0], epilog=epilog)
    if json_option:
        p.add_argument("--json", type=Path, metavar="PATH",
                       help="also write the results as JSON")
    return p


def parse(p: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse argv; a --json file must go into an existing folder (checked before the run)."""
    args = p.parse_args(argv)
    path = getattr(args, "json", None)
    if path and not Path(path).resolve().parent.is_dir():
        p.error(f"--json {path}: folder {Path(path).resolve().parent} does not exist")
    return args


def publish(summary_of, result, module_file: str, argv, json_path=None,
            markdown_path=None) -> None:
    """Print the markdown summary (naming the exact command) and write the requested files."""
    summary = summary_of(result, command(module_file, argv))
    print(summary)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    if markdown_path:
        Path(markdown_path).write_text(summary)


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value
