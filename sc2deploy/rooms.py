"""The package's rooms, declared once: what each room is, where its modules are, and the rooms
it may import (a room imports only downward). Plain data: the module imports nothing.

tests/test_rooms.py checks every module of the package against it, and the Layout table of
docs/development.md is generated from it (the test fails while the two differ)::

    python -m sc2deploy.rooms --write docs/development.md   # without --write: print the table
"""

# Bottom up. "modules": the core and cli rooms' modules; every other room is its package,
# sc2deploy/NAME/.
ROOMS = {
    "core": {
        "modules": ("sc2deploy", "sc2deploy.errors", "sc2deploy.log", "sc2deploy.atomic",
                    "sc2deploy.bundle", "sc2deploy.prior", "sc2deploy.images",
                    "sc2deploy.preprocess", "sc2deploy.specs", "sc2deploy.config_files",
                    "sc2deploy.machine", "sc2deploy.textures", "sc2deploy.options",
                    "sc2deploy.wire", "sc2deploy.rooms"),
        "what": "the bundle contract, images (and generated texture images), one exception "
                "hierarchy, atomic writers, the option-declaration machinery (`options`), the "
                "wire protocol between `stream` and `serving` (`wire`), this declaration "
                "(`rooms`); numpy and Pillow only",
        "may_import": (),
    },
    "camera": {
        "what": "frames from a camera: V4L2 by ioctl, MJPEG from a command or stdin, the "
                "newest-frame capture thread",
        "may_import": ("core",),
    },
    "codec": {
        "what": "range coding (constriction, portable C coder), the container format",
        "may_import": ("core",),
    },
    "targets": {
        "what": "target records (capabilities as data), runners, the fidelity gate, image → "
                "container, the device job of `verify --host`/`--emulate` "
                "(`python -m sc2deploy.targets.device_job`)",
        "may_import": ("core", "codec"),
    },
    "results": {
        "what": "the results schema, validation, files",
        "may_import": ("core",),
    },
    "measure": {
        "what": "the device runtime: per-stage timing, sampler, power sensors, energy models, "
                "conditions, links, the adaptive policy and its replay, JPEG/WebP baselines, "
                "server timing, accuracy (`evaluate`)",
        "may_import": ("core", "codec", "targets", "results"),
    },
    "stream": {
        "what": "`stream`, the device end: images or camera frames encoded, queued and sent "
                "to the server (`client`), a ladder point per image (`adaptive`)",
        "may_import": ("core", "camera", "codec", "targets", "results", "measure"),
    },
    "report": {
        "what": "reports (figures as PNG/PDF/SVG, tables as HTML/Markdown/LaTeX/CSV), "
                "summaries, `info`",
        "may_import": ("core", "results", "measure"),
    },
    "export": {
        "what": "checkpoint → bundle (torch)",
        "may_import": ("core", "targets"),
    },
    "builders": {
        "what": "bundle → artifacts, build/verify (torch, onnx, converters inside builders)",
        "may_import": ("core", "codec", "targets", "export"),
    },
    "serving": {
        "what": "`serve`: the edge server on Ray Serve (auth, refusals, batching, the tail)",
        "may_import": ("core", "codec", "targets", "results", "measure"),
    },
    "orchestrate": {
        "what": "a device over ssh (`ssh`: profile and verify `--host`), emulated ARM CPUs "
                "under qemu-user (`emulation`: verify and build --search `--emulate`, "
                "`make arm-check`), sweeps, the demo",
        "may_import": ("core", "camera", "codec", "targets", "results", "measure", "stream",
                       "report", "export", "builders", "serving"),
    },
    "commands": {
        "what": "the CLI's commands, one module per group: options → run → the owning room's "
                "formatting",
        "may_import": ("core", "camera", "codec", "targets", "results", "measure", "stream",
                       "report", "export", "builders", "serving", "orchestrate"),
    },
    "cli": {
        "modules": ("sc2deploy.cli", "sc2deploy.clidoc", "sc2deploy.__main__"),
        "what": "the command line; `clidoc` renders docs/cli.md from its parser",
        "may_import": ("core", "commands"),
    },
}

CORE = frozenset(ROOMS["core"]["modules"])
CLI = frozenset(ROOMS["cli"]["modules"])
PACKAGES = tuple(name for name, room in ROOMS.items() if "modules" not in room)
MAY_IMPORT = {name: frozenset(room["may_import"]) for name, room in ROOMS.items()}
# Rooms that run on the device: never torch, onnx, matplotlib, a converter or a host room.
DEVICE_ROOMS = ("core", "camera", "codec", "targets", "results", "measure", "stream")
HOST_ONLY_PACKAGES = ("torch", "torchao", "onnx", "matplotlib", "litert_torch", "compressai")

REGENERATE = "python -m sc2deploy.rooms --write docs/development.md"
BEGIN = f"<!-- rooms: generated from sc2deploy/rooms.py by `{REGENERATE}`; do not edit -->"
END = "<!-- end of rooms -->"


def where(name: str) -> str:
    """A room's modules, as a path: ``sc2deploy/NAME/`` or the core's/cli's files."""
    room = ROOMS[name]
    if "modules" not in room:
        return f"`sc2deploy/{name}/`"
    files = [m.split(".", 1)[1] for m in room["modules"] if "." in m]
    return "`sc2deploy/{" + ",".join(files) + "}.py`"


def layout() -> str:
    """The Layout table of docs/development.md, between its markers."""
    lines = [BEGIN, "", "| room | modules | what it is | may import |", "|---|---|---|---|"]
    for name, room in ROOMS.items():
        lines.append(f"| {name} | {where(name)} | {room['what']} | "
                     f"{', '.join(room['may_import']) or 'nothing of sc2deploy'} |")
    lines += ["", f"The device rooms ({', '.join(DEVICE_ROOMS)}) never import a host room or "
              f"{', '.join(HOST_ONLY_PACKAGES)}.", "", END]
    return "\n".join(lines)


def replace_layout(text: str) -> str:
    """``text`` (docs/development.md) with the table between its markers made anew."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one pair of markers, {BEGIN!r} then {END!r}, around the "
                         "rooms table")
    return text[:text.index(BEGIN)] + layout() + text[text.index(END) + len(END):]


def main(argv=None) -> int:
    import argparse

    from sc2deploy import atomic

    parser = argparse.ArgumentParser(prog="python -m sc2deploy.rooms",
                                     description="Print the rooms table of docs/development.md, "
                                     "or write it there with --write.")
    parser.add_argument("--write", metavar="FILE",
                        help="replace the table between the markers in FILE (atomically)")
    args = parser.parse_args(argv)
    if args.write:
        with open(args.write, encoding="utf-8") as f:
            atomic.write_text(args.write, replace_layout(f.read()))
    else:
        print(layout())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
