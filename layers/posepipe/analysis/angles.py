"""Joint and segment angles, with the conventions of Sports2D (and Pose2Sim, where its angle table
lives), so that posepipe's angles read as those tools' do.

Every angle is in degrees. In the picture (2D, image pixels, y pointing down) the person is first
turned to face right, as Sports2D does ("visible side: auto"): when their toes point left (the
x offset from heel to toe, summed over both feet, is negative), x is mirrored. Then:

=================  ==========================================  =======================================
angle              points                                      zero, and sign
=================  ==========================================  =======================================
``*_ankle``        knee, ankle, toe (foot index), heel          0 with the foot at a right angle to the
                                                                shank; positive in dorsiflexion
``*_knee``         ankle, knee, hip                             0 with a straight leg; positive bent
``*_hip``          knee, hip; mid-hip, mid-shoulder             0 with the thigh along the trunk;
                                                                positive in flexion (thigh forward)
``*_shoulder``     elbow, shoulder; mid-hip, mid-shoulder       0 with the arm along the trunk;
                                                                positive in flexion (arm forward)
``*_elbow``        wrist, elbow, shoulder                       0 with a straight arm; positive bent
``*_wrist``        elbow, wrist, index finger                   0 with the hand along the forearm;
                                                                positive in flexion
``trunk``          mid-shoulder, mid-hip                        the trunk's angle to the horizontal,
                                                                anticlockwise: 90 upright, below 90
                                                                leaning forward
``pelvis``         left hip, right hip                          the hip line's angle to the
                                                                horizontal, anticlockwise, in [-90, 90)
=================  ==========================================  =======================================

The computation is Sports2D's: with three points a, b, c the angle is from (c - b) to (a - b);
with four, from (d - c) to (b - a); with two, the segment (a - b) against the horizontal; then
an offset is added and the sign set (:class:`AngleDefinition`), and the result wrapped into
[-180, 180) (``pelvis``: [-90, 90)). Where posepipe differs: Sports2D's left wrist takes its points
in the order elbow, index, wrist (the angle at the index finger); posepipe measures both wrists
at the wrist. Sports2D calls a person whose toes are not seen left-facing; posepipe leaves them
as they are (right-facing), as Sports2D does for keypoint sets without feet.

In 3D (world landmarks, metres: x right, y down, z away from the camera, origin at the hips) the
joint angles use the same points and zero. The hinge joints (knee, elbow, wrist) are 180 degrees
minus the angle between their two segments, unsigned: flexion whatever the plane it happens in
(a hyperextension reads as a small flexion). Hip, shoulder and ankle are measured in the body's
sagittal plane, with their sign: both vectors are projected on the plane perpendicular to the
hip line (left hip to right hip) and the angle is signed about the direction of the right hip.
For a person seen from their right side these are the 2D angles exactly; for anyone else they
are the angles in the body, which foreshortening does not change. ``trunk`` and ``pelvis`` are
2D only: world landmarks carry no ground or gravity direction.

An angle is NaN where one of its points is below the visibility threshold (the keypoint set's
own: 0.5 for BlazePose, 0.3 for MoveNet's scores), where a vector has no length, or where its
keypoint set lacks a point (COCO's 17 have no toes, heels or fingers: no ankle or wrist angles).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Space = Literal["image", "world"]

# Points that are not landmarks: midpoints of a pair.
MIDPOINTS = {
    "mid_hip": ("left_hip", "right_hip"),
    "mid_shoulder": ("left_shoulder", "right_shoulder"),
}


@dataclass(frozen=True)
class AngleDefinition:
    """One angle: its ``points`` (landmark names or :data:`MIDPOINTS`), ``offset`` added in degrees
    and ``sign`` applied (Sports2D's), the ``wrap`` period (360: into [-180, 180); 180: into
    [-90, 90)), whether it is measured in 3D too, and its convention in words."""

    name: str
    points: tuple[str, ...]
    offset: float
    sign: float
    convention: str
    wrap: float = 360.0
    in_3d: bool = True
    hinge: bool = False  # in 3D: 180 minus the included angle, unsigned (knee, elbow, wrist)

    @property
    def is_segment(self) -> bool:
        return len(self.points) == 2


def _sides() -> list[AngleDefinition]:
    angles = []
    for side in ("right", "left"):
        angles += [
            AngleDefinition(
                f"{side}_ankle", (f"{side}_knee", f"{side}_ankle", f"{side}_foot_index", f"{side}_heel"),
                90.0, 1.0, "0: foot at a right angle to the shank; positive: dorsiflexion",
            ),
            AngleDefinition(
                f"{side}_knee", (f"{side}_ankle", f"{side}_knee", f"{side}_hip"),
                -180.0, 1.0, "0: straight leg; positive: flexion", hinge=True,
            ),
            AngleDefinition(
                f"{side}_hip", (f"{side}_knee", f"{side}_hip", "mid_hip", "mid_shoulder"),
                0.0, -1.0, "0: thigh along the trunk; positive: flexion (thigh forward)",
            ),
            AngleDefinition(
                f"{side}_shoulder", (f"{side}_elbow", f"{side}_shoulder", "mid_hip", "mid_shoulder"),
                0.0, -1.0, "0: arm along the trunk; positive: flexion (arm forward)",
            ),
            AngleDefinition(
                f"{side}_elbow", (f"{side}_wrist", f"{side}_elbow", f"{side}_shoulder"),
                180.0, -1.0, "0: straight arm; positive: flexion", hinge=True,
            ),
            AngleDefinition(
                f"{side}_wrist", (f"{side}_elbow", f"{side}_wrist", f"{side}_index"),
                -180.0, 1.0, "0: hand along the forearm; positive: flexion", hinge=True,
            ),
        ]  # fmt: skip
    return angles


ANGLES: tuple[AngleDefinition, ...] = (
    *_sides(),
    AngleDefinition(
        "trunk", ("mid_shoulder", "mid_hip"), 0.0, -1.0,
        "angle to the horizontal, anticlockwise: 90 upright, below 90 leaning forward", in_3d=False,
    ),
    AngleDefinition(
        "pelvis", ("left_hip", "right_hip"), 0.0, -1.0,
        "hip line's angle to the horizontal, anticlockwise, in [-90, 90)", wrap=180.0, in_3d=False,
    ),
)  # fmt: skip
ANGLE_NAMES: tuple[str, ...] = tuple(angle.name for angle in ANGLES)
ANGLE_BY_NAME: dict[str, AngleDefinition] = {angle.name: angle for angle in ANGLES}
# The feet that tell which way a person faces in the picture (Sports2D's visible side "auto").
FACING_POINTS = ("right_foot_index", "right_heel", "left_foot_index", "left_heel")


def angle_series(
    points: npt.ArrayLike,
    visibility: npt.ArrayLike,
    index: Mapping[str, int],
    space: Space,
    min_visibility: float,
    names: tuple[str, ...] = ANGLE_NAMES,
) -> dict[str, FloatArray]:
    """Each angle of ``names`` over frames, in degrees (NaN where it cannot be measured).

    ``points``: (frames, N, 2) image pixels for ``space="image"``, (frames, N, 3) world metres for
    ``"world"``; ``visibility``: (frames, N); ``index``: landmark name -> column of ``points``.
    """
    xyz = np.asarray(points, dtype=np.float64)
    seen = np.nan_to_num(np.asarray(visibility, dtype=np.float64), nan=0.0) >= min_visibility
    xyz = np.where(seen[..., None], xyz, np.nan)
    if space == "image":
        xyz = _facing_right(xyz, index)
    series: dict[str, FloatArray] = {}
    for name in names:
        definition = ANGLE_BY_NAME[name]
        coordinates = [point_series(xyz, index, point) for point in definition.points]
        if (space == "world" and not definition.in_3d) or any(c is None for c in coordinates):
            series[name] = np.full(len(xyz), np.nan)
        elif space == "world" and definition.hinge:
            a, b, c = (c for c in coordinates if c is not None)
            series[name] = 180.0 - _included_angle(a - b, c - b)
        else:
            lateral = _lateral(xyz, index) if space == "world" else None
            raw = _raw_angle([c for c in coordinates if c is not None], lateral)
            series[name] = _wrapped((raw + definition.offset) * definition.sign, definition.wrap)
    return series


def point_series(points: FloatArray, index: Mapping[str, int], name: str) -> FloatArray | None:
    """A landmark (or a :data:`MIDPOINTS` midpoint) over frames, (T, D), from ``points`` (T, N,
    D); None where the keypoint set has no such point."""
    if name in MIDPOINTS:
        first, second = MIDPOINTS[name]
        if first not in index or second not in index:
            return None
        midpoint: FloatArray = (points[:, index[first]] + points[:, index[second]]) / 2.0
        return midpoint
    return points[:, index[name]] if name in index else None


def _facing_right(xy: FloatArray, index: Mapping[str, int]) -> FloatArray:
    """The image points with x mirrored on the frames where the person faces left (toes left of
    heels, summed over both feet); frames whose feet are not all seen are left as they are."""
    if any(name not in index for name in FACING_POINTS):
        return xy
    right_toe, right_heel, left_toe, left_heel = (xy[:, index[name], 0] for name in FACING_POINTS)
    orientation = (right_toe - right_heel) + (left_toe - left_heel)
    left = np.nan_to_num(orientation, nan=0.0) < 0
    mirrored = xy.copy()
    mirrored[left, :, 0] = -mirrored[left, :, 0]
    return mirrored


def _lateral(xyz: FloatArray, index: Mapping[str, int]) -> FloatArray:
    """The unit vector from the left hip to the right hip, per frame (NaN where not seen)."""
    axis = xyz[:, index["right_hip"]] - xyz[:, index["left_hip"]]
    length = np.linalg.norm(axis, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(length > 1e-9, axis / length, np.nan)
    return result


def _raw_angle(points: list[FloatArray], lateral: FloatArray | None) -> FloatArray:
    """Sports2D's ``points_to_angles`` over frames, before offset and sign: two points, the
    segment against the horizontal; three, from (c - b) to (a - b); four, from (d - c) to (b - a).
    In 3D the vectors are projected on the plane perpendicular to ``lateral`` and the angle is
    signed about it."""
    if len(points) == 2:
        u = points[0] - points[1]
        length = np.linalg.norm(u, axis=1)
        return np.where(length > 1e-9, np.degrees(np.arctan2(u[:, 1], u[:, 0])), np.nan)
    if len(points) == 3:
        u, v = points[0] - points[1], points[2] - points[1]
    else:
        u, v = points[1] - points[0], points[3] - points[2]
    if lateral is None:  # 2D: -atan2(u x v, u . v)
        cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
        dot = u[:, 0] * v[:, 0] + u[:, 1] * v[:, 1]
        valid = (np.hypot(u[:, 0], u[:, 1]) > 1e-9) & (np.hypot(v[:, 0], v[:, 1]) > 1e-9)
        return np.where(valid, -np.degrees(np.arctan2(cross, dot)), np.nan)
    u = u - np.einsum("ij,ij->i", u, lateral)[:, None] * lateral
    v = v - np.einsum("ij,ij->i", v, lateral)[:, None] * lateral
    signed = np.einsum("ij,ij->i", np.cross(u, v), lateral)
    dot = np.einsum("ij,ij->i", u, v)
    valid = (np.linalg.norm(u, axis=1) > 1e-9) & (np.linalg.norm(v, axis=1) > 1e-9)
    return np.where(valid, np.degrees(np.arctan2(signed, dot)), np.nan)


def _included_angle(u: FloatArray, v: FloatArray) -> FloatArray:
    """The angle between two 3D vectors over frames, 0-180 degrees (atan2 of |u x v| and u . v:
    accurate near 0 and 180, where acos is not); NaN where a vector has no length."""
    cross = np.linalg.norm(np.cross(u, v), axis=1)
    dot = np.einsum("ij,ij->i", u, v)
    valid = (np.linalg.norm(u, axis=1) > 1e-9) & (np.linalg.norm(v, axis=1) > 1e-9)
    return np.where(valid, np.degrees(np.arctan2(cross, dot)), np.nan)


def _wrapped(degrees: FloatArray, period: float) -> FloatArray:
    """Into [-period/2, period/2), as Sports2D wraps."""
    half = period / 2.0
    result: FloatArray = (degrees + half) % period - half
    return result


def conventions() -> list[dict[str, Any]]:
    """Every angle's points and convention, as the exports document them."""
    return [
        {"angle": angle.name, "points": list(angle.points), "convention": angle.convention, "3d": angle.in_3d}
        for angle in ANGLES
    ]
