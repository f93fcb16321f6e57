"""The torch engine's person detector: BlazePose's SSD detector and the regions it gives.

Each image is letterboxed to 224 x 224, the detector network runs (in batches of at most
``batch_size`` images), boxes and keypoints are decoded against the SSD anchors, scored and
merged by weighted NMS (:mod:`posepipe.engines.torch.detection`), and each detection becomes the
rotated region the landmark model runs on (:func:`posepipe.engines.torch.roi.detections_to_rois`,
MediaPipe's ``pose_detection_to_roi``), at most ``max_people`` an image, in score order.
"""

from __future__ import annotations

import torch

from posepipe.engines.torch.anchors import pose_detector_anchors
from posepipe.engines.torch.detection import (
    MIN_DETECTION_CONFIDENCE,
    MIN_SUPPRESSION_THRESHOLD,
    Detections,
    letterbox,
    postprocess_detections,
)
from posepipe.engines.torch.network_contract import DetectorForward
from posepipe.engines.torch.roi import Rects, Resampling, detections_to_rois


class BlazePoseDetector:
    """A :class:`posepipe.engines.parts.PersonDetector` over images as CHW uint8 tensors on
    ``device``, giving :class:`~posepipe.engines.torch.roi.Rects`.

    ``network`` takes ``dtype`` inputs; everything around it runs in float32 on ``device``.
    """

    def __init__(
        self,
        network: DetectorForward,
        device: torch.device,
        dtype: torch.dtype,
        *,
        min_detection_confidence: float = MIN_DETECTION_CONFIDENCE,
        min_suppression_threshold: float = MIN_SUPPRESSION_THRESHOLD,
        batch_size: int = 64,
        input_range: tuple[float, float] = (0.0, 1.0),
        resampling: Resampling = "exact",
    ) -> None:
        self.network = network
        self.device, self.dtype = device, dtype
        self.min_detection_confidence = min_detection_confidence
        self.min_suppression_threshold = min_suppression_threshold
        self.batch_size = batch_size
        self.input_range = input_range
        self.resampling = resampling
        self.anchors = pose_detector_anchors(device)

    def detect(self, images: list[torch.Tensor]) -> Detections:
        """Every detection NMS keeps, per image (scores above ``min_detection_confidence``)."""
        parts = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            inputs, box = letterbox(
                chunk, value_range=self.input_range, device=self.device, resampling=self.resampling
            )
            raw_boxes, raw_scores = self.network(inputs.to(self.dtype))
            parts.append(
                postprocess_detections(
                    raw_boxes,
                    raw_scores,
                    self.anchors,
                    box,
                    self.min_detection_confidence,
                    self.min_suppression_threshold,
                )
            )
        return concat_detections(parts)

    def find_people(self, images: list[torch.Tensor], max_people: int) -> Rects:
        """The regions of up to ``max_people`` detections an image (IMAGE mode's regions)."""
        return self.regions(self.detect(images), max_people)

    def regions(self, detections: Detections, max_people: int) -> Rects:
        count = detections.count.clamp(max=max_people)
        k = min(max_people, detections.scores.shape[1])
        valid = torch.arange(k, device=self.device)[None, :] < count[:, None]
        image_index = torch.nonzero(valid)[:, 0]
        keypoints = detections.keypoints[:, :k][valid]
        sizes = detections.image_size.index_select(0, image_index)
        rects = detections_to_rois(keypoints, sizes, image_index)
        # ImageToTensor rejects empty or NaN regions (ValidateRoi): no landmarks for those.
        usable = (rects.width > 0) & (rects.height > 0) & torch.isfinite(rects.rotation)
        if bool(usable.all()):
            return rects
        return rects.index_select(torch.nonzero(usable)[:, 0])


def concat_detections(parts: list[Detections]) -> Detections:
    """Detections of consecutive batches as one (padded to the widest)."""
    if len(parts) == 1:
        return parts[0]
    width = max(p.scores.shape[1] for p in parts)

    def pad(t: torch.Tensor) -> torch.Tensor:
        extra = width - t.shape[1]
        if extra == 0:
            return t
        shape = (t.shape[0], extra, *t.shape[2:])
        return torch.cat([t, torch.zeros(shape, dtype=t.dtype, device=t.device)], dim=1)

    return Detections(
        boxes=torch.cat([pad(p.boxes) for p in parts]),
        keypoints=torch.cat([pad(p.keypoints) for p in parts]),
        scores=torch.cat([pad(p.scores) for p in parts]),
        count=torch.cat([p.count for p in parts]),
        image_size=torch.cat([p.image_size for p in parts]),
    )
