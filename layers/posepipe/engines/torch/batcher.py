r"""``FrameBatcher``: BlazePose in torch (its own detector, MediaPipe's tracking) over the frames
of many concurrent video streams, as one network batch: a :class:`posepipe.engines.batching.StreamBatcher`
whose trackers are :class:`~posepipe.engines.torch.video_tracking.VideoRegionTracker`\ s and whose
batch is :func:`~posepipe.engines.torch.video_tracking.detect_for_video_batch` (one detector
batch, one landmark batch).

- Thresholds: ``max_poses`` and ``min_tracking_confidence`` are per stream;
  ``min_detection_confidence`` and ``min_presence_confidence`` belong to the engine, so streams
  are grouped by them (one :class:`~posepipe.engines.torch.blazepose.TorchBlazePose` per pair,
  sharing the networks) and a batch holds one group's frames.
- Results: bit for bit what each tracker alone gives when the engine's networks see one image at
  a time (``batch_size=1``); within the float noise of batched convolutions otherwise.

The top-down engine's batcher is :func:`posepipe.engines.topdown.estimator.open_topdown_batcher`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from posepipe.engines.base import PoseEngineOptions, RunningMode, TorchDtype
from posepipe.engines.batching import (
    DEFAULT_DELAY_S,
    DEFAULT_LOG_EVERY_S,
    DEFAULT_MAX_BATCH,
    BatchedStream,
    BatchedVideoEstimator,
    BatcherClosedError,
    StreamBatcher,
)
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.video_tracking import (
    MIN_TRACKING_CONFIDENCE,
    VideoRegionTracker,
    detect_for_video_batch,
)

__all__ = [
    "BatchedStream",
    "BatchedVideoEstimator",
    "BatcherClosedError",
    "FrameBatcher",
    "open_frame_batcher",
]

log = logging.getLogger(__name__)


def _group(tracker: VideoRegionTracker) -> int:
    return id(tracker.engine)


class FrameBatcher(StreamBatcher[VideoRegionTracker]):
    """BlazePose's streams batched (see the module docstring). ``engine`` gives the networks,
    device, dtype and pipeline settings; its own thresholds are those of streams that do not name
    others."""

    def __init__(
        self,
        engine: TorchBlazePose,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay_s: float = DEFAULT_DELAY_S,
        model: dict[str, object] | None = None,
        log_every_s: float = DEFAULT_LOG_EVERY_S,
        name: str = "posepipe-frame-batcher",
    ) -> None:
        super().__init__(
            detect_for_video_batch, _group, max_batch=max_batch, delay_s=delay_s, model=model,
            log_every_s=log_every_s, name=name, logger=log,
        )  # fmt: skip
        self.engine = engine
        self._engines: dict[tuple[float, float], TorchBlazePose] = {
            (engine.min_detection_confidence, engine.min_presence_confidence): engine
        }

    def open_stream(
        self,
        *,
        max_poses: int = 4,
        min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE,
        min_detection_confidence: float | None = None,
        min_presence_confidence: float | None = None,
    ) -> BatchedStream[VideoRegionTracker]:
        """A new stream (its own tracker); close it when done so that batches stop waiting for it."""
        engine = self._engine_for(min_detection_confidence, min_presence_confidence)
        tracker = VideoRegionTracker(
            engine, max_poses=max_poses, min_tracking_confidence=min_tracking_confidence
        )
        return self.add_stream(tracker)

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
        return self.estimator(stream, options)

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
