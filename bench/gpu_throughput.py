"""Throughput of the torch engine's networks per batch size, against the floor the device allows.

For each network (the BlazePose detector at 224x224, the Full landmark model at 256x256), each
dtype (fp32; fp16 on CUDA) and each batch size: frames per second, and the floor it is compared
to: the network's FLOPs (counted by ``torch.utils.flop_counter``) over the device's measured peak
(a large matrix product in the same dtype), and the bytes a frame moves (input, weights once per
batch, output) over the measured memory bandwidth (a large copy). The device's name, the torch
version and the settings are printed with the figures. On a machine without CUDA it runs on the
CPU and says so.

    python bench/gpu_throughput.py [--batches 1,8,32,128] [--seconds 2] [--compile] [--json out.json]

The engine around the networks (letterboxing, NMS, ROI crops, decoding) and a full endpoint
invocation come into this benchmark with the engine itself (issue 5).
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
from posepipe.models import build_model, resolve_model_path
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batches", default="", help="comma-separated (default: 1,8,32,128 on CUDA, 1,4,16 on CPU)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per figure (default 2)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
    parser.add_argument("--model", default=None, help="a .task bundle (default: the one posepipe builds)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()

    from posepipe.torch_engine.networks import load_networks  # the port (issue 5)

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    device_name = (
        torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})"
    )
    default_batches = "1,8,32,128" if cuda else "1,4,16"
    batches = [int(b) for b in (args.batches or default_batches).split(",")]
    dtypes = [torch.float16, torch.float32] if cuda else [torch.float32]
    model = resolve_model_path(args.model) if args.model else build_model()
    detector, landmarker = load_networks(model)
    print(f"device: {device_name}; torch {torch.__version__}; threads {torch.get_num_threads()}"
          + ("" if cuda else " (no CUDA here: CPU figures, not the GPU targets)"))  # fmt: skip
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
        report = {"device": device_name, "torch": torch.__version__, "cuda": cuda, "rows": rows}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
