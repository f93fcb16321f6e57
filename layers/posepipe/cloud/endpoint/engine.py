"""The engine behind ``/invocations``: which model the endpoint serves, and how a chunk is run.

The endpoint loads and verifies its model once at start-up (``/ping`` answers 200 only then) and
runs every chunk with it. ``posepipe.video.stages.infer_chunk`` opens a fresh engine per chunk,
because VIDEO mode carries tracking state from frame to frame and each chunk must start clean
(its warm-up frames rebuild that state).

The engine (:func:`endpoint_engine`): ``$POSEPIPE_ENGINE`` (``mediapipe``, ``torch`` or
``auto``; default ``auto``): ``auto`` serves the torch engine (BlazePose ported to PyTorch,
float16) when PyTorch sees a CUDA GPU, else MediaPipe on the CPU. Any other value fails the
start-up (``/ping`` says why). Requests cannot choose the engine.

The model, first found first used:

1. the one ``*.task`` bundle in ``$SM_MODEL_DIR`` (SageMaker's ``/opt/ml/model``, where it
   unpacks the model's ``ModelDataUrl``);
2. ``$POSEPIPE_MODEL``;
3. the model ``posepipe models build`` cached (the container image builds it).

A :class:`ChunkEngine` is the seam for other engines: ``create_app(engine_factory=...)`` takes
any callable that returns one (default :func:`default_engine_factory`).

The torch engine batches concurrent invocations: the chunks that run at once in one worker
(gunicorn threads) hand their current frames to one
:class:`posepipe.engines.torch.batcher.FrameBatcher`, which runs them through the networks as one
batch after waiting up to ``$POSEPIPE_BATCH_DELAY_MS`` (default 4) milliseconds for the others,
at most ``$POSEPIPE_MAX_BATCH`` (default 32) frames at once. It decodes with NVDEC when it can
(``$POSEPIPE_HWACCEL``: ``auto``, the default, or ``none``). Each chunk's result records the
batches its frames went into (``timings``: ``batch_mean``, ``batch_max``, ``batch_wait_s``,
``batch_timed_out``: frames whose batch started because the delay ran out) and the decoder
(``nvdec``: 1.0 or 0.0).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from posepipe.assets.pose_model import model_info, resolve_model_path
from posepipe.assets.verify import verify_model
from posepipe.engines.base import (
    EngineName,
    InferenceOptions,
    PoseEngineOptions,
    RunningMode,
    parse_engine,
    resolve_engine,
)
from posepipe.engines.choice import open_pose_engine
from posepipe.errors import ModelError, PosepipeError
from posepipe.media.decode import HWACCEL_CHOICES, HWAccelChoice
from posepipe.media.probe import VideoInfo
from posepipe.video.stages import Chunk, ChunkResult, infer_chunk

if TYPE_CHECKING:
    from posepipe.engines.torch.batcher import BatchedVideoEstimator, FrameBatcher

SM_MODEL_DIR_ENV = "SM_MODEL_DIR"
DEFAULT_SM_MODEL_DIR = "/opt/ml/model"
ENGINE_ENV = "POSEPIPE_ENGINE"
DEFAULT_ENGINE = "auto"
BATCH_DELAY_ENV = "POSEPIPE_BATCH_DELAY_MS"
MAX_BATCH_ENV = "POSEPIPE_MAX_BATCH"
HWACCEL_ENV = "POSEPIPE_HWACCEL"
DEFAULT_BATCH_DELAY_MS = 4.0
DEFAULT_MAX_BATCH = 32


class ChunkEngine(Protocol):
    """Runs pose inference over one chunk of a local video file."""

    def load(self) -> None:
        """Load and check the model; raise if it cannot serve. Called once, before any ``infer``."""

    def describe(self) -> dict[str, Any]:
        """What is served (for ``/ping`` and the logs): at least ``{"engine", "model"}``."""

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        """The chunk's result; :class:`posepipe.errors.InputError` if the video cannot be read."""


EngineFactory = Callable[[], ChunkEngine]


def resolve_endpoint_model() -> Path:
    """The model the endpoint serves (see the module docstring), or :class:`ModelError`."""
    model_dir = Path(os.environ.get(SM_MODEL_DIR_ENV) or DEFAULT_SM_MODEL_DIR)
    bundles = sorted(model_dir.glob("*.task")) if model_dir.is_dir() else []
    if len(bundles) > 1:
        names = ", ".join(bundle.name for bundle in bundles)
        raise ModelError(f"{model_dir}: several .task bundles ({names}); the endpoint serves exactly one")
    return resolve_model_path(bundles[0] if bundles else None)


def endpoint_engine() -> EngineName:
    """The engine this endpoint serves: ``$POSEPIPE_ENGINE`` (default ``auto``), resolved."""
    value = os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE
    return resolve_engine(parse_engine(value, what=f"{ENGINE_ENV}:"))


@dataclass(frozen=True)
class BatchSettings:
    """How the torch engine batches concurrent invocations and decodes (see the module docstring)."""

    delay_ms: float = DEFAULT_BATCH_DELAY_MS
    max_batch: int = DEFAULT_MAX_BATCH
    hwaccel: HWAccelChoice = "auto"

    @classmethod
    def from_environment(cls) -> BatchSettings:
        """From ``$POSEPIPE_BATCH_DELAY_MS``, ``$POSEPIPE_MAX_BATCH``, ``$POSEPIPE_HWACCEL``, or
        :class:`ModelError` (the start-up fails, ``/ping`` says why)."""
        delay = os.environ.get(BATCH_DELAY_ENV, "").strip()
        size = os.environ.get(MAX_BATCH_ENV, "").strip()
        hwaccel = os.environ.get(HWACCEL_ENV, "").strip() or "auto"
        try:
            delay_ms = float(delay) if delay else DEFAULT_BATCH_DELAY_MS
        except ValueError:
            delay_ms = -1.0
        if not 0.0 <= delay_ms <= 1000.0:
            raise ModelError(f"{BATCH_DELAY_ENV}: {delay!r} is not a number of milliseconds in [0, 1000]")
        if size and not (size.isdigit() and int(size) >= 1):
            raise ModelError(f"{MAX_BATCH_ENV}: {size!r} is not a whole number of frames (1 or more)")
        if hwaccel not in HWACCEL_CHOICES:
            raise ModelError(f"{HWACCEL_ENV}: {hwaccel!r} is not one of {', '.join(HWACCEL_CHOICES)}")
        return cls(delay_ms=delay_ms, max_batch=int(size) if size else DEFAULT_MAX_BATCH, hwaccel=hwaccel)


def default_engine_factory() -> ChunkEngine:
    """:class:`TorchChunkEngine` or :class:`MediaPipeChunkEngine`, as :func:`endpoint_engine` says."""
    return TorchChunkEngine() if endpoint_engine() == "torch" else MediaPipeChunkEngine()


class MediaPipeChunkEngine:
    """The CPU engine: ``posepipe.video.stages.infer_chunk`` with MediaPipe and the endpoint's one model."""

    def __init__(self, model_path: Path | None = None) -> None:
        self._model_path = model_path

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            raise ModelError("the engine is not loaded")
        return self._model_path

    def load(self) -> None:
        """Resolve the model and run it once on a blank image (MediaPipe loads it for real)."""
        path = self._model_path or resolve_endpoint_model()
        verify_model(path)
        self._model_path = path

    def describe(self) -> dict[str, Any]:
        info = model_info(self.model_path)
        return {
            "engine": "mediapipe",
            "model": info.name,
            "model_path": info.path,
            "model_sha256": info.sha256,
        }

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        chosen = replace(options, model_path=str(self.model_path), engine="mediapipe")
        return infer_chunk(video, chunk, chosen, info=info)


class TorchChunkEngine:
    """The GPU engine: ``posepipe.video.stages.infer_chunk`` with the torch engine and the
    endpoint's one model.

    ``load`` converts the bundle's networks onto the device (CUDA in float16 when there is a
    GPU, else the CPU in float32), starts the frame batcher over them and runs IMAGE mode and a
    batched VIDEO stream once on a blank image. Every chunk then runs as a stream of the batcher,
    batched with the chunks that run at the same time (``settings``: default from the environment).
    """

    def __init__(self, model_path: Path | None = None, settings: BatchSettings | None = None) -> None:
        self._model_path = model_path
        self._settings = settings
        self._description: dict[str, Any] | None = None
        self._batcher: FrameBatcher | None = None

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            raise ModelError("the engine is not loaded")
        return self._model_path

    @property
    def batcher(self) -> FrameBatcher:
        if self._batcher is None:
            raise ModelError("the engine is not loaded")
        return self._batcher

    @property
    def settings(self) -> BatchSettings:
        if self._settings is None:
            self._settings = BatchSettings.from_environment()
        return self._settings

    def load(self) -> None:
        import numpy as np

        from posepipe.engines.torch.batcher import open_frame_batcher

        path = self._model_path or resolve_endpoint_model()
        settings = self.settings
        blank = np.zeros((256, 256, 3), dtype=np.uint8)
        try:
            with open_pose_engine(PoseEngineOptions(model_path=path, engine="torch")) as estimator:
                estimator.detect(blank)
                model = estimator.model_dict()
            batcher = open_frame_batcher(
                path, max_batch=settings.max_batch, delay_s=settings.delay_ms / 1000.0
            )
            video = PoseEngineOptions(model_path=path, engine="torch", running_mode=RunningMode.VIDEO)
            with batcher.open_estimator(video) as tracker:
                tracker.detect_for_video(blank, 0)
        except PosepipeError:
            raise
        except Exception as exc:
            raise ModelError(f"{path}: the torch engine could not load the model: {exc}") from exc
        self._model_path = path
        self._batcher = batcher
        self._description = {
            "engine": "torch",
            "model": model["name"],
            "model_path": model["path"],
            "model_sha256": model["sha256"],
            "device": model["device"],
            "dtype": model["dtype"],
            "max_batch": settings.max_batch,
            "batch_delay_ms": settings.delay_ms,
            "hwaccel": settings.hwaccel,
        }

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            raise ModelError("the engine is not loaded")
        return dict(self._description)

    def infer(self, video: Path, chunk: Chunk, options: InferenceOptions, info: VideoInfo) -> ChunkResult:
        chosen = replace(options, model_path=str(self.model_path), engine="torch")
        streams: list[BatchedVideoEstimator] = []

        def open_stream(engine_options: PoseEngineOptions) -> BatchedVideoEstimator:
            stream = self.batcher.open_estimator(engine_options)
            streams.append(stream)
            return stream

        result = infer_chunk(
            video, chunk, chosen, info=info, open_engine=open_stream, hwaccel=self.settings.hwaccel
        )
        stats = streams[0].stats
        result.timings.update(
            batch_mean=round(stats.mean_size, 3),
            batch_max=float(stats.max_size),
            batch_wait_s=round(stats.wait_s, 4),
            batch_timed_out=float(stats.timed_out),
        )
        return result

    def close(self) -> None:
        """Stop the batcher (the chunks still running finish their frames first)."""
        if self._batcher is not None:
            self._batcher.close()
