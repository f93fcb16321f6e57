"""``posepipe video``'s runner (posepipe.video.local) on a real clip: decoding once, and failing
without hanging.

A chunk's worker keeps the frames it decoded for inference and renders the chunk from them once
the parent has aggregated it; a chunk over the memory budget is decoded again by a render task.
Both must give the very same annotated video and keypoints.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from posepipe.video.local import VideoJobOptions, VideoJobReport, run_video

from tests.support.uistack import write_people_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    """40 frames of vtest.avi with people walking, as H.264 (two chunks of 20 with 2 workers)."""
    return write_people_clip(tmp_path_factory.mktemp("clip"), sample("vtest.avi"))


def _run(clip: Path, out: Path, **options: Any) -> VideoJobReport:
    return run_video(clip, out, VideoJobOptions(workers=2, chunk_frames=20, warmup_s=1.0, **options))


def _run_in_a_thread(job: Callable[[], VideoJobReport]) -> dict[str, Any]:
    """Run a job on a thread, failing the test if it is still running after 300 s: its report, or
    the error it raised (``error`` None when it raised none)."""
    outcome: dict[str, Any] = {"error": None}

    def run() -> None:
        try:
            outcome["report"] = job()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the job hangs"
    return outcome


def _pictures(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as video:
        return [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]


def test_decoding_once_gives_the_same_video_and_keypoints_as_decoding_twice(
    clip: Path, tmp_path: Path
) -> None:
    once = _run(clip, tmp_path / "once")
    twice = _run(clip, tmp_path / "twice", keep_decoded_mb=0)
    assert once.summary["frames_decoded_for_render"] == 0  # both chunks rendered from kept frames
    assert twice.summary["frames_decoded_for_render"] == 40  # both decoded again
    assert once.summary["person_frames"] > 0
    keypoints = [json.loads((r.out_dir / "keypoints.json").read_text())["frames"] for r in (once, twice)]
    assert keypoints[0] == keypoints[1]
    pictures = [_pictures(r.out_dir / "annotated.mp4") for r in (once, twice)]
    assert len(pictures[0]) == len(pictures[1]) == 40
    for a, b in zip(*pictures, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_budget_for_one_chunk_keeps_one_and_decodes_the_other(clip: Path, tmp_path: Path) -> None:
    """A worker's share of the budget holds 20 frames of 768x576 4:2:0 (13.3 MB) but not 30 (19.9
    MB): with 30-frame chunks the first (30 frames) is decoded again, the second (10) is kept."""
    mb_per_worker = 15
    report = run_video(
        clip,
        tmp_path / "out",
        VideoJobOptions(workers=2, chunk_frames=30, warmup_s=1.0, keep_decoded_mb=2 * mb_per_worker),
    )
    assert report.summary["frames_decoded_for_render"] == 30
    assert len(_pictures(report.out_dir / "annotated.mp4")) == 40


def test_a_chunk_that_fails_fails_the_job_without_hanging(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first chunk's inference raises while the second chunk's worker waits, holding its
    frames, for the order to render them (which can only come after the first chunk): the job
    fails with the chunk's error, the waiting worker lets go, and no output appears. (The workers
    are forked: they see the patched function.)"""
    from posepipe.video.stages import infer_chunk as real

    def failing(video: str, chunk: Any, *args: Any, **kwargs: Any) -> Any:
        if chunk.index == 0:
            raise RuntimeError("chunk 0 cannot be read")
        return real(video, chunk, *args, **kwargs)

    monkeypatch.setattr("posepipe.video.workers.infer_chunk", failing)
    outcome = _run_in_a_thread(lambda: _run(clip, tmp_path / "out"))
    assert isinstance(outcome["error"], RuntimeError)
    assert "chunk 0 cannot be read" in str(outcome["error"])
    assert not (tmp_path / "out" / clip.stem).exists()


def test_a_result_still_on_its_way_when_its_task_returns_is_waited_for(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker puts a chunk's result on the results queue and its task returns; the queue's
    feeder thread pickles and sends the result afterwards, which for a chunk of many persons on a
    busy machine takes seconds. Here sending takes 3 s: the parent, finding the task done and no
    result yet, must wait for it rather than call the worker dead (which also left the job
    hanging, the worker unable to exit with its result unsent)."""
    import time

    from posepipe.video.workers import ChunkMessage

    class SlowToSend(ChunkMessage):
        def __reduce__(self) -> tuple[Any, ...]:
            time.sleep(3.0)
            return (_chunk_message, (self.chunk, self.worker, self.result))

    monkeypatch.setattr("posepipe.video.workers.ChunkMessage", SlowToSend)
    outcome = _run_in_a_thread(lambda: _run(clip, tmp_path / "out", annotate=False))
    assert outcome["error"] is None, outcome["error"]
    assert outcome["report"].summary["frames"] == 40


def _chunk_message(chunk: int, worker: int, result: Any) -> Any:
    """Unpickles a chunk message (as whatever class posepipe.video.workers names ChunkMessage)."""
    from posepipe.video import workers

    return workers.ChunkMessage(chunk, worker, result)
