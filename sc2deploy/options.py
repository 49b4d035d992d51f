"""Options declared once: each field of an options dataclass carries its flag, help, type
and checks, and every command line, the remote command line and sweep files are made from it.

::

    options class field ─ option(flag=, help=, type=, minimum=, nested=, ...)
        ├─ add_arguments(parser, cls)   argparse flags (nested classes' and exclusive groups too)
        ├─ from_namespace(cls, ns)      parsed flags -> options (CLI units -> field units)
        ├─ to_argv(options)             the flags that repeat it on a device
        ├─ from_mapping(cls, data, ..)  a sweep file's mapping -> options
        └─ validate(options)            ranges, choices, booleans, exclusive groups

A :class:`Command` is one row of the CLI's table: its help, its options class and the
function that runs it (options -> exit code). Adding an option is adding one field;
tests/test_options.py round-trips every field of every command. Example::

    warmup: int = option(5, flag="--warmup", type=int, metavar="N", minimum=0,
                         help="images encoded before measuring (default: {default})")
"""

import argparse
import dataclasses
import numbers
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sc2deploy.errors import UsageError


def _same(value):
    return value


@dataclass(frozen=True)
class Option:
    """How one field appears on the command line, remotely and in sweep files."""

    flag: Optional[str] = None  # "--warmup"; None: Python API only
    help: str = ""  # "{default}" is replaced by the field's default, in command-line units
    positional: bool = False  # a positional argument named after the field
    short: Optional[str] = None  # "-o", beside the flag
    metavar: Optional[str] = None
    type: Optional[Callable] = None  # of the command-line value (and of the field's, unless
    #                                  parse converts it); bool: a switch
    choices: Optional[Sequence[str]] = None
    required: bool = False  # a flag that must be given
    nargs: Optional[str] = None  # "+" or "?": several values after one flag or positional
    minimum: Optional[float] = None  # value >= minimum
    above: Optional[float] = None  # value > above
    unit: str = ""  # named in messages: "--duration must be > 0 s"
    exclusive: Optional[str] = None  # fields of one group: at most one is given
    repeat: bool = False  # the flag is repeatable; the value is a tuple
    parse: Callable = _same  # command-line value -> field value
    show: Callable = _same  # field value -> command-line value
    also: Tuple["Option", ...] = ()  # other flags that set this field (exclusive with it)
    nested: Optional[type] = None  # the field is an options class: its flags join these
    sweep: Any = True  # key in sweep files: True = the field's name, a str, or False (none)
    sweep_parse: Callable = _same  # sweep value -> field value
    sweep_show: Callable = _same  # field value -> sweep value
    remote: bool = True  # repeated on the device by to_argv
    local: Optional[Callable[[Any], Optional[str]]] = None  # why a value cannot go remote

    @property
    def many(self) -> bool:
        """The value is a tuple (a repeatable flag, or nargs '+')."""
        return self.repeat or self.nargs == "+"


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


@dataclass(frozen=True)
class Command:
    """One command of the CLI: ``run(from_namespace(options, parsed)) -> exit code``."""

    help: str
    options: type  # an options class: its fields declare the command's arguments
    run: Callable[[Any], int]  # runs the command and prints its outcome


def ms_to_s(ms: float) -> float:
    """``parse`` of a flag given in milliseconds for a field in seconds."""
    return ms / 1e3


def s_to_ms(seconds: float) -> float:
    """``show`` of such a field: back in milliseconds."""
    return seconds * 1e3


# --- checks -------------------------------------------------------------------------------

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", Path: "a path",
             str: "a string", None: "a string"}


def _check_value(f: dataclasses.Field, value, name: str) -> None:
    o = spec_of(f)
    if o.nested is not None:
        return  # checked by its own class
    if value is None:
        if f.default is None:  # the fields that default to None are the optional ones
            return
        raise UsageError(f"{name} must be {_EXPECTED.get(o.type, 'given')}, got None")
    for item in (value if o.many else (value,)):
        _check_item(o, item, name)


def _check_item(o: Option, value, name: str) -> None:
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


def _help(o: Option, default) -> str:
    return o.help.replace("{default}", _show_default(o, default)) if "{default}" in o.help \
        else o.help


def _argparse_kwargs(o: Option, dest: str, default) -> dict:
    if o.type is bool:  # a switch: given, it sets the opposite of the default
        return dict(dest=dest, action="store_const", const=not default, default=None,
                    help=_help(o, default))
    kwargs = dict(dest=dest, default=None, help=_help(o, default), metavar=o.metavar,
                  choices=o.choices)
    if o.repeat:
        kwargs["action"] = "append"
    if o.nargs:
        kwargs["nargs"] = o.nargs
    if o.required:
        kwargs["required"] = True
    if o.type not in (None, str):
        kwargs["type"] = o.type
    return kwargs


def _alt_dest(dest: str, alt: Option) -> str:
    return f"{dest}__{alt.flag.lstrip('-').replace('-', '_')}"


def add_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "") -> None:
    """Add an argument for every field of ``cls`` that has one, in field order (a nested
    options class's where its field is)."""
    groups: Dict[str, Any] = {}
    for f in fields(cls):
        o, dest = spec_of(f), prefix + f.name
        if o.nested is not None:
            add_arguments(parser, o.nested, f"{dest}.")
            continue
        if o.positional:
            parser.add_argument(dest, metavar=o.metavar, type=o.type, help=_help(o, f.default),
                                **({"nargs": o.nargs} if o.nargs else {}))
            continue
        if o.flag is None:
            continue
        group = o.exclusive or (f.name if o.also else None)
        if group is not None and group not in groups:
            groups[group] = parser.add_mutually_exclusive_group()
        target = parser if group is None else groups[group]
        flags = (o.short, o.flag) if o.short else (o.flag,)
        target.add_argument(*flags, **_argparse_kwargs(o, dest, f.default))
        for alt in o.also:
            target.add_argument(alt.flag, **_argparse_kwargs(alt, _alt_dest(dest, alt), None))


def _parse(o: Option, value):
    try:
        return o.parse(tuple(value) if o.many else value)
    except ValueError as exc:
        raise UsageError(f"{o.flag or 'the argument'} {value!r} is invalid ({exc}): expected "
                         f"{o.metavar or 'a value'}; correct it and run again") from None


def from_namespace(cls, namespace: argparse.Namespace, prefix: str = "", **fixed):
    """The options parsed by :func:`add_arguments` (arguments not given keep their
    defaults)."""
    kwargs = {}
    for f in fields(cls):
        o, dest = spec_of(f), prefix + f.name
        if o.nested is not None:
            kwargs[f.name] = from_namespace(o.nested, namespace, f"{dest}.")
            continue
        if o.flag is None and not o.positional:
            continue
        value = getattr(namespace, dest)
        if value is not None:
            kwargs[f.name] = _parse(o, value)
        for alt in o.also:
            value = getattr(namespace, _alt_dest(dest, alt))
            if value is not None:
                kwargs[f.name] = _parse(alt, value)
    options = cls(**{**kwargs, **fixed})
    validate(options)
    return options


def to_argv(options, remote: bool = True) -> List[str]:
    """The command-line arguments that repeat ``options``.

    ``remote=True`` (a command run on a device over ssh): without the fields the caller
    passes itself (bundle, images), and refusing values that name something on this
    machine (UsageError). ``remote=False``: every field, positionals too.
    """
    argv = []
    for f in fields(options):
        o, value = spec_of(f), getattr(options, f.name)
        if o.nested is not None:
            argv += to_argv(value, remote)
            continue
        if remote and not o.remote:
            continue
        refused = remote and o.local is not None and value is not None and o.local(value)
        if refused:
            raise UsageError(refused)
        if o.positional:
            argv += [str(v) for v in (o.show(value) if o.many else (o.show(value),))]
        elif o.flag is None or value is None:
            continue
        elif o.type is bool:
            argv += [o.flag] if value != f.default else []
        elif o.repeat:
            argv += [f"{o.flag}={item}" for item in o.show(value)]
        elif o.nargs == "+":
            argv += [o.flag, *map(str, o.show(value))]
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
