"""SSD anchors of the BlazePose detector, generated as MediaPipe's ``SsdAnchorsCalculator`` does.

Sources (google-ai-edge/mediapipe):

- ``mediapipe/tasks/cc/vision/pose_detector/pose_detector_graph.cc``,
  ``ConfigureSsdAnchorsCalculator`` (the same values as the legacy
  ``mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt``): ``num_layers`` 5,
  ``min_scale`` 0.1484375, ``max_scale`` 0.75, input 224 x 224, ``anchor_offset_x``/``_y`` 0.5,
  ``strides`` 8, 16, 32, 32, 32, ``aspect_ratios`` [1.0], ``fixed_anchor_size`` true.
- ``mediapipe/calculators/tflite/ssd_anchors_calculator.proto``: the defaults the graph leaves
  alone, ``interpolated_scale_aspect_ratio`` 1.0 (one extra anchor per aspect ratio list) and
  ``reduce_boxes_in_lowest_layer`` false.
- ``mediapipe/calculators/tflite/ssd_anchors_calculator.cc``, ``GenerateAnchors``: consecutive
  layers with the same stride are merged (their anchors interleaved per cell), the feature map of a
  stride is ``ceil(224 / stride)`` cells a side, cells are walked row by row, and an anchor's
  centre is ``(cell + offset) / feature_map_size``. With ``fixed_anchor_size`` every anchor is
  1 x 1, so scales and aspect ratios only set how many anchors a cell has.

For the pose detector: 28 x 28 cells x 2 + 14 x 14 x 2 + 7 x 7 x 6 = 2254 anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The fields of MediaPipe's ``SsdAnchorsCalculatorOptions`` that the generator uses."""

    input_size_width: int
    input_size_height: int
    min_scale: float
    max_scale: float
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...]
    num_layers: int
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    reduce_boxes_in_lowest_layer: bool = False
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False


POSE_DETECTOR_ANCHORS = SsdAnchorOptions(
    input_size_width=224,
    input_size_height=224,
    min_scale=0.1484375,
    max_scale=0.75,
    strides=(8, 16, 32, 32, 32),
    aspect_ratios=(1.0,),
    num_layers=5,
    anchor_offset_x=0.5,
    anchor_offset_y=0.5,
    fixed_anchor_size=True,
)


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * index / (count - 1.0)


def generate_anchors(options: SsdAnchorOptions) -> np.ndarray:
    """``[num_anchors, 4]`` float32: x centre, y centre, width, height, normalised to the input."""
    rows: list[tuple[float, float, float, float]] = []
    strides = options.strides
    layer = 0
    while layer < options.num_layers:
        widths: list[float] = []
        heights: list[float] = []
        last = layer
        # Layers that share a stride are merged: their anchors alternate within each cell.
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(options.min_scale, options.max_scale, last, len(strides))
            ratios: list[float] = []
            scales: list[float] = []
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ratio in options.aspect_ratios:
                    ratios.append(ratio)
                    scales.append(scale)
                if options.interpolated_scale_aspect_ratio > 0.0:
                    following = (
                        1.0
                        if last == len(strides) - 1
                        else _scale(options.min_scale, options.max_scale, last + 1, len(strides))
                    )
                    scales.append(math.sqrt(scale * following))
                    ratios.append(options.interpolated_scale_aspect_ratio)
            for ratio, box_scale in zip(ratios, scales, strict=True):
                root = math.sqrt(ratio)
                heights.append(box_scale / root)
                widths.append(box_scale * root)
            last += 1
        stride = strides[layer]
        map_height = math.ceil(options.input_size_height / stride)
        map_width = math.ceil(options.input_size_width / stride)
        for y in range(map_height):
            for x in range(map_width):
                # float32 arithmetic, as the calculator computes the centres.
                x_center = float(np.float32(x + options.anchor_offset_x) / np.float32(map_width))
                y_center = float(np.float32(y + options.anchor_offset_y) / np.float32(map_height))
                for width, height in zip(widths, heights, strict=True):
                    if options.fixed_anchor_size:
                        rows.append((x_center, y_center, 1.0, 1.0))
                    else:
                        rows.append((x_center, y_center, width, height))
        layer = last
    return np.asarray(rows, dtype=np.float32)


def pose_detector_anchors(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The pose detector's 2254 anchors, ``[2254, 4]`` (x centre, y centre, width, height)."""
    return torch.from_numpy(generate_anchors(POSE_DETECTOR_ANCHORS)).to(device=device, dtype=dtype)
