"""sc2deploy: deploy the heads of split-computing models to edge devices.

Importing the package (and its device side: bundle, codec, targets' runners,
profiling) never imports torch; only :mod:`sc2deploy.export` needs it.
"""

__version__ = "0.1.0"

from sc2deploy.errors import Sc2DeployError

__all__ = ["Sc2DeployError", "__version__"]
