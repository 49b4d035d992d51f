"""What a report refuses to put together: two measurements that it would have to pick from."""

from typing import Dict, Sequence, Tuple

from sc2deploy.errors import ResultsError


def refuse_duplicates(docs: Sequence[dict]) -> None:
    """Two evaluations of one bundle and target: a report never picks one silently."""
    seen: Dict[Tuple[str, str], Tuple[int, dict, dict]] = {}
    for i, doc in enumerate(docs, 1):
        if doc["kind"] != "evaluation":
            continue
        for row in doc["targets"]:
            key = (doc["bundle"]["manifest_sha256"], row["target"])
            if key in seen:
                j, other, first = seen[key]
                raise ResultsError(
                    f"result #{j} ({other['label']!r}) and result #{i} ({doc['label']!r}) both "
                    f"evaluate target {row['target']} of bundle {doc['bundle']['model']} "
                    f"({key[0][:12]}): top-1 {first['top1']['pct']:.1f} % on "
                    f"{first['images']} images vs {row['top1']['pct']:.1f} % on "
                    f"{row['images']} images. A report shows one evaluation per bundle and "
                    "target: give only the one to report")
            seen[key] = (i, doc, row)
