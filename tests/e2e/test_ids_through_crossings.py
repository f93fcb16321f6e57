"""Ids through a crossing and a one-second gap: ``posepipe video`` with its defaults on a clip
composed from two real photographed people (tests/support/crossing.py) who walk across each
other, one of them then hidden behind a column for a second."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from posepipe.engines.topdown.person_boxes import box_iou

from tests.support.cli import load_run, run_cli
from tests.support.crossing import FPS, Walker, make_crossing_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]
) -> tuple[Path, list[Walker]]:
    folder = tmp_path_factory.mktemp("crossing")
    path = folder / "crossing.mp4"
    walkers = make_crossing_clip(path, sample("messi5.jpg").parent)
    return path, walkers


def _ids_by_walker(out: Path, walkers: list[Walker]) -> dict[str, dict[int, int]]:
    """For each person of the clip, the id of the person posepipe found on them, frame by frame
    (where one overlaps their box by IoU at least 0.5)."""
    frames = load_run(out).keypoints["frames"]
    assert len(frames) == len(walkers[0].boxes)
    found: dict[str, dict[int, int]] = {walker.name: {} for walker in walkers}
    for frame in frames:
        for walker in walkers:
            box = walker.boxes[frame["index"]]
            overlaps = [(box_iou(tuple(p["bbox"]), box), p["id"]) for p in frame["persons"]]
            best = max(overlaps, default=(0.0, -1))
            if best[0] >= 0.5:
                found[walker.name][frame["index"]] = best[1]
    return found


def test_the_clip_has_a_crossing_and_a_one_second_gap(clip: tuple[Path, list[Walker]]) -> None:
    _, (a, b) = clip
    overlapping = [f for f in range(len(a.boxes)) if box_iou(a.boxes[f], b.boxes[f]) > 0]
    assert len(overlapping) >= 10  # they walk across each other
    hidden = [f for f, shown in enumerate(a.shown) if shown == 0.0]
    assert len(hidden) >= FPS
    assert hidden == list(range(hidden[0], hidden[0] + len(hidden)))


@pytest.mark.parametrize("chunking", [[], ["--chunk-frames", "40"]], ids=["one-chunk", "four-chunks"])
def test_each_person_keeps_their_id_through_the_crossing_and_the_gap(
    chunking: list[str], clip: tuple[Path, list[Walker]], tmp_path: Path
) -> None:
    path, walkers = clip
    done = run_cli("video", path, "-o", tmp_path, "--no-annotate", "--no-progress", *chunking)
    assert done.returncode == 0, done.stderr
    found = _ids_by_walker(tmp_path / "crossing", walkers)
    a, b = walkers
    for walker in walkers:
        in_view = [f for f, shown in enumerate(walker.shown) if shown >= 0.9]
        assert len(found[walker.name]) >= 0.85 * len(in_view), walker.name  # found while in view
        assert len(set(found[walker.name].values())) == 1, (walker.name, found[walker.name])
    assert set(found["A"].values()) != set(found["B"].values())
    hidden = [f for f, shown in enumerate(a.shown) if shown == 0.0]
    # A is found before the crossing, between it and the column, and after the column.
    crossing = [f for f in range(len(a.boxes)) if box_iou(a.boxes[f], b.boxes[f]) > 0]
    assert any(f < crossing[0] for f in found["A"])
    assert any(crossing[-1] < f < hidden[0] for f in found["A"])
    assert any(f > hidden[-1] for f in found["A"])
