"""Every file of a motion analysis, by format, as relative path -> bytes (so that a job writes
them all at once, whole or not at all, to a folder or to S3):

- ``csv``: ``keypoints.csv`` and ``angles.csv`` (:mod:`posepipe.export.tables`);
- ``opensim``: ``person_<id>/markers.trc`` and ``person_<id>/angles.mot``
  (:mod:`posepipe.export.opensim`);
- ``c3d``: ``person_<id>/markers.c3d`` (:mod:`posepipe.export.c3d_markers`);
- ``plots``: ``persons_per_frame.png`` and ``person_<id>/angles.png`` (:mod:`posepipe.export.plots`);

and always ``analysis.json``: the per-person summary (frames tracked, range of motion, the hips'
speed, the sample rate), the cleaning steps and their settings, the angle conventions, and notes
(nobody found; persons left unfiltered, and why; formats a model cannot give).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from posepipe.analysis.angles import conventions
from posepipe.analysis.cleaning import CleaningOptions
from posepipe.analysis.motion import MotionAnalysis, analyze, summary
from posepipe.export.c3d_markers import c3d_files
from posepipe.export.opensim import opensim_files
from posepipe.export.plots import plot_files
from posepipe.export.tables import angles_csv, keypoints_csv

MOTION_FORMATS: dict[str, Callable[[MotionAnalysis], dict[str, bytes]]] = {
    "csv": lambda analysis: {"keypoints.csv": keypoints_csv(analysis), "angles.csv": angles_csv(analysis)},
    "opensim": opensim_files,
    "c3d": c3d_files,
    "plots": plot_files,
}
ANALYSIS_JSON = "analysis.json"


def parse_formats(names: Iterable[str]) -> list[str]:
    """The formats asked for (``all`` for every one), in order, or ValueError naming the known ones."""
    chosen: list[str] = []
    for name in names:
        if name == "all":
            chosen += list(MOTION_FORMATS)
        elif name in MOTION_FORMATS:
            chosen.append(name)
        else:
            raise ValueError(
                f"unknown export format {name!r}: known formats are {', '.join(MOTION_FORMATS)} and all "
                "(COCO-17 keypoints: --coco)"
            )
    return list(dict.fromkeys(chosen))


def motion_files(
    analysis: MotionAnalysis, formats: Iterable[str] = tuple(MOTION_FORMATS)
) -> dict[str, bytes]:
    """The files of ``formats`` and ``analysis.json``."""
    files: dict[str, bytes] = {}
    chosen = parse_formats(formats)
    for name in chosen:
        files.update(MOTION_FORMATS[name](analysis))
    report: dict[str, Any] = summary(analysis)
    notes = list(report["notes"])
    without_world = [p.id for p in analysis.persons if not p.track.has_world]
    if without_world and ({"opensim", "c3d"} & set(chosen)):
        notes.append(
            f"{analysis.skeleton.name} has no world landmarks: no markers in metres (.trc, .c3d) for "
            f"{len(without_world)} person(s); their angles are as seen in the picture"
        )
    report = {**report, "notes": notes, "files": sorted(files), "angle_conventions": conventions()}
    files[ANALYSIS_JSON] = (json.dumps(report, indent=1) + "\n").encode()
    return files


def analysis_outputs(
    result: dict[str, Any], formats: Iterable[str] | None, options: CleaningOptions | None = None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The analysis of a result: its files for ``formats`` (None: none) and the summary's
    ``motion`` block (per person: frames tracked, range of motion, the hips' speed; the sample
    rate)."""
    return outputs_of(analyze(result, options), formats)


def outputs_of(
    analysis: MotionAnalysis, formats: Iterable[str] | None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """An analysis' files for ``formats`` (None: none) and the summary's ``motion`` block (see
    :func:`analysis_outputs`; the cloud's aggregate analyses the frames as it makes them)."""
    files = motion_files(analysis, formats) if formats is not None else {}
    return files, summary(analysis)


MEDIA_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
    ".trc": "text/plain",
    ".mot": "text/plain",
    ".c3d": "application/octet-stream",
}


def content_type(name: str) -> str:
    """The media type a motion analysis file is stored with (in S3)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")
