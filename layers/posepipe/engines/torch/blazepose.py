"""``TorchBlazePose``: MediaPipe's PoseLandmarker in IMAGE mode, in torch, batched, on any device.

For every image: the person detector (:mod:`posepipe.engines.torch.person_detector`: the detector
on the letterboxed image, weighted NMS, up to ``max_poses`` regions of interest from the
detections), then the landmark model (:mod:`posepipe.engines.torch.landmark_model`: the landmark
network on their 256 x 256 crops, all crops of all images in one batch, presence gating, and the
landmarks projected back to the image). The result
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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from posepipe.engines.torch.detection import MIN_DETECTION_CONFIDENCE, MIN_SUPPRESSION_THRESHOLD, Detections
from posepipe.engines.torch.landmark_decoding import MIN_PRESENCE_CONFIDENCE, to_pixels
from posepipe.engines.torch.landmark_model import BlazePoseLandmarkModel
from posepipe.engines.torch.network_contract import NUM_LANDMARKS, DetectorForward, LandmarkForward
from posepipe.engines.torch.person_detector import BlazePoseDetector
from posepipe.engines.torch.roi import Rects, Resampling
from posepipe.result import Person

RGBImage = npt.NDArray[np.uint8]


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


class TorchBlazePose:
    """BlazePose in torch, composed of its :class:`~posepipe.engines.torch.person_detector.BlazePoseDetector`
    (``person_detector``) and :class:`~posepipe.engines.torch.landmark_model.BlazePoseLandmarkModel`
    (``landmark_model``): :meth:`detect_image` and :meth:`detect_images` in IMAGE mode; VIDEO mode's
    :class:`~posepipe.engines.torch.video_tracking.VideoRegionTracker` uses the same parts.

    ``detector`` and ``landmarks`` are the two networks (see
    :mod:`posepipe.engines.torch.network_contract`), already on ``device``; ``dtype`` is what they
    take (default fp16 on CUDA, fp32 elsewhere), ``detector_dtype`` what the detector takes when it
    differs (a float32 detector beside float16 landmarks: see docs/PERFORMANCE.md, fp16 parity).
    Everything around them runs in float32 on ``device``. ``batch_size`` caps how many images (or
    crops) go through a network at once. ``clamp_projection_origin`` selects the newer
    ``LandmarkProjectionCalculator`` behaviour (see
    :func:`posepipe.engines.torch.landmark_decoding.project_landmarks`); ``resampling``
    chooses between MediaPipe's exact 8-bit crops and plain ``grid_sample`` ones (see
    :func:`posepipe.engines.torch.roi.warp_to_tensor`).
    """

    def __init__(
        self,
        detector: DetectorForward,
        landmarks: LandmarkForward,
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
        self.person_detector = BlazePoseDetector(
            detector,
            self.device,
            self.detector_dtype,
            min_detection_confidence=min_detection_confidence,
            min_suppression_threshold=min_suppression_threshold,
            batch_size=batch_size,
            input_range=detector_input_range,
            resampling=resampling,
        )
        self.landmark_model = BlazePoseLandmarkModel(
            landmarks,
            self.device,
            self.dtype,
            min_presence_confidence=min_presence_confidence,
            batch_size=batch_size,
            input_range=landmark_input_range,
            clamp_projection_origin=clamp_projection_origin,
            resampling=resampling,
        )

    @property
    def min_detection_confidence(self) -> float:
        return self.person_detector.min_detection_confidence

    @property
    def min_presence_confidence(self) -> float:
        return self.landmark_model.min_presence_confidence

    def with_thresholds(
        self, min_detection_confidence: float, min_presence_confidence: float
    ) -> TorchBlazePose:
        """This engine (the same networks and settings) with other score thresholds."""
        detector, landmarks = self.person_detector, self.landmark_model
        return TorchBlazePose(
            detector.network,
            landmarks.network,
            self.device,
            self.dtype,
            min_detection_confidence=min_detection_confidence,
            min_presence_confidence=min_presence_confidence,
            min_suppression_threshold=detector.min_suppression_threshold,
            batch_size=detector.batch_size,
            detector_input_range=detector.input_range,
            landmark_input_range=landmarks.input_range,
            clamp_projection_origin=landmarks.clamp_projection_origin,
            resampling=detector.resampling,
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
        images = self.image_tensors(frames)
        detections = self.person_detector.detect(images)
        rects = self.person_detector.regions(detections, max_poses)
        estimate = self.landmark_model.estimate(images, rects, keep_crops=keep_crops)
        return ImageBatchResult(
            detections=detections,
            rects=rects,
            crops=estimate.crops,
            presence=estimate.presence,
            present=estimate.present,
            landmarks=estimate.landmarks,
            world=estimate.world,
            next_rects=estimate.next_rects,
        )

    def image_tensors(self, frames: Sequence[RGBImage]) -> list[torch.Tensor]:
        """Upright RGB ``uint8`` images as CHW tensors on the engine's device."""
        return [self._to_tensor(rgb) for rgb in frames]

    def _to_tensor(self, rgb: RGBImage) -> torch.Tensor:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        return tensor.permute(2, 0, 1)
