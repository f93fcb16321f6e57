"""The top-down engine's networks in PyTorch, batched: the GPU path (and the same code on the CPU).

:class:`TorchTopDownNetworks` is a :class:`posepipe.engines.topdown.driver.TopDownNetworks`: the
top-down engine's decisions (:mod:`posepipe.engines.topdown.steps`) are the CPU engine's, and
only how its networks run differs:

- frames go to the device once (``prepare``: ``[3, H, W]`` uint8 tensors);
- the person detector (CenterNet or NanoDet, the catalogue's ONNX graph run by
  :class:`posepipe.engines.torch.onnx_module.OnnxGraphModule`) runs on every frame of a request
  round at once: each frame resized on the device as ``cv2.resize`` does
  (:mod:`posepipe.engines.torch.image_resize`) and letterboxed, one batch; the boxes are decoded
  on the host by the CPU engine's own functions from the person channel only;
- BlazePose's landmark network (the bundle's TFLite graph, :mod:`posepipe.engines.torch.networks`)
  runs on every region of every frame of the round at once: each region cut out on the device
  (:func:`posepipe.engines.torch.roi.crop_rois`, bilinear, edges replicated, rounded to whole
  pixel values as ``cv2.warpPerspective`` gives them to the CPU engine), decoded and refined from
  its heatmap on the device (:mod:`posepipe.engines.torch.landmark_decoding`), projected to the
  image on the host by the CPU engine's own function;
- MoveNet (the second opinion, and the pose model when it is MoveNet) likewise, on int32 crops.

Data types: float32 on the CPU. On CUDA, by default the landmark network runs in float16 and the
detector and MoveNet in float32 (the choice the BlazePose GPU engine measured: a float16 detector
moves boxes; MoveNet decodes with an arg-max, which float16 ties could move); each is a setting
(:class:`TorchTopDownSettings`). ``batch_size`` caps the images or crops per network call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from posepipe.engines.base import RGBImage
from posepipe.engines.topdown.blazepose_landmarks import LANDMARK_INPUT, NUM_LANDMARKS, region_landmarks
from posepipe.engines.topdown.models import TopDownModels
from posepipe.engines.topdown.movenet import RegionKeypoints, region_keypoints
from posepipe.engines.topdown.person_boxes import (
    CENTERNET_INPUT,
    DEFAULT_MIN_SCORE,
    NANODET_INPUT,
    PersonBox,
    decode_centernet,
    decode_nanodet,
)
from posepipe.engines.topdown.regions import Region, RegionLandmarks
from posepipe.engines.topdown.steps import Role
from posepipe.engines.torch.image_resize import DeviceResizer
from posepipe.engines.torch.landmark_decoding import decode_landmarks
from posepipe.engines.torch.networks import LandmarkNetwork, load_landmark_network
from posepipe.engines.torch.onnx_module import OnnxGraphModule, load_onnx_module
from posepipe.engines.torch.roi import Rects, crop_rois

DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class TorchTopDownSettings:
    """Where and in what the networks run; ``None``: the device's default (module docstring)."""

    device: str | None = None
    detector_dtype: str | None = None
    landmark_dtype: str | None = None
    keypoint_dtype: str | None = None
    batch_size: int = 256

    def resolved_device(self) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )

    def dtypes(self, device: torch.device) -> dict[str, torch.dtype]:
        gpu = device.type == "cuda"
        chosen = {
            "detector": self.detector_dtype or "float32",
            "landmarks": self.landmark_dtype or ("float16" if gpu else "float32"),
            "keypoints": self.keypoint_dtype or "float32",
        }
        for what, name in chosen.items():
            if name not in DTYPES:
                raise ValueError(f"{what} dtype must be one of {', '.join(DTYPES)}, not {name!r}")
        return {what: DTYPES[name] for what, name in chosen.items()}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class TorchTopDownNetworks:
    """The top-down engine's networks on one torch device (see the module docstring). Shared by
    the streams of one batcher; one call at a time (the batcher's worker makes them)."""

    def __init__(
        self,
        models: TopDownModels,
        settings: TorchTopDownSettings | None = None,
        *,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> None:
        self.models = models
        self.settings = settings or TorchTopDownSettings()
        self.device = self.settings.resolved_device()
        self.dtypes = self.settings.dtypes(self.device)
        self.min_score = min_score
        self.batch_size = self.settings.batch_size
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        self.detector_kind = models.detector
        self.detector = self._onnx(models.detector_path, self.dtypes["detector"])
        self.second_opinion = self._onnx(models.second_opinion_path, self.dtypes["keypoints"])
        self.pose = (
            self._onnx(models.pose_path, self.dtypes["keypoints"]) if models.pose_path is not None else None
        )
        finder: LandmarkNetwork = load_landmark_network(models.finder_path)
        self.finder = finder.to(self.device, self.dtypes["landmarks"]).eval()
        interpolation = cv2.INTER_LINEAR if self.detector_kind == "nanodet" else cv2.INTER_AREA
        self.resizer = DeviceResizer(self.device, interpolation)

    def _onnx(self, path: Any, dtype: torch.dtype) -> OnnxGraphModule:
        module = load_onnx_module(path)
        return module.to(self.device, dtype).eval()

    # -- frames ------------------------------------------------------------------------------------

    def prepare(self, images: Sequence[RGBImage]) -> list[torch.Tensor]:
        out = []
        for rgb in images:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
            tensor = torch.from_numpy(np.ascontiguousarray(rgb))
            if self.device.type == "cuda":
                tensor = tensor.pin_memory().to(self.device, non_blocking=True)
            out.append(tensor.permute(2, 0, 1))
        return out

    # -- the person detector -----------------------------------------------------------------------

    @torch.inference_mode()
    def find_persons(self, frames: Sequence[torch.Tensor]) -> list[list[PersonBox]]:
        found: list[list[PersonBox]] = []
        for start in range(0, len(frames), self.batch_size):
            part = frames[start : start + self.batch_size]
            if self.detector_kind == "nanodet":
                found += self._nanodet(part)
            else:
                found += self._centernet(part)
        return found

    def _centernet(self, frames: Sequence[torch.Tensor]) -> list[list[PersonBox]]:
        canvases, scales = [], []
        for frame in frames:
            height, width = int(frame.shape[1]), int(frame.shape[2])
            scale = CENTERNET_INPUT / max(height, width)
            new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
            canvas = torch.zeros(
                (CENTERNET_INPUT, CENTERNET_INPUT, 3), dtype=torch.float32, device=self.device
            )
            canvas[:new_h, :new_w] = self.resizer.resize(frame, new_h, new_w).permute(1, 2, 0)
            canvases.append(canvas)
            scales.append(scale)
        heatmap, distances = self.detector(torch.stack(canvases).to(self.dtypes["detector"]))[:2]
        person = heatmap[..., :1].float().cpu().numpy()  # the person channel only leaves the device
        boxes = distances.float().cpu().numpy()
        return [
            decode_centernet(person[i], boxes[i], scales[i], tuple(frame.shape[1:]), self.min_score)
            for i, frame in enumerate(frames)
        ]

    def _nanodet(self, frames: Sequence[torch.Tensor]) -> list[list[PersonBox]]:
        planes = torch.stack(
            [self.resizer.resize(frame, NANODET_INPUT, NANODET_INPUT) / 255.0 for frame in frames]
        )
        outputs = [o.float().cpu().numpy() for o in self.detector(planes.to(self.dtypes["detector"]))]
        found = []
        for i, frame in enumerate(frames):
            height, width = int(frame.shape[1]), int(frame.shape[2])
            scale = (width / NANODET_INPUT, height / NANODET_INPUT)
            found.append(decode_nanodet([o[i : i + 1] for o in outputs], scale, self.min_score))
        return found

    # -- the landmark networks ---------------------------------------------------------------------

    @torch.inference_mode()
    def estimate(
        self, role: Role, frames: Sequence[torch.Tensor], regions: Sequence[Sequence[Region]]
    ) -> list[list[Any]]:
        flat = [(i, region) for i, boxes in enumerate(regions) for region in boxes]
        answers: list[Any] = []
        for start in range(0, len(flat), self.batch_size):
            part = flat[start : start + self.batch_size]
            if role == "finder":
                answers += self._blazepose(frames, part)
            else:
                network = self.second_opinion if role == "second_opinion" else self.pose
                if network is None:
                    raise ValueError("this engine's pose model is not a network of its own")
                answers += self._movenet(network, frames, part)
        out: list[list[Any]] = []
        position = 0
        for boxes in regions:
            out.append(answers[position : position + len(boxes)])
            position += len(boxes)
        return out

    def _crops(
        self, frames: Sequence[torch.Tensor], part: list[tuple[int, Region]], size: int
    ) -> torch.Tensor:
        """The regions cut out of their frames, ``[R, 3, size, size]`` float32 whole pixel values."""
        used = sorted({i for i, _ in part})
        slot = {frame: position for position, frame in enumerate(used)}
        sizes = [(float(frames[i].shape[2]), float(frames[i].shape[1])) for i, _ in part]
        values = torch.tensor(
            [
                [r.x_center / w, r.y_center / h, r.width / w, r.height / h, r.rotation]
                for (_, r), (w, h) in zip(part, sizes, strict=True)
            ],
            dtype=torch.float32,
        ).to(self.device)
        rects = Rects(
            x_center=values[:, 0], y_center=values[:, 1], width=values[:, 2], height=values[:, 3],
            rotation=values[:, 4],
            image_index=torch.tensor([slot[i] for i, _ in part], dtype=torch.long, device=self.device),
            image_size=torch.tensor(sizes, dtype=torch.float32, device=self.device),
        )  # fmt: skip
        crops = crop_rois([frames[i] for i in used], rects, size, "replicate", (0.0, 255.0), "fast")
        return crops.round_().clamp_(0.0, 255.0)

    def _blazepose(
        self, frames: Sequence[torch.Tensor], part: list[tuple[int, Region]]
    ) -> list[RegionLandmarks]:
        crops = self._crops(frames, part, LANDMARK_INPUT) / 255.0
        outputs = self.finder(crops.to(self.dtypes["landmarks"]))
        decoded = decode_landmarks(outputs)
        points = decoded.points.cpu().numpy()
        world = decoded.world[:, :NUM_LANDMARKS].cpu().numpy()
        presence = decoded.presence.cpu().tolist()
        return [
            region_landmarks(points[k], world[k], float(presence[k]), region)
            for k, (_, region) in enumerate(part)
        ]

    def _movenet(
        self, network: OnnxGraphModule, frames: Sequence[torch.Tensor], part: list[tuple[int, Region]]
    ) -> list[RegionKeypoints]:
        size = int(network.input_shape[1])
        crops = self._crops(frames, part, size).permute(0, 2, 3, 1).to(torch.int32).contiguous()
        raw = network(crops)[0].float().cpu().numpy()
        return [region_keypoints(raw[k], region) for k, (_, region) in enumerate(part)]

    def describe(self) -> dict[str, Any]:
        runtime = {"detector": "torch", "finder": "torch", "second_opinion": "torch"}
        if self.pose is not None:
            runtime["pose"] = "torch"
        dtypes = {what: _dtype_name(dtype) for what, dtype in self.dtypes.items()}
        return {
            "device": str(self.device),
            "runtime": runtime,
            "dtype": dtypes["landmarks"],
            "dtypes": dtypes,
        }
