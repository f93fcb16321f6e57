"""Every pose model of the catalogue (BlazePose lite, full and heavy; MoveNet Lightning and
Thunder with the default detector; MoveNet MultiPose, its own detector) runs in ``posepipe image``
and ``posepipe video`` and gives plausible skeletons in its own keypoint set; the detectors are
refused as pose models with a message that names those, and MultiPose with another detector."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posepipe.assets.catalogue import CATALOGUE, pose_model_names
from posepipe.export.coco import to_coco
from posepipe.media.decode import read_frames
from posepipe.result import validate_result

from tests.support.cli import CliRun, load_run
from tests.support.clips import encode_frames

MODELS = pose_model_names()
KEYPOINTS = {name: CATALOGUE[name].keypoints for name in MODELS}


def _point(result: dict[str, Any], person: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray(person["landmarks"][result["landmark_names"].index(name)][:2], dtype=float)


def _plausible(result: dict[str, Any], person: dict[str, Any]) -> None:
    """Nose above the hips, hips above the ankles, each wrist within an arm's reach of its shoulder."""

    def point(name: str) -> np.ndarray:
        return _point(result, person, name)

    nose = point("nose")
    hips = (point("left_hip") + point("right_hip")) / 2
    shoulders = (point("left_shoulder") + point("right_shoulder")) / 2
    ankles = (point("left_ankle") + point("right_ankle")) / 2
    assert nose[1] < shoulders[1] < hips[1] < ankles[1]
    torso = float(np.linalg.norm(hips - shoulders))
    for side in ("left", "right"):
        reach = float(np.linalg.norm(point(f"{side}_wrist") - point(f"{side}_shoulder")))
        assert reach <= 1.5 * torso, (side, reach, torso)


def test_the_pose_models_are_blazepose_and_movenet() -> None:
    assert KEYPOINTS == {
        "blazepose-lite": 33,
        "blazepose-full": 33,
        "blazepose-heavy": 33,
        "movenet-lightning": 17,
        "movenet-thunder": 17,
        "movenet-multipose": 17,
    }


@pytest.mark.parametrize("model", MODELS)
def test_each_model_runs_on_the_sample_photos(
    model: str, catalogue_models: dict[str, Path], cli: Callable[..., CliRun], sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    photos = [sample("messi5.jpg"), sample("basketball1.png")]
    run = cli("image", *photos, "--model", model, "-o", tmp_path)
    assert run.returncode == 0, run.stderr
    messi = json.loads((tmp_path / "messi5.pose.json").read_text())
    validate_result(messi)
    assert messi["model"]["path"] == str(catalogue_models[model])
    assert messi["model"]["sha256"] == CATALOGUE[model].sha256
    assert len(messi["landmark_names"]) == KEYPOINTS[model]
    (person,) = messi["frames"][0]["persons"]
    assert len(person["landmarks"]) == KEYPOINTS[model]
    assert ("world_landmarks" in person) == (KEYPOINTS[model] == 33)  # MoveNet gives none
    _plausible(messi, person)
    players = json.loads((tmp_path / "basketball1.pose.json").read_text())["frames"][0]["persons"]
    assert len(players) == 2
    # COCO's 17 keypoints from either keypoint set, the footballer's wrists where his are.
    (annotation,) = to_coco(messi)["annotations"]
    keypoints = np.asarray(annotation["keypoints"], dtype=float).reshape(17, 3)
    wrist = _point(messi, person, "left_wrist")
    assert np.allclose(keypoints[9, :2], wrist, atol=0.01)
    assert annotation["num_keypoints"] >= 15
    assert (tmp_path / "messi5.annotated.jpg").stat().st_size > 0


@pytest.fixture(scope="module")
def walkers_clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    """Frames 40-99 of vtest.avi (people walking across the car park; BlazePose's detector picks
    up the nearest one at about frame 54) as H.264."""
    pictures = [f.rgb for f in read_frames(sample("vtest.avi"), 40, 100)]
    return encode_frames(tmp_path_factory.mktemp("walkers") / "walkers.mp4", pictures)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_runs_on_a_video(
    model: str, catalogue_models: dict[str, Path], cli: Callable[..., CliRun], walkers_clip: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    run = cli("video", walkers_clip, "--model", model, "-o", tmp_path, "--no-progress")
    assert run.returncode == 0, run.stderr
    result = load_run(tmp_path / "walkers")
    assert result.summary["frames"] == 60
    keypoints = result.keypoints
    validate_result(keypoints)
    assert keypoints["model"]["sha256"] == CATALOGUE[model].sha256
    assert len(keypoints["landmark_names"]) == KEYPOINTS[model]
    persons = [p for frame in keypoints["frames"] for p in frame["persons"]]
    assert len(persons) >= 4 * 60  # the four or five people in view, through most of the clip
    upright = sum(_point(keypoints, p, "nose")[1] < _point(keypoints, p, "left_hip")[1] for p in persons)
    assert upright >= 0.9 * len(persons)
    assert (tmp_path / "walkers" / "annotated.mp4").stat().st_size > 0


def test_a_detector_is_refused_as_a_pose_model_clearly(
    catalogue_models: dict[str, Path],
    cli: Callable[..., CliRun],
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    run = cli("image", sample("messi5.jpg"), "--model", "centernet", "-o", tmp_path)
    assert run.returncode == 2
    assert "model centernet is a person detector, not a pose model" in run.stderr
    assert (
        "blazepose-lite, blazepose-full, blazepose-heavy, movenet-lightning, movenet-thunder, "
        "movenet-multipose" in run.stderr
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["image", "video"])
def test_movenet_with_blazeposes_own_detector_is_refused_clearly(
    command: str,
    catalogue_models: dict[str, Path],
    cli: Callable[..., CliRun],
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    media = sample("messi5.jpg" if command == "image" else "vtest.avi")
    run = cli(command, media, "--model", "movenet-lightning", "--detector", "blazepose", "-o", tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        "posepipe: error: model movenet-lightning runs in the top-down engine, with --detector "
        "centernet (the default), not with BlazePose's own detector"
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--model", "movenet-multipose", "--detector", "centernet"],
            "model movenet-multipose finds persons itself: it takes no detector (centernet)",
        ),
        (
            ["--model", "blazepose-full", "--detector", "movenet-multipose"],
            "detector movenet-multipose is the model movenet-multipose's own: choose that model",
        ),
    ],
)
def test_multipose_runs_with_its_own_detector_only(
    options: list[str],
    message: str,
    catalogue_models: dict[str, Path],
    cli: Callable[..., CliRun],
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    run = cli("image", sample("messi5.jpg"), *options, "-o", tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == f"posepipe: error: {message}"
    assert not list(tmp_path.iterdir())
