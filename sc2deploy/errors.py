"""The one exception hierarchy of sc2deploy.

Every error a user can cause derives from :class:`Sc2DeployError`; its message
says what was received, what was expected and how to fix it.
"""


class Sc2DeployError(Exception):
    """Base class of every sc2deploy error."""


class UsageError(Sc2DeployError):
    """Bad user input: an unknown name, a missing file, an invalid option."""


class CheckpointError(Sc2DeployError):
    """A checkpoint is unsafe, unreadable, or does not fit the architecture."""


class BundleError(Sc2DeployError):
    """A bundle is missing, malformed, or fails hash verification."""


class PriorError(Sc2DeployError):
    """Entropy-model tables are invalid."""


class ExportError(Sc2DeployError):
    """Exporting a head failed (e.g. the ONNX graph disagrees with torch)."""


class CodecError(Sc2DeployError):
    """Encoding or decoding a latent failed."""


class FidelityError(Sc2DeployError):
    """A built artifact changes too many symbols (see --allow-low-fidelity)."""

    def __init__(self, message: str, stats: dict = None):
        super().__init__(message)
        self.stats = dict(stats or {})


class ResultsError(Sc2DeployError):
    """A profiling results file is unreadable, malformed, or from a newer sc2deploy."""


class RemoteError(Sc2DeployError):
    """Profiling on a device over SSH failed: connection, login, remote install or remote run."""


class OutputError(Sc2DeployError):
    """An output path cannot be written (permissions, read-only disk, no space)."""


class Interrupted(Sc2DeployError):
    """Ctrl-C or SIGTERM ended a command; the message names what was kept."""
