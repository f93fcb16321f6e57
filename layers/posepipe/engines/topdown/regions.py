"""A person's region for BlazePose's landmark model: a rotated square in image pixels, from a
detector's box (upright) or from the previous landmarks (as MediaPipe tracks one person), and
the crop it gives (``cv2.warpPerspective``, as MediaPipe's ``ImageToTensorCalculator`` cuts it).

The rules are MediaPipe's (and :mod:`posepipe.engines.torch.roi`'s, where they are sourced):
from landmarks, the square is centred on auxiliary point 33 (the hips' midpoint), reaches twice
as far as point 34, is turned so that point 34 is straight above, and is then grown 1.25 times.
From a box, the square is centred on the box and its side is the box's longer side times
``BOX_SCALE``: the box holds the whole body, which the landmark model wants with a margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.person_boxes import PersonBox

ROI_SCALE = 1.25  # RectTransformationCalculator in the pose landmark graphs
BOX_SCALE = 1.25
TARGET_ANGLE = math.pi / 2  # AlignmentPointsRectsCalculator: point 34 straight above point 33
HIPS, BODY_TOP = 33, 34


@dataclass(frozen=True)
class Region:
    """A rotated square (or rectangle) in pixels: centre, width, height, rotation in radians."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0

    def box(self) -> tuple[float, float, float, float]:
        """The upright box around the region's corners."""
        corners = self.corners()
        return (
            float(corners[:, 0].min()),
            float(corners[:, 1].min()),
            float(corners[:, 0].max()),
            float(corners[:, 1].max()),
        )

    def corners(self) -> npt.NDArray[np.float32]:
        """``cv2.boxPoints`` of the region: bottom left, top left, top right, bottom right."""
        rect = ((self.x_center, self.y_center), (self.width, self.height), math.degrees(self.rotation))
        return np.asarray(cv2.boxPoints(rect), dtype=np.float32)


@dataclass(frozen=True)
class RegionLandmarks:
    """A pose network's answer for one region: ``points`` ``[N, 5]`` in image pixels (x, y, z
    scaled as x, visibility, presence; BlazePose's 33 landmarks and its 6 auxiliary points,
    MoveNet's 17 keypoints), ``world`` ``[33, 3]`` in metres (``[0, 3]`` from MoveNet), and the
    pose's ``presence``."""

    points: npt.NDArray[np.float32]
    world: npt.NDArray[np.float32]
    presence: float


def region_from_box(box: PersonBox, scale: float = BOX_SCALE) -> Region:
    return region_around((box.x0, box.y0, box.x1, box.y1), scale)


def region_around(box: tuple[float, float, float, float], scale: float = BOX_SCALE) -> Region:
    """The upright square centred on an (x0, y0, x1, y1) box, its side the box's longer side
    times ``scale``."""
    side = max(box[2] - box[0], box[3] - box[1]) * scale
    return Region((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side, side, 0.0)


def region_from_landmarks(points: npt.NDArray[np.floating]) -> Region:
    """The next region from a pose's landmarks in pixels (``[39, >= 2]``, auxiliary points 33, 34)."""
    x0, y0 = float(points[HIPS, 0]), float(points[HIPS, 1])
    x1, y1 = float(points[BODY_TOP, 0]), float(points[BODY_TOP, 1])
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
    angle = TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0)
    rotation = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
    return Region(x0, y0, side, side, rotation)


def crop(rgb: RGBImage, region: Region, size: int) -> npt.NDArray[np.float32]:
    """The region cut out of the image as a ``size`` x ``size`` float32 crop in [0, 1], edges
    replicated where it leaves the image."""
    return crop_pixels(rgb, region, size).astype(np.float32) / np.float32(255.0)


def crop_pixels(rgb: RGBImage, region: Region, size: int) -> npt.NDArray[np.uint8]:
    """The region cut out of the image as a ``size`` x ``size`` uint8 crop (bilinear), edges
    replicated where it leaves the image."""
    destination = np.array([[0, size], [0, 0], [size, 0], [size, size]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(region.corners(), destination)
    warped = cv2.warpPerspective(
        rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(warped, dtype=np.uint8)


def project(points: npt.NDArray[np.float32], region: Region) -> npt.NDArray[np.float32]:
    """Crop-normalised points to image pixels (``LandmarkProjectionCalculator``; z scaled as x)."""
    x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
    cos, sin = math.cos(region.rotation), math.sin(region.rotation)
    out = points.copy()
    out[:, 0] = (cos * x - sin * y) * region.width + region.x_center
    out[:, 1] = (sin * x + cos * y) * region.height + region.y_center
    out[:, 2] = points[:, 2] * region.width
    return out.astype(np.float32)
