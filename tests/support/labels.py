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


def vtest_recall(
    frames: list[dict[str, Any]],
    *,
    first_index: int = 0,
    scale: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> float:
    """The share of the labelled persons of vtest.avi's labelled frames that ``frames`` (a
    keypoints.json's) find.

    ``frames`` may be a clip made from vtest.avi: its frame 0 is vtest's ``first_index``, and its
    pictures are vtest's scaled by ``scale`` and then shifted by ``offset`` (x, y) pixels (a
    letterboxed upscale). Its boxes are mapped back to vtest's pixels, and the labelled frames
    within the clip's span count."""
    doc = json.loads(LABELS.read_text())
    images = {img["id"]: img["frame_index"] for img in doc["images"] if "frame_index" in img}
    by_index = {frame["index"] + first_index: frame["persons"] for frame in frames}
    held = range(min(by_index), max(by_index) + 1)  # a frame missing inside it fails below
    truth: dict[int, list[list[float]]] = {index: [] for index in images.values() if index in held}
    assert truth, "no labelled frame of vtest.avi in these frames"
    for ann in doc["annotations"]:
        if ann["image_id"] in images and images[ann["image_id"]] in truth and not ann["iscrowd"]:
            x, y, w, h = ann["bbox"]
            truth[images[ann["image_id"]]].append([x, y, x + w, y + h])
    dx, dy = offset

    def in_vtest(b: list[float]) -> list[float]:
        x0, y0, x1, y1 = ((b[0] - dx) / scale, (b[1] - dy) / scale, (b[2] - dx) / scale, (b[3] - dy) / scale)
        return [max(0.0, x0), max(0.0, y0), min(float(WIDTH), x1), min(float(HEIGHT), y1)]

    found = labelled = 0
    for index, boxes in truth.items():
        persons = [in_vtest(p["bbox"]) for p in by_index[index]]
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
