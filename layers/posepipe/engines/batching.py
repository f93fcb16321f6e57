"""Batching the frames of concurrent video streams, whatever engine runs them.

The endpoint runs several chunks at once in one process (gunicorn threads), each in VIDEO mode
with its own tracking state. Run one by one, each chunk's frame is a batch of one on the device.
A :class:`StreamBatcher` gathers them instead: every stream (:class:`BatchedStream`, one per
chunk, owning its *tracker*: the engine's tracking state for that stream) hands its current
frame to the batcher and blocks; one worker thread waits up to ``delay_s`` after the first frame
of a batch for the other streams' frames (or until ``max_batch`` frames, or every open stream of
the same group, have one waiting), runs ``run_batch(trackers, frames, timestamps)`` once over all
of them and hands each stream its persons.

- Engines: ``run_batch`` is the engine's own batched step: for the top-down engine
  :func:`posepipe.engines.topdown.estimator.detect_for_video_batch` (the detector over the frames
  of a round, the landmark networks over every person of every frame), for BlazePose in torch
  :func:`posepipe.engines.torch.video_tracking.detect_for_video_batch`. Trackers batch together
  when ``group_of`` gives them the same key (their shared networks and engine thresholds).
- Results: each stream's persons are what its tracker alone would give, up to the networks'
  batch-dependent rounding.
- Failures: a frame that is not an RGB ``uint8`` image is refused in the caller's thread. If a
  batch fails (a frame the pipeline cannot take, the device out of memory), no tracker has
  changed yet (``run_batch`` must guarantee it), and the batcher runs each of its frames alone:
  only the stream whose frame fails gets the exception, the others their persons. A stream whose
  owner fails elsewhere (a video that stops decoding) closes, and the others stop waiting for it.
- Shutdown: :meth:`StreamBatcher.close` runs the frames already queued, then stops the worker;
  frames handed in after that raise :class:`BatcherClosedError`.
- Accounting: :attr:`StreamBatcher.stats` (and each stream's own) counts the batches and their
  sizes; the worker logs a summary every ``log_every_s`` seconds and at close.

Nothing here knows about HTTP, torch or a device.

One module over 300 lines on purpose: the batcher's worker thread and the streams that wait on it
share one lock, one condition and one queue, which only read safely in one place (its statistics are
:mod:`posepipe.engines.batch_stats`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import numpy as np

from posepipe.engines.base import PoseEngineOptions, RGBImage
from posepipe.engines.batch_stats import BatchStats, StreamStats
from posepipe.result import Person

T = TypeVar("T")
BatchRunner = Callable[[Sequence[Any], Sequence[RGBImage], Sequence[int]], list[list[Person]]]
"""``run_batch(trackers, frames, timestamps_ms)``: one frame of each tracker's stream, batched."""

log = logging.getLogger("posepipe.engines.batcher")

DEFAULT_MAX_BATCH = 32
DEFAULT_DELAY_S = 0.004
DEFAULT_LOG_EVERY_S = 60.0
_WORKER_CHECK_S = 1.0  # how often a waiting stream checks that the worker is still alive


class BatcherClosedError(RuntimeError):
    """The batcher was closed: it takes no more frames."""


@dataclass(eq=False)
class _Request(Generic[T]):
    stream: BatchedStream[T]
    rgb: RGBImage
    timestamp_ms: int
    submitted: float
    done: threading.Event = field(default_factory=threading.Event)
    persons: list[Person] | None = None
    error: BaseException | None = None

    def finish(self, persons: list[Person] | None = None, error: BaseException | None = None) -> None:
        self.persons, self.error = persons, error
        self.done.set()


class StreamBatcher(Generic[T]):
    """Runs the current frames of concurrent streams as one batch (see the module docstring).

    ``run_batch`` advances a batch of trackers (all of one group) by one frame each;
    ``group_of(tracker)`` says which trackers may share a batch. ``max_batch``: the most frames
    in one batch (the networks may split it further). ``delay_s``: how long a batch waits for more
    frames after its first one arrived. ``model``: what the streams' results record of the model.
    """

    def __init__(
        self,
        run_batch: BatchRunner,
        group_of: Callable[[T], Hashable],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay_s: float = DEFAULT_DELAY_S,
        model: dict[str, Any] | None = None,
        log_every_s: float = DEFAULT_LOG_EVERY_S,
        name: str = "posepipe-frame-batcher",
        logger: logging.Logger | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if not 0.0 <= delay_s <= 10.0:
            raise ValueError(f"delay_s must be within [0, 10] seconds, not {delay_s}")
        self.run_batch = run_batch
        self.group_of = group_of
        self.max_batch = max_batch
        self.delay_s = delay_s
        self.model = dict(model or {})
        self.log_every_s = log_every_s
        self.name = name
        self.log = logger or log
        self._cond = threading.Condition()
        self._queue: deque[_Request[T]] = deque()
        self._open: Counter[Hashable] = Counter()  # open streams per group
        self._closed = False
        self._thread: threading.Thread | None = None
        self._idle_since = 0.0
        self._stats = BatchStats()
        self._logged_stats = BatchStats()
        self._logged_at = time.monotonic()

    # -- streams ----------------------------------------------------------------------------------

    def add_stream(self, tracker: T) -> BatchedStream[T]:
        """A new stream over ``tracker``; close it when done so that batches stop waiting for it."""
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            self._open[self.group_of(tracker)] += 1
        return BatchedStream(self, tracker)

    def estimator(self, stream: BatchedStream[T], options: PoseEngineOptions) -> BatchedVideoEstimator:
        """``stream`` with :class:`posepipe.engines.base.PoseEstimator`'s interface, for ``infer_chunk``."""
        return BatchedVideoEstimator(stream, options, self.model)

    def _stream_closed(self, stream: BatchedStream[T]) -> None:
        with self._cond:
            self._open[self.group_of(stream.tracker)] -= 1
            self._cond.notify_all()  # a batch waiting for this stream need not wait any more

    # -- frames -----------------------------------------------------------------------------------

    def _submit(self, stream: BatchedStream[T], rgb: RGBImage, timestamp_ms: int) -> _Request[T]:
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

    def _wait(self, request: _Request[T]) -> list[Person]:
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

    def _next_batch(self) -> tuple[list[_Request[T]], bool] | None:
        """The next batch (waiting for it as the module docstring says) and whether it starts
        because its delay ran out; None to stop."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue[0]
            group = self.group_of(first.stream.tracker)
            # Counted from when the worker could start it: frames queued while the previous batch
            # ran would otherwise leave at once, and streams would settle into alternate batches.
            deadline = max(first.submitted, self._idle_since) + self.delay_s
            timed_out = False
            while True:
                waiting = sum(1 for r in self._queue if self.group_of(r.stream.tracker) == group)
                if waiting >= self.max_batch or waiting >= self._open[group] or self._closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                self._cond.wait(remaining)
            batch: list[_Request[T]] = []
            rest: deque[_Request[T]] = deque()
            for request in self._queue:
                if self.group_of(request.stream.tracker) == group and len(batch) < self.max_batch:
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
            self.log.exception("%s: the worker failed", self.name)
            with self._cond:
                self._closed = True
                pending, self._queue = list(self._queue), deque()
            for request in pending:
                request.finish(error=BatcherClosedError(f"{self.name}: the worker failed: {exc}"))
            raise

    def _run(self, batch: list[_Request[T]], timed_out: bool) -> None:
        started = time.monotonic()
        size = len(batch)
        try:
            results = self.run_batch(
                [r.stream.tracker for r in batch], [r.rgb for r in batch], [r.timestamp_ms for r in batch]
            )
        except Exception as exc:
            self._account(batch, started, size, timed_out, failed=True)
            if size == 1:
                batch[0].finish(error=exc)
                return
            # No tracker changed: run each frame alone, so that only a failing one fails.
            self.log.warning(
                "%s: a batch of %d failed (%s); running its frames one by one", self.name, size, exc
            )
            for request in batch:
                try:
                    alone = self.run_batch([request.stream.tracker], [request.rgb], [request.timestamp_ms])
                except Exception as error:
                    request.finish(error=error)
                else:
                    request.finish(persons=alone[0])
            return
        self._account(batch, started, size, timed_out, failed=False)
        for request, found in zip(batch, results, strict=True):
            request.finish(persons=found)

    def _account(
        self, batch: list[_Request[T]], started: float, size: int, timed_out: bool, *, failed: bool
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
            self.log.info(
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BatchedStream(Generic[T]):
    """One stream (a chunk) of a :class:`StreamBatcher`: its own tracker, frames one at a time."""

    def __init__(self, batcher: StreamBatcher[T], tracker: T) -> None:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BatchedVideoEstimator:
    """A :class:`BatchedStream` behind :class:`posepipe.engines.base.PoseEstimator`'s interface (VIDEO mode).

    ``model_dict`` is what the engine alone reports for the same options: batching changes how
    frames reach the networks, not the model.
    """

    def __init__(self, stream: BatchedStream[Any], options: PoseEngineOptions, model: dict[str, Any]) -> None:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
