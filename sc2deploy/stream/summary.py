"""What ``sc2deploy stream`` prints about a stream's results document."""

from pathlib import Path
from typing import List


def outcome_lines(doc: dict, out: Path, written: Path, queue: Path) -> List[str]:
    """The link model, the camera, the counts and p50s, then the adaptive summary and where
    the results went (or, interrupted, where the partial results went and how to resume)."""
    ms, lines = doc["latency_ms"], []
    if doc["link"]:
        lines.append(f"link model {doc['link']['name']}: p50 "
                     f"{doc['link']['delay_ms']['p50']:.1f} ms (measured transfer p50 "
                     f"{ms['transfer']['p50']:.1f} ms)")
    camera = doc.get("camera")
    if camera:
        f = camera["frames"]
        lines.append(f"camera {camera['source']} ({camera['format']}): {f['captured']} frames "
                     f"captured, {f['taken']} encoded, {f['skipped']} skipped while the link was "
                     f"busy, {camera['cut_frames']} cut, {camera['undecodable']} undecodable; "
                     f"frame age at encoding p50 {camera['frame_age_ms']['p50']:.1f} ms"
                     + (f"\ncamera ended early: {camera['ended']}" if camera["ended"] else ""))
    lines.append(f"{doc['answered']}/{doc['images']} images answered, {doc['refused']} refused, "
                 f"{doc['retries']} retries, {doc['duplicates']} duplicates; p50 ms: encode "
                 f"{ms['encode']['p50']:.1f}, transfer {ms['transfer']['p50']:.1f}, server "
                 f"{ms['server']['p50']:.1f}, total {ms['total']['p50']:.1f}")
    kept = "" if written == out else f"; {out} is as it was"
    if doc["interrupted"]:
        return lines + [f"interrupted: PARTIAL results ({doc['answered']} images answered) "
                        f"written to {written}{kept}",
                        f"the same command resumes: the queue {queue} sends only what is "
                        "unanswered"]
    if doc.get("adaptive"):
        lines.append(adaptive_line(doc["adaptive"]))
    return lines + [f"results written: {written}{kept} (queue: {queue})"]


def adaptive_line(adaptive: dict) -> str:
    """An adaptive stream in one line: the deadline met, the points used, the switches."""
    a = adaptive["summary"]
    used = ", ".join(f"{n} x{k}" for n, k in a["images_per_point"].items() if k)
    return (f"adaptive ({adaptive['mode']}): deadline {adaptive['deadline_ms']:g} ms met for "
            f"{a['met']}/{a['images']} images; points: {used}; {a['switches']} switches; "
            f"expected top-1 {a['mean_top1'] or 0:.1f} %")
