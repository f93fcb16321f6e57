"""The pose engines' interface: :class:`PoseEstimator`, its options and running modes.

Frames go in as upright RGB ``uint8`` arrays (H, W, 3); persons come out in pixel units
(:class:`posepipe.result.Person`), without ids: tracking gives those later.

:func:`posepipe.engines.choice.open_pose_engine` makes the engine that
:attr:`PoseEngineOptions.engine` names:

- ``"mediapipe"``: :class:`posepipe.engines.mediapipe.MediaPipePoseEstimator`, MediaPipe itself
  (TFLite/XNNPACK on the CPU);
- ``"torch"``: :class:`posepipe.engines.torch.estimator.TorchPoseEstimator`, the same networks
  from the same ``.task`` bundle ported to PyTorch (CUDA when there is a GPU, else the CPU,
  where it is slower than MediaPipe);
- ``"auto"``: torch on CUDA when PyTorch and a GPU are there, else mediapipe.

Both have :class:`PoseEstimator`'s interface. The MediaPipe path never imports torch.

Running modes, in MediaPipe Tasks' style, one method each: ``IMAGE`` (:meth:`PoseEstimator.detect`),
``VIDEO`` (:meth:`PoseEstimator.detect_for_video`) and ``LIVE_STREAM``
(``MediaPipePoseEstimator.detect_async``, results through :attr:`PoseEngineOptions.result_callback`).
LIVE_STREAM is MediaPipe's only: the torch engine refuses it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from posepipe.errors import EngineError
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


DETECTORS = ("blazepose", "centernet", "nanodet", "movenet-multipose")
"""Person detectors: ``blazepose`` is BlazePose's own, inside the chosen engine (near, single
subjects); ``centernet`` (the default) and ``nanodet`` find everyone, and the pose network then
runs on each person (:mod:`posepipe.engines.topdown`); ``movenet-multipose`` is the pose model
MoveNet MultiPose, which finds its persons itself (:mod:`posepipe.engines.multipose`) and runs
only as its own detector."""
GENERAL_DETECTORS = ("centernet", "nanodet")
MULTIPOSE = "movenet-multipose"
TORCH_DETECTORS = ("blazepose", *GENERAL_DETECTORS)
"""The detectors whose pipelines the torch engine runs (MultiPose runs on ONNX Runtime only)."""
DEFAULT_DETECTOR = "centernet"
"""What ``posepipe image`` and ``posepipe video`` run unless told otherwise: everyone in the frame."""
DEFAULT_DETECT_EVERY = 4
"""In VIDEO mode the ``centernet`` detector runs on every 4th frame (and whenever nobody is
tracked); in between, each person's region is carried from their landmarks."""
DEFAULT_MAX_POSES = {"blazepose": 4, "centernet": 50, "nanodet": 50, MULTIPOSE: 12}
"""The most persons per frame unless told otherwise: BlazePose's own detector is made for one
near subject (and MediaPipe's cost grows with the number it looks for); the top-down engine
finds everyone, and pays only for the persons it finds; MoveNet MultiPose gives at most six per
pass, and runs two passes."""


def parse_detector(text: str) -> str:
    if text not in DETECTORS:
        raise EngineError(f"unknown detector {text!r}: known detectors are {', '.join(DETECTORS)}")
    return text


def pair_detector(model: str | None, detector: str | None, default: str = DEFAULT_DETECTOR) -> str:
    """The detector that runs with pose model ``model`` (a catalogue name, a path or None) when
    ``detector`` is asked for (None: ``default``): MoveNet MultiPose finds its persons itself, so
    with it no other detector can be asked for, and its detector runs with no other model."""
    if model is not None and str(model) == MULTIPOSE:
        if detector not in (None, MULTIPOSE):
            raise EngineError(f"model {MULTIPOSE} finds persons itself: it takes no detector ({detector})")
        return MULTIPOSE
    if detector == MULTIPOSE:
        raise EngineError(f"detector {MULTIPOSE} is the model {MULTIPOSE}'s own: choose that model")
    return parse_detector(detector or default)


@dataclass(frozen=True)
class PoseEngineOptions:
    """Options of :func:`posepipe.engines.choice.open_pose_engine`; thresholds are MediaPipe's own.

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
    detector: str = "blazepose"
    detect_every: int = DEFAULT_DETECT_EVERY
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
        parse_detector(self.detector)
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, not {self.detect_every}")
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
    """What every engine offers, whatever runs inside it."""

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


@dataclass(frozen=True)
class InferenceOptions:
    """What an image job or ``infer_chunk`` runs, as JSON-serialisable options: the engine, the
    model and MediaPipe's thresholds (:meth:`engine_options` gives the engine's own options).

    ``engine``: ``"mediapipe"``, ``"torch"`` or ``"auto"`` (see :mod:`posepipe.engines.base`).
    """

    model_path: str | None = None
    max_poses: int = 4
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    decode_threads: int = 1
    engine: EngineChoice = "mediapipe"
    detector: str = "blazepose"
    detect_every: int = DEFAULT_DETECT_EVERY

    def __post_init__(self) -> None:
        parse_engine(self.engine)
        parse_detector(self.detector)
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, not {self.detect_every}")

    def engine_options(self, mode: RunningMode) -> PoseEngineOptions:
        return PoseEngineOptions(
            model_path=Path(self.model_path) if self.model_path else None,
            running_mode=mode,
            max_poses=self.max_poses,
            min_detection_confidence=self.min_detection_confidence,
            min_presence_confidence=self.min_presence_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
            engine=self.engine,
            detector=self.detector,
            detect_every=self.detect_every,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceOptions:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
