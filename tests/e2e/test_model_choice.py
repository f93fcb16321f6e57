"""Every pose model of the catalogue that the engines run (the MediaPipe bundles, for now) runs in
``posepipe image`` and ``posepipe video`` and gives plausible skeletons; the others are refused
with a message that names those."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.assets.catalogue import CATALOGUE
from posepipe.media.decode import read_frames
from posepipe.skeleton import LANDMARK_INDEX

from tests.support.cli import CliRun, load_run
from tests.support.clips import encode_frames

MODELS = [name for name, spec in CATALOGUE.items() if spec.file_name.endswith(".task")]


def _point(person: dict[str, list[list[float]]], name: str) -> np.ndarray:
    return np.asarray(person["landmarks"][LANDMARK_INDEX[name]][:2], dtype=float)


def _plausible(person: dict[str, list[list[float]]]) -> None:
    """Nose above the hips, hips above the ankles, each wrist within an arm's reach of its shoulder."""
    nose = _point(person, "nose")
    hips = (_point(person, "left_hip") + _point(person, "right_hip")) / 2
    shoulders = (_point(person, "left_shoulder") + _point(person, "right_shoulder")) / 2
    ankles = (_point(person, "left_ankle") + _point(person, "right_ankle")) / 2
    assert nose[1] < shoulders[1] < hips[1] < ankles[1]
    torso = float(np.linalg.norm(hips - shoulders))
    for side in ("left", "right"):
        reach = float(np.linalg.norm(_point(person, f"{side}_wrist") - _point(person, f"{side}_shoulder")))
        assert reach <= 1.5 * torso, (side, reach, torso)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_runs_on_the_sample_photos(
    model: str, catalogue_models: dict[str, Path], cli: Callable[..., CliRun], sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:  # fmt: skip
    photos = [sample("messi5.jpg"), sample("basketball1.png")]
    run = cli("image", *photos, "--model", model, "-o", tmp_path)
    assert run.returncode == 0, run.stderr
    messi = json.loads((tmp_path / "messi5.pose.json").read_text())
    assert messi["model"]["path"] == str(catalogue_models[model])
    assert messi["model"]["sha256"] == CATALOGUE[model].sha256
    (person,) = messi["frames"][0]["persons"]
    _plausible(person)
    players = json.loads((tmp_path / "basketball1.pose.json").read_text())["frames"][0]["persons"]
    assert len(players) == 2
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
    assert result.keypoints["model"]["sha256"] == CATALOGUE[model].sha256
    persons = [p for frame in result.keypoints["frames"] for p in frame["persons"]]
    assert len(persons) >= 30  # someone is tracked through most of the clip
    upright = sum(_point(p, "nose")[1] < _point(p, "left_hip")[1] for p in persons)
    assert upright >= 0.9 * len(persons)
    assert (tmp_path / "walkers" / "annotated.mp4").stat().st_size > 0


def test_a_network_the_engines_cannot_run_yet_is_refused_clearly(
    catalogue_models: dict[str, Path],
    cli: Callable[..., CliRun],
    sample: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    run = cli("image", sample("messi5.jpg"), "--model", "centernet", "-o", tmp_path)
    assert run.returncode == 2
    assert "model centernet (detector) is not a MediaPipe bundle" in run.stderr
    assert "blazepose-lite, blazepose-full, blazepose-heavy" in run.stderr
    assert not list(tmp_path.iterdir())
