"""What the web app shows of ``posepipe.pose/2`` results, as plain data: the annotated picture,
tables of landmarks and angles, and a video's time series per person. No Streamlit here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.analysis.angles import ANGLE_NAMES, angle_series
from posepipe.analysis.motion import MotionAnalysis, PersonMotion, analyze
from posepipe.annotation.drawing import color_for_id, draw_persons
from posepipe.media.images import load_image
from posepipe.result import Person
from posepipe.skeleton import skeleton_of

# Landmarks whose paths the video page offers (the extremities and the head move the most).
TRAJECTORY_LANDMARKS: tuple[str, ...] = (
    "nose", "left_wrist", "right_wrist", "left_ankle", "right_ankle", "left_hip", "right_hip",
)  # fmt: skip


def image_persons(result: Mapping[str, Any]) -> list[Person]:
    """The persons of an image result (its one frame)."""
    return [Person.from_dict(person) for person in result["frames"][0]["persons"]]


def draw_result(data: bytes, result: Mapping[str, Any], name: str = "image") -> npt.NDArray[np.uint8]:
    """The picture ``data`` upright, as the API saw it, with each person's skeleton in its colour."""
    image = load_image(data, source=name)
    return draw_persons(image.rgb, image_persons(result))


def color_hex(person_id: int) -> str:
    """The colour a person is drawn in, as ``#rrggbb``."""
    red, green, blue = color_for_id(person_id)
    return f"#{red:02x}{green:02x}{blue:02x}"


def landmark_rows(person: Person) -> list[dict[str, Any]]:
    """One row per landmark: name, pixel position, depth, visibility, presence, and the world
    position where the model gives one (BlazePose; MoveNet's 17 keypoints have none)."""
    names = skeleton_of(len(person.landmarks)).landmark_names
    world = person.world_landmarks.tolist()
    rows = []
    for index, (name, image) in enumerate(zip(names, person.landmarks.tolist(), strict=True)):
        row = {
            "landmark": name,
            "x (px)": round(image[0], 1),
            "y (px)": round(image[1], 1),
            "z": round(image[2], 1),
            "visibility": round(image[3], 3),
            "presence": round(image[4], 3),
        }
        if world:
            row.update({"x (m)": round(world[index][0], 3), "y (m)": round(world[index][1], 3),
                        "z (m)": round(world[index][2], 3)})  # fmt: skip
        rows.append(row)
    return rows


def angle_rows(person: Person) -> list[dict[str, Any]]:
    """One row per angle of :mod:`posepipe.analysis.angles` (its conventions: 0 with the limb
    straight or along the trunk, positive in flexion): in 3D (world landmarks, where the model
    gives them) and as seen in the picture, in degrees."""
    skeleton = skeleton_of(len(person.landmarks))
    visibility = person.landmarks[None, :, 3]
    image = angle_series(person.xy[None], visibility, skeleton.index, "image", skeleton.min_visibility)
    world = (
        angle_series(
            person.world_landmarks[None], visibility, skeleton.index, "world", skeleton.min_visibility
        )
        if len(person.world_landmarks)
        else {}
    )
    return [
        {
            "angle": name.replace("_", " "),
            "3D (°)": _rounded(world[name][0]) if name in world else None,
            "2D in the picture (°)": _rounded(image[name][0]),
        }
        for name in ANGLE_NAMES
    ]


def _rounded(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 1)


@dataclass(frozen=True)
class PersonTrack:
    """One person (one id) through a video, as :func:`posepipe.analysis.motion.analyze` cleans it:
    every frame from their first to their last, their angles (3D where the model gives world
    landmarks, else as seen) and positions (gaps up to 0.5 s filled, flagged)."""

    motion: PersonMotion
    space: str  # "world" or "image": where ``angles`` are measured
    landmark_names: tuple[str, ...]

    @property
    def id(self) -> int:
        return self.motion.id

    @property
    def t(self) -> npt.NDArray[np.float64]:
        return self.motion.t

    @property
    def frames(self) -> int:
        """Frames the person was found on."""
        return self.motion.track.frames_tracked

    @property
    def angles(self) -> dict[str, npt.NDArray[np.float64]]:
        return self.motion.angles_in(self.space)

    def trajectory(self, landmark: str) -> dict[str, list[Any]]:
        """``t``, ``x``, ``y`` of one landmark where it was seen or its gap filled."""
        index = self.landmark_names.index(landmark)
        known = np.isfinite(self.motion.image_xy[:, index]).all(axis=1)
        return {
            "t": self.t[known].tolist(),
            "x": self.motion.image_xy[known, index, 0].tolist(),
            "y": self.motion.image_xy[known, index, 1].tolist(),
        }


@dataclass(frozen=True)
class VideoSeries:
    """A video result as time series: persons per frame (NaN where a frame was not processed), and
    one track per person id; ``analysis`` is the core's motion analysis they come from."""

    t: npt.NDArray[np.float64]
    persons_per_frame: npt.NDArray[np.float64]
    tracks: dict[int, PersonTrack]
    width: int
    height: int
    analysis: MotionAnalysis

    def longest_tracks(self) -> list[PersonTrack]:
        """Tracks, the longest first (ties: the lower id first)."""
        return sorted(self.tracks.values(), key=lambda track: (-track.frames, track.id))


def video_series(result: Mapping[str, Any]) -> VideoSeries:
    """The time series of a video's ``keypoints.json``, from :func:`posepipe.analysis.motion.analyze`."""
    analysis = analyze(result)
    source = result["source"]
    return VideoSeries(
        t=analysis.t,
        persons_per_frame=analysis.persons_per_frame,
        tracks={
            person.id: PersonTrack(
                person, "world" if person.track.has_world else "image", analysis.skeleton.landmark_names
            )
            for person in analysis.persons
        },
        width=int(source["width"]),
        height=int(source["height"]),
        analysis=analysis,
    )
