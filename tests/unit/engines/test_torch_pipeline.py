"""The torch engine's pipeline around the networks: anchors, letterbox, NMS, ROIs, crops, decoding.

Hand-checked cases for each rule, then parity with posepipe's MediaPipe engine in IMAGE mode on
the sample photos. The networks are the bundle's own TFLite models run by LiteRT
(:mod:`tests.support.litert_networks`), so only the pipeline differs from MediaPipe's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from posepipe.engines.base import PoseEngineOptions
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.engines.torch.anchors import pose_detector_anchors
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.detection import (
    Letterbox,
    decode_boxes,
    decode_scores,
    letterbox,
    postprocess_detections,
    weighted_nms,
)
from posepipe.engines.torch.landmark_decoding import (
    present,
    project_landmarks,
    project_world,
    refine_from_heatmap,
    to_pixels,
)
from posepipe.engines.torch.networks import load_networks
from posepipe.engines.torch.roi import (
    Rects,
    crop_homography,
    crop_rois,
    detections_to_rois,
    landmarks_to_rois,
    transform_rects,
    warp_to_tensor,
)
from posepipe.media.images import load_image
from posepipe.result import Person

from tests.support.litert_networks import LiteRtDetector, LiteRtLandmarks, load_litert_networks

pytestmark = pytest.mark.torch

PHOTOS = ("messi5.jpg", "basketball1.png", "basketball2.png")


def frame(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


def rects(x: float, y: float, w: float, h: float, rotation: float, size: tuple[float, float]) -> Rects:
    def one(value: float) -> torch.Tensor:
        return torch.tensor([value])

    return Rects(
        x_center=one(x),
        y_center=one(y),
        width=one(w),
        height=one(h),
        rotation=one(rotation),
        image_index=torch.tensor([0]),
        image_size=torch.tensor([list(size)]),
    )


# -- anchors -------------------------------------------------------------------------------------


def test_anchors_count_and_layout() -> None:
    anchors = pose_detector_anchors()
    assert anchors.shape == (2254, 4)
    assert torch.all(anchors[:, 2:] == 1.0)  # fixed_anchor_size
    # Stride 8: 28 x 28 cells, two anchors per cell (aspect 1.0 and the interpolated one).
    assert anchors[0, :2].tolist() == pytest.approx([0.5 / 28, 0.5 / 28])
    assert anchors[1, :2].tolist() == anchors[0, :2].tolist()
    assert anchors[2, :2].tolist() == pytest.approx([1.5 / 28, 0.5 / 28])
    assert anchors[56, :2].tolist() == pytest.approx([0.5 / 28, 1.5 / 28])  # next row of cells
    # Stride 16 starts after 28 * 28 * 2 anchors: 14 x 14 cells, two per cell.
    assert anchors[1567, :2].tolist() == pytest.approx([27.5 / 28, 27.5 / 28])
    assert anchors[1568, :2].tolist() == pytest.approx([0.5 / 14, 0.5 / 14])
    # The three stride-32 layers merge: 7 x 7 cells, six anchors per cell.
    first32 = 1568 + 14 * 14 * 2
    assert anchors[first32 : first32 + 6, :2].tolist() == [pytest.approx([0.5 / 7, 0.5 / 7])] * 6
    assert anchors[first32 + 6, :2].tolist() == pytest.approx([1.5 / 7, 0.5 / 7])
    assert anchors[-1, :2].tolist() == pytest.approx([6.5 / 7, 6.5 / 7])


# -- letterbox and resampling -------------------------------------------------------------------------


def test_letterbox_padding_and_round_trip() -> None:
    image = torch.zeros((3, 480, 640), dtype=torch.uint8)
    tensor, box = letterbox([image])
    assert tensor.shape == (1, 3, 224, 224)
    assert box.padding.tolist() == [pytest.approx([0.0, 0.125, 0.0, 0.125])]
    assert box.image_size.tolist() == [[640.0, 480.0]]
    points = torch.rand(1, 10, 2)
    assert torch.allclose(box.remove(box.apply(points)), points, atol=1e-6)
    # The image's top-left corner is at the letterbox's (0, 0.125); its bottom-right at (1, 0.875).
    corners = box.apply(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))
    assert corners.tolist() == [[pytest.approx([0.0, 0.125]), pytest.approx([1.0, 0.875])]]


def test_letterbox_of_a_224_wide_image_is_an_exact_copy() -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, size=(168, 224, 3), dtype=np.uint8)
    tensor, box = letterbox([frame(rgb)])
    assert box.padding.tolist() == [pytest.approx([0.0, 0.125, 0.0, 0.125])]
    pixels = tensor[0] * 255.0
    assert torch.all(pixels[:, :28] == 0)
    assert torch.all(pixels[:, 196:] == 0)
    assert torch.equal(pixels[:, 28:196].round().to(torch.uint8), frame(rgb))


def test_exact_resampling_rounds_like_opencv_fixed_point() -> None:
    # A 2 x 2 ramp magnified 4 times about its top-left pixel centre: the source x of output column
    # u is u / 4, so column 2 reads halfway between 0 and 1: 0.5, which OpenCV's fixed-point
    # bilinear rounds half up (to 1), where float rounding to even would give 0.
    image = torch.tensor([[0, 1], [0, 1]], dtype=torch.uint8).expand(3, 2, 2)
    homography = torch.tensor([[[0.25, 0.0, 0.0], [0.0, 0.25, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    out = warp_to_tensor([image], torch.tensor([0]), homography, 8, 2, "replicate")
    assert out[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # Beyond the last column: replicated; with the zero border, blended towards 0 then 0.
    ramp = torch.tensor([[0, 200], [0, 200]], dtype=torch.uint8).expand(3, 2, 2)
    zero = warp_to_tensor([ramp], torch.tensor([0]), homography, 8, 2, "zero")
    replicate = warp_to_tensor([ramp], torch.tensor([0]), homography, 8, 2, "replicate")
    assert zero[0, 0, 0].tolist() == [0.0, 50.0, 100.0, 150.0, 200.0, 150.0, 100.0, 50.0]
    assert replicate[0, 0, 0].tolist() == [0.0, 50.0, 100.0, 150.0, 200.0, 200.0, 200.0, 200.0]


def test_fast_resampling_stays_close_to_exact(sample: Callable[[str], Path]) -> None:
    rgb = load_image(sample("messi5.jpg")).rgb
    roi = rects(0.47, 0.64, 0.69, 1.1, -0.156, (548.0, 342.0))
    exact = crop_rois([frame(rgb)], roi, 256, resampling="exact") * 255
    fast = crop_rois([frame(rgb)], roi, 256, resampling="fast") * 255
    difference = (exact - fast).abs()
    assert float(difference.mean()) < 0.5
    assert float(difference.max()) <= 8.0


def test_crop_homography_maps_the_rect_corners() -> None:
    # A 100 x 50 rect centred at (200, 100), turned 90 degrees: its top edge faces +x.
    pixels = torch.tensor([[200.0, 100.0, 100.0, 50.0, math.pi / 2]])
    h = crop_homography(pixels, 256, 256)[0]

    def source(u: float, v: float) -> list[float]:
        p = h @ torch.tensor([u, v, 1.0], dtype=torch.float64)
        return (p[:2] / p[2]).tolist()

    assert source(128, 128) == pytest.approx([200.0, 100.0], abs=1e-4)
    assert source(0, 0) == pytest.approx([225.0, 50.0], abs=1e-4)  # top-left corner
    assert source(256, 0) == pytest.approx([225.0, 150.0], abs=1e-4)  # top-right
    assert source(0, 256) == pytest.approx([175.0, 50.0], abs=1e-4)  # bottom-left


# -- detections ----------------------------------------------------------------------------------


def test_decode_boxes_against_anchors() -> None:
    anchors = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    raw = torch.zeros(1, 1, 12)
    raw[0, 0, :4] = torch.tensor([22.4, -11.2, 44.8, 22.4])  # x, y, w, h in 224-pixel units
    raw[0, 0, 4:6] = torch.tensor([0.0, 22.4])
    boxes, keypoints = decode_boxes(raw, anchors)
    assert boxes[0, 0].tolist() == pytest.approx([0.5, 0.4, 0.7, 0.5])
    assert keypoints[0, 0, 0].tolist() == pytest.approx([0.5, 0.6])
    assert keypoints[0, 0, 1].tolist() == pytest.approx([0.5, 0.5])


def test_scores_are_clipped_then_squashed() -> None:
    scores = decode_scores(torch.tensor([[[0.0], [1000.0], [-1000.0]]]))
    assert scores[0].tolist() == pytest.approx(
        [0.5, 1.0 / (1.0 + math.exp(-100.0)), 1.0 / (1.0 + math.exp(100.0))]
    )


def test_weighted_nms_batched() -> None:
    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0, y0, x1, y1]

    # Image 0: A and B overlap (IoU 0.82) and merge; C is apart; D overlaps A with IoU 0.4 only.
    # Image 1: one box. Padding anchors are not candidates.
    boxes = torch.tensor(
        [
            [box(0.0, 0.0, 1.0, 1.0), box(0.1, 0.0, 1.0, 1.0), box(2, 2, 3, 3), box(0.6, 0.0, 1.6, 1.0)],
            [box(0.2, 0.2, 0.4, 0.4), box(0, 0, 0, 0), box(0, 0, 0, 0), box(0, 0, 0, 0)],
        ]
    )
    keypoints = torch.zeros(2, 4, 4, 2)
    keypoints[0, 0, 0] = torch.tensor([0.5, 0.5])
    keypoints[0, 1, 0] = torch.tensor([0.7, 0.5])
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.55, 0.0, 0.0, 0.0]])
    keep = torch.tensor([[True, True, True, True], [True, False, False, False]])
    out = weighted_nms(boxes, keypoints, scores, keep, threshold=0.5)
    assert out.count.tolist() == [3, 1]
    assert out.scores[0].tolist() == pytest.approx([0.9, 0.7, 0.6])
    merged_x0 = (0.9 * 0.0 + 0.8 * 0.1) / 1.7
    assert out.boxes[0, 0].tolist() == pytest.approx([merged_x0, 0.0, 1.0, 1.0])
    assert out.keypoints[0, 0, 0].tolist() == pytest.approx([(0.9 * 0.5 + 0.8 * 0.7) / 1.7, 0.5])
    assert out.boxes[0, 1].tolist() == pytest.approx([2, 2, 3, 3])
    assert out.boxes[0, 2].tolist() == pytest.approx([0.6, 0.0, 1.6, 1.0])
    assert out.boxes[1, 0].tolist() == pytest.approx([0.2, 0.2, 0.4, 0.4])
    assert out.valid().tolist() == [[True, True, True], [True, False, False]]
    per_image = out.per_image()
    assert [len(scores) for _, _, scores in per_image] == [3, 1]


def test_weighted_nms_stops_at_a_box_without_area() -> None:
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.8], [0.0, 0.0, 0.2, 0.2]]])  # the best has zero width
    out = weighted_nms(
        boxes, torch.zeros(1, 2, 4, 2), torch.tensor([[0.9, 0.8]]), torch.tensor([[True, True]])
    )
    assert out.count.tolist() == [1]
    assert out.boxes[0, 0].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.8])


def test_postprocess_applies_threshold_and_removes_the_letterbox() -> None:
    anchors = torch.tensor([[0.5, 0.5, 1.0, 1.0], [0.25, 0.25, 1.0, 1.0]])
    raw = torch.zeros(1, 2, 12)
    raw[0, :, 2:4] = 22.4  # boxes 0.1 wide and high
    logits = torch.tensor([[[0.1], [-0.1]]])  # scores just above and below 0.5
    box = Letterbox(
        padding=torch.tensor([[0.0, 0.125, 0.0, 0.125]]), image_size=torch.tensor([[640.0, 480.0]])
    )
    out = postprocess_detections(raw, logits, anchors, box, min_score=0.5)
    assert out.count.tolist() == [1]
    # Letterboxed (0.45, 0.45, 0.55, 0.55) -> y (0.45 - 0.125) / 0.75 etc.
    assert out.boxes[0, 0].tolist() == pytest.approx([0.45, 0.325 / 0.75, 0.55, 0.425 / 0.75])
    assert out.keypoints[0, 0, 0].tolist() == pytest.approx([0.5, 0.5])


# -- regions of interest -------------------------------------------------------------------------


def test_detection_to_roi_upright_and_turned() -> None:
    size = torch.tensor([[640.0, 480.0], [640.0, 480.0]])
    keypoints = torch.zeros(2, 4, 2)
    keypoints[0, 0] = torch.tensor([0.5, 0.5])  # hips at (320, 240)
    keypoints[0, 1] = torch.tensor([0.5, 0.25])  # straight above, 120 px: upright, 240 px box
    keypoints[1, 0] = torch.tensor([0.5, 0.5])
    keypoints[1, 1] = torch.tensor([0.75, 0.5])  # to the right, 160 px: turned 90 degrees
    roi = detections_to_rois(keypoints, size, torch.tensor([0, 0]))
    assert roi.x_center.tolist() == pytest.approx([0.5, 0.5])
    assert roi.y_center.tolist() == pytest.approx([0.5, 0.5])
    assert roi.rotation.tolist() == pytest.approx([0.0, math.pi / 2])
    assert roi.width.tolist() == pytest.approx([240 * 1.25 / 640, 320 * 1.25 / 640])
    assert roi.height.tolist() == pytest.approx([240 * 1.25 / 480, 320 * 1.25 / 480])
    # The crop's top centre lies towards keypoint 1.
    top = project_landmarks(torch.tensor([[[0.5, 0.0, 0.0]]]).expand(2, 1, 3), roi)
    assert (top[0, 0, :2] * size[0]).tolist() == pytest.approx([320.0, 240.0 - 150.0])
    assert (top[1, 0, :2] * size[0]).tolist() == pytest.approx([320.0 + 200.0, 240.0])


def test_rect_transformation_squares_the_long_side() -> None:
    roi = transform_rects(rects(0.5, 0.5, 0.1, 0.2, 0.3, (640.0, 480.0)))  # 64 x 96 px
    assert roi.width.tolist() == pytest.approx([96 / 640 * 1.25])
    assert roi.height.tolist() == pytest.approx([96 / 480 * 1.25])
    assert roi.rotation.tolist() == pytest.approx([0.3])
    assert roi.x_center.tolist() == pytest.approx([0.5])


def test_rotation_is_wrapped_into_minus_pi_to_pi() -> None:
    size = torch.tensor([[100.0, 100.0]])
    # Keypoint 1 straight below the hips: 90 degrees - (-90 degrees) = 180 degrees -> -180.
    keypoints = torch.tensor([[[0.5, 0.5], [0.5, 0.7], [0.0, 0.0], [0.0, 0.0]]])
    roi = detections_to_rois(keypoints, size, torch.tensor([0]))
    assert roi.rotation.tolist() == pytest.approx([-math.pi])


def test_landmarks_to_roi_uses_the_auxiliary_points() -> None:
    landmarks = torch.zeros(1, 39, 5)
    landmarks[0, 33, :2] = torch.tensor([0.4, 0.6])
    landmarks[0, 34, :2] = torch.tensor([0.4, 0.4])
    size = torch.tensor([[500.0, 500.0]])
    roi = landmarks_to_rois(landmarks, size, torch.tensor([0]))
    assert roi.x_center.tolist() == pytest.approx([0.4])
    assert roi.y_center.tolist() == pytest.approx([0.6])
    assert roi.width.tolist() == pytest.approx([0.2 * 2 * 1.25])
    assert roi.rotation.tolist() == pytest.approx([0.0])


# -- landmarks -----------------------------------------------------------------------------------


def test_heatmap_refinement() -> None:
    heatmap = torch.full((1, 3, 64, 64), -30.0)
    # Point 0: confident peak spread over columns 10 and 11 of row 20 -> x = 10.5 / 64, y = 20 / 64.
    heatmap[0, 0, 20, 10] = 30.0
    heatmap[0, 0, 20, 11] = 30.0
    # Point 1: its best weight is sigmoid(-0.1) < 0.5: kept. Point 2: outside the map: kept.
    heatmap[0, 1, 40, 40] = -0.1
    points = torch.tensor([[[11.2 / 64, 21.9 / 64, 0.3], [40.5 / 64, 40.5 / 64, 0.1], [1.2, 0.5, 0.0]]])
    refined = refine_from_heatmap(points, heatmap)
    assert refined[0, 0].tolist() == pytest.approx([10.5 / 64, 20 / 64, 0.3], abs=1e-6)
    assert refined[0, 1].tolist() == pytest.approx(points[0, 1].tolist())
    assert refined[0, 2].tolist() == pytest.approx(points[0, 2].tolist())
    # A best weight of exactly 0.5 (sigmoid(0)) is enough: min_confidence_to_refine is inclusive.
    heatmap[0, 1, 40, 40] = 0.0
    assert refine_from_heatmap(points, heatmap)[0, 1, :2].tolist() == pytest.approx(
        [40 / 64, 40 / 64], abs=1e-6
    )
    # A peak beyond the 7 x 7 window is not seen.
    far = torch.full((1, 1, 64, 64), -30.0)
    far[0, 0, 20, 15] = 30.0
    kept = refine_from_heatmap(torch.tensor([[[11.2 / 64, 20.5 / 64]]]), far)
    assert kept[0, 0].tolist() == pytest.approx([11.2 / 64, 20.5 / 64])


def test_projection_world_rotation_and_pixels() -> None:
    roi = rects(0.5, 0.5, 0.5, 0.25, math.pi / 2, (400.0, 800.0))
    points = torch.tensor([[[0.5, 0.5, 0.1, 0.9, 0.8], [1.0, 0.5, 0.0, 0.1, 0.2]]])
    projected = project_landmarks(points, roi)
    assert projected[0, 0].tolist() == pytest.approx([0.5, 0.5, 0.05, 0.9, 0.8])
    # +x in the crop is +y in the image when turned 90 degrees: 0.5 * height 0.25 down.
    assert projected[0, 1, :2].tolist() == pytest.approx([0.5, 0.5 + 0.5 * 0.25])
    # The newer calculator's variant clamps the rect's left and top edges at 0 (not mediapipe 1.2.2's).
    clamped = project_landmarks(
        points, rects(0.1, 0.5, 0.5, 0.25, 0.0, (400.0, 800.0)), clamp_rect_origin=True
    )
    assert clamped[0, 0, :2].tolist() == pytest.approx([0.25, 0.5])
    pixels = to_pixels(projected, roi.image_size)
    assert pixels[0, 0].tolist() == pytest.approx([200.0, 400.0, 20.0, 0.9, 0.8])
    world = project_world(torch.tensor([[[1.0, 0.0, 0.3]]]), roi.rotation)
    assert world[0, 0].tolist() == pytest.approx([0.0, 1.0, 0.3], abs=1e-6)
    assert present(torch.tensor([0.5, 0.51, 0.2])).tolist() == [False, True, False]


# -- parity with MediaPipe -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def litert(model_path: Path) -> tuple[LiteRtDetector, LiteRtLandmarks]:
    return load_litert_networks(model_path)


@pytest.fixture(scope="module")
def torch_engine(litert: tuple[LiteRtDetector, LiteRtLandmarks]) -> TorchBlazePose:
    """The pipeline around LiteRT's own networks: only the pipeline can differ from MediaPipe."""
    detector, landmarks = litert
    return TorchBlazePose(detector, landmarks, "cpu")


@pytest.fixture(scope="module")
def ported_engine(model_path: Path) -> TorchBlazePose:
    """The whole torch engine: the pipeline and the ported networks (fp32, CPU)."""
    detector, landmarks = load_networks(model_path)
    return TorchBlazePose(detector, landmarks, "cpu")


@pytest.fixture(scope="module")
def ported_fp16_engine(model_path: Path) -> TorchBlazePose:
    """The torch engine in the precision it has on CUDA: float16 landmarks beside a float32
    detector (``posepipe.engines.torch.estimator.detector_dtype_for``), here in the CPU's float16."""
    detector, landmarks = load_networks(model_path)
    return TorchBlazePose(
        detector, landmarks.to(dtype=torch.float16), "cpu", torch.float16, detector_dtype=torch.float32
    )


@pytest.fixture(scope="module")
def mediapipe_engine(model_path: Path) -> Iterator[MediaPipePoseEstimator]:
    with MediaPipePoseEstimator(PoseEngineOptions(model_path=model_path, max_poses=4)) as engine:
        yield engine


def matched(reference: list[Person], persons: list[Person]) -> list[tuple[Person, Person]]:
    """Pairs each reference person with the torch person nearest in mean landmark distance."""
    pairs = []
    for ref in reference:
        distances = [float(np.linalg.norm(ref.xy - p.xy, axis=1).mean()) for p in persons]
        pairs.append((ref, persons[int(np.argmin(distances))]))
    assert len({id(p) for _, p in pairs}) == len(pairs), "two reference persons matched one torch person"
    return pairs


@pytest.mark.parametrize("networks", ["litert", "ported", "ported-fp16"])
@pytest.mark.parametrize("name", PHOTOS)
def test_parity_with_mediapipe_image_mode(
    name: str, networks: str, sample: Callable[[str], Path], mediapipe_engine: MediaPipePoseEstimator,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    fixture = {"litert": "torch_engine", "ported": "ported_engine", "ported-fp16": "ported_fp16_engine"}
    torch_engine: TorchBlazePose = request.getfixturevalue(fixture[networks])
    rgb = load_image(sample(name)).rgb
    reference = mediapipe_engine.detect(rgb)
    persons = torch_engine.detect_image(rgb, max_poses=4)
    assert len(persons) == len(reference) > 0
    for ref, person in matched(reference, persons):
        distance = np.linalg.norm(ref.xy - person.xy, axis=1)
        world = np.linalg.norm(ref.world_landmarks - person.world_landmarks, axis=1)
        print(
            f"{name}: median {np.median(distance):.3f} px, p95 {np.percentile(distance, 95):.3f} px, "
            f"world median {np.median(world) * 100:.3f} cm"
        )
        assert np.median(distance) <= 1.0
        assert np.percentile(distance, 95) <= 3.0
        assert np.median(world) <= 0.01
        assert np.abs(ref.landmarks[:, 2] - person.landmarks[:, 2]).max() <= 3.0  # z, pixels
        assert np.abs(ref.landmarks[:, 3:] - person.landmarks[:, 3:]).max() <= 0.02  # visibility, presence
        assert person.score == pytest.approx(ref.score, abs=0.01)
        assert person.landmarks.shape == (33, 5)
        assert person.world_landmarks.shape == (33, 3)
        assert person.landmarks.dtype == np.float32
        assert person.id == -1


def test_batched_images_of_different_sizes_match_one_by_one(
    sample: Callable[[str], Path], torch_engine: TorchBlazePose
) -> None:
    images = [load_image(sample(name)).rgb for name in PHOTOS]
    batched = torch_engine.detect_images(images, max_poses=4)
    for rgb, persons in zip(images, batched, strict=True):
        alone = torch_engine.detect_image(rgb, max_poses=4)
        assert len(alone) == len(persons)
        for a, b in zip(alone, persons, strict=True):
            # Bit for bit: no step's arithmetic depends on what else is in the batch.
            np.testing.assert_array_equal(a.landmarks, b.landmarks)
            np.testing.assert_array_equal(a.world_landmarks, b.world_landmarks)


def test_max_poses_keeps_the_best_detections(
    sample: Callable[[str], Path], torch_engine: TorchBlazePose
) -> None:
    rgb = load_image(sample("basketball1.png")).rgb
    result = torch_engine.run([rgb], max_poses=1)
    assert len(result.rects) == 1
    assert result.detections.count.tolist() == [2]
    both = torch_engine.run([rgb], max_poses=4)
    assert torch.equal(result.rects.x_center, both.rects.x_center[:1])
    assert len(result.persons(1)[0]) == 1
    assert torch_engine.detect_images([], max_poses=4) == []
    with pytest.raises(ValueError, match="max_poses"):
        torch_engine.detect_image(rgb, max_poses=0)


def test_images_without_anyone(torch_engine: TorchBlazePose) -> None:
    blank = np.full((120, 200, 3), 255, dtype=np.uint8)
    assert torch_engine.detect_images([blank, blank[:50]], max_poses=4) == [[], []]
    with pytest.raises(ValueError, match="RGB uint8"):
        torch_engine.detect_image(blank[..., 0])
