"""The top-down engine over many concurrent video streams: :class:`TopDownBatcher`, a
:class:`posepipe.engines.batching.StreamBatcher` whose trackers are the streams'
:class:`~posepipe.engines.topdown.estimator.TopDownTracker`\\ s over one set of networks, and whose
batch is :func:`~posepipe.engines.topdown.estimator.detect_for_video_batch`: in each round of the
engine's steps, the detector over every frame that needs it and each landmark network over every
region of every frame, one network batch each.

Each stream has its own options (``max_poses``, ``min_presence_confidence``, ``detect_every``:
they belong to the decisions, not the networks), so every stream of a batcher batches with every
other. The endpoint's GPU engine opens one stream per chunk it runs.
"""

from __future__ import annotations

import logging

from posepipe.engines.base import PoseEngineOptions, RunningMode
from posepipe.engines.batching import (
    DEFAULT_DELAY_S,
    DEFAULT_LOG_EVERY_S,
    DEFAULT_MAX_BATCH,
    BatchedVideoEstimator,
    StreamBatcher,
)
from posepipe.engines.topdown.driver import TopDownNetworks
from posepipe.engines.topdown.estimator import (
    TopDownTracker,
    detect_for_video_batch,
    policy_for,
    topdown_model_dict,
)
from posepipe.engines.topdown.models import TopDownModels

log = logging.getLogger(__name__)


def _group(tracker: TopDownTracker) -> int:
    return id(tracker.networks)


class TopDownBatcher(StreamBatcher[TopDownTracker]):
    """The top-down engine's streams batched on ``networks`` (see the module docstring)."""

    def __init__(
        self,
        networks: TopDownNetworks,
        models: TopDownModels,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        delay_s: float = DEFAULT_DELAY_S,
        log_every_s: float = DEFAULT_LOG_EVERY_S,
        name: str = "posepipe-topdown-batcher",
    ) -> None:
        super().__init__(
            detect_for_video_batch, _group, max_batch=max_batch, delay_s=delay_s,
            log_every_s=log_every_s, name=name, logger=log,
        )  # fmt: skip
        self.networks = networks
        self.models = models

    def open_estimator(self, options: PoseEngineOptions) -> BatchedVideoEstimator:
        """A stream with :class:`posepipe.engines.base.PoseEstimator`'s interface, for ``infer_chunk``;
        close it when done so that batches stop waiting for it."""
        if options.running_mode is not RunningMode.VIDEO:
            raise ValueError("the frame batcher serves VIDEO mode only")
        tracker = TopDownTracker(policy_for(options, self.models), self.networks)
        stream = self.add_stream(tracker)
        return BatchedVideoEstimator(stream, options, topdown_model_dict(options, self.models, self.networks))
