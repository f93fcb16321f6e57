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

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode
from posepipe.engines.topdown.cpu_networks import CpuTopDownNetworks
from posepipe.engines.topdown.driver import TopDownNetworks, run_step, run_steps
from posepipe.engines.topdown.models import (
    FINDER_MODEL,
    MOVENET_MODELS,
    TopDownModels,
    required_models,
    topdown_models,
)
from posepipe.engines.topdown.movenet import MIN_SECOND_OPINION_SCORE
from posepipe.engines.topdown.regions import RegionLandmarks
from posepipe.engines.topdown.steps import (
    MAX_DUPLICATE_IOU,
    NEW_PERSON_MAX_IOU,
    PolicySettings,
    TopDownPolicy,
    skeleton_of,
)
from posepipe.errors import EngineError
from posepipe.result import Person

__all__ = [
    "FINDER_MODEL",
    "MAX_DUPLICATE_IOU",
    "MOVENET_MODELS",
    "NEW_PERSON_MAX_IOU",
    "TopDownPoseEstimator",
    "TopDownTracker",
    "detect_for_video_batch",
    "required_models",
]


def policy_for(options: PoseEngineOptions, models: TopDownModels) -> TopDownPolicy:
    settings = PolicySettings(
        max_poses=options.max_poses,
        min_presence_confidence=options.min_presence_confidence,
        detect_every=options.detect_every,
    )
    return TopDownPolicy(settings, models.pose)


class TopDownTracker:
    """One video stream's tracking state (the persons of its last frame) over shared networks:
    what :func:`detect_for_video_batch` advances, one frame a call, alone or beside other streams."""

    def __init__(self, policy: TopDownPolicy, networks: TopDownNetworks) -> None:
        self.policy = policy
        self.networks = networks
        self.tracked: list[RegionLandmarks] = []
        self.frames = 0
        self.last_timestamp: int | None = None

    def check_timestamp(self, timestamp_ms: int) -> None:
        if self.last_timestamp is not None and timestamp_ms <= self.last_timestamp:
            raise ValueError(f"timestamps must increase: {timestamp_ms} after {self.last_timestamp}")

    def commit(self, tracked: list[RegionLandmarks], timestamp_ms: int) -> list[Person]:
        self.tracked, self.last_timestamp = tracked, timestamp_ms
        self.frames += 1
        return [self.policy.person(estimate) for estimate in tracked]

    def reset(self) -> None:
        """Forget the tracked persons (a new video)."""
        self.tracked, self.frames, self.last_timestamp = [], 0, None


def detect_for_video_batch(
    trackers: Sequence[TopDownTracker], images: Sequence[RGBImage], timestamps_ms: Sequence[int]
) -> list[list[Person]]:
    """The next frame of each stream, every network batched across them (the trackers share one
    networks object). Nothing changes unless every frame succeeds: a failed batch can be run
    again frame by frame."""
    if not trackers:
        return []
    networks = trackers[0].networks
    if any(tracker.networks is not networks for tracker in trackers):
        raise ValueError("a batch runs on one set of networks")
    for tracker, timestamp in zip(trackers, timestamps_ms, strict=True):
        tracker.check_timestamp(timestamp)
    frames = networks.prepare(images)
    steps = [tracker.policy.video_step(tracker.tracked, tracker.frames) for tracker in trackers]
    results = run_steps(steps, networks, frames)
    return [
        tracker.commit(tracked, timestamp)
        for tracker, tracked, timestamp in zip(trackers, results, timestamps_ms, strict=True)
    ]


class TopDownPoseEstimator:
    """A :class:`posepipe.engines.base.PoseEstimator`: a person detector, then the pose network on
    each person. ``networks`` runs them (default: ONNX Runtime and LiteRT on the CPU,
    :class:`~posepipe.engines.topdown.cpu_networks.CpuTopDownNetworks`); ``models`` are their files
    (default: resolved from ``options``)."""

    def __init__(
        self,
        options: PoseEngineOptions,
        networks: TopDownNetworks | None = None,
        models: TopDownModels | None = None,
    ) -> None:
        if options.running_mode is RunningMode.LIVE_STREAM:
            raise EngineError("the top-down engine has no LIVE_STREAM mode: use VIDEO mode")
        self.options = options
        self.models = models or topdown_models(options)
        self.networks: TopDownNetworks = networks or CpuTopDownNetworks(self.models)
        self.policy = policy_for(options, self.models)
        self.skeleton = self.policy.skeleton
        self.tracker = TopDownTracker(self.policy, self.networks)

    def model_dict(self) -> dict[str, Any]:
        return topdown_model_dict(self.options, self.models, self.networks)

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode), most present first."""
        frame = self.networks.prepare([rgb])[0]
        return [
            self.policy.person(estimate)
            for estimate in run_step(self.policy.image_step(), self.networks, frame)
        ]

    def detect_images(self, images: Sequence[RGBImage]) -> list[list[Person]]:
        """Persons in each of several images (IMAGE mode), every network batched across them."""
        frames = self.networks.prepare(images)
        found = run_steps([self.policy.image_step() for _ in frames], self.networks, frames)
        return [[self.policy.person(estimate) for estimate in persons] for persons in found]

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode), tracked from the frame before."""
        return detect_for_video_batch([self.tracker], [rgb], [timestamp_ms])[0]

    def reset(self) -> None:
        """Forget the tracked persons (a new video)."""
        self.tracker.reset()

    def close(self) -> None:
        return None

    def __enter__(self) -> TopDownPoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def topdown_model_dict(
    options: PoseEngineOptions, models: TopDownModels, networks: TopDownNetworks
) -> dict[str, Any]:
    """What results record of a top-down engine: the pose model, the detector, the second
    opinion, where and on what the networks ran, and the options."""
    min_score = getattr(networks, "min_score", None)
    return {
        **models.model_block,
        "engine": "topdown",
        "skeleton": skeleton_of(models.pose).name,
        **networks.describe(),
        "detector": {
            **models.detector_block(),
            **({"min_score": min_score} if min_score is not None else {}),
            "detect_every": options.detect_every,
        },
        "second_opinion": {**models.second_opinion_block(), "min_score": MIN_SECOND_OPINION_SCORE},
        **options.settings_dict(),
    }
