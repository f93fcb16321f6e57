"""What every way of running a video job shares, whoever runs the chunks (local worker processes
or the cloud's endpoint): one chunk result through boundary repair into the aggregator, the
frames of a chunk that gave no result, and the job's summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from posepipe.result import Frame
from posepipe.stages import Chunk, ChunkAggregator, ChunkResult
from posepipe.video import VideoInfo

RerunChunk = Callable[[Chunk, list[Frame]], ChunkResult]
"""``rerun(repair, agree_with)``: ``infer_chunk(video, repair, ..., agree_with=agree_with)``, run
wherever the caller runs inference."""


def repair_and_add(
    aggregator: ChunkAggregator, result: ChunkResult, fps: float, rerun: RerunChunk
) -> tuple[ChunkResult, list[Frame]]:
    """Repair ``result``'s start if it dropped a tracked person (see
    :meth:`ChunkAggregator.repair_for`), then aggregate it: the result as aggregated (spliced when
    repaired) and its frames with ids set and landmarks smoothed."""
    repair = aggregator.repair_for(result, fps)
    if repair is not None:
        result = aggregator.splice(result, rerun(repair, result.frames))
    return result, aggregator.add(result)


def unprocessed_result(chunk: Chunk, info: VideoInfo, model: dict[str, Any]) -> ChunkResult:
    """A chunk whose inference failed: its frames, at the video's own times, marked not processed
    (no persons, and not to be read as nobody there)."""
    frames = [Frame(index=i, t=info.frame_time(i), processed=False) for i in range(chunk.start, chunk.stop)]
    return ChunkResult(chunk=chunk, frames=frames, model=model, timings={})


def video_summary(
    info: VideoInfo,
    *,
    model: dict[str, Any],
    persons_per_frame: Sequence[int | None],
    chunks: Sequence[Chunk],
    chunk_timings: Sequence[dict[str, float]],
    render_timings: Sequence[dict[str, float]],
    stages_wall_s: dict[str, float],
    smoothing: bool,
    wall_s: float | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """``summary.json``: frames, persons per frame, chunks and where the time went.

    ``persons_per_frame`` holds None for a frame that was not processed (its chunk failed): it
    is null in the summary, counted in ``frames_not_processed`` and left out of the mean.
    ``wall_s`` (with ``fps_processed``) and ``workers`` are left out when not given (a stage that
    saw only part of the job's time and none of its workers).
    """
    frames = len(persons_per_frame)
    counted = [n for n in persons_per_frame if n is not None]

    def total(timings: Sequence[dict[str, float]], key: str) -> float:
        return round(sum(t.get(key, 0.0) for t in timings), 3)

    summary: dict[str, Any] = {
        "source": info.to_source().to_dict(),
        "model": model,
        "frames": frames,
        "frames_not_processed": frames - len(counted),
        "person_frames": sum(counted),
        "persons_per_frame": list(persons_per_frame),
        "mean_persons_per_frame": round(sum(counted) / len(counted), 4) if counted else 0.0,
        "max_persons_per_frame": max(counted, default=0),
    }
    if wall_s is not None:
        summary["fps_processed"] = round(frames / wall_s, 2) if wall_s > 0 else None
        summary["wall_s"] = round(wall_s, 3)
    if workers is not None:
        summary["workers"] = workers
    summary.update(
        {
            "smoothing": smoothing,
            "chunks": [{**c.to_dict(), "timings": t} for c, t in zip(chunks, chunk_timings, strict=True)],
            "boundary_repairs": sum(1 for t in chunk_timings if "repair_frames" in t),
            "stages_wall_s": {name: round(seconds, 3) for name, seconds in stages_wall_s.items()},
            "stages_cpu_s": {
                "model_load": total(chunk_timings, "load_s"),
                "decode": round(total(chunk_timings, "decode_s") + total(render_timings, "decode_s"), 3),
                "inference": total(chunk_timings, "inference_s"),
                "boundary_repair": total(chunk_timings, "repair_s"),
                "draw": total(render_timings, "draw_s"),
                "encode": total(render_timings, "encode_s"),
            },
        }
    )
    return summary
