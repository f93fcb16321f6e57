"""The landmark model's side of the pipeline: decode, refine from the heatmap, gate, project back.

Everything is batched over regions of interest (from any number of images): ``[R, ...]`` tensors on
the outputs' device, computed in float32 whatever the network's dtype.

Rules and constants, with their sources in google-ai-edge/mediapipe (the Tasks graph
``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarks_detector_graph.cc``, which
posepipe's MediaPipe engine runs, differs from the legacy solution graphs where noted):

- Presence: the second output goes through ``TensorsToFloatsCalculator`` with no activation (the
  model's output is already a probability) and ``ThresholdingCalculator``
  (``mediapipe/calculators/util/thresholding_calculator.cc``: present iff ``score > threshold``),
  the threshold being ``min_pose_presence_confidence`` (the graph's ``min_detection_confidence``,
  0.5 by default). A rect whose pose is not present yields nothing (``GateCalculator``).
- Landmarks: ``TensorsToLandmarksCalculator``
  (``mediapipe/calculators/tensor/tensors_to_landmarks_calculator.cc``) on all 39 points
  (``kLandmarksNum``), ``normalize = false`` in the Tasks graph (so ``normalize_z`` keeps its
  default 1.0 from ``tensors_to_landmarks_calculator.proto``; the legacy graph divided z by 0.4 too),
  visibility and presence through a sigmoid: ``x / 256``, ``y / 256``, ``z / 256``.
- Heatmap refinement (Tasks graph: ``RefineLandmarksFromHeatmapCalculator``, ``kernel_size`` 7 from
  ``ConfigureRefineLandmarksFromHeatmapCalculator``; ``min_confidence_to_refine`` 0.5,
  ``refine_presence`` and ``refine_visibility`` false from
  ``refine_landmarks_from_heatmap_calculator.proto``). For each of the 39 points
  (``RefineLandmarksFromHeatMap`` in ``refine_landmarks_from_heatmap_calculator.cc``): the heatmap
  cell ``(int(x * 64), int(y * 64))`` (C++ truncation toward zero); points outside the map are
  kept as they are; otherwise over the 7 x 7 window around it (cut at the map's edges) with
  ``sigmoid(heatmap)`` as weights, if the largest weight is at least 0.5 the point moves to
  ``(sum(col * w) / 64 / sum(w), sum(row * w) / 64 / sum(w))``. z, visibility and presence are
  untouched.
- Split: points 0..32 are the landmarks, 33 and 34 the auxiliary points
  (``ConfigureSplitNormalizedLandmarkListCalculator``); world landmarks keep 0..32
  (``ConfigureSplitLandmarkListCalculator``).
- Letterbox removal: the landmark crop has no letterbox (``keep_aspect_ratio`` is off), so
  ``LandmarkLetterboxRemovalCalculator`` changes nothing.
- Projection: ``LandmarkProjectionCalculator``
  (``mediapipe/calculators/util/landmark_projection_calculator.cc``) with a ``NORM_RECT`` and no
  image dimensions: ``(x, y) - 0.5`` rotated by the rect's rotation, scaled by the rect's
  normalised width and height and moved to its centre; ``z * width`` (z scaled as x). Newer
  versions of the calculator clamp the rect's left and top edge at 0 in this path
  (``max(0, x_center - width / 2)``); which variant MediaPipe uses is a flag here
  (:func:`project_landmarks`).
- World landmarks: ``WorldLandmarkProjectionCalculator``
  (``mediapipe/calculators/util/world_landmark_projection_calculator.cc``): x and y rotated by the
  rect's rotation, z kept, no scaling or translation; visibility and presence copied from the
  landmarks (``VisibilityCopyCalculator``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posepipe.engines.torch.network_contract import LANDMARK_INPUT, NUM_LANDMARKS, LandmarkOutputs
from posepipe.engines.torch.roi import Rects

NUM_POINTS = 39  # pose_landmarks_detector_graph.cc, kLandmarksNum
NUM_AUXILIARY = 2  # points 33 and 34
HEATMAP_KERNEL = 7  # ConfigureRefineLandmarksFromHeatmapCalculator
HEATMAP_MIN_CONFIDENCE = 0.5  # refine_landmarks_from_heatmap_calculator.proto default
MIN_PRESENCE_CONFIDENCE = 0.5  # PoseLandmarkerOptions.min_pose_presence_confidence default


@dataclass(frozen=True)
class DecodedLandmarks:
    """The landmark model's outputs decoded, in the crop: before projection to the image."""

    points: torch.Tensor  # [R, 39, 5]: x, y, z normalised by the crop, visibility, presence
    presence: torch.Tensor  # [R]: pose presence score
    world: torch.Tensor  # [R, 33, 3]: metres, hip-centred, in the crop's orientation


def decode_landmarks(
    outputs: LandmarkOutputs, input_size: int = LANDMARK_INPUT, refine: bool = True
) -> DecodedLandmarks:
    """Raw outputs -> :class:`DecodedLandmarks` (``TensorsToLandmarks`` + heatmap refinement)."""
    raw = outputs.landmarks.float().reshape(-1, NUM_POINTS, 5)
    xyz = raw[..., :3] / float(input_size)
    points = torch.cat([xyz, torch.sigmoid(raw[..., 3:5])], dim=-1)
    if refine:
        points = refine_from_heatmap(points, outputs.heatmap.float())
    world = outputs.world.float().reshape(-1, NUM_POINTS, 3)[:, :NUM_LANDMARKS]
    presence = outputs.presence.float().reshape(-1)
    return DecodedLandmarks(points=points, presence=presence, world=world)


def refine_from_heatmap(
    points: torch.Tensor,
    heatmap: torch.Tensor,
    kernel_size: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> torch.Tensor:
    """``RefineLandmarksFromHeatMap`` for ``points`` ``[R, P, >= 2]`` and ``heatmap`` ``[R, P, H, W]``."""
    count, num_points, height, width = heatmap.shape
    if count == 0:
        return points
    offset = (kernel_size - 1) // 2
    # int(x * W) in C++ truncates toward zero.
    col = torch.trunc(points[..., 0] * width).to(torch.long)
    row = torch.trunc(points[..., 1] * height).to(torch.long)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    steps = torch.arange(-offset, offset + 1, device=heatmap.device)
    cols = col[..., None] + steps  # [R, P, k]
    rows = row[..., None] + steps
    col_ok = (cols >= 0) & (cols < width)
    row_ok = (rows >= 0) & (rows < height)
    flat = heatmap.reshape(count, num_points, height * width)
    index = rows.clamp(0, height - 1)[..., :, None] * width + cols.clamp(0, width - 1)[..., None, :]
    window = torch.gather(flat, 2, index.reshape(count, num_points, -1)).reshape(index.shape)
    weight = torch.sigmoid(window) * (row_ok[..., :, None] & col_ok[..., None, :])
    total = weight.sum(dim=(-1, -2))
    best = weight.amax(dim=(-1, -2))
    wx = (weight * cols[..., None, :].to(weight.dtype)).sum(dim=(-1, -2))
    wy = (weight * rows[..., :, None].to(weight.dtype)).sum(dim=(-1, -2))
    refine = inside & (best >= min_confidence) & (total > 0)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    x = torch.where(refine, wx / width / safe, points[..., 0])
    y = torch.where(refine, wy / height / safe, points[..., 1])
    return torch.cat([x[..., None], y[..., None], points[..., 2:]], dim=-1)


def present(presence: torch.Tensor, threshold: float = MIN_PRESENCE_CONFIDENCE) -> torch.Tensor:
    """``ThresholdingCalculator``: a pose is present iff its score is above the threshold."""
    return presence.double() > threshold


def project_landmarks(points: torch.Tensor, rects: Rects, clamp_rect_origin: bool = False) -> torch.Tensor:
    """``LandmarkProjectionCalculator`` (``NORM_RECT``): crop-normalised ``[R, P, >= 3]`` -> image-normalised.

    x and y come out normalised by the image's width and height, z by its width (the crop's z
    times the rect's normalised width); further columns (visibility, presence) pass through.
    ``clamp_rect_origin`` reproduces the newer calculator, which clamps the rect's left and top
    edges at 0 before placing the points.
    """
    x = points[..., 0] - 0.5
    y = points[..., 1] - 0.5
    angle = rects.rotation[:, None]
    cos, sin = torch.cos(angle), torch.sin(angle)
    new_x = cos * x - sin * y
    new_y = sin * x + cos * y
    width, height = rects.width[:, None], rects.height[:, None]
    if clamp_rect_origin:
        x_min = (rects.x_center[:, None] - width * 0.5).clamp(min=0.0)
        y_min = (rects.y_center[:, None] - height * 0.5).clamp(min=0.0)
        new_x = (new_x + 0.5) * width + x_min
        new_y = (new_y + 0.5) * height + y_min
    else:
        new_x = new_x * width + rects.x_center[:, None]
        new_y = new_y * height + rects.y_center[:, None]
    new_z = points[..., 2] * width
    return torch.cat([new_x[..., None], new_y[..., None], new_z[..., None], points[..., 3:]], dim=-1)


def project_world(world: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """``WorldLandmarkProjectionCalculator``: rotate x and y by each rect's rotation; z unchanged."""
    cos, sin = torch.cos(rotation)[:, None], torch.sin(rotation)[:, None]
    x, y = world[..., 0], world[..., 1]
    return torch.stack([cos * x - sin * y, sin * x + cos * y, world[..., 2]], dim=-1)


def to_pixels(projected: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """Image-normalised ``[R, P, 5]`` -> posepipe's pixel landmarks ``x * W, y * H, z * W, vis, pres``.

    The same conversion as :meth:`posepipe.result.Person.from_mediapipe`.
    """
    w = image_size[:, 0:1]
    h = image_size[:, 1:2]
    return torch.stack(
        [
            projected[..., 0] * w,
            projected[..., 1] * h,
            projected[..., 2] * w,
            projected[..., 3],
            projected[..., 4],
        ],
        dim=-1,
    )
