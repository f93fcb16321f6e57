"""How closely two pose results of the same video agree, person by person (two engines, or two
runs): what ``bench/engine_parity.py`` reports and the engine parity tests assert.

Persons are matched frame by frame, greedily by the IoU of their boxes (at least ``MIN_IOU``).
:func:`compare_results` gives the share of the reference's persons matched and the distances
between matched persons' landmarks (x, y, in pixels): their median and 95th percentile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_IOU = 0.5


def iou(a: list[float], b: list[float]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare_results(reference: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """Matched share and landmark distances of ``candidate``'s persons against ``reference``'s."""
    by_index = {frame["index"]: frame["persons"] for frame in candidate["frames"]}
    total = matched = extra = 0
    distances: list[np.ndarray] = []
    for frame in reference["frames"]:
        theirs = list(by_index.get(frame["index"], []))
        ours = frame["persons"]
        total += len(ours)
        pairs = sorted(
            ((iou(p["bbox"], q["bbox"]), i, j) for i, p in enumerate(ours) for j, q in enumerate(theirs)),
            reverse=True,
        )
        used_i: set[int] = set()
        used_j: set[int] = set()
        for overlap, i, j in pairs:
            if overlap < MIN_IOU or i in used_i or j in used_j:
                continue
            used_i.add(i)
            used_j.add(j)
            a = np.asarray(ours[i]["landmarks"], dtype=float)[:, :2]
            b = np.asarray(theirs[j]["landmarks"], dtype=float)[:, :2]
            distances.append(np.linalg.norm(a - b, axis=1))
        matched += len(used_i)
        extra += len(theirs) - len(used_j)
    moved = np.concatenate(distances) if distances else np.zeros(0)
    share = matched / total if total else 1.0
    median = float(np.median(moved)) if moved.size else 0.0
    report: dict[str, Any] = {
        "reference_persons": total,
        "matched": matched,
        "matched_share": share,
        "unmatched_candidate_persons": extra,
        "median_px": median,
        "p95_px": float(np.percentile(moved, 95)) if moved.size else 0.0,
        "reference_model": {k: reference["model"].get(k) for k in ("engine", "device", "runtime")},
        "candidate_model": {k: candidate["model"].get(k) for k in ("engine", "device", "runtime")},
    }
    return report
