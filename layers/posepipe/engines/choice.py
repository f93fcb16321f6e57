"""Opening the engine a user chose: ``mediapipe``, ``torch`` or ``auto``.

Apart from :mod:`posepipe.engines.base` (the interface, the options and the MediaPipe engine) so that
the interface knows nothing of its implementations: the torch engine
(:mod:`posepipe.engines.torch`) builds on :mod:`posepipe.engines.base`, and only this module, above
both, imports it, and only when it is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posepipe.engines.base import (
    GENERAL_DETECTORS,
    MULTIPOSE,
    TORCH_DETECTORS,
    PoseEngineOptions,
    PoseEstimator,
    require_torch,
    resolve_engine,
)
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.errors import EngineError

if TYPE_CHECKING:
    from posepipe.engines.topdown.driver import TopDownNetworks
    from posepipe.engines.topdown.models import TopDownModels


def open_pose_engine(options: PoseEngineOptions) -> PoseEstimator:
    """The engine ``options.engine`` chooses (``"auto"`` resolved here), loaded and ready.

    :class:`EngineError` when the torch engine is chosen but PyTorch is not installed, or with
    ``LIVE_STREAM`` (MediaPipe's only; :class:`TorchPoseEstimator` refuses it).
    """
    if options.detector == MULTIPOSE:
        if resolve_engine(options.engine) == "torch":
            raise EngineError(
                f"engine {options.engine} runs the detectors {', '.join(TORCH_DETECTORS)} in "
                f"PyTorch; {MULTIPOSE} runs on ONNX Runtime only (engine mediapipe)"
            )
        from posepipe.engines.multipose import MultiPosePoseEstimator

        return MultiPosePoseEstimator(options)
    if options.detector in GENERAL_DETECTORS:
        from posepipe.engines.topdown.estimator import TopDownPoseEstimator
        from posepipe.engines.topdown.models import topdown_models

        models = topdown_models(options)
        return TopDownPoseEstimator(options, open_topdown_networks(options, models), models)
    if resolve_engine(options.engine) == "torch":
        require_torch()
        from posepipe.engines.torch.estimator import TorchPoseEstimator  # torch only when chosen

        return TorchPoseEstimator(options)
    return MediaPipePoseEstimator(options)


def open_topdown_networks(options: PoseEngineOptions, models: TopDownModels) -> TopDownNetworks:
    """The top-down engine's networks for ``options.engine``: ``torch`` runs them in PyTorch
    (batched; CUDA when PyTorch sees a GPU, else the CPU, or ``options.device``), ``mediapipe``
    on the CPU's own runtimes (ONNX Runtime and LiteRT, as MediaPipe runs TFLite), ``auto``
    PyTorch on CUDA, else the CPU's runtimes. Nothing falls back: ``torch`` without PyTorch is
    an :class:`EngineError`."""
    if resolve_engine(options.engine) == "torch":
        require_torch()
        from posepipe.engines.torch.topdown_networks import TorchTopDownNetworks, TorchTopDownSettings

        settings = TorchTopDownSettings(device=options.device, landmark_dtype=options.dtype)
        return TorchTopDownNetworks(models, settings)
    from posepipe.engines.topdown.cpu_networks import CpuTopDownNetworks

    return CpuTopDownNetworks(models)
