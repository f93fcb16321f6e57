"""VIDEO mode (tracking) of the torch engine: MediaPipe's PoseLandmarker with ``running_mode=VIDEO``.

A :class:`VideoRegionTracker` is one stream's tracking state over a shared
:class:`~posepipe.engines.torch.blazepose.TorchBlazePose`; :func:`detect_for_video_batch`
advances several streams by one frame each with one detector batch and one landmark batch.
Persons come out as :class:`posepipe.engines.mediapipe.MediaPipePoseEstimator` gives them in VIDEO
mode (pixels, z at the scale of x, world landmarks in metres, ``score`` the mean landmark presence,
``id`` -1).

The rules, with their sources in google-ai-edge/mediapipe (the Tasks graphs that mediapipe 1.2.2
runs; ``use_stream_mode`` is on in VIDEO mode):

- Loopback (``PoseLandmarkerGraph``,
  ``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarker_graph.cc``): a
  ``PreviousLoopbackCalculator`` hands each frame the previous frame's ``POSE_RECTS_NEXT_FRAME``:
  one rect per rect of that frame whose pose passed the presence gate (the landmark subgraph's
  ``GateCalculator`` drops everything of an absent pose, the ``EndLoop`` calculators collect only
  what arrives). The first frame has none.
- Detector skip: ``NormalizedRectVectorHasMinSizeCalculator`` with ``min_size`` = ``num_poses``
  and ``DisallowIf`` (``mediapipe/tasks/cc/components/utils/gate.h``, ``empty_packets_as_allow``):
  the detector runs unless at least ``num_poses`` rects were carried.
- Detector rects (``PoseDetectorGraph``,
  ``mediapipe/tasks/cc/vision/pose_detector/pose_detector_graph.cc``): ``EXPANDED_POSE_RECTS`` are
  made from *all* detections left by NMS; ``num_poses`` clips only its ``DETECTIONS`` output.
  So, unlike IMAGE mode, every detection takes part in the association below.
- Association (``AssociationNormRectCalculator``,
  ``mediapipe/calculators/util/association_calculator.h`` and
  ``association_norm_rect_calculator.cc``), inputs in the order carried rects, detector rects:
  every element of both, in that order, is added to a list; an element first removes every
  element already in the list whose IoU with it is above ``min_tracking_confidence`` (strictly),
  then goes to the end. So a detection replaces the tracked rects it overlaps, the carried rects
  are de-duplicated among themselves, and so are the detections. The IoU is of the axis-aligned
  rects in normalised coordinates, rotation ignored, in float (``Rectangle_f``,
  ``CalculateIou`` in ``mediapipe/util/rectangle_util.cc``). ``ClipNormalizedRectVectorSizeCalculator``
  then keeps the first ``num_poses``.
- Next-frame rect (``SinglePoseLandmarksDetectorGraph``,
  ``mediapipe/tasks/cc/vision/pose_landmarker/pose_landmarks_detector_graph.cc``): from the
  projected auxiliary points 33 and 34 as from a detection (90 degrees, x1.25, square long side),
  unsmoothed: :func:`posepipe.engines.torch.roi.landmarks_to_rois`.
- Smoothing, only when ``num_poses`` is 1 (``PoseLandmarkerGraph`` turns on ``smooth_landmarks``;
  ``MultiplePoseLandmarksDetectorGraph`` applies it to item 0 of its outputs, through
  ``mediapipe/framework/api2/stream/smoothing.cc``):

  - visibility: ``VisibilitySmoothingCalculator`` (low-pass, alpha 0.1) on the landmarks (and on
    the world landmarks, whose visibility posepipe does not report);
  - landmarks: ``LandmarksSmoothingCalculator`` with a One Euro filter (min_cutoff 0.05, beta 80,
    derivate_cutoff 1.0) on every coordinate in pixels (``NormalizedLandmarksToLandmarks``: x * W,
    y * H, z * W), the value scale being 1 / s with s = (w * W + h * H) / 2 of the first
    next-frame rect (``OBJECT_SCALE_ROI``; ``GetObjectScale`` in
    ``mediapipe/calculators/util/landmarks_smoothing_calculator_utils.cc``), no smoothing when s is
    below ``min_allowed_object_scale`` (1e-6);
  - world landmarks: the same calculator with min_cutoff 0.1, beta 40, derivate_cutoff 1.0 and
    ``disable_value_scaling`` (scale 1).

  The One Euro filter (``mediapipe/util/filtering/one_euro_filter.cc``, with ``MediaPipeLowPassFilter``
  from ``low_pass_filter.cc``): the frequency is 1 / dt of the input timestamps, dt from the
  last timestamp (``frequency`` 30 from ``landmarks_smoothing_calculator.proto`` until then; a
  timestamp of 0 on either side leaves the frequency as it is); alpha(cutoff) =
  1 / (1 + tau / Te), tau = 1 / (2 pi cutoff), Te = 1 / frequency; the derivative
  ``(value - last raw value) * value_scale * frequency`` (0 for the first value) is low-passed at
  ``derivate_cutoff``; ``cutoff = min_cutoff + beta * |derivative|``; the value is low-passed at
  that cutoff. A timestamp not after the last one returns the value unfiltered. The low-pass
  filters keep float32 state, as the C++ does. A new filter's last timestamp is -1
  (``kUninitializedTimestamp`` of the 2025 ``OneEuroFilter::Create``), not 0 as in the older
  constructor and ``CreateLegacyFilter``: checked against mediapipe 1.2.2, whose output on the
  second frame of a stream starting at t = 0 is smoothed at 30 Hz (the legacy start would skip
  the frame at t = 0 and pass the second one through).

  When a frame has no landmarks the landmarks' One Euro filters are reset (the calculator still
  runs on that frame for its ``IMAGE_SIZE`` input and resets on the empty ``NORM_LANDMARKS``).
  The visibility filters and the world landmarks' filter have only the landmark stream as input,
  so on such a frame they do not run at all and keep their state over the gap (checked against
  mediapipe 1.2.2: resetting them too puts visibility 0.2 and world landmarks 2 cm off on the
  first frame after a gap).
- Timestamps (``PoseLandmarker.detect_for_video``): MediaPipe rejects a timestamp that does not
  increase; posepipe's engine moves a repeated or earlier one to the last plus 1 ms, and so does
  :class:`VideoRegionTracker`. The calculators see microseconds (milliseconds x 1000).

Person ids: -1, as posepipe's MediaPipe engine returns them (posepipe's own tracker assigns ids).

Parity (``tests/unit/engines/test_torch_video.py``): tracking amplifies any numerical difference (a region
moved by 1e-6 of the frame changes later landmarks by tenths of a pixel), so the torch engine
follows MediaPipe's tracks as closely as that allows, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from posepipe.engines.torch.blazepose import RGBImage, TorchBlazePose
from posepipe.engines.torch.mediapipe_filters import PoseSmoother
from posepipe.engines.torch.network_contract import NUM_LANDMARKS
from posepipe.engines.torch.roi import Rects, detections_to_rois
from posepipe.result import Person

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

MIN_TRACKING_CONFIDENCE = 0.5  # PoseLandmarkerOptions.min_tracking_confidence default

_RECT_COLUMNS = 5  # x_center, y_center, width, height, rotation (normalised, radians)


# -- association ----------------------------------------------------------------------------------


def _rectangle(rect: F32) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """``Rectangle_f`` of a normalised rect: (xmin, ymin, xmax, ymax) in float, rotation ignored."""
    x, y, w, h = (np.float32(v) for v in rect[:4])
    xmin = np.float32(np.float64(x) - np.float64(w) / 2.0)
    ymin = np.float32(np.float64(y) - np.float64(h) / 2.0)
    return xmin, ymin, np.float32(xmin + w), np.float32(ymin + h)


def rect_iou(a: F32, b: F32) -> float:
    """``CalculateIou`` of two normalised rects (axis-aligned, rotation ignored), in float."""
    ax0, ay0, ax1, ay1 = _rectangle(a)
    bx0, by0, bx1, by1 = _rectangle(b)
    if ax0 > ax1 or ay0 > ay1 or bx0 > bx1 or by0 > by1:  # empty
        return 0.0
    if bx1 < ax0 or ax1 < bx0 or by1 < ay0 or ay1 < by0:  # no intersection
        return 0.0
    inter = np.float32(min(ax1, bx1) - max(ax0, bx0)) * np.float32(min(ay1, by1) - max(ay0, by0))
    area_a = np.float32(ax1 - ax0) * np.float32(ay1 - ay0)
    area_b = np.float32(bx1 - bx0) * np.float32(by1 - by0)
    union = np.float32(area_a + area_b - inter)
    return float(np.float32(inter / union)) if union > 0 else 0.0


def associate(carried: F32, detected: F32, max_poses: int, threshold: float = MIN_TRACKING_CONFIDENCE) -> F32:
    """The rects the landmark model runs on: ``AssociationNormRectCalculator`` then the clip.

    ``carried`` and ``detected`` are ``[n, 5]`` rects (x_center, y_center, width, height,
    rotation); the result keeps at most ``max_poses`` of them, in the calculator's order.
    """
    threshold32 = np.float32(threshold)
    result: list[F32] = []
    for rect in [*carried, *detected]:
        result = [kept for kept in result if not np.float32(rect_iou(rect, kept)) > threshold32]
        result.append(rect)
    if not result:
        return np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
    return np.stack(result[:max_poses]).astype(np.float32)


# -- tracking -------------------------------------------------------------------------------------


class VideoRegionTracker:
    """One video stream's tracking state (MediaPipe PoseLandmarker VIDEO mode), over a shared TorchBlazePose.

    Feed the frames of one stream in order to :meth:`detect_for_video` (or, several streams at
    once, to :func:`detect_for_video_batch`). :meth:`reset` forgets the stream (a new one may
    start, with any timestamps).
    """

    def __init__(
        self,
        engine: TorchBlazePose,
        *,
        max_poses: int,
        min_tracking_confidence: float = MIN_TRACKING_CONFIDENCE,
    ) -> None:
        if max_poses < 1:
            raise ValueError(f"max_poses must be at least 1, not {max_poses}")
        if not 0.0 <= min_tracking_confidence <= 1.0:
            raise ValueError(f"min_tracking_confidence must be within [0, 1], not {min_tracking_confidence}")
        self.engine = engine
        self.max_poses = max_poses
        self.min_tracking_confidence = min_tracking_confidence
        self.smoothing = max_poses == 1
        self._rects = np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
        self._last_timestamp_ms = -1
        self._smoother: PoseSmoother | None = PoseSmoother.new() if self.smoothing else None

    @property
    def tracked_rects(self) -> F32:
        """The rects carried to the next frame (``POSE_RECTS_NEXT_FRAME``), ``[n, 5]`` normalised."""
        return self._rects.copy()

    def reset(self) -> None:
        """Forget the stream: no carried rects, fresh filters, any timestamp accepted next."""
        self._rects = np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
        self._last_timestamp_ms = -1
        self._smoother = PoseSmoother.new() if self.smoothing else None

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of this stream (timestamps in ms; one that does not increase is moved
        to the last plus 1, as :class:`posepipe.engines.mediapipe.MediaPipePoseEstimator` does)."""
        return detect_for_video_batch([self], [rgb], [timestamp_ms])[0]

    def _next_timestamp(self, timestamp_ms: int) -> int:
        """The timestamp this frame gets (not yet taken: :meth:`_persons` takes it)."""
        # As MediaPipePoseEstimator: MediaPipe needs strictly increasing timestamps.
        return max(int(timestamp_ms), self._last_timestamp_ms + 1)

    def _persons(
        self,
        timestamp_ms: int,
        landmarks: F32,
        world: F32,
        next_rects: F32,
        width: int,
        height: int,
    ) -> list[Person]:
        """This frame's persons from its present poses (image-normalised ``landmarks`` ``[P, 33, 5]``);
        the only place the tracking state changes."""
        self._last_timestamp_ms = timestamp_ms
        self._rects = next_rects.astype(np.float32)
        if self._smoother is not None:
            if len(landmarks) == 0:
                self._smoother.no_landmarks()
                return []
            pixels, world0 = self._smoother.apply(
                timestamp_ms * 1000, landmarks[0], world[0], next_rects[0], width, height
            )
            return [Person.from_landmarks(pixels, world0)]
        scale = np.array([width, height, width, 1.0, 1.0], dtype=np.float32)
        return [Person.from_landmarks(landmarks[p] * scale, world[p]) for p in range(len(landmarks))]


@torch.inference_mode()
def detect_for_video_batch(
    trackers: Sequence[VideoRegionTracker], frames: Sequence[RGBImage], timestamps_ms: Sequence[int]
) -> list[list[Person]]:
    """One frame of each of several streams, their detector inputs run as one batch and all their
    landmark crops as one batch (the endpoint's many chunks in flight). Equal to calling each
    tracker's detect_for_video.

    The trackers must share one engine and be distinct; frames may differ in size. "Equal" is
    bit for bit when the networks' arithmetic does not depend on the batch (an engine with
    ``batch_size=1``); oneDNN's batched CPU convolutions differ from single-image ones by ~1e-3
    in the raw outputs, and tracking lets such differences grow to tenths of a pixel.

    A failure (a frame the pipeline cannot take, the device out of memory) raises before any
    tracker changes: each can then be advanced alone (what
    :class:`~posepipe.engines.torch.batcher.FrameBatcher` does to keep one bad frame from failing
    the other streams).
    """
    if not len(trackers) == len(frames) == len(timestamps_ms):
        raise ValueError(
            f"one frame and one timestamp per tracker: {len(trackers)} trackers, {len(frames)} frames, "
            f"{len(timestamps_ms)} timestamps"
        )
    if not trackers:
        return []
    engine = trackers[0].engine
    if any(t.engine is not engine for t in trackers):
        raise ValueError("the trackers of one batch must share one TorchBlazePose")
    if len({id(t) for t in trackers}) != len(trackers):
        raise ValueError("a tracker can take only one frame per batch")
    images = engine.image_tensors(frames)
    timestamps = [t._next_timestamp(ts) for t, ts in zip(trackers, timestamps_ms, strict=True)]

    # The detector, on the streams that track fewer than max_poses persons.
    wanted = [i for i, t in enumerate(trackers) if len(t._rects) < t.max_poses]
    detected: dict[int, F32] = {}
    if wanted:
        per_image = _detector_rects(engine, [images[i] for i in wanted])
        detected = dict(zip(wanted, per_image, strict=True))
    empty = np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
    regions = [
        associate(t._rects, detected.get(i, empty), t.max_poses, t.min_tracking_confidence)
        for i, t in enumerate(trackers)
    ]

    # The landmark model on every stream's regions at once.
    sizes = [(int(image.shape[2]), int(image.shape[1])) for image in images]
    rects = _to_rects(regions, sizes, engine.device)
    usable = (rects.width > 0) & (rects.height > 0) & torch.isfinite(rects.rotation)
    if not bool(usable.all()):  # ImageToTensor rejects empty or NaN regions: no landmarks there
        rects = rects.index_select(torch.nonzero(usable)[:, 0])
    estimate = engine.landmark_model.estimate(images, rects)
    landmarks, world, next_rects, keep = (
        estimate.landmarks,
        estimate.world,
        estimate.next_rects,
        estimate.present,
    )

    owner = rects.image_index.cpu().numpy()
    keep_np = keep.cpu().numpy()
    landmarks_np = landmarks[:, :NUM_LANDMARKS].cpu().numpy().astype(np.float32)
    world_np = world.cpu().numpy().astype(np.float32)
    next_np = _rect_rows(next_rects)
    out = []
    for i, tracker in enumerate(trackers):
        rows = np.nonzero((owner == i) & keep_np)[0]
        width, height = sizes[i]
        out.append(
            tracker._persons(timestamps[i], landmarks_np[rows], world_np[rows], next_np[rows], width, height)
        )
    return out


def _detector_rects(engine: TorchBlazePose, images: list[torch.Tensor]) -> list[F32]:
    """``EXPANDED_POSE_RECTS`` of each image: a rect for every detection NMS kept, in NMS order."""
    detections = engine.person_detector.detect(images)
    valid = detections.valid()
    image_index = torch.nonzero(valid)[:, 0]
    rects = detections_to_rois(
        detections.keypoints[valid], detections.image_size.index_select(0, image_index), image_index
    )
    rows = _rect_rows(rects)
    owner = image_index.cpu().numpy()
    return [rows[owner == b] for b in range(len(images))]


def _rect_rows(rects: Rects) -> F32:
    columns = [rects.x_center, rects.y_center, rects.width, rects.height, rects.rotation]
    if len(rects) == 0:
        return np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
    return torch.stack([c.float() for c in columns], dim=1).cpu().numpy().astype(np.float32)


def _to_rects(regions: list[F32], sizes: list[tuple[int, int]], device: torch.device) -> Rects:
    rows = np.concatenate(regions) if regions else np.zeros((0, _RECT_COLUMNS), dtype=np.float32)
    owner = np.concatenate([np.full(len(r), i, dtype=np.int64) for i, r in enumerate(regions)])
    values = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(device)
    image_index = torch.from_numpy(owner).to(device)
    image_size = torch.tensor([[float(w), float(h)] for w, h in sizes], dtype=torch.float32, device=device)
    return Rects(
        x_center=values[:, 0],
        y_center=values[:, 1],
        width=values[:, 2],
        height=values[:, 3],
        rotation=values[:, 4],
        image_index=image_index,
        image_size=image_size.index_select(0, image_index),
    )
