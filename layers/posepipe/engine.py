"""The pose engines: MediaPipe Tasks' ``PoseLandmarker`` (CPU) or its PyTorch port, one interface.

Frames go in as upright RGB ``uint8`` arrays (H, W, 3); persons come out in pixel units
(:class:`posepipe.result.Person`), without ids: tracking gives those later.

:func:`posepipe.engine_choice.open_pose_engine` makes the engine that
:attr:`PoseEngineOptions.engine` names:

- ``"mediapipe"``: :class:`PoseEngine`, MediaPipe itself (TFLite/XNNPACK on the CPU);
- ``"torch"``: :class:`posepipe.torch_engine.estimator.TorchPoseEstimator`, the same networks
  from the same ``.task`` bundle ported to PyTorch (CUDA when there is a GPU, else the CPU,
  where it is slower than MediaPipe);
- ``"auto"``: torch on CUDA when PyTorch and a GPU are there, else mediapipe.

Both have :class:`PoseEstimator`'s interface. The MediaPipe path never imports torch.

Running modes, in MediaPipe Tasks' style, one method each: ``IMAGE`` (:meth:`PoseEngine.detect`),
``VIDEO`` (:meth:`PoseEngine.detect_for_video`) and ``LIVE_STREAM``
(:meth:`PoseEngine.detect_async`, results through :attr:`PoseEngineOptions.result_callback`).
LIVE_STREAM is MediaPipe's only: the torch engine refuses it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from posepipe.errors import EngineError, ModelError
from posepipe.models import ModelInfo, model_info, resolve_model_path
from posepipe.result import Person

RGBImage = npt.NDArray[np.uint8]

# mediapipe imports matplotlib (for its drawing helpers, unused here): keep that off any display.
os.environ.setdefault("MPLBACKEND", "Agg")


class RunningMode(Enum):
    IMAGE = "image"
    VIDEO = "video"
    LIVE_STREAM = "live_stream"


LiveResultCallback = Callable[[list[Person], int], None]
"""LIVE_STREAM's result callback: the persons of one frame and that frame's ``timestamp_ms``.

Called on MediaPipe's result thread, in timestamp order; MediaPipe may skip frames to keep up
(not every frame sent gets a result). An exception raised in it is logged and dropped."""


EngineChoice = Literal["mediapipe", "torch", "auto"]
EngineName = Literal["mediapipe", "torch"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("mediapipe", "torch", "auto")
TorchDtype = Literal["float16", "float32"]
TORCH_DTYPES: tuple[TorchDtype, ...] = ("float16", "float32")


def parse_engine(value: str, what: str = "engine") -> EngineChoice:
    """``value`` as an engine choice, or :class:`EngineError` naming ``what`` and the choices."""
    if value not in ENGINE_CHOICES:
        raise EngineError(f"{what} {value!r} is not one of {', '.join(ENGINE_CHOICES)}")
    return value


def torch_installed() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def require_torch() -> None:
    """:class:`EngineError` unless PyTorch is installed (the torch engine needs it)."""
    if not torch_installed():
        raise EngineError("the torch engine needs PyTorch, which is not installed (pip install torch)")


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA GPU (imports torch when it is installed)."""
    if not torch_installed():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_engine(choice: str) -> EngineName:
    """The engine that runs for ``choice``: ``"auto"`` is torch on CUDA, else mediapipe."""
    parsed = parse_engine(choice)
    if parsed == "auto":
        return "torch" if cuda_available() else "mediapipe"
    return parsed


@dataclass(frozen=True)
class PoseEngineOptions:
    """Options of :func:`posepipe.engine_choice.open_pose_engine`; thresholds are MediaPipe's own.

    ``engine`` picks the implementation (see the module docstring). ``device`` and ``dtype`` are
    the torch engine's only (default: ``cuda`` when available, else ``cpu``; float16 on CUDA,
    float32 elsewhere); MediaPipe ignores them. ``result_callback`` is required in
    ``LIVE_STREAM`` mode and refused in the others, as MediaPipe does.
    """

    model_path: Path | None = None
    running_mode: RunningMode = RunningMode.IMAGE
    max_poses: int = 4
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    engine: EngineChoice = "mediapipe"
    device: str | None = None
    dtype: TorchDtype | None = None
    result_callback: LiveResultCallback | None = None

    def settings_dict(self) -> dict[str, Any]:
        """What every engine's ``model_dict`` reports of these options."""
        return {
            "max_poses": self.max_poses,
            "min_detection_confidence": self.min_detection_confidence,
            "min_presence_confidence": self.min_presence_confidence,
            "min_tracking_confidence": self.min_tracking_confidence,
        }

    def __post_init__(self) -> None:
        parse_engine(self.engine)
        if self.dtype is not None and self.dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(TORCH_DTYPES)}, not {self.dtype!r}")
        if self.max_poses < 1:
            raise ValueError(f"max_poses must be at least 1, not {self.max_poses}")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {value}")
        live = self.running_mode is RunningMode.LIVE_STREAM
        if live and self.result_callback is None:
            raise ValueError("LIVE_STREAM mode needs a result_callback to receive the results")
        if not live and self.result_callback is not None:
            raise ValueError(f"a result_callback is for LIVE_STREAM mode only, not {self.running_mode.name}")


class PoseEstimator(Protocol):
    """What every engine offers (:class:`PoseEngine`'s interface)."""

    def model_dict(self) -> dict[str, Any]:
        """The model and engine, as results record them (``name``, ``engine``, thresholds...)."""

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode)."""

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode); timestamps must increase."""

    def close(self) -> None: ...

    def __enter__(self) -> PoseEstimator: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class PoseEngine:
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
        path = resolve_model_path(options.model_path)
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

    def __enter__(self) -> PoseEngine:
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


def verify_model(path: Path, source: str | None = None) -> None:
    """Load ``path`` with MediaPipe's PoseLandmarker and run it once, or raise :class:`ModelError`
    (naming ``source``, where the model came from, else ``path``)."""
    import zipfile

    label = source or str(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{label}: not a MediaPipe .task bundle (expected a zip file)")
    try:
        with PoseEngine(PoseEngineOptions(model_path=path)) as engine:
            engine.detect(np.zeros((256, 256, 3), dtype=np.uint8))
    except Exception as exc:  # MediaPipe raises RuntimeError/ValueError with its own text
        raise ModelError(f"{label}: MediaPipe could not load the model: {exc}") from exc
