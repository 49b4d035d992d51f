"""Options declared once: each field of an options dataclass carries its flag, help, type
and checks, and the command line, the remote command line and sweep files are made from it.

::

    ProfileOptions field ─ option(flag=, help=, type=, minimum=, ...)
        ├─ add_arguments(parser, cls)   argparse flags (mutually exclusive groups included)
        ├─ from_namespace(cls, ns)      parsed flags -> options (CLI units -> field units)
        ├─ to_argv(options)             the ``sc2deploy profile`` flags that repeat it on a device
        ├─ from_mapping(cls, data, ..)  a sweep file's ``profile:`` mapping -> options
        └─ validate(options)            ranges, choices, booleans, exclusive groups

The classes: :class:`ProfileOptions` (``profile``), :class:`RemoteOptions` (its ``--host``
part, run by ``sc2deploy.orchestrate.remote``) and :class:`ServerOptions`
(``profile-server``). Adding an option is adding one field; tests/measure/test_options.py
round-trips every field through each of these. Example::

    warmup: int = option(5, flag="--warmup", type=int, metavar="N", minimum=0,
                         help="images encoded before measuring (default: {default})")
"""

import argparse
import dataclasses
import numbers
import shlex
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sc2deploy.codec.backends import CODERS
from sc2deploy.errors import UsageError
from sc2deploy.measure.energy_models import ENERGY_CHOICES, PROFILES
from sc2deploy.measure.links import BUILTIN, LINK_FILE_SUFFIXES
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP as PREPROCESS_HELP

DEFAULT_RUNS = 50  # images measured when neither runs nor duration_s is given
CODER_HELP = "range coder (default: constriction if installed, else c)"


def _same(value):
    return value


@dataclass(frozen=True)
class Option:
    """How one field appears on the command line, remotely and in sweep files."""

    flag: Optional[str] = None  # "--warmup"; None: Python API only
    help: str = ""  # "{default}" is replaced by the field's default, in command-line units
    positional: bool = False  # a positional argument named after the field
    metavar: Optional[str] = None
    type: Optional[Callable] = None  # of the command-line value (and of the field's, unless
    #                                  parse converts it); bool: a switch
    choices: Optional[Sequence[str]] = None
    minimum: Optional[float] = None  # value >= minimum
    above: Optional[float] = None  # value > above
    unit: str = ""  # named in messages: "--duration must be > 0 s"
    exclusive: Optional[str] = None  # fields of one group: at most one is given
    repeat: bool = False  # the flag is repeatable; the value is a tuple
    parse: Callable = _same  # command-line value -> field value
    show: Callable = _same  # field value -> command-line value
    also: Tuple["Option", ...] = ()  # other flags that set this field (exclusive with it)
    sweep: Any = True  # key in sweep files: True = the field's name, a str, or False (none)
    sweep_parse: Callable = _same  # sweep value -> field value
    sweep_show: Callable = _same  # field value -> sweep value
    remote: bool = True  # repeated on the device by to_argv
    local: Optional[Callable[[Any], Optional[str]]] = None  # why a value cannot go remote


def option(default=MISSING, **spec) -> Any:
    """A dataclass field declared with its :class:`Option` (see the module docstring)."""
    return dataclasses.field(default=default, metadata={"option": Option(**spec)})


def spec_of(f: dataclasses.Field) -> Option:
    try:
        return f.metadata["option"]
    except KeyError:
        raise TypeError(f"field {f.name!r} is not declared with option(): every field of an "
                        "options class needs its flag and help") from None


def name_of(f: dataclasses.Field) -> str:
    """The name users see in messages: the flag, else the field."""
    return spec_of(f).flag or f.name


def sweep_key(f: dataclasses.Field) -> Optional[str]:
    key = spec_of(f).sweep
    return f.name if key is True else (key or None)


def sweep_keys(cls) -> Dict[str, dataclasses.Field]:
    """The keys a sweep file's mapping for ``cls`` may have, with their fields."""
    return {sweep_key(f): f for f in fields(cls) if sweep_key(f)}


# --- checks -------------------------------------------------------------------------------

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", Path: "a path",
             str: "a string", None: "a string"}


def _check_value(f: dataclasses.Field, value, name: str) -> None:
    o = spec_of(f)
    if value is None:
        if f.default is None:  # the fields that default to None are the optional ones
            return
        raise UsageError(f"{name} must be {_EXPECTED.get(o.type, 'given')}, got None")
    if o.type is bool and not isinstance(value, bool):
        raise UsageError(f"{name} must be true or false, got {value!r}")
    number = {int: numbers.Integral, float: numbers.Real}
    if o.type in number and o.parse is _same and (
            isinstance(value, bool) or not isinstance(value, number[o.type])):
        raise UsageError(f"{name} must be {_EXPECTED[o.type]}, got {value!r}")
    if o.choices is not None and value not in o.choices:
        raise UsageError(f"unknown {name} {value!r}; known: {', '.join(o.choices)}")
    if o.minimum is not None and value < o.minimum:
        raise UsageError(f"{name} must be >= {o.minimum}{o.unit}, got {value}")
    if o.above is not None and not value > o.above:
        raise UsageError(f"{name} must be > {o.above}{o.unit}, got {value}")


def validate(options) -> None:
    """Check every field's declared range, choices and type, and the exclusive groups.
    Options classes call it first in ``__post_init__``."""
    groups: Dict[str, List[str]] = {}
    for f in fields(options):
        value = getattr(options, f.name)
        _check_value(f, value, f.name if spec_of(f).type is bool else name_of(f))
        if spec_of(f).exclusive and value is not None:
            groups.setdefault(spec_of(f).exclusive, []).append(name_of(f))
    for given in groups.values():
        if len(given) > 1:
            raise UsageError(f"give {' or '.join(given)}, not both")


# --- the command line ---------------------------------------------------------------------

def _show_default(o: Option, default) -> str:
    value = o.show(default)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _argparse_kwargs(o: Option, dest: str, default) -> dict:
    text = o.help.replace("{default}", _show_default(o, default)) if "{default}" in o.help \
        else o.help
    if o.type is bool:  # a switch: given, it sets the opposite of the default
        return dict(dest=dest, action="store_const", const=not default, default=None, help=text)
    kwargs = dict(dest=dest, default=None, help=text, metavar=o.metavar, choices=o.choices)
    if o.repeat:
        kwargs["action"] = "append"
    if o.type not in (None, str):
        kwargs["type"] = o.type
    return kwargs


def _alt_dest(f: dataclasses.Field, alt: Option) -> str:
    return f"{f.name}__{alt.flag.lstrip('-').replace('-', '_')}"


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """Add a flag for every field of ``cls`` that has one, in field order."""
    groups: Dict[str, Any] = {}
    for f in fields(cls):
        o = spec_of(f)
        if o.positional:
            parser.add_argument(f.name, metavar=o.metavar, type=o.type, help=o.help)
            continue
        if o.flag is None:
            continue
        group = o.exclusive or (f.name if o.also else None)
        if group is not None and group not in groups:
            groups[group] = parser.add_mutually_exclusive_group()
        target = parser if group is None else groups[group]
        target.add_argument(o.flag, **_argparse_kwargs(o, f.name, f.default))
        for alt in o.also:
            target.add_argument(alt.flag, **_argparse_kwargs(alt, _alt_dest(f, alt), None))


def _parse(o: Option, value):
    try:
        return o.parse(tuple(value) if o.repeat else value)
    except ValueError as exc:
        raise UsageError(f"{o.flag} {value!r} is invalid ({exc}): expected "
                         f"{o.metavar or 'a value'}; correct it and run again") from None


def from_namespace(cls, namespace: argparse.Namespace, **fixed):
    """The options parsed by :func:`add_arguments` (flags not given keep their defaults)."""
    kwargs = {}
    for f in fields(cls):
        o = spec_of(f)
        if o.flag is None and not o.positional:
            continue
        value = getattr(namespace, f.name)
        if value is not None:
            kwargs[f.name] = value if o.positional else _parse(o, value)
        for alt in o.also:
            value = getattr(namespace, _alt_dest(f, alt))
            if value is not None:
                kwargs[f.name] = _parse(alt, value)
    return cls(**{**kwargs, **fixed})


def to_argv(options, remote: bool = True) -> List[str]:
    """The command-line arguments that repeat ``options``.

    ``remote=True`` (the ``sc2deploy profile`` run on a device over ssh): without the
    fields the caller passes itself (bundle, images), and refusing values that name
    something on this machine (UsageError). ``remote=False``: every field, positionals too.
    """
    argv = []
    for f in fields(options):
        o, value = spec_of(f), getattr(options, f.name)
        if remote and not o.remote:
            continue
        refused = remote and o.local is not None and value is not None and o.local(value)
        if refused:
            raise UsageError(refused)
        if o.positional:
            argv.append(str(value))
        elif o.flag is None or value is None:
            continue
        elif o.type is bool:
            argv += [o.flag] if value != f.default else []
        elif o.repeat:
            argv += [f"{o.flag}={item}" for item in o.show(value)]
        else:  # --flag=VALUE: a value that starts with '-' stays a value
            argv.append(f"{o.flag}={o.show(value)}")
    return argv


# --- sweep files --------------------------------------------------------------------------

_SWEEP_TYPES = {int: (int,), float: (int, float), str: (str,), Path: (str,), bool: (bool,)}


def from_mapping(cls, data, where: str, **fixed):
    """Options from a sweep file's mapping (keys: :func:`sweep_keys`; null = the default);
    unknown keys and bad values are refused, naming ``where``."""
    keys = sweep_keys(cls)
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping with keys from {sorted(keys)}, got "
                         f"{data!r}")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise UsageError(f"{where}: unknown keys {unknown}; known: {sorted(keys)}")
    kwargs = {}
    try:
        for key, value in data.items():
            f = keys[key]
            o = spec_of(f)
            if value is None:
                continue
            accepted = _SWEEP_TYPES.get(o.type or str, (object,))
            if not isinstance(value, accepted) or (isinstance(value, bool)
                                                   and o.type is not bool):
                raise UsageError(f"{key} must be {_EXPECTED.get(o.type, 'given')}, got "
                                 f"{value!r}")
            kwargs[f.name] = o.sweep_parse(o.type(value) if o.type in (float, Path) else value)
            _check_value(f, kwargs[f.name], key)
        return cls(**kwargs, **fixed)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def to_mapping(options) -> dict:
    """The sweep mapping that gives ``options`` (the fields that have a key and a value)."""
    return {sweep_key(f): spec_of(f).sweep_show(getattr(options, f.name))
            for f in fields(options) if sweep_key(f) and getattr(options, f.name) is not None}


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


def _ms_to_s(ms: float) -> float:
    return ms / 1e3


def _s_to_ms(seconds: float) -> float:
    return seconds * 1e3


# --- the options --------------------------------------------------------------------------

@dataclass(frozen=True)
class ProfileOptions:
    """What ``profile`` runs and how it measures it."""

    bundle: Path = option(positional=True, metavar="BUNDLE", type=Path, help="bundle directory",
                          remote=False, sweep=False)
    target: str = option("onnx", flag="--target", sweep=False,  # the sweep's targets list
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
                                      parse=_ms_to_s, show=_s_to_ms, sweep=False,
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
    label: Optional[str] = option(None, flag="--label", sweep=False,  # the sweep's item names
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
    label: Optional[str] = option(None, flag="--label",
                                  help="name of this configuration in reports")
    progress: bool = option(True, type=bool, help="progress bar on stderr")

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class RemoteOptions:
    """Where ``profile --host`` runs: the device and how to reach it (used by
    ``sc2deploy.orchestrate.remote.profile_on_host``; None: here)."""

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
