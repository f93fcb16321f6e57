"""posepipe.analysis.angles: hand-built poses with known angles (right angles, straight limbs, a
3-4-5 triangle) to 0.1 degree, in the picture and in 3D; a person facing left reads as one facing
right; 3D angles do not change when the body turns; and on real poses the 2D angles agree with
Sports2D's own computation (``Sports2D.process.compute_angles_for_person``) to 0.1 degree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from posepipe.analysis.angles import ANGLE_NAMES, angle_series
from posepipe.skeleton import BLAZEPOSE, LANDMARK_INDEX

TOLERANCE = 0.1

# A person seen from their right side, toes pointing right (+x), in pixels (y down): standing
# with the right knee bent 90 degrees (thigh forward, horizontal; shank vertical), the right elbow
# bent on a 3-4-5 triangle, the left side straight.
RIGHT_FACING = {
    "right_shoulder": (0.0, 40.0), "left_shoulder": (0.0, 40.0),
    "right_hip": (0.0, 100.0), "left_hip": (0.0, 100.0),
    "right_knee": (50.0, 100.0), "right_ankle": (50.0, 150.0),
    "right_heel": (40.0, 160.0), "right_foot_index": (80.0, 160.0),
    "left_knee": (0.0, 150.0), "left_ankle": (0.0, 200.0),
    "left_heel": (-10.0, 210.0), "left_foot_index": (30.0, 210.0),
    "right_elbow": (0.0, 80.0), "right_wrist": (30.0, 120.0), "right_index": (45.0, 140.0),
    "left_elbow": (0.0, 80.0), "left_wrist": (0.0, 120.0), "left_index": (0.0, 130.0),
}  # fmt: skip
EXPECTED = {
    "right_knee": 90.0, "left_knee": 0.0,  # a right angle, a straight leg
    "right_hip": 90.0, "left_hip": 0.0,  # thigh horizontal forward, thigh along the trunk
    "right_ankle": 0.0, "left_ankle": 0.0,  # feet at a right angle to the shank
    "right_elbow": 36.8699, "left_elbow": 0.0,  # 3-4-5: 180 - 143.13; a straight arm
    "right_shoulder": 0.0, "left_shoulder": 0.0,  # upper arms along the trunk
    "right_wrist": 0.0, "left_wrist": 0.0,  # hands along the forearms
    "trunk": 90.0,  # upright
}  # fmt: skip


def _pose(points: Mapping[str, tuple[float, ...]], dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(1, 33, dims) points and (1, 33) visibility: 1 for the points given, 0 elsewhere."""
    xyz = np.full((1, len(LANDMARK_INDEX), dims), np.nan)
    visibility = np.zeros((1, len(LANDMARK_INDEX)))
    for name, point in points.items():
        xyz[0, LANDMARK_INDEX[name]] = point
        visibility[0, LANDMARK_INDEX[name]] = 1.0
    return xyz, visibility


def _angles(points: Mapping[str, tuple[float, ...]], space: str = "image") -> dict[str, float]:
    xyz, visibility = _pose(points, 2 if space == "image" else 3)
    series = angle_series(xyz, visibility, LANDMARK_INDEX, space, 0.5)  # type: ignore[arg-type]
    return {name: float(values[0]) for name, values in series.items()}


def test_hand_built_angles_in_the_picture() -> None:
    angles = _angles(RIGHT_FACING)
    for name, expected in EXPECTED.items():
        assert angles[name] == pytest.approx(expected, abs=TOLERANCE), name
    assert np.isnan(angles["pelvis"])  # both hips at one point: the hip line has no direction


def test_a_pelvis_tilted_on_a_3_4_5_triangle() -> None:
    points = dict(RIGHT_FACING)
    points["left_hip"], points["right_hip"] = (40.0, 70.0), (0.0, 100.0)  # left - right = (40, -30)
    assert _angles(points)["pelvis"] == pytest.approx(36.8699, abs=TOLERANCE)


def test_trunk_leaning_forward_reads_below_90() -> None:
    points = dict(RIGHT_FACING)
    points["left_shoulder"] = points["right_shoulder"] = (60.0, 40.0)  # mid-hip (0, 100): 45 degrees
    assert _angles(points)["trunk"] == pytest.approx(45.0, abs=TOLERANCE)


def test_a_person_facing_left_reads_as_one_facing_right() -> None:
    mirrored = {name: (-x, y) for name, (x, y) in RIGHT_FACING.items()}
    assert _angles(mirrored) == pytest.approx(_angles(RIGHT_FACING), abs=1e-9, nan_ok=True)


def _world(points: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float, float]]:
    """The pose in metres (x right, y down, z away): right side 0.1 m nearer the camera."""
    return {
        name: (x / 100.0, y / 100.0, -0.1 if name.startswith("right") else 0.1)
        for name, (x, y) in points.items()
    }


def test_hand_built_angles_in_3d_equal_the_pictures_seen_from_the_side() -> None:
    points = dict(RIGHT_FACING)
    # The hips' line must have a direction in 3D: move them apart along z only (as _world does).
    angles = _angles(_world(points), "world")
    for name, expected in EXPECTED.items():
        if name == "trunk":
            assert np.isnan(angles[name])  # 2D only
        else:
            assert angles[name] == pytest.approx(expected, abs=TOLERANCE), name


def test_3d_angles_do_not_change_when_the_body_turns() -> None:
    world = _world(RIGHT_FACING)
    turn = np.radians(70.0)  # about the vertical (y) axis: now nearly facing the camera
    rotation = np.array(
        [[np.cos(turn), 0.0, np.sin(turn)], [0.0, 1.0, 0.0], [-np.sin(turn), 0.0, np.cos(turn)]]
    )
    turned = {name: tuple(rotation @ np.array(point)) for name, point in world.items()}
    before, after = _angles(world, "world"), _angles(turned, "world")
    for name in EXPECTED:
        if name != "trunk":
            assert after[name] == pytest.approx(before[name], abs=TOLERANCE), name
    # ... while the picture's angles, which foreshortening changes, do not agree.
    pictured = _angles({name: (p[0] * 100.0, p[1] * 100.0) for name, p in turned.items()})
    assert abs(pictured["right_elbow"] - EXPECTED["right_elbow"]) > 10.0


def test_an_unseen_point_gives_nan_and_coco_has_no_ankle_or_wrist_angles() -> None:
    xyz, visibility = _pose(RIGHT_FACING, 2)
    visibility[0, LANDMARK_INDEX["right_ankle"]] = 0.2
    series = angle_series(xyz, visibility, LANDMARK_INDEX, "image", 0.5)
    assert np.isnan(series["right_knee"][0])
    assert np.isnan(series["right_ankle"][0])
    assert series["left_knee"][0] == pytest.approx(0.0, abs=TOLERANCE)
    coco_index = {name: i for i, name in enumerate(n for n in RIGHT_FACING if n in _COCO_NAMES)}
    coco_points = np.array([[RIGHT_FACING[name] for name in coco_index]])
    coco = angle_series(coco_points, np.ones(coco_points.shape[:2]), coco_index, "image", 0.3)
    assert np.isnan(coco["right_ankle"][0])
    assert np.isnan(coco["right_wrist"][0])
    assert coco["right_knee"][0] == pytest.approx(90.0, abs=TOLERANCE)


_COCO_NAMES = {
    "right_shoulder", "left_shoulder", "right_hip", "left_hip", "right_knee", "left_knee",
    "right_ankle", "left_ankle", "right_elbow", "left_elbow", "right_wrist", "left_wrist",
}  # fmt: skip

# posepipe's angle names -> Sports2D's (Pose2Sim's angle_dict), where the conventions are the
# same (posepipe measures the left wrist at the wrist; Sports2D at the index finger).
SPORTS2D_ANGLES = {name: name.replace("_", " ") for name in ANGLE_NAMES if name != "left_wrist"}
SPORTS2D_POINTS = {
    "Hip": None, "Neck": None,  # midpoints, appended
    **{
        f"{side[0].upper()}{part}": f"{side}_{landmark}"
        for side in ("right", "left")
        for part, landmark in (
            ("Hip", "hip"), ("Knee", "knee"), ("Ankle", "ankle"), ("BigToe", "foot_index"),
            ("Heel", "heel"), ("Shoulder", "shoulder"), ("Elbow", "elbow"), ("Wrist", "wrist"),
            ("Index", "index"),
        )
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def real_poses(catalogue_models: dict[str, Path], sample: Callable[[str], Path]) -> list[np.ndarray]:
    """The persons posepipe finds on ten frames of vtest.avi and in the sample photos:
    landmarks (33, 5) each."""
    from posepipe.engines.base import PoseEngineOptions
    from posepipe.engines.choice import open_pose_engine
    from posepipe.media.decode import read_frames
    from posepipe.media.images import load_image

    pictures = [frame.rgb for frame in read_frames(sample("vtest.avi"), 0, 800) if frame.index % 80 == 0]
    pictures += [
        load_image(sample(name)).rgb for name in ("messi5.jpg", "basketball1.png", "basketball2.png")
    ]
    with open_pose_engine(PoseEngineOptions(detector="centernet", max_poses=20)) as engine:
        return [person.landmarks for rgb in pictures for person in engine.detect(rgb)]


def test_2d_angles_agree_with_sports2ds_own(real_poses: list[np.ndarray]) -> None:
    from Sports2D.process import angle_dict, compute_angles_for_person

    names = [name for name in SPORTS2D_POINTS if SPORTS2D_POINTS[name]]
    names += ["Hip", "Neck"]
    ids = list(range(len(names)))
    feet = [names.index(n) for n in ("LBigToe", "LHeel", "RBigToe", "RHeel")]
    compared = 0
    assert len(real_poses) >= 40
    for landmarks in real_poses:
        seen = landmarks[:, 3] >= BLAZEPOSE.min_visibility
        if not all(
            seen[LANDMARK_INDEX[f"{s}_{p}"]] for s in ("left", "right") for p in ("heel", "foot_index")
        ):
            continue  # facing unknown: Sports2D then calls the person left-facing, posepipe right-facing
        xy = np.where(seen[:, None], landmarks[:, :2].astype(np.float64), np.nan)
        columns = [xy[LANDMARK_INDEX[SPORTS2D_POINTS[n]]] for n in names[:-2]]  # type: ignore[index]
        columns += [(xy[LANDMARK_INDEX["left_hip"]] + xy[LANDMARK_INDEX["right_hip"]]) / 2]
        columns += [(xy[LANDMARK_INDEX["left_shoulder"]] + xy[LANDMARK_INDEX["right_shoulder"]]) / 2]
        person = np.array(columns)
        _, theirs, _ = compute_angles_for_person(
            person[:, 0], person[:, 1], "auto", True, ids, names, list(SPORTS2D_ANGLES.values()),
            angle_dict, feet,
        )  # fmt: skip
        ours = angle_series(xy[None], seen[None].astype(float), LANDMARK_INDEX, "image", 0.5)
        for (name, _), their in zip(SPORTS2D_ANGLES.items(), theirs, strict=True):
            mine = float(ours[name][0])
            assert np.isnan(mine) == np.isnan(their), name
            if not np.isnan(mine):
                difference = (mine - their + 180.0) % 360.0 - 180.0
                assert abs(difference) <= TOLERANCE, (name, mine, their)
                compared += 1
    assert compared >= 200
