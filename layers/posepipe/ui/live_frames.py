"""The live mode's frame path, without Streamlit or a browser: poses for camera frames, drawn over them.

The WebRTC video thread hands each camera frame to :meth:`LivePoseSource.process`, which

1. offers the frame to the source chosen *now* (read from shared state on every frame, so the
   source can be switched while the stream runs):

   - ``cloud``: :class:`CloudFrameSender` JPEG-compresses the frame and ``POST``\\ s it to
     ``/images``, with up to ``max_in_flight`` requests in flight; when every slot is busy the
     frame is dropped, never queued;
   - ``local``: :class:`LocalLiveEngine`, the top-down engine ``posepipe video`` runs (CenterNet
     person detector, BlazePose landmarks, tracking in VIDEO mode) on this machine, in a worker
     thread, one frame in flight, dropping the frames that come while it is busy;

2. draws the latest persons over the frame (:func:`posepipe.annotation.drawing.draw_persons`) and returns
   it. Answers come back on other threads, in any order: the answer of the newest frame wins and
   an older one arriving later is discarded (:attr:`LiveStats.stale`). Persons get stable ids
   (their colours) from :class:`posepipe.postprocess.ids.PersonTracker`, and are smoothed with the
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
from dataclasses import replace
from pathlib import Path
from typing import Any

from posepipe.annotation.drawing import draw_persons
from posepipe.postprocess.ids import PersonTracker
from posepipe.postprocess.smoothing import LandmarkSmoother, SmoothingOptions
from posepipe.result import Frame
from posepipe.ui.live_cloud import CloudFrameSender
from posepipe.ui.live_local import LocalLiveEngine
from posepipe.ui.live_types import (
    FrameMonitor,
    ImagePoster,
    LiveOptions,
    LiveStats,
    PoseAnswer,
    RGBFrame,
    draw_options,
)
from posepipe.ui.monitor import FrameTiming
from posepipe.ui.settings import LiveSource


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
