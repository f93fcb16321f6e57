"""An engine is made of named parts (posepipe.engines.parts): the torch engine's person detector,
landmark model and region tracker, each usable alone, compose to exactly the engine's persons."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from posepipe.engines.parts import LandmarkModel, PersonDetector, RegionTracker
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.landmark_decoding import to_pixels
from posepipe.engines.torch.landmark_model import BlazePoseLandmarkModel, LandmarkEstimate
from posepipe.engines.torch.network_contract import NUM_LANDMARKS
from posepipe.engines.torch.networks import load_networks
from posepipe.engines.torch.person_detector import BlazePoseDetector
from posepipe.engines.torch.roi import Rects
from posepipe.engines.torch.video_tracking import VideoRegionTracker
from posepipe.media.images import load_image

pytestmark = pytest.mark.torch

Images = list[torch.Tensor]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> TorchBlazePose:
    detector, landmarks = load_networks(model_path)
    return TorchBlazePose(detector, landmarks, "cpu")


def test_the_torch_engine_holds_one_of_each_part(engine: TorchBlazePose) -> None:
    # Checked by mypy: each part is what engines.parts says a part is.
    detector: PersonDetector[Images, Rects] = engine.person_detector
    landmark_model: LandmarkModel[Images, Rects, LandmarkEstimate] = engine.landmark_model
    tracker: RegionTracker = VideoRegionTracker(engine, max_poses=2)
    assert isinstance(detector, BlazePoseDetector)
    assert isinstance(landmark_model, BlazePoseLandmarkModel)
    assert isinstance(tracker, VideoRegionTracker)


def test_the_parts_run_by_hand_give_the_engines_persons(
    engine: TorchBlazePose, sample: Callable[[str], Path]
) -> None:
    """basketball1.png: two players. The detector's regions, then the landmark model on them, are
    the engine's persons to the bit."""
    rgb = load_image(sample("basketball1.png")).rgb
    expected = engine.detect_image(rgb, max_poses=4)
    assert len(expected) == 2
    with torch.inference_mode():
        images = engine.image_tensors([rgb])
        regions = engine.person_detector.find_people(images, max_people=4)
        estimate = engine.landmark_model.estimate(images, regions)
    assert len(regions) == 2
    assert bool(estimate.present.all())
    pixels = to_pixels(estimate.landmarks[:, :NUM_LANDMARKS], regions.image_size).numpy()
    for person, landmarks, world in zip(expected, pixels, estimate.world.numpy(), strict=True):
        np.testing.assert_array_equal(person.landmarks, landmarks.astype(np.float32))
        np.testing.assert_array_equal(person.world_landmarks, world.astype(np.float32))


def test_the_region_tracker_carries_regions_and_forgets_them_on_reset(
    engine: TorchBlazePose, sample: Callable[[str], Path]
) -> None:
    rgb = load_image(sample("basketball1.png")).rgb
    tracker = VideoRegionTracker(engine, max_poses=2)
    first = tracker.detect_for_video(rgb, 0)
    assert len(first) == 2
    assert len(tracker.tracked_rects) == 2  # the next frame starts from these regions
    again = tracker.detect_for_video(rgb, 33)
    assert len(again) == 2
    tracker.reset()
    assert len(tracker.tracked_rects) == 0
