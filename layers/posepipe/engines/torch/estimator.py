"""``TorchPoseEstimator``: the torch engine behind :class:`posepipe.engines.base.PoseEstimator`'s interface.

``posepipe.engines.choice.open_pose_engine`` returns one for ``engine="torch"`` (or ``"auto"`` on CUDA).
It loads the two networks from the same ``.task`` bundle MediaPipe would (``model_path``
resolved the same way: the option, else ``$POSEPIPE_MODEL``, else the built model), puts them on
the device (``cuda`` when torch sees a GPU, else ``cpu``) in the dtype (float16 on CUDA, float32
elsewhere; both overridable), and runs IMAGE mode with
:meth:`~posepipe.engines.torch.blazepose.TorchBlazePose.detect_image` and VIDEO mode with
:class:`~posepipe.engines.torch.video_tracking.VideoRegionTracker` (MediaPipe's tracking), one tracker per
estimator, so that each estimator starts clean as a fresh MediaPipe landmarker does.

In float16 the detector stays in float32 (``detector_dtype``): a float16 detector moves its
boxes by ~1e-3 of the image, enough to take the landmarks of a partly hidden person (the second
player of basketball1.png) 5 px (median) and 8 cm from MediaPipe's, where float16 landmarks
beside a float32 detector stay within 0.21 px and 0.5 cm (CPU float16 figures, docs/PERFORMANCE.md).

The converted networks are kept per process (by bundle, device and dtype): converting the TFLite
graphs takes about a second, and ``posepipe.video.stages.infer_chunk`` opens an engine per chunk. They
are stateless and used under ``torch.inference_mode``, so estimators in several threads share them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch

from posepipe.assets.catalogue import resolve_model
from posepipe.assets.pose_model import ModelInfo, model_info
from posepipe.engines.base import PoseEngineOptions, RGBImage, RunningMode, TorchDtype
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.networks import DetectorNetwork, LandmarkNetwork, load_networks
from posepipe.errors import EngineError
from posepipe.result import Person

if TYPE_CHECKING:
    from posepipe.engines.torch.video_tracking import VideoRegionTracker

_DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "float32": torch.float32}
_CACHED_NETWORKS = 4
_networks: OrderedDict[tuple[str, int, int, str, str], tuple[DetectorNetwork, LandmarkNetwork]] = (
    OrderedDict()
)
_networks_lock = threading.Lock()


def default_device() -> torch.device:
    """``cuda`` (the current GPU) when torch sees one, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def detector_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The detector's dtype beside landmarks in ``dtype``: float32 for float16 (see the module docstring)."""
    return torch.float32 if dtype == torch.float16 else dtype


def networks_for(
    path: Path, device: torch.device, dtype: torch.dtype, detector_dtype: torch.dtype | None = None
) -> tuple[DetectorNetwork, LandmarkNetwork]:
    """The bundle's networks on ``device``, the landmarks in ``dtype`` and the detector in
    ``detector_dtype`` (default ``dtype``), converted once per process (a few kept)."""
    detector_dtype = dtype if detector_dtype is None else detector_dtype
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device), f"{dtype}/{detector_dtype}")
    with _networks_lock:
        cached = _networks.get(key)
        if cached is None:
            detector, landmarks = load_networks(path)
            cached = (detector.to(device, detector_dtype), landmarks.to(device, dtype))
            _networks[key] = cached
            while len(_networks) > _CACHED_NETWORKS:
                _networks.popitem(last=False)
        _networks.move_to_end(key)
        return cached


class TorchPoseEstimator:
    """BlazePose in PyTorch with :class:`posepipe.engines.base.PoseEstimator`'s interface.

    ``device`` and ``dtype`` override ``options.device`` / ``options.dtype``, which override the
    defaults (see the module docstring).
    """

    def __init__(
        self,
        options: PoseEngineOptions,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | TorchDtype | None = None,
    ) -> None:
        if options.running_mode is RunningMode.LIVE_STREAM:
            raise EngineError(
                "the torch engine has no LIVE_STREAM mode: use engine 'mediapipe' for live streams "
                "(or VIDEO mode, which tracks the same way, frame by frame)"
            )
        self.options = options
        path = resolve_model(options.model_path)
        self.model: ModelInfo = model_info(path)
        chosen = device if device is not None else options.device
        self.device = torch.device(chosen) if chosen is not None else default_device()
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        wanted = dtype if dtype is not None else options.dtype
        if isinstance(wanted, str):
            if wanted not in _DTYPES:
                raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, not {wanted!r}")
            wanted = _DTYPES[wanted]
        self.dtype = wanted if wanted is not None else default_dtype(self.device)
        self.detector_dtype = detector_dtype_for(self.dtype)
        detector, landmarks = networks_for(path, self.device, self.dtype, self.detector_dtype)
        self.engine = TorchBlazePose(
            detector,
            landmarks,
            self.device,
            self.dtype,
            min_detection_confidence=options.min_detection_confidence,
            min_presence_confidence=options.min_presence_confidence,
            detector_dtype=self.detector_dtype,
        )
        self._tracker: VideoRegionTracker | None = None
        if options.running_mode is RunningMode.VIDEO:
            from posepipe.engines.torch.video_tracking import VideoRegionTracker

            self._tracker = VideoRegionTracker(
                self.engine,
                max_poses=options.max_poses,
                min_tracking_confidence=options.min_tracking_confidence,
            )

    def model_dict(self) -> dict[str, Any]:
        return {
            **self.model.to_dict(),
            "engine": "torch",
            "device": str(self.device),
            "dtype": dtype_name(self.dtype),
            "detector_dtype": dtype_name(self.detector_dtype),
            **self.options.settings_dict(),
        }

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode)."""
        if self.options.running_mode is not RunningMode.IMAGE:
            raise RuntimeError("detect() needs an engine in IMAGE mode")
        return self.engine.detect_image(rgb, self.options.max_poses)

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode); timestamps must increase."""
        if self._tracker is None:
            raise RuntimeError("detect_for_video() needs an engine in VIDEO mode")
        # The tracker nudges a timestamp that does not increase forward, as MediaPipePoseEstimator does.
        return self._tracker.detect_for_video(rgb, timestamp_ms)

    def close(self) -> None:
        """Forget the tracking state (the networks stay cached for the next estimator)."""
        if self._tracker is not None:
            self._tracker.reset()

    def __enter__(self) -> TorchPoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
