"""A video result as one time series per person id: every frame from the person's first to last
appearance, with NaN where they were not found (a gap), and which frames saw them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.result import Frame

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


class TrackCollector:
    """A video's frames in order, kept as each person's landmark arrays and the frames' times:
    what :func:`person_tracks` and :func:`persons_per_frame` are made of. Fed a frame at a time
    (:meth:`add_frame`, as the aggregate makes them), it holds about 1 KB per person and frame
    (float32 landmarks), never the result's JSON, which takes ten times that once parsed."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size  # landmarks a person has; None: the first person's
        self._index: list[int] = []
        self._t: list[float] = []
        self._counts: list[float] = []
        self._seen: dict[int, dict[int, tuple[npt.NDArray[Any], npt.NDArray[Any] | None]]] = {}
        self._anonymous = 0

    def add(
        self, index: int, t: float, processed: bool,
        persons: Iterable[tuple[int, npt.NDArray[Any], npt.NDArray[Any] | None]],
    ) -> None:  # fmt: skip
        """One frame: its index, time, whether it was processed and its persons' (id, landmarks
        (N, 5), world landmarks (N, 3) or None). Persons without an id (-1) are each their own track."""
        position = len(self._index)
        self._index.append(index)
        self._t.append(t)
        count = 0
        for person_id, landmarks, world in persons:
            count += 1
            if self.size is None:
                self.size = len(landmarks)
            if person_id < 0:
                self._anonymous -= 1
                person_id = self._anonymous  # distinct, negative: never clashes with a tracked id
            self._seen.setdefault(person_id, {})[position] = (
                landmarks,
                world if world is not None and world.size else None,
            )
        self._counts.append(float(count) if processed else np.nan)

    def add_frame(self, frame: Frame) -> None:
        self.add(frame.index, frame.t, frame.processed,
                 ((p.id, p.landmarks, p.world_landmarks) for p in frame.persons))  # fmt: skip

    def times_and_counts(self) -> tuple[FloatArray, FloatArray]:
        """(times, persons) per frame; NaN persons where a frame was not processed."""
        return np.array(self._t, dtype=np.float64), np.array(self._counts, dtype=np.float64)

    def tracks(self) -> list[PersonTrack]:
        """The tracks, by id (anonymous persons last)."""
        size = self.size or 0
        tracks = []
        for person_id, sightings in sorted(self._seen.items(), key=lambda item: (item[0] < 0, abs(item[0]))):
            first, last = min(sightings), max(sightings)
            span = range(first, last + 1)
            has_world = any(world is not None for _, world in sightings.values())
            landmarks = np.full((len(span), size, 5), np.nan)
            world_rows = np.full((len(span), size if has_world else 0, 3), np.nan)
            observed = np.zeros(len(span), dtype=bool)
            for row, position in enumerate(span):
                seen = sightings.get(position)
                if seen is None:
                    continue
                observed[row] = True
                landmarks[row] = np.asarray(seen[0], dtype=np.float64).reshape(size, 5)
                if has_world and seen[1] is not None:
                    world_rows[row] = np.asarray(seen[1], dtype=np.float64).reshape(size, 3)
            tracks.append(
                PersonTrack(
                    id=person_id,
                    frames=np.array(self._index[first : last + 1], dtype=np.int64),
                    t=np.array(self._t[first : last + 1], dtype=np.float64),
                    observed=observed,
                    landmarks=landmarks,
                    world=world_rows,
                )
            )
        return tracks


def collect(result: Mapping[str, Any]) -> TrackCollector:
    """A ``posepipe.pose/2`` result (its JSON object) in a :class:`TrackCollector`."""
    collector = TrackCollector(len(result["landmark_names"]))
    frames: Sequence[Mapping[str, Any]] = result["frames"]
    for frame in frames:
        collector.add(
            int(frame["index"]), float(frame["t"]), bool(frame.get("processed", True)),
            ((int(p.get("id", -1)), np.asarray(p["landmarks"], dtype=np.float64),
              np.asarray(p["world_landmarks"], dtype=np.float64) if p.get("world_landmarks") else None)
             for p in frame["persons"]),
        )  # fmt: skip
    return collector


def person_tracks(result: Mapping[str, Any]) -> list[PersonTrack]:
    """The tracks of a ``posepipe.pose/2`` result (its JSON object), by id. Persons without an id
    (-1, a still image) are each their own track of one frame."""
    return collect(result).tracks()


def persons_per_frame(result: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """(times, persons) per frame; NaN persons where a frame was not processed."""
    return collect(result).times_and_counts()
