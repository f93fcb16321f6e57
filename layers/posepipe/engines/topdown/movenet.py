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
from posepipe.engines.topdown.regions import Region, crop_pixels, project

NUM_KEYPOINTS = 17

# The mean keypoint score MoveNet Lightning gives a region before posepipe calls it a person.
# Measured on the labelled pictures (tests/fixtures/labels, bench/recall.py): every labelled
# person the detector and BlazePose found scored 0.26 or more; the things they took for persons
# (the pictograms on messi5.jpg's advertising boards, a sign post in vtest.avi) scored 0.07-0.14.
MIN_SECOND_OPINION_SCORE = 0.2


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
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        entry = self.session.get_inputs()[0]
        self._input = entry.name
        self.input_size = int(entry.shape[1])

    def estimate(self, rgb: RGBImage, regions: list[Region]) -> list[RegionKeypoints]:
        """The keypoints of the person in each region of one image."""
        return [self._one(rgb, region) for region in regions]

    def _one(self, rgb: RGBImage, region: Region) -> RegionKeypoints:
        pixels = crop_pixels(rgb, region, self.input_size).astype(np.int32)[None]
        raw = self.session.run(None, {self._input: pixels})[0].reshape(NUM_KEYPOINTS, 3)
        crop_xy = np.stack([raw[:, 1], raw[:, 0], np.zeros(NUM_KEYPOINTS, np.float32)], axis=1)
        image_xy = project(crop_xy.astype(np.float32), region)
        points = np.concatenate([image_xy[:, :2], raw[:, 2:3]], axis=1).astype(np.float32)
        return RegionKeypoints(points)
