"""A short human summary of a results document, printed by the CLI."""

from pathlib import Path
from typing import List

from sc2deploy.report.data import host_check_of, host_timed_on, ran_text
from sc2deploy.report.per_op import format_per_op


def format_profile(doc: dict) -> str:
    """A short human summary of a results document."""
    lat = doc["latency_ms"]
    lines = [f"{doc['label']}: {doc['runs']['measured']} images"
             + ("" if doc["complete"] else " (PARTIAL: interrupted)")]
    if ran_text(doc):
        lines.append(f"  ran        {ran_text(doc)}" + (
            "; not the target's runtime: build and profile it on its device"
            if host_check_of(doc) else ""))
    for stage, s in lat.items():
        lines.append(f"  {stage:<10} p50 {s['p50']:8.2f} ms  p90 {s['p90']:8.2f}  "
                     f"p99 {s['p99']:8.2f}  mean {s['mean']:8.2f} ± {s['std']:.2f}")
    if doc["kind"] == "device":
        lines.append(f"  bytes      mean {doc['bytes']['mean']:.0f}  p99 {doc['bytes']['p99']:.0f}"
                     f"   peak RSS {doc['memory']['peak_rss_mb']:.0f} MB")
        energy = doc["energy"]
        jpi = energy.get("joules_per_image")
        if jpi:
            host = host_timed_on(doc)
            lines.append(f"  energy     {jpi['total'] * 1e3:.1f} mJ/image ({energy['kind']}, "
                         f"{energy['source']}"
                         + ("" if host is None else f", host-timed on {host}") + ")")
        else:
            why = "; ".join(energy["unavailable"].values()) or "off"
            lines.append(f"  energy     none ({why})")
        if doc.get("end_to_end_ms"):
            e2e = doc["end_to_end_ms"]
            lines.append(f"  end-to-end {e2e['total']:.1f} ms = device {e2e['device']:.1f} + "
                         f"link {e2e['link']:.1f} + server {e2e['server'] or 0:.1f}"
                         + ("" if e2e["server"] is not None else " (no server time given)"))
    if doc.get("per_op"):
        lines += format_per_op(doc["per_op"])
    return "\n".join(lines)


def measured_lines(doc: dict, out: Path, written: Path, next_command: str) -> List[str]:
    """What ``profile`` and ``profile-server`` print after measuring: the summary, then where
    the results went and the next command, or where the partial results went."""
    lines = [format_profile(doc)]
    if not doc["complete"]:
        kept = f"; {out} is as it was" if written != out else ""
        return lines + [f"interrupted: PARTIAL results ({doc['runs']['measured']} images) "
                        f"written to {written}{kept}"]
    return lines + [f"results written: {out}", f"next: {next_command}"]
