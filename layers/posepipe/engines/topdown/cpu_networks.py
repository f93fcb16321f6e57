"""The top-down engine's networks on the CPU: the person detector and MoveNet on ONNX Runtime,
BlazePose's landmark network on LiteRT (the TFLite runtime it was made for, with XNNPACK).

Frames are NumPy RGB arrays as they come; each network runs one region at a time (on the CPU,
batching gains nothing, measured). :class:`CpuTopDownNetworks` is not thread-safe (LiteRT's
interpreters are not): one engine per thread or process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.blazepose_landmarks import BlazePoseLandmarks
from posepipe.engines.topdown.models import TopDownModels
from posepipe.engines.topdown.movenet import MoveNetKeypoints
from posepipe.engines.topdown.person_boxes import (
    DEFAULT_MIN_SCORE,
    CenterNetPersonDetector,
    NanoDetPersonDetector,
    PersonBox,
)
from posepipe.engines.topdown.regions import Region
from posepipe.engines.topdown.steps import Role

CPU_RUNTIMES = {
    "detector": "onnxruntime",
    "finder": "litert",
    "second_opinion": "onnxruntime",
    "pose": "onnxruntime",
}


class CpuTopDownNetworks:
    """A :class:`posepipe.engines.topdown.driver.TopDownNetworks` on ONNX Runtime and LiteRT."""

    def __init__(
        self, models: TopDownModels, *, threads: int = 1, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.models = models
        detector_class = NanoDetPersonDetector if models.detector == "nanodet" else CenterNetPersonDetector
        self.detector = detector_class(models.detector_path, threads=threads, min_score=min_score)
        self.min_score = min_score
        self.second_opinion = MoveNetKeypoints(models.second_opinion_path, threads=threads)
        self.finder = BlazePoseLandmarks(models.finder_path, threads=threads)
        self.pose = (
            MoveNetKeypoints(models.pose_path, threads=threads) if models.pose_path is not None else None
        )

    def prepare(self, images: Sequence[RGBImage]) -> list[RGBImage]:
        return [np.ascontiguousarray(image) for image in images]

    def find_persons(self, frames: Sequence[RGBImage]) -> list[list[PersonBox]]:
        return [self.detector.detect(frame) for frame in frames]

    def estimate(
        self, role: Role, frames: Sequence[RGBImage], regions: Sequence[Sequence[Region]]
    ) -> list[list[Any]]:
        network: BlazePoseLandmarks | MoveNetKeypoints
        if role == "finder":
            network = self.finder
        elif role == "second_opinion":
            network = self.second_opinion
        elif self.pose is not None:
            network = self.pose
        else:
            raise ValueError("this engine's pose model is not a network of its own")
        return [
            list(network.estimate(frame, list(boxes))) for frame, boxes in zip(frames, regions, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        runtimes = {k: v for k, v in CPU_RUNTIMES.items() if k != "pose" or self.pose is not None}
        return {"device": "cpu", "runtime": runtimes}
