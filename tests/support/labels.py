"""Recall on the person boxes labelled by eye in vtest.avi (tests/fixtures/labels/persons.json,
see its README), as bench/recall.py scores it: a labelled box is found when a person's box,
clipped to the frame, overlaps it with IoU at least 0.5, each matched once, greedily; persons in
ignore regions count neither way."""

from __future__ import annotations

import json
from typing import Any

from posepipe.video.result_agreement import MIN_IOU, iou

from tests.support.paths import REPO

LABELS = REPO / "tests" / "fixtures" / "labels" / "persons.json"
WIDTH, HEIGHT = 768, 576  # vtest.avi


def vtest_recall(frames: list[dict[str, Any]]) -> float:
    """The share of the labelled persons of vtest.avi's labelled frames that ``frames`` (a
    keypoints.json's) find."""
    doc = json.loads(LABELS.read_text())
    images = {img["id"]: img["frame_index"] for img in doc["images"] if "frame_index" in img}
    truth: dict[int, list[list[float]]] = {index: [] for index in images.values()}
    for ann in doc["annotations"]:
        if ann["image_id"] in images and not ann["iscrowd"]:
            x, y, w, h = ann["bbox"]
            truth[images[ann["image_id"]]].append([x, y, x + w, y + h])
    by_index = {frame["index"]: frame["persons"] for frame in frames}
    found = labelled = 0
    for index, boxes in truth.items():
        persons = [
            [max(0.0, b[0]), max(0.0, b[1]), min(float(WIDTH), b[2]), min(float(HEIGHT), b[3])]
            for b in (p["bbox"] for p in by_index[index])
        ]
        pairs = sorted(
            ((iou(p, t), i, j) for i, p in enumerate(persons) for j, t in enumerate(boxes)), reverse=True
        )
        used_p: set[int] = set()
        used_t: set[int] = set()
        for overlap, i, j in pairs:
            if overlap >= MIN_IOU and i not in used_p and j not in used_t:
                used_p.add(i)
                used_t.add(j)
        found += len(used_t)
        labelled += len(boxes)
    return found / labelled
