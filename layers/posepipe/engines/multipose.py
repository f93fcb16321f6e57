"""The bottom-up engine: MoveNet MultiPose (``movenet-multipose``), one network that finds up to six
persons in a picture and gives each COCO's 17 keypoints, on ONNX Runtime.

The network takes a picture whose sides are multiples of 32 (int32 values 0-255, ``[1, H, W,
3]``) and gives ``[1, 6, 56]``: for each of six persons, 17 keypoints as (y, x, score) fractions
of the input, then a box (ymin, xmin, ymax, xmax) and the person's score.

Its size matters: TensorFlow Hub's model card recommends 256 pixels on the longer side, where
the people the network saw in training fill much of the picture; far, small people (a street
seen from above, as in ``vtest.avi``) are found only at a higher resolution. posepipe runs it
twice per picture, as measured on the labelled pictures (``bench/recall.py``):

1. at :data:`LOW_SIDE` (256) on the longer side, keeping only persons at least
   :data:`LARGE_PERSON_FRACTION` of the picture's height by the network's own box (what this
   pass is for: near people, who fill the picture; it also reports far people, poorly placed);
2. at the picture's own size, its longer side at most :data:`HIGH_SIDE` (768).

Each pass pads the resized picture at its right and bottom to multiples of 32. A person is kept
when the network's score is at least :data:`MIN_PERSON_SCORE`; of two persons whose landmark
boxes overlap by more than :data:`MAX_DUPLICATE_IOU` (the same person seen by both passes), the
higher-scored is kept. The keypoints are MoveNet's, scores as visibility and presence; there are
no world landmarks. VIDEO mode runs the same on every frame (the network has no tracking input);
ids are given later, over the whole video, by :mod:`posepipe.postprocess.ids`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from posepipe.assets.catalogue import CATALOGUE
from posepipe.engines.base import MULTIPOSE, PoseEngineOptions, RGBImage, RunningMode
from posepipe.engines.topdown.onnx_session import onnx_session
from posepipe.engines.topdown.person_boxes import suppress_duplicates
from posepipe.errors import EngineError
from posepipe.result import Person
from posepipe.skeleton import COCO

NUM_KEYPOINTS = 17
SLOTS = 6  # persons per pass: the network's fixed output
BOX = 3 * NUM_KEYPOINTS  # where a slot's box (ymin, xmin, ymax, xmax, score) starts
STRIDE = 32  # the input's sides are multiples of this
LOW_SIDE = 256
HIGH_SIDE = 768
LARGE_PERSON_FRACTION = 0.3
MIN_PERSON_SCORE = 0.2
MAX_DUPLICATE_IOU = 0.3
MAX_POSES = 2 * SLOTS


class MultiPosePoseEstimator:
    """A :class:`posepipe.engines.base.PoseEstimator`: MoveNet MultiPose on whole pictures."""

    def __init__(self, options: PoseEngineOptions) -> None:
        if options.running_mode is RunningMode.LIVE_STREAM:
            raise EngineError(f"{MULTIPOSE} has no LIVE_STREAM mode: use VIDEO mode")
        self.options = options
        self.spec = CATALOGUE[MULTIPOSE]
        self.session, self._input = onnx_session(self.spec.built_path())
        self._last_timestamp: int | None = None

    def model_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "path": str(self.spec.path),
            "sha256": self.spec.sha256,
            "engine": "bottomup",
            "skeleton": COCO.name,
            "detector": {
                "name": self.spec.name,
                "sha256": self.spec.sha256,
                "min_score": MIN_PERSON_SCORE,
                "input_sides": [LOW_SIDE, HIGH_SIDE],
            },
            **self.options.settings_dict(),
        }

    def detect(self, rgb: RGBImage) -> list[Person]:
        """Persons in one image (IMAGE mode), highest-scored first."""
        height, width = rgb.shape[:2]
        high = [person for person, _ in self._pass(rgb, min(HIGH_SIDE, max(height, width)))]
        low = [
            person
            for person, box_height in self._pass(rgb, min(LOW_SIDE, max(height, width)))
            if box_height >= LARGE_PERSON_FRACTION * height
        ]
        persons = high + low
        kept = suppress_duplicates(
            [p.landmark_box for p in persons], [p.score for p in persons], MAX_DUPLICATE_IOU
        )
        return [persons[i] for i in kept][: min(self.options.max_poses, MAX_POSES)]

    def detect_for_video(self, rgb: RGBImage, timestamp_ms: int) -> list[Person]:
        """Persons in the next frame of a video (VIDEO mode): each frame on its own."""
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"timestamps must increase: {timestamp_ms} after {self._last_timestamp}")
        self._last_timestamp = timestamp_ms
        return self.detect(rgb)

    def _pass(self, rgb: RGBImage, longer_side: int) -> list[tuple[Person, float]]:
        """The persons the network finds with the picture resized to ``longer_side``, each with
        the height of the box the network gives them, in pixels."""
        height, width = rgb.shape[:2]
        scale = longer_side / max(height, width)
        resized_w, resized_h = max(1, round(width * scale)), max(1, round(height * scale))
        input_h, input_w = -(-resized_h // STRIDE) * STRIDE, -(-resized_w // STRIDE) * STRIDE
        canvas = np.zeros((input_h, input_w, 3), np.int32)
        shrink = scale < 1
        canvas[:resized_h, :resized_w] = cv2.resize(
            rgb, (resized_w, resized_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        rows = self.session.run(None, {self._input: canvas[None]})[0].reshape(SLOTS, -1)
        extent_w, extent_h = input_w / scale, input_h / scale
        return [
            (_person(row, extent_w, extent_h), float(row[BOX + 2] - row[BOX]) * extent_h)
            for row in rows
            if row[BOX + 4] >= MIN_PERSON_SCORE
        ]

    def close(self) -> None:
        return None

    def __enter__(self) -> MultiPosePoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _person(row: npt.NDArray[np.float32], width: float, height: float) -> Person:
    """One slot of the network's output as a person, in pixels of a picture of the input's
    extent (``width`` x ``height``, the padding included)."""
    keypoints = row[: NUM_KEYPOINTS * 3].reshape(NUM_KEYPOINTS, 3)
    points = np.zeros((NUM_KEYPOINTS, 5), np.float32)
    points[:, 0] = keypoints[:, 1] * width
    points[:, 1] = keypoints[:, 0] * height
    points[:, 3] = points[:, 4] = keypoints[:, 2]
    return Person.from_landmarks(points, np.zeros((0, 3), np.float32))
