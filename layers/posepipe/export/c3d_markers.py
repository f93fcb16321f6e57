"""C3D files of each person's markers, written by ``ezc3d`` (the C3D library of the
biomechanics community, also used by Pose2Sim and OpenSim's tools).

One file per person: the world landmarks after cleaning, in metres, on OpenSim's axes (Y up,
as :mod:`posepipe.export.opensim` turns them), one marker per landmark, at the frames' sample
rate. Missing samples are written as C3D's invalid points (residual -1). Models without world
landmarks (MoveNet) give no C3D.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from posepipe.analysis.motion import MotionAnalysis, PersonMotion
from posepipe.export.opensim import OPENSIM_FROM_WORLD


def c3d(person: PersonMotion, names: tuple[str, ...], rate: float) -> bytes:
    """The person's markers as a C3D file (requires world landmarks)."""
    import ezc3d

    if not person.track.has_world:
        raise ValueError(f"person {person.id} has no world landmarks: no markers in metres")
    markers = person.world * OPENSIM_FROM_WORLD  # (frames, markers, 3)
    points = np.ones((4, len(names), len(person.t)))
    points[:3] = markers.transpose(2, 1, 0)
    file = ezc3d.c3d()
    file["parameters"]["POINT"]["RATE"]["value"] = [float(rate)]
    file["parameters"]["POINT"]["LABELS"]["value"] = list(names)
    file["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = [
        f"posepipe person {person.id}: {n}" for n in names
    ]
    file["parameters"]["POINT"]["UNITS"]["value"] = ["m"]
    file["data"]["points"] = points
    with tempfile.TemporaryDirectory(prefix="posepipe-c3d-") as scratch:
        path = Path(scratch) / "markers.c3d"
        file.write(str(path))
        return path.read_bytes()


def c3d_files(analysis: MotionAnalysis) -> dict[str, bytes]:
    """``person_<id>/markers.c3d`` for every person with world landmarks."""
    return {
        f"person_{person.id}/markers.c3d": c3d(person, analysis.skeleton.landmark_names, analysis.sample_rate)
        for person in analysis.persons
        if person.track.has_world
    }
