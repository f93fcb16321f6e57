"""The live mode's frame path, without Streamlit or a browser: poses for camera frames, drawn over them.

The WebRTC video thread hands each camera frame to :meth:`LivePoseSource.process`, which

1. offers the frame to the source chosen *now* (read from shared state on every frame, so the
   source can be switched while the stream runs):

   - ``cloud``: :class:`CloudFrameSender` JPEG-compresses the frame and ``POST``\\ s it to
     ``/images``, with up to ``max_in_flight`` requests in flight; when every slot is busy the
     frame is dropped, never queued;
   - ``local``: :class:`LocalLiveEngine`, MediaPipe's PoseLandmarker in ``LIVE_STREAM`` mode on
     this machine, one frame in flight, dropping the frames that come while it is busy;

2. draws the latest persons over the frame (:func:`posepipe.annotation.drawing.draw_persons`) and returns
   it. Answers come back on other threads, in any order: the answer of the newest frame wins and
   an older one arriving later is discarded (:attr:`LiveStats.stale`). Persons get stable ids
   (their colours) from :class:`posepipe.postprocess.tracking.PersonTracker`, and are smoothed with the
   One Euro filter when ``smoothing`` is on.

Counters and timings go to the performance monitor: ``frame_sent``/``frame_dropped`` for each
frame offered, ``frame_rendered`` for each frame returned, and one
:class:`~posepipe.ui.monitor.FrameTiming` (encode, network, server inference, drawing) for each
answer, when it is first drawn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from posepipe.annotation.drawing import DrawOptions, draw_persons
from posepipe.postprocess.tracking import LandmarkSmoother, PersonTracker, SmoothingOptions
from posepipe.result import Frame, Person
from posepipe.ui.client import ApiProblem, ImageAnswer
from posepipe.ui.monitor import FrameTiming
from posepipe.ui.settings import LiveSource, UiSettings

RGBFrame = npt.NDArray[np.uint8]
MAX_IN_FLIGHT_LIMIT = 16  # threads of the cloud sender's pool: max_in_flight is capped here
DEFAULT_MAX_SIDE = 640  # frames are scaled down to this longest side before pose estimation
DEFAULT_MAX_AGE_S = 1.0  # persons found in a frame older than this are no longer drawn


def draw_options(height: int, width: int) -> DrawOptions:
    """Lines that read on a small, compressed live video: min side / 120, at least 2 px (stills: / 300)."""
    return DrawOptions(line_thickness=max(2, round(min(height, width) / 120)))


class ImagePoster(Protocol):
    """What the cloud path needs of :class:`posepipe.ui.client.ApiClient`."""

    def post_image(
        self, data: bytes, content_type: str, max_poses: int | None = None, annotate: bool = False
    ) -> ImageAnswer: ...


class FrameMonitor(Protocol):
    """What the frame path tells :class:`posepipe.ui.monitor.PerfMonitor`."""

    def frame_sent(self) -> None: ...

    def frame_dropped(self) -> None: ...

    def frame_rendered(self) -> None: ...

    def record(self, timing: FrameTiming) -> None: ...


@dataclass(frozen=True)
class LiveOptions:
    """The live mode's choices, read afresh for every frame (change them while running)."""

    source: LiveSource = "cloud"
    jpeg_quality: int = 80
    max_in_flight: int = 3
    max_poses: int = 4
    smoothing: bool = True
    max_side: int = DEFAULT_MAX_SIDE
    max_age_s: float = DEFAULT_MAX_AGE_S

    def __post_init__(self) -> None:
        if self.source not in ("cloud", "local"):
            raise ValueError(f"source must be cloud or local, not {self.source!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be from 1 to 100, not {self.jpeg_quality}")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT_LIMIT:
            raise ValueError(
                f"max_in_flight must be from 1 to {MAX_IN_FLIGHT_LIMIT}, not {self.max_in_flight}"
            )
        if self.max_poses < 1:
            raise ValueError(f"max_poses must be at least 1, not {self.max_poses}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32, not {self.max_side}")

    @classmethod
    def from_settings(cls, settings: UiSettings) -> LiveOptions:
        return cls(
            source=settings.live_source,
            jpeg_quality=settings.jpeg_quality,
            max_in_flight=min(settings.max_in_flight, MAX_IN_FLIGHT_LIMIT),
            max_poses=settings.max_poses,
            smoothing=settings.smoothing,
        )


@dataclass(frozen=True)
class PoseAnswer:
    """The persons of one frame, from either source, in pixels of the frame as captured.

    ``seq``: the frame's number in the stream; ``captured_s``: when it was offered (the source's
    clock); the seconds are this frame's share of each stage (``encode_s`` and ``network_s`` are
    0 for the local engine; ``inference_s`` is the server's time, or the local engine's).
    """

    seq: int
    captured_s: float
    source: LiveSource
    persons: list[Person]
    encode_s: float = 0.0
    network_s: float = 0.0
    inference_s: float = 0.0


@dataclass(frozen=True)
class LiveStats:
    """What the page shows of the frame path besides the monitor.

    ``answers``: answers accepted (drawn at least once, or to be); ``stale``: answers discarded
    because a newer frame's had already arrived; ``skeleton_frames``: frames returned with at
    least one skeleton drawn; ``latest_source``: where the latest answer came from (``None``
    before the first); ``persons``: the persons of the latest answer (0 when it is too old
    to draw); ``errors`` and ``last_error``: failed requests or inferences, and the latest
    message.
    """

    source: LiveSource
    latest_source: LiveSource | None
    frames: int
    answers: int
    stale: int
    skeleton_frames: int
    persons: int
    in_flight: int
    errors: int
    last_error: str | None


def scale_down(rgb: RGBFrame, max_side: int) -> tuple[RGBFrame, float]:
    """``rgb`` with its longest side at most ``max_side`` (area interpolation), and the factor."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return rgb, 1.0
    factor = max_side / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)), factor


def encode_jpeg(rgb: RGBFrame, quality: int) -> bytes:
    """An RGB frame as JPEG bytes (OpenCV: several times faster than Pillow at camera sizes)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} frame as JPEG")
    return bytes(data.tobytes())


def unscale(persons: list[Person], factor: float) -> list[Person]:
    """Persons found in a frame scaled by ``factor``, in pixels of the original frame."""
    if factor == 1.0:
        return persons
    out = []
    for person in persons:
        landmarks = person.landmarks.copy()
        landmarks[:, :3] /= factor  # x, y, and z (which is in pixels at the scale of x)
        out.append(replace(person, landmarks=landmarks))
    return out


class CloudFrameSender:
    """JPEG frames to ``POST /images``, at most ``max_in_flight`` at once; no queue.

    :meth:`offer` returns at once: ``False`` (the frame is dropped) when every slot is busy,
    else ``True``, the frame being encoded and sent on a pool thread, its persons handed to
    ``deliver`` (or the failure's message to ``on_error``) when the answer comes.
    """

    def __init__(
        self,
        client: ImagePoster,
        deliver: Callable[[PoseAnswer], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.client = client
        self._deliver = deliver
        self._on_error = on_error
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT_LIMIT, thread_name_prefix="posepipe-cloud")

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def offer(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> bool:
        """Send this frame if a slot is free (``True``), else drop it (``False``)."""
        with self._lock:
            if self._in_flight >= options.max_in_flight:
                return False
            self._in_flight += 1
        try:
            self._pool.submit(self._send, rgb, seq, captured_s, options)
        except RuntimeError:  # the pool was shut down: the stream is over
            self._release()
            return False
        return True

    def _send(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> None:
        try:
            started = time.perf_counter()
            small, factor = scale_down(rgb, options.max_side)
            data = encode_jpeg(small, options.jpeg_quality)
            encode_s = time.perf_counter() - started
            answer = self.client.post_image(data, "image/jpeg", max_poses=options.max_poses)
            persons = unscale([Person.from_dict(p) for p in answer.persons], factor)
            self._deliver(
                PoseAnswer(
                    seq=seq,
                    captured_s=captured_s,
                    source="cloud",
                    persons=persons,
                    encode_s=encode_s,
                    network_s=answer.network_s,
                    inference_s=answer.inference_s or 0.0,
                )
            )
        except ApiProblem as exc:
            self._on_error(str(exc))
        except Exception as exc:  # a thread's failure must reach the page, not vanish
            self._on_error(f"The cloud path failed on a frame: {type(exc).__name__}: {exc}")
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class _Pending:
    timestamp_ms: int
    seq: int
    captured_s: float
    sent_s: float
    factor: float


class LocalLiveEngine:
    """MediaPipe's PoseLandmarker in LIVE_STREAM mode on this machine, one frame in flight.

    The engine loads on a background thread at the first :meth:`offer` (frames offered until it
    is ready are dropped) and again when ``max_poses`` changes. A frame offered while the previous
    one is still being processed is dropped, unless that one is older than ``lost_after_s``
    (MediaPipe may skip a frame without a result), which is then forgotten.
    """

    def __init__(
        self,
        deliver: Callable[[PoseAnswer], None],
        on_error: Callable[[str], None],
        *,
        model_path: Path | None = None,
        lost_after_s: float = 2.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._deliver = deliver
        self._on_error = on_error
        self._model_path = model_path
        self._lost_after_s = lost_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._engine: Any = None  # a posepipe.engines.mediapipe.MediaPipePoseEstimator in LIVE_STREAM mode
        self._engine_poses = 0
        self._loading: threading.Thread | None = None
        self._pending: _Pending | None = None
        self._last_timestamp_ms = -1
        self._closed = False

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._engine is not None

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the engine is loaded within ``timeout_s`` (after an :meth:`offer` started it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready:
                return True
            time.sleep(0.02)
        return self.ready

    def offer(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> bool:
        """Send this frame to the engine (``True``), or drop it (``False``): loading, or busy."""
        now = self._clock()
        with self._lock:
            if self._closed:
                return False
            if self._engine is None or self._engine_poses != options.max_poses:
                self._start_loading(options.max_poses)
                if self._engine is None or self._engine_poses != options.max_poses:
                    return False
            pending = self._pending
            if pending is not None and now - pending.sent_s < self._lost_after_s:
                return False
            timestamp_ms = max(int(now * 1000.0), self._last_timestamp_ms + 1)
            self._last_timestamp_ms = timestamp_ms
            small, factor = scale_down(rgb, options.max_side)
            self._pending = _Pending(timestamp_ms, seq, captured_s, now, factor)
            engine = self._engine
        try:
            engine.detect_async(small, timestamp_ms)
        except Exception as exc:
            with self._lock:
                self._pending = None
            self._on_error(f"The local engine refused a frame: {exc}")
            return False
        return True

    def _start_loading(self, max_poses: int) -> None:
        """Load an engine for ``max_poses`` on a thread, unless one is loading (lock held)."""
        if self._loading is not None and self._loading.is_alive():
            return
        thread = threading.Thread(
            target=self._load, args=(max_poses,), name="posepipe-live-load", daemon=True
        )
        self._loading = thread
        thread.start()

    def _load(self, max_poses: int) -> None:
        from posepipe.engines.base import PoseEngineOptions, RunningMode
        from posepipe.engines.mediapipe import MediaPipePoseEstimator

        try:
            engine = MediaPipePoseEstimator(
                PoseEngineOptions(
                    model_path=self._model_path,
                    running_mode=RunningMode.LIVE_STREAM,
                    max_poses=max_poses,
                    result_callback=self._on_result,
                )
            )
        except Exception as exc:
            self._on_error(f"The local engine could not start: {exc}")
            return
        with self._lock:
            old, self._engine, self._engine_poses = self._engine, engine, max_poses
            self._pending = None
            closed = self._closed
        if old is not None:
            old.close()
        if closed:
            engine.close()

    def _on_result(self, persons: list[Person], timestamp_ms: int) -> None:
        now = self._clock()
        with self._lock:
            pending = self._pending
            if pending is None or pending.timestamp_ms != timestamp_ms:
                return  # a frame given up as lost, or of an engine since replaced
            self._pending = None
        self._deliver(
            PoseAnswer(
                seq=pending.seq,
                captured_s=pending.captured_s,
                source="local",
                persons=unscale(persons, pending.factor),
                inference_s=now - pending.sent_s,
            )
        )

    def release(self) -> None:
        """Unload the engine (the stream stopped); the next :meth:`offer` loads it again."""
        with self._lock:
            engine, self._engine, self._pending = self._engine, None, None
        if engine is not None:
            engine.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.release()


class LivePoseSource:
    """Shared between the Streamlit script (options, stats) and the WebRTC video thread (frames).

    :meth:`configure` may be called at any time, from any thread: every frame reads the options
    once, so a change of source applies from the next frame, without restarting the stream.
    """

    def __init__(
        self,
        client: ImagePoster,
        monitor: FrameMonitor,
        options: LiveOptions | None = None,
        *,
        model_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitor = monitor
        self._options = options or LiveOptions()
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._latest: PoseAnswer | None = None
        self._latest_drawn = True
        self._answers = self._stale = self._skeleton_frames = self._errors = 0
        self._last_error: str | None = None
        self._tracker = PersonTracker()
        self._smoother = LandmarkSmoother(SmoothingOptions())
        self.cloud = CloudFrameSender(client, self.accept, self._error)
        self.local = LocalLiveEngine(self.accept, self._error, model_path=model_path)

    @property
    def options(self) -> LiveOptions:
        return self._options

    def configure(self, options: LiveOptions) -> None:
        """New options, from the next frame on (one attribute store: atomic for the video thread)."""
        self._options = options

    def set_client(self, client: ImagePoster) -> None:
        self.cloud.client = client

    def process(self, rgb: RGBFrame) -> RGBFrame:
        """One camera frame in: the frame out, with the latest persons drawn over it."""
        options = self._options
        now = self._clock()
        with self._lock:
            self._seq += 1
            seq = self._seq
        sender = self.cloud if options.source == "cloud" else self.local
        try:
            sent = sender.offer(rgb, seq, now, options)
        except Exception as exc:  # the video goes on; the page says what failed
            self._error(f"The {options.source} path failed on a frame: {type(exc).__name__}: {exc}")
            sent = False
        if sent:
            self.monitor.frame_sent()
        else:
            self.monitor.frame_dropped()
        with self._lock:
            latest, first_draw = self._latest, not self._latest_drawn
            self._latest_drawn = True
        persons = (
            latest.persons if latest is not None and now - latest.captured_s <= options.max_age_s else []
        )
        started = time.perf_counter()
        out = draw_persons(rgb, persons, draw_options(*rgb.shape[:2])) if persons else rgb
        draw_s = time.perf_counter() - started
        if latest is not None and first_draw:
            self.monitor.record(FrameTiming(latest.encode_s, latest.network_s, latest.inference_s, draw_s))
        if persons:
            with self._lock:
                self._skeleton_frames += 1
        self.monitor.frame_rendered()
        return out

    def accept(self, answer: PoseAnswer) -> None:
        """An answer from either source (their threads): the newest frame's wins."""
        with self._lock:
            if self._latest is not None and answer.seq <= self._latest.seq:
                self._stale += 1
                return
            persons = self._tracker.update(answer.persons, answer.captured_s)
            self._smoother.options = replace(self._smoother.options, enabled=self._options.smoothing)
            self._smoother.update(Frame(index=answer.seq, t=answer.captured_s, persons=persons))
            self._latest = replace(answer, persons=persons)
            self._latest_drawn = False
            self._answers += 1

    def latest_source(self) -> LiveSource | None:
        """The source of the answer drawn now (``None`` before the first)."""
        with self._lock:
            return None if self._latest is None else self._latest.source

    def _error(self, message: str) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = message

    def stats(self) -> LiveStats:
        now = self._clock()
        options = self._options
        with self._lock:
            latest = self._latest
            fresh = latest is not None and now - latest.captured_s <= options.max_age_s
            return LiveStats(
                source=options.source,
                latest_source=None if latest is None else latest.source,
                frames=self._seq,
                answers=self._answers,
                stale=self._stale,
                skeleton_frames=self._skeleton_frames,
                persons=len(latest.persons) if latest is not None and fresh else 0,
                in_flight=self.cloud.in_flight,
                errors=self._errors,
                last_error=self._last_error,
            )

    def close(self) -> None:
        self.cloud.close()
        self.local.close()


def process_video_frame(source: LivePoseSource, frame: Any) -> Any:
    """streamlit-webrtc's ``video_frame_callback``: an ``av.VideoFrame`` in, one with poses out."""
    import av

    out = av.VideoFrame.from_ndarray(source.process(frame.to_ndarray(format="rgb24")), format="rgb24")
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out
