"""How long one ``render_segment`` Lambda takes on a segment of a 20-minute 1080p30 video.

The deployed plan (posepipe.cloud.deployment: 60 s chunks, 1 s warm-up, 6 ms a frame on the GPU)
cuts 20 minutes of 1080p30 into 21 chunks of up to 1,743 frames; the render Map draws each in its
own Lambda. This bench makes the longest such segment's source (vtest.avi's frames, scaled to
1920x1080 and looped, 30 fps H.264), and the persons posepipe found in vtest.avi (``posepipe
video``, run once and kept in ``--work``) scaled with them; puts both in a moto S3 as video_split
and the aggregate would (``work/<job>/video.json``, ``frames/<chunk>.json``); then runs the real
handler (ranged GETs of the source, decode, draw, encode with its 2 threads, upload) in a child
process, and prints its wall time, CPU time and peak memory.

    .venv/bin/python bench/render_segment.py [--frames 1743] [--width 1920 --height 1080 --fps 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "layers"))

from posepipe.assets.samples import sample_path  # noqa: E402

INPUT, OUTPUT, JOB = "posepipe-input", "posepipe-output", "bench-render"


def vtest_keypoints(work: Path) -> dict[str, Any]:
    """posepipe's keypoints of vtest.avi, made once (``posepipe video``) and kept in ``work``."""
    out = work / "vtest-keypoints"
    result = out / "vtest.avi" / "keypoints.json"
    if not result.exists():
        posepipe = Path(sys.executable).with_name("posepipe")
        subprocess.run(
            [
                str(posepipe),
                "video",
                str(sample_path("vtest.avi")),
                "-o",
                str(out),
                "--no-annotate",
                "--no-progress",
            ],
            check=True,
        )
    if not result.exists():  # older layouts: the one keypoints.json under out
        result = next(out.rglob("keypoints.json"))
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def make_source(path: Path, frames: int, width: int, height: int, fps: int) -> None:
    """vtest.avi's frames scaled to width x height and looped, as ``fps`` H.264 (CRF 20, no B-frames
    needed: a camera's GOP of 2 s)."""
    with av.open(str(sample_path("vtest.avi"))) as source:
        pictures = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(
            "libx264", rate=fps, options={"preset": "veryfast", "crf": "20", "g": str(2 * fps)}
        )
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            picture = np.asarray(
                cv2.resize(pictures[i % len(pictures)], (width, height), interpolation=cv2.INTER_LINEAR),
                np.uint8,
            )
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def scaled_frames(
    keypoints: dict[str, Any], frames: int, sx: float, sy: float, fps: int
) -> list[dict[str, Any]]:
    source = keypoints["frames"]
    out = []
    for i in range(frames):
        frame = json.loads(json.dumps(source[i % len(source)]))
        frame["index"], frame["t"] = i, i / fps
        for person in frame["persons"]:
            for landmark in person["landmarks"]:
                landmark[0] *= sx
                landmark[1] *= sy
                landmark[2] *= sx
            if person.get("box"):
                x0, y0, x1, y1 = person["box"]
                person["box"] = [x0 * sx, y0 * sy, x1 * sx, y1 * sy]
        out.append(frame)
    return out


def run_handler(video: str, frames_json: str, queue: Any) -> None:
    """In a child process: moto S3 with the work files, the handler once; its figures on ``queue``."""
    import boto3
    from moto import mock_aws

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POSEPIPE_INPUT_BUCKET": INPUT,
            "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
            "POWERTOOLS_METRICS_NAMESPACE": "posepipe",
        }
    )
    from posepipe.cloud.storage import put_json
    from posepipe.local_stack.stack import load_function
    from posepipe.media.probe import probe

    from tests.support.lambdas import lambda_context

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=INPUT)
        s3.create_bucket(Bucket=OUTPUT)
        s3.upload_file(video, INPUT, "videos/segment.mp4")
        etag = s3.head_object(Bucket=INPUT, Key="videos/segment.mp4")["ETag"]
        info = probe(video)
        put_json(
            s3,
            OUTPUT,
            f"work/{JOB}/video.json",
            {**info.to_dict(), "uri": f"s3://{INPUT}/videos/segment.mp4"},
        )
        frames = json.loads(Path(frames_json).read_text())
        chunk = {"index": 0, "start": 0, "stop": len(frames), "warmup_start": 0}
        put_json(s3, OUTPUT, f"work/{JOB}/frames/00000.json", {"chunk": chunk, "frames": frames})
        module = load_function("render_segment")
        job = {"id": JOB, "bucket": INPUT, "key": "videos/segment.mp4", "video": f"s3://{INPUT}/videos/segment.mp4",
               "etag": etag, "version_id": None, "output_bucket": OUTPUT}  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        answer = module.handler({"job": job, "chunk": chunk}, lambda_context("render_segment"))
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        segment = s3.head_object(Bucket=OUTPUT, Key=f"work/{JOB}/segments/00000.mp4")["ContentLength"]
    queue.put({
        "wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024, "answer": answer, "segment_bytes": segment,
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=1743, help="the segment's frames (default: 20-min 1080p30's)"
    )
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "posepipe" / "bench")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    keypoints = vtest_keypoints(args.work)
    sx, sy = args.width / keypoints["source"]["width"], args.height / keypoints["source"]["height"]
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "segment.mp4"
        made = time.perf_counter()
        make_source(video, args.frames, args.width, args.height, args.fps)
        made_s = time.perf_counter() - made
        size_mb = video.stat().st_size / 1e6
        print(f"source: {args.frames} frames {args.width}x{args.height} at {args.fps} fps, {size_mb:.1f} MB")
        print(f"  (made in {made_s:.0f} s)")
        frames_json = Path(folder) / "frames.json"
        frames = scaled_frames(keypoints, args.frames, sx, sy, args.fps)
        frames_json.write_text(json.dumps(frames))
        persons = sum(len(f["persons"]) for f in frames)
        print(f"persons drawn: {persons} ({persons / args.frames:.2f} a frame, posepipe's on vtest.avi)")
        queue: Any = multiprocessing.get_context("spawn").Queue()
        child = multiprocessing.get_context("spawn").Process(
            target=run_handler, args=(str(video), str(frames_json), queue)
        )
        child.start()
        figures = queue.get()
        child.join()
    timings = figures["answer"]["timings"]
    wall, cpu = figures["wall_s"], figures["cpu_s"]
    print(f"render_segment: wall {wall:.1f} s, CPU {cpu:.1f} s ({cpu / wall:.2f} cores)")
    print(f"  {1000 * wall / args.frames:.1f} ms a frame of wall time")
    parts = ", ".join(f"{name} {timings[f'{name}_s']:.1f} s" for name in ("decode", "draw", "encode"))
    print(f"  {parts}")
    print(f"  source read {figures['answer']['source_bytes_read'] / 1e6:.1f} MB by ranged GETs")
    segment_mb, rss = figures["segment_bytes"] / 1e6, figures["peak_rss_mib"]
    print(f"  segment {segment_mb:.1f} MB; peak RSS {rss:.0f} MiB (the child process)")
    print(f"scaled: {cpu:.0f} s on one vCPU of this speed; {cpu / 1.7:.0f} s on 3,008 MB (about 1.7 vCPU)")


if __name__ == "__main__":
    main()
