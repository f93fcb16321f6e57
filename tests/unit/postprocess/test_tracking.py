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


def test_a_walker_unseen_for_a_second_keeps_their_id_where_their_motion_puts_them(messi: Person) -> None:
    """Walking at 1.5 person sizes a second, hidden for 1.2 s: they come out 1.8 sizes from
    where they went in, far beyond a match without motion (0.5), on the line they walked."""
    tracker = PersonTracker()
    speed = 1.5 * messi.scale  # pixels a second
    first = tracker.update([_moved(messi, 0)], 0.0)[0]
    for step in range(1, 11):  # a second in view, at 10 frames a second
        assert tracker.update([_moved(messi, speed * step / 10)], step / 10)[0].id == first.id
    back = tracker.update([_moved(messi, speed * 2.2)], 2.2)[0]  # unseen from 1.0 s to 2.2 s
    assert back.id == first.id
    stranger = tracker.update([_moved(messi, speed * 2.3), _moved(messi, -speed * 2.3)], 2.3)
    assert [p.id == first.id for p in stranger] == [True, False]  # the one behind is someone else


def test_two_walkers_who_cross_keep_their_ids(messi: Person) -> None:
    """Two people walk towards each other and cross, one a little nearer the camera (0.3 sizes
    lower), listed in either order. Around the crossing each is within a match (0.5 sizes) of
    the other's last pose; the motion of each decides."""
    tracker = PersonTracker()
    speed, lane = 4.0 * messi.scale, 0.15 * messi.scale  # 0.4 sizes a frame, at 10 frames a second
    ids: tuple[int, int] | None = None
    for step in range(0, 10):
        t = (step + 0.5) / 10  # never level: on the frame after they pass, each is nearer the other
        a = _moved(messi, -2 * messi.scale + speed * t, -lane)
        b = _moved(messi, 2 * messi.scale - speed * t, lane)
        tracker.update([b, a] if step % 2 else [a, b], t)
        ids = ids or (a.id, b.id)
        assert (a.id, b.id) == ids, step


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
