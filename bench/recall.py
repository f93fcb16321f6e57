"""Recall and precision of posepipe's person finding against boxes labelled by eye.

The labels are ``tests/fixtures/labels/persons.json`` (30 frames of vtest.avi and the sample
photos; see the README beside it). Each detector runs in IMAGE mode on each labelled picture, and
with ``--video`` the whole of vtest.avi also goes through ``posepipe video`` (tracking, ids and
smoothing as a user gets them). A labelled box is found when a person's box (``bbox``, clipped to
the picture) overlaps it with IoU at least 0.5, each person's box matched once, greedily by IoU.
Persons matched to ignore regions count neither way.

    python bench/recall.py [--detector centernet blazepose] [--model blazepose-full ...] [--video]
        [--engine mediapipe|torch] [--json out.json]
    python bench/recall.py --keypoints RUN/vtest/keypoints.json   # score a `posepipe video` result
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
MULTIPOSE = "movenet-multipose"  # posepipe.engines.base.MULTIPOSE
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


def evaluate(detector: str, model: str, labelled: list[Any], engine: str = "mediapipe") -> dict[str, Any]:
    """Each picture through the engine in IMAGE mode."""
    from posepipe.engines.base import DEFAULT_MAX_POSES, InferenceOptions, RunningMode, parse_engine
    from posepipe.engines.choice import open_pose_engine

    options = InferenceOptions(
        model_path=model,
        max_poses=DEFAULT_MAX_POSES[detector],
        detector=detector,
        engine=parse_engine(engine),
    )
    found: dict[str, list[list[float]]] = {}
    with open_pose_engine(options.engine_options(RunningMode.IMAGE)) as estimator:
        started = time.perf_counter()
        for name, rgb, _, _ in labelled:
            height, width = rgb.shape[:2]
            found[name] = [clip(list(p.bbox), width, height) for p in estimator.detect(rgb)]
        seconds = time.perf_counter() - started
    summary = score(found, labelled)
    return {
        "detector": detector,
        "model": model,
        "engine": engine,
        "mode": "image",
        "seconds": seconds,
        **summary,
    }


def evaluate_video(
    detector: str, model: str, labelled: list[Any], engine: str = "mediapipe"
) -> dict[str, Any]:
    """The labelled frames of vtest.avi as ``posepipe video`` finds them: the whole video through
    the command, with its defaults (chunks, tracking, ids, smoothing), then its keypoints.json."""
    import subprocess
    import tempfile

    from posepipe.assets.samples import sample_path

    command = Path(sys.executable).with_name("posepipe")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [str(command), "video", str(sample_path("vtest.avi")), "-o", out, "--no-annotate",
             "--no-progress", "--model", model, "--detector", detector, "--engine", engine],
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        frames = json.loads((Path(out) / "vtest" / "keypoints.json").read_text())["frames"]
    report = score_video_frames(frames, labelled)
    return {
        "detector": detector,
        "model": model,
        "engine": engine,
        "mode": "video",
        "seconds": seconds,
        **report,
    }


def score_video_frames(frames: list[dict[str, Any]], labelled: list[Any]) -> dict[str, Any]:
    """The labelled frames of vtest.avi as a ``posepipe video`` result (its frames) has them."""
    by_index = {frame["index"]: frame["persons"] for frame in frames}
    found: dict[str, list[list[float]]] = {}
    videos = [picture for picture in labelled if picture[0].startswith("vtest")]
    for name, rgb, _, _ in videos:
        height, width = rgb.shape[:2]
        persons = by_index.get(int(name.split("#")[1]), [])
        found[name] = [clip(person["bbox"], width, height) for person in persons]
    return score(found, videos)


def score(found: dict[str, list[list[float]]], labelled: list[Any]) -> dict[str, Any]:
    """Recall and precision over the labelled pictures, for vtest.avi's frames and the photos."""
    totals = {"vtest": [0, 0, 0], "photos": [0, 0, 0]}
    per_picture = {}
    for name, _, truth, ignore in labelled:
        tp, fp, fn = match(found[name], truth, ignore)
        counts = totals["vtest" if name.startswith("vtest") else "photos"]
        counts[0] += tp
        counts[1] += fp
        counts[2] += fn
        per_picture[name] = {"found": len(found[name]), "labelled": len(truth), "tp": tp, "fp": fp, "fn": fn}
    summary: dict[str, Any] = {}
    for group, (tp, fp, fn) in totals.items():
        if tp + fp + fn:
            summary[group] = {
                "recall": tp / max(1, tp + fn),
                "precision": tp / max(1, tp + fp),
                "true_positives": tp,
                "false_positives": fp,
                "missed": fn,
            }
    return {**summary, "pictures": per_picture}


def main() -> None:
    sys.path.insert(0, str(ROOT / "layers"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", nargs="+", default=["centernet", "blazepose"])
    parser.add_argument("--model", nargs="+", default=["blazepose-full"])
    parser.add_argument("--video", action="store_true", help="also vtest.avi through `posepipe video`")
    parser.add_argument("--engine", default="mediapipe", choices=("mediapipe", "torch"))
    parser.add_argument("--keypoints", type=Path, help="score this `posepipe video` result of vtest.avi")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    labelled = pictures()
    reports = []
    if args.keypoints:
        result = json.loads(args.keypoints.read_text())
        model = result["model"]
        reports.append({
            "detector": (model.get("detector") or {}).get("name", "?"),
            "model": model.get("name"), "engine": str(model.get("runtime")), "mode": "video",
            **score_video_frames(result["frames"], labelled),
        })  # fmt: skip
    for model_name in [] if args.keypoints else args.model:
        for detector in [MULTIPOSE] if model_name == MULTIPOSE else args.detector:  # it is its own detector
            reports.append(evaluate(detector, model_name, labelled, args.engine))
            if args.video:
                reports.append(evaluate_video(detector, model_name, labelled, args.engine))
    for report in reports:
        for group in ("vtest", "photos"):
            if group not in report:
                continue
            r = report[group]
            print(
                f"{report['detector']:>10} + {report['model']:<15} {report['mode']:>5} {group:>6}: "
                f"recall {r['recall']:.1%} precision {r['precision']:.1%}  ({r['true_positives']} found, "
                f"{r['missed']} missed, {r['false_positives']} false)"
            )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
