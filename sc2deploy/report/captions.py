"""Figure captions: what is drawn, from what, and what is modeled (depends on the results)."""

from typing import Sequence

from sc2deploy.report.data import names, samples_of
from sc2deploy.report.distributions import WHISKER_IQR
from sc2deploy.report.pareto import BYTES_TIE


def _without_samples(docs: Sequence[dict]) -> str:
    missing = [n for d, n in zip(docs, names(docs)) if samples_of(d, "total") is None]
    return ", ".join(missing)


def caption(key: str, profiles: Sequence[dict], evaluations: Sequence[dict]) -> str:
    missing = _without_samples(profiles)
    if key == "end_to_end":
        return ("End-to-end latency per image, one panel per part, each on its own axis "
                "(log where the values span more than 50×), so device milliseconds stay "
                "readable next to seconds on a slow link. device = p50 of the device total "
                "(load + preprocess + head + code); link = delay of the mean payload on the "
                "result's link model (hatched: modeled); server = measured or given p50, "
                "\"none\" where none was given (counted as 0); total = the sum of the parts. Rows "
                "\"measured end to end\" are streamed runs (p50 of each measured stage, all "
                "solid; their measured total's p50 is in the latency table), next to the "
                "modeled row of the same bundle and target. Pale rows: JPEG/WebP of "
                "the head's input through the same link (device = encode p50 including load, "
                "resize and crop; server assumed equal to the result's).")
    if key == "stages":
        text = ("Per-image latency of each stage a configuration has (stages it lacks, e.g. a "
                "decoder in a head-only bundle, are not drawn), from the raw samples: box = "
                f"quartiles, thick line = median, whiskers = farthest samples within "
                f"{WHISKER_IQR:g} × IQR of the box, dots = samples beyond, diamond = mean.")
        if missing:
            text += (f" No raw samples for {missing} (results of schema version ≤ 2): drawn "
                     "from the stored summaries instead, dashed and hollow: box p50 to p90, "
                     "whiskers min to p99 (no quartiles were stored).")
        return text
    if key == "cdf":
        text = ("Empirical cumulative distribution of the total latency per image, from the "
                "raw samples of each result (device: load to code; server: decoding and the "
                "decoder when present; stream: encode to reply).")
        if missing:
            text += f" Not drawn, no raw samples (schema version ≤ 2): {missing}."
        return text
    if key == "energy":
        return ("Energy per image = compute + radio, stacked. Compute: solid = measured (the "
                "sensor is named in the legend) with its 95 % confidence interval over "
                "repeated windows; hatched = modeled (time × a device power profile, so no "
                "error bar); \"host-timed on CPU\" marks a model applied to the time of "
                "another machine. | = compute minus the idle baseline. Radio (back-hatched): "
                "always modeled, the link model's TX power × the airtime of the mean payload.")
    if key == "pareto":
        return ("Mean bytes per image vs device latency p50 (bars: interquartile range of the "
                "samples, else p50 ± 0.53 (p90 − p50)). Rings: the Pareto front over the "
                "objectives named in the legend, with ties inside the noise kept as ties: "
                f"bytes within {BYTES_TIE * 100:g} %, latency interquartile ranges overlapping, "
                "energy (compute + radio) intervals overlapping (measured: 95 % CI; modeled: "
                "the time's IQR), top-1 95 % CIs overlapping when evaluations of the same "
                "bundle and target are given. Grey: JPEG/WebP baselines (encode p50), not in "
                "the front. Hollow markers: partial (interrupted) results.")
    if key == "rate_accuracy":
        return ("Top-1 accuracy vs mean bytes per image (log axis), error bars = 95 % Wilson "
                "intervals. Each target of each evaluation is a point; several evaluations of "
                "one model (a sweep over beta, or checkpoints) draw a curve per target, points "
                "named by evaluation. Grey curves: JPEG/WebP of the head's input at each "
                "quality (qN), classified by the teacher, when the evaluations include them.")
    if key == "rate_agreement":
        return ("How often each target's top-1 equals the fp32 pipeline's (head.onnx) vs mean "
                "bytes per image (log axis), error bars = 95 % Wilson intervals; curves as in "
                "the rate–accuracy figure. Baselines have no such reference and are not drawn.")
    if key == "worth":
        return ("At equal accuracy (top-1 at least the floor in the title: the teacher's "
                "uncompressed top-1 minus 2 points), the least bytes per image, end-to-end time "
                "and device + radio energy each student curve needs (blue) and the best of "
                "JPEG/WebP needs (grey), on a log axis; per link where the link matters. Each "
                "value is interpolated on the curve's upper envelope between the two points "
                "that bracket the floor (bytes log-linearly). Times: medians timed by evaluate "
                "on the machine that ran it plus the link model's delay; energy modeled (the "
                "rpi4 profile's active power x device time, TX power x airtime).")
    if key == "adaptive":
        return ("Each adaptive run (a column; replays modeled, adaptive streams measured), image "
                "by image on one x axis: top, the ladder point sent (fewest bytes lowest; "
                "green: deadline met, red: missed); middle, the throughput estimate the point "
                "was chosen with, and the true rate of a replay's trace (dashed) or, for a "
                "stream, the rate each send measured (8 × bytes on the wire / transfer); "
                "bottom, the end-to-end time (dots) and the predicted one (rings) against the "
                "deadline (dashed). A stream's results keep no send times: its x is the send "
                "order.")
    raise KeyError(key)
