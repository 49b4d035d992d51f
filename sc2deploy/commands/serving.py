"""``serve``, ``stream``: the two ends of the split pipeline (the edge server on Ray Serve,
the device sending containers to it, measured end to end)."""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from sc2deploy import atomic
from sc2deploy.errors import EXIT_INTERRUPTED, UsageError
from sc2deploy.log import logger
from sc2deploy.options import Command, option, validate
from sc2deploy.serving.service import ServeOptions
from sc2deploy.stream.adaptive import LadderOptions
from sc2deploy.stream.client import StreamOptions
from sc2deploy.wire import TOKEN_ENV


@dataclass(frozen=True)
class ServeCommandOptions:
    serve: ServeOptions = option(nested=ServeOptions)
    token_file: Optional[Path] = option(
        None, flag="--token-file", type=Path, metavar="FILE",
        help=f"bearer token file; generated (mode 0600) when missing (default: ${TOKEN_ENV}, "
             "else a printed new token)")


def serve(options: ServeCommandOptions) -> int:
    from sc2deploy.measure.ladder import open_family
    from sc2deploy.serving.auth import server_token
    from sc2deploy.serving.batching import refuse_unbatchable
    from sc2deploy.serving.service import started_lines

    served = options.serve
    for bundle in open_family(served.bundles):  # one ladder's points, or refused with why
        refuse_unbatchable(bundle, served.tail_batch)
    token, where = server_token(options.token_file)  # after the checks: no token for nothing
    from sc2deploy.serving import ray_app

    ray_app.serve_until_stopped(served, token, lambda url: print(
        "\n".join(started_lines(served, url, token, where, options.token_file)), flush=True))
    logger.info("sc2deploy serve: stopped")
    return 0


@dataclass(frozen=True)
class StreamCommandOptions:
    """``stream``: one bundle's (``stream.bundle``), or a ladder's (``ladder.bundles``)."""

    stream: StreamOptions = option(nested=StreamOptions)
    ladder: LadderOptions = option(nested=LadderOptions)
    out: Path = option(flag="--out", short="-o", type=Path, required=True, metavar="RESULTS.json",
                       help="results file (kind: stream)")

    def __post_init__(self):
        validate(self)
        if (self.stream.bundle is None) == (not self.ladder.bundles):
            raise UsageError("give one BUNDLE, or --ladder B1 B2 ... (an adaptive stream), not "
                             "both")
        if self.stream.queue is None:  # the queue's default: beside the results
            queue = self.out.with_name(self.out.name + ".queue.json")
            object.__setattr__(self, "stream", replace(self.stream, queue=queue))


def stream(options: StreamCommandOptions) -> int:
    from sc2deploy.measure.runtime import stop_on_signals
    from sc2deploy.results.schema import write_measured
    from sc2deploy.stream.summary import outcome_lines

    atomic.ensure_writable(options.out.parent, "the folder of the results file")
    stop_on_signals()
    if options.ladder.bundles:
        from sc2deploy.stream.adaptive import stream_ladder

        doc = stream_ladder(options.stream, options.ladder)
    else:
        from sc2deploy.stream.client import stream as stream_one

        doc = stream_one(options.stream)
    written = write_measured(doc, options.out)
    print("\n".join(outcome_lines(doc, options.out, written, options.stream.queue)))
    if doc["interrupted"]:
        return EXIT_INTERRUPTED
    return 0 if doc["complete"] else 1


COMMANDS = {
    "serve": Command("serve a bundle's server side (decoding, tail) on Ray Serve, behind a "
                     "token", ServeCommandOptions, serve),
    "stream": Command("encode images, send them to `sc2deploy serve` and measure end to end",
                      StreamCommandOptions, stream),
}
