"""The performance monitor: rendered FPS, frames sent and dropped, and each frame's round trip
split into encode, network, server inference and drawing, as rolling p50/p95 and a history.

:class:`PerfMonitor` is thread-safe: the live mode's video thread writes to it while the
Streamlit script reads :meth:`PerfMonitor.snapshot`. Only :func:`render_monitor` knows Streamlit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STAGES: tuple[str, ...] = ("encode", "network", "inference", "draw")


@dataclass(frozen=True)
class FrameTiming:
    """One frame's round trip, in seconds, stage by stage.

    ``encode``: compressing the frame (JPEG); ``network``: the request's time less the server's
    (transfer, API front, invocation); ``inference``: the server's own time; ``draw``: drawing
    the result.
    """

    encode_s: float
    network_s: float
    inference_s: float
    draw_s: float

    @property
    def total_s(self) -> float:
        return self.encode_s + self.network_s + self.inference_s + self.draw_s

    def stage_s(self, stage: str) -> float:
        """The seconds of one of :data:`STAGES` (or ``"total"``)."""
        if stage == "total":
            return self.total_s
        seconds: float = getattr(self, f"{stage}_s")
        return seconds


@dataclass(frozen=True)
class StageStats:
    """Rolling percentiles of one stage over the monitor's window, in milliseconds."""

    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class HistoryPoint:
    """One recorded frame for the chart: seconds since the monitor started, stage milliseconds."""

    t_s: float
    encode_ms: float
    network_ms: float
    inference_ms: float
    draw_ms: float

    @property
    def total_ms(self) -> float:
        return self.encode_ms + self.network_ms + self.inference_ms + self.draw_ms


@dataclass(frozen=True)
class MonitorSnapshot:
    """What the monitor shows, at one moment.

    ``fps``: frames rendered per second over the last ``fps_window_s`` seconds (0 when fewer than
    two were), measured up to now, so that it falls when frames stop coming; ``stages``: p50/p95
    per stage of :data:`STAGES` and ``"total"`` over the last ``window`` timings (empty before
    the first); ``history``: the last timings, oldest first.
    """

    fps: float
    frames_sent: int
    frames_dropped: int
    frames_rendered: int
    timings: int
    stages: dict[str, StageStats]
    history: tuple[HistoryPoint, ...]

    @property
    def drop_ratio(self) -> float:
        """Dropped frames as a share of the frames that were sent or dropped."""
        offered = self.frames_sent + self.frames_dropped
        return self.frames_dropped / offered if offered else 0.0


class PerfMonitor:
    """Counters and timings of frames, safe to write from one thread while another reads."""

    def __init__(
        self,
        *,
        window: int = 120,
        history: int = 240,
        fps_window_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or history < 1 or fps_window_s <= 0:
            raise ValueError("window and history must be at least 1 and fps_window_s above 0")
        self._clock = clock
        self._fps_window_s = fps_window_s
        self._lock = threading.Lock()
        self._started = clock()
        self._sent = 0
        self._dropped = 0
        self._rendered = 0
        self._recorded = 0
        self._render_times: deque[float] = deque()
        self._window: deque[FrameTiming] = deque(maxlen=window)
        self._history: deque[HistoryPoint] = deque(maxlen=history)

    def frame_sent(self) -> None:
        with self._lock:
            self._sent += 1

    def frame_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def frame_rendered(self) -> None:
        now = self._clock()
        with self._lock:
            self._rendered += 1
            self._render_times.append(now)
            self._forget_old_renders(now)

    def record(self, timing: FrameTiming) -> None:
        now = self._clock()
        point = HistoryPoint(
            t_s=now - self._started,
            encode_ms=timing.encode_s * 1000.0,
            network_ms=timing.network_s * 1000.0,
            inference_ms=timing.inference_s * 1000.0,
            draw_ms=timing.draw_s * 1000.0,
        )
        with self._lock:
            self._recorded += 1
            self._window.append(timing)
            self._history.append(point)

    def reset(self) -> None:
        """Back to nothing counted (the clock of the history restarts)."""
        with self._lock:
            self._started = self._clock()
            self._sent = self._dropped = self._rendered = self._recorded = 0
            self._render_times.clear()
            self._window.clear()
            self._history.clear()

    def snapshot(self) -> MonitorSnapshot:
        now = self._clock()
        with self._lock:
            self._forget_old_renders(now)
            renders = list(self._render_times)
            timings = list(self._window)
            history = tuple(self._history)
            sent, dropped, rendered, recorded = self._sent, self._dropped, self._rendered, self._recorded
        # Frames per second since the oldest frame in the window: the frame rate while frames
        # come, falling as soon as they stop coming.
        fps = 0.0
        if len(renders) >= 2 and now > renders[0]:
            fps = (len(renders) - 1) / (now - renders[0])
        stages: dict[str, StageStats] = {}
        if timings:
            for stage in (*STAGES, "total"):
                values_ms = np.array([t.stage_s(stage) for t in timings]) * 1000.0
                p50, p95 = np.percentile(values_ms, [50, 95])
                stages[stage] = StageStats(p50_ms=float(p50), p95_ms=float(p95))
        return MonitorSnapshot(fps, sent, dropped, rendered, recorded, stages, history)

    def _forget_old_renders(self, now: float) -> None:
        while self._render_times and now - self._render_times[0] > self._fps_window_s:
            self._render_times.popleft()


def history_columns(snapshot: MonitorSnapshot) -> dict[str, list[float]]:
    """The history as chart columns: milliseconds per stage, one row per recorded frame."""
    return {stage: [getattr(point, f"{stage}_ms") for point in snapshot.history] for stage in STAGES}


def render_monitor(snapshot: MonitorSnapshot) -> None:
    """Draw the snapshot in the Streamlit page: metrics, a p50/p95 table and a small line chart."""
    import streamlit as st

    fps, sent, dropped, rendered = st.columns(4)
    fps.metric("Rendered FPS", f"{snapshot.fps:.1f}")
    sent.metric("Frames sent", snapshot.frames_sent)
    dropped.metric("Frames dropped", snapshot.frames_dropped)
    rendered.metric("Frames rendered", snapshot.frames_rendered)
    if not snapshot.stages:
        st.caption("No frame timed yet.")
        return
    rows = [
        {"stage": stage, "p50 (ms)": round(stats.p50_ms, 1), "p95 (ms)": round(stats.p95_ms, 1)}
        for stage, stats in snapshot.stages.items()
    ]
    table, chart = st.columns([1, 2])
    table.dataframe(rows, hide_index=True, width="content")
    if len(snapshot.history) >= 2:
        chart.line_chart(history_columns(snapshot), height=200, x_label="frame", y_label="ms")
    else:
        chart.caption("The chart of each frame's stages starts with the second frame.")
