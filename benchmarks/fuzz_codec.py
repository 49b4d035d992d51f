"""Fuzz the container decoder: corrupt, truncated, random and hostile streams.

Every case must either decode (to a latent of the declared shape) or raise
sc2deploy's CodecError; anything else (another exception, a crash, a hang, a
memory blow-up) fails the run. Run by CI with a few thousand cases:

    python -m benchmarks.fuzz_codec BUNDLE --cases 100000 [--coder c|constriction]
"""

import json
import resource
import struct
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.common import parse, parser
from sc2deploy.bundle import Bundle
from sc2deploy.codec import LatentCodec
from sc2deploy.codec import container
from sc2deploy.errors import CodecError


def seed_streams(codec: LatentCodec, latents: np.ndarray):
    """Valid containers: real latents, and latents full of escapes."""
    rng = np.random.default_rng(0)
    streams = [codec.encode(x) for x in latents[:4]]
    wild = latents[0].astype(np.int64)
    wild[rng.random(wild.shape) < 0.05] = rng.integers(-2**31, 2**31, size=1)[0]
    streams.append(codec.encode(wild.astype(np.int32)))
    return streams


def reseal(data: bytes) -> bytes:
    """Recompute the checksum so that corruption reaches the range decoder."""
    head = data[: container.HEADER_SIZE - 2]
    payload = data[container.HEADER_SIZE:]
    return head + struct.pack("<H", container._checksum(head, payload)) + payload


def hostile_header(channels: int, digest: int, h: int, w: int, payload: bytes) -> bytes:
    head = container.HEADER.pack(container.MAGIC, container.VERSION, channels, h, w, digest,
                                 len(payload), 0)[:-2]
    return reseal(head + b"\0\0" + payload)


def strategy(seeds, channels: int, digest: int):
    def mutate(args):
        data, kind, pos, value, cut = args
        data = bytearray(data)
        if kind == "flip":
            data[pos % len(data)] ^= 1 << (value % 8)
        elif kind == "byte":
            data[pos % len(data)] = value
        elif kind == "truncate":
            data = data[: cut % len(data)]
        return bytes(data)

    mutated = st.tuples(st.sampled_from(seeds), st.sampled_from(["flip", "byte", "truncate"]),
                        st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 1 << 20)
                        ).map(mutate)
    payload = st.binary(max_size=512).map(lambda b: b[: len(b) - len(b) % 4])
    return st.one_of(
        mutated,
        mutated.map(reseal),
        st.binary(max_size=64),
        st.builds(hostile_header, st.just(channels), st.just(digest), st.integers(1, 300),
                  st.integers(1, 300), payload),
        st.builds(hostile_header, st.integers(0, 255), st.integers(0, 0xFFFF),
                  st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), payload),
    )


def fuzz(bundle_path: str, cases: int, coder) -> dict:
    bundle = Bundle.open(bundle_path)
    codec = LatentCodec(bundle.prior(), coder)
    latents = bundle.reference()["symbols"].astype(np.int32)
    seeds = seed_streams(codec, latents)
    digest = container.prior_digest16(bundle.prior().digest())
    stats = {"cases": 0, "decoded": 0, "refused": 0, "max_case_seconds": 0.0}

    @settings(max_examples=cases, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy(seeds, latents.shape[1], digest))
    def one_case(data):
        start = time.perf_counter()
        stats["cases"] += 1
        try:
            latent = codec.decode(data)
        except CodecError:
            stats["refused"] += 1
        else:
            header, _ = container.unpack(data)
            assert latent.shape == header.shape and latent.dtype == np.int32
            stats["decoded"] += 1
        stats["max_case_seconds"] = max(stats["max_case_seconds"], time.perf_counter() - start)

    one_case()
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return stats


def main(argv=None) -> int:
    p = parser(__file__, __doc__, json_option=False)  # the result is printed as JSON
    p.add_argument("bundle", help="a bundle with a factorized prior (e.g. the demo's)")
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--coder", choices=["c", "constriction"])
    args = parse(p, argv)
    start = time.perf_counter()
    stats = fuzz(args.bundle, args.cases, args.coder)
    stats["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
