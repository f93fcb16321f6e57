"""The keypoint sets posepipe's models give: BlazePose's 33 landmarks (with world landmarks) and
COCO's 17 keypoints (MoveNet), each with its skeleton, and the mapping from the first to the second.

A result names its set in ``landmark_names`` and its model block's ``skeleton``
(:data:`SKELETONS`); a person's landmark rows follow that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_LANDMARKS = len(LANDMARK_NAMES)
LANDMARK_INDEX = {name: index for index, name in enumerate(LANDMARK_NAMES)}

# The skeleton MediaPipe draws (its POSE_CONNECTIONS), as pairs of landmark indices.
SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# COCO keypoint i is BlazePose landmark COCO_FROM_BLAZEPOSE[i]: the names are the same.
COCO_FROM_BLAZEPOSE: tuple[int, ...] = tuple(LANDMARK_INDEX[name] for name in COCO_KEYPOINT_NAMES)
# COCO's skeleton, 1-based as in COCO's person category.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip


@dataclass(frozen=True)
class Skeleton:
    """A keypoint set: its ``name`` (as results record it), the keypoints' names in order, the
    segments drawn between them (0-based index pairs), whether its models give world landmarks
    (3D, in metres), and ``min_visibility``, the visibility from which its models' keypoints are
    drawn as seen: BlazePose's visibility 0.5 (MediaPipe's drawing utilities), MoveNet's keypoint
    score 0.3 (MoveNet's own demos and TensorFlow.js pose-detection)."""

    name: str
    landmark_names: tuple[str, ...]
    segments: tuple[tuple[int, int], ...]
    has_world: bool
    min_visibility: float

    @property
    def size(self) -> int:
        return len(self.landmark_names)

    @cached_property
    def index(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.landmark_names)}


BLAZEPOSE = Skeleton("blazepose-33", LANDMARK_NAMES, SKELETON, has_world=True, min_visibility=0.5)
COCO = Skeleton(
    "coco-17",
    COCO_KEYPOINT_NAMES,
    tuple((a - 1, b - 1) for a, b in COCO_SKELETON),
    has_world=False,
    min_visibility=0.3,
)
SKELETONS = {skeleton.name: skeleton for skeleton in (BLAZEPOSE, COCO)}


def skeleton_of(landmark_count: int) -> Skeleton:
    """The keypoint set of a person with ``landmark_count`` landmarks (33: BlazePose's, 17: COCO's)."""
    for skeleton in SKELETONS.values():
        if skeleton.size == landmark_count:
            return skeleton
    raise ValueError(f"no keypoint set has {landmark_count} landmarks (BlazePose's has 33, COCO's 17)")
