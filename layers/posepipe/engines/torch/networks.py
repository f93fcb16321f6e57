"""The two networks of a pose landmarker ``.task`` bundle as PyTorch modules.

:func:`load_networks` reads ``pose_detector.tflite`` and ``pose_landmarks_detector.tflite`` from
the bundle (posepipe's own or any of Google's lite/full/heavy bundles), converts each graph with
:class:`~posepipe.engines.torch.graph_module.GraphModule` and wraps it in the contract of
:mod:`posepipe.engines.torch.network_contract`. The modules are fp32 on the CPU; ``.to(device, dtype)``
moves them (inputs are cast to the module's dtype).

Which TFLite output is which is decided by shape, not by position, and checked:

- detector: two outputs ``[1, A, B]`` (boxes: ``B`` = 4 + 2 x keypoints, 12 for BlazePose) and
  ``[1, A, 1]`` (score logits), with the same ``A`` anchors (2254 for the 224x224 detector);
- landmarks: two rank-4 outputs, the one with 1 channel is the segmentation, the other the
  heatmap with ``K`` channels; three rank-2 outputs, ``[1, 1]`` is pose presence and the other
  two are ``[1, 5K]`` (landmarks) and ``[1, 3K]`` (world landmarks) for the same ``K`` (39).

In posepipe's models and Google's bundles the TFLite order is ``Identity`` .. ``Identity_4`` as
listed in :mod:`posepipe.engines.torch.network_contract`; that order is not relied on.
"""

from __future__ import annotations

import zipfile
from os import PathLike
from pathlib import Path

import torch

from posepipe.engines.torch.graph_module import GraphModule, UnsupportedGraphError
from posepipe.engines.torch.network_contract import LandmarkOutputs
from posepipe.engines.torch.tflite_reader import TFLiteError, load_graph
from posepipe.errors import ModelError

DETECTOR_MEMBER = "pose_detector.tflite"
LANDMARKS_MEMBER = "pose_landmarks_detector.tflite"


class DetectorNetwork(torch.nn.Module):
    """The pose detector: ``images`` [N, 3, H, W] in [0, 1] -> (boxes [N, A, 12], scores [N, A, 1])."""

    def __init__(self, graph: GraphModule) -> None:
        super().__init__()
        shapes = graph.output_tflite_shapes()
        if len(shapes) != 2 or any(len(s) != 3 or s[0] != 1 for s in shapes) or shapes[0][1] != shapes[1][1]:
            raise ModelError(f"pose detector: expected outputs [1, A, B] and [1, A, 1], got {shapes}")
        scores = [i for i, s in enumerate(shapes) if s[2] == 1]
        if len(scores) != 1:
            raise ModelError(f"pose detector: cannot tell boxes from scores in {shapes}")
        self.graph = graph
        self.score_output = scores[0]
        self.box_output = 1 - scores[0]
        self.input_size = graph.input_shape()[1:]
        self.num_anchors = shapes[0][1]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.graph(images)
        return outputs[self.box_output], outputs[self.score_output]


class LandmarkNetwork(torch.nn.Module):
    """The landmark model: ``images`` [N, 3, 256, 256] in [0, 1] -> :class:`LandmarkOutputs`."""

    def __init__(self, graph: GraphModule) -> None:
        super().__init__()
        shapes = graph.output_tflite_shapes()
        maps = [i for i, s in enumerate(shapes) if len(s) == 4]
        vectors = [i for i, s in enumerate(shapes) if len(s) == 2]
        problem = f"pose landmarks: unexpected outputs {shapes}"
        if len(shapes) != 5 or len(maps) != 2 or len(vectors) != 3 or any(s[0] != 1 for s in shapes):
            raise ModelError(problem)
        segmentation = [i for i in maps if shapes[i][3] == 1]
        presence = [i for i in vectors if shapes[i][1] == 1]
        if len(segmentation) != 1 or len(presence) != 1:
            raise ModelError(problem)
        heatmap = next(i for i in maps if i != segmentation[0])
        landmarks, world = sorted((i for i in vectors if i != presence[0]), key=lambda i: -shapes[i][1])
        points = shapes[heatmap][3]
        if shapes[landmarks][1] != 5 * points or shapes[world][1] != 3 * points:
            raise ModelError(problem)
        self.graph = graph
        self.index = {
            "landmarks": landmarks,
            "presence": presence[0],
            "segmentation": segmentation[0],
            "heatmap": heatmap,
            "world": world,
        }
        self.input_size = graph.input_shape()[1:]
        self.num_points = points

    def forward(self, images: torch.Tensor) -> LandmarkOutputs:
        outputs = self.graph(images)
        return LandmarkOutputs(**{name: outputs[i] for name, i in self.index.items()})


def read_bundle(bundle_path: str | PathLike[str]) -> tuple[bytes, bytes]:
    """The detector and landmark TFLite files of a ``.task`` bundle."""
    path = Path(bundle_path)
    try:
        with zipfile.ZipFile(path) as bundle:
            return bundle.read(DETECTOR_MEMBER), bundle.read(LANDMARKS_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path}: not a pose landmarker .task bundle ({exc})") from exc


def build_module(tflite: bytes, label: str) -> GraphModule:
    try:
        module = GraphModule(load_graph(tflite))
    except (TFLiteError, UnsupportedGraphError) as exc:
        raise ModelError(f"{label}: cannot convert to PyTorch: {exc}") from exc
    return module.eval()


def load_networks(bundle_path: str | PathLike[str]) -> tuple[DetectorNetwork, LandmarkNetwork]:
    """The bundle's detector and landmark networks, fp32 on the CPU, in eval mode."""
    detector_bytes, landmark_bytes = read_bundle(bundle_path)
    detector = DetectorNetwork(build_module(detector_bytes, f"{bundle_path}: {DETECTOR_MEMBER}"))
    landmarks = LandmarkNetwork(build_module(landmark_bytes, f"{bundle_path}: {LANDMARKS_MEMBER}"))
    return detector.eval(), landmarks.eval()


def load_landmark_network(bundle_path: str | PathLike[str]) -> LandmarkNetwork:
    """The bundle's landmark network alone, fp32 on the CPU, in eval mode (the top-down engine
    finds persons with its own detector)."""
    _, landmark_bytes = read_bundle(bundle_path)
    return LandmarkNetwork(build_module(landmark_bytes, f"{bundle_path}: {LANDMARKS_MEMBER}")).eval()
