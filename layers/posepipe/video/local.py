"""``posepipe video`` on this machine: one video in, the result files out, on this machine's cores.

``run_video`` is the three stages wired together: ``plan_chunks``, ``infer_chunk`` in worker
processes, and :func:`posepipe.video.runner.aggregate_video` (the aggregate Lambda's too) in chunk
order as results arrive; the annotated video is rendered per chunk in the same workers and
joined by stream copy. Outputs are staged and renamed when whole.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posepipe.annotation.drawing import DrawOptions
from posepipe.annotation.render import render_frames
from posepipe.assets.pose_model import resolve_model_path
from posepipe.engines.base import InferenceOptions, require_torch, torch_installed
from posepipe.media.probe import VideoInfo, probe
from posepipe.outputs import staged_directory
from posepipe.postprocess.tracking import SmoothingOptions
from posepipe.result import Frame
from posepipe.video.runner import aggregate_video
from posepipe.video.stages import AggregateOptions, Chunk, ChunkResult, SplitOptions, infer_chunk, plan_chunks


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


@dataclass
class VideoJobReport:
    out_dir: Path
    summary: dict[str, Any]


def _infer_task(
    video: str,
    chunk: Chunk,
    options: InferenceOptions,
    info: VideoInfo,
    agree_with: list[Frame] | None,
) -> ChunkResult:
    return infer_chunk(video, chunk, options, info=info, progress=_report_progress, agree_with=agree_with)


def _render_task(
    video: str,
    info: VideoInfo,
    frames: list[Frame],
    destination: str,
    draw: DrawOptions,
    fps: float | None,
) -> dict[str, float]:
    return render_frames(video, info, frames, Path(destination), draw, processing_fps=fps)


_progress_queue: Any = None


def _init_worker(queue: Any, torch_threads: int | None = None) -> None:
    global _progress_queue
    _progress_queue = queue
    os.environ.setdefault("GLOG_minloglevel", "2")
    if torch_threads is not None:
        # Each worker's torch would otherwise start a thread per core: workers x cores threads
        # spinning against each other made a 2-worker run on 2 cores 10x slower than 1 worker.
        os.environ["OMP_NUM_THREADS"] = str(torch_threads)
        import torch

        torch.set_num_threads(torch_threads)


def _torch_threads(engine: str, workers: int) -> int | None:
    """Intra-op threads for each worker's torch (its share of the cores); None without torch, or
    when ``OMP_NUM_THREADS`` already says."""
    if engine == "mediapipe" or "OMP_NUM_THREADS" in os.environ or not torch_installed():
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def _report_progress(count: int) -> None:
    if _progress_queue is not None:
        _progress_queue.put(count)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds. The parent has no engine of its own (no MediaPipe, no
    # torch, no CUDA context: the CLI never runs an image job in the same process, and "auto" is
    # resolved in the workers), and the pool forks all its workers on the first submission,
    # before the progress thread starts. Elsewhere (macOS, Windows) spawn is the safe default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _Progress:
    """A tqdm bar over a video's frames, fed from the workers through a queue.

    Its thread is started by :meth:`start`, once the worker processes have been forked.
    """

    def __init__(self, total: int, enabled: bool, queue: Any, label: str) -> None:
        self._queue = queue
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="frame", desc=label, leave=False, file=sys.stderr)
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def grow(self, frames: int) -> None:
        """More work than planned (a boundary repair)."""
        if self._bar is not None:
            self._bar.total += frames
            self._bar.refresh()

    def _drain(self) -> None:
        while True:
            count = self._queue.get()
            if count is None:
                return
            if self._bar is not None:
                self._bar.update(count)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._bar is not None:
            self._bar.close()


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
    inference = InferenceOptions(
        **{**options.inference.to_dict(), "model_path": str(resolve_model_path(options.inference.model_path))}
    )
    workers = max(1, options.workers)
    chunks = plan_chunks(
        info.frame_count,
        info.fps,
        SplitOptions(chunk_frames=options.chunk_frames, parallelism=workers, warmup_s=options.warmup_s),
    )
    context = _pool_context()
    queue = context.SimpleQueue()
    progress = _Progress(sum(c.stop - c.warmup_start for c in chunks), options.progress, queue, video.name)
    try:
        with (
            staged_directory(out_dir / video.stem) as staging,
            tempfile.TemporaryDirectory(prefix="posepipe-segments-") as segments_dir,
            ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(queue, _torch_threads(inference.engine, workers)),
            ) as pool,
        ):
            run = _LocalChunks(video, info, chunks, inference, options, pool, progress, Path(segments_dir))
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
            (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    finally:
        progress.close()
    return VideoJobReport(out_dir=out_dir / video.stem, summary=summary)


class _LocalChunks:
    """Inference of a video's chunks in the worker pool, a bounded window ahead of aggregation;
    boundary repairs and segment renders in the same pool."""

    def __init__(
        self,
        video: Path,
        info: VideoInfo,
        chunks: list[Chunk],
        inference: InferenceOptions,
        options: VideoJobOptions,
        pool: ProcessPoolExecutor,
        progress: _Progress,
        segments_dir: Path,
    ) -> None:
        self.video, self.info, self.chunks = str(video), info, chunks
        self.inference, self.options, self.pool, self.progress = inference, options, pool, progress
        self.segments_dir = segments_dir
        # Results wait in the parent until their turn: keep only a few chunks in flight.
        self.window = 2 * max(1, options.workers)

    def _submit(self, chunk: Chunk, agree_with: list[Frame] | None = None) -> Future[ChunkResult]:
        return self.pool.submit(_infer_task, self.video, chunk, self.inference, self.info, agree_with)

    def repair(self, repair: Chunk, agree_with: list[Frame]) -> ChunkResult:
        self.progress.grow(repair.stop - repair.warmup_start)
        return self._submit(repair, agree_with).result()

    def results(self) -> Iterator[ChunkResult]:
        pending = {chunk.index: self._submit(chunk) for chunk in self.chunks[: self.window]}
        self.progress.start()  # the first submission forked the workers: threads may start now
        for chunk in self.chunks:
            result = pending.pop(chunk.index).result()
            following = chunk.index + self.window
            if following < len(self.chunks):
                pending[following] = self._submit(self.chunks[following])
            yield result

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
        return self.pool.submit(_render_task, self.video, self.info, frames, str(segment), draw, fps)
