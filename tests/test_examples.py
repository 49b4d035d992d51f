"""Every file in examples/ runs as a newcomer runs it: in a subprocess (Python files with this
venv's python, shell files with bash and the venv's bin/ first on PATH), given an output folder
of its own; it exits 0 and makes what it says. A new example is found by listing the folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RUNNERS = {".py": [sys.executable], ".sh": ["bash"]}
NOT_RUN = {"README.md"}


def examples():
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.name not in NOT_RUN)


def check_export_demo(out: Path, stdout: str):
    assert (out / "demo-bundle" / "manifest.json").is_file()
    assert "verified   manifest digest and" in stdout
    assert "input [1, 3, 224, 224] -> latent [12, 28, 28]" in stdout


def check_codec_roundtrip(out: Path, stdout: str):
    assert "round trip OK" in stdout
    assert (out / "sample_00.s2c").stat().st_size > 16  # header + payload


def check_profile_and_report(out: Path, stdout: str):
    assert json.loads((out / "profile.json").read_text())["complete"] is True
    assert (out / "report" / "report.html").is_file()


def check_adaptive_replay(out: Path, stdout: str):
    doc = json.loads((out / "replay.json").read_text())
    assert doc["kind"] == "replay" and len(doc["images"]) == 45
    assert [p["name"] for p in doc["adaptive"]["points"]] == ["demo-beta0.1", "demo-beta1",
                                                              "demo-beta3"]
    assert any(line.startswith("adaptive ") for line in stdout.splitlines()), stdout


# What an example makes, by file name; an example without a check here must still exit 0 and
# write something into its output folder.
CHECKS = {"export_demo.sh": check_export_demo, "codec_roundtrip.py": check_codec_roundtrip,
          "profile_and_report.sh": check_profile_and_report,
          "adaptive_replay.py": check_adaptive_replay}


def test_every_example_can_be_run_and_is_listed_in_the_readme():
    readme = (EXAMPLES / "README.md").read_text()
    found = examples()
    assert found, f"no examples in {EXAMPLES}"
    for path in found:
        assert path.suffix in RUNNERS, (f"{path.name}: no way to run a {path.suffix!r} file; "
                                        f"expected one of {sorted(RUNNERS)}")
        assert f"]({path.name})" in readme, f"{path.name} is not listed in examples/README.md"
    assert set(CHECKS) <= {p.name for p in found}, "CHECKS names an example that is gone"


@pytest.mark.parametrize("example", examples(), ids=lambda p: p.name)
def test_example_runs(example, tmp_path):
    out = tmp_path / "out"
    before = sorted(p.name for p in EXAMPLES.iterdir())
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                 os.environ.get("PATH", "")]),
               TMPDIR=str(tmp_path))
    result = subprocess.run([*RUNNERS[example.suffix], str(example), str(out)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (f"{example.name} exited {result.returncode}\n"
                                    f"stdout:\n{result.stdout[-3000:]}\n"
                                    f"stderr:\n{result.stderr[-3000:]}")
    assert any(out.iterdir()), f"{example.name} wrote nothing into {out}"
    CHECKS.get(example.name, lambda *_: None)(out, result.stdout)
    assert sorted(p.name for p in EXAMPLES.iterdir()) == before, "an example wrote into examples/"
