"""The measuring commands' options, declared with :mod:`sc2deploy.options`: each field
makes a flag of the command line, of the remote command line and a key of sweep files.

The classes: :class:`ProfileOptions` (``profile``), :class:`RemoteOptions` (its ``--host``
part, run by ``sc2deploy.orchestrate.ssh.remote``) and :class:`ServerOptions`
(``profile-server``); tests/measure/test_options.py round-trips every field.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import UsageError
from sc2deploy.measure.energy_models import ENERGY_CHOICES, PROFILES
from sc2deploy.measure.links import BUILTIN, LINK_FILE_SUFFIXES
from sc2deploy.options import Option, ms_to_s, option, s_to_ms, to_argv, validate
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP as PREPROCESS_HELP

DEFAULT_RUNS = 50  # images measured when neither runs nor duration_s is given
CODER_HELP = "range coder (default: constriction if installed, else c)"



# --- converters for command-line shapes ---------------------------------------------------

def given_server_ms(ms: float) -> dict:
    """The ``server_ms`` entry for a server time the user states."""
    if ms < 0:
        raise UsageError(f"--server-ms must be >= 0, got {ms}")
    return {"source": "given", "ms": float(ms), "from": "given by the user (--server-ms)"}


def _server_from_results(path: Path) -> dict:
    from sc2deploy.measure.server import server_ms_from
    from sc2deploy.results.schema import load_results

    return server_ms_from(load_results([path])[0], str(path))


def _server_ms(server: dict) -> float:
    return server["ms"]


def _local_server(server: dict) -> Optional[str]:
    return None if server["source"] == "given" else \
        "--server-results names a local file; with --host give --server-ms"


def _local_link(link: str) -> Optional[str]:
    return "--link FILE is local; with --host use a built-in link name" \
        if Path(link).suffix.lower() in LINK_FILE_SUFFIXES else None


def _local_root(root: Path) -> Optional[str]:
    return None if Path(root) == Path("/") else \
        "--sysfs-root names a local folder; it cannot be used with --host"


def _split_command(text: str) -> Tuple[str, ...]:
    return tuple(shlex.split(text))


# --- the options --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProfileOptions:
    """What ``profile`` runs and how it measures it."""

    bundle: Path = option(positional=True, metavar="BUNDLE", type=Path, help="bundle directory",
                          remote=False, sweep=False)
    target: str = option("onnx", flag="--target", metavar="TARGET",
                         sweep=False,  # the sweep's targets list
                         help="artifact that runs the head (default: {default})")
    images: Optional[Path] = option(None, flag="--images", type=Path, metavar="DIR",
                                    remote=False, sweep=False,  # the sweep's images
                                    help="image folder, cycled through (default: the bundled "
                                         "samples)")
    warmup: int = option(5, flag="--warmup", type=int, metavar="N", minimum=0,
                         help="images encoded before measuring (default: {default})")
    runs: Optional[int] = option(None, flag="--runs", type=int, metavar="N", minimum=1,
                                 exclusive="stop",
                                 help=f"images to measure (default: {DEFAULT_RUNS})")
    duration_s: Optional[float] = option(None, flag="--duration", type=float, metavar="S",
                                         above=0, unit=" s", exclusive="stop",
                                         help="measure for S seconds")
    threads: Optional[int] = option(None, flag="--threads", type=int, metavar="N", minimum=1,
                                    help="runtime threads (default: its own)")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    link: Optional[str] = option(None, flag="--link", metavar="NAME|FILE", local=_local_link,
                                 help=f"link model: {', '.join(BUILTIN)}, or a .json/.yaml "
                                      "profile")
    energy: str = option("auto", flag="--energy", choices=ENERGY_CHOICES,
                         help="energy source (default: auto = first sensor found, else modeled "
                              "with --device-profile, else none)")
    device_profile: Optional[str] = option(
        None, flag="--device-profile", metavar="NAME",
        help=f"power profile for modeled energy: {', '.join(PROFILES)}; applied only on its "
             "device (see --model-host-time)")
    model_host_time: bool = option(  # model another device's energy with this machine's time
        False, flag="--model-host-time", type=bool,
        help="model the profile's energy anyway when this machine is not its device, with "
             "this machine's timings (labeled 'host-timed on CPU')")
    sysfs_root: Path = option(Path("/"), flag="--sysfs-root", type=Path, metavar="DIR",
                              local=_local_root, sweep=False,
                              help="where sensors are looked up (default: {default}; a fixture "
                                   "tree in tests)")
    pmic_command: Optional[Sequence[str]] = option(
        None, flag="--pmic-command", metavar="CMD", parse=_split_command, show=shlex.join,
        sweep=False,
        help="command printing Pi 5 pmic_read_adc output (default: vcgencmd pmic_read_adc; "
             "with --sysfs-root, ROOT/usr/bin/vcgencmd if present)")
    idle_s: float = option(2.0, flag="--idle", type=float, metavar="S",
                           help="idle baseline before the run, sampler running "
                                "(default: {default} s)")
    sample_interval_s: float = option(0.01, flag="--sample-interval", type=float, metavar="MS",
                                      parse=ms_to_s, show=s_to_ms, sweep=False,
                                      help="power sampling interval (default: {default} ms)")
    energy_repeats: int = option(5, flag="--repeats", type=int, metavar="N",
                                 help="energy windows for the confidence interval "
                                      "(default: {default})")
    server: Optional[dict] = option(  # the results' server_ms entry (given or measured)
        None, flag="--server-ms", type=float, metavar="MS", parse=given_server_ms,
        show=_server_ms, local=_local_server, sweep="server_ms", sweep_parse=given_server_ms,
        sweep_show=_server_ms, help="server time per image, given by you",
        also=(Option(flag="--server-results", type=Path, metavar="FILE",
                     parse=_server_from_results,
                     help="server time from a `sc2deploy profile-server` result"),))
    baselines: bool = option(True, flag="--no-baselines", type=bool,
                             help="skip the JPEG/WebP input-compression baselines")
    label: Optional[str] = option(None, flag="--label", metavar="LABEL",
                                  sweep=False,  # the sweep's item names
                                  help="name of this configuration in reports")
    per_op: bool = option(False, flag="--per-op", type=bool,
                          help="then profile each op of the head with the runtime's profiler "
                               "(onnx targets: onnxruntime's; its Chrome trace is kept as "
                               "RESULTS.ort-trace.json, a figure as RESULTS.per-op.png)")
    preprocess: str = option("exact", flag="--preprocess", choices=PREPROCESS_MODES,
                             help=PREPROCESS_HELP)
    progress: bool = option(True, type=bool, sweep=False, help="progress bars on stderr")

    def __post_init__(self):
        validate(self)
        if self.model_host_time and (self.energy not in ("model", "auto")
                                     or not self.device_profile):
            raise UsageError("--model-host-time applies to modeled energy: give it with "
                             "--energy model (or auto) and --device-profile NAME; got --energy "
                             f"{self.energy}"
                             + ("" if self.device_profile else " and no --device-profile"))


def remote_argv(options: ProfileOptions) -> List[str]:
    """The ``sc2deploy profile`` options that repeat ``options`` on another machine
    (bundle, images and output are the caller's)."""
    return to_argv(options, remote=True)


@dataclass(frozen=True)
class ServerOptions:
    """What ``profile-server`` decodes and how often."""

    bundle: Path = option(positional=True, metavar="BUNDLE", type=Path, help="bundle directory")
    images: Optional[Path] = option(None, flag="--images", type=Path, metavar="DIR",
                                    help="images encoded first, untimed (default: the bundled "
                                         "samples)")
    warmup: int = option(3, flag="--warmup", type=int, metavar="N", minimum=0,
                         help="images decoded before measuring (default: {default})")
    runs: int = option(50, flag="--runs", type=int, metavar="N", minimum=1,
                       help="images to measure (default: {default})")
    threads: Optional[int] = option(None, flag="--threads", type=int, metavar="N",
                                    help="decoder threads")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    label: Optional[str] = option(None, flag="--label", metavar="LABEL",
                                  help="name of this configuration in reports")
    progress: bool = option(True, type=bool, help="progress bar on stderr")

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class RemoteOptions:
    """Where ``profile --host`` runs: the device and how to reach it (used by
    ``sc2deploy.orchestrate.ssh.remote.profile_on_host``; None: here)."""

    host: Optional[str] = option(None, flag="--host", metavar="USER@HOST",
                                 help="run on this device over ssh/scp (your ~/.ssh/config "
                                      "applies)")
    port: Optional[int] = option(None, flag="--port", type=int, metavar="N",
                                 help="ssh port (with --host)")
    remote_python: str = option("python3", flag="--remote-python", metavar="PATH",
                                help="python with sc2deploy[device] on the host "
                                     "(default: {default})")
    ssh_options: Tuple[str, ...] = option((), flag="--ssh-option", metavar="OPT", repeat=True,
                                          help="extra ssh/scp argument, repeatable, e.g. "
                                               "--ssh-option=-i --ssh-option=KEY (most "
                                               "settings belong in ~/.ssh/config)")

    def __post_init__(self):
        validate(self)
