"""Throughput of ``posepipe video`` per pose model and detector against a naive top-down loop.

The naive loop is what a first multi-person script looks like: OpenCV decodes; the same person
detector (posepipe's CenterNet, the same threshold) runs on every frame; then MediaPipe's
``PoseLandmarker`` in IMAGE mode runs on each person's crop (the box grown to a square 1.25 times
its longer side), one at a time; OpenCV draws and ``cv2.VideoWriter`` writes MPEG-4 part 2; no
keypoints are kept. posepipe runs the detector every ``--detect-every`` frames and carries each
person's region from their landmarks in between, in worker processes, and writes H.264 and
keypoints.json. Each pose model runs with the default detector (``centernet``; MoveNet MultiPose
with its own), BlazePose Full
also with ``nanodet``, and the BlazePose bundles with ``--detector blazepose`` (BlazePose's own,
single-subject path). All run as
fresh processes; runs alternate; medians are reported, with the persons per second each gives,
and each configuration's ratio of frames a second to the naive loop's.

    python bench/topdown_throughput.py [--video FILE] [--frames N] [--repeat 3]
        [--models blazepose-full movenet-lightning ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAIVE_LOOP = r"""
import json, sys, time
t0 = time.perf_counter()
import cv2
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode
from posepipe.engines.topdown.person_boxes import CenterNetPersonDetector
from posepipe.skeleton import SKELETON
video, out, bundle, centernet, limit = sys.argv[1:6]
limit = int(limit)
detector = CenterNetPersonDetector(centernet)
landmarker = PoseLandmarker.create_from_options(PoseLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=bundle), running_mode=RunningMode.IMAGE, num_poses=1))
capture = cv2.VideoCapture(video)
fps = capture.get(cv2.CAP_PROP_FPS)
w, h = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
frames = persons = 0
while frames < limit:
    ok, bgr = capture.read()
    if not ok:
        break
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    for box in detector.detect(rgb):
        side = max(box.width, box.height) * 1.25
        cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        if crop.size == 0:
            continue
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
        for pose in result.pose_landmarks:
            persons += 1
            points = [(int(x0 + lm.x * (x1 - x0)), int(y0 + lm.y * (y1 - y0))) for lm in pose]
            for i, j in SKELETON:
                cv2.line(bgr, points[i], points[j], (0, 255, 0), 2)
    writer.write(bgr)
    frames += 1
writer.release()
landmarker.close()
print(json.dumps({"frames": frames, "persons": persons, "inner_wall_s": time.perf_counter() - t0}))
"""


def run_naive(video: Path, frames: int, scratch: Path, bundle: Path, centernet: Path) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", NAIVE_LOOP, str(video), str(scratch / "naive.mp4"), str(bundle),
         str(centernet), str(frames)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    stats: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {**stats, "wall_s": wall}


def run_posepipe(video: Path, scratch: Path, model: str, detector: str, extra: list[str]) -> dict[str, Any]:
    out = scratch / "posepipe"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "posepipe.cli", "video", str(video), "-o", str(out), "--model", model,
         "--detector", detector, "--no-progress", *extra],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary: dict[str, Any] = json.loads((out / video.stem / "summary.json").read_text())
    return {"frames": summary["frames"], "persons": summary["person_frames"], "wall_s": wall}


def main() -> int:
    from posepipe.assets.catalogue import CATALOGUE, pose_model_names
    from posepipe.assets.samples import sample_path
    from posepipe.engines.base import MULTIPOSE
    from posepipe.media.decode import read_frames
    from posepipe.media.encode import VideoWriter
    from posepipe.media.probe import probe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="video to time (default: vtest.avi)")
    parser.add_argument("--frames", type=int, default=200, help="frames from the start to time (200)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=None, help="pose models (default: all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("posepipe_args", nargs="*", help="extra options for posepipe video (after --)")
    args = parser.parse_args()
    source = args.video or sample_path("vtest.avi")
    bundle, centernet = CATALOGUE["blazepose-full"].built_path(), CATALOGUE["centernet"].built_path()
    models = args.models or pose_model_names()
    configs = (
        [(model, MULTIPOSE if model == MULTIPOSE else "centernet") for model in models]
        + [("blazepose-full", "nanodet")] * ("blazepose-full" in models)
        + [(model, "blazepose") for model in models if model.startswith("blazepose")]
    )
    naive: list[dict[str, Any]] = []
    ours: dict[tuple[str, str], list[dict[str, Any]]] = {config: [] for config in configs}
    with tempfile.TemporaryDirectory(prefix="posepipe-bench-topdown-") as folder:
        scratch = Path(folder)
        # Every program gets the same first frames: a clip of them, re-encoded as H.264 at CRF 0.
        info = probe(source)
        clip = scratch / f"{source.stem}-{args.frames}.mp4"
        with VideoWriter(clip, width=info.width, height=info.height, time_base=info.time_base,
                         fps=info.fps, crf=0, preset="ultrafast") as writer:  # fmt: skip
            for frame in read_frames(source, 0, args.frames, info=info):
                writer.write(frame.rgb, info.frame_pts[frame.index])
        for _ in range(args.repeat):
            naive.append(run_naive(clip, args.frames, scratch, bundle, centernet))
            for model, detector in configs:
                ours[(model, detector)].append(
                    run_posepipe(clip, scratch, model, detector, args.posepipe_args)
                )

    def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
        run = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        return {**run, "fps": run["frames"] / run["wall_s"], "poses_per_s": run["persons"] / run["wall_s"]}

    slow = median_run(naive)
    rows = [("naive top-down loop (CenterNet + PoseLandmarker per crop)", slow, None)]
    for (model, detector), runs in ours.items():
        mine = median_run(runs)
        rows.append(
            (f"posepipe video --model {model} --detector {detector}", mine, mine["fps"] / slow["fps"])
        )
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "video": str(source),
        "frames": slow["frames"],
        "repeat": args.repeat,
        "naive": slow,
        "posepipe": [
            {
                "model": model,
                "detector": detector,
                **median_run(runs),
                "ratio": median_run(runs)["fps"] / slow["fps"],
                "all_wall_s": [round(r["wall_s"], 2) for r in runs],
            }
            for (model, detector), runs in ours.items()
        ],
        "naive_all_wall_s": [round(r["wall_s"], 2) for r in naive],
    }
    print(f"video: {source.name}, first {slow['frames']} frames, median of {args.repeat} runs each")
    width = max(len(name) for name, _, _ in rows)
    for name, r, ratio in rows:
        against = f"  {ratio:5.2f}x the naive loop" if ratio is not None else ""
        print(
            f"{name:<{width}}  {r['wall_s']:6.2f} s  {r['fps']:6.1f} frames/s  {r['poses_per_s']:7.1f} "
            f"person-poses/s  ({r['persons']} person-poses){against}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
