"""``RunningMode.LIVE_STREAM`` of the MediaPipe engine: ``detect_async`` and its result callback,
on real frames of vtest.avi (the stretch where a pedestrian crosses near the camera)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.engines.base import EngineChoice, PoseEngineOptions, RunningMode
from posepipe.engines.choice import open_pose_engine
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.engines.torch.estimator import TorchPoseEstimator
from posepipe.errors import EngineError
from posepipe.media.decode import read_frames
from posepipe.result import Person

FIRST, STOP = 526, 566  # frames with one pedestrian close enough to be found in most of them


class Results:
    """What the callback was given, from MediaPipe's result thread. With a ``gate``, the callback
    holds MediaPipe's thread until the gate opens (a slow consumer)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[int, list[Person], str]] = []
        self.gate = gate

    def __call__(self, persons: list[Person], timestamp_ms: int) -> None:
        if self.gate is not None:
            self.gate.wait(timeout=60)
        with self.lock:
            self.items.append((timestamp_ms, persons, threading.current_thread().name))

    def wait_for(self, timestamp_ms: int, timeout_s: float = 30.0) -> None:
        """Until the result of ``timestamp_ms`` (the last frame sent) has arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if any(t == timestamp_ms for t, _, _ in self.items):
                    return
            time.sleep(0.02)
        raise AssertionError(f"no result for {timestamp_ms} ms within {timeout_s} s: {self.timestamps()}")

    def wait_until_quiet(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Until no result has arrived for ``quiet_s`` (MediaPipe may skip any frame, the last too)."""
        deadline = time.monotonic() + timeout_s
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self.lock:
                count = len(self.items)
            if count != seen:
                seen, since = count, time.monotonic()
            elif count and time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.02)
        raise AssertionError(f"results still arriving (or none) after {timeout_s} s: {self.timestamps()}")

    def timestamps(self) -> list[int]:
        with self.lock:
            return [t for t, _, _ in self.items]


def live_options(callback: Results, engine: EngineChoice = "mediapipe") -> PoseEngineOptions:
    return PoseEngineOptions(running_mode=RunningMode.LIVE_STREAM, result_callback=callback, engine=engine)


@pytest.fixture(scope="module")
def frames(sample: Callable[[str], Path]) -> list[np.ndarray]:
    return [frame.rgb for frame in read_frames(sample("vtest.avi"), FIRST, STOP)]


def test_live_stream_results_arrive_in_order_with_persons(frames: list[np.ndarray], model_path: Path) -> None:
    results = Results()
    options = live_options(results)
    sent: list[int] = []
    with MediaPipePoseEstimator(options) as engine:
        for index, rgb in enumerate(frames):
            timestamp_ms = 100 * index + 7  # 10 fps, as the clip
            engine.detect_async(rgb, timestamp_ms)
            sent.append(timestamp_ms)
            results.wait_for(timestamp_ms)  # paced as a camera MediaPipe keeps up with
        caller = threading.current_thread().name

    timestamps = results.timestamps()
    assert timestamps == sent  # one result per frame when paced, in order, with the frame's own time
    with_persons = [persons for _, persons, _ in results.items if persons]
    assert len(with_persons) >= 0.8 * len(frames), [len(p) for _, p, _ in results.items]
    height, width = frames[0].shape[:2]
    for persons in with_persons:
        for person in persons:
            assert person.landmarks.shape == (33, 5)
            assert person.world_landmarks.shape == (33, 3)
            assert person.id == -1  # no tracking in the engine, as in the other modes
            x0, y0, x1, y1 = person.bbox  # in pixels of the frame, not normalised
            assert 0 <= x0 < x1 <= width + 50
            assert 0 <= y0 < y1 <= height + 50
            assert y1 - y0 > 40
    assert all(thread != caller for _, _, thread in results.items)  # delivered on MediaPipe's thread


def test_live_stream_agrees_with_video_mode(frames: list[np.ndarray], model_path: Path) -> None:
    """The same frames, paced: LIVE_STREAM tracks as VIDEO mode does and finds the same persons."""
    results = Results()
    live = MediaPipePoseEstimator(live_options(results))
    with live, MediaPipePoseEstimator(PoseEngineOptions(running_mode=RunningMode.VIDEO)) as video:
        expected = []
        for index, rgb in enumerate(frames[:10]):
            live.detect_async(rgb, 100 * index)
            results.wait_for(100 * index)
            expected.append(video.detect_for_video(rgb, 100 * index))
    got = [persons for _, persons, _ in results.items]
    assert [len(p) for p in got] == [len(p) for p in expected]
    assert sum(len(p) for p in got) > 0
    for ours, theirs in zip(got, expected, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert float(np.abs(a.xy - b.xy).max()) < 1.0


def send_all(engine: MediaPipePoseEstimator, frames: list[np.ndarray], first_timestamp_ms: int = 1) -> None:
    """``detect_async`` for every frame, 1 ms apart, from another thread; fails unless every call
    has returned within a (generous) minute."""

    def send() -> None:
        for i, rgb in enumerate(frames):
            engine.detect_async(rgb, first_timestamp_ms + i)

    sender = threading.Thread(target=send)
    sender.start()
    sender.join(timeout=60)
    assert not sender.is_alive(), "detect_async waited for the results"


def test_detect_async_returns_before_the_result_is_delivered(
    frames: list[np.ndarray], model_path: Path
) -> None:
    """The call hands the frame over and returns: it does not wait for the pose (here the result
    callback is held until after the call has returned)."""
    release = threading.Event()
    results = Results(gate=release)
    try:
        with MediaPipePoseEstimator(live_options(results)) as engine:
            send_all(engine, frames[:1], first_timestamp_ms=7)
            assert results.timestamps() == []  # the result is held in the callback
            release.set()
            results.wait_for(7)
    finally:
        release.set()
    assert results.timestamps() == [7]


def test_live_stream_drops_frames_rather_than_queueing(frames: list[np.ndarray], model_path: Path) -> None:
    """Frames sent while the consumer is still busy with an earlier one: every call returns at once,
    and MediaPipe skips frames to keep up instead of building a backlog; what arrives is in order."""
    release = threading.Event()
    results = Results(gate=release)
    try:
        with MediaPipePoseEstimator(live_options(results)) as engine:
            send_all(engine, frames)  # 40 frames, all offered while the first result is held
            release.set()
            results.wait_until_quiet()
    finally:
        release.set()
    timestamps = results.timestamps()
    assert timestamps == sorted(set(timestamps))
    assert timestamps[0] == 1
    assert len(timestamps) < len(frames), "no frame was dropped"


def test_non_increasing_timestamps_are_refused(frames: list[np.ndarray], model_path: Path) -> None:
    results = Results()
    with MediaPipePoseEstimator(live_options(results)) as engine:
        engine.detect_async(frames[0], 1000)
        with pytest.raises(ValueError, match=r"timestamps must strictly increase: got 1000 ms after 1000 ms"):
            engine.detect_async(frames[1], 1000)
        with pytest.raises(ValueError, match=r"got 999 ms after 1000 ms"):
            engine.detect_async(frames[1], 999)
        engine.detect_async(frames[1], 1001)  # the stream goes on after a refusal
        results.wait_for(1001)
    assert results.timestamps()[-1] == 1001
    assert 999 not in results.timestamps()


def test_modes_and_callbacks_must_match(frames: list[np.ndarray], model_path: Path) -> None:
    with pytest.raises(ValueError, match="LIVE_STREAM mode needs a result_callback"):
        PoseEngineOptions(running_mode=RunningMode.LIVE_STREAM)
    with pytest.raises(ValueError, match="for LIVE_STREAM mode only, not VIDEO"):
        PoseEngineOptions(running_mode=RunningMode.VIDEO, result_callback=Results())
    with (
        MediaPipePoseEstimator(PoseEngineOptions(running_mode=RunningMode.VIDEO)) as video,
        pytest.raises(RuntimeError, match=r"detect_async\(\) needs an engine in LIVE_STREAM mode"),
    ):
        video.detect_async(frames[0], 1)
    with MediaPipePoseEstimator(live_options(Results())) as live:
        with pytest.raises(RuntimeError, match="IMAGE mode"):
            live.detect(frames[0])
        with pytest.raises(RuntimeError, match="VIDEO mode"):
            live.detect_for_video(frames[0], 1)


def test_the_torch_engine_refuses_live_stream(model_path: Path) -> None:
    options = live_options(Results(), engine="torch")
    with pytest.raises(EngineError, match="the torch engine has no LIVE_STREAM mode: use engine 'mediapipe'"):
        open_pose_engine(options)
    with pytest.raises(EngineError, match="the torch engine has no LIVE_STREAM mode"):
        TorchPoseEstimator(options)
    live = open_pose_engine(live_options(Results()))
    with live:
        assert isinstance(live, MediaPipePoseEstimator)
