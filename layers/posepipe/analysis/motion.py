"""A result's motion analysis, person by person: trajectories cleaned
(:mod:`~posepipe.analysis.cleaning`), then angles (:mod:`~posepipe.analysis.angles`), segment
lengths and the hips' speed (:mod:`~posepipe.analysis.kinematics`) from the cleaned trajectories.

Landmarks below the keypoint set's visibility threshold count as not seen: they are missing
samples, which gap filling may fill (flagged) and the filter never smooths over. A result with
nobody in it gives an analysis with no persons and a note saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.analysis.angles import ANGLE_BY_NAME, ANGLE_NAMES, MIDPOINTS, angle_series
from posepipe.analysis.cleaning import CleaningOptions, butterworth, fill_gaps, sample_rate
from posepipe.analysis.kinematics import (
    hip_speed,
    median_lengths,
    metres_per_pixel,
    segment_length_series,
)
from posepipe.analysis.tracks import PersonTrack, TrackCollector, collect
from posepipe.skeleton import SKELETONS, Skeleton

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class PersonMotion:
    """One person's cleaned trajectories and what is measured from them.

    ``image_xy`` (T, N, 2) pixels and ``world`` (T, N, 3) metres (or (T, 0, 3)), after cleaning;
    ``seen`` (T, N): the landmark was observed (visible enough) on that frame; ``filled`` (T, N):
    it was not, and gap filling put a value there. ``angles`` and ``world_angles``: degrees per
    frame (NaN where not measurable); ``angle_filled``: the angle uses a filled landmark.
    ``speed``: the hips' speed in m/s (None without world landmarks). ``filtered``: ``all``,
    ``partly`` or ``none`` of the trajectories went through the Butterworth filter (``none`` too
    when it is switched off).
    """

    track: PersonTrack
    image_xy: FloatArray
    world: FloatArray
    seen: BoolArray
    filled: BoolArray
    angles: dict[str, FloatArray]
    world_angles: dict[str, FloatArray]
    angle_filled: dict[str, BoolArray]
    segment_lengths_px: dict[str, float | None]
    segment_lengths_m: dict[str, float | None]
    metres_per_pixel: float | None
    speed: FloatArray | None
    filtered: str
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.track.id

    @property
    def t(self) -> FloatArray:
        return self.track.t

    def angles_in(self, space: str) -> dict[str, FloatArray]:
        return self.world_angles if space == "world" else self.angles

    def range_of_motion(self, space: str) -> dict[str, tuple[float, float] | None]:
        """Each angle's (min, max) over the track in degrees; None where never measured."""
        return {
            name: (float(np.nanmin(values)), float(np.nanmax(values))) if np.isfinite(values).any() else None
            for name, values in self.angles_in(space).items()
        }


@dataclass
class MotionAnalysis:
    """Every person's motion, the frames' sample rate, persons per frame, the options, and notes."""

    skeleton: Skeleton
    persons: list[PersonMotion]
    sample_rate: float
    t: FloatArray
    persons_per_frame: FloatArray
    options: CleaningOptions
    notes: list[str] = field(default_factory=list)


def analyze(result: Mapping[str, Any], options: CleaningOptions | None = None) -> MotionAnalysis:
    """The motion analysis of a ``posepipe.pose/2`` result (its JSON object)."""
    return analyze_collected(collect(result), result.get("model", {}), options)


def analyze_collected(
    collector: TrackCollector, model: Mapping[str, Any], options: CleaningOptions | None = None
) -> MotionAnalysis:
    """The motion analysis of frames collected as they were made (the cloud's aggregate: no
    keypoints.json to parse), with the ``model`` block of their result."""
    options = options or CleaningOptions()
    skeleton = SKELETONS[model.get("skeleton", "blazepose-33")]
    t, counts = collector.times_and_counts()
    tracks = collector.tracks()
    analysis = MotionAnalysis(
        skeleton=skeleton,
        persons=[_person(track, skeleton, options) for track in tracks],
        sample_rate=sample_rate(t),
        t=t,
        persons_per_frame=counts,
        options=options,
    )
    if not tracks:
        analysis.notes.append("nobody was found in this result: no trajectories, angles or markers")
    return analysis


def _person(track: PersonTrack, skeleton: Skeleton, options: CleaningOptions) -> PersonMotion:
    index = skeleton.index
    seen = np.nan_to_num(track.landmarks[:, :, 3], nan=0.0) >= skeleton.min_visibility
    image_xy = np.where(seen[..., None], track.landmarks[:, :, :2], np.nan)
    world = np.where(seen[..., None], track.world, np.nan) if track.has_world else track.world
    filled = np.zeros_like(seen)
    notes: list[str] = []
    if options.fill_gaps:
        image_xy, image_filled = fill_gaps(image_xy, track.t, options.max_gap_s, options.interpolation)
        filled = np.asarray(image_filled.any(axis=2), dtype=bool)
        if track.has_world:
            world, _ = fill_gaps(world, track.t, options.max_gap_s, options.interpolation)
    filtered = "none"
    if options.butterworth:
        image_xy, report = butterworth(image_xy, track.t, options.order, options.cutoff_hz)
        if track.has_world:
            world, _ = butterworth(world, track.t, options.order, options.cutoff_hz)
        filtered = report.status
        notes += report.notes
    available = np.isfinite(image_xy).all(axis=2).astype(np.float64)
    angles = angle_series(image_xy, available, index, "image", 0.5)
    world_angles = (
        angle_series(world, available, index, "world", 0.5)
        if track.has_world
        else {name: np.full(len(track.t), np.nan) for name in ANGLE_NAMES}
    )
    scale = metres_per_pixel(image_xy, world, index) if track.has_world else None
    return PersonMotion(
        track=track,
        image_xy=image_xy,
        world=world,
        seen=seen,
        filled=filled,
        angles=angles,
        world_angles=world_angles,
        angle_filled={name: _uses_filled(name, filled, index) for name in ANGLE_NAMES},
        segment_lengths_px=median_lengths(segment_length_series(image_xy, index)),
        segment_lengths_m=median_lengths(segment_length_series(world, index)) if track.has_world else {},
        metres_per_pixel=scale,
        speed=hip_speed(image_xy, track.t, scale, index) if scale is not None else None,
        filtered=filtered,
        notes=notes,
    )


def _uses_filled(name: str, filled: BoolArray, index: Mapping[str, int]) -> BoolArray:
    """Whether angle ``name`` uses a filled landmark, per frame."""
    columns = []
    for point in ANGLE_BY_NAME[name].points:
        for landmark in MIDPOINTS.get(point, (point,)):
            if landmark in index:
                columns.append(index[landmark])
    if not columns:
        return np.zeros(len(filled), dtype=bool)
    return np.asarray(filled[:, columns].any(axis=1), dtype=bool)


def summary(analysis: MotionAnalysis) -> dict[str, Any]:
    """Per person, what a coach or clinician reads first: frames tracked, each angle's range of
    motion (min and max, degrees; 3D where the model gives world landmarks, else in the picture),
    the hips' mean and top speed, and the angle series' sample rate."""

    def rounded(value: float | None) -> float | None:
        return None if value is None or not np.isfinite(value) else round(float(value), 1)

    persons = []
    for person in analysis.persons:
        space = "world" if person.track.has_world else "image"
        ranges = {
            name: None if span is None else {"min": rounded(span[0]), "max": rounded(span[1])}
            for name, span in person.range_of_motion(space).items()
        }
        if space == "world":  # trunk and pelvis are measured in the picture only
            for name in ("trunk", "pelvis"):
                span = person.range_of_motion("image")[name]
                ranges[name] = None if span is None else {"min": rounded(span[0]), "max": rounded(span[1])}
        speed = person.speed[np.isfinite(person.speed)] if person.speed is not None else np.empty(0)
        persons.append(
            {
                "id": person.id,
                "frames_tracked": person.track.frames_tracked,
                "first_t": rounded(float(person.t[0])),
                "last_t": rounded(float(person.t[-1])),
                "angles_from": "world landmarks (3D)" if space == "world" else "the picture (2D)",
                "range_of_motion_deg": ranges,
                "hip_speed_m_s": (
                    {"mean": rounded(float(speed.mean())), "max": rounded(float(speed.max()))}
                    if len(speed)
                    else None
                ),
                "filtered": person.filtered,
                "notes": person.notes,
            }
        )
    return {
        "sample_rate_hz": round(analysis.sample_rate, 3),
        "cleaning": analysis.options.to_dict(),
        "persons": persons,
        "notes": analysis.notes,
    }
