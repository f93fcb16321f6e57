"""OpenSim's files, one pair per person: markers as a ``.trc`` and angles as a ``.mot``, in the
formats OpenSim documents (and reads with ``TimeSeriesTableVec3`` and ``TimeSeriesTable``).

Markers are the person's world landmarks (metres), after cleaning, turned to OpenSim's axes: Y up.
MediaPipe's world axes are x right, y down, z away from the camera, origin at the hips' midpoint;
OpenSim's markers are (x, -y, -z), a rotation of 180 degrees about x (so the axes stay
right-handed). Missing samples are ``NaN``, which OpenSim reads as missing. Models without world
landmarks (MoveNet) give no ``.trc``.

The ``.mot`` holds :mod:`posepipe.analysis.angles`' angles in degrees: the joint angles in 3D (in
the body's sagittal plane) where the model gives world landmarks, else as seen in the picture;
``trunk`` and ``pelvis`` as seen in the picture. Its header says which.
"""

from __future__ import annotations

import math

import numpy as np

from posepipe.analysis.angles import ANGLE_BY_NAME, ANGLE_NAMES
from posepipe.analysis.motion import MotionAnalysis, PersonMotion

OPENSIM_FROM_WORLD = np.array([1.0, -1.0, -1.0])  # (x, y, z) -> (x, -y, -z): Y up


def _value(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else "NaN"


def trc(person: PersonMotion, names: tuple[str, ...], rate: float, file_name: str) -> bytes:
    """The person's markers as a ``.trc`` (requires world landmarks)."""
    if not person.track.has_world:
        raise ValueError(f"person {person.id} has no world landmarks: no markers in metres")
    markers = person.world * OPENSIM_FROM_WORLD
    frames = len(person.t)
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{file_name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{frames}\t{len(names)}\tm\t{rate:.6g}\t{int(person.track.frames[0]) + 1}"
        f"\t{frames}",
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(names) + 1)),
        "",
    ]
    for row in range(frames):
        values = "\t".join(_value(float(v), 6) for v in markers[row].reshape(-1))
        lines.append(f"{row + 1}\t{person.t[row]:.6f}\t{values}")
    return ("\n".join(lines) + "\n").encode()


def mot_columns(person: PersonMotion) -> dict[str, str]:
    """Each ``.mot`` column's angle and where it is measured (``3d`` or ``2d``)."""
    return {
        name: "3d" if person.track.has_world and ANGLE_BY_NAME[name].in_3d else "2d" for name in ANGLE_NAMES
    }


def mot(person: PersonMotion, file_name: str) -> bytes:
    """The person's angles over time as a ``.mot`` (degrees)."""
    columns = mot_columns(person)
    frames = len(person.t)
    series = [
        person.angles_in("world" if space == "3d" else "image")[name] for name, space in columns.items()
    ]
    in_3d = [name for name, space in columns.items() if space == "3d"]
    lines = [
        file_name,
        "version=1",
        f"nRows={frames}",
        f"nColumns={len(columns) + 1}",
        "inDegrees=yes",
        "",
        f"posepipe person {person.id}: angles of posepipe.analysis.angles (Sports2D's conventions), degrees.",
        "3D, in the body's sagittal plane: " + (", ".join(in_3d) or "none")
        + "; the others as seen in the picture.",
        "endheader",
        "time\t" + "\t".join(columns),
    ]  # fmt: skip
    for row in range(frames):
        lines.append(f"{person.t[row]:.6f}\t" + "\t".join(_value(float(s[row]), 4) for s in series))
    return ("\n".join(lines) + "\n").encode()


def opensim_files(analysis: MotionAnalysis) -> dict[str, bytes]:
    """``person_<id>/markers.trc`` (where world landmarks exist) and ``person_<id>/angles.mot`` for
    every person."""
    files = {}
    for person in analysis.persons:
        folder = f"person_{person.id}"
        if person.track.has_world:
            files[f"{folder}/markers.trc"] = trc(
                person, analysis.skeleton.landmark_names, analysis.sample_rate, "markers.trc"
            )
        files[f"{folder}/angles.mot"] = mot(person, "angles.mot")
    return files
