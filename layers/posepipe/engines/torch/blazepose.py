"""``TorchPoseEngine``: MediaPipe's PoseLandmarker in IMAGE mode, in torch, batched, on any device.

For every image: the detector on the letterboxed image, weighted NMS, up to ``max_poses`` regions
of interest from the detections, the landmark model on their 256 x 256 crops (all crops of all
images in one batch), presence gating, and the landmarks projected back to the image. The result
is posepipe's :class:`posepipe.result.Person`, in the same units and conventions as
:class:`posepipe.engines.mediapipe.MediaPipePoseEstimator` gives them (pixels of the image, z at
the scale of x, world landmarks in metres, ``score`` the mean landmark presence, ``id`` -1).

IMAGE mode follows ``PoseLandmarkerGraph``
(``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarker_graph.cc``) when
``use_stream_mode`` is off: the detector runs on every image and its expanded rects, clipped to
``num_poses`` (``ClipNormalizedRectVectorSizeCalculator``), are the landmark model's regions. The
options map as in ``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarker.cc``
(``ConvertPoseLandmarkerGraphOptionsProto``): ``min_pose_detection_confidence`` is the detector's
score threshold, ``min_pose_presence_confidence`` the landmark model's presence threshold; the NMS
threshold is the detector graph's default ``min_suppression_threshold`` (0.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import torch

from posepipe.engines.torch.anchors import pose_detector_anchors
from posepipe.engines.torch.detection import (
    MIN_DETECTION_CONFIDENCE,
    MIN_SUPPRESSION_THRESHOLD,
    Detections,
    letterbox,
    postprocess_detections,
)
from posepipe.engines.torch.landmark_decoding import (
    MIN_PRESENCE_CONFIDENCE,
    NUM_POINTS,
    decode_landmarks,
    present,
    project_landmarks,
    project_world,
    to_pixels,
)
from posepipe.engines.torch.network_contract import (
    LANDMARK_INPUT,
    NUM_LANDMARKS,
    DetectorModel,
    LandmarkModel,
    LandmarkOutputs,
)
from posepipe.engines.torch.roi import Rects, Resampling, crop_rois, detections_to_rois, landmarks_to_rois
from posepipe.result import Person

RGBImage = npt.NDArray[np.uint8]
T = TypeVar("T")


@dataclass(frozen=True)
class ImageBatchResult:
    """Everything one batch went through, for inspection and for tracking.

    ``rects`` are the regions the landmark model ran on (``image_index`` says whose); the per-rect
    tensors follow them. ``landmarks`` are image-normalised (x, y, z, visibility, presence) for
    all 39 points; ``present`` says which rects gave a person.
    """

    detections: Detections
    rects: Rects
    crops: torch.Tensor | None  # [R, 3, 256, 256] when kept
    presence: torch.Tensor  # [R]
    present: torch.Tensor  # [R] bool
    landmarks: torch.Tensor  # [R, 39, 5]
    world: torch.Tensor  # [R, 33, 3]
    next_rects: Rects  # POSE_RECTS_NEXT_FRAME, from the auxiliary points

    def persons(self, count: int) -> list[list[Person]]:
        """posepipe's persons of each of the ``count`` images, in the order MediaPipe gives them."""
        out: list[list[Person]] = [[] for _ in range(count)]
        if len(self.rects) == 0:
            return out
        pixels = to_pixels(self.landmarks[:, :NUM_LANDMARKS], self.rects.image_size).cpu().numpy()
        world = self.world.cpu().numpy()
        keep = self.present.cpu().tolist()
        for r, image in enumerate(self.rects.image_index.cpu().tolist()):
            if not keep[r]:
                continue
            out[image].append(Person.from_landmarks(pixels[r], world[r]))
        return out


class TorchPoseEngine:
    """BlazePose in torch: :meth:`detect_image` and :meth:`detect_images` in IMAGE mode.

    ``detector`` and ``landmarks`` are the two networks (see :mod:`posepipe.engines.torch.network_contract`),
    already on ``device``; ``dtype`` is what they take (default fp16 on CUDA, fp32 elsewhere),
    ``detector_dtype`` what the detector takes when it differs (a float32 detector beside float16
    landmarks: see docs/PERFORMANCE.md, fp16 parity). Everything around them runs in float32 on
    ``device``. ``batch_size`` caps how many images (or
    crops) go through a network at once. ``clamp_projection_origin`` selects the newer
    ``LandmarkProjectionCalculator`` behaviour (see
    :func:`posepipe.engines.torch.landmark_decoding.project_landmarks`); ``resampling``
    chooses between MediaPipe's exact 8-bit crops and plain ``grid_sample`` ones (see
    :func:`posepipe.engines.torch.roi.warp_to_tensor`).
    """

    def __init__(
        self,
        detector: DetectorModel,
        landmarks: LandmarkModel,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        min_detection_confidence: float = MIN_DETECTION_CONFIDENCE,
        min_presence_confidence: float = MIN_PRESENCE_CONFIDENCE,
        min_suppression_threshold: float = MIN_SUPPRESSION_THRESHOLD,
        batch_size: int = 64,
        detector_input_range: tuple[float, float] = (0.0, 1.0),
        landmark_input_range: tuple[float, float] = (0.0, 1.0),
        clamp_projection_origin: bool = False,
        resampling: Resampling = "exact",
        detector_dtype: torch.dtype | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = (
            dtype if dtype is not None else (torch.float16 if self.device.type == "cuda" else torch.float32)
        )
        self.detector_dtype = detector_dtype if detector_dtype is not None else self.dtype
        for name, value in (
            ("min_detection_confidence", min_detection_confidence),
            ("min_presence_confidence", min_presence_confidence),
            ("min_suppression_threshold", min_suppression_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {value}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.detector = detector
        self.landmarks = landmarks
        self.min_detection_confidence = min_detection_confidence
        self.min_presence_confidence = min_presence_confidence
        self.min_suppression_threshold = min_suppression_threshold
        self.batch_size = batch_size
        self.detector_input_range = detector_input_range
        self.landmark_input_range = landmark_input_range
        self.clamp_projection_origin = clamp_projection_origin
        self.resampling = resampling
        self.anchors = pose_detector_anchors(self.device)

    def with_thresholds(
        self, min_detection_confidence: float, min_presence_confidence: float
    ) -> TorchPoseEngine:
        """This engine (the same networks and settings) with other score thresholds."""
        return TorchPoseEngine(
            self.detector,
            self.landmarks,
            self.device,
            self.dtype,
            min_detection_confidence=min_detection_confidence,
            min_presence_confidence=min_presence_confidence,
            min_suppression_threshold=self.min_suppression_threshold,
            batch_size=self.batch_size,
            detector_input_range=self.detector_input_range,
            landmark_input_range=self.landmark_input_range,
            clamp_projection_origin=self.clamp_projection_origin,
            resampling=self.resampling,
            detector_dtype=self.detector_dtype,
        )

    def detect_image(self, rgb: RGBImage, max_poses: int = 4) -> list[Person]:
        """Persons in one upright RGB ``uint8`` image (H, W, 3)."""
        return self.detect_images([rgb], max_poses)[0]

    def detect_images(self, frames: Sequence[RGBImage], max_poses: int = 4) -> list[list[Person]]:
        """Persons in each of several images (any sizes), every stage batched across them."""
        if not frames:
            return []
        return self.run(frames, max_poses).persons(len(frames))

    @torch.inference_mode()
    def run(
        self, frames: Sequence[RGBImage], max_poses: int = 4, keep_crops: bool = False
    ) -> ImageBatchResult:
        """The whole pipeline on a batch of images, with its intermediate results."""
        if max_poses < 1:
            raise ValueError(f"max_poses must be at least 1, not {max_poses}")
        images = [self._to_tensor(rgb) for rgb in frames]
        detections = self._detect(images)
        rects = self._rois(detections, max_poses)
        crops = crop_rois(
            images, rects, LANDMARK_INPUT, "replicate", self.landmark_input_range, self.resampling
        )
        outputs = self._landmark_outputs(crops)
        decoded = decode_landmarks(outputs)
        landmarks = project_landmarks(decoded.points, rects, self.clamp_projection_origin)
        world = project_world(decoded.world, rects.rotation)
        return ImageBatchResult(
            detections=detections,
            rects=rects,
            crops=crops if keep_crops else None,
            presence=decoded.presence,
            present=present(decoded.presence, self.min_presence_confidence),
            landmarks=landmarks,
            world=world,
            next_rects=landmarks_to_rois(landmarks, rects.image_size, rects.image_index),
        )

    def _to_tensor(self, rgb: RGBImage) -> torch.Tensor:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        return tensor.permute(2, 0, 1)

    def _detect(self, images: list[torch.Tensor]) -> Detections:
        parts = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            inputs, box = letterbox(
                chunk,
                value_range=self.detector_input_range,
                device=self.device,
                resampling=self.resampling,
            )
            raw_boxes, raw_scores = self.detector(inputs.to(self.detector_dtype))
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
        return _concat_detections(parts)

    def _rois(self, detections: Detections, max_poses: int) -> Rects:
        count = detections.count.clamp(max=max_poses)
        k = min(max_poses, detections.scores.shape[1])
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

    def _landmark_outputs(self, crops: torch.Tensor) -> LandmarkOutputs:
        if crops.shape[0] == 0:
            return _empty_landmark_outputs(self.device)
        parts = [
            self.landmarks(crops[start : start + self.batch_size].to(self.dtype))
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


def _concat_detections(parts: list[Detections]) -> Detections:
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


def _empty_landmark_outputs(device: torch.device) -> LandmarkOutputs:
    return LandmarkOutputs(
        landmarks=torch.zeros((0, NUM_POINTS * 5), device=device),
        presence=torch.zeros((0, 1), device=device),
        segmentation=torch.zeros((0, 1, LANDMARK_INPUT, LANDMARK_INPUT), device=device),
        heatmap=torch.zeros((0, NUM_POINTS, 64, 64), device=device),
        world=torch.zeros((0, NUM_POINTS * 3), device=device),
    )
