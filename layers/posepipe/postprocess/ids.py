"""Stable person ids over time.

A pose engine gives the poses of each frame as an unordered list. :class:`PersonTracker` links
them from frame to frame (and so across chunk boundaries, since it runs over the merged stream of
frames) and gives each person an id that stays theirs while they are seen, and through gaps of up
to ``max_gap_s`` when they are not (behind a column, behind another person, missed by the
detector).

How a frame's persons are linked to the tracks, as trackers by detection do it (SORT's motion
model, with poses in place of boxes):

1. Each track predicts where its person is now: their last pose, moved to where their motion
   over the last second they were seen puts them (a robust straight-line fit to the centre of
   their landmarks). A person walking behind a column for a second comes out where they were heading, not
   where they went in; two people crossing are told apart by where each was going.
2. The cost of a pair is the mean distance between the prediction's landmarks and the person's,
   in person sizes (:func:`pose_distance`). A pair is allowed up to ``max_distance``, plus
   ``gap_growth`` for each second since the track was last seen: predictions drift.
3. Pairs are taken greedily, cheapest first; persons left over start new tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from posepipe.result import Person

# Landmarks MediaPipe itself reports as unlikely to be visible carry little identity evidence.
_MATCH_MIN_VISIBILITY = 0.3
# The sightings a track's motion is estimated from: those of the last second.
_MOTION_WINDOW_S = 1.0


@dataclass(frozen=True)
class TrackerOptions:
    """``max_distance``: the largest mean landmark distance, in person sizes, of a match from one
    frame to the next. ``gap_growth``: what the allowed distance grows by for each second a person
    has been unseen. ``max_gap_s``: how long a person may go unseen and keep their id: two seconds,
    so that a person hidden for a second keeps theirs, with the frames before and after in which
    too little of them shows for the detector."""

    max_distance: float = 0.5
    gap_growth: float = 0.5
    max_gap_s: float = 2.0


@dataclass
class _Track:
    id: int
    last: Person
    last_t: float
    seen: list[tuple[float, npt.NDArray[np.float32]]] = field(default_factory=list)  # (t, centre)

    # The line through the sightings (origin, velocity), fitted once per sighting: a track unseen
    # for a second is asked for its prediction on every frame of that second.
    motion: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None

    def __post_init__(self) -> None:
        self.seen.append((self.last_t, _centre(self.last)))

    def predicted(self, t: float) -> Person:
        """The last pose, moved to where the person's motion over the last second puts them at
        time ``t`` (:func:`_motion_line`)."""
        if self.motion is None or t <= self.last_t:
            return self.last
        origin, velocity = self.motion
        moved = self.last.copy()
        moved.landmarks[:, :2] += (origin + velocity * t - _centre(self.last)).astype(np.float32)
        return moved

    def see(self, person: Person, t: float) -> None:
        self.last, self.last_t = person, t
        self.seen = [(when, centre) for when, centre in self.seen if t - when <= _MOTION_WINDOW_S]
        self.seen.append((t, _centre(person)))
        self.motion = _motion_line(self.seen)


def _motion_line(
    seen: list[tuple[float, npt.NDArray[np.float32]]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """A straight line (origin, velocity) through a person's centres over time by the Theil-Sen
    estimator (the median of the slopes between every two sightings), which the few frames where
    a person is half hidden, and their landmarks pulled towards what shows, do not bend; None
    from fewer than two sightings at different times."""
    times = np.array([when for when, _ in seen])
    centres = np.stack([centre for _, centre in seen])
    first, second = np.triu_indices(len(times), k=1)
    spans = times[second] - times[first]
    usable = spans > 0
    if not usable.any():
        return None
    slopes = (centres[second] - centres[first])[usable] / spans[usable, None]
    velocity = np.median(slopes, axis=0)
    origin = np.median(centres - velocity * times[:, None], axis=0)
    return origin, velocity


def _centre(person: Person) -> npt.NDArray[np.float32]:
    return np.asarray(person.xy.mean(axis=0), dtype=np.float32)


def pose_distance(a: Person, b: Person) -> float:
    """Mean distance between corresponding landmarks, in units of the larger person's size."""
    both = (a.visibility >= _MATCH_MIN_VISIBILITY) & (b.visibility >= _MATCH_MIN_VISIBILITY)
    if int(both.sum()) < 4:
        both = np.ones_like(both)
    gaps = np.linalg.norm(a.xy[both] - b.xy[both], axis=1)
    return float(gaps.mean()) / max(a.scale, b.scale)


class PersonTracker:
    """Gives each person a stable id: each frame's persons matched to the tracks' predictions."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, persons: list[Person], t: float) -> list[Person]:
        """Set ``id`` on each of ``persons`` (in place) and return them."""
        options = self.options
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= options.max_gap_s]
        pairs = []
        for ti, track in enumerate(self._tracks):
            predicted = track.predicted(t)
            allowed = options.max_distance + options.gap_growth * max(0.0, t - track.last_t)
            for pi, person in enumerate(persons):
                distance = pose_distance(predicted, person)
                if distance <= allowed:
                    pairs.append((distance, ti, pi))
        used_tracks: set[int] = set()
        for _, ti, pi in sorted(pairs):
            if ti in used_tracks or persons[pi].id >= 0:
                continue
            used_tracks.add(ti)
            persons[pi].id = self._tracks[ti].id
            self._tracks[ti].see(persons[pi], t)
        for person in persons:
            if person.id < 0:
                person.id = self._next_id
                self._next_id += 1
                self._tracks.append(_Track(id=person.id, last=person, last_t=t))
        return persons
