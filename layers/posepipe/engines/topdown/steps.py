"""The top-down engine's decisions, apart from the networks that run for them.

Every decision the top-down engine makes (which boxes start a person, who is present, who is a
duplicate, where a tracked person's region goes next) is made here, in plain Python on small
arrays; every network it needs is asked for by a *request* that the step ``yield``\\ s and the
driver answers (:mod:`posepipe.engines.topdown.driver`):

- :class:`FindPersons`: the person detector (CenterNet or NanoDet) on the whole frame, answered
  with a list of :class:`~posepipe.engines.topdown.person_boxes.PersonBox`;
- :class:`Estimate`: a landmark network on regions of the frame, answered with one result per
  region, in order: ``finder`` (BlazePose's landmark network, a
  :class:`~posepipe.engines.topdown.regions.RegionLandmarks` each), ``second_opinion`` (MoveNet
  Lightning, a :class:`~posepipe.engines.topdown.movenet.RegionKeypoints` each) and ``pose``
  (the pose model, when it is a MoveNet other than Lightning: :class:`RegionKeypoints`).

A step is a generator: one frame's work for one stream. Run alone, each request is answered at
once (``posepipe image``, ``posepipe video`` on the CPU). Run in lock-step with other streams'
steps, the requests of the same kind are answered as one network batch (the GPU engine), and each
stream's decisions are the very same: the batch changes how networks are fed, never what is
decided. A step changes no state: :meth:`TopDownPolicy.video_step` returns the persons tracked
after the frame, which its caller keeps, so a step whose batch fails can be run again alone.

The rules themselves (two passes of BlazePose on each new box, the second opinion, duplicate
suppression, tracking by detection) are documented in :mod:`posepipe.engines.topdown.estimator`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from posepipe.engines.topdown.movenet import (
    MIN_SECOND_OPINION_SCORE,
    MoveNetLandmarks,
    RegionKeypoints,
)
from posepipe.engines.topdown.person_boxes import PersonBox, box_iou, suppress_duplicates
from posepipe.engines.topdown.regions import (
    Region,
    RegionLandmarks,
    region_around,
    region_from_box,
    region_from_landmarks,
)
from posepipe.result import Person, body_box
from posepipe.skeleton import BLAZEPOSE, COCO, Skeleton

MAX_DUPLICATE_IOU = 0.5
NEW_PERSON_MAX_IOU = 0.3

Role = Literal["finder", "second_opinion", "pose"]
ROLES: tuple[Role, ...] = ("finder", "second_opinion", "pose")
PoseKind = Literal["blazepose", "movenet-lightning", "movenet"]


@dataclass(frozen=True)
class FindPersons:
    """Ask for the person detector's boxes on the frame."""


@dataclass(frozen=True)
class Estimate:
    """Ask for the ``role`` network's answer on each of ``regions`` of the frame."""

    role: Role
    regions: tuple[Region, ...]


Request = FindPersons | Estimate
Step = Generator[Request, Any, list[RegionLandmarks]]
"""One frame's work: yields requests, is sent each one's answer, returns the persons."""


@dataclass(frozen=True)
class PolicySettings:
    """The options the decisions depend on (from :class:`posepipe.engines.base.PoseEngineOptions`)."""

    max_poses: int
    min_presence_confidence: float
    detect_every: int


class TopDownPolicy:
    """Who is a person, and how a tracked person is carried to the next frame.

    ``pose`` says what the pose model is: ``blazepose`` (the finder's own network gives the
    landmarks), ``movenet-lightning`` (the second opinion's network gives them) or ``movenet``
    (another MoveNet, asked for as the ``pose`` role).
    """

    def __init__(self, settings: PolicySettings, pose: PoseKind) -> None:
        self.settings = settings
        self.pose = pose
        self.skeleton = skeleton_of(pose)

    # -- IMAGE mode ---------------------------------------------------------------------------------

    def image_step(self) -> Step:
        """Persons in one image, most present first."""
        boxes: list[PersonBox] = yield FindPersons()
        found = yield from self._from_boxes(boxes)
        return self.distinct(found)

    # -- VIDEO mode ---------------------------------------------------------------------------------

    def video_step(self, tracked: Sequence[RegionLandmarks], frame_number: int) -> Step:
        """The persons tracked after this frame (the ``frame_number``-th of the stream, from 0),
        given those tracked after the frame before."""
        carried = yield from self._estimate_pose([self.next_region(p) for p in tracked])
        kept = [estimate for estimate in carried if self.present(estimate)]
        if not kept or frame_number % self.settings.detect_every == 0:
            covered = [extent(estimate, self.skeleton.size) for estimate in kept]
            boxes: list[PersonBox] = yield FindPersons()
            new_boxes = [
                box
                for box in boxes
                if all(
                    box_iou((box.x0, box.y0, box.x1, box.y1), other) <= NEW_PERSON_MAX_IOU
                    for other in covered
                )
            ]
            kept += yield from self._from_boxes(new_boxes)
        return self.distinct(kept)

    # -- the decisions ------------------------------------------------------------------------------

    def _from_boxes(self, boxes: list[PersonBox]) -> Generator[Request, Any, list[RegionLandmarks]]:
        """The persons in the detector's boxes: BlazePose on the square around each box, then on
        the region its own landmarks give; those present in the second pass whom MoveNet
        Lightning also sees. With MoveNet chosen, MoveNet's keypoints of each of them."""
        first = yield from _ask("finder", [region_from_box(box) for box in boxes])
        found = [estimate for estimate in first if self.found(estimate)]
        second = yield from _ask("finder", [region_from_landmarks(estimate.points) for estimate in found])
        present = [estimate for estimate in second if self.found(estimate)]
        regions = [region_around(body_box(extent(estimate, BLAZEPOSE.size))) for estimate in present]
        opinions: list[RegionKeypoints] = yield from _ask("second_opinion", regions)
        confirmed = [
            (estimate, region, opinion)
            for estimate, region, opinion in zip(present, regions, opinions, strict=True)
            if opinion.score >= MIN_SECOND_OPINION_SCORE
        ]
        if self.pose == "blazepose":
            return [estimate for estimate, _, _ in confirmed]
        if self.pose == "movenet-lightning":  # the pose model gave its opinion already
            return [MoveNetLandmarks.pose(opinion) for _, _, opinion in confirmed]
        keypoints: list[RegionKeypoints] = yield from _ask("pose", [region for _, region, _ in confirmed])
        return [MoveNetLandmarks.pose(k) for k in keypoints]

    def _estimate_pose(self, regions: list[Region]) -> Generator[Request, Any, list[RegionLandmarks]]:
        """The pose model on regions, as landmark rows."""
        if self.pose == "blazepose":
            estimates: list[RegionLandmarks] = yield from _ask("finder", regions)
            return estimates
        role: Role = "second_opinion" if self.pose == "movenet-lightning" else "pose"
        keypoints: list[RegionKeypoints] = yield from _ask(role, regions)
        return [MoveNetLandmarks.pose(k) for k in keypoints]

    def next_region(self, estimate: RegionLandmarks) -> Region:
        """Where a tracked person's region goes on the next frame (from their landmarks)."""
        if self.pose == "blazepose":
            return region_from_landmarks(estimate.points)
        return MoveNetLandmarks.next_region(estimate)

    def found(self, estimate: RegionLandmarks) -> bool:
        """Whether BlazePose says a person is in the region (its presence score)."""
        return estimate.presence > self.settings.min_presence_confidence

    def present(self, estimate: RegionLandmarks) -> bool:
        """Whether a tracked person is still there, by the pose network's own presence."""
        if self.pose == "blazepose":
            return estimate.presence > self.settings.min_presence_confidence
        return estimate.presence > MIN_SECOND_OPINION_SCORE  # MoveNetLandmarks.presence_threshold

    def distinct(self, estimates: list[RegionLandmarks]) -> list[RegionLandmarks]:
        """Without duplicates (landmark boxes overlapping by more than ``MAX_DUPLICATE_IOU``: the
        more present is kept), most present first, at most ``max_poses``."""
        kept = suppress_duplicates(
            [extent(estimate, self.skeleton.size) for estimate in estimates],
            [e.presence for e in estimates],
            MAX_DUPLICATE_IOU,
        )
        return [estimates[i] for i in kept][: self.settings.max_poses]

    def person(self, estimate: RegionLandmarks) -> Person:
        return Person.from_landmarks(
            np.asarray(estimate.points[: self.skeleton.size]), np.asarray(estimate.world)
        )


def skeleton_of(pose: PoseKind) -> Skeleton:
    """The keypoint set of a pose model of this kind."""
    return BLAZEPOSE if pose == "blazepose" else COCO


def _ask(role: Role, regions: list[Region]) -> Generator[Request, Any, list[Any]]:
    """The ``role`` network's answers on ``regions`` (no request when there are none)."""
    if not regions:
        return []
    answers: list[Any] = yield Estimate(role, tuple(regions))
    if len(answers) != len(regions):
        raise RuntimeError(f"the {role} network answered {len(answers)} regions of {len(regions)}")
    return answers


def extent(estimate: RegionLandmarks, size: int) -> tuple[float, float, float, float]:
    """The box around a person's first ``size`` points (BlazePose's 33 landmarks, not its
    auxiliary points; MoveNet's 17), in pixels."""
    xy = estimate.points[:size, :2]
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())
