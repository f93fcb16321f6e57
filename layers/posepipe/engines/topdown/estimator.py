"""The top-down engine: a general person detector (CenterNet, or NanoDet with ``--detector
nanodet``) finds every person, the pose network runs on each person's region, regions with no
person in them are dropped and duplicates suppressed.

The pose network is BlazePose's landmark network of the chosen bundle (``blazepose-lite``,
``-full``, ``-heavy``: 33 landmarks and world landmarks) or MoveNet (``movenet-lightning``,
``movenet-thunder``: COCO's 17 keypoints). Who is a person is decided the same way whichever pose
network is chosen, by BlazePose (the chosen bundle, else Full) and MoveNet Lightning, as below;
with MoveNet chosen, MoveNet then runs on each person found, its regions are the upright squares
around its keypoints, and its presence is its mean keypoint score.

For each box the detector gives (score at least ``min_score``), the landmark network runs twice:
once on the square around the box, and once on the region its own landmarks give (centred on
the hips, turned upright), which is the region MediaPipe's tracking would give it on the next
frame and fits the body better than a box does. A person is kept when the network's presence
score is above ``min_presence_confidence`` and MoveNet Lightning, a second opinion trained on
other data, gives the person's box a mean keypoint score of at least
:data:`~posepipe.engines.topdown.movenet.MIN_SECOND_OPINION_SCORE` (this drops pictures of
people, such as the pictograms on an advertising board, and posts the detector took for a far
walker); of two persons whose landmark boxes overlap by more than ``MAX_DUPLICATE_IOU``, the less
present one is dropped.

VIDEO mode tracks by detection, as MediaPipe tracks its one person: each person found on a frame
gives the region for the next frame from their landmarks, so the landmark network runs once per
tracked person. The detector runs on every ``detect_every``-th frame, and on any frame where
nobody is tracked; a box that no tracked person's region already covers (IoU at most
``NEW_PERSON_MAX_IOU`` with their landmark box) starts a new person, with the two passes and the
second opinion of IMAGE mode. A tracked person whose presence falls to the threshold or below is
dropped. Ids are given later, over the whole video, by :mod:`posepipe.postprocess.ids`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import numpy as np

from posepipe.assets.catalogue import CATALOGUE, resolve_model, spec_of
from posepipe.assets.pose_model import model_info
from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode
from posepipe.engines.topdown.blazepose_landmarks import BlazePoseLandmarks
from posepipe.engines.topdown.movenet import MIN_SECOND_OPINION_SCORE, MoveNetKeypoints, MoveNetLandmarks
from posepipe.engines.topdown.person_boxes import (
    DEFAULT_MIN_SCORE,
    CenterNetPersonDetector,
    NanoDetPersonDetector,
    PersonBox,
    box_iou,
    suppress_duplicates,
)
from posepipe.engines.topdown.regions import RegionLandmarks, region_around, region_from_box
from posepipe.errors import EngineError
from posepipe.result import Person, body_box

# The catalogue's pose models of COCO's 17 keypoints: MoveNet's, which MoveNetLandmarks runs.
MOVENET_MODELS = tuple(
    name for name, spec in CATALOGUE.items() if spec.kind == "pose" and spec.keypoints == 17
)
FINDER_MODEL = "blazepose-full"  # who is a person, when MoveNet is the pose network
MAX_DUPLICATE_IOU = 0.5
NEW_PERSON_MAX_IOU = 0.3


class TopDownPoseEstimator:
    """A :class:`posepipe.engines.base.PoseEstimator`: a person detector, then the pose network on
    each person."""

    def __init__(self, options: PoseEngineOptions) -> None:
        if options.running_mode is RunningMode.LIVE_STREAM:
            raise EngineError("the top-down engine has no LIVE_STREAM mode: use VIDEO mode")
        self.options = options
        self.detector_spec = CATALOGUE[options.detector]
        detector_class = NanoDetPersonDetector if options.detector == "nanodet" else CenterNetPersonDetector
        self.detector = detector_class(self.detector_spec.built_path(), min_score=DEFAULT_MIN_SCORE)
        self.second_opinion_spec = CATALOGUE["movenet-lightning"]
        self.second_opinion = MoveNetKeypoints(self.second_opinion_spec.built_path())
        self.landmarks: BlazePoseLandmarks | MoveNetLandmarks
        spec = spec_of(options.model_path)
        if spec is not None and spec.name in MOVENET_MODELS:
            built = spec.built_path()
            self.model_block: dict[str, Any] = {"name": spec.name, "path": str(built), "sha256": spec.sha256}
            self.finder = BlazePoseLandmarks(CATALOGUE[FINDER_MODEL].built_path())
            same = spec.name == self.second_opinion_spec.name  # Lightning: one network, run once
            self.landmarks = MoveNetLandmarks(self.second_opinion if same else MoveNetKeypoints(built))
        else:
            bundle = resolve_model(options.model_path)
            self.model_block = model_info(bundle).to_dict()
            self.finder = BlazePoseLandmarks(bundle)
            self.landmarks = self.finder
        self.skeleton = self.landmarks.skeleton
        self._last_timestamp: int | None = None
        self._tracked: list[RegionLandmarks] = []  # the persons of the last frame (VIDEO mode)
        self._frames = 0

    def model_dict(self) -> dict[str, Any]:
        return {
            **self.model_block,
            "engine": "topdown",
            "skeleton": self.skeleton.name,
            "detector": {
                "name": self.detector_spec.name,
                "sha256": self.detector_spec.sha256,
                "min_score": self.detector.min_score,
                "detect_every": self.options.detect_every,
            },
            "second_opinion": {
                "name": self.second_opinion_spec.name,
                "sha256": self.second_opinion_spec.sha256,
                "min_score": MIN_SECOND_OPINION_SCORE,
            },
            **self.options.settings_dict(),
        }

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode), most present first."""
        estimates = self._from_boxes(rgb, self.detector.detect(rgb))
        return [self._person(estimate) for estimate in self._distinct(estimates)]

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode), tracked from the frame before."""
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"timestamps must increase: {timestamp_ms} after {self._last_timestamp}")
        self._last_timestamp = timestamp_ms
        carried = self.landmarks.estimate(rgb, [self.landmarks.next_region(p) for p in self._tracked])
        tracked = [estimate for estimate in carried if self._present(estimate)]
        if not tracked or self._frames % self.options.detect_every == 0:
            covered = [_extent(estimate, self.skeleton.size) for estimate in tracked]
            new_boxes = [
                box
                for box in self.detector.detect(rgb)
                if all(
                    box_iou((box.x0, box.y0, box.x1, box.y1), other) <= NEW_PERSON_MAX_IOU
                    for other in covered
                )
            ]
            tracked += self._from_boxes(rgb, new_boxes)
        self._frames += 1
        self._tracked = self._distinct(tracked)
        return [self._person(estimate) for estimate in self._tracked]

    def reset(self) -> None:
        """Forget the tracked persons (a new video)."""
        self._tracked, self._frames, self._last_timestamp = [], 0, None

    def _from_boxes(self, rgb: RGBImage, boxes: list[PersonBox]) -> list[RegionLandmarks]:
        """The persons in the detector's boxes: BlazePose on the square around each box, then on the
        region its own landmarks give; those present in the second pass whom MoveNet Lightning
        also sees. With MoveNet chosen, MoveNet's keypoints of each of them."""
        finder = self.finder
        first = finder.estimate(rgb, [region_from_box(box) for box in boxes])
        found = [estimate for estimate in first if self._found(estimate)]
        second = finder.estimate(rgb, [finder.next_region(estimate) for estimate in found])
        present = [estimate for estimate in second if self._found(estimate)]
        regions = [region_around(body_box(_extent(estimate, finder.skeleton.size))) for estimate in present]
        opinions = self.second_opinion.estimate(rgb, regions)
        confirmed = [
            (estimate, region, opinion)
            for estimate, region, opinion in zip(present, regions, opinions, strict=True)
            if opinion.score >= MIN_SECOND_OPINION_SCORE
        ]
        if not isinstance(self.landmarks, MoveNetLandmarks):
            return [estimate for estimate, _, _ in confirmed]
        if self.landmarks.network is self.second_opinion:  # the pose model gave its opinion already
            return [MoveNetLandmarks.pose(opinion) for _, _, opinion in confirmed]
        return self.landmarks.estimate(rgb, [region for _, region, _ in confirmed])

    def _found(self, estimate: RegionLandmarks) -> bool:
        """Whether BlazePose says a person is in the region (its presence score)."""
        return estimate.presence > self.options.min_presence_confidence

    def _present(self, estimate: RegionLandmarks) -> bool:
        """Whether a tracked person is still there, by the pose network's own presence."""
        threshold = self.landmarks.presence_threshold
        return estimate.presence > (self.options.min_presence_confidence if threshold is None else threshold)

    def _distinct(self, estimates: list[RegionLandmarks]) -> list[RegionLandmarks]:
        """Without duplicates (landmark boxes overlapping by more than ``MAX_DUPLICATE_IOU``: the
        more present is kept), most present first, at most ``max_poses``."""
        kept = suppress_duplicates(
            [_extent(estimate, self.skeleton.size) for estimate in estimates],
            [e.presence for e in estimates],
            MAX_DUPLICATE_IOU,
        )
        return [estimates[i] for i in kept][: self.options.max_poses]

    def _person(self, estimate: RegionLandmarks) -> Person:
        return Person.from_landmarks(
            np.asarray(estimate.points[: self.skeleton.size]), np.asarray(estimate.world)
        )

    def close(self) -> None:
        return None

    def __enter__(self) -> TopDownPoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _extent(estimate: RegionLandmarks, size: int) -> tuple[float, float, float, float]:
    """The box around a person's first ``size`` points (BlazePose's 33 landmarks, not its
    auxiliary points; MoveNet's 17), in pixels."""
    xy = estimate.points[:size, :2]
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def required_models(model: str, detector: str) -> list[str]:
    """The catalogue's models the top-down engine loads for pose model ``model`` (a catalogue
    name) with general detector ``detector``: the detector, MoveNet Lightning (the second
    opinion), BlazePose Full (who is a person, when the pose model is MoveNet) and the model."""
    names = [detector, "movenet-lightning"] + [FINDER_MODEL] * (model in MOVENET_MODELS) + [model]
    return list(dict.fromkeys(names))
