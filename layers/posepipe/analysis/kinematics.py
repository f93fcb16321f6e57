"""Segment lengths and the speed of a person's hips.

Segment lengths are medians over the frames where both ends are seen, in pixels (the picture)
and, where the model gives world landmarks, in metres (the body).

The hips' speed needs a position in metres over time, which world landmarks do not give: they
are centred on the hips in every frame. posepipe therefore measures the hips' midpoint in the
picture and converts pixels to metres with the person's own scale: the median, over frames and
the segments of :data:`SCALE_SEGMENTS`, of each segment's length in metres (world landmarks)
over its length in pixels. This assumes the person stays at about one distance from the camera
over the track and moves across the picture rather than towards the camera; a segment seen
foreshortened makes the scale, and the speed, too large. Where the model gives no world
landmarks there is no speed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from posepipe.analysis.angles import point_series

FloatArray = npt.NDArray[np.float64]


def _segments() -> dict[str, tuple[str, str]]:
    segments: dict[str, tuple[str, str]] = {}
    for side in ("right", "left"):
        segments |= {
            f"{side}_upper_arm": (f"{side}_shoulder", f"{side}_elbow"),
            f"{side}_forearm": (f"{side}_elbow", f"{side}_wrist"),
            f"{side}_thigh": (f"{side}_hip", f"{side}_knee"),
            f"{side}_shank": (f"{side}_knee", f"{side}_ankle"),
            f"{side}_foot": (f"{side}_heel", f"{side}_foot_index"),
        }
    segments |= {
        "shoulders": ("left_shoulder", "right_shoulder"),
        "hips": ("left_hip", "right_hip"),
        "trunk": ("mid_shoulder", "mid_hip"),
    }
    return segments


SEGMENTS: dict[str, tuple[str, str]] = _segments()
SCALE_SEGMENTS = ("right_thigh", "left_thigh", "right_shank", "left_shank", "trunk")


def segment_length_series(points: FloatArray, index: Mapping[str, int]) -> dict[str, FloatArray]:
    """Each segment's length over frames (NaN where an end is missing), in ``points``' units."""
    lengths = {}
    for name, (first, second) in SEGMENTS.items():
        a, b = point_series(points, index, first), point_series(points, index, second)
        if a is not None and b is not None:
            lengths[name] = np.linalg.norm(a - b, axis=1)
    return lengths


def median_lengths(series: Mapping[str, FloatArray]) -> dict[str, float | None]:
    """The median of each length series over its finite values (None where it has none)."""
    return {
        name: float(np.median(values[np.isfinite(values)])) if np.isfinite(values).any() else None
        for name, values in series.items()
    }


def metres_per_pixel(image_xy: FloatArray, world: FloatArray, index: Mapping[str, int]) -> float | None:
    """The person's scale: the median ratio of world to picture lengths over
    :data:`SCALE_SEGMENTS` and frames (segments under 2 pixels left out); None without any."""
    pixels, metres = segment_length_series(image_xy, index), segment_length_series(world, index)
    ratios = []
    for name in SCALE_SEGMENTS:
        if name in pixels and name in metres:
            usable = np.isfinite(pixels[name]) & np.isfinite(metres[name]) & (pixels[name] >= 2.0)
            ratios.append(metres[name][usable] / pixels[name][usable])
    values = np.concatenate(ratios) if ratios else np.empty(0)
    return float(np.median(values)) if len(values) else None


def hip_speed(image_xy: FloatArray, t: FloatArray, scale: float, index: Mapping[str, int]) -> FloatArray:
    """The speed of the hips' midpoint in metres per second over frames (NaN where unknown): its
    picture position's rate of change (central differences) times ``scale`` metres per pixel."""
    hips = point_series(image_xy, index, "mid_hip")
    if hips is None or len(t) < 2:
        return np.full(len(t), np.nan)
    velocity = np.gradient(hips, t, axis=0)
    speed: FloatArray = np.linalg.norm(velocity, axis=1) * scale
    return speed
