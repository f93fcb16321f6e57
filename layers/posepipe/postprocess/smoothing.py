"""Temporal smoothing of landmarks: a One Euro filter (Casiez et al., CHI 2012) per tracked person.

:class:`LandmarkSmoother` filters each person's image landmarks (x, y, z) and world landmarks,
keyed by the ids :class:`posepipe.postprocess.ids.PersonTracker` gives; it runs after tracking,
whatever the engine. (MediaPipe's own in-graph smoothing, ported for the torch engine, is
:mod:`posepipe.engines.torch.mediapipe_filters`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from posepipe.result import Frame


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
            if len(person.world_landmarks):  # models without world landmarks (MoveNet) give none
                world = person.world_landmarks.astype(np.float64)
                person.world_landmarks = filters.world(world, t).astype(np.float32)
            filters.last_t = t
        return frame
