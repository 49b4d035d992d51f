"""The one exception hierarchy of sc2deploy.

Every error sc2deploy raises on purpose derives from :class:`Sc2DeployError`
(the CLI prints it on one line); its message says what was received, what was
expected and how to fix it. :class:`UsageError` is the user's input;
:class:`DeviceError` is the device or a runtime failing on valid input.
"""

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it: a command stopped by the user


class Sc2DeployError(Exception):
    """Base class of every sc2deploy error."""


class UsageError(Sc2DeployError):
    """Bad user input: an unknown name, a missing file, an invalid option."""


class DeviceError(Sc2DeployError):
    """The device or a runtime failed, not the user's input: NaN symbols from a runner, a
    sensor that stopped sampling, a TensorRT or CUDA call that failed."""


class CameraError(DeviceError):
    """A camera failed: it cannot be opened or set up, stopped sending frames, or sent a frame
    that does not decode (bad input from the user is a UsageError)."""


class CameraEnded(CameraError):
    """The camera's stream ended (its command exited, end of input) before the frames asked."""


class RegistryError(Sc2DeployError):
    """A target record is invalid or registered twice (a defect of a target module)."""


class BuildError(Sc2DeployError):
    """A converter produced an artifact sc2deploy cannot use (e.g. a graph with a cycle)."""


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
    """An artifact disagrees with the torch reference: too many changed symbols (see
    --allow-low-fidelity), or outputs of another shape."""

    def __init__(self, message: str, stats: dict = None):
        super().__init__(message)
        self.stats = dict(stats or {})


class ResultsError(Sc2DeployError):
    """A profiling results file is unreadable, malformed, or from a newer sc2deploy."""


class RemoteError(Sc2DeployError):
    """Work on a device over SSH (profile/verify --host) failed: connection, login, remote
    install or remote run."""


class OutputError(Sc2DeployError):
    """An output path cannot be written (permissions, read-only disk, no space)."""


class Interrupted(Sc2DeployError):
    """Ctrl-C or SIGTERM ended a command; the message names what was kept."""


class CompareError(Sc2DeployError):
    """A run folder holds a file that cannot be compared (not .npy, wrong dtype or size)."""


class EmulationError(Sc2DeployError):
    """Setting up or running the emulated aarch64 Python failed; the message says what to do."""


class Refused(Sc2DeployError):
    """``serve`` refused a request (HTTP ``status``); nothing was decoded."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
