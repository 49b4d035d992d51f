"""Benchmarks of sc2deploy, run from the repository root as modules::

    python -m benchmarks.codec      python -m benchmarks.fuzz_codec BUNDLE
    python -m benchmarks.runtime    python -m benchmarks.stress_rss
    python -m benchmarks.targets    python -m benchmarks.sweep

Each prints a Markdown summary naming its exact command (see BENCHMARKS.md); the options
they share (``--json``, argparse types) and that output are in :mod:`benchmarks.common`.
"""
