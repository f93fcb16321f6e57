"""``posepipe video`` on videos as people send them: rotated, with sound, broken; and exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from posepipe.result import validate_result

from tests.support.cli import CliRun
from tests.support.clips import encode_frames, make_audio_only


def _person_frames(sample: Callable[[str], Path], count: int = 12) -> list[np.ndarray]:
    """A short 'video' of a real person: messi5.jpg drifting a few pixels a frame."""
    photo = np.asarray(Image.open(sample("messi5.jpg")).convert("RGB"))
    return [np.ascontiguousarray(np.roll(photo, 2 * i, axis=1)) for i in range(count)]


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    return encode_frames(tmp_path_factory.mktemp("clips") / "person.mp4", _person_frames(sample))


def _keypoints(out: Path, stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / stem / "keypoints.json").read_text())
    validate_result(data)
    return data


def test_rotated_phone_video_gives_upright_coordinates(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path], good_clip: Path
) -> None:
    rotated = encode_frames(tmp_path / "portrait.mp4", _person_frames(sample), rotation=90)
    run = cli("video", good_clip, rotated, "-o", tmp_path / "out", "--no-annotate")
    assert run.returncode == 0, run.stderr
    upright = _keypoints(tmp_path / "out", "person")
    turned = _keypoints(tmp_path / "out", "portrait")
    assert (turned["source"]["width"], turned["source"]["height"], turned["source"]["rotation"]) == (
        548,
        342,
        90,
    )
    for a, b in zip(upright["frames"], turned["frames"], strict=True):
        assert len(a["persons"]) == len(b["persons"]) == 1
        gap = np.linalg.norm(
            np.array(a["persons"][0]["landmarks"])[:, :2] - np.array(b["persons"][0]["landmarks"])[:, :2],
            axis=1,
        )
        assert np.median(gap) < 4.0  # same picture, re-encoded: pixel-level agreement


def test_sound_is_kept_in_the_annotated_video(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path]
) -> None:
    clip = encode_frames(tmp_path / "talk.mp4", _person_frames(sample, 20), audio=True)
    run = cli("video", clip, "-o", tmp_path / "out", "--workers", "2", "--chunk-frames", "8")
    assert run.returncode == 0, run.stderr
    with av.open(str(tmp_path / "out" / "talk" / "annotated.mp4")) as container:
        assert container.streams.audio, "audio stream dropped"
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio))
        assert abs(samples / audio.codec_context.sample_rate - 2.0) < 0.1
    with av.open(str(tmp_path / "out" / "talk" / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20


def _bad_video(kind: str, folder: Path, good: Path) -> Path:
    if kind == "missing":
        return folder / "gone.mp4"
    path = (
        folder
        / {"empty": "empty.mp4", "text": "notes.mp4", "truncated": "cut.mp4", "audio": "song.m4a"}[kind]
    )
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is a shopping list, not a video\n" * 20)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio":
        make_audio_only(path, "aac")
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "file not found"),
        ("empty", "file is empty"),
        ("text", "not a video"),
        ("truncated", "truncated or corrupt video"),
        ("audio", "no video stream (audio only)"),
    ],
)
def test_bad_video_gets_one_readable_line_exit_2_and_no_output_while_good_one_is_processed(
    tmp_path: Path, cli: Callable[..., CliRun], good_clip: Path, kind: str, reason: str
) -> None:
    bad = _bad_video(kind, tmp_path, good_clip)
    out = tmp_path / "out"
    run = cli("video", bad, good_clip, "-o", out, "--no-annotate")
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"posepipe: error: {bad}: "), lines[0]
    assert reason in lines[0], lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["person"]  # nothing for the bad one, no leftovers
    assert sorted(p.name for p in (out / "person").iterdir()) == ["keypoints.json", "summary.json"]


def test_rerun_replaces_results_whole(tmp_path: Path, cli: Callable[..., CliRun], good_clip: Path) -> None:
    for _ in range(2):
        run = cli("video", good_clip, "-o", tmp_path, "--no-annotate")
        assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["person"]


def test_coco_export_maps_blazepose_to_coco_17(
    tmp_path: Path, cli: Callable[..., CliRun], sample: Callable[[str], Path]
) -> None:
    run = cli("image", sample("basketball1.png"), "-o", tmp_path, "--no-annotate")
    assert run.returncode == 0, run.stderr
    run = cli("export", "--coco", tmp_path / "basketball1.pose.json")
    assert run.returncode == 0, run.stderr
    coco = json.loads((tmp_path / "basketball1.pose.coco.json").read_text())
    pose = json.loads((tmp_path / "basketball1.pose.json").read_text())
    (category,) = coco["categories"]
    assert category["keypoints"][:3] == ["nose", "left_eye", "right_eye"]
    assert len(category["keypoints"]) == 17
    assert len(coco["annotations"]) == 2
    for annotation, person in zip(coco["annotations"], pose["frames"][0]["persons"], strict=True):
        keypoints = np.array(annotation["keypoints"]).reshape(17, 3)
        landmarks = np.array(person["landmarks"])
        assert keypoints[0, :2] == pytest.approx(landmarks[0, :2], abs=0.01)  # nose is nose
        assert keypoints[16, :2] == pytest.approx(landmarks[28, :2], abs=0.01)  # right ankle
        assert set(keypoints[:, 2]) <= {0, 1, 2}
        assert annotation["num_keypoints"] == int((keypoints[:, 2] > 0).sum())
        assert annotation["image_id"] == coco["images"][0]["id"]


def test_export_of_something_else_is_a_clear_error(tmp_path: Path, cli: Callable[..., CliRun]) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    run = cli("export", "--coco", bogus)
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        == f"posepipe: error: {bogus}: not a posepipe result (not a posepipe.pose/2 result)"
    )


def test_smoothing_switch_and_settings(tmp_path: Path, cli: Callable[..., CliRun], good_clip: Path) -> None:
    results = {}
    for name, options in {
        "off": ["--smoothing", "off"],
        "on": [],
        "strong": ["--smoothing-min-cutoff", "0.05", "--smoothing-beta", "0"],
    }.items():
        run = cli("video", good_clip, "-o", tmp_path / name, "--no-annotate", *options)
        assert run.returncode == 0, run.stderr
        frames = _keypoints(tmp_path / name, "person")["frames"]
        results[name] = np.array([f["persons"][0]["landmarks"] for f in frames])[:, :, :2]
    # The first frame passes through; later ones follow the drifting person less closely.
    assert np.allclose(results["off"][0], results["on"][0], atol=0.01)
    drift = np.abs(results["off"] - results["off"][0]).mean()
    lag_on = np.abs(results["on"] - results["off"]).mean()
    lag_strong = np.abs(results["strong"] - results["off"]).mean()
    assert 0 < lag_on < lag_strong < drift


def test_bad_smoothing_setting_is_refused(
    tmp_path: Path, cli: Callable[..., CliRun], good_clip: Path
) -> None:
    run = cli("video", good_clip, "-o", tmp_path, "--smoothing-min-cutoff", "0")
    assert run.returncode == 2
    assert "--smoothing-min-cutoff: must be above 0, not 0" in run.stderr


def test_overlay_draws_frame_index_and_fps(
    tmp_path: Path, cli: Callable[..., CliRun], good_clip: Path
) -> None:
    corners = {}
    for name, options in {"plain": [], "overlay": ["--overlay"]}.items():
        run = cli("video", good_clip, "-o", tmp_path / name, *options)
        assert run.returncode == 0, run.stderr
        with av.open(str(tmp_path / name / "person" / "annotated.mp4")) as container:
            first = next(container.decode(video=0)).to_ndarray(format="rgb24")
        corners[name] = first[:40, :200].astype(int)
    assert np.abs(corners["overlay"] - corners["plain"]).mean() > 10
