"""``posepipe video`` on this machine: one video in, the result files out, on this machine's cores.

``run_video`` is the three stages wired together: ``plan_chunks``, ``infer_chunk`` in worker
processes (:mod:`posepipe.video.workers`), and :func:`posepipe.video.runner.aggregate_video` (the
aggregate Lambda's too) in chunk order as results arrive; the annotated video is rendered per
chunk by the worker that inferred it, from the frames it decoded, and joined by stream copy.
Outputs are staged and renamed when whole.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from posepipe.analysis.cleaning import CleaningOptions
from posepipe.annotation.drawing import DrawOptions
from posepipe.assets.catalogue import resolve_model
from posepipe.engines.base import InferenceOptions, require_torch
from posepipe.export.motion_files import analysis_outputs
from posepipe.media.probe import VideoInfo, probe
from posepipe.outputs import staged_directory
from posepipe.postprocess.smoothing import SmoothingOptions
from posepipe.result import Frame
from posepipe.video.runner import aggregate_video
from posepipe.video.stages import AggregateOptions, Chunk, ChunkResult, SplitOptions, infer_chunk, plan_chunks
from posepipe.video.workers import (
    COSTLY_TO_DECODE,
    ChunkMessage,
    Progress,
    RenderOrder,
    WorkerChannels,
    infer_task,
    init_worker,
    pool_context,
    render_task,
    torch_threads,
)

# How long a chunk's result may take to arrive after its task returned (see _LocalChunks._message).
MESSAGE_GRACE_S = 120.0


@dataclass(frozen=True)
class VideoJobOptions:
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    chunk_frames: int | None = None
    warmup_s: float = SplitOptions().warmup_s
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    annotate: bool = True
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    draw: DrawOptions = field(default_factory=DrawOptions)
    overlay: bool = False
    progress: bool = False
    analysis_formats: tuple[str, ...] | None = None
    """``--analyze``: the motion files written next to keypoints.json (formats of
    :data:`posepipe.export.motion_files.MOTION_FORMATS`); None: none (the summary's per-person
    figures are computed either way)."""
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)
    keep_decoded_mb: int = 2048
    """Memory for keeping decoded frames from inference to rendering, shared by the workers (each
    holds at most one chunk), for the codecs where that pays (:data:`COSTLY_TO_DECODE`): a chunk
    over its worker's share, or of another codec, is decoded again. 0: never keep."""


@dataclass
class VideoJobReport:
    out_dir: Path
    summary: dict[str, Any]


def run_video(
    video: Path,
    out_dir: Path,
    options: VideoJobOptions | None = None,
) -> VideoJobReport:
    """Write ``out_dir/<stem>/{keypoints.json, annotated.mp4, summary.json}`` for ``video``."""
    options = options or VideoJobOptions()
    if options.inference.engine == "torch":
        require_torch()  # said once, before any worker starts
    started = time.perf_counter()
    info = probe(video)
    probe_s = time.perf_counter() - started
    model = resolve_model(options.inference.model_path, networks=options.inference.detector != "blazepose")
    inference = InferenceOptions(**{**options.inference.to_dict(), "model_path": str(model)})
    workers = max(1, options.workers)
    chunks = plan_chunks(
        info.frame_count,
        info.fps,
        SplitOptions(chunk_frames=options.chunk_frames, parallelism=workers, warmup_s=options.warmup_s),
    )
    context = pool_context()
    channels = WorkerChannels.create(context, workers)
    work = sum(c.stop - c.warmup_start for c in chunks)
    progress = Progress(work, options.progress, channels.progress, video.name)
    try:
        with (
            staged_directory(out_dir / video.stem) as staging,
            tempfile.TemporaryDirectory(prefix="posepipe-segments-") as segments_dir,
            ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=init_worker,
                initargs=(channels, torch_threads(inference.engine, workers)),
            ) as pool,
            _LocalChunks(video, info, chunks, inference, options, pool, channels, progress) as run,
        ):
            with (staging / "keypoints.json").open("w", encoding="utf-8") as keypoints:
                aggregated = aggregate_video(
                    info, chunks, run.results(), keypoints, rerun=run.repair,
                    options=AggregateOptions(smoothing=options.smoothing),
                    render=run.render if options.annotate else None, segments_dir=Path(segments_dir),
                )  # fmt: skip
            inference_s = time.perf_counter() - started - probe_s
            if options.annotate:
                aggregated.join(staging / "annotated.mp4", info, video)
            wall_s = time.perf_counter() - started
            summary = aggregated.summary(
                info, chunks, smoothing=options.smoothing.enabled, wall_s=wall_s, workers=workers,
                stages_wall_s={"probe": probe_s, "split_infer_aggregate": inference_s,
                               "render_and_join": wall_s - probe_s - inference_s},
            )  # fmt: skip
            analysis_started = time.perf_counter()
            with (staging / "keypoints.json").open(encoding="utf-8") as written:
                files, summary["motion"] = analysis_outputs(
                    json.load(written), options.analysis_formats, options.cleaning
                )
            for name, data in files.items():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(data)
            summary["stages_wall_s"]["analysis"] = round(time.perf_counter() - analysis_started, 3)
            (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    finally:
        progress.close()
    return VideoJobReport(out_dir=out_dir / video.stem, summary=summary)


class _LocalChunks:
    """Inference of a video's chunks in the worker pool, a bounded window ahead of aggregation,
    each chunk's result read from the results queue in chunk order; boundary repairs in this
    process; each segment rendered by the worker that kept the chunk's frames, else by a task
    that decodes them again (see :mod:`posepipe.video.workers`)."""

    def __init__(
        self,
        video: Path,
        info: VideoInfo,
        chunks: list[Chunk],
        inference: InferenceOptions,
        options: VideoJobOptions,
        pool: ProcessPoolExecutor,
        channels: WorkerChannels,
        progress: Progress,
    ) -> None:
        self.video, self.info, self.chunks = str(video), info, chunks
        self.inference, self.options, self.pool = inference, options, pool
        self.channels, self.progress = channels, progress
        # Results wait in the parent until their turn: keep only a few chunks in flight.
        self.window = 2 * max(1, options.workers)
        # Each worker holds at most one chunk's frames at a time.
        self.keep_bytes = (
            options.keep_decoded_mb * 2**20 // max(1, options.workers) if options.annotate else 0
        )
        self.tasks: dict[int, Future[dict[str, float] | None]] = {}
        self.holders: dict[int, int] = {}  # chunk index -> the worker that kept its frames

    def __enter__(self) -> _LocalChunks:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:  # tasks waiting for a render order drop their frames and return
            self.channels.abort.set()
            self.pool.shutdown(wait=False, cancel_futures=True)
            # A worker cannot exit while its queue still holds a result for this process: read
            # and drop them until the process ends, so that shutting the pool down cannot hang.
            threading.Thread(target=_drain, args=(self.channels.results,), daemon=True).start()

    def _keeps(self, chunk: Chunk) -> bool:
        if self.info.codec not in COSTLY_TO_DECODE:
            return False
        # Kept as 4:2:0 planes: 1.5 bytes a pixel.
        return chunk.frame_count * self.info.width * self.info.height * 3 // 2 <= self.keep_bytes

    def _submit(self, chunk: Chunk) -> None:
        args = (self.video, chunk, self.inference, self.info, self._keeps(chunk))
        self.tasks[chunk.index] = self.pool.submit(infer_task, *args)

    def repair(self, repair: Chunk, agree_with: list[Frame]) -> ChunkResult:
        """A boundary repair, run here: the workers may all be holding chunks until this one is
        aggregated, so a repair in the pool could wait for ever."""
        self.progress.grow(repair.stop - repair.warmup_start)
        return infer_chunk(
            self.video, repair, self.inference, info=self.info, agree_with=agree_with,
            progress=self.progress.advance,
        )  # fmt: skip

    def results(self) -> Iterator[ChunkResult]:
        for chunk in self.chunks[: self.window]:
            self._submit(chunk)
        self.progress.start()  # the first submission forked the workers: threads may start now
        arrived: dict[int, ChunkMessage] = {}
        for chunk in self.chunks:
            message = self._message(chunk, arrived)
            if message.result is None:
                self.tasks[chunk.index].result()  # raises the task's exception
                raise RuntimeError(f"chunk {chunk.index}: inference failed")
            if message.worker >= 0:
                self.holders[chunk.index] = message.worker
            following = chunk.index + self.window
            if following < len(self.chunks):
                self._submit(self.chunks[following])
            yield message.result

    def _message(self, chunk: Chunk, arrived: dict[int, ChunkMessage]) -> ChunkMessage:
        """The chunk's message from the results queue (others that come first are kept).

        A task that failed raises here. One that returned has put its message on the queue, but
        the worker's feeder thread pickles and sends it after the task returns: seconds for a
        chunk of many persons on a busy machine. Its message is awaited for up to
        ``MESSAGE_GRACE_S`` more."""
        waited_after_done = 0.0
        while chunk.index not in arrived:
            try:
                message: ChunkMessage = self.channels.results.get(timeout=1.0)
            except queue.Empty:
                task = self.tasks[chunk.index]
                if task.done():
                    task.result()  # a task that failed (or a worker that died) raises here
                    waited_after_done += 1.0
                    if waited_after_done > MESSAGE_GRACE_S:
                        raise RuntimeError(
                            f"chunk {chunk.index}: its task ended, its result did not come "
                            f"in {MESSAGE_GRACE_S:.0f} s"
                        ) from None
                continue
            arrived[message.chunk] = message
        return arrived.pop(chunk.index)

    def render(
        self, chunk: Chunk, frames: list[Frame], timings: dict[str, float], segment: Path
    ) -> Future[dict[str, float]]:
        fps = (
            chunk.frame_count / timings["total_s"]
            if self.options.overlay and timings.get("total_s")
            else None
        )
        draw = (
            DrawOptions(show_frame_index=True, show_fps=True) if self.options.overlay else self.options.draw
        )
        # The last segment is the job's tail: inference is over and the other workers finish
        # their segments, so it takes a thread per worker.
        threads = max(1, self.options.workers) if chunk.index == self.chunks[-1].index else 1
        task = self.tasks.pop(chunk.index)
        worker = self.holders.pop(chunk.index, None)
        if worker is None:
            args = (self.video, self.info, frames, str(segment), draw, fps, threads)
            return self.pool.submit(render_task, *args)
        self.channels.inboxes[worker].put(RenderOrder(chunk.index, frames, str(segment), draw, fps, threads))
        return cast("Future[dict[str, float]]", task)


def _drain(results: Any) -> None:
    """Read and drop chunk messages for ever (a daemon thread, after a job has failed)."""
    while True:
        try:
            results.get(timeout=1.0)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
