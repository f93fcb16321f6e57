"""Regions of interest: rects from detections and from landmarks, and the crops MediaPipe feeds its models.

A region of interest is MediaPipe's ``NormalizedRect``: a centre, a width and a height normalised
by the image's width and height, and a rotation in radians (clockwise in image coordinates, where
y points down). :class:`Rects` holds any number of them, from any number of images, as tensors.

Rules and constants, with their sources in google-ai-edge/mediapipe:

- Detection -> rect: ``AlignmentPointsRectsCalculator``
  (``mediapipe/calculators/util/alignment_points_to_rects_calculator.cc``), configured in
  ``mediapipe/tasks/cc/vision/pose_detector/pose_detector_graph.cc``
  (``ConfigureAlignmentPointsRectsCalculator``: start keypoint 0, end keypoint 1, target angle 90
  degrees). The centre is keypoint 0 (the hips' midpoint), the side of the square is twice the
  pixel distance from keypoint 0 to keypoint 1. The rotation comes from the base class,
  ``DetectionsToRectsCalculator::ComputeRotation``
  (``mediapipe/calculators/util/detections_to_rects_calculator.cc``):
  ``NormalizeRadians(target - atan2(-(y1 - y0), x1 - x0))`` in pixels, wrapped into [-pi, pi).
- Rect expansion: ``RectTransformationCalculator``
  (``mediapipe/calculators/util/rect_transformation_calculator.cc``), configured in
  ``pose_detector_graph.cc`` and ``pose_landmarks_detector_graph.cc``
  (``ConfigureRectTransformationCalculator``): ``scale_x`` = ``scale_y`` = 1.25,
  ``square_long`` true, no shift and no extra rotation (so the rotation is kept as it is).
- Landmarks -> rect for the next frame (tracking): ``pose_landmarks_detector_graph.cc`` splits
  the 39 decoded points into 33 landmarks and the auxiliary points 33 and 34
  (``ConfigureSplitNormalizedLandmarkListCalculator``), projects the auxiliary points to the
  image, makes them a detection (``LandmarksToDetectionCalculator``) and runs the same
  ``AlignmentPointsRectsCalculator`` (keypoints 0 and 1, 90 degrees; from
  ``mediapipe/modules/pose_landmark/pose_landmarks_to_roi.pbtxt``) and the same
  ``RectTransformationCalculator`` (1.25, square long).
- Crops: ``ImageToTensorCalculator`` (``mediapipe/calculators/tensor/image_to_tensor_calculator.cc``,
  ``image_to_tensor_utils.cc``) with its CPU converter
  (``mediapipe/calculators/tensor/image_to_tensor_converter_opencv.cc``). The rect in pixels is
  ``(x_center * W, y_center * H, width * W, height * H, rotation)`` (``GetRoi``); with
  ``keep_aspect_ratio`` it is first grown to the tensor's aspect ratio (``PadRoi``) and the padding
  is reported as the letterbox. The converter maps the rect's four corners
  (``cv::boxPoints``) onto the output's corners ``(0, 0)`` .. ``(width, height)`` and resamples
  with ``cv::warpPerspective`` (``INTER_LINEAR``) in OpenCV's pixel-centre convention: output
  pixel ``(u, v)`` reads the source at ``centre + R(rotation) @ ((u / S - 0.5) * w,
  (v / S - 0.5) * h)``, where integer source coordinates are pixel centres. The result is
  still ``uint8`` (rounded) before ``convertTo`` scales it to the model's float range. The
  OpenCV inside mediapipe 1.2.2's ``libmediapipe.so`` (5.1.0-dev) resamples 8-bit images with
  the classic fixed-point path: its symbols include ``cv::WarpPerspectiveInvoker`` and
  ``remapBilinear<FixedPtCast<int, uchar, 15>, RemapVec_8u>`` and no float
  ``warpPerspectiveLinearInvoker``, unlike the ``opencv-python`` 5.0 wheel. That is why
  :func:`warp_to_tensor` reproduces it to the bit (``resampling="exact"``): plain float
  bilinear sampling moves BlazePose's landmarks by about a pixel on these photos.
  Border modes: the detector asks for ``BORDER_ZERO`` (``pose_detector_graph.cc``); the landmark
  model's preprocessing leaves it unset (``ImagePreprocessingGraph``,
  ``mediapipe/tasks/cc/components/processors/image_preprocessing_graph.cc``), which
  ``GetBorderMode`` turns into ``BORDER_REPLICATE``; ``keep_aspect_ratio`` is left false there.
  The float range comes from the model's metadata normalisation (``(0 - mean) / std`` to
  ``(255 - mean) / std``): [0, 1] for posepipe's bundle.

One module over 400 lines on purpose: MediaPipe's region arithmetic (rects from detections and
landmarks) and the crops cut with it share the ``Rects`` type and its conventions, and are checked
against MediaPipe together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)

BorderMode = Literal["zero", "replicate"]
Resampling = Literal["exact", "fast"]

# pose_detector_graph.cc / pose_landmarks_detector_graph.cc (ConfigureAlignmentPointsRectsCalculator):
# M_PI * 90 / 180.f, stored as a float.
TARGET_ANGLE = math.pi * 90.0 / 180.0
# pose_detector_graph.cc / pose_landmarks_detector_graph.cc (ConfigureRectTransformationCalculator).
ROI_SCALE = 1.25
# pose_landmarks_detector_graph.cc (ConfigureSplitNormalizedLandmarkListCalculator): points 33, 34.
AUXILIARY_POINTS = (33, 34)
# Rows of source pixels per resampling call: keeps float32 grid coordinates far below 1e-3 px.
_MAX_CANVAS_ROWS = 8192
# OpenCV's INTER_BITS 5: warp positions in 1/32 pixel.
_INTER_TAB_SIZE = 32


@dataclass(frozen=True)
class Rects:
    """Rotated rects normalised by their image's size, one per row of every tensor.

    ``image_index`` says which image of a batch each rect belongs to; ``image_size`` is that
    image's (width, height) in pixels, as float.
    """

    x_center: torch.Tensor  # [R]
    y_center: torch.Tensor  # [R]
    width: torch.Tensor  # [R]
    height: torch.Tensor  # [R]
    rotation: torch.Tensor  # [R], radians
    image_index: torch.Tensor  # [R], long
    image_size: torch.Tensor  # [R, 2], (width, height) in pixels

    def __len__(self) -> int:
        return int(self.x_center.shape[0])

    def index_select(self, index: torch.Tensor) -> Rects:
        return Rects(
            x_center=self.x_center.index_select(0, index),
            y_center=self.y_center.index_select(0, index),
            width=self.width.index_select(0, index),
            height=self.height.index_select(0, index),
            rotation=self.rotation.index_select(0, index),
            image_index=self.image_index.index_select(0, index),
            image_size=self.image_size.index_select(0, index),
        )

    def pixels(self) -> torch.Tensor:
        """``[R, 5]``: centre x, centre y, width, height in pixels, and the rotation (``GetRoi``)."""
        w, h = self.image_size[:, 0], self.image_size[:, 1]
        return torch.stack(
            [self.x_center * w, self.y_center * h, self.width * w, self.height * h, self.rotation], dim=1
        )


def normalize_radians(angle: torch.Tensor) -> torch.Tensor:
    """Wrap into [-pi, pi) as MediaPipe's ``NormalizeRadians``."""
    return angle - 2 * math.pi * torch.floor((angle + math.pi) / (2 * math.pi))


def alignment_points_to_rects(
    start: torch.Tensor,
    end: torch.Tensor,
    image_size: torch.Tensor,
    image_index: torch.Tensor,
    target_angle: float = TARGET_ANGLE,
) -> Rects:
    """``AlignmentPointsRectsCalculator``: a square around ``start`` reaching twice as far as ``end``.

    ``start`` and ``end``: ``[R, 2]`` normalised (x, y); ``image_size``: ``[R, 2]`` pixels.
    """
    size = image_size.to(start.dtype)
    p0 = start * size
    p1 = end * size
    box = torch.linalg.vector_norm(p1 - p0, dim=1) * 2.0
    rotation = normalize_radians(target_angle - torch.atan2(-(p1[:, 1] - p0[:, 1]), p1[:, 0] - p0[:, 0]))
    return Rects(
        x_center=p0[:, 0] / size[:, 0],
        y_center=p0[:, 1] / size[:, 1],
        width=box / size[:, 0],
        height=box / size[:, 1],
        rotation=rotation,
        image_index=image_index,
        image_size=size,
    )


def transform_rects(
    rects: Rects,
    scale_x: float = ROI_SCALE,
    scale_y: float = ROI_SCALE,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    square_long: bool = True,
) -> Rects:
    """``RectTransformationCalculator`` on normalised rects (``TransformNormalizedRect``)."""
    w_img, h_img = rects.image_size[:, 0], rects.image_size[:, 1]
    width, height, rotation = rects.width, rects.height, rects.rotation
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    # With rotation 0 the calculator shifts along the axes; the rotated formula gives the same.
    x_shift = (w_img * width * shift_x * cos - h_img * height * shift_y * sin) / w_img
    y_shift = (w_img * width * shift_x * sin + h_img * height * shift_y * cos) / h_img
    if square_long:
        long_side = torch.maximum(width * w_img, height * h_img)
        width, height = long_side / w_img, long_side / h_img
    return Rects(
        x_center=rects.x_center + x_shift,
        y_center=rects.y_center + y_shift,
        width=width * scale_x,
        height=height * scale_y,
        rotation=rotation,
        image_index=rects.image_index,
        image_size=rects.image_size,
    )


def detections_to_rois(keypoints: torch.Tensor, image_size: torch.Tensor, image_index: torch.Tensor) -> Rects:
    """The landmark model's input rects from pose detections (``EXPANDED_POSE_RECTS``).

    ``keypoints``: ``[R, 4, 2]`` normalised to the image (after letterbox removal); keypoint 0 is
    the hips' midpoint, keypoint 1 sets the size and rotation of the full body.
    """
    rects = alignment_points_to_rects(keypoints[:, 0], keypoints[:, 1], image_size, image_index)
    return transform_rects(rects)


def landmarks_to_rois(landmarks: torch.Tensor, image_size: torch.Tensor, image_index: torch.Tensor) -> Rects:
    """The next frame's rects from a pose's projected landmarks (``POSE_RECTS_NEXT_FRAME``).

    ``landmarks``: ``[R, 39 or more, >= 2]`` normalised to the image; the auxiliary points 33 and 34
    play keypoints 0 and 1 of a detection.
    """
    start, end = AUXILIARY_POINTS
    rects = alignment_points_to_rects(landmarks[:, start, :2], landmarks[:, end, :2], image_size, image_index)
    return transform_rects(rects)


def pad_to_aspect(pixels: torch.Tensor, out_width: int, out_height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``PadRoi`` with ``keep_aspect_ratio``: grow pixel rects ``[R, 5]`` to the output's aspect ratio.

    Returns the grown rects and the letterbox padding ``[R, 4]`` (left, top, right, bottom),
    normalised by the output's size.
    """
    tensor_aspect = out_height / out_width
    roi_aspect = pixels[:, 3] / pixels[:, 2]
    taller = tensor_aspect > roi_aspect  # the tensor is taller than the rect: pad top and bottom
    new_width = torch.where(taller, pixels[:, 2], pixels[:, 3] / tensor_aspect)
    new_height = torch.where(taller, pixels[:, 2] * tensor_aspect, pixels[:, 3])
    vertical = torch.where(taller, (1.0 - roi_aspect / tensor_aspect) / 2.0, torch.zeros_like(roi_aspect))
    horizontal = torch.where(taller, torch.zeros_like(roi_aspect), (1.0 - tensor_aspect / roi_aspect) / 2.0)
    grown = torch.stack([pixels[:, 0], pixels[:, 1], new_width, new_height, pixels[:, 4]], dim=1)
    padding = torch.stack([horizontal, vertical, horizontal, vertical], dim=1)
    return grown, padding


def rect_corners(pixels: torch.Tensor) -> torch.Tensor:
    """``[R, 4, 2]`` float32 corners of pixel rects ``[R, 5]``, as the OpenCV converter gets them.

    ``cv::RotatedRect`` with the angle in degrees (``rotation * 180.f / M_PI``), then
    ``RotatedRect::points`` (``cv::boxPoints``): in float32, corner 0 is the rect's bottom-left
    (``centre + R(rotation) @ (-w/2, h/2)``), then top-left, top-right, bottom-right.
    """
    px = pixels.to(torch.float32)
    cx, cy, w, h, rotation = px.unbind(1)
    degrees = ((rotation * 180.0).double() / math.pi).to(torch.float32)
    radians = degrees.double() * math.pi / 180.0
    b = torch.cos(radians).to(torch.float32) * 0.5
    a = torch.sin(radians).to(torch.float32) * 0.5
    p0 = torch.stack([cx - a * h - b * w, cy + b * h - a * w], dim=1)
    p1 = torch.stack([cx + a * h - b * w, cy - b * h - a * w], dim=1)
    p2 = torch.stack([2 * cx, 2 * cy], dim=1) - p0
    p3 = torch.stack([2 * cx, 2 * cy], dim=1) - p1
    return torch.stack([p0, p1, p2, p3], dim=1)


def crop_homography(pixels: torch.Tensor, out_width: int, out_height: int) -> torch.Tensor:
    """``[R, 3, 3]`` float64: output pixel (u, v, 1) -> source pixel, as the OpenCV converter warps.

    The rect's corners (:func:`rect_corners`) go to the output's corners (0, H), (0, 0), (W, 0),
    (W, H) (``cv::getPerspectiveTransform``); ``cv::warpPerspective`` samples the source through
    the inverse of that, which is solved for here directly. Integer coordinates are pixel centres.
    """
    src = rect_corners(pixels).to(torch.float64)
    dst = torch.tensor(
        [[0.0, out_height], [0.0, 0.0], [out_width, 0.0], [out_width, out_height]],
        dtype=torch.float64,
        device=src.device,
    ).expand_as(src)
    count = src.shape[0]
    u, v = dst[..., 0], dst[..., 1]
    x, y = src[..., 0], src[..., 1]
    zeros, ones = torch.zeros_like(u), torch.ones_like(u)
    rows_x = torch.stack([u, v, ones, zeros, zeros, zeros, -u * x, -v * x], dim=-1)
    rows_y = torch.stack([zeros, zeros, zeros, u, v, ones, -u * y, -v * y], dim=-1)
    system = torch.cat([rows_x, rows_y], dim=1)  # [R, 8, 8]
    rhs = torch.cat([x, y], dim=1)  # [R, 8]
    solution = torch.linalg.solve(system, rhs)
    return torch.cat([solution, torch.ones((count, 1), dtype=torch.float64, device=src.device)], dim=1).view(
        count, 3, 3
    )


def to_image_tensors(frames: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    """Frames as a list of ``[3, H, W]`` tensors (``uint8``, or float in 0..255)."""
    return list(frames.unbind(0)) if isinstance(frames, torch.Tensor) else list(frames)


def _groups(images: list[torch.Tensor], image_index: torch.Tensor) -> list[tuple[list[int], list[int]]]:
    """Images of one size together: (frames, rects reading from them), in chunks of bounded rows."""
    indices = image_index.tolist()
    by_size: dict[tuple[int, int], list[int]] = {}
    for frame, image in enumerate(images):
        by_size.setdefault((int(image.shape[1]), int(image.shape[2])), []).append(frame)
    out = []
    for (height, _width), members in by_size.items():
        per_chunk = max(1, _MAX_CANVAS_ROWS // (height + 1))
        for start in range(0, len(members), per_chunk):
            chunk = members[start : start + per_chunk]
            wanted = set(chunk)
            picked = [r for r, frame in enumerate(indices) if frame in wanted]
            if picked:
                out.append((chunk, picked))
    return out


def warp_to_tensor(
    frames: Sequence[torch.Tensor] | torch.Tensor,
    image_index: torch.Tensor,
    homography: torch.Tensor,
    out_width: int,
    out_height: int,
    border: BorderMode,
    resampling: Resampling = "exact",
) -> torch.Tensor:
    """Resample one output image per homography: ``[R, 3, out_height, out_width]`` float32 in 0..255.

    ``frames``: the images, ``[3, H, W]`` each, ``uint8`` (sizes may differ); ``image_index[r]``
    picks rect ``r``'s image; ``homography[r]`` maps its output pixels to source pixels (see
    :func:`crop_homography`). Bilinear, with MediaPipe's border modes.

    ``resampling="exact"`` is what MediaPipe's CPU converter gets from its OpenCV
    (``cv::warpPerspective`` on 8-bit images: ``WarpPerspectiveInvoker`` then
    ``remapBilinear`` with ``FixedPtCast<int, uchar, 15>``): each source position rounded to
    1/32 pixel (``INTER_BITS`` 5, round half to even), integer bilinear weights summing to 32768
    and the result rounded half up, so the output is an integer image, bit for bit. It gathers
    the four neighbours itself. ``resampling="fast"`` maps the pixels with ``F.affine_grid`` and
    samples with ``F.grid_sample`` in float, without those roundings (pixel values within about
    one level of the exact ones).
    """
    images = to_image_tensors(frames)
    count = int(image_index.shape[0])
    device = homography.device
    out = torch.zeros((count, 3, out_height, out_width), dtype=torch.float32, device=device)
    if count == 0:
        return out
    for chunk, picked in _groups(images, image_index):
        slot = {frame: position for position, frame in enumerate(chunk)}
        picked_t = torch.tensor(picked, device=device)
        slots = torch.tensor([slot[int(image_index[r])] for r in picked], device=device)
        stack = torch.stack([images[f] for f in chunk]).to(device)
        h = homography.index_select(0, picked_t)
        if resampling == "exact":
            sampled = _warp_fixed_point(stack, slots, h, out_width, out_height, border)
        else:
            sampled = _warp_grid_sample(stack, slots, h, out_width, out_height, border)
        out[picked_t] = sampled
    return out


def _warp_fixed_point(
    stack: torch.Tensor,
    slots: torch.Tensor,
    homography: torch.Tensor,
    out_width: int,
    out_height: int,
    border: str,
) -> torch.Tensor:
    _, channels, height, width = stack.shape
    device = stack.device
    u = torch.arange(out_width, dtype=torch.float64, device=device)
    v = torch.arange(out_height, dtype=torch.float64, device=device)
    m = homography[:, :, :, None, None]
    x0 = m[:, 0, 0] * u + m[:, 0, 1] * v[:, None] + m[:, 0, 2]
    y0 = m[:, 1, 0] * u + m[:, 1, 1] * v[:, None] + m[:, 1, 2]
    w0 = m[:, 2, 0] * u + m[:, 2, 1] * v[:, None] + m[:, 2, 2]
    scale = torch.where(w0 != 0, _INTER_TAB_SIZE / w0, torch.zeros_like(w0))
    limit = float(2**31 - 1)
    # WarpPerspectiveInvoker: X = saturate_cast<int>(X0 * INTER_TAB_SIZE / W), round half to even.
    fx = torch.round((x0 * scale).clamp(-limit - 1, limit)).to(torch.int64)
    fy = torch.round((y0 * scale).clamp(-limit - 1, limit)).to(torch.int64)
    ix = torch.div(fx, _INTER_TAB_SIZE, rounding_mode="floor").clamp(-32768, 32767)
    iy = torch.div(fy, _INTER_TAB_SIZE, rounding_mode="floor").clamp(-32768, 32767)
    ax = fx - torch.div(fx, _INTER_TAB_SIZE, rounding_mode="floor") * _INTER_TAB_SIZE
    ay = fy - torch.div(fy, _INTER_TAB_SIZE, rounding_mode="floor") * _INTER_TAB_SIZE
    # Gather straight from the uint8 frames: flat index of (frame, channel, row, column).
    flat = stack.reshape(-1)
    plane = height * width
    channel_offsets = (torch.arange(channels, device=device, dtype=torch.int64) * plane)[None, :, None, None]
    base = (slots.to(torch.int64) * (channels * plane))[:, None, None]
    total = torch.zeros(
        (homography.shape[0], channels, out_height, out_width), dtype=torch.int32, device=device
    )
    for dy, dx, weight in (
        (0, 0, (_INTER_TAB_SIZE - ax) * (_INTER_TAB_SIZE - ay)),
        (0, 1, ax * (_INTER_TAB_SIZE - ay)),
        (1, 0, (_INTER_TAB_SIZE - ax) * ay),
        (1, 1, ax * ay),
    ):
        px, py = ix + dx, iy + dy
        offset = base + py.clamp(0, height - 1) * width + px.clamp(0, width - 1)  # [R, h, w]
        values = flat[offset[:, None] + channel_offsets].to(torch.int32)  # [R, C, h, w]
        if border == "zero":
            inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
            values = values * inside[:, None].to(torch.int32)
        total += values * weight[:, None].to(torch.int32)
    # remapBilinear with FixedPtCast<int, uchar, 15>: weights are the table's (x 32), + 2^14, >> 15.
    return torch.div(total + 512, 1024, rounding_mode="floor").clamp(0, 255).to(torch.float32)


def _warp_grid_sample(
    stack: torch.Tensor,
    slots: torch.Tensor,
    homography: torch.Tensor,
    out_width: int,
    out_height: int,
    border: str,
) -> torch.Tensor:
    frames, channels, height, width = stack.shape
    device = stack.device
    rows = height + 1
    # One tall canvas with a zero row under each frame: every rect reads from it in one call.
    canvas = (
        F.pad(stack.to(torch.float32), (0, 0, 0, 1))
        .permute(1, 0, 2, 3)
        .reshape(1, channels, frames * rows, width)
    )
    # affine_grid maps normalised output coordinates: fold the index <- normalised step into theta.
    to_index = torch.tensor(
        [
            [out_width / 2.0, 0.0, (out_width - 1) / 2.0],
            [0.0, out_height / 2.0, (out_height - 1) / 2.0],
            [0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
        device=device,
    )
    affine = homography[:, :2] / homography[:, 2:3, 2:3]  # the crops are affine (last row 0, 0, 1)
    theta = affine @ to_index
    count = homography.shape[0]
    grid = F.affine_grid(theta, [count, 1, out_height, out_width], align_corners=False)
    x, y = grid[..., 0], grid[..., 1]
    if border == "replicate":
        x, y = x.clamp(0, width - 1), y.clamp(0, height - 1)
    else:
        # One pixel beyond the frame is zero (outside the canvas, or the zero row under the frame).
        x, y = x.clamp(-1, width), y.clamp(-1, height)
    y = y + (slots.to(torch.float64) * rows)[:, None, None]
    norm = torch.stack([(2 * x + 1) / width - 1, (2 * y + 1) / (frames * rows) - 1], dim=-1)
    norm = norm.to(torch.float32).reshape(1, count * out_height, out_width, 2)
    sampled = F.grid_sample(canvas, norm, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.reshape(channels, count, out_height, out_width).permute(1, 0, 2, 3)


def crop_rois(
    frames: Sequence[torch.Tensor] | torch.Tensor,
    rects: Rects,
    size: int,
    border: BorderMode = "replicate",
    value_range: tuple[float, float] = (0.0, 1.0),
    resampling: Resampling = "exact",
) -> torch.Tensor:
    """The landmark model's input: each rect cut out of its image, ``[R, 3, size, size]`` float32.

    ``ImageToTensorCalculator`` without ``keep_aspect_ratio`` (the landmark preprocessing), border
    replicate, pixels scaled from 0..255 to ``value_range`` (``convertTo`` with
    ``(max - min) / 255`` and ``min``).
    """
    homography = crop_homography(rects.pixels(), size, size)
    pixels = warp_to_tensor(frames, rects.image_index, homography, size, size, border, resampling)
    low, high = value_range
    return pixels * ((high - low) / 255.0) + low
