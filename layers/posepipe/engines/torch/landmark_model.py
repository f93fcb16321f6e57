"""The torch engine's landmark model: BlazePose's landmark network on each person's region.

Each region is cut out of its image as a 256 x 256 crop (rotated and scaled as MediaPipe does,
:func:`posepipe.engines.torch.roi.crop_rois`), all crops of all images go through the network
in batches of at most ``batch_size``, and the raw outputs are decoded, gated by presence and
projected back to the image (:mod:`posepipe.engines.torch.landmark_decoding`). The auxiliary
points give the region the tracker carries to the next frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from posepipe.engines.torch.landmark_decoding import (
    MIN_PRESENCE_CONFIDENCE,
    NUM_POINTS,
    decode_landmarks,
    present,
    project_landmarks,
    project_world,
)
from posepipe.engines.torch.network_contract import LANDMARK_INPUT, LandmarkForward, LandmarkOutputs
from posepipe.engines.torch.roi import Rects, Resampling, crop_rois, landmarks_to_rois


@dataclass(frozen=True)
class LandmarkEstimate:
    """The landmark model's answer for each region (the rows follow the regions).

    ``landmarks`` are image-normalised (x, y, z, visibility, presence) for all 39 points;
    ``present`` says which regions hold a person; ``next_rects`` are the regions the auxiliary
    points give for the next frame (``POSE_RECTS_NEXT_FRAME``).
    """

    crops: torch.Tensor | None  # [R, 3, 256, 256] when kept
    presence: torch.Tensor  # [R]
    present: torch.Tensor  # [R] bool
    landmarks: torch.Tensor  # [R, 39, 5]
    world: torch.Tensor  # [R, 33, 3]
    next_rects: Rects


class BlazePoseLandmarkModel:
    """A :class:`posepipe.engines.parts.LandmarkModel` over CHW uint8 image tensors and
    :class:`~posepipe.engines.torch.roi.Rects`, giving a :class:`LandmarkEstimate`.

    ``network`` takes ``dtype`` inputs; everything around it runs in float32 on ``device``.
    ``clamp_projection_origin`` selects the newer ``LandmarkProjectionCalculator`` behaviour
    (:func:`posepipe.engines.torch.landmark_decoding.project_landmarks`).
    """

    def __init__(
        self,
        network: LandmarkForward,
        device: torch.device,
        dtype: torch.dtype,
        *,
        min_presence_confidence: float = MIN_PRESENCE_CONFIDENCE,
        batch_size: int = 64,
        input_range: tuple[float, float] = (0.0, 1.0),
        clamp_projection_origin: bool = False,
        resampling: Resampling = "exact",
    ) -> None:
        self.network = network
        self.device, self.dtype = device, dtype
        self.min_presence_confidence = min_presence_confidence
        self.batch_size = batch_size
        self.input_range = input_range
        self.clamp_projection_origin = clamp_projection_origin
        self.resampling = resampling

    def estimate(
        self, images: list[torch.Tensor], regions: Rects, keep_crops: bool = False
    ) -> LandmarkEstimate:
        crops = crop_rois(images, regions, LANDMARK_INPUT, "replicate", self.input_range, self.resampling)
        decoded = decode_landmarks(self.raw_outputs(crops))
        landmarks = project_landmarks(decoded.points, regions, self.clamp_projection_origin)
        return LandmarkEstimate(
            crops=crops if keep_crops else None,
            presence=decoded.presence,
            present=present(decoded.presence, self.min_presence_confidence),
            landmarks=landmarks,
            world=project_world(decoded.world, regions.rotation),
            next_rects=landmarks_to_rois(landmarks, regions.image_size, regions.image_index),
        )

    def raw_outputs(self, crops: torch.Tensor) -> LandmarkOutputs:
        """The network's five outputs for the crops, in float32 (batches joined)."""
        if crops.shape[0] == 0:
            return _empty_outputs(self.device)
        parts = [
            self.network(crops[start : start + self.batch_size].to(self.dtype))
            for start in range(0, crops.shape[0], self.batch_size)
        ]

        def cat(get: Callable[[LandmarkOutputs], torch.Tensor]) -> torch.Tensor:
            return torch.cat([get(p).float() for p in parts])

        return LandmarkOutputs(
            landmarks=cat(lambda o: o.landmarks),
            presence=cat(lambda o: o.presence),
            segmentation=cat(lambda o: o.segmentation),
            heatmap=cat(lambda o: o.heatmap),
            world=cat(lambda o: o.world),
        )


def _empty_outputs(device: torch.device) -> LandmarkOutputs:
    return LandmarkOutputs(
        landmarks=torch.zeros((0, NUM_POINTS * 5), device=device),
        presence=torch.zeros((0, 1), device=device),
        segmentation=torch.zeros((0, 1, LANDMARK_INPUT, LANDMARK_INPUT), device=device),
        heatmap=torch.zeros((0, NUM_POINTS, 64, 64), device=device),
        world=torch.zeros((0, NUM_POINTS * 3), device=device),
    )
