"""The device side imports without torch (and without constriction)."""

import subprocess
import sys

DEVICE_MODULES = ["sc2deploy", "sc2deploy.atomic", "sc2deploy.bundle", "sc2deploy.images",
                  "sc2deploy.prior", "sc2deploy.preprocess",
                  "sc2deploy.fidelity", "sc2deploy.cli", "sc2deploy.report_info",
                  "sc2deploy.codec", "sc2deploy.targets", "sc2deploy.profiling",
                  "sc2deploy.profiling.runtime", "sc2deploy.profiling.server",
                  "sc2deploy.profiling.remote", "sc2deploy.profiling.report",
                  "sc2deploy.profiling.sweep", "sc2deploy.targets.onnx",
                  "sc2deploy.targets.tflite"]

BLOCK = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'constriction'):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Blocker())
"""


def test_device_side_imports_without_torch():
    code = BLOCK + "".join(f"import {m}\n" for m in DEVICE_MODULES) + "print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_info_runs_without_torch(demo_bundle):
    code = BLOCK + f"from sc2deploy.cli import main; sys.exit(main(['info', r'{demo_bundle.path}']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout


def test_profile_runs_without_torch_or_constriction(demo_bundle, tmp_path):
    out = tmp_path / "r.json"
    code = BLOCK + ("from sc2deploy.cli import main; sys.exit(main(['profile', "
                    f"r'{demo_bundle.path}', '--runs', '2', '--warmup', '0', '--energy', 'none', "
                    f"'--no-baselines', '-o', r'{out}']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert '"coder": "c"' in out.read_text()


def test_export_needs_torch_and_says_so():
    code = BLOCK + "import sc2deploy.export"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked for this test: torch" in result.stderr
