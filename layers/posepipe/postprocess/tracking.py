"""Stable person ids over time, and temporal smoothing of landmarks.

MediaPipe's PoseLandmarker gives the poses of each frame as an unordered list. The
:class:`PersonTracker` links them from frame to frame (and so across chunk boundaries, since it
runs over the merged stream of frames) by landmark distance relative to the person's size;
:class:`LandmarkSmoother` runs a One Euro filter per tracked person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from posepipe.result import Frame, Person

# Landmarks MediaPipe itself reports as unlikely to be visible carry little identity evidence.
_MATCH_MIN_VISIBILITY = 0.3


@dataclass(frozen=True)
class TrackerOptions:
    """``max_distance``: the largest mean landmark distance, in person sizes, of a match.
    ``max_gap_s``: how long a person may go unseen and keep their id."""

    max_distance: float = 0.5
    max_gap_s: float = 1.0


@dataclass
class _Track:
    id: int
    last: Person
    last_t: float


def pose_distance(a: Person, b: Person) -> float:
    """Mean distance between corresponding landmarks, in units of the larger person's size."""
    both = (a.visibility >= _MATCH_MIN_VISIBILITY) & (b.visibility >= _MATCH_MIN_VISIBILITY)
    if int(both.sum()) < 4:
        both = np.ones_like(both)
    gaps = np.linalg.norm(a.xy[both] - b.xy[both], axis=1)
    return float(gaps.mean()) / max(a.scale, b.scale)


class PersonTracker:
    """Gives each person a stable id: greedy matching of each frame's persons to live tracks."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, persons: list[Person], t: float) -> list[Person]:
        """Set ``id`` on each of ``persons`` (in place) and return them."""
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= self.options.max_gap_s]
        pairs = sorted(
            (pose_distance(track.last, person), ti, pi)
            for ti, track in enumerate(self._tracks)
            for pi, person in enumerate(persons)
        )
        used_tracks: set[int] = set()
        for distance, ti, pi in pairs:
            if distance > self.options.max_distance:
                break
            if ti in used_tracks or persons[pi].id >= 0:
                continue
            used_tracks.add(ti)
            persons[pi].id = self._tracks[ti].id
            self._tracks[ti].last = persons[pi]
            self._tracks[ti].last_t = t
        for person in persons:
            if person.id < 0:
                person.id = self._next_id
                self._next_id += 1
                self._tracks.append(_Track(id=person.id, last=person, last_t=t))
        return persons


@dataclass(frozen=True)
class SmoothingOptions:
    """One Euro filter settings (Casiez et al., CHI 2012).

    For pixel landmarks the speed that raises the cut-off is measured in person sizes per second
    (as MediaPipe's own landmark smoothing does), so ``beta`` means the same for near and far
    people; for world landmarks it is in metres per second. ``min_cutoff`` (Hz) sets the jitter
    removed when still, ``beta`` how fast the cut-off rises with speed (less lag on fast moves).
    """

    enabled: bool = True
    min_cutoff: float = 1.0
    beta: float = 10.0
    derivative_cutoff: float = 1.0
    world_min_cutoff: float = 1.0
    world_beta: float = 10.0


class OneEuroFilter:
    """A vectorised One Euro filter over an array of values sampled at increasing times.

    As in MediaPipe's landmark smoothing, values are filtered in their own units and
    ``value_scale`` only scales the speed that sets the adaptive cut-off (so that ``beta`` can
    be in person sizes per second whatever the person's size in pixels).
    """

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self._raw: npt.NDArray[np.float64] | None = None
        self._value: npt.NDArray[np.float64] | None = None
        self._derivative: npt.NDArray[np.float64] | None = None
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: npt.NDArray[np.float64] | float, dt: float) -> npt.NDArray[np.float64]:
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return np.asarray(1.0 / (1.0 + tau / dt), dtype=np.float64)

    def __call__(
        self, value: npt.NDArray[np.float64], t: float, value_scale: float = 1.0
    ) -> npt.NDArray[np.float64]:
        if self._raw is None or self._value is None or self._derivative is None:
            self._raw, self._value = value.copy(), value.copy()
            self._derivative = np.zeros_like(value)
            self._t = t
            return value.copy()
        dt = t - self._t
        if dt <= 0:  # a repeated timestamp: nothing new to learn from
            return self._value.copy()
        speed = (value - self._raw) * (value_scale / dt)
        self._derivative += self._alpha(self.derivative_cutoff, dt) * (speed - self._derivative)
        cutoff = self.min_cutoff + self.beta * np.abs(self._derivative)
        self._value = self._value + self._alpha(cutoff, dt) * (value - self._value)
        self._raw = value.copy()
        self._t = t
        return self._value.copy()


@dataclass
class _PersonFilters:
    image: OneEuroFilter
    world: OneEuroFilter
    last_t: float


class LandmarkSmoother:
    """One Euro smoothing of each tracked person's landmarks (x, y, z and world x, y, z)."""

    def __init__(self, options: SmoothingOptions, max_gap_s: float = 1.0) -> None:
        self.options = options
        self.max_gap_s = max_gap_s
        self._filters: dict[int, _PersonFilters] = {}

    def update(self, frame: Frame) -> Frame:
        """Smooth the persons of ``frame`` in place (ids must be set) and return it."""
        if not self.options.enabled:
            return frame
        t = frame.t
        self._filters = {k: f for k, f in self._filters.items() if t - f.last_t <= self.max_gap_s}
        for person in frame.persons:
            filters = self._filters.get(person.id)
            if filters is None:
                o = self.options
                filters = _PersonFilters(
                    image=OneEuroFilter(o.min_cutoff, o.beta, o.derivative_cutoff),
                    world=OneEuroFilter(o.world_min_cutoff, o.world_beta, o.derivative_cutoff),
                    last_t=t,
                )
                self._filters[person.id] = filters
            # Speeds in person sizes per second: beta means the same for near and far people.
            image = person.landmarks[:, :3].astype(np.float64)
            person.landmarks[:, :3] = filters.image(image, t, 1.0 / person.scale).astype(np.float32)
            world = person.world_landmarks.astype(np.float64)
            person.world_landmarks = filters.world(world, t).astype(np.float32)
            filters.last_t = t
        return frame
