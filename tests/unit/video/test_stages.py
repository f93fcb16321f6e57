"""Chunk planning and the chunk result format."""

from __future__ import annotations

import itertools
import json

import pytest
from posepipe.video.stages import (
    Chunk,
    ChunkAggregator,
    ChunkResult,
    SplitOptions,
    plan_chunks,
    warmup_frames,
)


def _covers(chunks: list[Chunk], frame_count: int) -> bool:
    contiguous = all(a.stop == b.start for a, b in itertools.pairwise(chunks))
    return chunks[0].start == 0 and contiguous and chunks[-1].stop == frame_count


@pytest.mark.parametrize(
    ("frame_count", "fps", "parallelism"), [(795, 10.0, 2), (795, 10.0, 4), (108_000, 30.0, 2)]
)
def test_planned_chunks_cover_every_frame_once_and_balance_work(
    frame_count: int, fps: float, parallelism: int
) -> None:
    options = SplitOptions(parallelism=parallelism)
    chunks = plan_chunks(frame_count, fps, options)
    assert _covers(chunks, frame_count)
    warmup = warmup_frames(fps, options)
    assert chunks[0].warmup_start == 0
    assert all(c.warmup_frames == warmup for c in chunks[1:])
    work = [c.stop - c.warmup_start for c in chunks]
    assert max(work) - min(work) <= 2, work
    assert len(chunks) >= parallelism


def test_hour_long_video_is_cut_into_bounded_chunks() -> None:
    chunks = plan_chunks(108_000, 30.0, SplitOptions(parallelism=2, max_chunk_s=120))
    assert len(chunks) >= 30
    assert max(c.frame_count for c in chunks) <= 120 * 30


def test_explicit_chunk_frames() -> None:
    chunks = plan_chunks(795, 10.0, SplitOptions(chunk_frames=200, warmup_s=5))
    assert [(c.start, c.stop) for c in chunks] == [(0, 200), (200, 400), (400, 600), (600, 795)]
    assert [c.warmup_start for c in chunks] == [0, 150, 350, 550]


def test_short_video_is_one_chunk_when_warmup_would_dominate() -> None:
    chunks = plan_chunks(40, 10.0, SplitOptions(parallelism=8))
    assert [(c.start, c.stop, c.warmup_start) for c in chunks] == [(0, 40, 0)]


def test_no_warmup_when_disabled() -> None:
    chunks = plan_chunks(795, 10.0, SplitOptions(parallelism=2, warmup_s=0))
    assert all(c.warmup_start == c.start for c in chunks)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"index": 0, "start": 5, "stop": 5, "warmup_start": 0},
        {"index": 0, "start": 5, "stop": 9, "warmup_start": 6},
    ],
)
def test_invalid_chunks_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="invalid chunk"):
        Chunk(**kwargs)


def test_chunk_result_round_trips_through_json() -> None:
    result = ChunkResult(chunk=Chunk(1, 10, 12, 5), frames=[], model={"name": "m"}, timings={"total_s": 1.5})
    again = ChunkResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.chunk == result.chunk
    assert again.model == result.model
    assert again.timings == result.timings


def test_aggregator_refuses_a_gap_between_chunks() -> None:
    aggregator = ChunkAggregator()
    with pytest.raises(ValueError, match="expected 0"):
        aggregator.add(ChunkResult(chunk=Chunk(1, 10, 12, 5), frames=[], model={}))
