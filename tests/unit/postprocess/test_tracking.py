"""Stable ids and One Euro smoothing, on a real pose detected in messi5.jpg."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.engines.base import PoseEngineOptions
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.media.images import load_image
from posepipe.postprocess.ids import PersonTracker, TrackerOptions
from posepipe.postprocess.smoothing import LandmarkSmoother, OneEuroFilter, SmoothingOptions
from posepipe.result import Frame, Person


@pytest.fixture(scope="module")
def messi(model_path: Path, sample: Callable[[str], Path]) -> Person:
    with MediaPipePoseEstimator(PoseEngineOptions(model_path=model_path)) as engine:
        (person,) = engine.detect(load_image(sample("messi5.jpg")).rgb)
    return person


def _moved(person: Person, dx: float, dy: float = 0.0) -> Person:
    moved = person.copy()
    moved.landmarks[:, 0] += dx
    moved.landmarks[:, 1] += dy
    moved.id = -1
    return moved


def test_ids_follow_people_who_swap_places_in_the_list(messi: Person) -> None:
    tracker = PersonTracker()
    left, right = _moved(messi, -200), _moved(messi, 200)
    tracker.update([left, right], 0.0)
    ids = (left.id, right.id)
    assert ids == (0, 1)
    for step in range(1, 20):  # both walk right; MediaPipe lists them in either order
        a, b = _moved(messi, -200 + 3 * step), _moved(messi, 200 + 3 * step)
        tracker.update([b, a] if step % 2 else [a, b], step * 0.1)
        assert (a.id, b.id) == ids


def test_new_person_gets_a_new_id_and_a_gap_longer_than_allowed_ends_a_track(messi: Person) -> None:
    tracker = PersonTracker(TrackerOptions(max_gap_s=0.5))
    first = tracker.update([_moved(messi, 0)], 0.0)[0]
    assert tracker.update([_moved(messi, 2)], 0.3)[0].id == first.id  # short gap: same person
    assert tracker.update([_moved(messi, 4)], 1.0)[0].id != first.id  # gap of 0.7 s > 0.5 s
    far = tracker.update([_moved(messi, 4), _moved(messi, 900, 900)], 1.1)
    assert len({p.id for p in far}) == 2


def test_one_euro_filter_removes_jitter_when_still_and_keeps_up_when_moving() -> None:
    # Units as the smoother uses them: person sizes. Jitter of 1 px on a 200 px person is 0.005.
    rng = np.random.default_rng(0)
    times = np.arange(300) / 30.0
    filt = OneEuroFilter(min_cutoff=1.0, beta=10.0, derivative_cutoff=1.0)
    still = np.array([filt(np.array([5.0 + rng.normal(0, 0.005)]), t)[0] for t in times])
    assert np.std(still[50:] - 5.0) < 0.5 * 0.005  # jitter at least halved
    filt = OneEuroFilter(min_cutoff=1.0, beta=10.0, derivative_cutoff=1.0)
    ramp = np.array([filt(np.array([1.0 * t]), t)[0] for t in times])  # one person size per second
    lag = 1.0 * times[-1] - ramp[-1]
    assert 0 <= lag < 0.05  # under 1/20 s behind at speed


def test_smoother_off_leaves_landmarks_unchanged_and_on_changes_them(messi: Person) -> None:
    rng = np.random.default_rng(1)
    noisy = []
    for step in range(10):
        person = _moved(messi, float(rng.normal(0, 2)))
        person.id = 0
        noisy.append(Frame(index=step, t=step / 10, persons=[person]))
    originals = [f.persons[0].landmarks.copy() for f in noisy]
    off = LandmarkSmoother(SmoothingOptions(enabled=False))
    for frame, original in zip(noisy, originals, strict=True):
        np.testing.assert_array_equal(off.update(frame).persons[0].landmarks, original)
    on = LandmarkSmoother(SmoothingOptions())
    smoothed = [on.update(f).persons[0].landmarks[:, 0].mean() for f in noisy]
    raw = [o[:, 0].mean() for o in originals]
    assert smoothed[0] == pytest.approx(raw[0])  # the first sample passes through
    assert np.std(np.diff(smoothed)) < np.std(np.diff(raw))
