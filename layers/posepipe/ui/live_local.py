"""The ``local`` live source: MediaPipe's PoseLandmarker in ``LIVE_STREAM`` mode on this machine,
loaded in a thread of its own, one frame in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posepipe.result import Person
from posepipe.ui.live_scaling import scale_down, unscale
from posepipe.ui.live_types import LiveOptions, PoseAnswer, RGBFrame


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
