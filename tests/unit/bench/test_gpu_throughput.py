"""bench/gpu_throughput.py's ``--topdown`` streams, on networks that find nobody: where each
stream starts, how it starts again at the end, how the streams are staggered, and the batches
recorded (the figures themselves are the bench's, run on a GPU machine)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from posepipe.engines.topdown.estimator import TopDownTracker
from posepipe.engines.topdown.person_boxes import PersonBox
from posepipe.engines.topdown.regions import Region
from posepipe.engines.topdown.steps import PolicySettings, Role, TopDownPolicy

from tests.support.paths import REPO

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_throughput", REPO / "bench" / "gpu_throughput.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Nobody:
    """Top-down networks that find nobody (the detector runs on every frame then)."""

    def prepare(self, images: Sequence[Any]) -> list[Any]:
        return list(images)

    def find_persons(self, frames: Sequence[Any]) -> list[list[PersonBox]]:
        return [[] for _ in frames]

    def estimate(
        self, role: Role, frames: Sequence[Any], regions: Sequence[Sequence[Region]]
    ) -> list[list[Any]]:
        return [[] for _ in frames]

    def describe(self) -> dict[str, Any]:
        return {"device": "none"}


def streams_of(bench: ModuleType, count: int, frames: int) -> tuple[Any, Any]:
    networks = bench.RecordingNetworks(Nobody())
    policy = TopDownPolicy(
        PolicySettings(max_poses=20, min_presence_confidence=0.5, detect_every=4), "blazepose"
    )
    video = [(np.zeros((4, 4, 3), np.uint8), 100 * i) for i in range(frames)]
    return bench.VideoStreams(video, [TopDownTracker(policy, networks) for _ in range(count)]), networks


def test_streams_start_spread_over_the_video_and_start_again_at_its_end(bench: ModuleType) -> None:
    streams, networks = streams_of(bench, 4, 10)
    assert streams.positions == [0, 2, 5, 7]
    for _ in range(3):
        assert streams.step() == 0
    assert streams.positions == [3, 5, 8, 0]  # the last stream ran off the end: a new video
    assert [t.frames for t in streams.trackers] == [3, 3, 3, 0]
    assert [t.last_timestamp for t in streams.trackers] == [200, 400, 700, None]
    streams.step()  # its timestamps start again from 0 without complaint
    assert streams.trackers[3].last_timestamp == 0
    assert networks.summary() == {"detector": {"calls": 4, "mean": 4.0, "max": 4}}


def test_staggered_streams_detect_on_different_steps(bench: ModuleType) -> None:
    streams, networks = streams_of(bench, 8, 50)
    streams.stagger(4)
    assert [t.frames for t in streams.trackers] == [3, 2, 1, 0, 3, 2, 1, 0]
    assert networks.sizes["detector"] == [2, 4, 6]


def test_more_streams_than_frames(bench: ModuleType) -> None:
    streams, _ = streams_of(bench, 5, 2)
    assert streams.positions == [0, 0, 0, 1, 1]
    streams.step()
    assert streams.positions == [1, 1, 1, 0, 0]
