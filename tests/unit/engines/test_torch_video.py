"""VIDEO mode (tracking) of the torch engine: its rules by hand, then parity with MediaPipe.

The parity tests run the whole torch engine (the pipeline and the PORTED networks, fp32 on the
CPU) against posepipe's MediaPipe engine in VIDEO mode on the first 300 frames of vtest.avi.

BlazePose tracking is chaotic: each frame's region comes from the previous frame's landmarks,
and the landmark model is far from smooth in its crop (MediaPipe's 8-bit crop rounds sample
positions to 1/32 pixel). Moving a tracked region by 1e-6 of the frame width (under a
thousandth of a pixel) changes the landmarks of the following frames by tenths of a pixel, and
moving it by a tenth of a pixel can decide whether vtest.avi's far pedestrian is kept or lost.
An engine that is not bit-exact with MediaPipe's (XNNPACK's kernels, the ported networks' fp32
arithmetic, both chosen by the CPU's instruction set) follows MediaPipe's tracks only that
closely, and through such an event by chance: on an AVX-512 EPYC the torch engine dropped the
far pedestrian at frame 163 as MediaPipe does (299 of 300 frames with the same persons); on an
AVX2-only EPYC "Milan" it kept it (163 of 300).

So the tests assert what holds on any CPU that computes correctly:

- up to the first frame where the engines disagree on who is there, the persons are the same
  and their landmarks agree within the issue's bounds (median 1 px, p95 3 px, world 1 cm);
- the disagreement's cause is the tracking's own sensitivity: moving the torch engine's carried
  regions by random offsets no larger than the landmark differences measured before it (tenths
  of a pixel) makes the torch engine decide as MediaPipe did, on that very frame;
- over the whole run, a person both engines track has the same landmarks within those bounds.

Where there is no chaos yet (a region straight from the detector, and the frame tracked from
it), the smoothing is compared directly, on a panned photo.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from posepipe.engines.base import PoseEngineOptions, RunningMode
from posepipe.engines.mediapipe import MediaPipePoseEstimator
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.mediapipe_filters import MediaPipeLowPassFilter, MediaPipeOneEuroFilter
from posepipe.engines.torch.networks import load_networks
from posepipe.engines.torch.video_tracking import (
    VideoRegionTracker,
    associate,
    detect_for_video_batch,
    rect_iou,
)
from posepipe.media.decode import VideoFrame, read_frames
from posepipe.media.images import load_image
from posepipe.result import Person

pytestmark = pytest.mark.torch

PARITY_FRAMES = 300


def ms(t: float) -> int:
    """A frame's timestamp as posepipe's stages hand it to the engine."""
    return round(t * 1000)


# -- filters -------------------------------------------------------------------------------------


def test_low_pass_filter() -> None:
    f = MediaPipeLowPassFilter(0.1)
    assert f.apply(np.array([10.0, 20.0])).tolist() == [10.0, 20.0]  # the first value passes
    assert f.apply(np.array([0.0, 0.0])).tolist() == pytest.approx([9.0, 18.0])
    assert f.raw is not None
    assert f.raw.tolist() == [0.0, 0.0]
    # An alpha outside [0, 1] is ignored (SetAlpha logs and keeps the previous one).
    assert f.apply_with_alpha(np.array([0.0, 0.0]), np.array([1.5, 0.5])).tolist() == pytest.approx(
        [8.1, 9.0]
    )


def test_one_euro_filter_follows_mediapipe() -> None:
    def alpha(cutoff: float, frequency: float) -> float:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau * frequency)

    f = MediaPipeOneEuroFilter(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
    # First value: through. The timestamp 0 does not set the frequency.
    assert f.apply(0, np.array([100.0]), 0.01).tolist() == [100.0]
    # Second value: dt is unknown after a timestamp of 0, so 30 Hz stands.
    second = f.apply(100_000_000, np.array([110.0]), 0.01)
    d = (110.0 - 100.0) * 0.01 * 30.0
    ed = alpha(1.0, 30.0) * d  # the derivative's low-pass starts from 0
    a = alpha(float(np.float32(0.05)) + 80.0 * ed, 30.0)
    assert second.tolist() == pytest.approx([a * 110.0 + (1 - a) * 100.0], rel=1e-6)
    # Third value: 1 / dt = 10 Hz from here on.
    third = f.apply(200_000_000, np.array([110.0]), 0.01)
    d3 = (110.0 - 110.0) * 0.01 * 10.0
    ed3 = alpha(1.0, 10.0) * d3 + (1 - alpha(1.0, 10.0)) * ed
    a3 = alpha(float(np.float32(0.05)) + 80.0 * ed3, 10.0)
    assert third.tolist() == pytest.approx([a3 * 110.0 + (1 - a3) * second[0]], rel=1e-5)
    # A timestamp that does not increase gives the value back, untouched, and changes nothing.
    assert f.apply(200_000_000, np.array([500.0]), 0.01).tolist() == [500.0]
    assert f.x.raw is not None
    assert f.x.raw.tolist() == [110.0]


# -- association ---------------------------------------------------------------------------------


def rect(x: float, y: float, w: float, h: float, rotation: float = 0.0) -> np.ndarray:
    return np.array([x, y, w, h, rotation], dtype=np.float32)


def stack(*rects: np.ndarray) -> np.ndarray:
    return np.stack(rects) if rects else np.zeros((0, 5), dtype=np.float32)


def test_iou_ignores_rotation_and_is_axis_aligned() -> None:
    a = rect(0.5, 0.5, 0.375, 0.375)
    b = rect(0.625, 0.5, 0.375, 0.375)  # two thirds of the width overlap: IoU exactly 0.5
    assert rect_iou(a, b) == 0.5
    assert rect_iou(a, rect(0.625, 0.5, 0.375, 0.375, rotation=1.0)) == 0.5
    assert rect_iou(a, rect(0.9, 0.5, 0.1, 0.1)) == 0.0
    assert rect_iou(a, a) == 1.0


def test_association_rules() -> None:
    tracked_a = rect(0.2, 0.5, 0.2, 0.3)
    tracked_b = rect(0.7, 0.5, 0.2, 0.3)
    near_a = rect(0.21, 0.5, 0.2, 0.3)  # overlaps tracked_a well beyond 0.5
    new = rect(0.45, 0.2, 0.1, 0.1)
    # A detection replaces the tracked rect it overlaps, and goes to the end.
    out = associate(stack(tracked_a, tracked_b), stack(near_a, new), max_poses=4)
    assert out.tolist() == stack(tracked_b, near_a, new).tolist()
    # Clipped to max_poses in that order.
    assert associate(stack(tracked_a, tracked_b), stack(near_a, new), max_poses=2).tolist() == [
        tracked_b.tolist(),
        near_a.tolist(),
    ]
    # Carried rects are de-duplicated among themselves (the later one stays), and so are detections.
    assert associate(stack(tracked_a, near_a), stack(), max_poses=4).tolist() == [near_a.tolist()]
    assert associate(stack(), stack(tracked_a, near_a, new), max_poses=4).tolist() == [
        near_a.tolist(),
        new.tolist(),
    ]
    # The threshold is strict: an IoU of exactly 0.5 is not an overlap.
    a, b = rect(0.5, 0.5, 0.375, 0.375), rect(0.625, 0.5, 0.375, 0.375)
    assert len(associate(stack(a), stack(b), max_poses=4)) == 2
    assert len(associate(stack(a), stack(b), max_poses=4, threshold=0.49)) == 1
    assert associate(stack(), stack(), max_poses=1).shape == (0, 5)


# -- the engine ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ported_engine(model_path: Path) -> TorchBlazePose:
    detector, landmarks = load_networks(model_path)
    return TorchBlazePose(detector, landmarks, "cpu")


@pytest.fixture(scope="module")
def vtest(sample: Callable[[str], Path]) -> Path:
    return sample("vtest.avi")


def test_tracker_validates_its_options(ported_engine: TorchBlazePose) -> None:
    with pytest.raises(ValueError, match="max_poses"):
        VideoRegionTracker(ported_engine, max_poses=0)
    with pytest.raises(ValueError, match="min_tracking_confidence"):
        VideoRegionTracker(ported_engine, max_poses=1, min_tracking_confidence=1.5)


def test_batch_arguments(ported_engine: TorchBlazePose) -> None:
    tracker = VideoRegionTracker(ported_engine, max_poses=2)
    blank = np.zeros((64, 80, 3), dtype=np.uint8)
    assert detect_for_video_batch([], [], []) == []
    with pytest.raises(ValueError, match="one frame and one timestamp per tracker"):
        detect_for_video_batch([tracker], [blank, blank], [0, 0])
    with pytest.raises(ValueError, match="only one frame per batch"):
        detect_for_video_batch([tracker, tracker], [blank, blank], [0, 0])
    other = TorchBlazePose(ported_engine.person_detector.network, ported_engine.landmark_model.network, "cpu")
    with pytest.raises(ValueError, match="share one TorchBlazePose"):
        detect_for_video_batch([tracker, VideoRegionTracker(other, max_poses=2)], [blank, blank], [0, 0])
    assert detect_for_video_batch([tracker], [blank], [0]) == [[]]


# -- parity with MediaPipe on vtest.avi ----------------------------------------------------------


@dataclass(frozen=True)
class TrackerState:
    """What a :class:`VideoRegionTracker` carries from one frame to the next (its regions, last timestamp
    and filters), to start a tracker again just before a given frame."""

    rects: np.ndarray
    last_timestamp_ms: int
    smoother: Any

    @classmethod
    def of(cls, tracker: VideoRegionTracker) -> TrackerState:
        return cls(tracker.tracked_rects, tracker._last_timestamp_ms, copy.deepcopy(tracker._smoother))

    def tracker(self, engine: TorchBlazePose, max_poses: int) -> VideoRegionTracker:
        tracker = VideoRegionTracker(engine, max_poses=max_poses)
        tracker._rects = self.rects.copy()
        tracker._last_timestamp_ms = self.last_timestamp_ms
        tracker._smoother = copy.deepcopy(self.smoother)
        return tracker


@dataclass
class ParityRun:
    max_poses: int
    reference: list[list[Person]]
    torch: list[list[Person]]
    states: list[TrackerState]  # the torch tracker's state before each frame

    @property
    def first_disagreement(self) -> int:
        """The first frame where the engines disagree on who is there (or the run's length): a
        different number of persons, or a person of one engine that the other does not have."""
        frames = zip(self.reference, self.torch, strict=True)
        return next((k for k, (a, b) in enumerate(frames) if not same_persons(a, b)), len(self.reference))


@pytest.fixture(scope="module")
def vtest_runs(vtest: Path, model_path: Path, ported_engine: TorchBlazePose) -> Callable[[int], ParityRun]:
    """Both engines in VIDEO mode over the first frames of vtest.avi, once per ``max_poses``."""
    runs: dict[int, ParityRun] = {}

    def run(max_poses: int) -> ParityRun:
        if max_poses not in runs:
            options = PoseEngineOptions(
                model_path=model_path, running_mode=RunningMode.VIDEO, max_poses=max_poses
            )
            # One engine after the other: interleaved, MediaPipe's and torch's worker threads fight
            # over the cores (ten times slower on two).
            with MediaPipePoseEstimator(options) as engine:
                reference = [
                    engine.detect_for_video(f.rgb, ms(f.t)) for f in read_frames(vtest, 0, PARITY_FRAMES)
                ]
            tracker = VideoRegionTracker(ported_engine, max_poses=max_poses)
            persons, states = [], []
            for f in read_frames(vtest, 0, PARITY_FRAMES):
                states.append(TrackerState.of(tracker))
                persons.append(tracker.detect_for_video(f.rgb, ms(f.t)))
            runs[max_poses] = ParityRun(max_poses, reference, persons, states)
        return runs[max_poses]

    return run


@dataclass
class Figures:
    frames: int
    same_count: int
    person_frames: int
    unmatched: int
    median_px: float
    p95_px: float
    world_median_cm: float

    def __str__(self) -> str:
        return (
            f"{self.same_count}/{self.frames} frames with the same number of persons "
            f"({100 * self.same_count / self.frames:.1f}%), {self.person_frames} matched person-frames "
            f"({self.unmatched} unmatched): median {self.median_px:.3f} px, p95 {self.p95_px:.3f} px, "
            f"world median {self.world_median_cm:.3f} cm"
        )


def keypoint_distance(a: Person, b: Person) -> float:
    """The median distance between the two persons' landmarks, in units of ``a``'s size (the
    longer side of its box). On vtest.avi: at most 0.02 for one person as the two engines see
    them; 0.15 and more for two people walking side by side (and 0.05 for the duplicate track
    MediaPipe itself keeps of one person on frame 80)."""
    x0, y0, x1, y1 = a.bbox
    size = max(x1 - x0, y1 - y0, 1.0)
    return float(np.median(np.linalg.norm(a.xy - b.xy, axis=1)) / size)


def matched_pairs(reference: list[Person], persons: list[Person]) -> list[tuple[Person, Person]]:
    """Each reference person with the torch person that is the same person: the nearest landmarks,
    closer than a tenth of the person's size, each torch person used once. (Box overlap is no test
    of identity here: the box of a walker seen side-on is a few pixels wide, and a pixel of
    difference takes its overlap under a half.)"""
    candidates = sorted(
        (keypoint_distance(r, p), i, j) for i, r in enumerate(reference) for j, p in enumerate(persons)
    )
    used_r: set[int] = set()
    used_p: set[int] = set()
    pairs = []
    for distance, i, j in candidates:
        if distance < 0.1 and i not in used_r and j not in used_p:
            used_r.add(i)
            used_p.add(j)
            pairs.append((reference[i], persons[j]))
    return pairs


def same_persons(reference: list[Person], persons: list[Person]) -> bool:
    """Both engines found the same persons: as many, each matched to one of the other's."""
    return len(reference) == len(persons) == len(matched_pairs(reference, persons))


def figures(reference: list[list[Person]], persons: list[list[Person]]) -> Figures:
    """Person counts per frame, and landmark distances of the persons both engines found."""
    distances, world, unmatched = [], [], 0
    for ref_frame, frame in zip(reference, persons, strict=True):
        pairs = matched_pairs(ref_frame, frame)
        unmatched += len(ref_frame) + len(frame) - 2 * len(pairs)
        for ref, ours in pairs:
            distances.append(np.linalg.norm(ref.xy - ours.xy, axis=1))
            world.append(np.linalg.norm(ref.world_landmarks - ours.world_landmarks, axis=1))
    d = np.concatenate(distances) if distances else np.zeros(1)
    w = np.concatenate(world) if world else np.zeros(1)
    return Figures(
        frames=len(reference),
        same_count=sum(len(a) == len(b) for a, b in zip(reference, persons, strict=True)),
        person_frames=len(distances),
        unmatched=unmatched,
        median_px=float(np.median(d)),
        p95_px=float(np.percentile(d, 95)),
        world_median_cm=float(np.median(w) * 100),
    )


def assert_close(result: Figures) -> None:
    """The issue's bounds on the landmarks of persons both engines found."""
    assert result.median_px <= 1.0
    assert result.p95_px <= 3.0
    assert result.world_median_cm <= 1.0


def chaos_floor(
    run: ParityRun, engine: TorchBlazePose, vtest: Path, stop: int, nudge: float = 1e-6
) -> Figures:
    """The torch engine against itself with its carried regions moved by ``nudge`` of the frame
    (under a thousandth of a pixel, random signs) before every frame of ``[0, stop)``: how far
    the tracking's own sensitivity takes two runs apart that differ only by rounding."""
    rng = np.random.default_rng(0)
    tracker = VideoRegionTracker(engine, max_poses=run.max_poses)
    nudged = []
    for frame in read_frames(vtest, 0, stop):
        signs = rng.choice([-1.0, 1.0], size=tracker._rects[:, :2].shape)
        tracker._rects[:, :2] += (signs * nudge).astype(np.float32)
        nudged.append(tracker.detect_for_video(frame.rgb, ms(frame.t)))
    return figures(run.torch[:stop], nudged)


def nudged_decisions(
    run: ParityRun, engine: TorchBlazePose, frame: VideoFrame, scales_px: Sequence[float], trials: int = 8
) -> list[list[Person]]:
    """The torch engine's persons on ``frame`` when its carried regions are moved by random
    offsets (centre and size, normal with each standard deviation in ``scales_px``, in pixels)."""
    state = run.states[frame.index]
    height, width = frame.rgb.shape[:2]
    rng = np.random.default_rng(frame.index)
    decisions = []
    for scale in scales_px:
        for _ in range(trials):
            tracker = state.tracker(engine, run.max_poses)
            offsets = rng.normal(scale=scale, size=(len(state.rects), 4)) / [width, height, width, height]
            tracker._rects[:, :4] += offsets.astype(np.float32)
            decisions.append(tracker.detect_for_video(frame.rgb, ms(frame.t)))
    return decisions


def assert_parting_explained(run: ParityRun, engine: TorchBlazePose, vtest: Path, before: Figures) -> None:
    """Where the engines first disagree on who is there, the torch engine, its carried regions
    moved by no more than the engines already differ by, decides as MediaPipe did on that frame:
    the parting is the tracking's sensitivity to rounding, not a rule the port lacks."""
    part = run.first_disagreement
    if part == len(run.reference):
        return
    frame = next(read_frames(vtest, part, part + 1))
    expected = run.reference[part]
    scales = (before.median_px, (before.median_px + before.p95_px) / 2, before.p95_px)
    decisions = nudged_decisions(run, engine, frame, scales)
    agreeing = [same_persons(expected, decided) for decided in decisions]
    print(
        f"  frame {part}: MediaPipe {len(expected)} persons, torch {len(run.torch[part])}; torch with its "
        f"regions moved by {', '.join(f'{s:.2f}' for s in scales)} px: persons "
        f"{[len(d) for d in decisions]}, MediaPipe's in {sum(agreeing)} of {len(agreeing)}"
    )
    assert any(agreeing)


def assert_within_chaos(versus_mediapipe: Figures, floor: Figures) -> None:
    """Pixel bounds outright; and each figure no further from MediaPipe than the tracking's own
    sensitivity takes the torch engine from itself (world landmarks of a far, small person move
    by centimetres with the crop: the issue's 1 cm holds where regions come from the detector)."""
    assert versus_mediapipe.median_px <= 1.0
    assert versus_mediapipe.p95_px <= 3.0
    assert versus_mediapipe.median_px <= 1.5 * floor.median_px
    assert versus_mediapipe.p95_px <= 1.5 * floor.p95_px
    assert versus_mediapipe.world_median_cm <= max(1.0, 1.5 * floor.world_median_cm)


def test_parity_with_mediapipe_video_mode(
    vtest: Path, ported_engine: TorchBlazePose, vtest_runs: Callable[[int], ParityRun]
) -> None:
    """posepipe's default, ``max_poses=4``: the same persons with the same landmarks until the
    tracks part, a parting the tracking's own sensitivity explains, and the same landmarks
    wherever both engines track a person."""
    max_poses = PoseEngineOptions.max_poses
    run = vtest_runs(max_poses)
    assert all(p.id == -1 for frame in run.torch for p in frame)
    assert all(
        p.landmarks.dtype == np.float32 and p.landmarks.shape == (33, 5) for frame in run.torch for p in frame
    )
    part = run.first_disagreement
    before = figures(run.reference[:part], run.torch[:part])
    floor = chaos_floor(run, ported_engine, vtest, part)
    overall = figures(run.reference, run.torch)
    print(f"vtest.avi, max_poses={max_poses}, frames 0-{part - 1} (until the tracks part): {before}")
    print(f"  torch vs torch with its regions nudged by 1e-6: {floor}")
    print(f"  all {len(run.reference)} frames: {overall}")

    # Until the tracks part (frames 163 to 167 on AVX2 EPYCs, 70 with oneDNN held to SSE4.1): the
    # same persons, as close as the tracking's own chaos allows; then a parting that chaos explains.
    assert before.person_frames > 0  # the first person appears at frame 55, found by both
    assert_within_chaos(before, floor)
    assert_parting_explained(run, ported_engine, vtest, before)

    # Wherever both engines track a person, over the whole run, its landmarks agree as closely.
    assert overall.person_frames >= 200  # of the 243 person-frames MediaPipe gives
    assert overall.median_px <= 1.0
    assert overall.p95_px <= 3.0


def test_smoothed_tracking_is_as_close_to_mediapipe_as_its_own_chaos_allows(
    vtest: Path, ported_engine: TorchBlazePose, vtest_runs: Callable[[int], ParityRun]
) -> None:
    """``max_poses=1`` (smoothing on) up to where the engines first disagree on who is there.

    The detector runs only when nobody is tracked, so every frame's region comes from the last
    one's landmarks, through the smoothing: there the pixel bounds hold, and every figure is
    within what the torch engine itself gives when its tracked region is nudged by 1e-6 of the
    frame: the difference from MediaPipe is the tracking's own sensitivity, not a rule of the
    pipeline.
    """
    run = vtest_runs(1)
    part = run.first_disagreement
    versus_mediapipe = figures(run.reference[:part], run.torch[:part])
    floor = chaos_floor(run, ported_engine, vtest, part)
    print(f"vtest.avi, max_poses=1, frames 0-{part - 1}: torch vs MediaPipe: {versus_mediapipe}")
    print(f"  torch vs torch with its region nudged by 1e-6: {floor}")

    assert versus_mediapipe.person_frames > 0  # smoothed tracking from frame 55
    assert_within_chaos(versus_mediapipe, floor)
    assert_parting_explained(run, ported_engine, vtest, versus_mediapipe)


# -- smoothing on a panned photo -----------------------------------------------------------------


def panned(rgb: np.ndarray, count: int, blank: range) -> Iterator[np.ndarray]:
    """The photo moving about a larger black frame (several pixels a frame); ``blank`` frames are empty."""
    height, width = rgb.shape[:2]
    for k in range(count):
        canvas = np.zeros((height + 60, width + 80, 3), dtype=np.uint8)
        if k not in blank:
            dx = round(40 + 35 * np.sin(k / 4))
            dy = round(30 + 25 * np.cos(k / 5))
            canvas[dy : dy + height, dx : dx + width] = rgb
        yield canvas


def test_smoothing_semantics_on_a_panned_photo(
    sample: Callable[[str], Path], model_path: Path, ported_engine: TorchBlazePose
) -> None:
    """The One Euro start at t = 0; after frames without anyone, a reset landmark filter and kept others.

    Frames 0 and 6 start a track from the detector (an exact region) and frames 1 and 7 follow it:
    chaos has not built up there, so those frames show the smoothing itself (on frames 2 and 8
    the regions have moved apart by tenths of a pixel, how far depending on the CPU's rounding,
    and only the visibility, which the regions barely move, is compared). MediaPipe smooths
    frame 1 at 30 Hz (a new filter's last timestamp is -1, so t = 0 counts as a first value) and
    starts the landmarks afresh at frame 6, while the visibility and world landmark filters,
    which do not run on frames without landmarks, keep their state over the gap.
    """
    frames = list(panned(load_image(sample("messi5.jpg")).rgb, 9, blank=range(3, 6)))
    stamps = [100 * k for k in range(len(frames))]
    options = PoseEngineOptions(model_path=model_path, running_mode=RunningMode.VIDEO, max_poses=1)
    with MediaPipePoseEstimator(options) as engine:
        reference = [engine.detect_for_video(f, t) for f, t in zip(frames, stamps, strict=True)]
    tracker = VideoRegionTracker(ported_engine, max_poses=1)
    persons = [tracker.detect_for_video(f, t) for f, t in zip(frames, stamps, strict=True)]
    unsmoothed = VideoRegionTracker(ported_engine, max_poses=1)
    unsmoothed._smoother = None
    raw = [unsmoothed.detect_for_video(f, t) for f, t in zip(frames, stamps, strict=True)]
    assert [len(p) for p in reference] == [len(p) for p in persons] == [1, 1, 1, 0, 0, 0, 1, 1, 1]

    for k in (0, 1, 6, 7):
        distance = np.linalg.norm(reference[k][0].xy - persons[k][0].xy, axis=1)
        raw_distance = np.linalg.norm(reference[k][0].xy - raw[k][0].xy, axis=1)
        print(f"frame {k}: median {np.median(distance):.3f} px (unsmoothed {np.median(raw_distance):.3f} px)")
        assert np.median(distance) <= 0.25
        if k in (1, 7):  # the photo moved ~9 px; MediaPipe's output lags behind it, and so does ours
            assert np.median(raw_distance) >= 1.0
    for k in (0, 1, 2, 6, 7, 8):
        visibility = np.abs(reference[k][0].visibility - persons[k][0].visibility).max()
        world = np.linalg.norm(reference[k][0].world_landmarks - persons[k][0].world_landmarks, axis=1)
        raw_world = np.linalg.norm(reference[k][0].world_landmarks - raw[k][0].world_landmarks, axis=1)
        print(
            f"frame {k}: visibility within {visibility:.4f}, world median {np.median(world) * 100:.3f} cm "
            f"(unsmoothed {np.median(raw_world) * 100:.3f} cm)"
        )
        assert visibility <= 0.05  # resetting the filter over the gap gives ~0.2 at frame 6
        if k in (0, 1, 6, 7):  # two tracked steps on, chaos has moved the regions (0.3 px, 0.8 cm)
            assert np.median(world) <= 0.005  # resetting the world filter gives ~2 cm at frame 6


# -- batching, reset, timestamps -----------------------------------------------------------------


def frames_of(path: Path, start: int, stop: int) -> list[tuple[np.ndarray, int]]:
    return [(f.rgb, ms(f.t)) for f in read_frames(path, start, stop)]


def assert_same_persons(a: list[Person], b: list[Person]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.landmarks, y.landmarks)
        np.testing.assert_array_equal(x.world_landmarks, y.world_landmarks)
        assert x.score == y.score


def run_streams(
    engine: TorchBlazePose, streams: list[tuple[int, list[tuple[np.ndarray, int]]]]
) -> tuple[list[list[list[Person]]], list[list[list[Person]]]]:
    """The streams one after another (sequential), then all together a frame at a time (batched)."""
    sequential = []
    for max_poses, frames in streams:
        tracker = VideoRegionTracker(engine, max_poses=max_poses)
        sequential.append([tracker.detect_for_video(rgb, t) for rgb, t in frames])
    trackers = [VideoRegionTracker(engine, max_poses=max_poses) for max_poses, _ in streams]
    batched: list[list[list[Person]]] = [[] for _ in streams]
    for step in range(len(streams[0][1])):
        rgbs = [frames[step][0] for _, frames in streams]
        stamps = [frames[step][1] for _, frames in streams]
        for i, persons in enumerate(detect_for_video_batch(trackers, rgbs, stamps)):
            batched[i].append(persons)
    return sequential, batched


@pytest.fixture(scope="module")
def three_streams(vtest: Path) -> list[tuple[int, list[tuple[np.ndarray, int]]]]:
    return [
        (4, frames_of(vtest, 55, 70)),
        (1, frames_of(vtest, 150, 165)),
        # Another size (and a strided view): the crops of one batch come from frames of both sizes.
        (2, [(rgb[40:, :700], t) for rgb, t in frames_of(vtest, 240, 255)]),
    ]


def test_batched_streams_equal_sequential_trackers(
    three_streams: list[tuple[int, list[tuple[np.ndarray, int]]]], ported_engine: TorchBlazePose
) -> None:
    """Exactly equal when the networks see one image at a time (``batch_size=1``).

    On the CPU the ported networks' arithmetic depends on the batch (oneDNN blocks a batch of
    several images differently: raw outputs differ by up to ~1e-3), so with real batches the
    streams agree only as closely as tracking lets such differences grow (checked below).
    """
    one_at_a_time = TorchBlazePose(
        ported_engine.person_detector.network, ported_engine.landmark_model.network, "cpu", batch_size=1
    )
    sequential, batched = run_streams(one_at_a_time, three_streams)
    assert sum(len(p) for stream in sequential for p in stream) >= 15
    for one, other in zip(sequential, batched, strict=True):
        for a, b in zip(one, other, strict=True):
            assert_same_persons(a, b)


def test_batched_streams_with_batched_networks(
    three_streams: list[tuple[int, list[tuple[np.ndarray, int]]]], ported_engine: TorchBlazePose
) -> None:
    sequential, batched = run_streams(ported_engine, three_streams)
    result = figures([p for stream in sequential for p in stream], [p for stream in batched for p in stream])
    print(f"batched networks vs one stream at a time: {result}")
    assert result.same_count == result.frames
    assert result.median_px <= 1.0
    assert result.p95_px <= 3.0


def test_reset_starts_a_new_stream(vtest: Path, ported_engine: TorchBlazePose) -> None:
    frames = frames_of(vtest, 55, 63)
    tracker = VideoRegionTracker(ported_engine, max_poses=1)
    first = [tracker.detect_for_video(rgb, t) for rgb, t in frames]
    assert len(tracker.tracked_rects) == 1
    tracker.reset()
    assert len(tracker.tracked_rects) == 0
    # The same timestamps again: after a reset they are not taken as going back.
    again = [tracker.detect_for_video(rgb, t) for rgb, t in frames]
    for a, b in zip(first, again, strict=True):
        assert_same_persons(a, b)
    assert sum(map(len, first)) == len(frames)


def test_timestamps_that_do_not_increase(
    vtest: Path, ported_engine: TorchBlazePose, model_path: Path
) -> None:
    """As posepipe's MediaPipe engine: a repeated or earlier timestamp becomes the last plus 1 ms."""
    frames = [rgb for rgb, _ in frames_of(vtest, 55, 61)]
    stamps = [5500, 5600, 5600, 5600, 5000, 6100]
    nudged = [5500, 5600, 5601, 5602, 5603, 6100]
    tracker = VideoRegionTracker(ported_engine, max_poses=1)
    given = [tracker.detect_for_video(rgb, t) for rgb, t in zip(frames, stamps, strict=True)]
    tracker = VideoRegionTracker(ported_engine, max_poses=1)
    expected = [tracker.detect_for_video(rgb, t) for rgb, t in zip(frames, nudged, strict=True)]
    for a, b in zip(given, expected, strict=True):
        assert_same_persons(a, b)
    options = PoseEngineOptions(model_path=model_path, running_mode=RunningMode.VIDEO, max_poses=1)
    with MediaPipePoseEstimator(options) as engine:
        reference = [engine.detect_for_video(rgb, t) for rgb, t in zip(frames, stamps, strict=True)]
    assert [len(p) for p in reference] == [len(p) for p in given] == [1] * len(frames)
    for ref, persons in zip(reference, given, strict=True):
        assert np.median(np.linalg.norm(ref[0].xy - persons[0].xy, axis=1)) <= 1.0
