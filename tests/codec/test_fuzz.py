"""CI runs the codec fuzzer with a few thousand cases per coder (the benchmark runs 10^5)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sc2deploy.codec import constriction_available

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a package there


@pytest.mark.parametrize("coder", ["c", pytest.param("constriction", marks=pytest.mark.skipif(
    not constriction_available(), reason="constriction is not installed on this platform"))])
def test_fuzzed_streams_decode_or_raise_the_codec_error(demo_bundle, coder):
    result = subprocess.run([sys.executable, "-m", "benchmarks.fuzz_codec", str(demo_bundle.path),
                             "--cases", "2500", "--coder", coder],
                            capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["cases"] == 2500
    assert stats["decoded"] + stats["refused"] == stats["cases"]
    assert stats["decoded"] > 0 and stats["refused"] > 0
    assert stats["max_case_seconds"] < 10
