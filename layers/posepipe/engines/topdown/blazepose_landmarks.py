"""BlazePose's landmark network on persons' regions, run by LiteRT (the TFLite runtime the
network was made for, with XNNPACK): a :class:`posepipe.engines.parts.LandmarkModel` over RGB
images and :class:`~posepipe.engines.topdown.regions.Region` lists.

Decoding follows MediaPipe's Tasks graph as :mod:`posepipe.engines.torch.landmark_decoding`
documents it (with its sources): 39 points in crop pixels, visibility and presence through a
sigmoid, each point refined from its heatmap (7x7 window, sigmoid weights, when the largest is at
least 0.5), projected back through the region's rotation and size; world landmarks rotated by
the region's rotation; the pose's presence score thresholded (present iff above).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.regions import Region, RegionLandmarks, crop, project, region_from_landmarks
from posepipe.skeleton import BLAZEPOSE, Skeleton

LANDMARK_INPUT = 256
NUM_POINTS = 39
NUM_LANDMARKS = 33
HEATMAP_SIZE = 64
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
LANDMARKS_MEMBER = "pose_landmarks_detector.tflite"


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    result: npt.NDArray[np.float32] = (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # no overflow
    return result


class BlazePoseLandmarks:
    """The landmark network of a MediaPipe pose bundle (lite, full or heavy) on LiteRT."""

    skeleton: Skeleton = BLAZEPOSE
    presence_threshold: float | None = None  # the engine's min_presence_confidence

    def __init__(self, bundle: str | Path, *, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with zipfile.ZipFile(bundle) as archive:
            network = archive.read(LANDMARKS_MEMBER)
        self._interpreter = Interpreter(model_content=network, num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._interpreter.allocate_tensors()
        by_shape = {tuple(o["shape"][1:]): o["index"] for o in self._interpreter.get_output_details()}
        self._landmarks = by_shape[(NUM_POINTS * 5,)]
        self._presence = by_shape[(1,)]
        self._heatmap = by_shape[(HEATMAP_SIZE, HEATMAP_SIZE, NUM_POINTS)]
        self._world = by_shape[(NUM_POINTS * 3,)]

    def estimate(self, rgb: RGBImage, regions: list[Region]) -> list[RegionLandmarks]:
        """The landmarks of the person in each region of one image (one network run per region:
        on the CPU batching gains nothing, measured)."""
        return [self._one(rgb, region) for region in regions]

    @staticmethod
    def next_region(estimate: RegionLandmarks) -> Region:
        """The region the person's landmarks give for the next frame (MediaPipe's tracking)."""
        return region_from_landmarks(estimate.points)

    def _one(self, rgb: RGBImage, region: Region) -> RegionLandmarks:
        interpreter = self._interpreter
        interpreter.set_tensor(self._input, crop(rgb, region, LANDMARK_INPUT)[None])
        interpreter.invoke()
        raw = interpreter.get_tensor(self._landmarks).reshape(NUM_POINTS, 5)
        heatmap = interpreter.get_tensor(self._heatmap)[0]
        presence = float(interpreter.get_tensor(self._presence).reshape(-1)[0])
        world = interpreter.get_tensor(self._world).reshape(NUM_POINTS, 3)[:NUM_LANDMARKS]
        points = np.concatenate([raw[:, :3] / LANDMARK_INPUT, _sigmoid(raw[:, 3:5])], axis=1)
        points = refine_from_heatmap(points, heatmap)
        return region_landmarks(points, world, presence, region)


def region_landmarks(
    points: npt.NDArray[np.float32], world: npt.NDArray[np.float32], presence: float, region: Region
) -> RegionLandmarks:
    """The network's decoded answer for ``region`` (``points`` ``[39, 5]`` normalised to the crop
    and refined, ``world`` ``[33, 3]`` in the crop's orientation) in the image's pixels."""
    return RegionLandmarks(project(points, region), rotate_world(world, region.rotation), presence)


def refine_from_heatmap(
    points: npt.NDArray[np.float32], heatmap: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``RefineLandmarksFromHeatMap``: ``points`` ``[39, >= 2]`` crop-normalised, ``heatmap``
    ``[64, 64, 39]``."""
    height, width = heatmap.shape[:2]
    offset = (HEATMAP_KERNEL - 1) // 2
    refined = points.copy()
    for index in range(points.shape[0]):
        col, row = int(points[index, 0] * width), int(points[index, 1] * height)  # C++ truncation
        if not (0 <= col < width and 0 <= row < height):
            continue
        r0, r1 = max(0, row - offset), min(height, row + offset + 1)
        c0, c1 = max(0, col - offset), min(width, col + offset + 1)
        weight = _sigmoid(heatmap[r0:r1, c0:c1, index])
        total = float(weight.sum())
        if total <= 0 or float(weight.max()) < HEATMAP_MIN_CONFIDENCE:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        refined[index, 0] = float((weight * cols).sum()) / width / total
        refined[index, 1] = float((weight * rows).sum()) / height / total
    return refined


def rotate_world(world: npt.NDArray[np.float32], rotation: float) -> npt.NDArray[np.float32]:
    cos, sin = math.cos(rotation), math.sin(rotation)
    out = world.copy()
    out[:, 0] = cos * world[:, 0] - sin * world[:, 1]
    out[:, 1] = sin * world[:, 0] + cos * world[:, 1]
    return out.astype(np.float32)
