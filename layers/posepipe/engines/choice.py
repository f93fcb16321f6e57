"""Opening the engine a user chose: ``mediapipe``, ``torch`` or ``auto``.

Apart from :mod:`posepipe.engines.base` (the interface, the options and the MediaPipe engine) so that
the interface knows nothing of its implementations: the torch engine
(:mod:`posepipe.engines.torch`) builds on :mod:`posepipe.engines.base`, and only this module, above
both, imports it, and only when it is chosen.
"""

from __future__ import annotations

from posepipe.engines.base import (
    GENERAL_DETECTORS,
    MULTIPOSE,
    PoseEngineOptions,
    PoseEstimator,
    require_torch,
    resolve_engine,
)
from posepipe.engines.mediapipe import MediaPipePoseEstimator


def open_pose_engine(options: PoseEngineOptions) -> PoseEstimator:
    """The engine ``options.engine`` chooses (``"auto"`` resolved here), loaded and ready.

    :class:`EngineError` when the torch engine is chosen but PyTorch is not installed, or with
    ``LIVE_STREAM`` (MediaPipe's only; :class:`TorchPoseEstimator` refuses it).
    """
    if options.detector == MULTIPOSE:
        from posepipe.engines.multipose import MultiPosePoseEstimator

        return MultiPosePoseEstimator(options)
    if options.detector in GENERAL_DETECTORS:
        from posepipe.engines.topdown.estimator import TopDownPoseEstimator

        return TopDownPoseEstimator(options)
    if resolve_engine(options.engine) == "torch":
        require_torch()
        from posepipe.engines.torch.estimator import TorchPoseEstimator  # torch only when chosen

        return TorchPoseEstimator(options)
    return MediaPipePoseEstimator(options)
