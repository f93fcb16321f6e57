"""``FrameBatcher``: the current frames of many concurrent video streams, run as one network batch.

The endpoint runs several chunks at once in one process (gunicorn threads), each in VIDEO mode
with its own tracking state. Run one by one, each chunk's frame is a batch of one on the device.
A :class:`FrameBatcher` gathers them instead: every stream (:class:`BatchedStream`, one per
chunk, owning its :class:`~posepipe.engines.torch.video_tracking.VideoRegionTracker`) hands its current
frame to the batcher and blocks; one worker thread waits up to ``delay_s`` after the first frame
of a batch for the other streams' frames (or until ``max_batch`` frames, or every open stream,
have one waiting), runs :func:`~posepipe.engines.torch.video_tracking.detect_for_video_batch` once
over all of them (one detector batch, one landmark batch) and hands each stream its persons.

- Results: each stream's persons are what its tracker alone would give, up to the networks'
  batch-dependent rounding (bit for bit when the engine's networks see one image at a time,
  ``batch_size=1``; see :func:`~posepipe.engines.torch.video_tracking.detect_for_video_batch`).
- Thresholds: ``max_poses`` and ``min_tracking_confidence`` are per stream;
  ``min_detection_confidence`` and ``min_presence_confidence`` belong to the engine, so streams
  are grouped by them (one :class:`~posepipe.engines.torch.blazepose.TorchBlazePose` per pair,
  sharing the networks) and a batch holds one group's frames.
- Failures: a frame that is not an RGB ``uint8`` image is refused in the caller's thread. If a
  batch fails (a frame the pipeline cannot take, the device out of memory), no tracker has
  changed yet, and the batcher runs each of its frames alone: only the stream whose frame fails
  gets the exception, the others their persons. A stream whose owner fails elsewhere (a video
  that stops decoding) closes, and the others stop waiting for it.
- Shutdown: :meth:`FrameBatcher.close` runs the frames already queued, then stops the worker;
  frames handed in after that raise :class:`BatcherClosedError`.
- Accounting: :attr:`FrameBatcher.stats` (and each stream's own) counts the batches and their
  sizes; the worker logs a summary every ``log_every_s`` seconds and at close (logger
  ``posepipe.engines.torch.batcher``).

Nothing here knows about HTTP: the endpoint's ``TorchChunkEngine`` opens one stream per
invocation through :meth:`FrameBatcher.open_estimator`, which has
:class:`posepipe.engines.base.PoseEstimator`'s interface for ``posepipe.video.stages.infer_chunk``.

One module over 400 lines on purpose: the batcher's worker thread and the streams that wait on it
share one lock, one condition and one queue, which only read safely in one place (its statistics are
:mod:`posepipe.engines.torch.batch_stats`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode, TorchDtype
from posepipe.engines.torch.batch_stats import BatchStats, StreamStats
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.video_tracking import (
    MIN_TRACKING_CONFIDENCE,
    VideoRegionTracker,
    detect_for_video_batch,
)
from posepipe.result import Person

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 32
DEFAULT_DELAY_S = 0.004
DEFAULT_LOG_EVERY_S = 60.0
_WORKER_CHECK_S = 1.0  # how often a waiting stream checks that the worker is still alive


class BatcherClosedError(RuntimeError):
    """The batcher was closed: it takes no more frames."""


@dataclass(eq=False)
class _Request:
    stream: BatchedStream
    rgb: RGBImage
    timestamp_ms: int
    submitted: float
    done: threading.Event = field(default_factory=threading.Event)
    persons: list[Person] | None = None
    error: BaseException | None = None

    def finish(self, persons: list[Person] | None = None, error: BaseException | None = None) -> None:
        self.persons, self.error = persons, error
        self.done.set()


class FrameBatcher:
    """Runs the current frames of concurrent streams as one batch (see the module docstring).

    ``engine`` gives the networks, device, dtype and pipeline settings; its own thresholds are
    those of streams that do not name others. ``max_batch``: the most frames in one batch
    (the networks may split it further by the engine's ``batch_size``). ``delay_s``: how long a
    batch waits for more frames after its first one arrived.
    """

    def __init__(
        self,
        engine: TorchBlazePose,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay_s: float = DEFAULT_DELAY_S,
        model: dict[str, Any] | None = None,
        log_every_s: float = DEFAULT_LOG_EVERY_S,
        name: str = "posepipe-frame-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if not 0.0 <= delay_s <= 10.0:
            raise ValueError(f"delay_s must be within [0, 10] seconds, not {delay_s}")
        self.engine = engine
        self.max_batch = max_batch
        self.delay_s = delay_s
        self.model = dict(model or {})
        self.log_every_s = log_every_s
        self.name = name
        self._cond = threading.Condition()
        self._queue: deque[_Request] = deque()
        self._engines: dict[tuple[float, float], TorchBlazePose] = {
            (engine.min_detection_confidence, engine.min_presence_confidence): engine
        }
        self._open: Counter[int] = Counter()  # open streams per engine (by id)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._idle_since = 0.0
        self._stats = BatchStats()
        self._logged_stats = BatchStats()
        self._logged_at = time.monotonic()

    # -- streams ----------------------------------------------------------------------------------

    def open_stream(
        self,
        *,
        max_poses: int = 4,
        min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE,
        min_detection_confidence: float | None = None,
        min_presence_confidence: float | None = None,
    ) -> BatchedStream:
        """A new stream (its own tracker); close it when done so that batches stop waiting for it."""
        engine = self._engine_for(min_detection_confidence, min_presence_confidence)
        tracker = VideoRegionTracker(
            engine, max_poses=max_poses, min_tracking_confidence=min_tracking_confidence
        )
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            self._open[id(engine)] += 1
        return BatchedStream(self, tracker)

    def open_estimator(self, options: PoseEngineOptions) -> BatchedVideoEstimator:
        """A stream with :class:`posepipe.engines.base.PoseEstimator`'s interface, for ``infer_chunk``."""
        if options.running_mode is not RunningMode.VIDEO:
            raise ValueError("the frame batcher serves VIDEO mode only")
        stream = self.open_stream(
            max_poses=options.max_poses,
            min_tracking_confidence=options.min_tracking_confidence,
            min_detection_confidence=options.min_detection_confidence,
            min_presence_confidence=options.min_presence_confidence,
        )
        return BatchedVideoEstimator(stream, options, self.model)

    def _engine_for(self, detection: float | None, presence: float | None) -> TorchBlazePose:
        base = self.engine
        key = (
            base.min_detection_confidence if detection is None else detection,
            base.min_presence_confidence if presence is None else presence,
        )
        with self._cond:
            engine = self._engines.get(key)
            if engine is None:
                engine = base.with_thresholds(*key)
                self._engines[key] = engine
            return engine

    def _stream_closed(self, stream: BatchedStream) -> None:
        with self._cond:
            self._open[id(stream.tracker.engine)] -= 1
            self._cond.notify_all()  # a batch waiting for this stream need not wait any more

    # -- frames -----------------------------------------------------------------------------------

    def _submit(self, stream: BatchedStream, rgb: RGBImage, timestamp_ms: int) -> _Request:
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            shape = getattr(rgb, "shape", None)
            raise ValueError(
                f"expected an RGB uint8 image (H, W, 3), got {getattr(rgb, 'dtype', type(rgb))} {shape}"
            )
        request = _Request(stream, rgb, int(timestamp_ms), time.monotonic())
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            self._queue.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return request

    def _wait(self, request: _Request) -> list[Person]:
        while not request.done.wait(_WORKER_CHECK_S):
            thread = self._thread
            if thread is None or not thread.is_alive():
                if request.done.is_set():
                    break
                raise BatcherClosedError(f"{self.name}: the worker stopped before this frame ran")
        if request.error is not None:
            raise request.error
        assert request.persons is not None
        return request.persons

    # -- the worker -------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[list[_Request], bool] | None:
        """The next batch (waiting for it as the module docstring says) and whether it starts
        because its delay ran out; None to stop."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue[0]
            engine = first.stream.tracker.engine
            # Counted from when the worker could start it: frames queued while the previous batch
            # ran would otherwise leave at once, and streams would settle into alternate batches.
            deadline = max(first.submitted, self._idle_since) + self.delay_s
            timed_out = False
            while True:
                waiting = sum(1 for r in self._queue if r.stream.tracker.engine is engine)
                if waiting >= self.max_batch or waiting >= self._open[id(engine)] or self._closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                self._cond.wait(remaining)
            batch: list[_Request] = []
            rest: deque[_Request] = deque()
            for request in self._queue:
                if request.stream.tracker.engine is engine and len(batch) < self.max_batch:
                    batch.append(request)
                else:
                    rest.append(request)
            self._queue = rest
            return batch, timed_out

    def _work(self) -> None:
        try:
            while (next_batch := self._next_batch()) is not None:
                self._run(*next_batch)
                self._idle_since = time.monotonic()
                self._maybe_log()
        except BaseException as exc:  # pragma: no cover - a bug in the worker itself: fail, don't hang
            log.exception("%s: the worker failed", self.name)
            with self._cond:
                self._closed = True
                pending, self._queue = list(self._queue), deque()
            for request in pending:
                request.finish(error=BatcherClosedError(f"{self.name}: the worker failed: {exc}"))
            raise

    def _run(self, batch: list[_Request], timed_out: bool) -> None:
        started = time.monotonic()
        size = len(batch)
        try:
            results = detect_for_video_batch(
                [r.stream.tracker for r in batch], [r.rgb for r in batch], [r.timestamp_ms for r in batch]
            )
        except Exception as exc:
            self._account(batch, started, size, timed_out, failed=True)
            if size == 1:
                batch[0].finish(error=exc)
                return
            # No tracker changed: run each frame alone, so that only a failing one fails.
            log.warning("%s: a batch of %d failed (%s); running its frames one by one", self.name, size, exc)
            for request in batch:
                try:
                    alone = detect_for_video_batch(
                        [request.stream.tracker], [request.rgb], [request.timestamp_ms]
                    )
                except Exception as error:
                    request.finish(error=error)
                else:
                    request.finish(persons=alone[0])
            return
        self._account(batch, started, size, timed_out, failed=False)
        for request, found in zip(batch, results, strict=True):
            request.finish(persons=found)

    def _account(
        self, batch: list[_Request], started: float, size: int, timed_out: bool, *, failed: bool
    ) -> None:
        with self._cond:
            waits = [started - request.submitted for request in batch]
            self._stats.add(size, sum(waits), timed_out)
            for request, wait in zip(batch, waits, strict=True):
                request.stream._stats.add(size, wait, timed_out)
            if failed:
                self._stats.failed_batches += 1

    def _maybe_log(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._logged_at < self.log_every_s:
            return
        with self._cond:
            total = self._stats.copy()
            since = BatchStats(
                total.sizes - self._logged_stats.sizes,
                total.failed_batches - self._logged_stats.failed_batches,
                total.wait_s - self._logged_stats.wait_s,
                total.timed_out_batches - self._logged_stats.timed_out_batches,
            )
            self._logged_stats, self._logged_at = total, now
        if since.batches:
            log.info(
                "%s: %d frames in %d batches (mean %.2f, max %d; sizes %s), mean wait %.1f ms, "
                "%d started by the delay",
                self.name, since.frames, since.batches, since.mean_size, since.max_size,
                dict(sorted(since.sizes.items())), 1000 * since.wait_s / since.frames,
                since.timed_out_batches,
            )  # fmt: skip

    # -- the batcher as a whole -------------------------------------------------------------------

    @property
    def stats(self) -> BatchStats:
        """Every batch run so far (a copy)."""
        with self._cond:
            return self._stats.copy()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Run the frames already queued, then stop the worker; refuse frames from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        self._maybe_log(force=True)

    def __enter__(self) -> FrameBatcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BatchedStream:
    """One stream (a chunk) of a :class:`FrameBatcher`: its own tracker, frames one at a time."""

    def __init__(self, batcher: FrameBatcher, tracker: VideoRegionTracker) -> None:
        self.batcher = batcher
        self.tracker = tracker
        self._stats = StreamStats()
        self._busy = threading.Lock()
        self._closed = False

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in this stream's next frame, run in a batch with other streams' frames."""
        if self._closed:
            raise RuntimeError("the stream is closed")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a stream takes one frame at a time (one thread per stream)")
        try:
            return self.batcher._wait(self.batcher._submit(self, rgb, timestamp_ms))
        finally:
            self._busy.release()

    @property
    def stats(self) -> StreamStats:
        """The batches this stream's frames went into (a copy)."""
        with self.batcher._cond:
            return self._stats.copy()

    def close(self) -> None:
        """Leave the batcher (idempotent); the stream takes no more frames."""
        if not self._closed:
            self._closed = True
            self.batcher._stream_closed(self)

    def __enter__(self) -> BatchedStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BatchedVideoEstimator:
    """A :class:`BatchedStream` behind :class:`posepipe.engines.base.PoseEstimator`'s interface (VIDEO mode).

    ``model_dict`` is what :class:`~posepipe.engines.torch.estimator.TorchPoseEstimator` reports
    for the same options: batching changes how frames reach the networks, not the model.
    """

    def __init__(self, stream: BatchedStream, options: PoseEngineOptions, model: dict[str, Any]) -> None:
        self.stream = stream
        self.options = options
        self._model = model

    def model_dict(self) -> dict[str, Any]:
        return {**self._model, **self.options.settings_dict()}

    def detect(self, rgb: RGBImage) -> list[Person]:
        raise RuntimeError("detect() needs an engine in IMAGE mode; the frame batcher serves VIDEO mode")

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        return self.stream.detect_for_video(rgb, timestamp_ms)

    @property
    def stats(self) -> StreamStats:
        return self.stream.stats

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> BatchedVideoEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_frame_batcher(
    model_path: Path | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | TorchDtype | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    delay_s: float = DEFAULT_DELAY_S,
    log_every_s: float = DEFAULT_LOG_EVERY_S,
) -> FrameBatcher:
    """A batcher over the bundle's networks, on the device and in the dtype
    :class:`~posepipe.engines.torch.estimator.TorchPoseEstimator` picks for the same arguments
    (the networks are shared with the estimators of this process); its streams report the model
    as those estimators do."""
    from posepipe.engines.torch.estimator import TorchPoseEstimator

    estimator = TorchPoseEstimator(
        PoseEngineOptions(model_path=model_path, engine="torch"), device=device, dtype=dtype
    )
    settings = estimator.options.settings_dict()
    model = {key: value for key, value in estimator.model_dict().items() if key not in settings}
    return FrameBatcher(
        estimator.engine, max_batch=max_batch, delay_s=delay_s, model=model, log_every_s=log_every_s
    )
