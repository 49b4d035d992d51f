"""Shared output of the benchmark scripts: the summary with its command, and the JSON."""

import argparse
import json
import sys
from pathlib import Path


def publish(summary_of, result, script: str, argv, json_path=None, markdown_path=None) -> None:
    """Print the markdown summary (naming the exact command) and write the requested files."""
    shown = sys.argv[1:] if argv is None else argv
    summary = summary_of(result, " ".join([f"python benchmarks/{script}", *shown]))
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
