"""Throughput of the torch engine's networks per batch size, against the floor the device allows.

For each network (the BlazePose detector at 224x224, the Full landmark model at 256x256), each
dtype (fp32; fp16 on CUDA) and each batch size: frames per second, and the floor it is compared
to: the network's FLOPs (counted by ``torch.utils.flop_counter``) over the device's measured peak
(a large matrix product in the same dtype), and the bytes a frame moves (input, weights once per
batch, output) over the measured memory bandwidth (a large copy). The device's name, the torch
version and the settings are printed with the figures. On a machine without CUDA it runs on the
CPU and says so.

    python bench/gpu_throughput.py [--batches 1,8,32,128] [--seconds 2] [--compile] [--json out.json]

Three more modes, each printing the device it ran on:

``--parity``: the torch engine's IMAGE-mode parity with MediaPipe on messi5.jpg,
basketball1.png and basketball2.png (median and 95th-percentile landmark distance in pixels,
world landmarks' median distance in cm, per matched person, against the issue's bounds of 1 px,
3 px and 1 cm) for each precision in ``--precisions`` (``fp32``, ``fp16``, ``fp16-det32``:
float16 landmarks beside a float32 detector, ``bf16``) on the device (CUDA when there is one).
MediaPipe runs first, then the torch engine (never interleaved).

    python bench/gpu_throughput.py --parity [--precisions fp32,fp16,fp16-det32] [--device cpu]

``--invocation``: full endpoint invocations (S3 chunk in, result out) through the endpoint's
Flask app with moto's S3 in-process: ``--streams`` invocations at once (threads, as gunicorn's),
each a chunk of ``--frames`` frames of vtest.avi, their frames batched by the torch engine's
frame batcher; frames per second over the wall time of each round (the first round also
downloads and probes the video), and the batch sizes formed.

    python bench/gpu_throughput.py --invocation [--engine torch] [--streams 4] [--frames 60]
        [--rounds 2] [--batch-delay-ms 4]

``--topdown``: the deployed endpoint's engine, the top-down engine (``--detector``, default
centernet; BlazePose Full; MoveNet Lightning's second opinion; ``--max-poses``, default the
deployment's 20) with its networks in PyTorch (``TorchTopDownNetworks``), end to end from decoded
RGB frame to keypoints. The first ``--frames`` frames of vtest.avi (768x576, people walking: the
persons per frame are printed) are decoded once and kept in memory (decoding is not timed). For
each batch size N in ``--batches`` (default 1,8,32,128 on CUDA, 1,4,16 on the CPU): N streams,
each its own ``TopDownTracker`` over the one set of networks, stream k starting at frame k *
frames / N and starting again (a new video, its tracker reset) at the end; each step advances
every stream by one frame with ``detect_for_video_batch``, as the endpoint's ``TopDownBatcher``
batches the chunks in flight (without its threads and delay), so a step is N frames. The streams'
detector frames are staggered (they join over the first ``detect_every`` steps, as chunks arrive
at different times); after a warm-up (at least 2 steps and half of ``--seconds``), steps run for
at least ``--seconds`` (whole detection cycles unless N is a multiple of ``detect_every``).
Printed: the device, torch and CUDA versions, the target; frames/s, persons/s, the networks'
batches (frames per detector call, regions per landmark call, before ``--network-batch`` splits
them) and the peak GPU memory (``torch.cuda.max_memory_allocated``, reset per batch size). Then
parity: the first ``--parity-frames`` frames as one VIDEO stream through the CPU engine
(``CpuTopDownNetworks``: ONNX Runtime, LiteRT) and through the torch networks,
``compare_results``' matched share and median distance against issue 21's bar (95 %, 1 px).
``--detector-dtype``, ``--landmark-dtype``, ``--keypoint-dtype`` override the networks' dtypes.

    python bench/gpu_throughput.py --topdown [--device cuda] [--frames 400] [--batches 1,8,32,128]
        [--seconds 5] [--parity-frames 100] [--landmark-dtype float16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from posepipe.assets.model_build import build_model
from posepipe.assets.pose_model import resolve_model_path
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    import numpy as np
    from posepipe.engines.base import PoseEngineOptions
    from posepipe.engines.topdown.driver import TopDownNetworks
    from posepipe.engines.topdown.estimator import TopDownPoseEstimator, TopDownTracker
    from posepipe.engines.topdown.models import TopDownModels
    from posepipe.engines.topdown.person_boxes import PersonBox
    from posepipe.engines.topdown.regions import Region
    from posepipe.engines.topdown.steps import Role


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rate(run: Callable[[], object], items: int, device: torch.device, seconds: float) -> float:
    """Items per second of ``run``, after a warm-up, over at least ``seconds``."""
    for _ in range(3):
        run()
    synchronize(device)
    count, started = 0, time.perf_counter()
    while True:
        run()
        count += 1
        synchronize(device)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            return count * items / elapsed


def timed_load(model: Path) -> float:
    """Seconds to read the bundle and build both networks (the endpoint's and a worker's start)."""
    from posepipe.engines.torch.networks import load_networks

    started = time.perf_counter()
    load_networks(model)
    return time.perf_counter() - started


def peak_flops(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    size = 4096 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    products = timed_rate(lambda: a @ b, 1, device, seconds)
    return products * 2 * size**3


def peak_bandwidth(device: torch.device, seconds: float) -> float:
    elements = (256 if device.type == "cuda" else 32) * 1024 * 1024
    source = torch.empty(elements, device=device, dtype=torch.float32)
    target = torch.empty_like(source)
    copies = timed_rate(lambda: target.copy_(source), 1, device, seconds)
    return copies * 2 * source.element_size() * elements  # read and write


def count_flops(module: torch.nn.Module, sample: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(sample)
    return int(counter.get_total_flops())


def bench_network(
    name: str,
    module: torch.nn.Module,
    size: int,
    *,
    device: torch.device,
    dtype: torch.dtype,
    batches: list[int],
    seconds: float,
    compile_module: bool,
    peak: float,
    bandwidth: float,
) -> list[dict[str, Any]]:
    module = module.to(device=device, dtype=dtype).eval()
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    flops = count_flops(module, torch.rand(1, 3, size, size, device=device, dtype=dtype))
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    weight_bytes += sum(b.numel() * b.element_size() for b in module.buffers())
    runner: Callable[[torch.Tensor], object] = torch.compile(module) if compile_module else module
    rows = []
    for batch in batches:
        images = torch.rand(batch, 3, size, size, device=device, dtype=dtype)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            rate = timed_rate(lambda images=images: runner(images), batch, device, seconds)  # type: ignore[misc]
        frame_bytes = images[0].numel() * images.element_size() + weight_bytes / batch
        floor = max(flops / peak, frame_bytes / bandwidth)
        rows.append(
            {
                "network": name, "dtype": str(dtype).removeprefix("torch."), "batch": batch,
                "frames_per_s": round(rate, 1), "gflop_per_frame": round(flops / 1e9, 3),
                "floor_frames_per_s": round(1 / floor, 1), "of_floor": round(rate * floor, 3),
            }
        )  # fmt: skip
        print(
            f"{name:10s} {rows[-1]['dtype']:8s} batch {batch:4d}: {rate:10.1f} frames/s "
            f"(floor {1 / floor:10.1f}: {rate * floor:6.1%} of it)"
        )
    return rows


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores = os.cpu_count()
    return f"CPU ({cpu_name()}, {cores} cores, {torch.get_num_threads()} torch threads)"


PRECISIONS: dict[str, tuple[torch.dtype, torch.dtype]] = {  # (landmarks, detector)
    "fp32": (torch.float32, torch.float32),
    "fp16": (torch.float16, torch.float16),
    "fp16-det32": (torch.float16, torch.float32),
    "bf16": (torch.bfloat16, torch.bfloat16),
}
PARITY_PHOTOS = ("messi5.jpg", "basketball1.png", "basketball2.png")


def run_parity(model: Path, device: torch.device, precisions: list[str]) -> list[dict[str, Any]]:
    """IMAGE-mode parity with MediaPipe per photo and precision (see the module docstring)."""
    from posepipe.assets.samples import sample_path
    from posepipe.engines.base import PoseEngineOptions
    from posepipe.engines.mediapipe import MediaPipePoseEstimator
    from posepipe.engines.torch.blazepose import TorchBlazePose
    from posepipe.engines.torch.networks import load_networks
    from posepipe.engines.torch.parity import compare_persons
    from posepipe.media.images import load_image

    images = {name: load_image(sample_path(name)).rgb for name in PARITY_PHOTOS}
    with MediaPipePoseEstimator(PoseEngineOptions(model_path=model, max_poses=4)) as mediapipe:
        reference = {name: mediapipe.detect(rgb) for name, rgb in images.items()}
    detector, landmarks = load_networks(model)
    print(f"parity on {device_name(device)}; torch {torch.__version__}")
    rows: list[dict[str, Any]] = []
    for precision in precisions:
        landmark_dtype, detector_dtype = PRECISIONS[precision]
        engine = TorchBlazePose(
            detector.to(device, detector_dtype), landmarks.to(device, landmark_dtype), device, landmark_dtype,
            detector_dtype=detector_dtype,
        )  # fmt: skip
        engine.detect_images([images[PARITY_PHOTOS[0]]], max_poses=4)  # warm-up
        for name, rgb in images.items():
            started = time.perf_counter()
            persons = engine.detect_image(rgb, max_poses=4)
            synchronize(device)
            seconds = time.perf_counter() - started
            figures = compare_persons(reference[name], persons)
            row: dict[str, Any] = {
                "precision": precision, "image": name, "persons": len(persons),
                "mediapipe_persons": len(reference[name]), "seconds": round(seconds, 3),
                "within_bounds": figures is not None and all(f.within_bounds for f in figures),
                "figures": [vars(f) for f in figures] if figures is not None else None,
            }  # fmt: skip
            rows.append(row)
            described = (
                "; ".join(str(f) for f in figures) if figures is not None else "persons do not pair up"
            )
            verdict = "within bounds" if row["within_bounds"] else "OUT OF BOUNDS"
            print(f"{precision:10s} {name:16s} {len(persons)}/{len(reference[name])} persons, "
                  f"{seconds:6.2f} s: {described} ({verdict})")  # fmt: skip
    return rows


def run_invocations(
    engine_name: str, streams: int, frames: int, rounds: int, delay_ms: float, max_batch: int
) -> dict[str, Any]:
    """Rounds of ``streams`` concurrent endpoint invocations (see the module docstring)."""
    import sys
    import threading

    from moto import mock_aws
    from posepipe.assets.samples import sample_path

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("SM_MODEL_DIR", "/nonexistent")):  # fmt: skip
        os.environ[name] = value
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sagemaker_endpoint"))
    from posepipe.cloud.endpoint.app import create_app
    from posepipe.cloud.endpoint.engine import (
        BatchSettings,
        ChunkEngine,
        MediaPipeChunkEngine,
        TorchChunkEngine,
    )

    def factory() -> ChunkEngine:
        if engine_name == "torch":
            return TorchChunkEngine(settings=BatchSettings(delay_ms=delay_ms, max_batch=max_batch))
        return MediaPipeChunkEngine()

    video = sample_path("vtest.avi")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bench-in")
        s3.create_bucket(Bucket="bench-out")
        s3.upload_file(str(video), "bench-in", "vtest.avi")
        app = create_app(factory, load_in_background=False)
        ping = app.test_client().get("/ping").get_json()
        print(f"endpoint: {ping}")
        report: dict[str, Any] = {"engine": ping.get("engine"), "device": ping.get("device", "cpu"),
                                  "dtype": ping.get("dtype"), "streams": streams, "frames": frames,
                                  "torch_threads": torch.get_num_threads(), "rounds": []}  # fmt: skip
        for round_index in range(rounds):
            answers: list[dict[str, Any]] = [{} for _ in range(streams)]

            def invoke(
                k: int, round_index: int = round_index, answers: list[dict[str, Any]] = answers
            ) -> None:
                start = 55 + 150 * k
                body = {
                    "video": "s3://bench-in/vtest.avi",
                    "chunk": {"index": k, "start": start, "stop": start + frames, "warmup_start": start},
                    "output": f"s3://bench-out/round{round_index}/{k:05d}.json",
                }
                response = app.test_client().post("/invocations", json=body)
                answers[k] = {"status": response.status_code, **response.get_json()}

            threads = [threading.Thread(target=invoke, args=(k,)) for k in range(streams)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            if any(a["status"] != 200 for a in answers):
                raise RuntimeError(f"an invocation failed: {answers}")
            emitted = sum(a["frames"] for a in answers)
            timings = [a["timings"] for a in answers]
            row = {
                "round": round_index, "wall_s": round(wall, 3), "frames_per_s": round(emitted / wall, 2),
                "batch_mean": [t.get("batch_mean") for t in timings],
                "batch_max": [t.get("batch_max") for t in timings],
                "nvdec": [t.get("nvdec") for t in timings],
                "video_cached": [t.get("video_cached") for t in timings],
            }  # fmt: skip
            report["rounds"].append(row)
            print(f"round {round_index}: {streams} invocations x {frames} frames in {wall:.2f} s: "
                  f"{emitted / wall:.1f} frames/s; batch mean per chunk {row['batch_mean']}, "
                  f"nvdec {row['nvdec']}")  # fmt: skip
        from posepipe.cloud.endpoint.app import endpoint_state

        endpoint_state(app).close()
    return report


TOPDOWN_TARGET = "target: 2,000 frames/s of 768x576 video with about 6 people on one H100"
TOPDOWN_MIN_MATCHED = 0.95  # issue 21's bar for the torch engine against the CPU engine
TOPDOWN_MAX_MEDIAN_PX = 1.0


class RecordingNetworks:
    """A :class:`~posepipe.engines.topdown.driver.TopDownNetworks` that hands every call to
    ``inner`` and records its batch: frames per detector call, regions per landmark call."""

    def __init__(self, inner: TopDownNetworks) -> None:
        self.inner = inner
        self.sizes: dict[str, list[int]] = {}

    def prepare(self, images: Sequence[Any]) -> list[Any]:
        return self.inner.prepare(images)

    def find_persons(self, frames: Sequence[Any]) -> list[list[PersonBox]]:
        self.sizes.setdefault("detector", []).append(len(frames))
        return self.inner.find_persons(frames)

    def estimate(
        self, role: Role, frames: Sequence[Any], regions: Sequence[Sequence[Region]]
    ) -> list[list[Any]]:
        self.sizes.setdefault(role, []).append(sum(len(boxes) for boxes in regions))
        return self.inner.estimate(role, frames, regions)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per network: its calls, and the mean and largest batch of a call."""
        return {
            what: {"calls": len(sizes), "mean": round(sum(sizes) / len(sizes), 1), "max": max(sizes)}
            for what, sizes in self.sizes.items()
            if sizes
        }


class VideoStreams:
    """``count`` concurrent streams over ``frames`` (a loop of the video), each its own
    :class:`~posepipe.engines.topdown.estimator.TopDownTracker` over the one set of networks:
    stream k starts at frame ``k * len(frames) // count`` and, at the end, starts again from the
    first frame as a new video (its tracker reset)."""

    def __init__(self, frames: Sequence[tuple[np.ndarray, int]], trackers: Sequence[TopDownTracker]) -> None:
        if not frames:
            raise ValueError("no frames")
        self.frames = frames
        self.trackers = list(trackers)
        self.positions = [k * len(frames) // len(self.trackers) for k in range(len(self.trackers))]

    def step(self, which: Sequence[int] | None = None) -> int:
        """One frame of each stream of ``which`` (default: all), batched; the persons found."""
        from posepipe.engines.topdown.estimator import detect_for_video_batch

        chosen = list(range(len(self.trackers))) if which is None else list(which)
        if not chosen:
            return 0
        images = [self.frames[self.positions[k]][0] for k in chosen]
        stamps = [self.frames[self.positions[k]][1] for k in chosen]
        found = detect_for_video_batch([self.trackers[k] for k in chosen], images, stamps)
        for k in chosen:
            self.positions[k] += 1
            if self.positions[k] == len(self.frames):
                self.positions[k] = 0
                self.trackers[k].reset()
        return sum(len(persons) for persons in found)

    def stagger(self, detect_every: int) -> None:
        """Bring the streams in over ``detect_every - 1`` steps, so that their detector frames
        (every ``detect_every``-th frame of a stream) fall on different steps."""
        for s in range(detect_every - 1):
            self.step([k for k in range(len(self.trackers)) if k % detect_every <= s])


def topdown_batch(
    streams: VideoStreams,
    networks: RecordingNetworks,
    device: torch.device,
    seconds: float,
    detect_every: int,
) -> dict[str, Any]:
    """One batch size's figures: the streams staggered and warmed up (at least 2 steps and
    ``seconds / 2``), then steps for at least ``seconds``: whole detection cycles unless the
    staggered streams detect as many frames on every step."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    streams.stagger(detect_every)
    started = time.perf_counter()
    steps = 0
    while steps < 2 or time.perf_counter() - started < seconds / 2:
        streams.step()
        steps += 1
    synchronize(device)
    networks.sizes.clear()
    cycle = 1 if len(streams.trackers) % detect_every == 0 else detect_every
    steps = persons = 0
    started = time.perf_counter()
    while True:
        persons += streams.step()
        steps += 1
        if time.perf_counter() - started >= seconds and steps % cycle == 0:
            break
    synchronize(device)
    elapsed = time.perf_counter() - started
    frames = steps * len(streams.trackers)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "batch": len(streams.trackers), "steps": steps, "frames": frames, "seconds": round(elapsed, 3),
        "frames_per_s": round(frames / elapsed, 2), "persons_per_s": round(persons / elapsed, 1),
        "persons_per_frame": round(persons / frames, 2), "network_batches": networks.summary(),
        "peak_gpu_mib": round(peak, 1) if peak is not None else "n/a",
    }  # fmt: skip


def video_result(
    estimator: TopDownPoseEstimator, frames: Sequence[tuple[int, float, np.ndarray]]
) -> tuple[dict[str, Any], float]:
    """``frames`` (index, t, RGB) as one VIDEO stream: the result as ``compare_results`` reads it,
    and the seconds it took."""
    from posepipe.result import Frame

    out = []
    started = time.perf_counter()
    for index, t, rgb in frames:
        out.append(Frame(index, t, estimator.detect_for_video(rgb, round(t * 1000))))
    seconds = time.perf_counter() - started
    return {"model": estimator.model_dict(), "frames": [f.to_dict() for f in out]}, seconds


def topdown_parity(
    options: PoseEngineOptions,
    models: TopDownModels,
    networks: TopDownNetworks,
    frames: Sequence[tuple[int, float, np.ndarray]],
) -> dict[str, Any]:
    """The CPU engine's result on ``frames`` (one VIDEO stream) against the torch networks'."""
    from dataclasses import replace

    from posepipe.engines.topdown.cpu_networks import CpuTopDownNetworks
    from posepipe.engines.topdown.estimator import TopDownPoseEstimator
    from posepipe.video.result_agreement import compare_results

    cpu_options = replace(options, engine="mediapipe", device=None, dtype=None)
    with TopDownPoseEstimator(cpu_options, CpuTopDownNetworks(models), models) as cpu:
        reference, cpu_s = video_result(cpu, frames)
    with TopDownPoseEstimator(options, networks, models) as candidate_engine:
        candidate, torch_s = video_result(candidate_engine, frames)
    report = compare_results(reference, candidate)
    passes = report["matched_share"] >= TOPDOWN_MIN_MATCHED and report["median_px"] <= TOPDOWN_MAX_MEDIAN_PX
    return {
        **report, "frames": len(frames), "first": frames[0][0], "last": frames[-1][0],
        "cpu_s": round(cpu_s, 2), "torch_s": round(torch_s, 2), "passes": passes,
    }  # fmt: skip


def run_topdown(
    args: argparse.Namespace, device: torch.device, batches: list[int], frame_count: int, seconds: float
) -> dict[str, Any]:
    """The ``--topdown`` mode (see the module docstring)."""
    from posepipe.assets.samples import sample_path
    from posepipe.cloud.deployment import MAX_POSES, POSE_MODEL
    from posepipe.engines.base import PoseEngineOptions, RunningMode
    from posepipe.engines.topdown.estimator import TopDownTracker, policy_for
    from posepipe.engines.topdown.models import topdown_models
    from posepipe.engines.torch.topdown_networks import TorchTopDownNetworks, TorchTopDownSettings
    from posepipe.media.decode import read_frames

    options = PoseEngineOptions(
        model_path=Path(args.model or POSE_MODEL), running_mode=RunningMode.VIDEO,
        max_poses=args.max_poses or MAX_POSES, engine="torch", detector=args.detector, device=str(device),
    )  # fmt: skip
    models = topdown_models(options)
    settings = TorchTopDownSettings(
        device=str(device), detector_dtype=args.detector_dtype, landmark_dtype=args.landmark_dtype,
        keypoint_dtype=args.keypoint_dtype, batch_size=args.network_batch or TorchTopDownSettings.batch_size,
    )  # fmt: skip
    torch_networks = TorchTopDownNetworks(models, settings)
    described = torch_networks.describe()
    video = sample_path("vtest.avi")
    started = time.perf_counter()
    decoded = [(f.index, f.t, f.rgb) for f in read_frames(video, 0, frame_count)]
    decode_s = time.perf_counter() - started
    height, width = decoded[0][2].shape[:2]
    cuda_version = torch.version.cuda if device.type == "cuda" else None
    print(f"device: {device_name(device)}; torch {torch.__version__}; CUDA {torch.version.cuda or 'none'}"
          + ("" if device.type == "cuda" else " (CPU figures, not the GPU target)"))  # fmt: skip
    print(f"engine: top-down, detector {models.detector}, pose {models.model_block['name']}, "
          f"max_poses {options.max_poses}, detect_every {options.detect_every}; TorchTopDownNetworks "
          f"on {described['device']}, dtypes {described['dtypes']}, "
          f"network batch cap {settings.batch_size}")  # fmt: skip
    print(
        f"frames: {len(decoded)} of {video.name} ({width}x{height}), decoded in {decode_s:.1f} s (not timed)"
    )
    print(TOPDOWN_TARGET)
    report: dict[str, Any] = {
        "mode": "topdown", "device": device_name(device), "torch": torch.__version__, "cuda": cuda_version,
        "torch_threads": torch.get_num_threads(), "detector": models.detector,
        "pose_model": models.model_block["name"], "max_poses": options.max_poses,
        "detect_every": options.detect_every, "networks": described, "network_batch": settings.batch_size,
        "video": video.name, "frames": len(decoded), "size": [width, height], "seconds": seconds,
        "target": TOPDOWN_TARGET, "rows": [],
    }  # fmt: skip
    networks = RecordingNetworks(torch_networks)
    stream_frames = [(rgb, round(t * 1000)) for _, t, rgb in decoded]
    policy = policy_for(options, models)
    for batch in batches:
        streams = VideoStreams(stream_frames, [TopDownTracker(policy, networks) for _ in range(batch)])
        row = topdown_batch(streams, networks, device, seconds, options.detect_every)
        report["rows"].append(row)
        sizes = ", ".join(
            f"{what} mean {s['mean']:g} max {s['max']:g}" for what, s in row["network_batches"].items()
        )
        peak = row["peak_gpu_mib"]
        memory = f"{peak:.0f} MiB" if isinstance(peak, float) else str(peak)
        print(f"batch {batch:4d}: {row['frames_per_s']:9.1f} frames/s, "
              f"{row['persons_per_s']:10.1f} persons/s ({row['persons_per_frame']:.2f} persons/frame; "
              f"{row['steps']} steps in {row['seconds']:.1f} s); network batches: {sizes}; "
              f"peak GPU memory {memory}")  # fmt: skip
        del streams
    if args.parity_frames > 0:
        parity = topdown_parity(options, models, torch_networks, decoded[: args.parity_frames])
        report["parity"] = parity
        verdict = "passes" if parity["passes"] else "FAILS"
        print(f"parity, frames {parity['first']}-{parity['last']} as one VIDEO stream, CPU engine "
              f"({parity['cpu_s']:.1f} s) against the torch networks ({parity['torch_s']:.1f} s): "
              f"{parity['matched_share']:.1%} of {parity['reference_persons']} persons matched "
              f"(bar {TOPDOWN_MIN_MATCHED:.0%}), median {parity['median_px']:.3f} px "
              f"(bar {TOPDOWN_MAX_MEDIAN_PX:g} px), p95 {parity['p95_px']:.3f} px, "
              f"unmatched torch persons {parity['unmatched_candidate_persons']}: {verdict}")  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", default="", help="comma-separated (default: 1,8,32,128 on CUDA, 1,4,16 on CPU)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="timing per figure (default 2; --topdown: 5)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    parser.add_argument(
        "--model", default=None,
        help="a .task bundle (default: the one posepipe builds; --topdown: the deployment's blazepose-full)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument(
        "--parity", action="store_true", help="IMAGE-mode parity with MediaPipe per precision"
    )
    parser.add_argument("--precisions", default="fp32,fp16,fp16-det32", help=f"of {', '.join(PRECISIONS)}")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument(
        "--invocation", action="store_true", help="full endpoint invocations through moto's S3"
    )
    parser.add_argument("--engine", default="torch", choices=("torch", "mediapipe"), help="(--invocation)")
    parser.add_argument("--streams", type=int, default=4, help="concurrent invocations (--invocation)")
    parser.add_argument(
        "--frames", type=int, default=None,
        help="frames per invocation (--invocation, default 60); frames of vtest.avi (--topdown, default 400)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="rounds of invocations (--invocation)")
    parser.add_argument(
        "--batch-delay-ms", type=float, default=4.0, help="frame batcher delay (--invocation)"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="frame batcher batch limit (--invocation)")
    parser.add_argument(
        "--topdown", action="store_true", help="the deployed top-down engine in PyTorch, end to end"
    )
    parser.add_argument(
        "--detector", default="centernet", choices=("centernet", "nanodet"), help="(--topdown)"
    )
    parser.add_argument(
        "--max-poses", type=int, default=None, help="(--topdown; default the deployment's 20)"
    )
    parser.add_argument(
        "--parity-frames", type=int, default=100, help="frames of the CPU parity check (--topdown; 0: none)"
    )
    for network, default in (("detector", "float32"), ("landmark", "float16 on CUDA, else float32"),
                             ("keypoint", "float32")):  # fmt: skip
        parser.add_argument(
            f"--{network}-dtype", default=None, choices=("float16", "float32"),
            help=f"(--topdown; default {default})",
        )  # fmt: skip
    parser.add_argument(
        "--network-batch", type=int, default=None, help="images or crops per network call (--topdown; 256)"
    )
    args = parser.parse_args()
    if args.topdown:
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        default_batches = "1,8,32,128" if device.type == "cuda" else "1,4,16"
        batches = [int(b) for b in (args.batches or default_batches).split(",")]
        topdown = run_topdown(args, device, batches, args.frames or 400, args.seconds or 5.0)
        if args.json:
            args.json.write_text(json.dumps(topdown, indent=2))
        return
    seconds = args.seconds or 2.0
    if args.parity or args.invocation:
        model = resolve_model_path(args.model) if args.model else build_model()
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        report: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__}
        if args.parity:
            report["parity"] = run_parity(model, device, args.precisions.split(","))
        if args.invocation:
            report["invocation"] = run_invocations(
                args.engine, args.streams, args.frames or 60, args.rounds, args.batch_delay_ms, args.max_batch
            )
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return

    from posepipe.engines.torch.networks import load_networks  # the port (issue 5)

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name_of_device = (
        torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    )
    default_batches = "1,8,32,128" if cuda else "1,4,16"
    batches = [int(b) for b in (args.batches or default_batches).split(",")]
    dtypes = [torch.float16, torch.float32] if cuda else [torch.float32]
    model = resolve_model_path(args.model) if args.model else build_model()
    detector, landmarker = load_networks(model)  # warm: imports and the schema module
    load_s = min(timed_load(model) for _ in range(3))
    print(f"device: {name_of_device}; torch {torch.__version__}; threads {torch.get_num_threads()}"
          + ("" if cuda else " (no CUDA here: CPU figures, not the GPU targets)"))  # fmt: skip
    print(f"loading both networks from the bundle: {load_s:.3f} s (best of 3; target under 1 s)")
    bandwidth = peak_bandwidth(device, seconds)
    print(f"measured bandwidth: {bandwidth / 1e9:.1f} GB/s")
    rows: list[dict[str, Any]] = []
    for dtype in dtypes:
        peak = peak_flops(device, dtype, seconds)
        print(f"measured peak ({str(dtype).removeprefix('torch.')} matmul): {peak / 1e12:.2f} TFLOP/s")
        for name, module, size in (("detector", detector, 224), ("landmarks", landmarker, 256)):
            rows += bench_network(
                name, module, size, device=device, dtype=dtype, batches=batches, seconds=seconds,
                compile_module=args.compile, peak=peak, bandwidth=bandwidth,
            )  # fmt: skip
    if args.json:
        figures = {
            "device": name_of_device, "torch": torch.__version__, "cuda": cuda, "load_s": load_s, "rows": rows
        }  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
