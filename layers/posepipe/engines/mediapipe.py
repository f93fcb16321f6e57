"""The ``"mediapipe"`` engine: MediaPipe Tasks' ``PoseLandmarker`` (TFLite/XNNPACK on the CPU)
behind :class:`posepipe.engines.base.PoseEstimator`. MediaPipe runs its person detector, landmark
model and region tracking inside one graph; this module adapts its results to posepipe's types.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import numpy as np

from posepipe.assets.catalogue import resolve_model
from posepipe.assets.pose_model import ModelInfo, model_info
from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode
from posepipe.result import Person


class MediaPipePoseEstimator:
    """MediaPipe's PoseLandmarker behind posepipe's types (the ``"mediapipe"`` engine).

    ``detect`` for single images (IMAGE mode); ``detect_for_video`` for the frames of one video in
    order (VIDEO mode: the landmarks of one frame guide the next, and the detector runs only
    while fewer than ``max_poses`` persons are tracked); ``detect_async`` for a live stream
    (LIVE_STREAM mode: tracks as VIDEO does, returns at once, and hands each result to
    ``options.result_callback`` on MediaPipe's thread, dropping frames when it falls behind).
    """

    def __init__(self, options: PoseEngineOptions) -> None:
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions
        from mediapipe.tasks.python.vision import RunningMode as MpRunningMode

        self.options = options
        path = resolve_model(options.model_path)
        self.model: ModelInfo = model_info(path)
        mode = {
            RunningMode.IMAGE: MpRunningMode.IMAGE,
            RunningMode.VIDEO: MpRunningMode.VIDEO,
            RunningMode.LIVE_STREAM: MpRunningMode.LIVE_STREAM,
        }[options.running_mode]
        self._landmarker = PoseLandmarker.create_from_options(
            PoseLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                running_mode=mode,
                num_poses=options.max_poses,
                min_pose_detection_confidence=options.min_detection_confidence,
                min_pose_presence_confidence=options.min_presence_confidence,
                min_tracking_confidence=options.min_tracking_confidence,
                output_segmentation_masks=False,
                result_callback=self._on_live_result if options.result_callback is not None else None,
            )
        )
        self._last_timestamp_ms = -1

    def model_dict(self) -> dict[str, Any]:
        return {
            **self.model.to_dict(),
            "engine": "mediapipe",
            **self.options.settings_dict(),
        }

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode)."""
        if self.options.running_mode is not RunningMode.IMAGE:
            raise RuntimeError("detect() needs an engine in IMAGE mode")
        return self._persons(self._landmarker.detect(_mp_image(rgb)), rgb)

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode); timestamps must increase."""
        if self.options.running_mode is not RunningMode.VIDEO:
            raise RuntimeError("detect_for_video() needs an engine in VIDEO mode")
        # MediaPipe needs strictly increasing timestamps; streams with repeated pts get nudged.
        timestamp_ms = max(int(timestamp_ms), self._last_timestamp_ms + 1)
        self._last_timestamp_ms = timestamp_ms
        return self._persons(self._landmarker.detect_for_video(_mp_image(rgb), timestamp_ms), rgb)

    def detect_async(self, rgb: RGBImage, timestamp_ms: int) -> None:
        """Send the next frame of a live stream (LIVE_STREAM mode); returns at once.

        Its persons arrive later through ``options.result_callback`` with this ``timestamp_ms``
        (or never, when MediaPipe drops the frame to keep up). Timestamps must strictly increase:
        unlike VIDEO mode's file timestamps, a live stream's are the caller's clock, so a
        non-increasing one is an error (:class:`ValueError`), not nudged.
        """
        if self.options.running_mode is not RunningMode.LIVE_STREAM:
            raise RuntimeError("detect_async() needs an engine in LIVE_STREAM mode")
        timestamp_ms = int(timestamp_ms)
        if timestamp_ms <= self._last_timestamp_ms:
            raise ValueError(
                f"LIVE_STREAM timestamps must strictly increase: got {timestamp_ms} ms after "
                f"{self._last_timestamp_ms} ms"
            )
        image = _mp_image(rgb)
        self._landmarker.detect_async(image, timestamp_ms)
        self._last_timestamp_ms = timestamp_ms

    def _on_live_result(self, result: Any, output_image: Any, timestamp_ms: int) -> None:
        """MediaPipe's LIVE_STREAM callback: its result as posepipe persons, to the user's callback."""
        callback = self.options.result_callback
        if callback is None:
            return
        persons = _persons_of(result, int(output_image.width), int(output_image.height))
        callback(persons, int(timestamp_ms))

    @staticmethod
    def _persons(result: Any, rgb: RGBImage) -> list[Person]:
        height, width = rgb.shape[:2]
        return _persons_of(result, width, height)

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> MediaPipePoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _persons_of(result: Any, width: int, height: int) -> list[Person]:
    """A MediaPipe ``PoseLandmarkerResult`` as persons in pixels of a ``width`` x ``height`` frame."""
    return [
        Person.from_mediapipe(image, world, width, height)
        for image, world in zip(result.pose_landmarks, result.pose_world_landmarks, strict=True)
    ]


def _mp_image(rgb: RGBImage) -> Any:
    import mediapipe as mp

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    # MediaPipe reads the buffer as packed rows: a strided view (e.g. PyAV's padded rows) would be
    # read as garbage without an error, so always hand it a C-contiguous array.
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
