"""``export``, ``add-tail``, ``info``: make a bundle, add a tail to it, describe it."""

import json
from dataclasses import dataclass
from pathlib import Path

from sc2deploy.bundle import Bundle
from sc2deploy.export.options import AddTailOptions, ExportOptions
from sc2deploy.options import Command, option


def export(options: ExportOptions) -> int:
    from sc2deploy.export import export_bundle

    bundle = export_bundle(options)
    print(f"bundle written: {bundle.path}\nnext: sc2deploy info {bundle.path}")
    return 0


def add_tail(options: AddTailOptions) -> int:
    from sc2deploy.export.extra_tail import add_tail as add

    bundle = add(options)
    entry = bundle.manifest["tails"][options.name]
    print(f"tail {options.name!r} added: {bundle.file(entry['file'])}\n"
          f"next: sc2deploy serve {bundle.path}  (answers every tail in one request)")
    return 0


@dataclass(frozen=True)
class InfoOptions:
    bundle: Path = option(positional=True, type=Path, metavar="BUNDLE", help="bundle directory")
    json: bool = option(False, flag="--json", type=bool, help="print the manifest as JSON")


def info(options: InfoOptions) -> int:
    from sc2deploy.report.bundle_info import describe

    bundle = Bundle.open(options.bundle)
    print(json.dumps(bundle.manifest, indent=2, sort_keys=True) if options.json
          else describe(bundle))
    return 0


COMMANDS = {
    "export": Command("export a checkpoint's head to a verified bundle", ExportOptions, export),
    "add-tail": Command("add another task's tail, trained behind the bundle's head, to the "
                        "bundle", AddTailOptions, add_tail),
    "info": Command("verify a bundle and describe it", InfoOptions, info),
}
