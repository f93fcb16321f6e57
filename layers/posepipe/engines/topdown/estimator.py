"""The top-down engine: CenterNet finds every person, BlazePose's landmark network runs on each
person's region, regions with no person in them are dropped and duplicates suppressed.

For each box the detector gives (score at least ``min_score``), the landmark network runs twice:
once on the square around the box, and once on the region its own landmarks give (centred on
the hips, turned upright), which is the region MediaPipe's tracking would give it on the next
frame and fits the body better than a box does. A person is kept when the network's presence
score is above ``min_presence_confidence``; of two persons whose landmark boxes overlap by more
than ``MAX_DUPLICATE_IOU``, the less present one is dropped. VIDEO mode runs IMAGE mode on
each frame (ids come from :mod:`posepipe.postprocess.ids`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import numpy as np

from posepipe.assets.catalogue import CATALOGUE, resolve_model
from posepipe.assets.pose_model import model_info
from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode
from posepipe.engines.topdown.blazepose_landmarks import NUM_LANDMARKS, BlazePoseLandmarks, RegionLandmarks
from posepipe.engines.topdown.person_boxes import (
    DEFAULT_MIN_SCORE,
    CenterNetPersonDetector,
    PersonBox,
    suppress_duplicates,
)
from posepipe.engines.topdown.regions import region_from_box, region_from_landmarks
from posepipe.errors import EngineError
from posepipe.result import Person

MAX_DUPLICATE_IOU = 0.5


class TopDownPoseEstimator:
    """A :class:`posepipe.engines.base.PoseEstimator`: CenterNet, then BlazePose on each person."""

    def __init__(self, options: PoseEngineOptions) -> None:
        if options.running_mode is RunningMode.LIVE_STREAM:
            raise EngineError("the top-down engine has no LIVE_STREAM mode: use VIDEO mode")
        self.options = options
        bundle = resolve_model(options.model_path)
        self.model = model_info(bundle)
        self.detector_spec = CATALOGUE["centernet"]
        self.detector = CenterNetPersonDetector(self.detector_spec.built_path(), min_score=DEFAULT_MIN_SCORE)
        self.landmarks = BlazePoseLandmarks(bundle)
        self._last_timestamp: int | None = None

    def model_dict(self) -> dict[str, Any]:
        return {
            **self.model.to_dict(),
            "engine": "topdown",
            "detector": {
                "name": self.detector_spec.name,
                "sha256": self.detector_spec.sha256,
                "min_score": self.detector.min_score,
            },
            **self.options.settings_dict(),
        }

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode), most present first."""
        boxes = self.detector.detect(rgb)
        first = self.landmarks.estimate(rgb, [region_from_box(box) for box in boxes])
        found = [estimate for estimate in first if self._present(estimate)]
        second = self.landmarks.estimate(rgb, [region_from_landmarks(estimate.points) for estimate in found])
        return self._persons(boxes, [estimate for estimate in second if self._present(estimate)])

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (every frame detected afresh, for now)."""
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"timestamps must increase: {timestamp_ms} after {self._last_timestamp}")
        self._last_timestamp = timestamp_ms
        return self.detect(rgb)

    def _present(self, estimate: RegionLandmarks) -> bool:
        return estimate.presence > self.options.min_presence_confidence

    def _persons(self, boxes: list[PersonBox], estimates: list[RegionLandmarks]) -> list[Person]:
        extents = []
        for estimate in estimates:
            xy = estimate.points[:NUM_LANDMARKS, :2]
            extents.append(
                (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
            )
        kept = suppress_duplicates(extents, [estimate.presence for estimate in estimates], MAX_DUPLICATE_IOU)
        persons = [
            Person.from_landmarks(
                np.asarray(estimates[i].points[:NUM_LANDMARKS]), np.asarray(estimates[i].world)
            )
            for i in kept
        ]
        return persons[: self.options.max_poses]

    def close(self) -> None:
        return None

    def __enter__(self) -> TopDownPoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
