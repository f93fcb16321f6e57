"""Throughput of ``posepipe video`` against a seed-style sequential loop, on the same machine.

The seed loop is what a first pose script looks like: OpenCV decodes, MediaPipe estimates the
pose with tracking (one person), OpenCV draws the skeleton, ``cv2.VideoWriter`` writes MPEG-4
part 2 ("mp4v", which browsers do not play) and no keypoints are kept. mediapipe 1.2 has no
legacy ``solutions`` API, so the loop uses the Tasks ``PoseLandmarker`` in VIDEO mode, which is
what ``solutions.pose`` became.

posepipe does more: H.264 in an MP4 that browsers play, the full 33+33 keypoints of every frame
as JSON, stable ids and smoothing. Both run as fresh processes, so start-up (imports, model
load) counts for both. Runs alternate, and the median of ``--repeat`` runs is reported.

By default two sources are timed: ``vtest.avi`` (MPEG-4 part 2, cheap to decode) and an H.264
encoding of it made here with PyAV (libx264's defaults, preset medium, CRF 23, B-frames: what
a phone or an editor uploads, and about 2.4 times as costly to decode). ``--video`` times one
file instead.

    python bench/video_throughput.py [--video FILE] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED_LOOP = r"""
import json, os, sys, time
t0 = time.perf_counter()
import cv2
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode
from posepipe.skeleton import SKELETON
video, out, model = sys.argv[1:4]
landmarker = PoseLandmarker.create_from_options(PoseLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=model), running_mode=RunningMode.VIDEO, num_poses=1))
capture = cv2.VideoCapture(video)
fps = capture.get(cv2.CAP_PROP_FPS)
w, h = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
startup = time.perf_counter() - t0
decode = infer = draw = encode = 0.0
frames = 0
while True:
    a = time.perf_counter()
    ok, bgr = capture.read()
    if not ok:
        break
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    b = time.perf_counter()
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
    result = landmarker.detect_for_video(image, int(frames * 1000 / fps))
    c = time.perf_counter()
    for pose in result.pose_landmarks:
        points = [(int(lm.x * w), int(lm.y * h)) for lm in pose]
        for i, j in SKELETON:
            cv2.line(bgr, points[i], points[j], (0, 255, 0), 2)
        for p in points:
            cv2.circle(bgr, p, 3, (0, 0, 255), -1)
    d = time.perf_counter()
    writer.write(bgr)
    e = time.perf_counter()
    decode += b - a; infer += c - b; draw += d - c; encode += e - d
    frames += 1
writer.release()
landmarker.close()
print(json.dumps({"frames": frames, "startup_s": startup, "decode_s": decode, "inference_s": infer,
                  "draw_s": draw, "encode_s": encode, "inner_wall_s": time.perf_counter() - t0}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}


def run_seed(video: Path, model: Path, scratch: Path) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", SEED_LOOP, str(video), str(scratch / "seed.mp4"), str(model)],
        capture_output=True, text=True, check=True, env=_env(),
    )  # fmt: skip
    wall = time.perf_counter() - started
    stats: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {**stats, "wall_s": wall, "fps": stats["frames"] / wall}


def run_posepipe(video: Path, scratch: Path, extra: list[str]) -> dict[str, Any]:
    out = scratch / "posepipe"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "posepipe.cli", "video", str(video), "-o", str(out), "--max-poses", "1",
         "--no-progress", *extra],
        capture_output=True, text=True, check=True, env=_env(),
    )  # fmt: skip
    wall = time.perf_counter() - started
    summary: dict[str, Any] = json.loads((out / video.stem / "summary.json").read_text())
    return {"frames": summary["frames"], "wall_s": wall, "fps": summary["frames"] / wall, "summary": summary}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def h264_encoding(video: Path, destination: Path) -> Path:
    """``video`` re-encoded as H.264 in MP4 with libx264's default settings (B-frames included)."""
    import av

    with av.open(str(video)) as source, av.open(str(destination), "w") as output:
        stream_in = source.streams.video[0]
        rate = stream_in.average_rate or 25
        stream = output.add_stream("libx264", rate=rate, options={"preset": "medium", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for frame in source.decode(stream_in):
            frame.pts = None
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return destination


def main() -> int:
    from posepipe.assets.samples import sample_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--video", type=Path, default=None, help="video to time (default: vtest.avi)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("posepipe_args", nargs="*", help="extra options for posepipe video (after --)")
    args = parser.parse_args()
    reports = []
    with tempfile.TemporaryDirectory(prefix="posepipe-bench-h264-") as folder:
        if args.video is not None:
            videos = [args.video]
        else:
            vtest = sample_path("vtest.avi")
            videos = [vtest, h264_encoding(vtest, Path(folder) / "vtest-h264.mp4")]
        for video in videos:
            reports.append(bench_video(video, args.repeat, args.posepipe_args))
            print()
    for report in reports:
        print(f"{Path(report['video']).name}: {report['ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(reports if len(reports) > 1 else reports[0], indent=2) + "\n")
    return 0


def bench_video(video: Path, repeat: int, posepipe_args: list[str]) -> dict[str, Any]:
    """Time the seed loop and ``posepipe video`` on ``video``, alternating, ``repeat`` times each."""
    from posepipe.assets.pose_model import resolve_model_path

    model = resolve_model_path()
    seeds: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="posepipe-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for _ in range(repeat):
            seeds.append(run_seed(video, model, scratch))
            ours.append(run_posepipe(video, scratch, posepipe_args))
    seed = sorted(seeds, key=lambda r: r["wall_s"])[len(seeds) // 2]
    mine = sorted(ours, key=lambda r: r["wall_s"])[len(ours) // 2]
    summary = mine["summary"]
    cpu = summary["stages_cpu_s"]
    report = {
        "machine": _machine(),
        "video": str(video),
        "codec": summary["source"].get("codec"),
        "frames": mine["frames"],
        "seed_loop": {k: round(v, 3) if isinstance(v, float) else v for k, v in seed.items()},
        "posepipe": {
            "wall_s": round(mine["wall_s"], 3),
            "fps": round(mine["fps"], 2),
            "stages_wall_s": summary["stages_wall_s"],
            "stages_cpu_s": cpu,
            "startup_s": round(mine["wall_s"] - summary["wall_s"], 3),
            "workers": summary["workers"],
            "chunks": len(summary["chunks"]),
        },
        "ratio": round(mine["fps"] / seed["fps"], 3),
        "all_wall_s": {
            "seed_loop": [round(r["wall_s"], 2) for r in seeds],
            "posepipe": [round(r["wall_s"], 2) for r in ours],
        },
    }
    seed_parts = ", ".join(
        f"{k} {seed[k + '_s']:.2f}" for k in ("startup", "decode", "inference", "draw", "encode")
    )
    cpu_parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
    stage_parts = ", ".join(f"{k} {v:.2f}" for k, v in summary["stages_wall_s"].items())
    ratio_of_medians = statistics.median(o["fps"] for o in ours) / statistics.median(s["fps"] for s in seeds)
    print(f"machine: {report['machine']}")
    print(f"video: {video.name}, {mine['frames']} frames, median of {repeat} runs each")
    print(f"seed loop : {seed['wall_s']:6.2f} s  {seed['fps']:6.1f} fps   (mp4v, no keypoints kept)")
    print(f"posepipe  : {mine['wall_s']:6.2f} s  {mine['fps']:6.1f} fps   (H.264 + keypoints.json)")
    print(f"ratio     : {report['ratio']:.2f}x (ratio of median fps {ratio_of_medians:.2f}x)")
    print(f"seed loop time (s): {seed_parts}")
    print(f"posepipe CPU time (s, all processes): {cpu_parts}")
    print(f"posepipe start-up before the job (s): {report['posepipe']['startup_s']:.2f}")
    print(f"posepipe wall time by stage (s), {summary['workers']} workers: {stage_parts}")
    print("all runs (s): " + json.dumps(report["all_wall_s"]))
    return report


if __name__ == "__main__":
    sys.exit(main())
