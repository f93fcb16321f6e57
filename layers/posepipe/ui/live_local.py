"""The ``local`` live source: the top-down engine that ``posepipe video`` runs by default (the
CenterNet person detector, then BlazePose's landmarks on each person, tracking by detection in
VIDEO mode), on this machine, in a worker thread of its own, one frame in flight.

The engine is loaded, run and closed on that one thread only (an engine is not thread-safe), and
keeps its tracking state from frame to frame: each frame goes in at its capture time, so the
persons it finds follow on from the last frame it ran (the frames dropped in between are never
seen by it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posepipe.ui.live_scaling import scale_down, unscale
from posepipe.ui.live_types import LiveOptions, PoseAnswer, RGBFrame

if TYPE_CHECKING:
    from posepipe.engines.base import PoseEstimator

JOIN_TIMEOUT_S = 10.0  # how long :meth:`LocalLiveEngine.close` waits for the worker to finish


@dataclass(frozen=True)
class _Load:
    """What the engine should be: loaded for ``max_poses``, as asked at ``generation``."""

    generation: int
    max_poses: int


@dataclass(frozen=True)
class _Job:
    """One frame handed to the worker."""

    load: _Load
    rgb: RGBFrame
    max_side: int
    timestamp_ms: int
    seq: int
    captured_s: float
    sent_s: float


class LocalLiveEngine:
    """The top-down engine in VIDEO mode on this machine, on a worker thread, one frame in flight.

    The worker starts, and loads the engine, at the first :meth:`offer` (frames offered until the
    engine is ready are dropped), and loads it again when ``max_poses`` changes. A frame offered
    while the previous one is still being processed is dropped. Each frame's timestamp is its
    capture time (``captured_s``, kept increasing), so the engine tracks its persons from one
    frame it ran to the next. Answers go to ``deliver`` and failures, as messages, to
    ``on_error``, both on the worker thread. :meth:`release` unloads the engine and ends the
    worker (the stream stopped); the next :meth:`offer` starts them again.
    """

    def __init__(
        self,
        deliver: Callable[[PoseAnswer], None],
        on_error: Callable[[str], None],
        *,
        model_path: Path | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._deliver = deliver
        self._on_error = on_error
        self._model_path = model_path
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._generation = 0
        self._wanted: _Load | None = None  # the engine asked for (None: none, unloaded)
        self._ready: _Load | None = None  # the engine the worker has loaded
        self._job: _Job | None = None  # a frame offered, not yet taken by the worker
        self._busy = False  # a frame is in flight, from its offer to its answer
        self._worker: threading.Thread | None = None
        self._model: dict[str, Any] | None = None  # the loaded engine's model_dict()
        self._last_timestamp_ms = -1
        self._closed = False

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._wanted is not None and self._ready == self._wanted

    def model(self) -> dict[str, Any] | None:
        """What the engine loaded last says of itself (its ``model_dict()``), ``None`` before."""
        with self._lock:
            return None if self._model is None else dict(self._model)

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether the engine is loaded within ``timeout_s`` (after an :meth:`offer` started it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready:
                return True
            time.sleep(0.02)
        return self.ready

    def offer(self, rgb: RGBFrame, seq: int, captured_s: float, options: LiveOptions) -> bool:
        """Hand this frame to the engine (``True``), or drop it (``False``): loading, or busy."""
        with self._lock:
            if self._closed:
                return False
            wanted = self._wanted
            if wanted is None or wanted.max_poses != options.max_poses:
                self._generation += 1
                wanted = self._wanted = _Load(self._generation, options.max_poses)
                self._job, self._busy = None, False  # an answer of the old engine is not wanted
                self._start_worker()
                return False
            if self._ready != wanted or self._busy:
                return False
            timestamp_ms = max(round(captured_s * 1000.0), self._last_timestamp_ms + 1)
            self._last_timestamp_ms = timestamp_ms
            self._job = _Job(wanted, rgb, options.max_side, timestamp_ms, seq, captured_s, self._clock())
            self._busy = True
            self._wake.notify_all()
        return True

    def _start_worker(self) -> None:
        """The worker, unless it runs (lock held); it loads what :attr:`_wanted` asks."""
        if self._worker is not None:
            self._wake.notify_all()
            return
        self._worker = threading.Thread(target=self._work, name="posepipe-live-local", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        """The worker: loads, runs and closes the engine, until it is unloaded or closed."""
        engine: PoseEstimator | None = None
        have: _Load | None = None  # what ``engine`` was loaded for
        try:
            while True:
                with self._lock:
                    while (
                        have is not None and not self._closed and self._wanted == have and self._job is None
                    ):
                        self._wake.wait()
                    wanted = None if self._closed else self._wanted
                    job = None
                    if wanted is not None and wanted == have:
                        job, self._job = self._job, None
                    elif wanted is None and have is None:
                        self._worker = None  # with the lock held: the next offer starts another
                        return
                if engine is not None and wanted == have:
                    if job is not None:
                        self._run(engine, job)
                    continue
                if engine is not None:  # unloaded, closed, or wanted for another max_poses
                    self._close_engine(engine)
                    engine = have = None
                if wanted is not None:
                    opened = self._open(wanted)
                    with self._lock:
                        if opened is not None:
                            engine, self._model = opened
                            have = self._ready = wanted
                        elif self._wanted == wanted:
                            self._wanted = None  # the next offer tries again
        finally:
            with self._lock:
                if self._worker is threading.current_thread():  # it failed: the next offer starts another
                    self._worker, self._ready = None, None
            if engine is not None:
                self._close_engine(engine)

    def _open(self, load: _Load) -> tuple[PoseEstimator, dict[str, Any]] | None:
        """The engine ``posepipe video`` runs by default (``--engine mediapipe``: its networks on
        the CPU's runtimes; ``--detector centernet``), in VIDEO mode, for ``load.max_poses``, and
        its model description; ``None`` (and a message to ``on_error``) when it does not load."""
        try:
            from posepipe.engines.base import DEFAULT_DETECTOR, PoseEngineOptions, RunningMode
            from posepipe.engines.choice import open_pose_engine

            engine = open_pose_engine(
                PoseEngineOptions(
                    model_path=self._model_path,
                    running_mode=RunningMode.VIDEO,
                    max_poses=load.max_poses,
                    engine="mediapipe",
                    detector=DEFAULT_DETECTOR,
                )
            )
        except Exception as exc:
            self._on_error(f"The local engine could not start: {type(exc).__name__}: {exc}")
            return None
        try:
            return engine, engine.model_dict()
        except Exception as exc:
            self._close_engine(engine)
            self._on_error(f"The local engine could not start: {type(exc).__name__}: {exc}")
            return None

    def _run(self, engine: PoseEstimator, job: _Job) -> None:
        """One frame through the engine, its answer delivered (unless no longer wanted)."""
        try:
            small, factor = scale_down(job.rgb, job.max_side)
            persons = unscale(engine.detect_for_video(small, job.timestamp_ms), factor)
        except Exception as exc:
            with self._lock:
                current = self._wanted == job.load
                if current:
                    self._busy = False
            if current:
                self._on_error(f"The local engine failed on a frame: {type(exc).__name__}: {exc}")
            return
        done = self._clock()
        with self._lock:
            if self._wanted != job.load:
                return  # released, closed or reloaded meanwhile
            self._busy = False
        answer = PoseAnswer(
            seq=job.seq,
            captured_s=job.captured_s,
            source="local",
            persons=persons,
            inference_s=done - job.sent_s,
        )
        try:
            self._deliver(answer)
        except Exception as exc:  # the worker goes on with the next frame
            self._on_error(f"The local engine's answer was not taken: {type(exc).__name__}: {exc}")

    def _close_engine(self, engine: PoseEstimator) -> None:
        try:
            engine.close()
        except Exception as exc:
            self._on_error(f"The local engine did not close: {type(exc).__name__}: {exc}")

    def release(self) -> None:
        """Unload the engine and end its worker (the stream stopped); the next :meth:`offer` loads
        it again. Returns at once: the worker closes the engine after the frame it may be running."""
        with self._lock:
            self._wanted = self._ready = self._job = None
            self._busy = False
            self._wake.notify_all()

    def close(self) -> None:
        """Release for good (offers are dropped from now on), waiting a while for the worker."""
        with self._lock:
            self._closed = True
            worker = self._worker
        self.release()
        if worker is not None and worker is not threading.current_thread():
            worker.join(JOIN_TIMEOUT_S)
