"""Resizing whole frames on the device as ``cv2.resize`` does on the CPU, for the person detectors.

The CPU engine feeds CenterNet a frame shrunk by ``cv2.resize(..., INTER_AREA)`` and NanoDet one
resized by ``INTER_LINEAR``. Both are separable linear maps: each output pixel is a weighted sum
over a block of input rows times a weighted sum over a block of input columns. The weights are
taken from OpenCV itself, once per (input size, output size): ``cv2.resize`` of a float32
identity matrix along one axis gives, row by row, how each input column (or row) contributes to
every output column (or row), whichever of OpenCV's paths the sizes select (area averaging with
fractional edges, the integer-factor fast path, or, when enlarging, its linear weights). On the
device the resize is then two matrix products (``rows @ frame @ columns``), rounded to whole
pixel values as OpenCV's 8-bit output is.

Measured on a vtest.avi frame (768x576): shrinking by area averaging gives OpenCV's pixels
exactly, at 2/3 (CenterNet's 512 px) and at 1/2; OpenCV's 8-bit bilinear path (NanoDet's
416x416) and its enlarging area path round in fixed point where these products round once in
float: 8-12% of the values differ by one level, none by more
(``tests/unit/engines/test_torch_topdown.py``).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
import torch

_lock = threading.Lock()


@lru_cache(maxsize=64)
def _axis_weights(size_in: int, size_out: int, interpolation: int) -> npt.NDArray[np.float32]:
    """``[size_out, size_in]``: output index <- input index weights of ``cv2.resize`` along one axis."""
    identity = np.eye(size_in, dtype=np.float32)
    # Rows stay as they are (scale 1); columns go from size_in to size_out.
    resized = cv2.resize(identity, (size_out, size_in), interpolation=interpolation)
    return np.ascontiguousarray(resized.T)


def resize_weights(
    height: int, width: int, out_height: int, out_width: int, interpolation: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The row weights ``[out_height, height]`` and column weights ``[out_width, width]``."""
    with _lock:
        return (
            _axis_weights(height, out_height, interpolation),
            _axis_weights(width, out_width, interpolation),
        )


class DeviceResizer:
    """``cv2.resize`` of ``[3, H, W]`` uint8 frames on one device (weights cached per size)."""

    def __init__(self, device: torch.device, interpolation: int) -> None:
        self.device = device
        self.interpolation = interpolation
        self._cache: dict[tuple[int, int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def weights(
        self, height: int, width: int, out_height: int, out_width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (height, width, out_height, out_width)
        cached = self._cache.get(key)
        if cached is None:
            rows, columns = resize_weights(height, width, out_height, out_width, self.interpolation)
            cached = (
                torch.from_numpy(rows).to(self.device),
                torch.from_numpy(columns).to(self.device).T.contiguous(),
            )
            self._cache[key] = cached
        return cached

    def resize(self, frame: torch.Tensor, out_height: int, out_width: int) -> torch.Tensor:
        """``frame`` ``[3, H, W]`` uint8 -> ``[3, out_height, out_width]`` float32 whole pixel values."""
        _, height, width = frame.shape
        rows, columns = self.weights(int(height), int(width), out_height, out_width)
        pixels = frame.to(torch.float32)
        out = torch.matmul(torch.matmul(rows, pixels), columns)
        return torch.floor(out + 0.5).clamp_(0.0, 255.0)  # saturate_cast rounds half up here
