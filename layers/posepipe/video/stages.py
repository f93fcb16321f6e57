"""The three stages of video pose estimation, on JSON-serialisable data.

split: ``plan_chunks(frame_count, fps) -> chunks``, frame ranges that can run in parallel.
infer: ``infer_chunk(video, chunk) -> chunk result``, the pose engine in VIDEO (tracking) mode
over one range.
aggregate: :class:`ChunkAggregator`, stable person ids across chunks and temporal smoothing, run
by :func:`posepipe.video.runner.aggregate_video` for ``posepipe video`` and the aggregate Lambda.

Chunking and tracking: MediaPipe's tracker carries a person from frame to frame once its
detector has found them, and on small or distant people the detector fires rarely (a few percent
of frames on ``vtest.avi``). A chunk that starts cold would lose everyone the one-pass run was
already tracking. So each chunk but the first starts ``warmup`` frames early, processing them to
rebuild the tracker's state and emitting nothing for them; tracking is deterministic once a
person is acquired, so a person the warm-up acquires gets the very landmarks the one-pass run
gives. The plan balances the work (emitted plus warm-up frames) across chunks so that the warm-up
does not lengthen the slowest chunk.

Nothing here knows about AWS: the Lambdas and the SageMaker endpoint are thin adapters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posepipe.engines.base import (
    InferenceOptions,
    PoseEngineOptions,
    PoseEstimator,
    RunningMode,
)
from posepipe.engines.choice import open_pose_engine
from posepipe.media.decode import DecodeReport, HWAccelChoice, VideoFrame, read_frames
from posepipe.media.probe import VideoInfo, probe
from posepipe.media.sources import MediaSource
from posepipe.postprocess.ids import PersonTracker, TrackerOptions, pose_distance
from posepipe.postprocess.smoothing import LandmarkSmoother, SmoothingOptions
from posepipe.result import Frame, Person

DEFAULT_WARMUP_S = 5.0
DEFAULT_MAX_CHUNK_S = 120.0


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` are emitted; ``[warmup_start, start)`` only rebuild tracking."""

    index: int
    start: int
    stop: int
    warmup_start: int

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_start <= self.start < self.stop:
            raise ValueError(f"invalid chunk {self}")

    @property
    def frame_count(self) -> int:
        return self.stop - self.start

    @property
    def warmup_frames(self) -> int:
        return self.start - self.warmup_start

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            index=int(data["index"]),
            start=int(data["start"]),
            stop=int(data["stop"]),
            warmup_start=int(data["warmup_start"]),
        )


@dataclass(frozen=True)
class SplitOptions:
    """How to cut a video into chunks.

    ``chunk_frames``: emitted frames per chunk; ``None`` plans ``parallelism`` balanced chunks
    (more when a chunk would exceed ``max_chunk_s``). ``warmup_s``: tracking warm-up before each
    chunk, in seconds of video (at least ``min_warmup_frames`` frames).
    """

    chunk_frames: int | None = None
    parallelism: int = 1
    max_chunk_s: float = DEFAULT_MAX_CHUNK_S
    warmup_s: float = DEFAULT_WARMUP_S
    min_warmup_frames: int = 10

    def __post_init__(self) -> None:
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, not {self.chunk_frames}")
        if self.parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, not {self.parallelism}")
        if self.warmup_s < 0:
            raise ValueError(f"warmup_s must not be negative, not {self.warmup_s}")


def warmup_frames(fps: float, options: SplitOptions) -> int:
    return max(options.min_warmup_frames, math.ceil(options.warmup_s * fps)) if options.warmup_s > 0 else 0


def plan_chunks(frame_count: int, fps: float, options: SplitOptions) -> list[Chunk]:
    """Plan chunks over ``frame_count`` frames (see :class:`SplitOptions`)."""
    if frame_count < 1:
        raise ValueError("a video needs at least one frame")
    warmup = warmup_frames(fps, options)
    if options.chunk_frames is not None:
        starts = list(range(0, frame_count, options.chunk_frames))
    else:
        max_chunk = max(1, math.floor(options.max_chunk_s * fps)) if fps > 0 else frame_count
        # Enough chunks that none does more than max_chunk frames of work, warm-up included.
        per_chunk = max_chunk - warmup if max_chunk > 2 * warmup else max_chunk
        count = max(options.parallelism, math.ceil(max(frame_count - warmup, 1) / per_chunk))
        # Work per chunk is its emitted frames plus its warm-up; the first chunk has none. Equal
        # work: first chunk emits W, the others W - warmup, where n * W - (n - 1) * warmup = N.
        while count > 1:
            work = (frame_count + (count - 1) * warmup) / count
            if work - warmup >= max(1, warmup):  # each later chunk emits at least its warm-up
                break
            count -= 1
        if count == 1:
            starts = [0]
        else:
            work = (frame_count + (count - 1) * warmup) / count
            starts = [0] + [round(work + i * (work - warmup)) for i in range(count - 1)]
    stops = [*starts[1:], frame_count]
    return [
        Chunk(index=i, start=start, stop=stop, warmup_start=max(0, start - warmup))
        for i, (start, stop) in enumerate(zip(starts, stops, strict=True))
    ]


@dataclass
class ChunkResult:
    """The persons of each emitted frame of one chunk (ids not yet assigned)."""

    chunk: Chunk
    frames: list[Frame]
    model: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def person_frames(self) -> int:
        return sum(len(f.persons) for f in self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk.to_dict(),
            "model": self.model,
            "timings": self.timings,
            "frames": [f.to_dict() for f in self.frames],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkResult:
        return cls(
            chunk=Chunk.from_dict(data["chunk"]),
            frames=[Frame.from_dict(f) for f in data["frames"]],
            model=dict(data["model"]),
            timings={k: float(v) for k, v in data.get("timings", {}).items()},
        )


def infer_chunk(
    video: MediaSource,
    chunk: Chunk,
    options: InferenceOptions | None = None,
    *,
    info: VideoInfo | None = None,
    progress: Callable[[int], None] | None = None,
    agree_with: Sequence[Frame] | None = None,
    open_engine: Callable[[PoseEngineOptions], PoseEstimator] = open_pose_engine,
    hwaccel: HWAccelChoice = "none",
    on_frame: Callable[[VideoFrame], None] | None = None,
    compact_frames: bool = False,
) -> ChunkResult:
    """Run the engine (``options.engine``) in VIDEO mode over the chunk's warm-up and frames;
    ``progress(n)`` per frame. The result's ``model`` names the engine that ran.

    ``open_engine`` opens the engine from the options (the endpoint's GPU engine passes one
    that batches this chunk's frames with other chunks'). ``hwaccel`` is
    :func:`posepipe.media.decode.read_frames`'s: with ``"auto"`` the timings say which decoder ran
    (``nvdec``: 1.0 on NVDEC, 0.0 in software).

    With ``agree_with`` (an earlier result for the same frames, from a shorter warm-up), stop as
    soon as ``AGREEMENT_FRAMES`` frames in a row give the very same persons: from there on the
    tracker is in the same state and would repeat the earlier result. The result then holds the
    frames up to that point only.

    ``on_frame`` is handed each decoded frame of the chunk proper (not of its warm-up), after
    inference: ``posepipe video`` keeps them (``compact_frames``: with their
    :class:`~posepipe.media.decode.CompactFrame`) to render the chunk without decoding it again.
    """
    options = options or InferenceOptions()
    agreeing = 0
    started = time.perf_counter()
    if info is None:
        if not isinstance(video, (str, Path)):
            raise ValueError("inference on a file object needs the video's info (probe it first)")
        info = probe(video)
    decode_s = inference_s = 0.0
    frames: list[Frame] = []
    decoding = DecodeReport()
    with open_engine(options.engine_options(RunningMode.VIDEO)) as engine:
        load_s = time.perf_counter() - started
        mark = time.perf_counter()
        for decoded in read_frames(
            video, chunk.warmup_start, chunk.stop, info=info, threads=options.decode_threads,
            hwaccel=hwaccel, report=decoding, compact=compact_frames,
        ):  # fmt: skip
            decoded_at = time.perf_counter()
            decode_s += decoded_at - mark
            persons = engine.detect_for_video(decoded.rgb, round(decoded.t * 1000))
            mark = time.perf_counter()
            inference_s += mark - decoded_at
            if decoded.index >= chunk.start:
                frames.append(Frame(index=decoded.index, t=decoded.t, persons=persons))
                if on_frame is not None:
                    on_frame(decoded)
                if agree_with is not None:
                    same = same_persons(agree_with[decoded.index - chunk.start].persons, persons)
                    agreeing = agreeing + 1 if same else 0
            if progress is not None:
                progress(1)
            if agreeing >= AGREEMENT_FRAMES:
                break
        model = engine.model_dict()
    if agree_with is None and len(frames) != chunk.frame_count:
        raise RuntimeError(f"chunk {chunk.index}: decoded {len(frames)} frames, expected {chunk.frame_count}")
    timings = {
        "load_s": round(load_s, 4),
        "decode_s": round(decode_s, 4),
        "inference_s": round(inference_s, 4),
        "total_s": round(time.perf_counter() - started, 4),
        "warmup_frames": float(chunk.warmup_frames),
    }
    if hwaccel != "none":
        timings["nvdec"] = 1.0 if decoding.decoder == "nvdec" else 0.0
    return ChunkResult(chunk=chunk, frames=frames, model=model, timings=timings)


AGREEMENT_FRAMES = 3
_SAME_PIXELS = 0.5


def same_persons(a: Sequence[Person], b: Sequence[Person]) -> bool:
    """Whether two lists hold the same poses (in any order), landmark for landmark."""
    if len(a) != len(b):
        return False
    unmatched = list(b)
    for person in a:
        match = next(
            (other for other in unmatched if np.abs(other.xy - person.xy).max() <= _SAME_PIXELS), None
        )
        if match is None:
            return False
        unmatched.remove(match)
    return True


@dataclass(frozen=True)
class AggregateOptions:
    """``repair_lookback_s``: how far back a boundary repair may start its warm-up (0: never)."""

    tracking: TrackerOptions = field(default_factory=TrackerOptions)
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    repair_lookback_s: float = 60.0


class ChunkAggregator:
    """Merges chunk results, fed in chunk order, into frames with stable ids and smoothing.

    Holds only the live tracks and filters, never the whole video: an hour-long video streams
    through it. Chunks must follow one another without gaps or overlaps.
    """

    def __init__(self, options: AggregateOptions | None = None) -> None:
        self.options = options or AggregateOptions()
        self._tracker = PersonTracker(self.options.tracking)
        self._smoother = LandmarkSmoother(self.options.smoothing, max_gap_s=self.options.tracking.max_gap_s)
        self._first_seen: dict[int, int] = {}  # person id -> frame index it was first found in
        self._last_frame: Frame | None = None
        self.next_frame = 0

    def repair_for(self, result: ChunkResult, fps: float) -> Chunk | None:
        """The re-run of ``result``'s chunk that would restore persons it dropped, if it dropped any.

        A person tracked in the last frame of the previous chunk but absent from this chunk's
        first frame was most likely lost because this chunk's warm-up started after MediaPipe
        had acquired them. The repair starts its warm-up just before the frame where that person
        was first found (at most ``repair_lookback_s`` back); run it with
        ``infer_chunk(..., agree_with=result.frames)`` and pass the outcome to :meth:`splice`.
        """
        last = self._last_frame
        if last is None or not result.frames or self.options.repair_lookback_s <= 0:
            return None
        if not result.frames[0].processed:  # a failed chunk: nothing of it to repair
            return None
        first = result.frames[0].persons
        limit = self.options.tracking.max_distance
        dropped = [p for p in last.persons if not any(pose_distance(p, q) <= limit for q in first)]
        if not dropped:
            return None
        chunk = result.chunk
        earliest = max(0, chunk.start - math.ceil(self.options.repair_lookback_s * fps))
        warmup_start = max(earliest, min(self._first_seen[p.id] for p in dropped) - 1)
        if warmup_start >= chunk.warmup_start:  # the chunk's own warm-up already reached back there
            return None
        return Chunk(index=chunk.index, start=chunk.start, stop=chunk.stop, warmup_start=warmup_start)

    @staticmethod
    def splice(result: ChunkResult, repaired: ChunkResult) -> ChunkResult:
        """``result`` with its first frames replaced by those of a repair run."""
        frames = repaired.frames + result.frames[len(repaired.frames) :]
        timings = {**result.timings, "repair_frames": float(len(repaired.frames)),
                   "repair_s": repaired.timings.get("total_s", 0.0),
                   "repair_warmup_start": float(repaired.chunk.warmup_start)}  # fmt: skip
        return ChunkResult(chunk=result.chunk, frames=frames, model=result.model, timings=timings)

    def add(self, result: ChunkResult) -> list[Frame]:
        """The chunk's frames, ids set and landmarks smoothed (modified in place)."""
        if result.chunk.start != self.next_frame:
            raise ValueError(
                f"chunk {result.chunk.index} starts at frame {result.chunk.start}, expected {self.next_frame}"
            )
        for frame in result.frames:
            if frame.index != self.next_frame:
                raise ValueError(f"chunk {result.chunk.index}: frame {frame.index} out of order")
            self._tracker.update(frame.persons, frame.t)
            for person in frame.persons:
                self._first_seen.setdefault(person.id, frame.index)
            self._smoother.update(frame)
            self.next_frame += 1
        if result.frames:
            self._last_frame = result.frames[-1]
        return result.frames
