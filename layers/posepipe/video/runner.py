"""The aggregate stage of a video job, one function whoever ran the chunks (the CLI's worker
processes or the cloud's endpoint): :func:`aggregate_video` takes the chunk results in order
through boundary repair into the aggregator, streams ``keypoints.json``, hands each chunk's
final frames to a renderer, and gives what the summary (:func:`video_summary`) is made of.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from posepipe.annotation.render import join_segments
from posepipe.media.probe import VideoInfo
from posepipe.result import Frame, write_result_stream
from posepipe.video.stages import AggregateOptions, Chunk, ChunkAggregator, ChunkResult

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
            # Frames decoded a second time to be drawn on (0 when inference kept them for that).
            "frames_decoded_for_render": int(total(render_timings, "decoded_frames")),
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


SegmentRenderer = Callable[[Chunk, list[Frame], dict[str, float], Path], "Future[dict[str, float]]"]
"""``render(chunk, frames, chunk_timings, segment)``: draw the chunk's final frames into the MP4
``segment``, now or in a worker; the future gives the render timings (decode, draw, encode)."""


@dataclass
class AggregatedVideo:
    """What :func:`aggregate_video` made: the annotated segments in order, and the figures the
    summary is made of."""

    model: dict[str, Any] = field(default_factory=dict)
    persons_per_frame: list[int | None] = field(default_factory=list)
    chunk_timings: list[dict[str, float]] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    renders: list[Future[dict[str, float]]] = field(default_factory=list)

    def render_timings(self) -> list[dict[str, float]]:
        """Each segment's render timings (waits for renders still running)."""
        return [render.result() for render in self.renders]

    def join(self, destination: Path, info: VideoInfo, video: str | Path) -> None:
        """Join the segments into ``destination``, with ``video``'s audio when it has any."""
        self.render_timings()  # a failed render raises here, before any joining
        join_segments(self.segments, destination, audio_from=video if info.has_audio else None)

    def summary(
        self,
        info: VideoInfo,
        chunks: Sequence[Chunk],
        *,
        stages_wall_s: dict[str, float],
        smoothing: bool,
        wall_s: float | None = None,
        workers: int | None = None,
    ) -> dict[str, Any]:
        return video_summary(
            info, model=self.model, persons_per_frame=self.persons_per_frame, chunks=chunks,
            chunk_timings=self.chunk_timings, render_timings=self.render_timings(),
            stages_wall_s=stages_wall_s, smoothing=smoothing, wall_s=wall_s, workers=workers,
        )  # fmt: skip


def aggregate_video(
    info: VideoInfo,
    chunks: Sequence[Chunk],
    results: Iterable[ChunkResult | None],
    keypoints: IO[str],
    *,
    rerun: RerunChunk,
    options: AggregateOptions,
    render: SegmentRenderer | None = None,
    segments_dir: Path | None = None,
    on_frame: Callable[[Frame], None] | None = None,
) -> AggregatedVideo:
    """The aggregate stage of a video job, wherever its chunks ran (the CLI's worker processes,
    or the cloud's endpoint): chunk results in chunk order through boundary repair into the
    aggregator, the frames streamed to ``keypoints.json`` and each chunk's final frames handed
    to ``render`` as a segment under ``segments_dir``.

    ``results`` gives each chunk's result in order, or None for a chunk whose inference failed
    (its frames are marked not processed). ``rerun`` runs a boundary repair where the caller
    runs inference. keypoints.json names the model in its header, so results are read ahead to
    the first one that is there. ``on_frame`` is handed each final frame, in order, as it is written.
    """
    if render is not None and segments_dir is None:
        raise ValueError("rendering needs a segments_dir")
    outcome = AggregatedVideo()
    aggregator = ChunkAggregator(options)
    pending = iter(results)
    read_ahead: list[ChunkResult | None] = []
    for result in pending:
        read_ahead.append(result)
        if result is not None:
            outcome.model = result.model
            break

    def frames() -> Iterator[Frame]:
        for chunk, result in zip(chunks, itertools.chain(read_ahead, pending), strict=True):
            if result is None:
                result = unprocessed_result(chunk, info, outcome.model)
            result, added = repair_and_add(aggregator, result, info.fps, rerun)
            outcome.chunk_timings.append(result.timings)
            outcome.persons_per_frame.extend(f.person_count for f in added)
            if render is not None and segments_dir is not None:
                segment = segments_dir / f"segment-{chunk.index:05d}.mp4"
                outcome.segments.append(segment)
                outcome.renders.append(render(chunk, added, result.timings, segment))
            if on_frame is not None:
                for frame in added:
                    on_frame(frame)
            yield from added

    written = write_result_stream(keypoints, info.to_source(), outcome.model, frames())
    if written != info.frame_count:
        raise RuntimeError(f"aggregated {written} frames, the video has {info.frame_count}")
    return outcome


def rendered_now(work: Callable[[], dict[str, float]]) -> Future[dict[str, float]]:
    """``work()`` run here, as a finished future (a renderer that runs in the caller's process)."""
    future: Future[dict[str, float]] = Future()
    future.set_result(work())  # a failure raises here, in the caller
    return future
