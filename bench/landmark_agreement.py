"""Do the default (top-down) path and BlazePose's own single-subject path give the same landmarks
for the persons both find?

Runs ``posepipe video vtest.avi`` twice, with its defaults and with ``--detector blazepose``
(today's path, BlazePose Full); pairs the persons of each frame whose landmark boxes overlap by
IoU 0.5 or more (greedily, best first); and reports, over the pairs, the distance in pixels
between corresponding landmarks both call visible (visibility at least 0.5): the median (the
issue's limit: 3 px) and the 90th percentile.

    python bench/landmark_agreement.py [--video PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIN_IOU = 0.5
MIN_VISIBILITY = 0.5


def run_video(video: Path, out: Path, *options: str) -> list[dict[str, Any]]:
    command = Path(sys.executable).with_name("posepipe")
    subprocess.run(
        [str(command), "video", str(video), "-o", str(out), "--no-annotate", "--no-progress", *options],
        check=True,
    )
    frames: list[dict[str, Any]] = json.loads((out / video.stem / "keypoints.json").read_text())["frames"]
    return frames


def landmark_box(person: dict[str, Any]) -> tuple[float, float, float, float]:
    points = np.asarray(person["landmarks"], dtype=float)
    present = points[:, 4] >= 0.5
    xy = points[present, :2] if present.any() else points[:, :2]
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def compare(default: list[dict[str, Any]], single: list[dict[str, Any]]) -> dict[str, Any]:
    distances: list[float] = []
    paired = total = 0
    by_index = {frame["index"]: frame["persons"] for frame in default}
    for frame in single:
        total += len(frame["persons"])
        others = by_index.get(frame["index"], [])
        pairs = sorted(
            (
                (iou(landmark_box(p), landmark_box(q)), i, j)
                for i, p in enumerate(frame["persons"])
                for j, q in enumerate(others)
            ),
            reverse=True,
        )
        used_p: set[int] = set()
        used_q: set[int] = set()
        for overlap, i, j in pairs:
            if overlap < MIN_IOU:
                break
            if i in used_p or j in used_q:
                continue
            used_p.add(i)
            used_q.add(j)
            paired += 1
            a = np.asarray(frame["persons"][i]["landmarks"], dtype=float)
            b = np.asarray(others[j]["landmarks"], dtype=float)
            both = (a[:, 3] >= MIN_VISIBILITY) & (b[:, 3] >= MIN_VISIBILITY)
            distances.extend(np.linalg.norm(a[both, :2] - b[both, :2], axis=1).tolist())
    values = np.asarray(distances)
    return {
        "persons_single_subject_path": total,
        "found_by_both": paired,
        "landmarks_compared": int(values.size),
        "median_px": float(np.median(values)) if values.size else None,
        "p90_px": float(np.percentile(values, 90)) if values.size else None,
    }


def main() -> None:
    sys.path.insert(0, str(ROOT / "layers"))
    from posepipe.assets.samples import sample_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="default: vtest.avi")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    video = args.video or sample_path("vtest.avi")
    with tempfile.TemporaryDirectory() as folder:
        default = run_video(video, Path(folder) / "default")
        single = run_video(video, Path(folder) / "single", "--detector", "blazepose")
    report = compare(default, single)
    print(
        f"{video.name}: {report['found_by_both']} of the {report['persons_single_subject_path']} persons of "
        f"--detector blazepose also found by the default; over {report['landmarks_compared']} visible "
        f"landmarks the median distance is {report['median_px']:.2f} px (90th percentile "
        f"{report['p90_px']:.2f} px; the limit for the median: 3 px)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
