"""Shared output of the benchmark scripts: the summary with its command, and the JSON."""

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
