"""Throughput of the torch engine's VIDEO mode: one stream, several streams one after another, and batched.

Each stream is its own segment of the video (``--frames`` frames from ``--start + k * --stride``;
vtest.avi's first pedestrian appears at frame 55), tracked by its own
:class:`~posepipe.engines.torch.video_tracking.VideoRegionTracker`. ``one at a time`` runs the streams one
after another through ``detect_for_video`` (single-stream throughput over the same content);
``batched`` advances all of them one frame at a time with ``detect_for_video_batch`` (one
detector batch and one landmark batch per step), as the endpoint does with its chunks in flight.
Decoding is not timed. Runs alternate and the median of ``--repeat`` runs is reported, in frames
per second summed over the streams.

    python bench/torch_video_streams.py [--video vtest.avi] [--streams 4] [--frames 100]
        [--start 55] [--stride 150] [--max-poses 4] [--device cpu] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from posepipe.assets.model_build import build_model
from posepipe.assets.samples import sample_path
from posepipe.engines.torch.blazepose import TorchBlazePose
from posepipe.engines.torch.networks import load_networks
from posepipe.engines.torch.video_tracking import VideoRegionTracker, detect_for_video_batch
from posepipe.media.decode import read_frames
from posepipe.media.probe import probe

Stream = list[tuple[np.ndarray, int]]


def load_streams(video: Path, count: int, frames: int, first: int, stride: int) -> list[Stream]:
    total = probe(video).frame_count
    streams = []
    for k in range(count):
        start = (first + k * stride) % max(1, total - frames)
        streams.append([(f.rgb, round(f.t * 1000)) for f in read_frames(video, start, start + frames)])
    return streams


def run_sequential(engine: TorchBlazePose, streams: list[Stream], max_poses: int) -> tuple[float, int]:
    persons = 0
    start = time.perf_counter()
    for stream in streams:
        tracker = VideoRegionTracker(engine, max_poses=max_poses)
        for rgb, t in stream:
            persons += len(tracker.detect_for_video(rgb, t))
    return time.perf_counter() - start, persons


def run_batched(engine: TorchBlazePose, streams: list[Stream], max_poses: int) -> tuple[float, int]:
    trackers = [VideoRegionTracker(engine, max_poses=max_poses) for _ in streams]
    persons = 0
    start = time.perf_counter()
    for step in range(min(len(s) for s in streams)):
        rgbs = [s[step][0] for s in streams]
        stamps = [s[step][1] for s in streams]
        persons += sum(len(p) for p in detect_for_video_batch(trackers, rgbs, stamps))
    return time.perf_counter() - start, persons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="default: the vtest.avi sample")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100, help="frames per stream")
    parser.add_argument("--start", type=int, default=55, help="first frame of the first stream")
    parser.add_argument("--stride", type=int, default=150, help="frames between the streams' starts")
    parser.add_argument("--max-poses", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    video = args.video if args.video is not None else sample_path("vtest.avi")
    detector, landmarks = load_networks(build_model())
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    engine = TorchBlazePose(detector.to(device, dtype), landmarks.to(device, dtype), device, dtype)
    streams = load_streams(video, args.streams, args.frames, args.start, args.stride)
    run_batched(engine, [s[:3] for s in streams], args.max_poses)  # warm-up

    timings: dict[str, list[float]] = {"one at a time": [], "batched": []}
    persons: dict[str, int] = {}
    for _ in range(args.repeat):
        for label, fn in (("one at a time", run_sequential), ("batched", run_batched)):
            seconds, found = fn(engine, streams, args.max_poses)
            frames = sum(len(s) for s in streams)
            timings[label].append(frames / seconds)
            persons[label] = found
    report: dict[str, Any] = {
        "video": str(video),
        "device": str(device),
        "dtype": str(dtype),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "streams": args.streams,
        "frames_per_stream": args.frames,
        "max_poses": args.max_poses,
        "fps": {label: round(statistics.median(v), 2) for label, v in timings.items()},
        "fps_runs": {label: [round(x, 2) for x in v] for label, v in timings.items()},
        "persons": persons,
    }
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
