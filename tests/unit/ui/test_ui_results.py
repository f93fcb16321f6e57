"""posepipe.ui.results: what the web app shows of results (drawings, tables, a video's series)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posepipe.annotation.drawing import color_for_id
from posepipe.engines.base import InferenceOptions
from posepipe.image_job import ImageJob, ImageJobOptions
from posepipe.media.images import load_image
from posepipe.skeleton import COCO_KEYPOINT_NAMES, LANDMARK_INDEX, NUM_LANDMARKS
from posepipe.ui.results import angle_rows, color_hex, draw_result, image_persons, landmark_rows, video_series


@pytest.fixture(scope="module")
def messi(sample: Callable[[str], Path], model_path: Path) -> tuple[bytes, dict[str, Any]]:
    """messi5.jpg and its result, from the real model."""
    data = sample("messi5.jpg").read_bytes()
    job = ImageJob(ImageJobOptions(annotate=False))
    try:
        result, _, _ = job.run(data, "messi5.jpg")
    finally:
        job.close()
    return data, result.to_dict()


def test_the_skeleton_is_drawn_in_the_persons_colour(messi: tuple[bytes, dict[str, Any]]) -> None:
    data, result = messi
    drawn = draw_result(data, result, "messi5.jpg")
    assert drawn.shape == (342, 548, 3)
    original = load_image(data).rgb
    colour = np.array(color_for_id(0), dtype=np.float64)
    before = np.linalg.norm(original - colour, axis=2)
    after = np.linalg.norm(drawn - colour, axis=2)
    tinted = after < before - 60  # pixels the drawing turned towards person 0's colour
    assert tinted.sum() > 300
    (person,) = image_persons(result)
    x0, y0, x1, y1 = person.bbox
    ys, xs = np.nonzero(tinted)
    assert x0 - 10 <= xs.min()
    assert xs.max() <= x1 + 10
    assert y0 - 10 <= ys.min()
    assert ys.max() <= y1 + 10
    assert color_hex(0) == "#e6194b"  # the palette's red


def test_tables_of_landmarks_and_angles(messi: tuple[bytes, dict[str, Any]]) -> None:
    (person,) = image_persons(messi[1])
    rows = landmark_rows(person)
    assert len(rows) == NUM_LANDMARKS
    nose = rows[0]
    assert nose["landmark"] == "nose"
    assert nose["x (px)"] == pytest.approx(float(person.landmarks[0, 0]), abs=0.05)
    assert nose["y (m)"] == pytest.approx(float(person.world_landmarks[0, 1]), abs=5e-4)
    angles = angle_rows(person)
    assert [row["angle"] for row in angles][:3] == ["right ankle", "right knee", "right hip"]
    assert all(row["3D (°)"] is None or -180 <= row["3D (°)"] <= 180 for row in angles)
    assert sum(row["3D (°)"] is not None for row in angles) >= 8  # he is in full view


def _person(person_id: int, x: float, visibility: float = 0.9) -> dict[str, Any]:
    landmarks = [[x + i, 10.0 * i, 0.0, visibility, 0.9] for i in range(NUM_LANDMARKS)]
    world = [[0.01 * i, 0.02 * i, 0.0] for i in range(NUM_LANDMARKS)]
    return {
        "id": person_id,
        "score": 0.9,
        "bbox": [0, 0, 1, 1],
        "landmarks": landmarks,
        "world_landmarks": world,
    }


def test_tables_of_a_movenet_person_have_17_keypoints_and_2d_angles_only(
    sample: Callable[[str], Path], catalogue_models: dict[str, Path]
) -> None:
    job = ImageJob(
        ImageJobOptions(
            inference=InferenceOptions(model_path="movenet-lightning", detector="centernet"), annotate=False
        )
    )
    try:
        result, _, _ = job.run(sample("messi5.jpg").read_bytes(), "messi5.jpg")
    finally:
        job.close()
    (person,) = image_persons(result.to_dict())
    rows = landmark_rows(person)
    assert [row["landmark"] for row in rows] == list(COCO_KEYPOINT_NAMES)
    assert "x (m)" not in rows[0]  # MoveNet gives no world landmarks
    angles = {row["angle"]: row for row in angle_rows(person)}
    assert all(row["3D (°)"] is None for row in angles.values())
    knee = angles["right knee"]["2D in the picture (°)"]  # his bent standing leg, seen
    assert knee is not None
    assert 30 < abs(knee) < 90  # flexion (0: straight); its sign depends on the way he faces
    assert angles["right ankle"]["2D in the picture (°)"] is None  # COCO's 17 have no feet


def test_a_video_as_time_series_per_person() -> None:
    result: dict[str, Any] = {
        "source": {"uri": "walk.mp4", "width": 640, "height": 480},
        "model": {"name": "pose_landmarker_full"},
        "landmark_names": list(LANDMARK_INDEX),
        "frames": [
            {"index": 0, "t": 0.0, "persons": [_person(3, 100.0)]},
            {"index": 1, "t": 0.1, "persons": [_person(3, 110.0), _person(5, 300.0, visibility=0.1)]},
            {"index": 2, "t": 0.2, "persons": []},
            {"index": 3, "t": 0.3, "persons": [_person(3, 130.0)]},
        ],
    }
    series = video_series(result)
    assert series.t.tolist() == [0.0, 0.1, 0.2, 0.3]
    assert series.persons_per_frame.tolist() == [1, 2, 0, 1]
    # A frame that was not processed (its chunk failed) is a gap, not "nobody there".
    result["frames"][2]["processed"] = False
    gap = video_series(result).persons_per_frame
    assert gap[[0, 1, 3]].tolist() == [1, 2, 1]
    assert np.isnan(gap[2])
    assert [track.id for track in series.longest_tracks()] == [3, 5]
    walker = series.tracks[3]
    # The core's analysis: the track runs from the first frame to the last, the 0.1 s gap filled
    # (10 frames/s: the 6 Hz filter cannot apply, so the values are as found).
    assert walker.t.tolist() == [0.0, 0.1, 0.2, 0.3]
    assert walker.frames == 3
    assert walker.motion.filled[:, 0].tolist() == [False, False, True, False]
    nose = walker.trajectory("nose")
    assert nose["t"] == [0.0, 0.1, 0.2, 0.3]
    assert nose["x"] == pytest.approx([100.0, 110.0, 120.0, 130.0])
    wrist = LANDMARK_INDEX["left_wrist"]
    assert walker.trajectory("left_wrist")["y"] == pytest.approx([10.0 * wrist] * 4)
    # every landmark on one straight line in the world: straight elbows, flexion 0
    assert walker.space == "world"
    assert walker.angles["left_elbow"] == pytest.approx([0.0] * 4)
    faint = series.tracks[5]
    assert faint.trajectory("nose") == {"t": [], "x": [], "y": []}  # not visible enough
    assert np.isnan(faint.angles["left_knee"]).all()
    assert (series.width, series.height) == (640, 480)
