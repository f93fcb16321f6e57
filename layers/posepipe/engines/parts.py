"""The parts a top-down pose engine is made of, each named for what it does.

A **person detector** finds the people in whole images and gives a region for each; a
**landmark model** estimates one person's landmarks from the region of the image they are in;
a **region tracker**, in VIDEO mode, carries each tracked person's region from one frame to the
next (from their landmarks), and asks the detector only while fewer people than wanted are
tracked. An engine composes one of each; :class:`posepipe.engines.base.PoseEstimator` is what it
offers the rest of posepipe, whatever its parts.

The parts are generic in what they exchange (images, regions, landmarks), so each engine keeps
its own representation where it is cheapest (the torch engine's stay on the GPU as tensors):

- the torch engine: :class:`posepipe.engines.torch.person_detector.BlazePoseDetector`,
  :class:`posepipe.engines.torch.landmark_model.BlazePoseLandmarkModel` and
  :class:`posepipe.engines.torch.video_tracking.VideoRegionTracker`, composed by
  :class:`posepipe.engines.torch.blazepose.TorchBlazePose`;
- MediaPipe's engine (:mod:`posepipe.engines.mediapipe`) runs the same three parts inside one
  MediaPipe graph, which does not let them be taken apart.

Every part builds persons with :meth:`posepipe.result.Person.from_landmarks`.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from posepipe.engines.base import RGBImage
from posepipe.result import Person

ImagesIn = TypeVar("ImagesIn", contravariant=True)
RegionsIn = TypeVar("RegionsIn", contravariant=True)
RegionsOut = TypeVar("RegionsOut", covariant=True)
LandmarksOut = TypeVar("LandmarksOut", covariant=True)


class PersonDetector(Protocol[ImagesIn, RegionsOut]):
    """Finds the people in a batch of images: up to ``max_people`` regions an image."""

    def find_people(self, images: ImagesIn, max_people: int) -> RegionsOut: ...


class LandmarkModel(Protocol[ImagesIn, RegionsIn, LandmarksOut]):
    """The landmarks of the person in each region (regions may belong to different images)."""

    def estimate(self, images: ImagesIn, regions: RegionsIn) -> LandmarksOut: ...


class RegionTracker(Protocol):
    """One video stream's tracking: each frame's persons, from the regions carried from the frame
    before and, while fewer than wanted are tracked, the person detector's."""

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]: ...

    def reset(self) -> None: ...
