"""Golden outputs of the original TensorFlow.js graphs: how their inputs are made from the sample
media (exactly, with integer arithmetic only, so that any machine makes the same bytes) and how
outputs are sampled into small fixtures (``tests/fixtures/golden``, made by
``tools/golden/make_golden.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
SAMPLED = 2048  # values kept per output, evenly spread, plus its largest and smallest


@dataclass(frozen=True)
class GoldenCase:
    """One network on one input: ``image`` (a sample), resized to ``size`` (height, width) by
    nearest pixels, laid out ``layout`` (NHWC or NCHW), as ``dtype``, times ``scale``."""

    model: str
    image: str
    size: tuple[int, int]
    layout: str
    dtype: str
    scale: float
    outputs: tuple[str, ...]

    @property
    def fixture(self) -> Path:
        return FIXTURES / f"{self.model}.npz"

    def make_input(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
        height, width = rgb.shape[:2]
        rows = (np.arange(self.size[0]) * height) // self.size[0]
        cols = (np.arange(self.size[1]) * width) // self.size[1]
        picture = rgb[rows][:, cols]
        if self.layout == "NCHW":
            picture = picture.transpose(2, 0, 1)
        values = picture[None].astype(np.float32) * np.float32(self.scale)
        result: npt.NDArray[Any] = values.astype(np.int32 if self.dtype == "int32" else np.float32)
        return result


CASES = (
    GoldenCase("centernet", "basketball1.png", (512, 512), "NHWC", "float32", 1.0,
               ("tower_0/keypoints", "tower_0/wh")),
    GoldenCase("nanodet", "basketball1.png", (416, 416), "NCHW", "float32", 1 / 255,
               ("Identity", "Identity_1", "Identity_2", "Identity_3", "Identity_4", "Identity_5")),
    GoldenCase("movenet-lightning", "messi5.jpg", (192, 192), "NHWC", "int32", 1.0, ("Identity",)),
    GoldenCase("movenet-thunder", "messi5.jpg", (256, 256), "NHWC", "int32", 1.0, ("Identity",)),
    GoldenCase("movenet-multipose", "basketball1.png", (256, 320), "NHWC", "int32", 1.0, ("Identity",)),
)  # fmt: skip


def sample_indices(size: int, values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    step = max(1, size // SAMPLED)
    chosen = np.concatenate([np.arange(0, size, step), [int(np.argmax(values)), int(np.argmin(values))]])
    return np.unique(chosen).astype(np.int64)


def load_fixture(
    case: GoldenCase,
) -> dict[str, tuple[tuple[int, ...], npt.NDArray[np.int64], npt.NDArray[Any]]]:
    """Output name -> (shape, sampled flat indices, the original graph's values there)."""
    with np.load(case.fixture) as data:
        return {
            name: (
                tuple(int(v) for v in data[f"{name}/shape"]),
                data[f"{name}/indices"],
                data[f"{name}/values"],
            )
            for name in case.outputs
        }
