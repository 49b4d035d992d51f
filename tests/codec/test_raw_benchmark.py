"""The raw-channel benchmark runs on tiny settings and finds the streams identical (no timing
is asserted: its ratios depend on the machine)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sc2deploy.codec import constriction_available

ROOT = Path(__file__).resolve().parents[2]  # benchmarks/ is a package there


@pytest.mark.skipif(not constriction_available(), reason="constriction is not installed")
def test_codec_raw_benchmark_on_tiny_settings(tmp_path):
    out = tmp_path / "raw.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks.codec_raw", "--cases", "2",
                             "--repeats", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Command: `python -m benchmarks.codec_raw --cases 2 --repeats 1" in result.stdout
    classes = json.loads(out.read_text())["classes"]
    assert "random" in classes and len(classes) > 2
    for name, c in classes.items():
        assert c["identical_cases"] == c["cases"] == 2, name
        assert c["c_vs_constriction_encode"] > 0 and c["c_vs_constriction_decode"] > 0, name
