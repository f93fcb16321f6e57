"""The bottom-up engine, MoveNet MultiPose: the people of a labelled vtest.avi frame and of the
basketball photos are found where the labels put them, nobody on empty grass, keypoints in the
picture's own pixels whatever its size, and the persons per frame capped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.engines.base import MULTIPOSE, PoseEngineOptions, RunningMode
from posepipe.engines.choice import open_pose_engine
from posepipe.engines.multipose import MultiPosePoseEstimator
from posepipe.engines.topdown.person_boxes import box_iou
from posepipe.media.decode import read_frames
from posepipe.media.images import load_image

LABELS = Path(__file__).resolve().parents[2] / "fixtures" / "labels" / "persons.json"


Box = tuple[float, float, float, float]


def _labelled(frame_index: int | None = None, file_name: str | None = None) -> list[Box]:
    """The boxes labelled by eye (x0, y0, x1, y1) on a frame of vtest.avi or a photo."""
    doc = json.loads(LABELS.read_text())
    (image,) = [
        img
        for img in doc["images"]
        if (frame_index is not None and img.get("frame_index") == frame_index)
        or (file_name is not None and img["file_name"] == file_name)
    ]
    return [
        (x, y, x + w, y + h)
        for ann in doc["annotations"]
        if ann["image_id"] == image["id"] and not ann["iscrowd"]
        for x, y, w, h in [ann["bbox"]]
    ]


@pytest.fixture(scope="module")
def engine(catalogue_models: dict[str, Path]) -> MultiPosePoseEstimator:
    opened = open_pose_engine(PoseEngineOptions(detector=MULTIPOSE, max_poses=12))
    assert isinstance(opened, MultiPosePoseEstimator)
    return opened


def test_the_walkers_of_a_labelled_frame_are_found(
    engine: MultiPosePoseEstimator, sample: Callable[[str], Path]
) -> None:
    (frame,) = read_frames(sample("vtest.avi"), 403, 404)
    persons = engine.detect(frame.rgb)
    labels = _labelled(frame_index=403)
    assert len(labels) >= 3
    for label in labels:
        assert max(box_iou(p.bbox, label) for p in persons) >= 0.5, label
    assert len(persons) <= len(labels) + 1
    assert all(len(p.landmarks) == 17 and len(p.world_landmarks) == 0 for p in persons)


def test_both_basketball_players_are_found(
    engine: MultiPosePoseEstimator, sample: Callable[[str], Path]
) -> None:
    persons = engine.detect(load_image(sample("basketball2.png")).rgb)
    left, right = _labelled(file_name="basketball2.png")
    assert len(persons) == 2
    assert max(box_iou(p.bbox, left) for p in persons) >= 0.7
    # The right player, cut by the picture's edge, is found with his visible side only.
    (other,) = [p for p in persons if box_iou(p.bbox, left) < 0.5]
    x0, y0, x1, y1 = other.bbox
    assert right[0] <= (x0 + x1) / 2 <= right[2]
    assert y1 - y0 >= 0.5 * (right[3] - right[1])


def test_nobody_on_empty_grass_is_an_empty_list(
    engine: MultiPosePoseEstimator, sample: Callable[[str], Path]
) -> None:
    (frame,) = read_frames(sample("vtest.avi"), 100, 101)
    grass = np.ascontiguousarray(frame.rgb[380:, :420])  # the lawn in the foreground: litter, no people
    assert engine.detect(grass) == []


def test_keypoints_are_in_the_pictures_own_pixels_at_any_size(
    engine: MultiPosePoseEstimator, sample: Callable[[str], Path]
) -> None:
    """The footballer at 548x342 and at twice that (padded and resized differently): the same
    sure keypoints, in each picture's pixels, within 2% of the picture's width."""
    import cv2

    rgb = load_image(sample("messi5.jpg")).rgb
    (small,) = engine.detect(rgb)
    twice = np.ascontiguousarray(cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2)), dtype=np.uint8)
    (large,) = engine.detect(twice)
    sure = (small.landmarks[:, 4] >= 0.5) & (large.landmarks[:, 4] >= 0.5)
    assert sure.sum() >= 12
    error = np.abs(large.xy[sure] / 2 - small.xy[sure]).max()
    assert error <= 0.02 * rgb.shape[1]


def test_max_poses_keeps_the_highest_scored(
    catalogue_models: dict[str, Path], sample: Callable[[str], Path]
) -> None:
    rgb = load_image(sample("basketball2.png")).rgb
    with open_pose_engine(PoseEngineOptions(detector=MULTIPOSE, max_poses=12)) as every:
        both = every.detect(rgb)
    with open_pose_engine(PoseEngineOptions(detector=MULTIPOSE, max_poses=1)) as one:
        (best,) = one.detect(rgb)
    assert best.score == max(p.score for p in both)


def test_video_mode_takes_increasing_timestamps_and_records_the_model(
    catalogue_models: dict[str, Path], sample: Callable[[str], Path]
) -> None:
    options = PoseEngineOptions(detector=MULTIPOSE, max_poses=12, running_mode=RunningMode.VIDEO)
    with open_pose_engine(options) as video:
        frames = list(read_frames(sample("vtest.avi"), 400, 403))
        counts = [len(video.detect_for_video(frame.rgb, 40 * frame.index)) for frame in frames]
        assert min(counts) >= 3
        with pytest.raises(ValueError, match="timestamps must increase"):
            video.detect_for_video(frames[0].rgb, 0)
        model = video.model_dict()
    assert (model["name"], model["engine"], model["skeleton"]) == (MULTIPOSE, "bottomup", "coco-17")
    assert model["detector"] == {
        "name": MULTIPOSE,
        "sha256": model["sha256"],
        "min_score": 0.2,
        "input_sides": [256, 768],
    }
