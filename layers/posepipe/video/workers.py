"""The worker processes of ``posepipe video``: what runs in them, and their channels to the parent.

Every worker starts with the job's :class:`WorkerChannels`: the progress queue, the results
queue, one inbox per worker (each worker claims one at start-up) and an abort event.

Decoding once: :func:`infer_task` runs :func:`posepipe.video.stages.infer_chunk` and puts the
chunk's result on the results queue as soon as it has it. When the parent asked it to keep the
chunk's decoded frames (a codec costly to decode, :data:`COSTLY_TO_DECODE`, and a chunk that
fits the memory budget), the task then waits in its worker's
inbox for a :class:`RenderOrder`, the chunk's final frames (ids set, smoothed), and draws them
over the frames it kept, in the decoder's own 4:2:0 planes (half the memory of RGB, made RGB
again exactly as decoding does): the source is decoded once. Any other chunk is
rendered by :func:`render_task`, which decodes it again.

A kept chunk's task holds its worker until the parent has aggregated the chunk, which needs only
earlier chunks (submitted earlier, so running or done) and, for a boundary repair, the parent
itself (repairs run in the parent, never in the pool): no wait can close into a cycle. A job
that fails sets the abort event, and a waiting task drops its frames and returns.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posepipe.annotation.drawing import DrawOptions
from posepipe.annotation.render import render_frames
from posepipe.engines.base import InferenceOptions, torch_installed
from posepipe.media.decode import CompactFrame
from posepipe.media.probe import VideoInfo
from posepipe.result import Frame
from posepipe.video.stages import Chunk, ChunkResult, infer_chunk

_INBOX_POLL_S = 0.5  # how often a task waiting for its render order looks at the abort event

# Codecs whose decoding costs more than keeping the frames does. Kept frames cannot reuse the
# decoder's buffers: each costs fresh memory, about 0.9 ms for a 768x576 4:2:0 frame on the dev
# machine (page faults), plus 0.15 ms to make it RGB again, where decoding it again costs 1.8 ms for
# H.264 (HEVC, VP9 and AV1 cost more) but 0.4 ms for MPEG-4 part 2 (vtest.avi), which is then
# decoded twice (docs/PERFORMANCE.md).
COSTLY_TO_DECODE = frozenset({"h264", "hevc", "vp9", "av1"})


@dataclass
class WorkerChannels:
    """What the parent and its workers talk through (made before the workers start)."""

    progress: Any  # SimpleQueue of frame counts (None stops the parent's reader)
    results: Any  # Queue of ChunkMessage
    inboxes: list[Any]  # one Queue of RenderOrder per worker
    claimed: Any  # Value("i"): inboxes claimed so far
    abort: Any  # Event: the job has failed

    @classmethod
    def create(cls, context: multiprocessing.context.BaseContext, workers: int) -> WorkerChannels:
        return cls(
            progress=context.SimpleQueue(),
            results=context.Queue(),
            inboxes=[context.Queue() for _ in range(workers)],
            claimed=context.Value("i", 0),
            abort=context.Event(),
        )


@dataclass(frozen=True)
class ChunkMessage:
    """A chunk's result (None: its inference failed; the task's future holds why), and the
    worker that kept its decoded frames (-1: none kept)."""

    chunk: int
    worker: int
    result: ChunkResult | None


@dataclass(frozen=True)
class RenderOrder:
    """The final frames of a kept chunk, how to draw and where to write its segment, and how
    many threads to render with."""

    chunk: int
    frames: list[Frame]
    destination: str
    draw: DrawOptions
    processing_fps: float | None
    threads: int = 1


_channels: WorkerChannels | None = None
_worker = -1


def init_worker(channels: WorkerChannels, torch_threads: int | None = None) -> None:
    """The initializer of each worker process: its channels, its inbox, its torch threads."""
    global _channels, _worker
    _channels = channels
    with channels.claimed.get_lock():
        _worker = channels.claimed.value
        channels.claimed.value += 1
    os.environ.setdefault("GLOG_minloglevel", "2")
    if torch_threads is not None:
        # Each worker's torch would otherwise start a thread per core: workers x cores threads
        # spinning against each other made a 2-worker run on 2 cores 10x slower than 1 worker.
        os.environ["OMP_NUM_THREADS"] = str(torch_threads)
        import torch

        torch.set_num_threads(torch_threads)


def torch_threads(engine: str, workers: int) -> int | None:
    """Intra-op threads for each worker's torch (its share of the cores); None without torch, or
    when ``OMP_NUM_THREADS`` already says."""
    if engine == "mediapipe" or "OMP_NUM_THREADS" in os.environ or not torch_installed():
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def report_progress(count: int) -> None:
    if _channels is not None:
        _channels.progress.put(count)


def pool_context() -> multiprocessing.context.BaseContext:
    # fork starts workers in milliseconds. The parent has no engine of its own when they start
    # (no MediaPipe, no torch, no CUDA context: the CLI never runs an image job in the same
    # process, "auto" is resolved in the workers, and boundary repairs run in the parent only
    # after the pool has forked all its workers on the first submission, before the progress
    # thread starts). Elsewhere (macOS, Windows) spawn is the safe default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def infer_task(
    video: str, chunk: Chunk, options: InferenceOptions, info: VideoInfo, keep: bool
) -> dict[str, float] | None:
    """Infer ``chunk`` and send its result; if ``keep``, then render it from the frames kept.

    Returns the render timings of a kept chunk, else None (also when the job was aborted).
    """
    assert _channels is not None, "infer_task runs in a worker started by init_worker"
    kept: list[CompactFrame | None] = []
    try:
        result = infer_chunk(
            video, chunk, options, info=info, progress=report_progress,
            on_frame=(lambda frame: kept.append(frame.compact)) if keep else None, compact_frames=keep,
        )  # fmt: skip
    except BaseException:
        _channels.results.put(ChunkMessage(chunk.index, -1, None))
        raise
    # A frame of a format that is not kept compact: the chunk is decoded again after all.
    keep = keep and all(frame is not None for frame in kept)
    _channels.results.put(ChunkMessage(chunk.index, _worker if keep else -1, result))
    if not keep:
        return None
    order = _wait_for_order(chunk.index)
    if order is None:
        return None
    compact = [frame for frame in kept if frame is not None]
    return render_frames(
        video, info, order.frames, Path(order.destination), order.draw,
        processing_fps=order.processing_fps, decoded=compact, threads=order.threads,
    )  # fmt: skip


def _wait_for_order(chunk: int) -> RenderOrder | None:
    assert _channels is not None
    inbox = _channels.inboxes[_worker]
    while not _channels.abort.is_set():
        try:
            order: RenderOrder = inbox.get(timeout=_INBOX_POLL_S)
        except queue.Empty:
            continue
        if order.chunk == chunk:
            return order
    return None


def render_task(
    video: str,
    info: VideoInfo,
    frames: list[Frame],
    destination: str,
    draw: DrawOptions,
    fps: float | None,
    threads: int = 1,
) -> dict[str, float]:
    """Render a chunk that was not kept: its frames decoded again."""
    return render_frames(video, info, frames, Path(destination), draw, processing_fps=fps, threads=threads)


class Progress:
    """A tqdm bar over a video's frames, fed from the workers (and repairs in the parent) through
    the progress queue. Its thread is started by :meth:`start`, once the workers have forked."""

    def __init__(self, total: int, enabled: bool, progress_queue: Any, label: str) -> None:
        self._queue = progress_queue
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

    def advance(self, frames: int) -> None:
        self._queue.put(frames)

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
