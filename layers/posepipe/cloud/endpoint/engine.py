"""The engine behind ``/invocations``: which networks the endpoint serves, where, and how a chunk runs.

The endpoint loads and verifies its models once at start-up (``/ping`` answers 200 only then) and
runs every chunk with them. ``posepipe.video.stages.infer_chunk`` opens a fresh engine (or a fresh
stream of a batcher) per chunk, because VIDEO mode carries tracking state from frame to frame and
each chunk must start clean (its warm-up frames rebuild that state).

Its settings (:class:`EndpointSettings`, from the environment the deployment sets, see
:mod:`posepipe.cloud.deployment`):

- ``$POSEPIPE_DETECTOR`` (default ``centernet``): the person detector, as ``posepipe video``
  takes it: ``centernet`` or ``nanodet`` run the top-down engine (everyone in view: the detector,
  BlazePose on each person, MoveNet's second opinion); ``blazepose`` BlazePose's own detector.
  A request may name the detector, but only the endpoint's (400 ``detector_mismatch`` otherwise).
- ``$POSEPIPE_ENGINE`` (``mediapipe``, ``torch`` or ``auto``; default ``auto``): ``torch`` runs
  the networks in PyTorch, batched across the chunks that run at once; ``mediapipe`` on the CPU's
  runtimes (ONNX Runtime, LiteRT, MediaPipe); ``auto`` torch when PyTorch sees a CUDA GPU.
- ``$POSEPIPE_DEVICE`` (``cuda``, ``cpu`` or empty): ``cuda`` makes a GPU a requirement: without
  one the start-up fails (``/ping`` 503 says so, and the log), it never runs on the CPU instead.
  The deployed endpoint sets ``cuda``.
- ``$POSEPIPE_BATCH_DELAY_MS`` (default 4), ``$POSEPIPE_MAX_BATCH`` (default 32 frames),
  ``$POSEPIPE_HWACCEL`` (``auto``: NVDEC when it can, or ``none``): the torch engines' batching
  and decoding. Each chunk's result records the batches its frames went into (``timings``:
  ``batch_mean``, ``batch_max``, ``batch_wait_s``, ``batch_timed_out``) and the decoder
  (``nvdec``).

The models, first found first used:

1. ``$SM_MODEL_DIR`` (SageMaker's ``/opt/ml/model``, where it unpacks the model's
   ``ModelDataUrl``) holding a ``manifest.json`` (``posepipe models pack``): every file checked
   against it (:func:`posepipe.assets.model_archive.verify_unpacked`), the networks taken from it;
2. one ``*.task`` bundle in ``$SM_MODEL_DIR`` (the pose model; the other networks from the cache);
3. ``$POSEPIPE_MODEL``, else the models ``posepipe models build`` cached (the image builds them).

Each result's ``model`` records the device and runtime each network ran on (``device``,
``runtime``), and :func:`describe` (``/ping``, the start-up log) says the same.

A :class:`ChunkEngine` is the seam for other engines: ``create_app(engine_factory=...)`` takes any
callable that returns one (default :func:`default_engine_factory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from posepipe.assets.model_archive import MANIFEST_NAME, verify_unpacked
from posepipe.assets.pose_model import model_info, resolve_model_path
from posepipe.assets.verify import verify_model
from posepipe.engines.base import (
    DEFAULT_DETECTOR,
    GENERAL_DETECTORS,
    EngineName,
    InferenceOptions,
    PoseEngineOptions,
    PoseEstimator,
    RunningMode,
    cuda_available,
    parse_detector,
    parse_engine,
    resolve_engine,
)
from posepipe.engines.choice import open_pose_engine
from posepipe.engines.topdown.models import FINDER_MODEL
from posepipe.errors import EngineError, ModelError, PosepipeError
from posepipe.media.decode import HWACCEL_CHOICES, HWAccelChoice
from posepipe.media.probe import VideoInfo
from posepipe.media.sources import MediaSource
from posepipe.result import Frame
from posepipe.video.stages import Chunk, ChunkResult, infer_chunk

if TYPE_CHECKING:
    from posepipe.engines.batching import BatchedVideoEstimator
    from posepipe.engines.topdown.models import TopDownModels
    from posepipe.engines.topdown.streams import TopDownBatcher
    from posepipe.engines.torch.batcher import FrameBatcher

SM_MODEL_DIR_ENV = "SM_MODEL_DIR"
DEFAULT_SM_MODEL_DIR = "/opt/ml/model"
ENGINE_ENV = "POSEPIPE_ENGINE"
DETECTOR_ENV = "POSEPIPE_DETECTOR"
DEVICE_ENV = "POSEPIPE_DEVICE"
DEFAULT_ENGINE = "auto"
DEVICES = ("cuda", "cpu")
BATCH_DELAY_ENV = "POSEPIPE_BATCH_DELAY_MS"
MAX_BATCH_ENV = "POSEPIPE_MAX_BATCH"
HWACCEL_ENV = "POSEPIPE_HWACCEL"
DEFAULT_BATCH_DELAY_MS = 4.0
DEFAULT_MAX_BATCH = 32


class ChunkEngine(Protocol):
    """Runs pose inference over one chunk of a local video file."""

    @property
    def detector(self) -> str:
        """The person detector this engine runs (requests may name only this one)."""

    def load(self) -> None:
        """Load and check the models; raise if they cannot serve. Called once, before any ``infer``."""

    def describe(self) -> dict[str, Any]:
        """What is served (for ``/ping`` and the logs): at least ``{"engine", "model", "device"}``."""

    def infer(
        self, video: MediaSource, chunk: Chunk, options: InferenceOptions, info: VideoInfo,
        agree_with: Sequence[Frame] | None = None,
    ) -> ChunkResult:  # fmt: skip
        """The chunk's result; :class:`posepipe.errors.InputError` if the video cannot be read.
        ``agree_with``: a boundary repair's earlier frames (``infer_chunk``'s)."""


EngineFactory = Callable[[], ChunkEngine]


@dataclass(frozen=True)
class BatchSettings:
    """How the torch engines batch concurrent invocations and decode (see the module docstring)."""

    delay_ms: float = DEFAULT_BATCH_DELAY_MS
    max_batch: int = DEFAULT_MAX_BATCH
    hwaccel: HWAccelChoice = "auto"

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> BatchSettings:
        """From ``$POSEPIPE_BATCH_DELAY_MS``, ``$POSEPIPE_MAX_BATCH``, ``$POSEPIPE_HWACCEL``, or
        :class:`ModelError` (the start-up fails, ``/ping`` says why)."""
        env = os.environ if env is None else env
        delay = env.get(BATCH_DELAY_ENV, "").strip()
        size = env.get(MAX_BATCH_ENV, "").strip()
        hwaccel = env.get(HWACCEL_ENV, "").strip() or "auto"
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


@dataclass(frozen=True)
class EndpointSettings:
    """What the endpoint serves and where (see the module docstring); ``engine`` as chosen
    (``auto`` is resolved at :meth:`check`, once PyTorch has looked for a GPU)."""

    engine: str = DEFAULT_ENGINE
    detector: str = DEFAULT_DETECTOR
    device: str | None = None
    batch: BatchSettings = field(default_factory=BatchSettings)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> EndpointSettings:
        """From ``$POSEPIPE_ENGINE``, ``$POSEPIPE_DETECTOR``, ``$POSEPIPE_DEVICE`` and the batch
        variables, or :class:`ModelError` naming the variable."""
        env = os.environ if env is None else env
        engine = env.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE
        detector = env.get(DETECTOR_ENV, "").strip() or DEFAULT_DETECTOR
        device = env.get(DEVICE_ENV, "").strip() or None
        parse_engine(engine, what=f"{ENGINE_ENV}:")  # EngineError naming the variable
        try:
            parse_detector(detector)
        except EngineError as exc:
            raise EngineError(f"{DETECTOR_ENV}: {exc}") from exc
        if device is not None and device not in DEVICES:
            raise ModelError(f"{DEVICE_ENV}: {device!r} is not one of {', '.join(DEVICES)} (or empty: any)")
        return cls(engine=engine, detector=detector, device=device, batch=BatchSettings.from_environment(env))

    def resolved_engine(self) -> EngineName:
        """The engine that serves, or :class:`ModelError` when the device it must run on is not
        there (``$POSEPIPE_DEVICE=cuda`` with no CUDA GPU: it never runs on the CPU instead)."""
        if self.device == "cuda":
            if not cuda_available():
                raise ModelError(
                    f"{DEVICE_ENV}=cuda: this endpoint is configured to run on a CUDA GPU and PyTorch "
                    "sees none (torch.cuda.is_available() is False: no GPU on this instance, no "
                    "driver, or a CUDA build that does not match it); it does not fall back to the CPU"
                )
            if parse_engine(self.engine) == "mediapipe":
                raise ModelError(
                    f"{DEVICE_ENV}=cuda asks for the GPU but {ENGINE_ENV}=mediapipe runs on the CPU"
                )
        return resolve_engine(self.engine)

    @property
    def topdown(self) -> bool:
        return self.detector in GENERAL_DETECTORS


@dataclass(frozen=True)
class EndpointModels:
    """The model files the endpoint serves: the pose model (a ``.task`` bundle), the other
    networks by catalogue name (empty: the cache's), and the archive's manifest, where there is one."""

    pose_model: Path
    files: Mapping[str, Path]
    manifest: dict[str, Any] | None = None

    def engine_options(self, detector: str, engine: EngineName, mode: RunningMode) -> PoseEngineOptions:
        pose = Path(FINDER_MODEL) if FINDER_MODEL in self.files else self.pose_model
        return PoseEngineOptions(model_path=pose, detector=detector, engine=engine, running_mode=mode)


def resolve_endpoint_models() -> EndpointModels:
    """The models the endpoint serves (see the module docstring), or :class:`ModelError`."""
    model_dir = Path(os.environ.get(SM_MODEL_DIR_ENV) or DEFAULT_SM_MODEL_DIR)
    if (model_dir / MANIFEST_NAME).is_file():
        manifest = verify_unpacked(model_dir)
        files = manifest.files(model_dir)
        bundles = [path for path in files.values() if path.suffix == ".task"]
        if len(bundles) != 1:
            raise ModelError(
                f"{model_dir}: the archive must hold exactly one .task bundle, not {len(bundles)}"
            )
        return EndpointModels(bundles[0], files, manifest.to_dict())
    bundles = sorted(model_dir.glob("*.task")) if model_dir.is_dir() else []
    if len(bundles) > 1:
        names = ", ".join(bundle.name for bundle in bundles)
        raise ModelError(f"{model_dir}: several .task bundles ({names}); the endpoint serves exactly one")
    return EndpointModels(resolve_model_path(bundles[0] if bundles else None), {})


def resolve_endpoint_model() -> Path:
    """The pose model the endpoint serves."""
    return resolve_endpoint_models().pose_model


def endpoint_engine() -> EngineName:
    """The engine this endpoint serves: ``$POSEPIPE_ENGINE`` (default ``auto``), resolved."""
    return EndpointSettings.from_environment().resolved_engine()


def default_engine_factory() -> ChunkEngine:
    """The engine :class:`EndpointSettings` (from the environment) asks for."""
    return engine_for(EndpointSettings.from_environment())


def engine_for(settings: EndpointSettings, models: EndpointModels | None = None) -> ChunkEngine:
    """The chunk engine for ``settings``; a GPU it requires is checked at ``load``."""
    if settings.topdown:
        return TopDownChunkEngine(settings, models)
    if settings.device == "cuda" or resolve_engine(settings.engine) == "torch":
        return TorchChunkEngine(settings=settings.batch, endpoint=settings, models=models)
    return MediaPipeChunkEngine(models.pose_model if models else None)


def _batched_infer(
    batcher: FrameBatcher | TopDownBatcher, video: MediaSource, chunk: Chunk, options: InferenceOptions,
    info: VideoInfo, hwaccel: HWAccelChoice, agree_with: Sequence[Frame] | None = None,
) -> ChunkResult:  # fmt: skip
    """``infer_chunk`` as one stream of ``batcher``, its batches recorded in the timings."""
    streams: list[BatchedVideoEstimator] = []

    def open_stream(engine_options: PoseEngineOptions) -> BatchedVideoEstimator:
        stream = batcher.open_estimator(engine_options)
        streams.append(stream)
        return stream

    result = infer_chunk(
        video, chunk, options, info=info, open_engine=open_stream, hwaccel=hwaccel, agree_with=agree_with
    )
    stats = streams[0].stats
    result.timings.update(
        batch_mean=round(stats.mean_size, 3),
        batch_max=float(stats.max_size),
        batch_wait_s=round(stats.wait_s, 4),
        batch_timed_out=float(stats.timed_out),
    )
    return result


class MediaPipeChunkEngine:
    """BlazePose's own detector on the CPU: ``infer_chunk`` with MediaPipe and the endpoint's model."""

    detector = "blazepose"

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
            "detector": self.detector,
            "model": info.name,
            "model_path": info.path,
            "model_sha256": info.sha256,
            "device": "cpu",
            "runtime": {"pose": "mediapipe"},
        }

    def infer(
        self, video: MediaSource, chunk: Chunk, options: InferenceOptions, info: VideoInfo,
        agree_with: Sequence[Frame] | None = None,
    ) -> ChunkResult:  # fmt: skip
        chosen = replace(options, model_path=str(self.model_path), engine="mediapipe", detector=self.detector)
        return infer_chunk(video, chunk, chosen, info=info, agree_with=agree_with)


class TorchChunkEngine:
    """BlazePose's own detector in PyTorch: ``infer_chunk`` with the torch engine and the endpoint's
    model, every chunk a stream of one frame batcher (:mod:`posepipe.engines.torch.batcher`).

    ``load`` converts the bundle's networks onto the device (CUDA in float16 when there is a GPU,
    else the CPU in float32), starts the batcher and runs IMAGE mode and a batched VIDEO stream
    once on a blank image.
    """

    detector = "blazepose"

    def __init__(
        self,
        model_path: Path | None = None,
        settings: BatchSettings | None = None,
        *,
        endpoint: EndpointSettings | None = None,
        models: EndpointModels | None = None,
    ) -> None:
        self._model_path = model_path or (models.pose_model if models else None)
        self._settings = settings
        self._endpoint = endpoint
        self._description: dict[str, Any] | None = None
        self._batcher: FrameBatcher | None = None

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            raise ModelError("the engine is not loaded")
        return self._model_path

    @property
    def settings(self) -> BatchSettings:
        if self._settings is None:
            self._settings = BatchSettings.from_environment()
        return self._settings

    def load(self) -> None:
        import numpy as np

        from posepipe.engines.torch.batcher import open_frame_batcher

        if self._endpoint is not None:
            self._endpoint.resolved_engine()  # a GPU the settings require is there
        path = self._model_path or resolve_endpoint_model()
        settings = self.settings
        blank = np.zeros((256, 256, 3), dtype=np.uint8)
        device = "cpu" if self._endpoint is not None and self._endpoint.device == "cpu" else None
        try:
            with open_pose_engine(
                PoseEngineOptions(model_path=path, engine="torch", device=device)
            ) as estimator:
                estimator.detect(blank)
                model = estimator.model_dict()
            batcher = open_frame_batcher(
                path, device=device, max_batch=settings.max_batch, delay_s=settings.delay_ms / 1000.0
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
            "detector": self.detector,
            "model": model["name"],
            "model_path": model["path"],
            "model_sha256": model["sha256"],
            "device": model["device"],
            "runtime": {"pose": "torch"},
            "dtype": model["dtype"],
            "max_batch": settings.max_batch,
            "batch_delay_ms": settings.delay_ms,
            "hwaccel": settings.hwaccel,
        }

    @property
    def batcher(self) -> FrameBatcher:
        if self._batcher is None:
            raise ModelError("the engine is not loaded")
        return self._batcher

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            raise ModelError("the engine is not loaded")
        return dict(self._description)

    def infer(
        self, video: MediaSource, chunk: Chunk, options: InferenceOptions, info: VideoInfo,
        agree_with: Sequence[Frame] | None = None,
    ) -> ChunkResult:  # fmt: skip
        chosen = replace(options, model_path=str(self.model_path), engine="torch", detector=self.detector)
        return _batched_infer(self.batcher, video, chunk, chosen, info, self.settings.hwaccel, agree_with)

    def close(self) -> None:
        """Stop the batcher (the chunks still running finish their frames first)."""
        if self._batcher is not None:
            self._batcher.close()


class TopDownChunkEngine:
    """The top-down engine (``$POSEPIPE_DETECTOR`` centernet or nanodet), as ``posepipe video``
    runs it: the same decisions (:mod:`posepipe.engines.topdown.steps`) over the same networks.

    With torch (a GPU, or ``$POSEPIPE_ENGINE=torch``): the networks in PyTorch once
    (:class:`posepipe.engines.torch.topdown_networks.TorchTopDownNetworks`), every chunk a stream
    of one :class:`posepipe.engines.topdown.streams.TopDownBatcher`: the frames of the chunks that
    run at once go through each network as one batch. With mediapipe: each chunk opens the CPU
    networks (ONNX Runtime, LiteRT) for itself, as ``posepipe video`` does.
    """

    def __init__(self, settings: EndpointSettings, models: EndpointModels | None = None) -> None:
        if not settings.topdown:
            raise ValueError(f"the top-down engine runs a general detector, not {settings.detector}")
        self.settings = settings
        self._models = models
        self._engine: EngineName | None = None
        self._topdown: TopDownModels | None = None
        self._batcher: TopDownBatcher | None = None
        self._description: dict[str, Any] | None = None

    @property
    def detector(self) -> str:
        return self.settings.detector

    @property
    def models(self) -> EndpointModels:
        if self._models is None:
            raise ModelError("the engine is not loaded")
        return self._models

    def load(self) -> None:
        import numpy as np

        from posepipe.engines.topdown.models import topdown_models

        engine = self.settings.resolved_engine()
        models = self._models = self._models or resolve_endpoint_models()
        options = models.engine_options(self.detector, engine, RunningMode.VIDEO)
        blank = np.zeros((256, 256, 3), dtype=np.uint8)
        try:
            topdown = topdown_models(options, models.files)
            if engine == "torch":
                batcher = self._open_batcher(topdown)
                with batcher.open_estimator(options) as stream:
                    stream.detect_for_video(blank, 0)
                    model = stream.model_dict()
                self._batcher = batcher
            else:
                with self._open_cpu(options) as estimator:
                    estimator.detect_for_video(blank, 0)
                    model = estimator.model_dict()
        except PosepipeError:
            raise
        except Exception as exc:
            raise ModelError(f"the top-down engine could not load its models: {exc}") from exc
        self._engine, self._models, self._topdown = engine, models, topdown
        self._description = {
            "engine": engine,
            "detector": self.detector,
            "model": model["name"],
            "model_path": model["path"],
            "model_sha256": model["sha256"],
            "device": model["device"],
            "runtime": model["runtime"],
            "dtype": model.get("dtype"),
            "dtypes": model.get("dtypes"),
            "networks": {
                "detector": model["detector"].get("sha256"),
                "second_opinion": model["second_opinion"].get("sha256"),
            },
            "archive": models.manifest is not None,
            **(
                {"max_batch": self.settings.batch.max_batch, "batch_delay_ms": self.settings.batch.delay_ms}
                if engine == "torch"
                else {}
            ),
            "hwaccel": self.settings.batch.hwaccel if engine == "torch" else "none",
        }

    def _open_batcher(self, topdown: TopDownModels) -> TopDownBatcher:
        from posepipe.engines.topdown.streams import TopDownBatcher
        from posepipe.engines.torch.topdown_networks import TorchTopDownNetworks, TorchTopDownSettings

        device = self.settings.device
        networks = TorchTopDownNetworks(topdown, TorchTopDownSettings(device=device))
        batch = self.settings.batch
        return TopDownBatcher(networks, topdown, max_batch=batch.max_batch, delay_s=batch.delay_ms / 1000.0)

    def _open_cpu(self, options: PoseEngineOptions) -> PoseEstimator:
        from posepipe.engines.topdown.cpu_networks import CpuTopDownNetworks
        from posepipe.engines.topdown.estimator import TopDownPoseEstimator
        from posepipe.engines.topdown.models import topdown_models

        topdown = topdown_models(options, self.models.files)
        return TopDownPoseEstimator(options, CpuTopDownNetworks(topdown), topdown)

    def describe(self) -> dict[str, Any]:
        if self._description is None:
            raise ModelError("the engine is not loaded")
        return dict(self._description)

    def infer(
        self, video: MediaSource, chunk: Chunk, options: InferenceOptions, info: VideoInfo,
        agree_with: Sequence[Frame] | None = None,
    ) -> ChunkResult:  # fmt: skip
        if self._engine is None:
            raise ModelError("the engine is not loaded")
        pose = str(self.models.engine_options(self.detector, self._engine, RunningMode.VIDEO).model_path)
        chosen = replace(options, model_path=pose, engine=self._engine, detector=self.detector)
        if self._batcher is not None:
            return _batched_infer(
                self._batcher, video, chunk, chosen, info, self.settings.batch.hwaccel, agree_with
            )
        return infer_chunk(video, chunk, chosen, info=info, open_engine=self._open_cpu, agree_with=agree_with)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
