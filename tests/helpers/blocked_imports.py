"""Python processes in which importing some packages fails: code that must run without them."""

import subprocess
import sys

BLOCK = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Blocker())
"""
TORCH_BLOCK = BLOCK.format(blocked=("torch", "constriction"))


def run_cli_without_torch(*args) -> subprocess.CompletedProcess:
    """``sc2deploy ARGS`` in a process where importing torch or constriction fails."""
    code = TORCH_BLOCK + f"from sc2deploy.cli import main; sys.exit(main({list(map(str, args))!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
