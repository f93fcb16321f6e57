"""A video result as one time series per person id: every frame from the person's first to last
appearance, with NaN where they were not found (a gap), and which frames saw them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PersonTrack:
    """One person through a video.

    ``frames`` and ``t``: the frame indices and times from the person's first appearance to their
    last (the frames of the result in between, processed or not); ``observed``: whether the
    person was found on each. ``landmarks`` (T, N, 5) and ``world`` (T, N, 3), or (T, 0, 3) from a
    model without world landmarks, are NaN where the person was not found.
    """

    id: int
    frames: IntArray
    t: FloatArray
    observed: BoolArray
    landmarks: FloatArray
    world: FloatArray

    @property
    def has_world(self) -> bool:
        return bool(self.world.shape[1] > 0)

    @property
    def frames_tracked(self) -> int:
        return int(self.observed.sum())


def person_tracks(result: Mapping[str, Any]) -> list[PersonTrack]:
    """The tracks of a ``posepipe.pose/2`` result (its JSON object), by id. Persons without an id
    (-1, a still image) are each their own track of one frame."""
    frames: Sequence[Mapping[str, Any]] = result["frames"]
    size = len(result["landmark_names"])
    seen_at: dict[int, dict[int, Mapping[str, Any]]] = {}
    anonymous = 0
    for position, frame in enumerate(frames):
        for person in frame["persons"]:
            person_id = int(person.get("id", -1))
            if person_id < 0:
                anonymous -= 1
                person_id = anonymous  # distinct, negative: never clashes with a tracked id
            seen_at.setdefault(person_id, {})[position] = person
    tracks = []
    for person_id, sightings in sorted(seen_at.items(), key=lambda item: (item[0] < 0, abs(item[0]))):
        first, last = min(sightings), max(sightings)
        span = range(first, last + 1)
        has_world = any(len(p.get("world_landmarks") or []) for p in sightings.values())
        landmarks = np.full((len(span), size, 5), np.nan)
        world = np.full((len(span), size if has_world else 0, 3), np.nan)
        observed = np.zeros(len(span), dtype=bool)
        for row, position in enumerate(span):
            person = sightings.get(position)
            if person is None:
                continue
            observed[row] = True
            landmarks[row] = np.asarray(person["landmarks"], dtype=np.float64).reshape(size, 5)
            if has_world and person.get("world_landmarks"):
                world[row] = np.asarray(person["world_landmarks"], dtype=np.float64).reshape(size, 3)
        tracks.append(
            PersonTrack(
                id=person_id,
                frames=np.array([int(frames[p]["index"]) for p in span], dtype=np.int64),
                t=np.array([float(frames[p]["t"]) for p in span], dtype=np.float64),
                observed=observed,
                landmarks=landmarks,
                world=world,
            )
        )
    return tracks


def persons_per_frame(result: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """(times, persons) per frame; NaN persons where a frame was not processed."""
    frames: Sequence[Mapping[str, Any]] = result["frames"]
    t = np.array([float(frame["t"]) for frame in frames], dtype=np.float64)
    counts = np.array(
        [len(frame["persons"]) if frame.get("processed", True) else np.nan for frame in frames],
        dtype=np.float64,
    )
    return t, counts
