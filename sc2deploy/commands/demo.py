"""``demo``: the whole flow on the bundled demo students, in one folder."""

from dataclasses import dataclass
from pathlib import Path

from sc2deploy.options import Command, option


@dataclass(frozen=True)
class DemoOptions:
    out: Path = option(flag="--out", type=Path, required=True, metavar="DIR",
                       help="folder for the demo's outputs (its bundle: DIR/demo-bundle)")


def demo(options: DemoOptions) -> int:
    from sc2deploy.orchestrate import demo as flow

    result = flow.run(options.out)
    print(f"demo bundle: {result.bundle.resolve()}\nreport: {result.report.resolve()}")
    return 0


COMMANDS = {
    "demo": Command("run the whole flow on the bundled demo students (the β ladder) and "
                    "compare them with JPEG/WebP", DemoOptions, demo),
}
