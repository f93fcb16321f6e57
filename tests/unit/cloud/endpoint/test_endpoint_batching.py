"""Cross-invocation batching: ``posepipe.engines.torch.batcher.FrameBatcher`` and the endpoint's use of it.

Concurrent streams (chunks of vtest.avi, each with its own tracker and its own ``max_poses``) run
through one batcher from their own threads, as the endpoint's gunicorn threads do, and give the
persons each stream gives alone: bit for bit when the networks see one image at a time, within
the float noise of oneDNN's batched convolutions otherwise. A frame that breaks the pipeline
fails its own stream only; a stream that stops or fails elsewhere does not hold up the others.
Everything runs the real ported networks on the CPU, torch pinned to one thread.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from posepipe.cloud.endpoint.app import create_app, endpoint_state
from posepipe.cloud.endpoint.engine import BatchSettings, TorchChunkEngine
from posepipe.cloud.endpoint.serve import (
    SPARE_THREADS,
    ServingPlan,
    gunicorn_options,
    parse_args,
    serving_plan,
    visible_gpus,
)
from posepipe.cloud.storage import get_json
from posepipe.engines.torch.batcher import BatchedStream, BatcherClosedError, FrameBatcher
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.networks import load_networks
from posepipe.engines.torch.video_tracking import VideoRegionTracker
from posepipe.errors import ModelError
from posepipe.media.decode import read_frames
from posepipe.result import Person

from tests.support.endpoint import OUTPUT_BUCKET, VIDEO_URI, S3Stack

Frames = list[tuple[np.ndarray, int]]
# (max_poses, first frame, frames): vtest.avi stretches with one to three pedestrians in view.
CHUNKS = ((4, 55, 30), (1, 150, 30), (2, 240, 30))
# What oneDNN's batched convolutions may move a landmark by, in pixels (or a visibility, world
# coordinate in metres), over these 30-frame tracks: measured 6e-4 on an AVX-512 EPYC (Genoa).
BATCH_NOISE = 2e-3
# On an AVX2-only EPYC (Milan) the batched convolutions round differently, and the tracker feeds
# each frame's landmarks into the next frame's region, so one 30-frame track drifts: measured
# there, the x, y of one stream differ by 0.025 px at the median, 1.08 px at the 99th percentile,
# 2.4 px at most (z, relative depth, by up to 12.7 px). The bounds for any CPU:
DRIFT_MEDIAN_PX = 0.1
DRIFT_P99_PX = 2.0
DRIFT_MAX_PX = 5.0
DRIFT_SCORE = 0.05  # visibility, presence


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def networks(model_path: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    return load_networks(model_path)


def engine_of(networks: tuple[torch.nn.Module, torch.nn.Module], batch_size: int) -> TorchBlazePose:
    detector, landmarks = networks
    return TorchBlazePose(detector, landmarks, "cpu", batch_size=batch_size)


@pytest.fixture(scope="module")
def chunk_frames(sample: Callable[[str], Path]) -> list[Frames]:
    video = sample("vtest.avi")
    return [
        [(f.rgb, round(f.t * 1000)) for f in read_frames(video, start, start + count)]
        for _, start, count in CHUNKS
    ]


def alone(engine: TorchBlazePose, max_poses: int, frames: Frames) -> list[list[Person]]:
    tracker = VideoRegionTracker(engine, max_poses=max_poses)
    return [tracker.detect_for_video(rgb, t) for rgb, t in frames]


def run_concurrently(
    streams: list[BatchedStream[Any]],
    inputs: list[Frames],
    work: Callable[[int, BatchedStream[Any], Frames], Any] | None = None,
) -> list[Any]:
    """Each stream fed from its own thread; a thread's exception is returned in its place."""
    results: list[Any] = [None] * len(streams)

    def feed(k: int) -> None:
        try:
            if work is not None:
                results[k] = work(k, streams[k], inputs[k])
            else:
                results[k] = [streams[k].detect_for_video(rgb, t) for rgb, t in inputs[k]]
        except Exception as exc:
            results[k] = exc
        finally:
            streams[k].close()

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(len(streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def largest_difference(a: list[list[Person]], b: list[list[Person]]) -> float:
    """The largest difference of any landmark value (all 5 columns) or world coordinate; the
    person counts must agree frame by frame."""
    assert [len(p) for p in a] == [len(p) for p in b]
    largest = 0.0
    for one, other in zip(a, b, strict=True):
        for p, q in zip(one, other, strict=True):
            largest = max(largest, float(np.abs(p.landmarks - q.landmarks).max()))
            largest = max(largest, float(np.abs(p.world_landmarks - q.world_landmarks).max()))
    return largest


@pytest.mark.parametrize("batch_size", [1, 64], ids=["networks-one-image-at-a-time", "networks-batched"])
def test_concurrent_streams_give_what_each_gives_alone(
    networks: tuple[torch.nn.Module, torch.nn.Module], chunk_frames: list[Frames], batch_size: int
) -> None:
    engine = engine_of(networks, batch_size)
    expected = [
        alone(engine, max_poses, frames)
        for (max_poses, _, _), frames in zip(CHUNKS, chunk_frames, strict=True)
    ]
    assert sum(len(p) for stream in expected for p in stream) >= 50
    # A long delay: batches leave when every open stream has its frame in (the streams are
    # opened first, so every batch holds all three), never on the timer.
    with FrameBatcher(engine, delay_s=5.0) as batcher:
        streams = [batcher.open_stream(max_poses=max_poses) for max_poses, _, _ in CHUNKS]
        results = run_concurrently(streams, chunk_frames)
        stats = batcher.stats
    for result in results:
        assert not isinstance(result, Exception), result
    assert dict(stats.sizes) == {3: 30}, stats.to_dict()
    assert stats.timed_out_batches == 0
    assert all(s.stats.mean_size == 3 and s.stats.frames == 30 for s in streams)
    differences = [largest_difference(e, r) for e, r in zip(expected, results, strict=True)]
    print(f"batch_size {batch_size}: batches {stats.to_dict()}, largest differences {differences}")
    if batch_size == 1:
        assert differences == [0.0, 0.0, 0.0]  # bit for bit
    else:
        for e, r in zip(expected, results, strict=True):
            assert_within_drift(e, r)


def assert_within_drift(a: list[list[Person]], b: list[list[Person]]) -> None:
    """The same persons frame by frame, their x, y within the drift bounds (see DRIFT_*)."""
    assert [len(p) for p in a] == [len(p) for p in b]
    xy = [
        np.abs(p.xy - q.xy).ravel()
        for one, other in zip(a, b, strict=True)
        for p, q in zip(one, other, strict=True)
    ]
    scores = [
        np.abs(p.landmarks[:, 3:] - q.landmarks[:, 3:]).ravel()
        for one, other in zip(a, b, strict=True)
        for p, q in zip(one, other, strict=True)
    ]
    if not xy:
        return
    moved = np.concatenate(xy)
    assert np.median(moved) <= DRIFT_MEDIAN_PX
    assert np.percentile(moved, 99) <= DRIFT_P99_PX
    assert moved.max() <= DRIFT_MAX_PX
    assert np.concatenate(scores).max() <= DRIFT_SCORE


def test_a_frame_that_breaks_the_pipeline_fails_its_own_stream_only(
    networks: tuple[torch.nn.Module, torch.nn.Module], chunk_frames: list[Frames]
) -> None:
    engine = engine_of(networks, 1)
    inputs = [frames[:8] for frames in chunk_frames]
    expected = [
        alone(engine, max_poses, frames) for (max_poses, _, _), frames in zip(CHUNKS, inputs, strict=True)
    ]
    empty = np.zeros((0, 0, 3), dtype=np.uint8)  # an RGB uint8 image the crop cannot take

    def work(k: int, stream: BatchedStream[Any], frames: Frames) -> Any:
        out: list[Any] = []
        for step, (rgb, t) in enumerate(frames):
            if k == 1 and step == 3:
                with pytest.raises(Exception) as failure:  # noqa: PT011 - whatever the pipeline raises
                    stream.detect_for_video(empty, t - 1)
                out.append(failure.value)
            out.append(stream.detect_for_video(rgb, t))
        return out

    with FrameBatcher(engine, delay_s=5.0) as batcher:
        streams = [batcher.open_stream(max_poses=max_poses) for max_poses, _, _ in CHUNKS]
        results = run_concurrently(streams, inputs, work)
        stats = batcher.stats
    assert stats.failed_batches == 1
    failure = results[1].pop(3)
    assert isinstance(failure, Exception)
    assert not isinstance(failure, BatcherClosedError), failure
    # The failed frame left every tracker as it was: all three go on as if it never came.
    for result, reference in zip(results, expected, strict=True):
        assert largest_difference(reference, result) == 0.0


def test_streams_that_stop_or_fail_do_not_hold_up_the_others(
    networks: tuple[torch.nn.Module, torch.nn.Module], chunk_frames: list[Frames]
) -> None:
    engine = engine_of(networks, 1)
    frames = chunk_frames[0][:6]
    expected = alone(engine, 4, frames)

    def work(k: int, stream: BatchedStream[Any], inputs: Frames) -> Any:
        if k == 1:
            stream.detect_for_video(*inputs[0])
            raise RuntimeError("the chunk's video stopped decoding")  # closes the stream (see feed)
        if k == 2:
            return []  # a stream opened and never used
        return [stream.detect_for_video(rgb, t) for rgb, t in inputs]

    with FrameBatcher(engine, delay_s=10.0) as batcher:
        streams = [batcher.open_stream(max_poses=4) for _ in range(3)]
        results = run_concurrently(streams, [frames] * 3, work)
    assert isinstance(results[1], RuntimeError)
    assert largest_difference(expected, results[0]) == 0.0
    # Every batch started because every open stream had its frame in, never because the delay
    # ran out: the closed streams were not waited for.
    assert streams[0].stats.frames == len(frames)
    assert streams[0].stats.timed_out == 0
    assert batcher.stats.timed_out_batches == 0


def test_frames_are_checked_in_the_callers_thread_and_closing_drains_the_queue(
    networks: tuple[torch.nn.Module, torch.nn.Module], chunk_frames: list[Frames]
) -> None:
    engine = engine_of(networks, 1)
    rgb, t = chunk_frames[0][0]
    expected = alone(engine, 4, [(rgb, t)])
    batcher = FrameBatcher(engine, delay_s=5.0)
    waiting, other = batcher.open_stream(max_poses=4), batcher.open_stream(max_poses=4)
    with pytest.raises(ValueError, match="RGB uint8"):
        waiting.detect_for_video(rgb.astype(np.float32), t)
    assert batcher.stats.batches == 0
    # One of two open streams hands a frame in: its batch waits for the other's, then the
    # batcher closes. The frame still runs; nothing is taken after.
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(waiting.detect_for_video(rgb, t)))
    thread.start()
    time.sleep(0.3)
    assert result == []
    batcher.close()
    thread.join(30)
    assert largest_difference(expected, result) == 0.0
    with pytest.raises(BatcherClosedError):
        other.detect_for_video(rgb, t + 40)
    with pytest.raises(BatcherClosedError):
        batcher.open_stream(max_poses=1)
    with pytest.raises(ValueError, match="max_batch"):
        FrameBatcher(engine, max_batch=0)


def test_streams_with_other_detection_thresholds_batch_apart(
    networks: tuple[torch.nn.Module, torch.nn.Module], chunk_frames: list[Frames]
) -> None:
    engine = engine_of(networks, 64)
    frames = chunk_frames[0][:3]
    with FrameBatcher(engine, delay_s=0.05, max_batch=2) as batcher:
        streams = [
            batcher.open_stream(max_poses=4),
            batcher.open_stream(max_poses=4, min_detection_confidence=0.6),
            batcher.open_stream(max_poses=4, min_presence_confidence=0.5),  # the engine's own: shared
        ]
        assert streams[0].tracker.engine is streams[2].tracker.engine is engine
        assert streams[1].tracker.engine.min_detection_confidence == 0.6
        assert streams[1].tracker.engine.person_detector.network is engine.person_detector.network
        results = run_concurrently(streams, [frames] * 3)
        stats = batcher.stats
    assert all(not isinstance(r, Exception) for r in results)
    assert max(stats.sizes) <= 2
    assert stats.frames == 9
    assert streams[1].stats.max_size == 1  # alone in its group


# --- the endpoint ------------------------------------------------------------------------------


def test_concurrent_invocations_are_batched_and_give_each_chunks_own_result(s3: S3Stack) -> None:
    """Three invocations at once through the Flask app (threads, as gunicorn's): their frames
    go through the networks together, and each stored result is the chunk's result alone."""
    engine = TorchChunkEngine(settings=BatchSettings(delay_ms=2000.0, max_batch=8))
    app = create_app(lambda: engine, load_in_background=False)
    ping = app.test_client().get("/ping").get_json()
    assert (ping["status"], ping["max_batch"], ping["batch_delay_ms"], ping["hwaccel"]) == (
        "ready",
        8,
        2000.0,
        "auto",
    )
    chunks = [
        {"index": k, "start": start, "stop": start + 20, "warmup_start": start}
        for k, (_, start, _) in enumerate(CHUNKS)
    ]

    def body(chunk: dict[str, int], name: str) -> dict[str, Any]:
        return {"video": VIDEO_URI, "chunk": chunk, "output": f"s3://{OUTPUT_BUCKET}/batching/{name}.json",
                "options": {"max_poses": CHUNKS[chunk["index"]][0]}}  # fmt: skip

    def stored(answer: dict[str, Any]) -> Any:
        return get_json(s3.client, OUTPUT_BUCKET, answer["output"].split("/", 3)[3])

    client = app.test_client()
    client.post("/invocations", json=body(chunks[0], "warm"))  # fetches and caches the video
    alone_answers = [
        client.post("/invocations", json=body(c, f"alone-{c['index']}")).get_json() for c in chunks
    ]
    assert [a["timings"]["batch_mean"] for a in alone_answers] == [1.0, 1.0, 1.0]

    # Held until all three streams are open, so that every batch holds the three chunks' frames.
    answers: list[Any] = [None] * 3
    open_streams = threading.Barrier(3)
    batcher = engine.batcher
    original = batcher.open_estimator

    def open_estimator(options: Any) -> Any:
        stream = original(options)
        open_streams.wait(30)
        return stream

    batcher.open_estimator = open_estimator  # type: ignore[method-assign]

    def invoke(k: int) -> None:
        response = app.test_client().post("/invocations", json=body(chunks[k], f"together-{k}"))
        answers[k] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=invoke, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    batcher.open_estimator = original  # type: ignore[method-assign]
    for status, answer in answers:
        assert status == 200, answer
        assert answer["timings"]["batch_mean"] == answer["timings"]["batch_max"] == 3.0
        assert answer["timings"]["batch_timed_out"] == 0.0  # no batch waited out the delay
        assert answer["timings"]["nvdec"] == 0.0  # no CUDA here: software decoding
    assert batcher.stats.sizes[3] == 20  # batches of three frames, one per chunk and step
    for (_, answer), reference in zip(answers, alone_answers, strict=True):
        together, by_itself = stored(answer), stored(reference)
        assert together["model"] == by_itself["model"]
        assert together["model"]["engine"] == "torch"
        frames_together, frames_alone = together["frames"], by_itself["frames"]
        assert [len(f["persons"]) for f in frames_together] == [len(f["persons"]) for f in frames_alone]
        moved, scores, world = [], [], []
        for f, g in zip(frames_together, frames_alone, strict=True):
            for p, q in zip(f["persons"], g["persons"], strict=True):
                a, b = np.array(p["landmarks"]), np.array(q["landmarks"])
                moved.append(np.abs(a[:, :2] - b[:, :2]).ravel())
                scores.append(np.abs(a[:, 3:] - b[:, 3:]).ravel())
                world.append(np.abs(np.array(p["world_landmarks"]) - np.array(q["world_landmarks"])).ravel())
        # Stored values are rounded (2 decimals in pixels, 4 for scores and metres); the drift
        # bounds are those of test_concurrent_streams_give_what_each_gives_alone.
        if not moved:
            continue  # no persons in this chunk, alone or together (the counts agree)
        xy = np.concatenate(moved)
        assert np.median(xy) <= DRIFT_MEDIAN_PX + 0.01
        assert np.percentile(xy, 99) <= DRIFT_P99_PX
        assert xy.max() <= DRIFT_MAX_PX
        assert np.concatenate(scores).max() <= DRIFT_SCORE
        assert np.median(np.concatenate(world)) <= 0.01  # metres
    endpoint_state(app).close()
    assert engine.batcher.closed
    json.dumps(batcher.stats.to_dict())  # what the logs and the bench report


# --- serving settings for the GPU ----------------------------------------------------------------


def test_gpus_are_found_without_cuda(tmp_path: Path) -> None:
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / name).touch()
    assert visible_gpus({}, tmp_path) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 3"}, tmp_path) == ["2", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, tmp_path) == []
    assert visible_gpus({}, tmp_path / "missing") == []


def test_the_gpu_engine_gets_one_worker_per_gpu_with_threads_for_its_chunks() -> None:
    assert serving_plan({}, gpus=["0"], cpus=16) == ServingPlan(workers=1, threads=16, gpus=("0",))
    assert serving_plan({}, gpus=["0", "1", "2", "3"], cpus=8) == ServingPlan(4, 4, ("0", "1", "2", "3"))
    explicit = {
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "POSEPIPE_SERVER_THREADS": "12",
        "POSEPIPE_ENGINE": "torch",
    }
    assert serving_plan(explicit, gpus=["0"], cpus=16) == ServingPlan(2, 12, ("0",))
    # MediaPipe, or no GPU: one worker per CPU, two threads each (as before).
    assert serving_plan({"POSEPIPE_ENGINE": "mediapipe"}, gpus=["0"], cpus=16) == ServingPlan(16, 2)
    assert serving_plan({}, gpus=[], cpus=2) == ServingPlan(2, 2)


def test_each_gunicorn_worker_is_pinned_to_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn.config import Config  # type: ignore[import-untyped]

    args = parse_args(["serve", "--workers", "2", "--threads", "8"])
    options = gunicorn_options(args, ["0", "1"])
    config = Config()
    for name, value in options.items():
        config.set(name, value)  # gunicorn validates the hooks (callables of two arguments)
    assert (config.workers, config.threads) == (2, 8 + SPARE_THREADS)
    pre_fork, post_fork = options["pre_fork"], options["post_fork"]

    class Worker:
        pass

    class Server:
        def __init__(self) -> None:
            self.WORKERS: dict[int, Worker] = {}

    server, workers = Server(), [Worker() for _ in range(3)]
    pre_fork(server, workers[0])
    server.WORKERS[100] = workers[0]
    pre_fork(server, workers[1])
    server.WORKERS[101] = workers[1]
    del server.WORKERS[100]  # worker 0 died: its replacement takes its GPU
    pre_fork(server, workers[2])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    seen = []
    for worker in workers:
        post_fork(server, worker)
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["0", "1", "0"]
    assert "pre_fork" not in gunicorn_options(args)


def test_batch_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POSEPIPE_BATCH_DELAY_MS", "POSEPIPE_MAX_BATCH", "POSEPIPE_HWACCEL"):
        monkeypatch.delenv(name, raising=False)
    assert BatchSettings.from_environment() == BatchSettings(delay_ms=4.0, max_batch=32, hwaccel="auto")
    monkeypatch.setenv("POSEPIPE_BATCH_DELAY_MS", "2.5")
    monkeypatch.setenv("POSEPIPE_MAX_BATCH", "64")
    monkeypatch.setenv("POSEPIPE_HWACCEL", "none")
    assert BatchSettings.from_environment() == BatchSettings(delay_ms=2.5, max_batch=64, hwaccel="none")
    for name, value, message in (
        ("POSEPIPE_BATCH_DELAY_MS", "soon", "POSEPIPE_BATCH_DELAY_MS: 'soon'"),
        ("POSEPIPE_MAX_BATCH", "0", "POSEPIPE_MAX_BATCH: '0'"),
        ("POSEPIPE_HWACCEL", "cuda", "POSEPIPE_HWACCEL: 'cuda' is not one of none, auto"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(ModelError, match=message):
                BatchSettings.from_environment()
