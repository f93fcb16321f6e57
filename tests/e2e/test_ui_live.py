"""The live mode's frame path without a browser, against the real local stack (``posepipe serve``)
and the real local engine (the top-down engine, tracking in VIDEO mode): slots, the drop policy,
latest-wins, switching the source while frames flow, timings, and errors as readable messages.

Frames are vtest.avi's stretch where a pedestrian walks near the camera, cropped around them
(384x288: a webcam-like frame in which a per-image detector finds them nearly every time).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from posepipe.annotation.drawing import PALETTE
from posepipe.media.decode import read_frames
from posepipe.media.images import load_image
from posepipe.result import Person
from posepipe.ui.client import ApiClient, ImageAnswer
from posepipe.ui.live_frames import LivePoseSource, process_video_frame
from posepipe.ui.live_local import LocalLiveEngine
from posepipe.ui.live_scaling import encode_jpeg, scale_down, unscale
from posepipe.ui.live_types import LiveOptions, PoseAnswer
from posepipe.ui.monitor import PerfMonitor

from tests.support.uistack import API_URL, StackProcess

FIRST, STOP = 526, 580  # vtest.avi frames with one pedestrian near the camera
CROP = (slice(288, 576), slice(96, 480))  # rows, columns: 384x288 around their path

Frames = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="module")
def stack(local_stack: StackProcess) -> str:
    """The session's ``posepipe serve``: its API's URL."""
    return local_stack.api_url


@pytest.fixture(scope="module")
def frames(sample: Callable[[str], Path]) -> Frames:
    rows, columns = CROP
    return [np.ascontiguousarray(f.rgb[rows, columns]) for f in read_frames(sample("vtest.avi"), FIRST, STOP)]


class CountingClient:
    """The real client, counting the requests in flight at once (the most seen). With a ``gate``,
    each request waits for it to open before it goes out (a network that is slow to answer)."""

    def __init__(self, client: ApiClient, gate: threading.Event | None = None) -> None:
        self.client = client
        self.gate = gate
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def post_image(
        self,
        data: bytes,
        content_type: str,
        max_poses: int | None = None,
        annotate: bool = False,
        *,
        model: str = "",
        detector: str = "",
    ) -> ImageAnswer:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        try:
            if self.gate is not None:
                assert self.gate.wait(60)
            return self.client.post_image(
                data, content_type, max_poses=max_poses, annotate=annotate, model=model, detector=detector
            )
        finally:
            with self.lock:
                self.now -= 1


def _wait(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _counted(items: list[PoseAnswer], n: int) -> Callable[[], bool]:
    """Whether ``items`` holds ``n`` items by now."""
    return lambda: len(items) == n


def _skeleton_pixels(
    shown: npt.NDArray[np.uint8], original: npt.NDArray[np.uint8], color: tuple[int, int, int]
) -> int:
    """Pixels drawn over ``original`` in (close to) a skeleton's colour."""
    distance = np.abs(shown.astype(np.int16) - np.array(color, dtype=np.int16)).sum(axis=2)
    changed = np.any(shown != original, axis=2)
    return int((changed & (distance < 90)).sum())


def _play(source: LivePoseSource, frames: Frames, fps: float) -> list[npt.NDArray[np.uint8]]:
    """Frames through ``process`` at a camera's pace; what came out."""
    out = []
    for rgb in frames:
        started = time.monotonic()
        out.append(source.process(rgb))
        time.sleep(max(0.0, 1.0 / fps - (time.monotonic() - started)))
    return out


def test_cloud_path_finds_draws_and_times_the_persons(stack: str, frames: Frames) -> None:
    client = CountingClient(ApiClient(stack))
    monitor = PerfMonitor()
    # BlazePose's own detector (one near subject, ~20 ms an image): the pace this test's timing
    # bounds were made for; the stack's default finds everyone at ~85 ms an image.
    options = LiveOptions(source="cloud", max_in_flight=2, jpeg_quality=70, detector="blazepose")
    source = LivePoseSource(client, monitor, options)
    try:
        shown = _play(source, frames[:30], fps=10)
        _wait(lambda: source.cloud.in_flight == 0)
        shown += _play(source, frames[30:32], fps=10)  # the last answers drawn (and timed)
    finally:
        source.close()
    snapshot = monitor.snapshot()
    stats = source.stats()
    assert snapshot.frames_rendered == 32
    assert snapshot.frames_sent + snapshot.frames_dropped == 32
    assert snapshot.frames_sent == client.calls
    assert client.most <= 2  # never more requests in flight than slots
    assert stats.errors == 0, stats.last_error
    assert stats.answers >= 10
    assert stats.skeleton_frames >= 10
    # Each answer is timed when first drawn; one that a newer one replaced before the next frame
    # (or that came after the last frame) never was, and is not.
    assert stats.answers - 2 <= snapshot.timings <= stats.answers
    for stage in ("encode", "network", "inference", "draw"):
        assert snapshot.stages[stage].p50_ms > 0, stage
    assert snapshot.stages["inference"].p50_ms < snapshot.stages["total"].p50_ms
    # The skeleton is drawn over the frame, in the colour of the tracked person's id (0).
    drawn = [_skeleton_pixels(out, rgb, PALETTE[0]) for out, rgb in zip(shown, frames, strict=False)]
    assert sum(count > 30 for count in drawn) >= 10, drawn
    assert shown[0] is frames[0]  # nothing to draw before the first answer: the frame as it came


def test_cloud_frames_are_dropped_not_queued_when_every_slot_is_busy(stack: str, frames: Frames) -> None:
    """While the one slot's request is held in the network, every frame is offered and dropped:
    ``process()`` returns without waiting for the network, and nothing is queued to send later."""
    network = threading.Event()
    client = CountingClient(ApiClient(stack), gate=network)
    monitor = PerfMonitor()
    source = LivePoseSource(client, monitor, LiveOptions(source="cloud", max_in_flight=1))
    try:
        offering = threading.Thread(target=lambda: [source.process(rgb) for rgb in frames])
        offering.start()
        offering.join(timeout=60)
        assert not offering.is_alive(), "process() waited for the network"
        sent_at_once = monitor.snapshot().frames_sent
        assert (sent_at_once, source.cloud.in_flight) == (1, 1)  # the first frame, still held
        network.set()
        _wait(lambda: source.cloud.in_flight == 0)
        time.sleep(0.3)
    finally:
        network.set()
        source.close()
    snapshot = monitor.snapshot()
    assert snapshot.frames_sent + snapshot.frames_dropped == len(frames)
    assert snapshot.frames_dropped == len(frames) - 1
    assert snapshot.frames_sent == sent_at_once == client.calls  # nothing was queued to send later
    assert client.most == 1


def test_the_newest_frames_answer_wins(frames: Frames) -> None:
    monitor = PerfMonitor()
    source = LivePoseSource(ApiClient(API_URL), monitor, LiveOptions(source="cloud"))
    person = Person(
        landmarks=np.tile(np.array([[100, 100, 0, 1, 1]], dtype=np.float32), (33, 1)),
        world_landmarks=np.zeros((33, 3), dtype=np.float32),
        score=1.0,
    )
    now = time.monotonic()
    source.accept(PoseAnswer(seq=5, captured_s=now, source="cloud", persons=[person.copy()]))
    source.accept(PoseAnswer(seq=3, captured_s=now - 0.2, source="cloud", persons=[]))  # late: stale
    assert source.stats().persons == 1
    source.accept(PoseAnswer(seq=6, captured_s=now + 0.1, source="local", persons=[]))
    stats = source.stats()
    assert (stats.answers, stats.stale, stats.persons) == (2, 1, 0)
    source.close()


def test_switching_the_source_while_frames_flow(stack: str, frames: Frames) -> None:
    """Cloud, then local, then cloud, without restarting: each frame reads the source afresh."""
    monitor = PerfMonitor()
    options = LiveOptions(source="cloud", max_in_flight=2)
    source = LivePoseSource(ApiClient(stack), monitor, options)
    seen: list[str] = []
    try:
        _play(source, frames[:10], fps=10)
        _wait(lambda: source.cloud.in_flight == 0)
        seen.append(source.latest_source() or "none")

        source.configure(LiveOptions(source="local", max_in_flight=2))
        source.process(frames[10])  # starts the engine loading; this frame is dropped
        assert source.local.wait_ready(30)
        calls_before = monitor.snapshot().frames_sent
        _play(source, frames[11:40], fps=10)
        _wait(lambda: source.latest_source() == "local", 10)
        seen.append("local")
        assert source.cloud.in_flight == 0  # no request went to the cloud meanwhile
        local_sent = monitor.snapshot().frames_sent - calls_before
        assert local_sent > 0  # how many depends on the machine's speed: one in flight at a time

        source.configure(LiveOptions(source="cloud", max_in_flight=2))
        _play(source, frames[40:], fps=10)
        _wait(lambda: source.cloud.in_flight == 0)
        source.process(frames[-1])
        seen.append(source.latest_source() or "none")
    finally:
        source.close()
    assert seen == ["cloud", "local", "cloud"]
    stats = source.stats()
    assert stats.errors == 0, stats.last_error
    assert stats.skeleton_frames >= 20


def test_local_engine_takes_one_frame_at_a_time(frames: Frames, model_path: Path) -> None:
    answers: list[PoseAnswer] = []
    errors: list[str] = []
    engine = LocalLiveEngine(answers.append, errors.append)
    options = LiveOptions(source="local")
    try:
        assert not engine.offer(frames[0], 1, 0.0, options)  # loading: dropped
        assert engine.wait_ready(30)
        assert engine.offer(frames[1], 2, 0.1, options)
        assert not engine.offer(frames[2], 3, 0.2, options)  # busy with frame 2: dropped
        _wait(lambda: len(answers) == 1)
        assert engine.offer(frames[3], 4, 0.3, options)
        _wait(lambda: len(answers) == 2)
        engine.release()  # the stream stopped: unloaded, and loaded again by the next frame
        assert not engine.ready
        assert not engine.offer(frames[4], 5, 0.4, options)
        assert engine.wait_ready(30)
        assert engine.offer(frames[5], 6, 0.5, options)
        _wait(lambda: len(answers) == 3)
    finally:
        engine.close()
    assert [a.seq for a in answers] == [2, 4, 6]
    assert all(a.source == "local" and a.inference_s > 0 and a.network_s == 0 for a in answers)
    assert len(answers[0].persons) == 1
    assert errors == []
    assert not engine.offer(frames[6], 7, 0.6, options)  # closed
    assert not engine.ready


def test_local_engine_tracks_both_players_with_the_topdown_engine(sample: Callable[[str], Path]) -> None:
    """basketball1.png (two players) as a camera that repeats it: the engine ``posepipe video``
    runs finds both on every frame, at the frames' capture times (kept increasing when the
    camera's clock is not); a new ``max_poses`` loads the engine again, and is obeyed."""
    rgb = load_image(sample("basketball1.png")).rgb
    answers: list[PoseAnswer] = []
    errors: list[str] = []
    engine = LocalLiveEngine(answers.append, errors.append)
    options = LiveOptions(source="local", max_poses=4)
    try:
        assert engine.model() is None
        assert not engine.offer(rgb, 1, 10.0, options)  # loading: dropped
        assert engine.wait_ready(60)
        captured = [10.1, 10.2, 10.3, 10.3, 9.0]  # the last two: not after the one before
        for seq, captured_s in enumerate(captured, start=2):
            assert engine.offer(rgb, seq, captured_s, options)
            _wait(_counted(answers, seq - 1))
        model = engine.model()
        assert model is not None
        assert (model["engine"], model["detector"]["name"]) == ("topdown", "centernet")

        fewer = LiveOptions(source="local", max_poses=1)
        assert not engine.offer(rgb, 10, 11.0, fewer)  # another max_poses: loading again
        assert not engine.ready
        assert engine.wait_ready(60)
        assert engine.offer(rgb, 11, 11.1, fewer)
        _wait(lambda: len(answers) == len(captured) + 1)
    finally:
        engine.close()
    assert errors == []
    assert [a.seq for a in answers] == [2, 3, 4, 5, 6, 11]
    assert [a.captured_s for a in answers[:5]] == captured
    assert [len(a.persons) for a in answers] == [2, 2, 2, 2, 2, 1]
    by_x = [sorted(a.persons, key=lambda p: float(p.xy[:, 0].mean())) for a in answers[:5]]
    left, right = by_x[0]
    assert float(left.xy[:, 0].mean()) < 320 < float(right.xy[:, 0].mean())  # one on each side
    for persons in by_x[1:]:  # tracked: the same two players, frame after frame (the right
        # one, cut by the frame's edge, jitters: their legs are out of it)
        for before, now in zip(by_x[0], persons, strict=True):
            assert float(np.abs(now.xy[0] - before.xy[0]).max()) < 30  # the nose
            assert float(np.median(np.abs(now.xy - before.xy))) < 30


def test_a_local_engine_that_does_not_load_is_a_readable_error(frames: Frames, tmp_path: Path) -> None:
    answers: list[PoseAnswer] = []
    errors: list[str] = []
    engine = LocalLiveEngine(answers.append, errors.append, model_path=tmp_path / "missing.task")
    try:
        assert not engine.offer(frames[0], 1, 0.0, LiveOptions(source="local"))
        _wait(lambda: len(errors) >= 1)
        assert not engine.wait_ready(0.5)
    finally:
        engine.close()
    assert errors[0].startswith("The local engine could not start: ")
    assert "missing.task" in errors[0]
    assert "Traceback" not in errors[0]
    assert answers == []


def test_an_api_that_does_not_answer_is_a_readable_error(frames: Frames) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monitor = PerfMonitor()
    source = LivePoseSource(ApiClient(f"http://127.0.0.1:{port}"), monitor, LiveOptions(source="cloud"))
    try:
        out = [source.process(rgb) for rgb in frames[:3]]
        _wait(lambda: source.cloud.in_flight == 0)
    finally:
        source.close()
    stats = source.stats()
    assert stats.errors >= 1
    assert stats.last_error is not None
    assert f"127.0.0.1:{port}" in stats.last_error
    assert "Traceback" not in stats.last_error
    assert all(o is f for o, f in zip(out, frames, strict=False))  # the video goes on, undrawn


def test_scaling_and_encoding(frames: Frames) -> None:
    big = np.ascontiguousarray(np.repeat(np.repeat(frames[0], 4, axis=0), 4, axis=1))  # 1536x1152
    small, factor = scale_down(big, 640)
    assert small.shape == (480, 640, 3)
    assert factor == pytest.approx(640 / 1536)
    assert scale_down(frames[0], 640) == (frames[0], 1.0)
    jpeg = encode_jpeg(small, 80)
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert len(encode_jpeg(small, 30)) < len(jpeg)
    person = Person(
        landmarks=np.full((33, 5), 10.0, dtype=np.float32),
        world_landmarks=np.zeros((33, 3), dtype=np.float32),
        score=1.0,
    )
    (back,) = unscale([person], 0.5)
    assert back.landmarks[0].tolist() == [20.0, 20.0, 20.0, 10.0, 10.0]
    assert person.landmarks[0, 0] == 10.0  # the answer's own persons are left alone


def test_video_frames_keep_their_timing(frames: Frames) -> None:
    import av

    source = LivePoseSource(ApiClient(API_URL), PerfMonitor(), LiveOptions(source="local"))
    frame = av.VideoFrame.from_ndarray(frames[0], format="rgb24")
    frame.pts, frame.time_base = 4500, Fraction(1, 90000)
    try:
        out = process_video_frame(source, frame.reformat(format="yuv420p"))
    finally:
        source.close()
    assert (out.width, out.height, out.pts, out.time_base) == (384, 288, 4500, Fraction(1, 90000))
