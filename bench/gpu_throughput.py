"""Throughput of the torch engine's networks per batch size, against the floor the device allows.

For each network (the BlazePose detector at 224x224, the Full landmark model at 256x256), each
dtype (fp32; fp16 on CUDA) and each batch size: frames per second, and the floor it is compared
to: the network's FLOPs (counted by ``torch.utils.flop_counter``) over the device's measured peak
(a large matrix product in the same dtype), and the bytes a frame moves (input, weights once per
batch, output) over the measured memory bandwidth (a large copy). The device's name, the torch
version and the settings are printed with the figures. On a machine without CUDA it runs on the
CPU and says so.

    python bench/gpu_throughput.py [--batches 1,8,32,128] [--seconds 2] [--compile] [--json out.json]

Two more modes, each printing the device it ran on:

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
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from posepipe.assets.model_build import build_model
from posepipe.assets.pose_model import resolve_model_path
from torch.utils.flop_counter import FlopCounterMode


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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


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
    import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", default="", help="comma-separated (default: 1,8,32,128 on CUDA, 1,4,16 on CPU)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per figure (default 2)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    parser.add_argument("--model", default=None, help="a .task bundle (default: the one posepipe builds)")
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
    parser.add_argument("--frames", type=int, default=60, help="frames per invocation (--invocation)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of invocations (--invocation)")
    parser.add_argument(
        "--batch-delay-ms", type=float, default=4.0, help="frame batcher delay (--invocation)"
    )
    parser.add_argument("--max-batch", type=int, default=32, help="frame batcher batch limit (--invocation)")
    args = parser.parse_args()
    if args.parity or args.invocation:
        model = resolve_model_path(args.model) if args.model else build_model()
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        report: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__}
        if args.parity:
            report["parity"] = run_parity(model, device, args.precisions.split(","))
        if args.invocation:
            report["invocation"] = run_invocations(
                args.engine, args.streams, args.frames, args.rounds, args.batch_delay_ms, args.max_batch
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
    bandwidth = peak_bandwidth(device, args.seconds)
    print(f"measured bandwidth: {bandwidth / 1e9:.1f} GB/s")
    rows: list[dict[str, Any]] = []
    for dtype in dtypes:
        peak = peak_flops(device, dtype, args.seconds)
        print(f"measured peak ({str(dtype).removeprefix('torch.')} matmul): {peak / 1e12:.2f} TFLOP/s")
        for name, module, size in (("detector", detector, 224), ("landmarks", landmarker, 256)):
            rows += bench_network(
                name, module, size, device=device, dtype=dtype, batches=batches, seconds=args.seconds,
                compile_module=args.compile, peak=peak, bandwidth=bandwidth,
            )  # fmt: skip
    if args.json:
        figures = {
            "device": name_of_device, "torch": torch.__version__, "cuda": cuda, "load_s": load_s, "rows": rows
        }  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
