"""Reference networks for the torch pipeline's tests: the bundle's two TFLite models run by LiteRT.

They satisfy :class:`posepipe.engines.torch.network_contract.DetectorForward` and
:class:`posepipe.engines.torch.network_contract.LandmarkForward`: an NCHW float batch in [0, 1] goes in, the
raw TFLite outputs come back as torch tensors on the input's device (NHWC outputs transposed to
NCHW), one interpreter call per image. They stand in for the PyTorch port of the networks so that
the pipeline around them can be checked against MediaPipe on its own.
"""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from posepipe.engines.torch.network_contract import DETECTOR_INPUT, LANDMARK_INPUT, LandmarkOutputs

DETECTOR_FILE = "pose_detector.tflite"
LANDMARKS_FILE = "pose_landmarks_detector.tflite"


def _interpreter(model: bytes) -> Any:
    # ai_edge_litert ships no type information: keep it behind Any.
    module: Any = importlib.import_module("ai_edge_litert.interpreter")
    interpreter = module.Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


class _LiteRtModel:
    def __init__(self, model: bytes, size: int) -> None:
        self._interpreter = _interpreter(model)
        self._size = size
        (self._input,) = self._interpreter.get_input_details()
        # Outputs in the order of their names (Identity, Identity_1, ...), as the contract lists them.
        details = self._interpreter.get_output_details()
        self._outputs = sorted(details, key=lambda d: (len(d["name"]), d["name"]))

    def _run(self, images: torch.Tensor) -> list[list[np.ndarray]]:
        if images.ndim != 4 or images.shape[1:] != (3, self._size, self._size):
            raise ValueError(f"expected [N, 3, {self._size}, {self._size}], got {tuple(images.shape)}")
        nhwc = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
        results = []
        for image in nhwc:
            self._interpreter.set_tensor(self._input["index"], image[None])
            self._interpreter.invoke()
            results.append([self._interpreter.get_tensor(d["index"]).copy() for d in self._outputs])
        return results


class LiteRtDetector(_LiteRtModel):
    """The pose detector: [N, 3, 224, 224] -> (raw boxes [N, 2254, 12], score logits [N, 2254, 1])."""

    def __init__(self, model: bytes) -> None:
        super().__init__(model, DETECTOR_INPUT)

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        runs = self._run(images)
        boxes = torch.from_numpy(np.concatenate([r[0] for r in runs])).to(images.device)
        scores = torch.from_numpy(np.concatenate([r[1] for r in runs])).to(images.device)
        return boxes, scores


class LiteRtLandmarks(_LiteRtModel):
    """The Full landmark model: [N, 3, 256, 256] -> the five raw outputs."""

    def __init__(self, model: bytes) -> None:
        super().__init__(model, LANDMARK_INPUT)

    def __call__(self, images: torch.Tensor) -> LandmarkOutputs:
        runs = self._run(images)

        def stack(index: int) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([r[index] for r in runs])).to(images.device)

        return LandmarkOutputs(
            landmarks=stack(0),
            presence=stack(1),
            segmentation=stack(2).permute(0, 3, 1, 2),
            heatmap=stack(3).permute(0, 3, 1, 2),
            world=stack(4),
        )


def load_litert_networks(task_bundle: Path) -> tuple[LiteRtDetector, LiteRtLandmarks]:
    """Both reference networks from a ``.task`` bundle."""
    with zipfile.ZipFile(task_bundle) as bundle:
        detector = bundle.read(DETECTOR_FILE)
        landmarks = bundle.read(LANDMARKS_FILE)
    return LiteRtDetector(detector), LiteRtLandmarks(landmarks)
