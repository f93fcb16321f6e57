"""Stable person ids over time.

A pose engine gives the poses of each frame as an unordered list. :class:`PersonTracker` links
them from frame to frame (and so across chunk boundaries, since it runs over the merged stream of
frames) by landmark distance relative to the person's size, and gives each person an id that
stays theirs while they are seen (within ``max_gap_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posepipe.result import Person

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
