"""Plots of a motion analysis as PNG (matplotlib, drawn off screen): per person, the main joint
angles over time, left and right together; and the persons in each frame.

Filled samples (gap filling) are drawn as a dashed line over the solid observed one, so that a
reader tells them apart. The angles are those :mod:`posepipe.export.opensim` writes: 3D where the
model gives world landmarks, else as seen in the picture.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from posepipe.analysis.motion import MotionAnalysis, PersonMotion
from posepipe.export.opensim import mot_columns

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTTED_JOINTS = ("hip", "knee", "ankle", "shoulder", "elbow")
SIDE_COLOURS = {"right": "#d62728", "left": "#1f77b4"}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def person_angles_png(person: PersonMotion) -> bytes:
    """The person's hip, knee, ankle, shoulder and elbow angles over time, plus the trunk's."""
    from matplotlib.figure import Figure

    spaces = mot_columns(person)
    figure = Figure(figsize=(9, 11), layout="constrained")
    axes = figure.subplots(len(PLOTTED_JOINTS) + 1, 1, sharex=True)
    t = person.t - person.t[0]
    for axis, joint in zip(axes, (*PLOTTED_JOINTS, "trunk"), strict=True):
        names = [f"{side}_{joint}" for side in ("right", "left")] if joint != "trunk" else ["trunk"]
        for name in names:
            values = person.angles_in("world" if spaces[name] == "3d" else "image")[name]
            filled = person.angle_filled[name]
            colour = SIDE_COLOURS.get(name.split("_")[0], "#2ca02c")
            axis.plot(t, np.where(filled, np.nan, values), color=colour, label=name.replace("_", " "))
            if filled.any():
                axis.plot(t, np.where(filled, values, np.nan), color=colour, linestyle="--", linewidth=1)
        space = spaces[names[0]]
        axis.set_ylabel(f"{joint} (°, {space.upper()})")
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel(f"time since the person's first frame (s); frames {person.track.frames[0]}-"
                        f"{person.track.frames[-1]}")  # fmt: skip
    status = {"all": "Butterworth-filtered", "partly": "partly filtered", "none": "not filtered"}[
        person.filtered
    ]
    figure.suptitle(
        f"Person {person.id}: {person.track.frames_tracked} frames tracked, {status}; dashed: gap-filled"
    )
    return _png(figure)


def persons_per_frame_png(analysis: MotionAnalysis) -> bytes:
    """Persons found in each frame over time (gaps where a frame was not processed)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3), layout="constrained")
    axis = figure.subplots()
    axis.plot(analysis.t, analysis.persons_per_frame, color="#2ca02c")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("persons")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.set_title("Persons per frame")
    return _png(figure)


def plot_files(analysis: MotionAnalysis) -> dict[str, bytes]:
    """``persons_per_frame.png`` and ``person_<id>/angles.png`` for every person."""
    files = {"persons_per_frame.png": persons_per_frame_png(analysis)}
    for person in analysis.persons:
        files[f"person_{person.id}/angles.png"] = person_angles_png(person)
    return files
