"""The one result format, ``posepipe.pose/2``, as dataclasses with JSON adapters.

A :class:`Person` is the canonical keypoint type: landmarks in pixels of the upright, displayed
frame, in the order of the result's keypoint set (:mod:`posepipe.skeleton`: BlazePose's 33, or
COCO's 17 from MoveNet), plus world landmarks in metres (origin between the hips) where the
model gives them (BlazePose's). Version 2 of the format adds the 17-keypoint set and makes world
landmarks optional; a BlazePose result is shaped as in version 1, which is still read. Every engine
builds it one way, :meth:`Person.from_landmarks` (its score: the mean landmark presence);
adapters build it from MediaPipe's Tasks result (:meth:`Person.from_mediapipe`) and from JSON
(:meth:`Person.from_dict`); everything else in posepipe works on it.

The JSON Schema of the format is ``posepipe/schemas/pose.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from posepipe.skeleton import BLAZEPOSE, SKELETONS, skeleton_of

SCHEMA_ID = "posepipe.pose/2"
READABLE_SCHEMA_IDS = ("posepipe.pose/1", SCHEMA_ID)
FloatArray = npt.NDArray[np.float32]

# Landmarks sit on joints, the eyes and the toes; the body reaches beyond them (the top of the
# head, the flesh around the limbs, the soles). Measured on the boxes labelled by eye in
# tests/fixtures/labels (174 persons): the labelled box lies beyond the landmarks' box by a
# median of 0.03 (sides and bottom) to 0.09 (top) of its height. ``bbox`` grows the landmarks'
# box by BODY_MARGIN of its longer side on every side; bench/recall.py gives the same recall and
# precision for any margin from 0.03 to 0.05.
BODY_MARGIN = 0.04

# Landmarks are estimated, not measured: these decimals keep well under the model's own noise
# (0.01 px, 0.1 mm) while keeping the JSON a third of its full-precision size.
_PIXEL_DECIMALS = 2
_SCORE_DECIMALS = 4
_WORLD_DECIMALS = 4


@dataclass(frozen=True)
class Source:
    """The input as decoded: sizes are of the upright, displayed frame."""

    uri: str
    width: int
    height: int
    fps: float | None = None
    frame_count: int = 1
    duration_s: float | None = None
    rotation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "duration_s": self.duration_s,
            "rotation": self.rotation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(
            uri=data["uri"],
            width=int(data["width"]),
            height=int(data["height"]),
            fps=data.get("fps"),
            frame_count=int(data.get("frame_count", 1)),
            duration_s=data.get("duration_s"),
            rotation=int(data.get("rotation", 0)),
        )


@dataclass
class Person:
    """One detected person.

    ``landmarks``: (N, 5) float32 of ``x_px, y_px, z, visibility, presence``, N the size of the
    result's keypoint set; ``z`` is depth relative to the hips' midpoint, in pixels at the scale
    of ``x`` (smaller is nearer; 0 from models without depth). Models with one keypoint score
    (MoveNet) give it as both visibility and presence.
    ``world_landmarks``: (N, 3) float32 in metres, origin at the hips' midpoint; (0, 3) from
    models without world landmarks.
    ``id`` is -1 until tracking gives one.
    """

    landmarks: FloatArray
    world_landmarks: FloatArray
    score: float
    id: int = -1

    @property
    def xy(self) -> FloatArray:
        return self.landmarks[:, :2]

    @property
    def visibility(self) -> FloatArray:
        return self.landmarks[:, 3]

    @property
    def landmark_box(self) -> tuple[float, float, float, float]:
        """Box around the landmarks the model reports present (all of them if none is): presence
        at least 0.5 from BlazePose, a keypoint score at least 0.3 from MoveNet (the keypoint
        set's ``min_visibility``)."""
        present = self.landmarks[:, 4] >= skeleton_of(len(self.landmarks)).min_visibility
        points = self.xy[present] if present.any() else self.xy
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The person's box: :func:`body_box` of :attr:`landmark_box` (not clipped to the frame)."""
        return body_box(self.landmark_box)

    @property
    def scale(self) -> float:
        """Size of the person in pixels: the mean of the landmark box's width and height (at least 1)."""
        x0, y0, x1, y1 = self.landmark_box
        return max(1.0, ((x1 - x0) + (y1 - y0)) / 2.0)

    @classmethod
    def from_landmarks(cls, landmarks: npt.ArrayLike, world_landmarks: npt.ArrayLike) -> Person:
        """The one way an engine makes a person: ``landmarks`` (33, 5) in pixel units (x, y, z,
        visibility, presence) and ``world_landmarks`` (33, 3) in metres, as contiguous float32;
        ``score`` is the mean landmark presence."""
        image = np.ascontiguousarray(landmarks, dtype=np.float32)
        world = np.ascontiguousarray(world_landmarks, dtype=np.float32)
        return cls(landmarks=image, world_landmarks=world, score=float(np.mean(image[:, 4])))

    @classmethod
    def from_mediapipe(
        cls, landmarks: Sequence[Any], world_landmarks: Sequence[Any], width: int, height: int
    ) -> Person:
        """From one pose of a MediaPipe ``PoseLandmarkerResult`` (normalised to pixel units)."""
        image = [
            (lm.x * width, lm.y * height, lm.z * width, lm.visibility or 0.0, lm.presence or 0.0)
            for lm in landmarks
        ]
        return cls.from_landmarks(image, [(lm.x, lm.y, lm.z) for lm in world_landmarks])

    def to_dict(self) -> dict[str, Any]:
        x0, y0, x1, y1 = self.bbox
        image = self.landmarks.astype(np.float64)
        rows = [
            [
                round(row[0], _PIXEL_DECIMALS),
                round(row[1], _PIXEL_DECIMALS),
                round(row[2], _PIXEL_DECIMALS),
                round(row[3], _SCORE_DECIMALS),
                round(row[4], _SCORE_DECIMALS),
            ]
            for row in image.tolist()
        ]
        data: dict[str, Any] = {
            "id": self.id,
            "score": round(self.score, _SCORE_DECIMALS),
            "bbox": [round(v, _PIXEL_DECIMALS) for v in (x0, y0, x1, y1)],
            "landmarks": rows,
        }
        if len(self.world_landmarks):
            data["world_landmarks"] = np.round(
                self.world_landmarks.astype(np.float64), _WORLD_DECIMALS
            ).tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Person:
        return cls(
            landmarks=np.asarray(data["landmarks"], dtype=np.float32).reshape(-1, 5),
            world_landmarks=np.asarray(data.get("world_landmarks", []), dtype=np.float32).reshape(-1, 3),
            score=float(data["score"]),
            id=int(data.get("id", -1)),
        )

    def copy(self) -> Person:
        return replace(self, landmarks=self.landmarks.copy(), world_landmarks=self.world_landmarks.copy())


@dataclass
class Frame:
    """The persons of one frame; ``t`` is the frame's presentation time in seconds.

    ``processed`` is False for a frame that was never analysed (its chunk failed): its empty
    ``persons`` says nothing about who was there. In JSON it appears only then, as
    ``"processed": false``.
    """

    index: int
    t: float
    persons: list[Person] = field(default_factory=list)
    processed: bool = True

    def __post_init__(self) -> None:
        if not self.processed and self.persons:
            raise ValueError(f"frame {self.index}: a frame that was not processed has no persons")

    @property
    def person_count(self) -> int | None:
        """How many persons are in the frame; None when nobody looked (not processed)."""
        return len(self.persons) if self.processed else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "t": round(self.t, 6),
            "persons": [p.to_dict() for p in self.persons],
        }
        if not self.processed:
            data["processed"] = False
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(
            index=int(data["index"]),
            t=float(data["t"]),
            persons=[Person.from_dict(p) for p in data["persons"]],
            processed=bool(data.get("processed", True)),
        )


@dataclass
class PoseResult:
    """A whole result: an image is a result with one frame."""

    source: Source
    model: dict[str, Any]
    frames: list[Frame]

    def to_dict(self) -> dict[str, Any]:
        return {**result_header(self.source, self.model), "frames": [f.to_dict() for f in self.frames]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseResult:
        if data.get("schema") not in READABLE_SCHEMA_IDS:
            raise ValueError(f"not a {SCHEMA_ID} result (schema={data.get('schema')!r})")
        return cls(
            source=Source.from_dict(data["source"]),
            model=dict(data["model"]),
            frames=[Frame.from_dict(f) for f in data["frames"]],
        )


def result_header(source: Source, model: dict[str, Any]) -> dict[str, Any]:
    """The result's fields before its frames; ``landmark_names`` are those of the model's
    keypoint set (``model["skeleton"]``, BlazePose's when it names none)."""
    skeleton = SKELETONS[model.get("skeleton", BLAZEPOSE.name)]
    return {
        "schema": SCHEMA_ID,
        "source": source.to_dict(),
        "model": model,
        "landmark_names": list(skeleton.landmark_names),
    }


def write_result_stream(
    handle: IO[str], source: Source, model: dict[str, Any], frames: Iterable[Frame]
) -> int:
    """Write a result as JSON, one frame at a time (memory stays flat for long videos).

    Returns the number of frames written.
    """
    header = json.dumps(result_header(source, model), separators=(",", ":"))
    handle.write(header[:-1] + ',"frames":[')
    count = 0
    for frame in frames:
        if count:
            handle.write(",\n")
        handle.write(json.dumps(frame.to_dict(), separators=(",", ":")))
        count += 1
    handle.write("]}\n")
    return count


@cache
def pose_schema() -> dict[str, Any]:
    """The JSON Schema of ``posepipe.pose/2``."""
    text = resources.files("posepipe").joinpath("schemas/pose.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_result(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` is not a valid ``posepipe.pose/2`` result."""
    import jsonschema

    jsonschema.Draft202012Validator(pose_schema()).validate(data)


def body_box(landmark_box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The box a person's body fills, from the box around their landmarks: grown by
    :data:`BODY_MARGIN` of its longer side on every side."""
    x0, y0, x1, y1 = landmark_box
    margin = BODY_MARGIN * max(x1 - x0, y1 - y0)
    return x0 - margin, y0 - margin, x1 + margin, y1 + margin
