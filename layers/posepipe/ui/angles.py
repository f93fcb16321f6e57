"""Joint angles of a person: elbows, shoulders, hips and knees, left and right, in degrees.

Each angle is at a joint between the two segments that meet there: the elbow between upper arm
and forearm (180 = a straight arm), the shoulder between torso side and upper arm (0 = arm down
along the body, 90 = arm out sideways or forwards), the hip between torso side and thigh
(180 = standing straight), the knee between thigh and shin (180 = a straight leg).

From world landmarks (metres, 3D: the true angle in the body) or image landmarks (pixels, 2D:
the angle as seen in the picture, which foreshortening changes). An angle whose three landmarks
are not all visible enough, or whose segments have no length, is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from posepipe.result import Person
from posepipe.skeleton import LANDMARK_INDEX, skeleton_of

Space = Literal["world", "image"]
DEFAULT_MIN_VISIBILITY = 0.5


@dataclass(frozen=True)
class Joint:
    """The angle at ``vertex`` between the segments to ``first`` and to ``second`` (landmark names)."""

    name: str
    first: str
    vertex: str
    second: str


def _joints() -> tuple[Joint, ...]:
    joints = []
    for side in ("left", "right"):
        joints += [
            Joint(f"{side}_elbow", f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"),
            Joint(f"{side}_shoulder", f"{side}_hip", f"{side}_shoulder", f"{side}_elbow"),
            Joint(f"{side}_hip", f"{side}_shoulder", f"{side}_hip", f"{side}_knee"),
            Joint(f"{side}_knee", f"{side}_hip", f"{side}_knee", f"{side}_ankle"),
        ]
    return tuple(joints)


JOINTS: tuple[Joint, ...] = _joints()
JOINT_NAMES: tuple[str, ...] = tuple(joint.name for joint in JOINTS)


def joint_angles(
    person: Person, space: Space = "world", min_visibility: float | None = None
) -> dict[str, float | None]:
    """Every joint's angle (:data:`JOINT_NAMES` order) in degrees, ``None`` where not visible enough.

    ``space="world"`` uses the 3D world landmarks (all ``None`` from a model without them),
    ``"image"`` the 2D pixel positions; visibility always comes from the image landmarks (the
    world landmarks carry none), at least ``min_visibility`` (default: the keypoint set's own,
    0.5 for BlazePose, 0.3 for MoveNet's scores).
    """
    if space == "world" and not len(person.world_landmarks):  # a model without them (MoveNet)
        return dict.fromkeys(JOINT_NAMES)
    points = person.world_landmarks[:, :3] if space == "world" else person.landmarks[:, :2]
    skeleton = skeleton_of(len(person.landmarks))
    threshold = skeleton.min_visibility if min_visibility is None else min_visibility
    series = joint_angle_series(points[None], person.landmarks[None, :, 3], threshold, skeleton.index)
    return {name: None if np.isnan(values[0]) else float(values[0]) for name, values in series.items()}


def person_joint_angles(
    person: Mapping[str, Any], space: Space = "world", min_visibility: float | None = None
) -> dict[str, float | None]:
    """:func:`joint_angles` of a person of a ``posepipe.pose/2`` result (its JSON object)."""
    return joint_angles(Person.from_dict(dict(person)), space, min_visibility)


def joint_angle_series(
    points: npt.NDArray[np.floating[Any]],
    visibility: npt.NDArray[np.floating[Any]],
    min_visibility: float = DEFAULT_MIN_VISIBILITY,
    index: Mapping[str, int] = LANDMARK_INDEX,
) -> dict[str, npt.NDArray[np.float64]]:
    """Every joint's angle over frames: ``points`` (frames, N, 2 or 3), ``visibility`` (frames, N),
    landmarks found by name in ``index`` (BlazePose's 33 unless told; COCO's 17 have the same
    names for the joints measured here).

    Degrees (0 to 180) per frame; NaN where one of the joint's three landmarks is below
    ``min_visibility``, a segment has no length, or a coordinate is not finite.
    """
    points = np.asarray(points, dtype=np.float64)
    seen = np.nan_to_num(np.asarray(visibility, dtype=np.float64), nan=0.0) >= min_visibility
    series: dict[str, npt.NDArray[np.float64]] = {}
    for joint in JOINTS:
        i, j, k = index[joint.first], index[joint.vertex], index[joint.second]
        a = points[:, i] - points[:, j]
        b = points[:, k] - points[:, j]
        if points.shape[2] == 3:
            cross = np.linalg.norm(np.cross(a, b), axis=1)
        else:
            cross = np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        dot = np.einsum("ij,ij->i", a, b)
        # atan2 of |a x b| and a . b: accurate near 0 and 180 degrees, where acos of the cosine is not.
        lengths = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        valid = seen[:, i] & seen[:, j] & seen[:, k] & (lengths >= 1e-12) & np.isfinite(cross + dot)
        series[joint.name] = np.where(valid, np.degrees(np.arctan2(cross, dot)), np.nan)
    return series
