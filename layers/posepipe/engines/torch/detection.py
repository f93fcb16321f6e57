"""The pose detector's side of the pipeline: letterbox, box decoding, scores, weighted NMS, un-letterbox.

Batched over images: every step works on ``[B, ...]`` tensors on the images' device, and the
detections come back padded (``[B, K, ...]``) with a count per image.

Rules and constants, with their sources in google-ai-edge/mediapipe:

- Letterbox: ``PoseDetectorGraph`` (``mediapipe/tasks/cc/vision/pose_detector/pose_detector_graph.cc``)
  sets ``keep_aspect_ratio`` true and ``BORDER_ZERO`` on the ``ImageToTensorCalculator`` of its
  ``ImagePreprocessingGraph``; the output is the model's 224 x 224 input and its float range comes
  from the model's metadata. The whole image is the region (``GetRoi`` without a rect), grown to a
  square by ``PadRoi`` (``mediapipe/calculators/tensor/image_to_tensor_utils.cc``), whose padding
  ``(1 - short / long) / 2`` on each short side is the ``LETTERBOX_PADDING``.
- Decoding: ``ConfigureTensorsToDetectionsCalculator`` in ``pose_detector_graph.cc`` (the values of
  ``mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt``): ``num_boxes`` 2254,
  ``num_coords`` 12, ``box_coord_offset`` 0, ``keypoint_coord_offset`` 4, ``num_keypoints`` 4,
  ``num_values_per_keypoint`` 2, ``reverse_output_order`` true (so x, y, w, h), ``x_scale`` =
  ``y_scale`` = ``w_scale`` = ``h_scale`` = 224, ``sigmoid_score`` true,
  ``score_clipping_thresh`` 100, ``min_score_thresh`` = ``min_detection_confidence`` (0.5 by
  default in ``pose_detector_graph_options.proto``; the legacy graph used 0.2). The arithmetic is
  ``TensorsToDetectionsCalculator::DecodeBoxes``
  (``mediapipe/calculators/tensor/tensors_to_detections_calculator.cc``):
  ``centre = raw / scale * anchor_size + anchor_centre``, ``size = raw / scale * anchor_size``
  (no exponential), keypoints like centres. A box is dropped when its score is below the threshold
  (``ConvertToDetection``: ``score < min_score_thresh``) or its width or height is negative or NaN.
- NMS: ``ConfigureNonMaxSuppressionCalculator`` in ``pose_detector_graph.cc``:
  ``min_suppression_threshold`` from the options (0.5 by default, ``pose_detector_graph_options.proto``;
  the legacy graph used 0.3), ``overlap_type`` ``INTERSECTION_OVER_UNION``, ``algorithm``
  ``WEIGHTED``, no ``max_num_detections`` (-1). The algorithm is
  ``NonMaxSuppressionCalculator::WeightedNonMaxSuppression``
  (``mediapipe/calculators/util/non_max_suppression_calculator.cc``): by decreasing score, the
  best remaining box gathers every remaining box whose IoU with it is above the threshold (itself
  included); the output keeps the best box's score, and its box corners and keypoints are the
  score-weighted means over the group; the group leaves the pool. When a box gathers nothing (a
  box of zero area) it is output as it is and the loop stops.
- Un-letterbox: ``DetectionLetterboxRemovalCalculator``
  (``mediapipe/calculators/util/detection_letterbox_removal_calculator.cc``):
  ``x' = (x - left) / (1 - left - right)``, ``y' = (y - top) / (1 - top - bottom)``, sizes divided
  by the same; keypoints too.
- The number of poses: ``PoseLandmarkerGraph``
  (``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarker_graph.cc``) keeps the first
  ``num_poses`` rects in NMS order (``ClipNormalizedRectVectorSizeCalculator``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from posepipe.engines.torch.anchors import pose_detector_anchors
from posepipe.engines.torch.network_contract import DETECTOR_INPUT, DetectorForward
from posepipe.engines.torch.roi import (
    Resampling,
    crop_homography,
    pad_to_aspect,
    to_image_tensors,
    warp_to_tensor,
)

NUM_KEYPOINTS = 4
# pose_detector_graph.cc, ConfigureTensorsToDetectionsCalculator
BOX_SCALE = 224.0
SCORE_CLIPPING_THRESH = 100.0
# pose_detector_graph_options.proto defaults (min_detection_confidence, min_suppression_threshold)
MIN_DETECTION_CONFIDENCE = 0.5
MIN_SUPPRESSION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Letterbox:
    """How each image was fitted into the detector's square input (``PadRoi``)."""

    padding: torch.Tensor  # [B, 4]: left, top, right, bottom, normalised by the output size
    image_size: torch.Tensor  # [B, 2]: (width, height) of the original image, float

    def remove(self, points: torch.Tensor) -> torch.Tensor:
        """Letterboxed normalised (x, y) ``[B, ..., 2]`` -> normalised to the original image."""
        left, top = self.padding[:, 0], self.padding[:, 1]
        sx = 1.0 - self.padding[:, 0] - self.padding[:, 2]
        sy = 1.0 - self.padding[:, 1] - self.padding[:, 3]
        shape = (points.shape[0],) + (1,) * (points.ndim - 2)
        x = (points[..., 0] - left.view(shape)) / sx.view(shape)
        y = (points[..., 1] - top.view(shape)) / sy.view(shape)
        return torch.stack([x, y], dim=-1)

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`remove`: image-normalised (x, y) -> letterboxed normalised."""
        left, top = self.padding[:, 0], self.padding[:, 1]
        sx = 1.0 - self.padding[:, 0] - self.padding[:, 2]
        sy = 1.0 - self.padding[:, 1] - self.padding[:, 3]
        shape = (points.shape[0],) + (1,) * (points.ndim - 2)
        x = points[..., 0] * sx.view(shape) + left.view(shape)
        y = points[..., 1] * sy.view(shape) + top.view(shape)
        return torch.stack([x, y], dim=-1)


def image_sizes(frames: Sequence[torch.Tensor] | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``[B, 2]`` float32 (width, height) of ``[3, H, W]`` frames."""
    images = to_image_tensors(frames)
    return torch.tensor([[float(i.shape[2]), float(i.shape[1])] for i in images], device=device)


def letterbox(
    frames: Sequence[torch.Tensor] | torch.Tensor,
    size: int = DETECTOR_INPUT,
    value_range: tuple[float, float] = (0.0, 1.0),
    device: torch.device | None = None,
    resampling: Resampling = "exact",
) -> tuple[torch.Tensor, Letterbox]:
    """The detector's input: each whole image fitted into ``size`` x ``size``, zero padded.

    Returns ``[B, 3, size, size]`` float32 in ``value_range`` and the :class:`Letterbox` to undo it.
    """
    images = to_image_tensors(frames)
    device = device if device is not None else images[0].device
    wh = image_sizes(images, device)
    pixels = torch.stack([wh[:, 0] / 2, wh[:, 1] / 2, wh[:, 0], wh[:, 1], torch.zeros_like(wh[:, 0])], dim=1)
    grown, padding = pad_to_aspect(pixels, size, size)
    homography = crop_homography(grown, size, size)
    index = torch.arange(len(images), device=device)
    warped = warp_to_tensor(images, index, homography, size, size, "zero", resampling)
    low, high = value_range
    return warped * ((high - low) / 255.0) + low, Letterbox(padding=padding, image_size=wh)


def decode_boxes(
    raw_boxes: torch.Tensor, anchors: torch.Tensor, scale: float = BOX_SCALE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw ``[B, A, 12]`` -> boxes ``[B, A, 4]`` (xmin, ymin, xmax, ymax) and keypoints ``[B, A, 4, 2]``.

    Normalised to the letterboxed input; ``anchors``: ``[A, 4]`` (x centre, y centre, w, h).
    """
    raw = raw_boxes.float()
    ax, ay, aw, ah = (anchors[:, i].float() for i in range(4))
    x_center = raw[..., 0] / scale * aw + ax
    y_center = raw[..., 1] / scale * ah + ay
    w = raw[..., 2] / scale * aw
    h = raw[..., 3] / scale * ah
    boxes = torch.stack([x_center - w / 2, y_center - h / 2, x_center + w / 2, y_center + h / 2], dim=-1)
    points = raw[..., 4 : 4 + 2 * NUM_KEYPOINTS].reshape(*raw.shape[:-1], NUM_KEYPOINTS, 2)
    kx = points[..., 0] / scale * aw[:, None] + ax[:, None]
    ky = points[..., 1] / scale * ah[:, None] + ay[:, None]
    return boxes, torch.stack([kx, ky], dim=-1)


def decode_scores(raw_scores: torch.Tensor, clip: float = SCORE_CLIPPING_THRESH) -> torch.Tensor:
    """Score logits ``[B, A, 1]`` -> probabilities ``[B, A]`` (clipped to +-clip, then sigmoid)."""
    return torch.sigmoid(raw_scores.float()[..., 0].clamp(-clip, clip))


@dataclass(frozen=True)
class Detections:
    """Detections of a batch of images, padded to the largest count.

    Rows ``k >= count[b]`` of image ``b`` are padding (zeros). ``boxes`` are (xmin, ymin, xmax,
    ymax); boxes and keypoints are normalised to the image (or to the letterboxed input, before
    :func:`remove_letterbox`). Within an image the rows are in NMS order (decreasing score).
    """

    boxes: torch.Tensor  # [B, K, 4]
    keypoints: torch.Tensor  # [B, K, 4, 2]
    scores: torch.Tensor  # [B, K]
    count: torch.Tensor  # [B], long
    image_size: torch.Tensor  # [B, 2]: (width, height) of each image in pixels, float

    def valid(self) -> torch.Tensor:
        """``[B, K]`` bool: which rows are detections."""
        k = self.scores.shape[1]
        return torch.arange(k, device=self.count.device)[None, :] < self.count[:, None]

    def per_image(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(boxes, keypoints, scores)`` of each image, without the padding."""
        counts = self.count.tolist()
        return [(self.boxes[b, :n], self.keypoints[b, :n], self.scores[b, :n]) for b, n in enumerate(counts)]


def iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of ``box`` ``[..., 4]`` with ``boxes`` ``[..., K, 4]`` (xmin, ymin, xmax, ymax) -> ``[..., K]``.

    ``OverlapSimilarity`` with ``INTERSECTION_OVER_UNION``: 0 when the boxes do not intersect or
    the union is empty.
    """
    b = box.unsqueeze(-2)
    iw = (torch.minimum(b[..., 2], boxes[..., 2]) - torch.maximum(b[..., 0], boxes[..., 0])).clamp(min=0)
    ih = (torch.minimum(b[..., 3], boxes[..., 3]) - torch.maximum(b[..., 1], boxes[..., 1])).clamp(min=0)
    inter = iw * ih
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    union = area_b + area - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), 0.0)


def weighted_nms(
    boxes: torch.Tensor,
    keypoints: torch.Tensor,
    scores: torch.Tensor,
    keep: torch.Tensor,
    threshold: float = MIN_SUPPRESSION_THRESHOLD,
    image_size: torch.Tensor | None = None,
) -> Detections:
    """MediaPipe's weighted NMS on each image of a batch at once.

    ``boxes`` ``[B, A, 4]``, ``keypoints`` ``[B, A, 4, 2]``, ``scores`` ``[B, A]``; ``keep`` ``[B, A]``
    marks the candidates (score above threshold, valid box). One round per output detection, all
    images together. ``image_size`` ``[B, 2]`` is carried into the result (ones when not given).
    """
    batch = boxes.shape[0]
    device = boxes.device
    if image_size is None:
        image_size = torch.ones((batch, 2), device=device)
    # Candidates first, by decreasing score. Every image keeps all its rows, whatever the others
    # hold: the weighted sums then see the same operands in the same order, so an image's
    # detections do not depend on the batch it came in (to the last bit).
    masked = torch.where(keep, scores, torch.full_like(scores, -1.0))
    order = torch.argsort(masked, dim=1, descending=True, stable=True)
    s = torch.gather(scores, 1, order)
    remaining = torch.gather(keep, 1, order)
    b = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
    k = torch.gather(keypoints, 1, order[..., None, None].expand(-1, -1, NUM_KEYPOINTS, 2))
    # Corner form as the calculator averages it: xmin, ymin, xmin + width, ymin + height.
    out_boxes, out_points, out_scores, out_valid = [], [], [], []
    active = remaining.any(dim=1)
    rows = torch.arange(batch, device=device)
    while bool(active.any()):
        # The best remaining candidate of each image (the first, as they are sorted).
        top = torch.argmax(remaining.to(torch.int8), dim=1)
        top_box = b[rows, top]
        similarity = iou(top_box, b)
        group = remaining & (similarity > threshold) & active[:, None]
        weights = torch.where(group, s, torch.zeros_like(s))
        total = weights.sum(dim=1)
        has_group = total > 0
        safe_total = torch.where(has_group, total, torch.ones_like(total))
        mean_box = (weights[..., None] * b).sum(dim=1) / safe_total[:, None]
        mean_points = (weights[..., None, None] * k).sum(dim=1) / safe_total[:, None, None]
        grouped = group.any(dim=1)
        out_boxes.append(torch.where(grouped[:, None], mean_box, top_box))
        out_points.append(torch.where(grouped[:, None, None], mean_points, k[rows, top]))
        out_scores.append(s[rows, top])
        out_valid.append(active.clone())
        remaining = remaining & ~group
        # A box that gathers nothing (zero area) is output alone and ends its image's loop.
        active = active & grouped & remaining.any(dim=1)
    if not out_scores:
        empty = torch.zeros((batch, 0), device=device)
        return Detections(
            boxes=torch.zeros((batch, 0, 4), device=device),
            keypoints=torch.zeros((batch, 0, NUM_KEYPOINTS, 2), device=device),
            scores=empty,
            count=torch.zeros(batch, dtype=torch.long, device=device),
            image_size=image_size,
        )
    valid = torch.stack(out_valid, dim=1)
    zero = torch.zeros((), device=device)
    return Detections(
        boxes=torch.where(valid[..., None], torch.stack(out_boxes, dim=1), zero),
        keypoints=torch.where(valid[..., None, None], torch.stack(out_points, dim=1), zero),
        scores=torch.where(valid, torch.stack(out_scores, dim=1), zero),
        count=valid.sum(dim=1),
        image_size=image_size,
    )


def remove_letterbox(detections: Detections, box: Letterbox) -> Detections:
    """``DetectionLetterboxRemovalCalculator``: coordinates of the letterboxed input -> of the image."""
    corners = detections.boxes.reshape(*detections.boxes.shape[:-1], 2, 2)
    b, k = corners.shape[:2]
    boxes = box.remove(corners.reshape(b, k * 2, 2)).reshape(b, k, 4)
    points = box.remove(detections.keypoints.reshape(b, k * NUM_KEYPOINTS, 2)).reshape(b, k, NUM_KEYPOINTS, 2)
    valid = detections.valid()
    zero = torch.zeros((), device=boxes.device)
    return Detections(
        boxes=torch.where(valid[..., None], boxes, zero),
        keypoints=torch.where(valid[..., None, None], points, zero),
        scores=detections.scores,
        count=detections.count,
        image_size=box.image_size,
    )


def postprocess_detections(
    raw_boxes: torch.Tensor,
    raw_scores: torch.Tensor,
    anchors: torch.Tensor,
    box: Letterbox,
    min_score: float = MIN_DETECTION_CONFIDENCE,
    min_suppression: float = MIN_SUPPRESSION_THRESHOLD,
) -> Detections:
    """The detector's raw outputs -> detections normalised to each original image."""
    boxes, keypoints = decode_boxes(raw_boxes, anchors)
    scores = decode_scores(raw_scores)
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    # ConvertToDetections: below-threshold scores are dropped, as are negative or NaN sizes
    # (NaN compares false).
    keep = (scores >= min_score) & (width >= 0) & (height >= 0)
    return remove_letterbox(
        weighted_nms(boxes, keypoints, scores, keep, min_suppression, box.image_size), box
    )


def detect_poses(
    detector: DetectorForward,
    frames: Sequence[torch.Tensor] | torch.Tensor,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    anchors: torch.Tensor | None = None,
    min_score: float = MIN_DETECTION_CONFIDENCE,
    min_suppression: float = MIN_SUPPRESSION_THRESHOLD,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Detections:
    """The whole detector stage on a batch of ``[3, H, W]`` frames."""
    if anchors is None:
        anchors = pose_detector_anchors(device)
    inputs, box = letterbox(frames, value_range=value_range, device=device)
    raw_boxes, raw_scores = detector(inputs.to(dtype))
    return postprocess_detections(raw_boxes, raw_scores, anchors.to(device), box, min_score, min_suppression)
