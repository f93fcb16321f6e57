"""CPU latency of each network of the model catalogue: one run on one thread, on a real input.

The pose networks run on the footballer's region of messi5.jpg (BlazePose's landmark network of
each bundle on LiteRT, 256x256; MoveNet on ONNX Runtime, 192x192 or 256x256); the detectors on the
whole of a vtest.avi frame (CenterNet, 512x512; NanoDet, 416x416), and so does MoveNet MultiPose,
its two passes (256 and 768 pixels on the longer side) with their decoding; BlazePose's detector
on the same frame resized to its 224x224 input (the network alone, on LiteRT). Each network is
warmed up with 5 runs, then timed over ``--runs`` runs; the median and the 90th percentile are reported.

    python bench/model_latency.py [--runs 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def timed(run: Callable[[], object], runs: int) -> dict[str, float]:
    for _ in range(5):
        run()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return {"median_ms": 1000 * float(np.median(times)), "p90_ms": 1000 * float(np.percentile(times, 90))}


def tflite_runner(path: Path, rgb: Any) -> Callable[[], object]:
    """One LiteRT run of the network at ``path`` on ``rgb`` resized to its input, as MediaPipe
    feeds BlazePose's detector (values in [-1, 1])."""
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    height, width = (int(v) for v in detail["shape"][1:3])
    pixels = cv2.resize(rgb, (width, height)).astype(np.float32)[None] / 127.5 - 1.0

    def run() -> object:
        interpreter.set_tensor(detail["index"], pixels)
        interpreter.invoke()
        return None

    return run


def main() -> int:
    sys.path.insert(0, str(ROOT / "layers"))
    from posepipe.assets.catalogue import CATALOGUE
    from posepipe.assets.samples import sample_path
    from posepipe.engines.base import MULTIPOSE, PoseEngineOptions
    from posepipe.engines.multipose import MultiPosePoseEstimator
    from posepipe.engines.topdown.blazepose_landmarks import BlazePoseLandmarks
    from posepipe.engines.topdown.movenet import MoveNetKeypoints
    from posepipe.engines.topdown.person_boxes import CenterNetPersonDetector, NanoDetPersonDetector
    from posepipe.engines.topdown.regions import region_around
    from posepipe.media.decode import read_frames
    from posepipe.media.images import load_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    messi = load_image(sample_path("messi5.jpg")).rgb
    region = [region_around((69.0, 59.0, 456.0, 336.0))]  # the footballer's box, labelled by eye
    (frame,) = read_frames(sample_path("vtest.avi"), 100, 101)
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    }
    for name, spec in CATALOGUE.items():
        path = spec.built_path()
        if name == MULTIPOSE:  # both passes, on a whole frame
            multipose = MultiPosePoseEstimator(PoseEngineOptions(detector=MULTIPOSE, max_poses=12))
            figures = timed(partial(multipose.detect, frame.rgb), args.runs)
        elif name == "blazepose-detector":  # the network alone: MediaPipe decodes its anchors
            figures = timed(tflite_runner(path, frame.rgb), args.runs)
        elif name.startswith("blazepose"):
            figures = timed(partial(BlazePoseLandmarks(path).estimate, messi, region), args.runs)
        elif name.startswith("movenet"):
            figures = timed(partial(MoveNetKeypoints(path).estimate, messi, region), args.runs)
        elif name == "centernet":
            figures = timed(partial(CenterNetPersonDetector(path).detect, frame.rgb), args.runs)
        else:
            figures = timed(partial(NanoDetPersonDetector(path).detect, frame.rgb), args.runs)
        report[name] = figures
        print(f"{name:<18} {figures['median_ms']:7.1f} ms  (90th percentile {figures['p90_ms']:.1f} ms)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
