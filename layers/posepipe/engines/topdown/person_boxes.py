"""Person boxes: what a general detector finds, their overlap, duplicate suppression, and the
two general detectors of the model catalogue on ONNX Runtime: CenterNet (``centernet``, the
default) and NanoDet (``nanodet``).

CenterNet (MobileNetV3 backbone, 512x512 input, pixel values 0-255) outputs a class heatmap at a
stride of 4 (128x128x80, COCO's 80 classes, class 0 a person) and, at each cell, the distances
from the cell to the box's left, top, right and bottom edges. A person is a cell that is the
largest of its 3x3 neighbourhood in the person channel, with a score at least ``min_score``;
its box is the cell's position times the stride, minus or plus the distances. The picture is
letterboxed into the input (scaled to fit, padded at the bottom or right with black), and boxes
are mapped back to the picture's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.onnx_session import onnx_session

CENTERNET_INPUT = 512
CENTERNET_STRIDE = 4
PERSON_CLASS = 0
DEFAULT_MIN_SCORE = 0.3  # the score the first trial used (../shared/NOTES.md); not tuned yet
NANODET_INPUT = 416
NANODET_STRIDES = (8, 16, 32)
NANODET_BINS = 11  # each side's distance is a distribution over 0..10 strides (GFL's reg_max 10)
NANODET_MAX_IOU = 0.5  # neighbouring cells find the same person: the best of them is kept


@dataclass(frozen=True)
class PersonBox:
    """A detected person: corners in image pixels (x0, y0) top left, (x1, y1) bottom right."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def suppress_duplicates(
    boxes: list[tuple[float, float, float, float]], scores: list[float], max_iou: float
) -> list[int]:
    """Greedy non-maximum suppression: the indices kept, best score first."""
    kept: list[int] = []
    for index in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(box_iou(boxes[index], boxes[other]) <= max_iou for other in kept):
            kept.append(index)
    return kept


class CenterNetPersonDetector:
    """A :class:`posepipe.engines.parts.PersonDetector` over RGB images: CenterNet on ONNX Runtime."""

    def __init__(
        self, model_path: str | Path, *, threads: int = 1, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.session, self._input = onnx_session(model_path, threads)
        self.min_score = min_score

    def find_people(self, images: list[RGBImage], max_people: int) -> list[list[PersonBox]]:
        return [self.detect(rgb)[:max_people] for rgb in images]

    def detect(self, rgb: RGBImage) -> list[PersonBox]:
        """The persons in one image, best score first."""
        canvas, scale = letterbox(rgb, CENTERNET_INPUT)
        heatmap, distances = self.session.run(None, {self._input: canvas[None]})
        return decode_centernet(heatmap[0], distances[0], scale, rgb.shape[:2], self.min_score)


def letterbox(rgb: RGBImage, size: int) -> tuple[npt.NDArray[np.float32], float]:
    """The picture scaled to fit ``size`` x ``size`` (area averaging), at the top left of a black
    square, as float32 pixel values; and the scale."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    canvas[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return canvas, scale


def decode_centernet(
    heatmap: npt.NDArray[np.float32],
    distances: npt.NDArray[np.float32],
    scale: float,
    image_size: tuple[int, ...],
    min_score: float,
) -> list[PersonBox]:
    """Person boxes from CenterNet's heads (``[128, 128, 80]`` scores, ``[128, 128, 4]`` distances)."""
    person: npt.NDArray[Any] = np.ascontiguousarray(heatmap[..., PERSON_CLASS])
    peaks = (person == cv2.dilate(person, np.ones((3, 3), np.uint8))) & (person >= min_score)
    rows, cols = np.nonzero(peaks)
    height, width = image_size[0], image_size[1]
    boxes = []
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        left, top, right, bottom = distances[row, col].tolist()
        cx, cy = col * CENTERNET_STRIDE, row * CENTERNET_STRIDE
        boxes.append(
            PersonBox(
                x0=max(0.0, (cx - left) / scale),
                y0=max(0.0, (cy - top) / scale),
                x1=min(float(width), (cx + right) / scale),
                y1=min(float(height), (cy + bottom) / scale),
                score=float(person[row, col]),
            )
        )
    boxes = [box for box in boxes if box.width > 1 and box.height > 1]
    return sorted(boxes, key=lambda box: -box.score)


class NanoDetPersonDetector:
    """NanoDet (``nanodet``) on ONNX Runtime, over RGB images.

    The picture is resized to 416x416 (stretched, as the TensorFlow.js application the graph
    comes with feeds it), pixel values scaled to [0, 1], channels first. For each stride (8, 16,
    32: a 52x52, 26x26 and 13x13 grid) the network gives each cell 80 class probabilities and,
    for each side of the box, a distribution over 0 to 10 strides from the cell's centre (as
    Generalized Focal Loss heads do): the distance is its expectation. Cells whose person
    probability is at least ``min_score`` give boxes; of boxes overlapping by more than
    ``NANODET_MAX_IOU`` the most probable is kept."""

    def __init__(
        self, model_path: str | Path, *, threads: int = 1, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        self.session, self._input = onnx_session(model_path, threads)
        self.min_score = min_score

    def detect(self, rgb: RGBImage) -> list[PersonBox]:
        """The persons in one image, best score first."""
        height, width = rgb.shape[:2]
        resized = cv2.resize(rgb, (NANODET_INPUT, NANODET_INPUT), interpolation=cv2.INTER_LINEAR)
        planes = np.ascontiguousarray((resized.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1))
        outputs = self.session.run(None, {self._input: planes[None]})
        return decode_nanodet(outputs, (width / NANODET_INPUT, height / NANODET_INPUT), self.min_score)


def decode_nanodet(
    outputs: list[npt.NDArray[np.float32]], scale: tuple[float, float], min_score: float
) -> list[PersonBox]:
    """Person boxes from NanoDet's six outputs (per stride: ``[1, cells, 80]`` probabilities and
    ``[1, cells, 44]`` side distributions), scaled to the picture by ``scale`` (x, y)."""
    boxes: list[PersonBox] = []
    for stride in NANODET_STRIDES:
        side = NANODET_INPUT // stride
        cells = side * side
        scores = next(o for o in outputs if o.shape[1] == cells and o.shape[2] == 80)[0][:, PERSON_CLASS]
        sides = next(o for o in outputs if o.shape[1] == cells and o.shape[2] == 4 * NANODET_BINS)[0]
        chosen = np.nonzero(scores >= min_score)[0]
        if not len(chosen):
            continue
        logits = sides[chosen].reshape(-1, 4, NANODET_BINS).astype(np.float64)
        weights = np.exp(logits - logits.max(axis=2, keepdims=True))
        distances = (weights / weights.sum(axis=2, keepdims=True)) @ np.arange(NANODET_BINS) * stride
        cx = (chosen % side + 0.5) * stride
        cy = (chosen // side + 0.5) * stride
        for index, (left, top, right, bottom) in enumerate(distances.tolist()):
            boxes.append(
                PersonBox(
                    x0=max(0.0, (cx[index] - left) * scale[0]),
                    y0=max(0.0, (cy[index] - top) * scale[1]),
                    x1=min(NANODET_INPUT * scale[0], (cx[index] + right) * scale[0]),
                    y1=min(NANODET_INPUT * scale[1], (cy[index] + bottom) * scale[1]),
                    score=float(scores[chosen[index]]),
                )
            )
    boxes = [box for box in boxes if box.width > 1 and box.height > 1]
    kept = suppress_duplicates(
        [(b.x0, b.y0, b.x1, b.y1) for b in boxes], [b.score for b in boxes], NANODET_MAX_IOU
    )
    return [boxes[i] for i in kept]
