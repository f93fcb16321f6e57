"""How fast ``posepipe serve`` refuses a video over its length limit, and how much of it it reads.

Makes a 4-hour H.264 MP4 (160x120 at 1 fps, noise, about 58 MB, its index at the end as cameras
write it), starts ``posepipe serve`` (the deployed configuration: 20 minutes at most), uploads the
video to ``s3://posepipe-input/videos/`` and times the upload's end to ``errors/<key>.json``;
then prints the bytes of the video that the stack's clients read (the S3 meter,
``posepipe.local_stack.s3_meter``). The target (issue 22): under 10 s, under 10 MB read.

    .venv/bin/python bench/early_refusal.py [--hours 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.clips import make_long_clip  # noqa: E402
from tests.support.uistack import S3_URL, serve_stack  # noqa: E402

INPUT, OUTPUT = "posepipe-input", "posepipe-output"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        video = make_long_clip(Path(folder) / "long.mp4", seconds=round(args.hours * 3600))
        size = video.stat().st_size
        with serve_stack(Path(folder) / "serve.log", env={}) as _stack:
            s3 = boto3.client("s3", endpoint_url=S3_URL, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
            key = "videos/long.mp4"
            s3.upload_file(str(video), INPUT, key)
            uploaded = time.monotonic()
            while True:
                try:
                    record = json.loads(s3.get_object(Bucket=OUTPUT, Key=f"errors/{key}.json")["Body"].read())
                    break
                except s3.exceptions.NoSuchKey:
                    time.sleep(0.05)
            elapsed = time.monotonic() - uploaded
            with urllib.request.urlopen(f"{S3_URL}/_posepipe/s3-reads", timeout=10) as answer:
                read = json.load(answer)["reads"].get(f"{INPUT}/{key}", 0)
    print(f"video: {args.hours:g} h, {size / 1e6:.1f} MB")
    print(f"upload to error record: {elapsed:.2f} s (S3 notification, state machine, video_split)")
    print(f"read of the video: {read / 1e6:.3f} MB ({100 * read / size:.2f}%)")
    limit = "over the limit" in record["reason"]
    print(f"error record: stage {record['stage']}, reason names the limit: {limit}")


if __name__ == "__main__":
    main()
