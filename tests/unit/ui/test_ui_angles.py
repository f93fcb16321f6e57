"""posepipe.ui.angles: joint angles against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from posepipe.result import Person
from posepipe.skeleton import LANDMARK_INDEX, NUM_LANDMARKS
from posepipe.ui.angles import JOINT_NAMES, joint_angle_series, joint_angles, person_joint_angles


def person(
    world: dict[str, tuple[float, float, float]] | None = None,
    image: dict[str, tuple[float, float]] | None = None,
    hidden: tuple[str, ...] = (),
) -> Person:
    """A person with the given landmarks (the others at distinct far points), all visible but ``hidden``."""
    far = np.arange(NUM_LANDMARKS, dtype=np.float32)[:, None] * np.float32(7.0) + np.float32(100.0)
    landmarks = np.zeros((NUM_LANDMARKS, 5), np.float32)
    landmarks[:, :2] = far
    landmarks[:, 3:] = 0.99
    world_landmarks = np.zeros((NUM_LANDMARKS, 3), np.float32)
    world_landmarks[:] = far
    for name, (x, y, z) in (world or {}).items():
        world_landmarks[LANDMARK_INDEX[name]] = (x, y, z)
    for name, (x, y) in (image or {}).items():
        landmarks[LANDMARK_INDEX[name], :2] = (x, y)
    for name in hidden:
        landmarks[LANDMARK_INDEX[name], 3] = 0.2
    return Person(landmarks=landmarks, world_landmarks=world_landmarks, score=0.99, id=0)


# A person standing upright facing the camera, arms hanging, in metres (y down, as MediaPipe's).
STANDING = {
    "left_shoulder": (0.2, -0.5, 0.0),
    "left_elbow": (0.2, -0.2, 0.0),
    "left_wrist": (0.2, 0.05, 0.0),
    "left_hip": (0.1, 0.0, 0.0),
    "left_knee": (0.1, 0.45, 0.0),
    "left_ankle": (0.1, 0.9, 0.0),
    "right_shoulder": (-0.2, -0.5, 0.0),
    "right_elbow": (-0.2, -0.2, 0.0),
    "right_wrist": (-0.2, 0.05, 0.0),
    "right_hip": (-0.1, 0.0, 0.0),
    "right_knee": (-0.1, 0.45, 0.0),
    "right_ankle": (-0.1, 0.9, 0.0),
}


def test_standing_straight_gives_straight_limbs() -> None:
    angles = joint_angles(person(world=STANDING))
    assert list(angles) == list(JOINT_NAMES)
    for side in ("left", "right"):
        assert angles[f"{side}_elbow"] == pytest.approx(180.0)
        assert angles[f"{side}_knee"] == pytest.approx(180.0)
        # the thigh goes straight down; the torso side leans out to the shoulder: 0.1 m over 0.5 m
        assert angles[f"{side}_hip"] == pytest.approx(180.0 - math.degrees(math.atan2(0.1, 0.5)))
        # the arm hangs straight down, 0.1 m outside the hip-to-shoulder line's top end
        assert angles[f"{side}_shoulder"] == pytest.approx(math.degrees(math.atan2(0.1, 0.5)))


def test_right_angles_at_elbow_knee_shoulder_and_hip() -> None:
    bent = {
        **STANDING,
        "left_wrist": (0.2, -0.2, -0.25),  # forearm forwards, towards the camera
        "right_elbow": (-0.5, -0.5, 0.0),  # upper arm out sideways, level with the shoulder
        "right_wrist": (-0.5, -0.8, 0.0),  # forearm straight up
        "left_knee": (0.1, 0.0, -0.45),  # thigh forwards (sitting)
        "left_ankle": (0.1, 0.45, -0.45),  # shin down
        "right_shoulder": (-0.1, -0.5, 0.0),  # torso side vertical above the right hip
    }
    angles = joint_angles(person(world=bent))
    assert angles["left_elbow"] == pytest.approx(90.0)
    assert angles["right_shoulder"] == pytest.approx(90.0, abs=1e-4)
    assert angles["right_elbow"] == pytest.approx(90.0)
    assert angles["left_hip"] == pytest.approx(90.0)  # the torso side has no depth, the thigh only depth
    assert angles["left_knee"] == pytest.approx(90.0)
    assert angles["right_knee"] == pytest.approx(180.0)


def test_a_3_4_5_triangle_in_the_picture() -> None:
    # hip (0, 0), knee (400, 0), ankle (0, 300) in pixels: the angle at the knee has
    # tan = 3/4 (36.87 degrees); elbow at (0, 300) with shoulder (0, 0) and wrist (400, 0): 90.
    image = {
        "left_hip": (0.0, 0.0),
        "left_knee": (400.0, 0.0),
        "left_ankle": (0.0, 300.0),
        "left_shoulder": (100.0, 100.0),
        "left_elbow": (100.0, 400.0),
        "left_wrist": (500.0, 400.0),
    }
    angles = joint_angles(person(image=image), "image")
    assert angles["left_knee"] == pytest.approx(36.869898, abs=1e-4)
    assert angles["left_elbow"] == pytest.approx(90.0, abs=1e-4)


def test_the_picture_and_the_body_can_disagree() -> None:
    # A forearm pointing at the camera: 90 degrees in the body, a straight line in the picture.
    world = {**STANDING, "left_wrist": (0.2, -0.2, -0.25)}
    image = {"left_shoulder": (300.0, 100.0), "left_elbow": (300.0, 160.0), "left_wrist": (300.0, 170.0)}
    seen = person(world=world, image=image)
    assert joint_angles(seen, "world")["left_elbow"] == pytest.approx(90.0)
    assert joint_angles(seen, "image")["left_elbow"] == pytest.approx(180.0)


def test_angles_do_not_change_when_the_body_turns_or_scales() -> None:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(len(STANDING), 3)).tolist()
    base = person(world={name: (x, y, z) for name, (x, y, z) in zip(STANDING, points, strict=True)})
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a random rotation (or reflection)
    moved = base.copy()
    moved.world_landmarks = (base.world_landmarks.astype(np.float64) @ q.T * 2.5 + 1.0).astype(np.float32)
    before, after = joint_angles(base), joint_angles(moved)
    for name in JOINT_NAMES:
        assert after[name] == pytest.approx(before[name], abs=1e-3)


def test_landmarks_not_visible_enough_give_no_angle() -> None:
    angles = joint_angles(person(world=STANDING, hidden=("left_wrist", "right_knee")))
    assert angles["left_elbow"] is None
    assert angles["right_knee"] is None
    assert angles["right_hip"] is None  # the knee is one of the hip angle's landmarks too
    assert angles["left_knee"] == pytest.approx(180.0)
    assert joint_angles(person(world=STANDING, hidden=("left_wrist",)), min_visibility=0.1)["left_elbow"] == (
        pytest.approx(180.0)
    )


def test_a_segment_without_length_gives_no_angle() -> None:
    collapsed = {**STANDING, "left_wrist": STANDING["left_elbow"]}
    assert joint_angles(person(world=collapsed))["left_elbow"] is None


def test_series_over_frames_agree_with_each_frame() -> None:
    frames = [
        person(world=STANDING),
        person(world={**STANDING, "left_wrist": (0.2, -0.2, -0.25)}),
        person(world=STANDING, hidden=("left_elbow",)),
    ]
    series = joint_angle_series(
        np.stack([p.world_landmarks for p in frames]), np.stack([p.landmarks[:, 3] for p in frames])
    )
    assert series["left_elbow"][:2] == pytest.approx([180.0, 90.0])
    assert np.isnan(series["left_elbow"][2])
    for index, frame in enumerate(frames):
        for name, value in joint_angles(frame).items():
            if value is None:
                assert np.isnan(series[name][index])
            else:
                assert series[name][index] == pytest.approx(value)


def test_a_result_person_gives_the_same_angles() -> None:
    seen = person(world=STANDING)
    assert person_joint_angles(seen.to_dict()) == pytest.approx(joint_angles(seen), abs=1e-3)
