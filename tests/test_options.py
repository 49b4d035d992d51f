"""One option system for every command: each command's arguments are exactly the fields of its
options class (nested classes included), every field has help, and every flag reaches the
options object through the real parser (the fields are iterated: a new command or field is
covered without a new test)."""

import argparse
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Tuple

import pytest

from sc2deploy.cli import ORDER, TABLE, build_parser, commands
from sc2deploy.errors import UsageError
from sc2deploy.options import add_arguments, from_namespace, option, spec_of, to_argv

COMMANDS = commands()


def declared(cls, prefix=""):
    """(dest, field, option) of every argument ``cls`` declares, nested classes flattened."""
    for f in fields(cls):
        o = spec_of(f)
        if o.nested is not None:
            yield from declared(o.nested, f"{prefix}{f.name}.")
        elif o.positional or o.flag:
            yield prefix + f.name, f, o
            yield from ((f"{prefix}{f.name}", f, alt) for alt in o.also)


def subparser(name: str) -> argparse.ArgumentParser:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_argument_is_a_declared_field(name):
    """Nothing is added to a command's parser by hand: its arguments are its fields'."""
    command = COMMANDS[name]
    assert dataclasses.is_dataclass(command.options), name
    flags = {flag for dest, f, o in declared(command.options) if not o.positional
             for flag in (o.flag, o.short) if flag}
    positionals = {dest for dest, f, o in declared(command.options) if o.positional}
    parsed_flags = {s for a in subparser(name)._actions if a.option_strings
                    for s in a.option_strings} - {"-h", "--help"}
    parsed_positionals = {a.dest for a in subparser(name)._actions if not a.option_strings}
    assert parsed_flags == flags and parsed_positionals == positionals
    for dest, f, o in declared(command.options):
        assert o.help, f"{name}: {dest} has no help"


def test_every_command_of_the_table_is_listed():
    assert sorted(TABLE) == sorted(ORDER) and len(ORDER) == len(set(ORDER))


# --- the machinery, on a small command ----------------------------------------------------

@dataclass(frozen=True)
class Gate:
    bar: float = option(95.0, flag="--bar", type=float, minimum=0, help="the bar")


@dataclass(frozen=True)
class Small:
    inputs: Tuple[Path, ...] = option(positional=True, nargs="+", type=Path, metavar="IN",
                                      parse=tuple, help="inputs")
    out: Path = option(flag="--out", short="-o", type=Path, required=True, metavar="DIR",
                       help="where")
    gate: Gate = option(Gate(), nested=Gate)
    ladder: Optional[Tuple[str, ...]] = option(None, flag="--ladder", nargs="+", metavar="B",
                                               help="points")
    keep: Tuple[str, ...] = option((), flag="--keep", repeat=True, choices=("a", "b"),
                                   help="kept")
    quiet: bool = option(False, flag="--quiet", type=bool, help="say less")


def parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser, Small)
    return from_namespace(Small, parser.parse_args(argv))


def test_nested_short_required_nargs_and_repeat_round_trip():
    options = parse(["x", "y", "-o", "d", "--bar", "90", "--ladder", "b1", "b2", "--keep", "a",
                     "--keep", "b", "--quiet"])
    assert options == Small((Path("x"), Path("y")), Path("d"), Gate(90.0), ("b1", "b2"),
                            ("a", "b"), True)
    assert parse(["x", "--out", "d"]) == Small((Path("x"),), Path("d"))
    assert parse(to_argv(options, remote=False)) == options


def test_nested_and_repeated_values_are_checked():
    with pytest.raises(UsageError, match=r"^--bar must be >= 0, got -1.0$"):
        parse(["x", "-o", "d", "--bar=-1"])
    with pytest.raises(SystemExit):  # argparse: invalid choice
        parse(["x", "-o", "d", "--keep", "c"])
    with pytest.raises(UsageError, match=r"^unknown --keep 'c'; known: a, b$"):
        from_namespace(Small, argparse.Namespace(inputs=["x"], out="d", **{"gate.bar": None},
                                                 ladder=None, keep=["c"], quiet=None))
