"""sc2deploy: deploy the heads of split-computing models to edge devices.

The package is divided into rooms, each importing only the ones below it: declared once in
:mod:`sc2deploy.rooms` (tabled in docs/development.md, Layout), enforced by
tests/test_rooms.py. The device rooms never import torch, onnx or matplotlib.
"""

__version__ = "0.1.0"

from sc2deploy.errors import Sc2DeployError

__all__ = ["Sc2DeployError", "__version__"]
