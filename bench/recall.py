"""Recall and precision of posepipe's person finding against boxes labelled by eye.

The labels are ``tests/fixtures/labels/persons.json`` (30 frames of vtest.avi and the sample
photos; see the README beside it). Each detector runs in IMAGE mode on each labelled picture; a
labelled box is found when a person's box (around their landmarks) overlaps it with IoU at least
0.5, each person's box matched once, greedily by IoU. Persons matched to ignore regions count
neither way.

    python bench/recall.py [--detector blazepose centernet] [--model blazepose-full] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "fixtures" / "labels" / "persons.json"
MIN_IOU = 0.5


def iou(a: list[float], b: list[float]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def clip(box: list[float], width: int, height: int) -> list[float]:
    """A person's box within the picture (landmarks can be placed beyond its edges)."""
    return [max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])]


def match(
    found: list[list[float]], labelled: list[list[float]], ignore: list[list[float]]
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) for one picture."""
    pairs = sorted(
        ((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(labelled)), reverse=True
    )
    used_found: set[int] = set()
    used_label: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < MIN_IOU:
            break
        if i in used_found or j in used_label:
            continue
        used_found.add(i)
        used_label.add(j)
    unmatched = [f for i, f in enumerate(found) if i not in used_found]
    false_positives = sum(1 for f in unmatched if not any(iou(f, g) >= MIN_IOU for g in ignore))
    return len(used_label), false_positives, len(labelled) - len(used_label)


def pictures() -> list[tuple[str, Any, list[list[float]], list[list[float]]]]:
    """(name, RGB, labelled boxes, ignore regions) of every labelled picture."""
    from posepipe.assets.samples import sample_path
    from posepipe.media.decode import read_frames
    from posepipe.media.images import load_image

    doc = json.loads(LABELS.read_text())
    boxes: dict[int, tuple[list[list[float]], list[list[float]]]] = {
        img["id"]: ([], []) for img in doc["images"]
    }
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        boxes[ann["image_id"]][1 if ann["iscrowd"] else 0].append([x, y, x + w, y + h])
    frames: dict[int, Any] = {}
    wanted = {img["frame_index"] for img in doc["images"] if "frame_index" in img}
    for frame in read_frames(sample_path("vtest.avi"), min(wanted), max(wanted) + 1):
        if frame.index in wanted:
            frames[frame.index] = frame.rgb
    out = []
    for img in doc["images"]:
        if "frame_index" in img:
            rgb, name = frames[img["frame_index"]], f"vtest.avi#{img['frame_index']}"
        else:
            rgb, name = load_image(sample_path(img["file_name"])).rgb, img["file_name"]
        out.append((name, rgb, *boxes[img["id"]]))
    return out


def evaluate(detector: str, model: str, labelled: list[Any]) -> dict[str, Any]:
    from posepipe.engines.base import InferenceOptions, RunningMode
    from posepipe.engines.choice import open_pose_engine

    options = InferenceOptions(model_path=model, max_poses=50, detector=detector)
    with open_pose_engine(options.engine_options(RunningMode.IMAGE)) as engine:
        totals = {"vtest": [0, 0, 0], "photos": [0, 0, 0]}
        per_picture = {}
        started = time.perf_counter()
        for name, rgb, truth, ignore in labelled:
            height, width = rgb.shape[:2]
            found = [clip(list(p.bbox), width, height) for p in engine.detect(rgb)]
            tp, fp, fn = match(found, truth, ignore)
            counts = totals["vtest" if name.startswith("vtest") else "photos"]
            counts[0] += tp
            counts[1] += fp
            counts[2] += fn
            per_picture[name] = {"found": len(found), "labelled": len(truth), "tp": tp, "fp": fp, "fn": fn}
        seconds = time.perf_counter() - started
    summary: dict[str, dict[str, float]] = {}
    for group, (tp, fp, fn) in totals.items():
        summary[group] = {
            "recall": tp / max(1, tp + fn),
            "precision": tp / max(1, tp + fp),
            "true_positives": tp,
            "false_positives": fp,
            "missed": fn,
        }
    return {"detector": detector, "model": model, "seconds": seconds, **summary, "pictures": per_picture}


def main() -> None:
    sys.path.insert(0, str(ROOT / "layers"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", nargs="+", default=["blazepose", "centernet"])
    parser.add_argument("--model", default="blazepose-full")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    labelled = pictures()
    reports = [evaluate(detector, args.model, labelled) for detector in args.detector]
    for report in reports:
        for group in ("vtest", "photos"):
            r = report[group]
            print(
                f"{report['detector']:>10} + {report['model']}  {group:>6}: recall {r['recall']:.1%} "
                f"precision {r['precision']:.1%}  ({r['true_positives']} found, {r['missed']} missed, "
                f"{r['false_positives']} false)"
            )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
