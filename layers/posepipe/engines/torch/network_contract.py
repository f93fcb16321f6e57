"""The contract between the ported networks and the pipeline around them.

Both networks take a batch of RGB images as float tensors in [0, 1], NCHW, on any device and in
fp32 or fp16, and return raw outputs exactly as the TFLite models do (NHWC outputs transposed to
NCHW), with no post-processing: detector scores are logits; pose presence is already a probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

DETECTOR_INPUT = 224
LANDMARK_INPUT = 256
NUM_ANCHORS = 2254
NUM_LANDMARKS = 33  # plus 6 auxiliary points (39 in all) in the raw output


class DetectorForward(Protocol):
    """The detector network's forward pass."""

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` [N, 3, 224, 224] -> (raw boxes [N, 2254, 12], score logits [N, 2254, 1]).

        A raw box is anchor-relative: centre x, centre y, width, height, then 4 keypoints (x, y),
        in units of the 224-pixel input (TFLite ``Identity`` and ``Identity_1``)."""
        ...


@dataclass(frozen=True)
class LandmarkOutputs:
    # [N, 195]: 39 points x (x, y, z, visibility logit, presence logit), in 256-px crop units
    landmarks: torch.Tensor
    presence: torch.Tensor  # [N, 1]: pose presence, a probability (the graph ends in a sigmoid)
    segmentation: torch.Tensor  # [N, 1, 256, 256]
    heatmap: torch.Tensor  # [N, 39, 64, 64]
    world: torch.Tensor  # [N, 117]: 39 points x (x, y, z) in metres, hip-centred


class LandmarkForward(Protocol):
    """The landmark network's forward pass."""

    def __call__(self, images: torch.Tensor) -> LandmarkOutputs:
        """``images`` [N, 3, 256, 256] -> the five raw outputs (TFLite ``Identity`` .. ``Identity_4``)."""
        ...
