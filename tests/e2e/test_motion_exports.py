"""Motion analysis files, read by the tools they are for: OpenSim's own Python API reads the
``.trc`` markers (``TimeSeriesTableVec3``) and the ``.mot`` angles (``TimeSeriesTable``); the C3D
opens with ezc3d, which wrote it, and with the ``c3d`` package as an independent reader; pandas
reads the CSV tables; the plots are PNG. For vtest.avi (posepipe's default result, 10 frames/s)
and for a 25 frames/s clip of two photographed people (``posepipe video --analyze``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from posepipe.analysis.angles import ANGLE_NAMES
from posepipe.skeleton import LANDMARK_NAMES

from tests.support.cli import CliRun, VideoRun, load_run
from tests.support.crossing import make_crossing_clip

pytestmark = pytest.mark.slow

FILES_PER_PERSON = ("angles.mot", "angles.png", "markers.c3d", "markers.trc")


@pytest.fixture(scope="module")
def vtest_motion(
    cli: Callable[..., CliRun], sample: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``posepipe video vtest.avi --analyze`` (not annotated: that is tested elsewhere)."""
    out = tmp_path_factory.mktemp("vtest-motion")
    run = cli("video", sample("vtest.avi"), "-o", out, "--analyze", "--no-annotate", "--no-progress")
    assert run.returncode == 0, run.stderr
    return out / "vtest"


def test_export_writes_what_video_analyze_wrote(
    vtest_motion: Path, cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    run = cli("export", vtest_motion / "keypoints.json", "--format", "all", "-o", tmp_path)
    assert run.returncode == 0, run.stderr
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    analysed = {p.relative_to(vtest_motion) for p in vtest_motion.rglob("*") if p.is_file()}
    assert written == analysed - {Path("keypoints.json"), Path("summary.json")}
    for name in ("angles.csv", "keypoints.csv", "person_0/markers.trc", "person_0/angles.mot"):
        assert (tmp_path / name).read_bytes() == (vtest_motion / name).read_bytes(), name


@pytest.fixture(scope="module")
def clip_run(
    cli: Callable[..., CliRun], sample: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> VideoRun:
    """``posepipe video --analyze`` of a 25 frames/s clip where two photographed people walk."""
    folder = tmp_path_factory.mktemp("walk")
    clip = folder / "walk.mp4"
    make_crossing_clip(clip, sample("messi5.jpg").parent)
    run = cli("video", clip, "-o", folder / "out", "--analyze", "--no-progress")
    assert run.returncode == 0, run.stderr
    return load_run(folder / "out" / "walk")


def _tracks(keypoints: dict[str, Any]) -> dict[int, list[int]]:
    """Each person id's first and last frame index in the result."""
    spans: dict[int, list[int]] = {}
    for frame in keypoints["frames"]:
        for person in frame["persons"]:
            span = spans.setdefault(person["id"], [frame["index"], frame["index"]])
            span[1] = frame["index"]
    return spans


def _check_opensim_and_c3d(folder: Path, keypoints: dict[str, Any]) -> int:
    """Every person's files open in OpenSim, ezc3d and c3d with the person's frames, 33 markers
    and 14 angle columns, the markers the same in all three; the number of persons checked."""
    import c3d
    import ezc3d
    import opensim

    spans = _tracks(keypoints)
    rate = round(1.0 / np.median(np.diff([f["t"] for f in keypoints["frames"]])), 6)
    for person_id, (first, last) in spans.items():
        person = folder / f"person_{person_id}"
        assert sorted(p.name for p in person.iterdir()) == sorted(FILES_PER_PERSON)
        frames = last - first + 1
        markers = opensim.TimeSeriesTableVec3(str(person / "markers.trc"))
        assert (markers.getNumRows(), markers.getNumColumns()) == (frames, 33)
        assert list(markers.getColumnLabels()) == list(LANDMARK_NAMES)
        assert markers.getTableMetaDataAsString("Units") == "m"
        angles = opensim.TimeSeriesTable(str(person / "angles.mot"))
        assert (angles.getNumRows(), list(angles.getColumnLabels())) == (frames, list(ANGLE_NAMES))
        assert angles.getIndependentColumn()[0] == pytest.approx(keypoints["frames"][first]["t"], abs=1e-6)
        ours = ezc3d.c3d(str(person / "markers.c3d"))
        assert ours["data"]["points"].shape == (4, 33, frames)
        assert ours["parameters"]["POINT"]["RATE"]["value"][0] == pytest.approx(rate)
        with (person / "markers.c3d").open("rb") as handle:
            reader = c3d.Reader(handle)
            assert [label.strip() for label in reader.point_labels] == list(LANDMARK_NAMES)
            read = [points for _, points, _ in reader.read_frames()]
        assert len(read) == frames
        # The same hip marker in the .trc and in both C3D readers (missing: NaN, residual -1).
        hip = LANDMARK_NAMES.index("left_hip")
        trc_hip = np.array([markers.getRowAtIndex(i)[hip].to_numpy() for i in range(frames)])
        c3d_hip = np.array([points[hip, :3] for points in read])
        valid = np.array([points[hip, 3] >= 0 for points in read])
        assert valid.sum() == np.isfinite(trc_hip).all(axis=1).sum()
        np.testing.assert_allclose(c3d_hip[valid], trc_hip[valid], atol=1e-5)
        np.testing.assert_allclose(ours["data"]["points"][:3, hip, valid].T, trc_hip[valid], atol=1e-5)
    return len(spans)


def test_vtests_markers_and_angles_open_in_opensim_ezc3d_and_c3d(vtest_motion: Path) -> None:
    keypoints = json.loads((vtest_motion / "keypoints.json").read_text())
    assert _check_opensim_and_c3d(vtest_motion, keypoints) >= 10


def test_the_clips_files_are_written_by_video_analyze_and_open_in_opensim(clip_run: VideoRun) -> None:
    assert _check_opensim_and_c3d(clip_run.out_dir, clip_run.keypoints) >= 2
    for name in ("keypoints.csv", "angles.csv", "analysis.json", "persons_per_frame.png"):
        assert (clip_run.out_dir / name).stat().st_size > 0
    analysis = json.loads((clip_run.out_dir / "analysis.json").read_text())
    assert analysis["sample_rate_hz"] == pytest.approx(25.0)
    walkers = sorted(analysis["persons"], key=lambda p: -p["frames_tracked"])[:2]
    assert all(p["filtered"] in ("all", "partly") for p in walkers)  # 25 frames/s: 6 Hz applies
    assert all(p["frames_tracked"] >= 60 for p in walkers)


def test_the_tables_are_tidy_and_flag_what_was_filled(vtest_motion: Path) -> None:
    import pandas as pd

    keypoints = pd.read_csv(vtest_motion / "keypoints.csv")
    assert list(keypoints.columns) == [
        "frame", "time_s", "person", "landmark", "x_px", "y_px", "x_m", "y_m", "z_m", "visibility",
        "observed", "filled",
    ]  # fmt: skip
    spans = _tracks(json.loads((vtest_motion / "keypoints.json").read_text()))
    assert len(keypoints) == 33 * sum(last - first + 1 for first, last in spans.values())
    assert not (keypoints["observed"] & keypoints["filled"]).any()  # filled values are never observed
    assert keypoints.loc[keypoints["filled"] == 1, "x_px"].notna().all()
    neither = (keypoints["observed"] == 0) & (keypoints["filled"] == 0)
    assert keypoints.loc[neither, "x_px"].isna().all()
    assert 0 < keypoints["filled"].sum() < keypoints["observed"].sum()
    angles = pd.read_csv(vtest_motion / "angles.csv")
    assert list(angles.columns) == ["frame", "time_s", "person", "angle", "space", "degrees", "filled"]
    assert set(angles["angle"]) == set(ANGLE_NAMES)
    assert set(angles["space"]) == {"2d", "3d"}
    knees = angles[(angles["angle"] == "right_knee") & (angles["space"] == "3d")]["degrees"].dropna()
    assert 5.0 < knees.median() < 40.0  # walkers' knees: bent a little, never straight for long


def test_the_plots_and_the_summary(vtest_motion: Path) -> None:
    image = cv2.imread(str(vtest_motion / "person_0" / "angles.png"))
    assert image is not None
    assert image.shape[0] > 600
    assert cv2.imread(str(vtest_motion / "persons_per_frame.png")) is not None
    analysis = json.loads((vtest_motion / "analysis.json").read_text())
    assert analysis["sample_rate_hz"] == pytest.approx(10.0)
    assert [c["angle"] for c in analysis["angle_conventions"]] == list(ANGLE_NAMES)
    person = max(analysis["persons"], key=lambda p: p["frames_tracked"])
    assert person["angles_from"] == "world landmarks (3D)"
    knee = person["range_of_motion_deg"]["right_knee"]
    assert 0.0 <= knee["min"] < knee["max"] <= 180.0
    assert 0.3 < person["hip_speed_m_s"]["mean"] < 3.0  # walking
    # 10 frames/s: the 6 Hz cut-off is above Nyquist, said for every person.
    assert person["filtered"] == "none"
    assert "Nyquist" in person["notes"][0]
    # The video job's own summary carries the same per-person figures.
    motion = json.loads((vtest_motion / "summary.json").read_text())["motion"]
    assert motion["sample_rate_hz"] == pytest.approx(10.0)
    assert [p["id"] for p in motion["persons"]] == [p["id"] for p in analysis["persons"]]


def test_a_model_without_world_landmarks_gives_angles_in_the_picture_and_says_why_no_markers(
    cli: Callable[..., CliRun], sample: Callable[[str], Path], tmp_path: Path
) -> None:
    run = cli("image", sample("basketball1.png"), "--model", "movenet-lightning", "-o", tmp_path)
    assert run.returncode == 0, run.stderr
    exported = cli("export", tmp_path / "basketball1.pose.json", "--format", "all", "-o", tmp_path / "m")
    assert exported.returncode == 0, exported.stderr
    analysis = json.loads((tmp_path / "m" / "analysis.json").read_text())
    assert len(analysis["persons"]) == 2
    assert {p["angles_from"] for p in analysis["persons"]} == {"the picture (2D)"}
    assert any("coco-17 has no world landmarks" in note for note in analysis["notes"])
    person = tmp_path / "m" / f"person_{analysis['persons'][0]['id']}"
    assert sorted(p.name for p in person.iterdir()) == ["angles.mot", "angles.png"]


def test_nobody_gives_empty_tables_and_a_note(
    cli: Callable[..., CliRun], sample: Callable[[str], Path], tmp_path: Path
) -> None:
    from posepipe.media.decode import read_frames

    (frame,) = read_frames(sample("vtest.avi"), 100, 101)
    grass = tmp_path / "grass.png"
    cv2.imwrite(str(grass), cv2.cvtColor(frame.rgb[380:, :420], cv2.COLOR_RGB2BGR))
    assert cli("image", grass, "-o", tmp_path).returncode == 0
    run = cli("export", tmp_path / "grass.pose.json", "--format", "all", "-o", tmp_path / "m")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "m" / "keypoints.csv").read_text().count("\n") == 1  # the header only
    assert (tmp_path / "m" / "angles.csv").read_text().count("\n") == 1
    analysis = json.loads((tmp_path / "m" / "analysis.json").read_text())
    assert analysis["persons"] == []
    assert analysis["notes"] == ["nobody was found in this result: no trajectories, angles or markers"]


def test_an_unknown_format_exits_2_naming_the_known_ones(
    vtest_motion: Path, cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    run = cli("export", vtest_motion / "keypoints.json", "--format", "trc", "-o", tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "posepipe: error: unknown export format 'trc': known formats are csv, opensim, c3d, plots and all "
        "(COCO-17 keypoints: --coco)"
    )
    assert not list(tmp_path.iterdir())
