"""MediaPipe's in-graph landmark smoothing, ported bit for bit (float32 as the C++ stores it).

``MultiplePoseLandmarksDetectorGraph`` smooths the landmarks of a tracked pose when
``smooth_landmarks`` is on (VIDEO mode with one pose): visibility through a low-pass filter,
image and world landmarks through ``mediapipe::OneEuroFilter`` with MediaPipe's own frequency
estimate and value scale. :class:`MediaPipeOneEuroFilter` is that port and is part of the torch
engine's parity with MediaPipe; posepipe's own smoothing after tracking (any engine, configurable)
is :class:`posepipe.postprocess.smoothing.OneEuroFilter`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# pose_landmarks_detector_graph.cc (MultiplePoseLandmarksDetectorGraph, smooth_landmarks)
VISIBILITY_ALPHA = 0.1
LANDMARKS_FILTER = (0.05, 80.0, 1.0)  # min_cutoff, beta, derivate_cutoff
WORLD_FILTER = (0.1, 40.0, 1.0)
# landmarks_smoothing_calculator.proto (OneEuroFilter defaults)
DEFAULT_FREQUENCY = 30.0
MIN_ALLOWED_OBJECT_SCALE = 1e-6


def _f32(value: float) -> float:
    """A float option as the C++ reads it from a proto ``float`` field."""
    return float(np.float32(value))


class MediaPipeLowPassFilter:
    """``mediapipe::LowPassFilter`` over an array of values filtered in lockstep (one C++ filter each).

    State and alpha in float32 (the C++ stores floats); ``alpha * value + (1.0 - alpha) * stored``
    is evaluated in double, as there. ``alpha`` may differ per value.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha: F32 = np.asarray(alpha, dtype=np.float32)
        self.raw: F32 | None = None
        self.stored: F32 | None = None

    def set_alpha(self, alpha: npt.ArrayLike) -> None:
        wanted = np.asarray(alpha, dtype=np.float32)
        usable = (wanted >= 0.0) & (wanted <= 1.0)  # out of range: logged and ignored by the C++
        self.alpha = np.where(usable, wanted, self.alpha).astype(np.float32)

    def apply(self, value: npt.ArrayLike) -> F32:
        value32 = np.asarray(value, dtype=np.float32)
        if self.stored is None:
            result = value32.copy()
        else:
            alpha = self.alpha.astype(np.float64)
            mixed = alpha * value32.astype(np.float64) + (1.0 - alpha) * self.stored.astype(np.float64)
            result = mixed.astype(np.float32)
        self.raw = value32.copy()
        self.stored = result
        return result

    def apply_with_alpha(self, value: npt.ArrayLike, alpha: npt.ArrayLike) -> F32:
        self.set_alpha(alpha)
        return self.apply(value)


class MediaPipeOneEuroFilter:
    """``mediapipe::OneEuroFilter`` over an array of values that share their timestamps.

    ``initial_last_time_ns`` is the ``last_time_`` a new filter starts from: -1 as in
    mediapipe 1.2.2's landmark smoothing (0 in ``CreateLegacyFilter``).
    """

    def __init__(
        self,
        min_cutoff: float,
        beta: float,
        derivate_cutoff: float,
        frequency: float = DEFAULT_FREQUENCY,
        initial_last_time_ns: int = -1,
    ) -> None:
        self.frequency = _f32(frequency)
        self.min_cutoff = _f32(min_cutoff)
        self.beta = _f32(beta)
        self.derivate_cutoff = _f32(derivate_cutoff)
        self.x = MediaPipeLowPassFilter(float(self._alpha(self.min_cutoff)))
        self.dx = MediaPipeLowPassFilter(float(self._alpha(self.derivate_cutoff)))
        self.last_time_ns = initial_last_time_ns

    def _alpha(self, cutoff: npt.ArrayLike) -> F64:
        te = 1.0 / self.frequency
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return np.asarray(1.0 / (1.0 + tau / te), dtype=np.float64)

    def apply(self, timestamp_ns: int, value: npt.ArrayLike, value_scale: float) -> F32:
        """The filtered values (float32); ``value`` itself when the timestamp does not increase."""
        value32 = np.asarray(value, dtype=np.float32)
        if self.last_time_ns >= timestamp_ns:
            return value32.copy()
        if self.last_time_ns != 0 and timestamp_ns != 0:
            self.frequency = 1.0 / ((timestamp_ns - self.last_time_ns) * 1e-9)
        self.last_time_ns = timestamp_ns
        if self.x.raw is not None:
            change = value32.astype(np.float64) - self.x.raw.astype(np.float64)
            dvalue = change * value_scale * self.frequency
        else:
            dvalue = np.zeros(value32.shape, dtype=np.float64)
        edvalue = self.dx.apply_with_alpha(dvalue, self._alpha(self.derivate_cutoff))
        cutoff = self.min_cutoff + self.beta * np.abs(edvalue.astype(np.float64))
        return self.x.apply_with_alpha(value32, self._alpha(cutoff))


@dataclass
class PoseSmoother:
    """The filters of ``MultiplePoseLandmarksDetectorGraph`` when ``smooth_landmarks`` is on."""

    visibility: MediaPipeLowPassFilter
    landmarks: MediaPipeOneEuroFilter | None
    world: MediaPipeOneEuroFilter | None

    @classmethod
    def new(cls) -> PoseSmoother:
        return cls(visibility=MediaPipeLowPassFilter(VISIBILITY_ALPHA), landmarks=None, world=None)

    def no_landmarks(self) -> None:
        # Only the landmarks' LandmarksSmoothingCalculator runs on a frame without landmarks (it
        # has the IMAGE_SIZE input too); it resets. The others are not invoked.
        self.landmarks = None

    def apply(
        self,
        timestamp_us: int,
        landmarks: F32,
        world: F32,
        scale_rect: F32,
        width: int,
        height: int,
    ) -> tuple[F32, F32]:
        """Smoothed ``(landmarks in pixels [33, 5], world [33, 3])`` from image-normalised ``landmarks``."""
        timestamp_ns = timestamp_us * 1000
        w32, h32 = np.float32(width), np.float32(height)
        smoothed = landmarks.astype(np.float32).copy()
        smoothed[:, 3] = self.visibility.apply(landmarks[:, 3])
        # NormalizedLandmarksToLandmarks: pixels in float, z scaled as x.
        pixels = np.stack([smoothed[:, 0] * w32, smoothed[:, 1] * h32, smoothed[:, 2] * w32], axis=1).astype(
            np.float32
        )
        object_scale = (scale_rect[2] * w32 + scale_rect[3] * h32) / np.float32(2.0)
        if self.landmarks is None:
            self.landmarks = MediaPipeOneEuroFilter(*LANDMARKS_FILTER)
        if object_scale >= np.float32(MIN_ALLOWED_OBJECT_SCALE):
            value_scale = float(np.float32(1.0) / object_scale)
            pixels = self.landmarks.apply(timestamp_ns, pixels, value_scale)
        # LandmarksToNormalizedLandmarks, then posepipe's Person.from_mediapipe (x * W in double).
        normalised = pixels / np.array([w32, h32, w32], dtype=np.float32)
        out = smoothed.copy()
        out[:, :3] = (
            normalised.astype(np.float64) * np.array([width, height, width], dtype=np.float64)
        ).astype(np.float32)
        if self.world is None:
            self.world = MediaPipeOneEuroFilter(*WORLD_FILTER)
        world_out = self.world.apply(timestamp_ns, world.astype(np.float32), 1.0)
        return out, world_out
