"""Tidy CSV tables of a motion analysis, one observation per row, which pandas
(``pd.read_csv``) or a spreadsheet opens as they are.

``keypoints.csv``: ``frame, time_s, person, landmark, x_px, y_px, x_m, y_m, z_m, visibility,
observed, filled``: every landmark of every person on every frame of their track, after cleaning
(gap filling and the filter). ``observed`` says the landmark was seen on that frame; ``filled``
that it was not and gap filling put the value there; a row with neither has empty coordinates.
World coordinates (metres, origin at the hips) are empty for models without them.

``angles.csv``: ``frame, time_s, person, angle, space, degrees, filled``: every angle of
:mod:`posepipe.analysis.angles` in the picture (``space`` = ``2d``) and, where the model gives
world landmarks, in the body (``3d``); ``degrees`` is empty where the angle cannot be measured.
"""

from __future__ import annotations

import csv
import io
import math

from posepipe.analysis.angles import ANGLE_BY_NAME, ANGLE_NAMES
from posepipe.analysis.motion import MotionAnalysis

KEYPOINT_COLUMNS = (
    "frame", "time_s", "person", "landmark", "x_px", "y_px", "x_m", "y_m", "z_m", "visibility", "observed",
    "filled",
)  # fmt: skip
ANGLE_COLUMNS = ("frame", "time_s", "person", "angle", "space", "degrees", "filled")


def _number(value: float, decimals: int) -> str:
    return "" if not math.isfinite(value) else f"{value:.{decimals}f}"


def keypoints_csv(analysis: MotionAnalysis) -> bytes:
    """The ``keypoints.csv`` table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(KEYPOINT_COLUMNS)
    names = analysis.skeleton.landmark_names
    for person in analysis.persons:
        track = person.track
        visibility = track.landmarks[:, :, 3]
        for row, (frame, t) in enumerate(zip(track.frames.tolist(), track.t.tolist(), strict=True)):
            for column, name in enumerate(names):
                x, y = person.image_xy[row, column]
                world = person.world[row, column] if track.has_world else (math.nan,) * 3
                writer.writerow(
                    (
                        frame, f"{t:.6f}", person.id, name, _number(x, 2), _number(y, 2),
                        *(_number(float(v), 4) for v in world), _number(float(visibility[row, column]), 3),
                        int(person.seen[row, column]), int(person.filled[row, column]),
                    )
                )  # fmt: skip
    return out.getvalue().encode()


def angles_csv(analysis: MotionAnalysis) -> bytes:
    """The ``angles.csv`` table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANGLE_COLUMNS)
    for person in analysis.persons:
        spaces = [("2d", person.angles)]
        if person.track.has_world:
            spaces.append(
                ("3d", {name: person.world_angles[name] for name in ANGLE_NAMES if ANGLE_BY_NAME[name].in_3d})
            )
        for row, (frame, t) in enumerate(zip(person.track.frames.tolist(), person.t.tolist(), strict=True)):
            for space, angles in spaces:
                for name, values in angles.items():
                    writer.writerow(
                        (
                            frame, f"{t:.6f}", person.id, name, space, _number(float(values[row]), 2),
                            int(person.angle_filled[name][row]),
                        )
                    )  # fmt: skip
    return out.getvalue().encode()
