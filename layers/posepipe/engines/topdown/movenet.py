"""MoveNet SinglePose (``movenet-lightning``, 192x192; ``movenet-thunder``, 256x256) on persons'
regions, on ONNX Runtime: COCO's 17 keypoints of the one person in each region.

The network takes the region's pixels as int32 values 0-255 (``[1, size, size, 3]``) and gives
``[1, 1, 17, 3]``: each keypoint's y and x as fractions of the crop, and its score in [0, 1].
The points are projected back through the region to the image's pixels.

posepipe uses MoveNet twice: as a pose model of its own (17 keypoints), and as a second opinion
in the top-down engine, where a person the detector and BlazePose agree on is kept only when
MoveNet, a network trained on other data, also sees a body there
(:data:`MIN_SECOND_OPINION_SCORE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.onnx_session import onnx_session
from posepipe.engines.topdown.regions import Region, RegionLandmarks, crop_pixels, project, region_around
from posepipe.result import body_box
from posepipe.skeleton import COCO, Skeleton

NUM_KEYPOINTS = 17

# The mean keypoint score MoveNet Lightning gives a region before posepipe calls it a person.
# Measured on the labelled pictures (tests/fixtures/labels, bench/recall.py): every labelled
# person the detector and BlazePose found scored 0.26 or more; the things they took for persons
# (the pictograms on messi5.jpg's advertising boards, a sign post in vtest.avi) scored 0.07-0.14.
MIN_SECOND_OPINION_SCORE = 0.2
# Keypoints MoveNet scores below this are guesses: the region for the next frame leaves them out
# (0.3 is the threshold of MoveNet's own demos and of TensorFlow.js pose-detection's tracker).
MIN_KEYPOINT_SCORE = 0.3


@dataclass(frozen=True)
class RegionKeypoints:
    """MoveNet's answer for one region: ``points`` ``[17, 3]``, x and y in image pixels and the
    keypoint's score."""

    points: npt.NDArray[np.float32]

    @property
    def score(self) -> float:
        """The mean keypoint score."""
        return float(self.points[:, 2].mean())


class MoveNetKeypoints:
    """A MoveNet SinglePose network (ONNX) on regions of RGB images."""

    def __init__(self, model_path: str | Path, *, threads: int = 1) -> None:
        self.session, self._input = onnx_session(model_path, threads)
        self.input_size = int(self.session.get_inputs()[0].shape[1])

    def estimate(self, rgb: RGBImage, regions: list[Region]) -> list[RegionKeypoints]:
        """The keypoints of the person in each region of one image."""
        return [self._one(rgb, region) for region in regions]

    def _one(self, rgb: RGBImage, region: Region) -> RegionKeypoints:
        pixels = crop_pixels(rgb, region, self.input_size).astype(np.int32)[None]
        raw = self.session.run(None, {self._input: pixels})[0]
        return region_keypoints(raw, region)


def region_keypoints(raw: npt.NDArray[np.float32], region: Region) -> RegionKeypoints:
    """MoveNet's output for one crop (``[1, 1, 17, 3]``: y, x as fractions of the crop, score)
    as keypoints in the image's pixels."""
    rows = raw.reshape(NUM_KEYPOINTS, 3)
    crop_xy = np.stack([rows[:, 1], rows[:, 0], np.zeros(NUM_KEYPOINTS, np.float32)], axis=1)
    image_xy = project(crop_xy.astype(np.float32), region)
    points = np.concatenate([image_xy[:, :2], rows[:, 2:3]], axis=1).astype(np.float32)
    return RegionKeypoints(points)


class MoveNetLandmarks:
    """MoveNet as the top-down engine's pose network: its 17 keypoints as landmark rows (x, y,
    z = 0, visibility = presence = the keypoint's score), no world landmarks, and the pose's
    presence the mean keypoint score (kept from :data:`MIN_SECOND_OPINION_SCORE`)."""

    skeleton: Skeleton = COCO
    presence_threshold: float | None = MIN_SECOND_OPINION_SCORE

    def __init__(self, network: MoveNetKeypoints) -> None:
        self.network = network

    def estimate(self, rgb: RGBImage, regions: list[Region]) -> list[RegionLandmarks]:
        return [self.pose(keypoints) for keypoints in self.network.estimate(rgb, regions)]

    @staticmethod
    def pose(keypoints: RegionKeypoints) -> RegionLandmarks:
        """MoveNet's answer for a region as landmark rows."""
        points = np.zeros((NUM_KEYPOINTS, 5), np.float32)
        points[:, :2] = keypoints.points[:, :2]
        points[:, 3] = points[:, 4] = keypoints.points[:, 2]
        return RegionLandmarks(points, np.zeros((0, 3), np.float32), keypoints.score)

    @staticmethod
    def next_region(estimate: RegionLandmarks) -> Region:
        """The upright square around the body's box of the keypoints MoveNet is sure of (all of
        them when it is sure of fewer than two), grown as a detector's box is
        (:data:`~posepipe.engines.topdown.regions.BOX_SCALE`)."""
        sure = estimate.points[estimate.points[:, 4] >= MIN_KEYPOINT_SCORE, :2]
        xy = sure if len(sure) >= 2 else estimate.points[:, :2]
        extent = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
        return region_around(body_box(extent))
