"""Command-line interface: a table of commands.

Each command is a :class:`sc2deploy.options.Command` of a module of
:mod:`sc2deploy.commands`: its arguments come from the fields of its options class, and its
function runs it and prints the outcome. User errors print one line on stderr and exit with
code 2; ``--debug`` shows the traceback instead.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional

from sc2deploy import __version__
from sc2deploy.atomic import fix_for
from sc2deploy.commands import build, bundle, codec, demo, measure, serving
from sc2deploy.errors import EXIT_INTERRUPTED, Interrupted, Sc2DeployError
from sc2deploy.log import configure, logger
from sc2deploy.options import Command, add_arguments, from_namespace

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE

ORDER = ("export", "add-tail", "info", "build", "build-engine", "verify", "explain", "tune",
         "targets", "encode", "decode", "profile", "profile-server", "sweep", "report",
         "evaluate", "demo", "serve", "stream", "replay")  # as `sc2deploy --help` lists them


TABLE = {**bundle.COMMANDS, **build.COMMANDS, **codec.COMMANDS, **measure.COMMANDS,
         **demo.COMMANDS, **serving.COMMANDS}


def commands() -> Dict[str, Command]:
    """Every command, in the order of ``sc2deploy --help``."""
    return {name: TABLE[name] for name in ORDER}


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI; no option may be abbreviated (``serve --token X`` must not be taken for
    ``--token-file X``)."""
    parser = argparse.ArgumentParser(
        prog="sc2deploy", description="Deploy the heads of split-computing models to edge devices.",
        allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"sc2deploy {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands().items():
        add_arguments(sub.add_parser(name, help=command.help, allow_abbrev=False),
                      command.options)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure()
    command = commands()[args.command]
    try:
        return command.run(from_namespace(command.options, args))
    except BrokenPipeError:  # e.g. `sc2deploy info --json | head`: the reader left
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (KeyboardInterrupt, Interrupted) as exc:
        if args.debug:
            raise
        kept = str(exc) if isinstance(exc, Interrupted) else (
            "interrupted: every output is written atomically, so nothing partial was left and "
            "earlier files are as they were")
        logger.error("sc2deploy %s: %s", args.command, kept)
        return EXIT_INTERRUPTED
    except Sc2DeployError as exc:
        if args.debug:
            raise
        logger.error("sc2deploy %s: error: %s", args.command, exc)
        return EXIT_USER_ERROR
    except OSError as exc:
        if args.debug:
            raise
        where = exc.filename or "a file"
        logger.error("sc2deploy %s: error: %s: %s: %s", args.command, where,
                     exc.strerror or exc, fix_for(exc))
        return EXIT_USER_ERROR


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
