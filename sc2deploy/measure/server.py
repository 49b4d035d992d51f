"""``profile-server``: the server's share of end-to-end latency, measured on this host.

Per image: container ─ range decoding ─ latent ─ decoder.onnx (if the bundle has
one) ─ features. The containers are made first with the bundle's ``onnx``
artifact (not timed). Head-only bundles time decoding alone and say so.
"""

import contextlib
import time

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.targets.encoding import encode_images, latent_codec
from sc2deploy.errors import UsageError
from sc2deploy.preprocess import list_images, sample_images
from sc2deploy.measure import conditions
from sc2deploy.measure.options import ServerOptions
from sc2deploy.measure.progress import Progress
from sc2deploy.results.schema import header, utc_now
from sc2deploy.targets import load_server_runner
from sc2deploy.measure.stats import ns_to_ms, samples_entry, summarize


def profile_server(options: ServerOptions) -> dict:
    """Time decoding (and the decoder, when present) per image; return a results document."""
    created = utc_now()
    bundle = Bundle.open(options.bundle)
    images = list_images(options.images) if options.images else sample_images()
    codec = latent_codec(bundle, options.coder)
    shape = bundle.model["latent"]["shape"]
    streams = [data for _, data in encode_images(bundle, images, "onnx", options.coder)]
    has_decoder = "file" in bundle.manifest.get("decoder", {})
    decode_ns, decoder_ns = [], []
    clock = time.perf_counter_ns
    progress = Progress("profile-server", options.runs, enabled=options.progress)
    complete = True
    decoder = (load_server_runner(bundle, "decoder", options.threads) if has_decoder
               else contextlib.nullcontext())
    try:
        with decoder:
            for i in range(options.warmup + options.runs):
                t0 = clock()
                latent = codec.decode(streams[i % len(streams)], shape)
                t1 = clock()
                if has_decoder:
                    decoder.infer(latent[None].astype(np.float32))
                t2 = clock()
                if i >= options.warmup:
                    decode_ns.append(t1 - t0)
                    decoder_ns.append(t2 - t1)
                    progress.update(i + 1 - options.warmup)
    except KeyboardInterrupt:
        complete = False
    finally:
        progress.close()
    times = {"decode": ns_to_ms(decode_ns), "decoder": ns_to_ms(decoder_ns),
             "total": ns_to_ms(np.add(decode_ns, decoder_ns))}
    if not has_decoder:  # no decoder stage to show: its ~0 ms would look like a measurement
        del times["decoder"]
    return {
        **header("server", complete and bool(decode_ns),
                 options.label or f"{bundle.model['name']}/server", created, bundle),
        "coder": codec.coder, "threads": options.threads,
        "runs": {"warmup": options.warmup, "measured": len(decode_ns),
                 "image_files": len(images), "stop": "runs" if complete else "interrupted"},
        "latency_ms": {stage: summarize(values) for stage, values in times.items()},
        "samples": samples_entry(times),
        "decoder": ({"present": True, "file": bundle.manifest["decoder"]["file"]}
                    if has_decoder else
                    {"present": False, "note": "head-only checkpoint: the bundle has no decoder; "
                     "the server time is range decoding only"}),
        "conditions": conditions.collect(),
    }


def server_ms_from(doc: dict, source: str) -> dict:
    """The ``server_ms`` entry of a device result, from a profile-server document."""
    if doc.get("kind") != "server":
        raise UsageError(f"{source} is not a profile-server result (kind {doc.get('kind')!r})")
    if not doc.get("complete"):
        raise UsageError(f"{source} is a partial (interrupted) profile-server result")
    return {"source": "measured", "ms": doc["latency_ms"]["total"]["p50"],
            "from": f"{source} ({doc['label']}, p50, decoder "
                    f"{'included' if doc['decoder']['present'] else 'absent'})"}
