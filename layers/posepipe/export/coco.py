"""Exports of ``posepipe.pose/2`` results to other formats: COCO-17 person keypoints."""

from __future__ import annotations

from typing import Any

from posepipe.result import READABLE_SCHEMA_IDS, SCHEMA_ID
from posepipe.skeleton import COCO_KEYPOINT_NAMES, COCO_SKELETON

# COCO visibility flags: 2 labelled and visible, 1 labelled but occluded, 0 not labelled.
_VISIBLE = 0.5


def to_coco(result: dict[str, Any]) -> dict[str, Any]:
    """A COCO keypoint-detection document: one image per frame, one annotation per person.

    Either keypoint set maps to COCO's 17 by name: BlazePose's 33 landmarks (nose, eyes, ears,
    shoulders, elbows, wrists, hips, knees, ankles; the rest are left out), and MoveNet's 17, which
    are COCO's. A keypoint is flagged visible (2) when the model's visibility (MoveNet: its score)
    is at least 0.5, occluded (1) when below but inside the image, unlabelled (0, at 0,0) otherwise.
    A frame that was not processed (``"processed": false``: its chunk failed) is left out: in
    COCO an image without annotations says that nobody is there.
    """
    if result.get("schema") not in READABLE_SCHEMA_IDS:
        raise ValueError(f"not a {SCHEMA_ID} result")
    names = result.get("landmark_names") or []
    missing = [name for name in COCO_KEYPOINT_NAMES if name not in names]
    if missing:
        raise ValueError(f"the result's landmarks lack COCO's {', '.join(missing)}")
    coco_rows = [names.index(name) for name in COCO_KEYPOINT_NAMES]
    source = result["source"]
    width, height = int(source["width"]), int(source["height"])
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for frame in result["frames"]:
        if not frame.get("processed", True):
            continue
        image_id = int(frame["index"]) + 1
        images.append(
            {
                "id": image_id,
                "file_name": f"{source['uri']}#frame={frame['index']}",
                "width": width,
                "height": height,
                "frame_index": frame["index"],
                "t": frame["t"],
            }
        )
        for person in frame["persons"]:
            keypoints: list[float] = []
            labelled = 0
            for index in coco_rows:
                x, y, _z, visibility, _presence = person["landmarks"][index]
                inside = 0 <= x < width and 0 <= y < height
                flag = 2 if visibility >= _VISIBLE and inside else 1 if inside else 0
                keypoints.extend([round(x, 2), round(y, 2), flag] if flag else [0, 0, 0])
                labelled += flag > 0
            x0, y0, x1, y1 = person["bbox"]
            x0, y0 = max(0.0, x0), max(0.0, y0)
            w, h = max(0.0, min(x1, width) - x0), max(0.0, min(y1, height) - y0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": keypoints,
                    "num_keypoints": labelled,
                    "bbox": [round(x0, 2), round(y0, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "iscrowd": 0,
                    "score": person["score"],
                    "track_id": person["id"],
                }
            )
    return {
        "info": {"description": f"posepipe export of {source['uri']}", "version": SCHEMA_ID},
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(COCO_KEYPOINT_NAMES),
                "skeleton": [list(pair) for pair in COCO_SKELETON],
            }
        ],
    }
