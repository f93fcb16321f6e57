"""What the web app shows of ``posepipe.pose/2`` results, as plain data: the annotated picture,
tables of landmarks and angles, and a video's time series per person. No Streamlit here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.annotation.drawing import color_for_id, draw_persons
from posepipe.media.images import load_image
from posepipe.result import Person
from posepipe.skeleton import LANDMARK_INDEX, NUM_LANDMARKS, skeleton_of
from posepipe.ui.angles import DEFAULT_MIN_VISIBILITY, JOINT_NAMES, joint_angle_series, joint_angles

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


def angle_rows(person: Person, min_visibility: float | None = None) -> list[dict[str, Any]]:
    """One row per joint: the 3D angle (world landmarks) and the 2D angle (as seen), in degrees."""
    world = joint_angles(person, "world", min_visibility)
    image = joint_angles(person, "image", min_visibility)
    return [
        {
            "joint": name.replace("_", " "),
            "3D (°)": _rounded(world[name]),
            "2D in the picture (°)": _rounded(image[name]),
        }
        for name in JOINT_NAMES
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class PersonTrack:
    """One person (one id) through a video: the frames it is in, its angles and positions."""

    id: int
    t: npt.NDArray[np.float64]  # seconds, one per frame the person is in
    angles: dict[str, npt.NDArray[np.float64]]  # joint -> 3D degrees per frame (NaN: not visible)
    xy: npt.NDArray[np.float64]  # (frames, 33, 2) pixels
    visibility: npt.NDArray[np.float64]  # (frames, 33)

    @property
    def frames(self) -> int:
        return len(self.t)

    def trajectory(
        self, landmark: str, min_visibility: float = DEFAULT_MIN_VISIBILITY
    ) -> dict[str, list[Any]]:
        """``t``, ``x``, ``y`` of one landmark where it is visible enough."""
        index = LANDMARK_INDEX[landmark]
        seen = self.visibility[:, index] >= min_visibility
        return {
            "t": self.t[seen].tolist(),
            "x": self.xy[seen, index, 0].tolist(),
            "y": self.xy[seen, index, 1].tolist(),
        }


@dataclass(frozen=True)
class VideoSeries:
    """A video result as time series: persons per frame (NaN where a frame was not processed), and
    one track per person id."""

    t: npt.NDArray[np.float64]
    persons_per_frame: npt.NDArray[np.float64]
    tracks: dict[int, PersonTrack]
    width: int
    height: int

    def longest_tracks(self) -> list[PersonTrack]:
        """Tracks, the longest first (ties: the lower id first)."""
        return sorted(self.tracks.values(), key=lambda track: (-track.frames, track.id))


def video_series(result: Mapping[str, Any]) -> VideoSeries:
    """The time series of a video's ``keypoints.json``."""
    frames: Sequence[Mapping[str, Any]] = result["frames"]
    times: dict[int, list[float]] = {}
    landmarks: dict[int, list[list[list[float]]]] = {}
    world: dict[int, list[list[list[float]]]] = {}
    for frame in frames:
        for person in frame["persons"]:
            person_id = int(person["id"])
            times.setdefault(person_id, []).append(float(frame["t"]))
            landmarks.setdefault(person_id, []).append(person["landmarks"])
            world.setdefault(person_id, []).append(person["world_landmarks"])
    tracks = {}
    for person_id in sorted(times):
        image = np.asarray(landmarks[person_id], dtype=np.float64).reshape(-1, NUM_LANDMARKS, 5)
        metres = np.asarray(world[person_id], dtype=np.float64).reshape(-1, NUM_LANDMARKS, 3)
        tracks[person_id] = PersonTrack(
            id=person_id,
            t=np.asarray(times[person_id], dtype=np.float64),
            angles=joint_angle_series(metres, image[:, :, 3]),
            xy=image[:, :, :2],
            visibility=image[:, :, 3],
        )
    source = result["source"]
    return VideoSeries(
        t=np.asarray([float(frame["t"]) for frame in frames], dtype=np.float64),
        persons_per_frame=np.asarray(
            [len(frame["persons"]) if frame.get("processed", True) else np.nan for frame in frames],
            dtype=np.float64,
        ),
        tracks=tracks,
        width=int(source["width"]),
        height=int(source["height"]),
    )
