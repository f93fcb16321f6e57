"""The video pipeline's Lambdas, ``video_split``, ``aggregate``, ``render_segment`` and
``join_video``, on real media in a moto S3.

The endpoint's part is played by calling ``posepipe.video.stages.infer_chunk`` for each request the
split returns and writing its ``ChunkResult`` where the request says, as the server does; the
render Map's by invoking ``render_segment`` on each item the aggregate wrote, as the state
machine does (:func:`render_and_join`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import boto3
import pytest
from moto import mock_aws
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import job_id
from posepipe.cloud.pinning import PinnedObject
from posepipe.cloud.storage import parse_s3_uri, write_error_record
from posepipe.cloud.video_job import (
    SPLIT_OUTPUT_BUDGET,
    STATE_PAYLOAD_LIMIT,
    build_split_output,
    payload_bytes,
    plan_video_chunks,
)
from posepipe.engines.base import InferenceOptions
from posepipe.media.decode import read_frames
from posepipe.media.probe import VideoInfo, probe
from posepipe.result import validate_result
from posepipe.video.stages import Chunk, infer_chunk

from tests.support.clips import encode_frames, make_audio_only
from tests.support.lambdas import REQUEST_ID, lambda_context, load_handler_module
from tests.support.paths import EVENTS

INPUT, OUTPUT, REGION = "posepipe-input", "posepipe-output", "us-east-1"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:posepipe-video"
CLIP_FRAMES = 120
# The short clip's plan: 5 s of work a chunk, 1 s warm-up -> 3 chunks of 47, 36 and 37 frames.
CLIP_ENV = {"POSEPIPE_CHUNK_SECONDS": "5", "POSEPIPE_WARMUP_SECONDS": "1"}
# The engine the clip's chunk results are made with here (clip_chunk_results): BlazePose's own
# detector, which on this clip fires rarely, so that a chunk's warm-up misses a person (a repair).
CHUNK_ENGINE_ENV = {"POSEPIPE_DETECTOR": "blazepose", "POSEPIPE_MAX_POSES": "4"}


def event(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    data.update(changes)
    return data


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty moto S3 with the two buckets, fake credentials and powertools set for tests."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "posepipe",
        "POWERTOOLS_METRICS_NAMESPACE": "posepipe",
        "POSEPIPE_INPUT_BUCKET": INPUT,
        "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=INPUT)
        client.create_bucket(Bucket=OUTPUT)
        yield client


Loader = Callable[..., ModuleType]


class CurrentStdout:
    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def repair_endpoint(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The endpoint's server (in this process, on moto's S3) behind a SageMaker Runtime front, as
    the aggregate's boundary repairs reach it; it runs the engine the chunk results here were made
    with (BlazePose's own detector, 4 poses). Yields the endpoint's name."""
    from posepipe.cloud.endpoint.serve import start_background_server
    from posepipe.cloud.http_servers import serve_in_background
    from posepipe.local_stack.sagemaker_runtime import SageMakerRuntimeApp

    for name, value in CHUNK_ENGINE_ENV.items():
        monkeypatch.setenv(name, value)
    container = start_background_server()
    runtime = serve_in_background(SageMakerRuntimeApp({"posepipe-pose": container.url}), name="runtime")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime.url)
    monkeypatch.setenv("POSEPIPE_ENDPOINT_NAME", "posepipe-pose")
    for handler in logging.getLogger("posepipe-endpoint").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = CurrentStdout()
    try:
        yield "posepipe-pose"
    finally:
        runtime.stop()
        container.stop()


@pytest.fixture
def lambda_module(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Loader:
    """``lambda_module("video_split", POSEPIPE_X="1")``: the handler module loaded (as Lambda
    would, configuration read at load) in the moto S3 with those variables set."""

    def load(function: str, **env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        module = load_handler_module(function)
        # powertools keeps one handler per service, made with the sys.stdout of the day (under
        # pytest, one test's capture): make it write to whatever sys.stdout is now.
        for handler in logging.getLogger("posepipe").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = CurrentStdout()
        return module

    return load


def upload(s3: Any, path: Path, key: str) -> str:
    etag: str = s3.put_object(Bucket=INPUT, Key=key, Body=path.read_bytes())["ETag"]
    return etag


def leftovers(prefix: str) -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{prefix}*")}


def stdout_json(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- video_split -----------------------------------------------------------------------------


def test_split_plans_vtest_in_chunks_that_cover_every_frame(
    s3: Any, lambda_module: Loader, sample: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    etag = upload(s3, sample("vtest.avi"), "videos/vtest.avi")
    before = leftovers("posepipe-split-")
    app = lambda_module("video_split")
    out = app.handler(event("video_split.json", etag=etag), lambda_context())

    job_name = job_id("videos/vtest.avi", etag)
    assert out["job"] == {
        "id": job_name, "bucket": INPUT, "key": "videos/vtest.avi", "video": f"s3://{INPUT}/videos/vtest.avi",
        "etag": etag.strip('"'), "version_id": None,  # the version every read names (unversioned: IfMatch)
        "frame_count": 795, "fps": 10.0, "width": 768, "height": 576, "duration_s": 79.5,
        "chunk_count": len(out["chunks"]), "output_bucket": OUTPUT,
    }  # fmt: skip
    assert out["manifest"] is None
    chunks = [Chunk.from_dict(item["request"]["chunk"]) for item in out["chunks"]]
    assert len(chunks) >= 2
    assert chunks[0].start == 0
    assert chunks[-1].stop == 795
    assert all(a.stop == b.start for a, b in itertools.pairwise(chunks))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.warmup_start == max(0, c.start - 10) for c in chunks)  # 1 s at 10 fps
    assert all(c.stop - c.warmup_start <= 600 for c in chunks)  # at most 60 s of work, warm-up included
    for chunk, item in zip(chunks, out["chunks"], strict=True):
        assert item["request"] == {
            "video": f"s3://{INPUT}/videos/vtest.avi",
            "video_etag": etag.strip('"'),
            "video_info": f"s3://{OUTPUT}/work/{job_name}/video.json",  # the endpoint reads ranges with it
            "chunk": chunk.to_dict(),
            "output": f"s3://{OUTPUT}/work/{job_name}/chunks/{chunk.index:05d}.json",
            "options": {"max_poses": 20, "min_detection_confidence": 0.5, "min_presence_confidence": 0.5,
                        "min_tracking_confidence": 0.5, "detector": "centernet", "detect_every": 4},
        }  # fmt: skip
    assert leftovers("posepipe-split-") == before  # nothing in /tmp: the video is read by ranges
    # The probe, written once for the functions after the split: exactly what probing the file gives.
    written = VideoInfo.from_dict(output_json(s3, f"work/{job_name}/video.json"))
    assert written == dataclasses.replace(probe(sample("vtest.avi")), uri=f"s3://{INPUT}/videos/vtest.avi")

    records = stdout_json(capsys.readouterr().out)
    [probed] = [r for r in records if r.get("message") == "video probed"]
    assert probed["bytes_read"] == sample("vtest.avi").stat().st_size  # read once, start to end
    logs = [r for r in records if r.get("message") == "video split"]
    assert logs
    assert logs[0]["correlation_id"] == job_name
    assert logs[0]["service"] == "posepipe"
    assert logs[0]["function_request_id"] == REQUEST_ID
    emf = [r for r in records if "_aws" in r]
    assert emf
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "posepipe"
    assert emf[0]["Chunks"] == [len(chunks)]
    assert emf[0]["VideoSeconds"] == [79.5]


def test_split_writes_a_manifest_past_the_threshold(
    s3: Any, lambda_module: Loader, sample: Callable[[str], Path]
) -> None:
    etag = upload(s3, sample("vtest.avi"), "videos/vtest.avi")
    app = lambda_module("video_split", POSEPIPE_MANIFEST_THRESHOLD="1", POSEPIPE_CHUNK_SECONDS="20")
    out = app.handler(event("video_split.json", etag=etag), lambda_context())
    job_name = job_id("videos/vtest.avi", etag)
    assert out["chunks"] == []
    assert out["manifest"] == {"bucket": OUTPUT, "key": f"work/{job_name}/chunks.json"}
    items = json.loads(s3.get_object(Bucket=OUTPUT, Key=out["manifest"]["key"])["Body"].read())
    assert len(items) == out["job"]["chunk_count"] > 1
    chunks = [Chunk.from_dict(item["request"]["chunk"]) for item in items]
    config = PipelineConfig(chunk_seconds=20)
    assert chunks == plan_video_chunks(795, 10.0, config, pixels=768 * 576)
    assert all(c.stop - c.warmup_start <= 200 for c in chunks)
    assert items[1]["request"]["output"] == f"s3://{OUTPUT}/work/{job_name}/chunks/00001.json"


def _bad(kind: str, folder: Path, clip: Path) -> tuple[Path, str]:
    if kind == "text":
        path = folder / "notes.mp4"
        path.write_text("this is a shopping list, not a video\n" * 20)
    elif kind == "truncated":
        path = folder / "cut.mp4"
        path.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    else:
        path = make_audio_only(folder / "song.m4a", "aac")
    return path, f"videos/{path.name}"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("text", "not a video"),
        ("truncated", "truncated or corrupt video"),
        ("audio", "no video stream (audio only)"),
    ],
)
def test_split_refuses_what_is_not_a_usable_video(
    s3: Any, lambda_module: Loader, tmp_path: Path, short_clip: Path, kind: str, reason: str
) -> None:
    path, key = _bad(kind, tmp_path, short_clip)
    etag = upload(s3, path, key)
    before = leftovers("posepipe-split-")
    app = lambda_module("video_split")
    answer = app.handler(event("video_split.json", key=key, etag=etag), lambda_context())
    assert set(answer) == {"rejected"}, answer  # refused, not raised: no stack trace for the record
    refused = answer["rejected"]
    assert (refused["key"], refused["code"]) == (key, "bad_input"), refused
    assert reason in refused["reason"]
    assert "/tmp" not in refused["reason"]  # the key, not the downloaded copy
    assert leftovers("posepipe-split-") == before


@pytest.mark.parametrize(
    ("env", "code", "reason"),
    [
        ({"POSEPIPE_MAX_VIDEO_SECONDS": "60"}, "too_long", "video is 79.5 s long, over the limit of 60 s"),
        (
            {"POSEPIPE_MAX_VIDEO_PIXELS": "307200"},
            "too_large",
            "768x576 (442368 pixels a frame), over the limit of 307200",
        ),
        (
            {"POSEPIPE_ALLOWED_CODECS": "h264,hevc"},
            "codec_not_allowed",
            "video codec 'msmpeg4v3' is not accepted (accepted: h264, hevc)",
        ),
    ],
)
def test_split_refuses_videos_over_the_limits(
    s3: Any,
    lambda_module: Loader,
    sample: Callable[[str], Path],
    env: dict[str, str],
    code: str,
    reason: str,
) -> None:
    etag = upload(s3, sample("vtest.avi"), "videos/vtest.avi")
    app = lambda_module("video_split", **env)
    refused = app.handler(event("video_split.json", etag=etag), lambda_context())["rejected"]
    assert (refused["key"], refused["code"]) == ("videos/vtest.avi", code)
    assert reason in refused["reason"]


def test_split_refuses_a_missing_object_and_keys_outside_the_videos_prefix(
    s3: Any, lambda_module: Loader, short_clip: Path
) -> None:
    app = lambda_module("video_split")
    gone = app.handler(event("video_split.json", key="videos/gone.mp4"), lambda_context())
    assert gone == {"rejected": {"key": "videos/gone.mp4", "code": "bad_input",
                                 "reason": "no such object in bucket posepipe-input"}}  # fmt: skip
    etag = upload(s3, short_clip, "images/clip.mp4")
    outside = app.handler(event("video_split.json", key="images/clip.mp4", etag=etag), lambda_context())
    assert outside["rejected"]["reason"].startswith("not an input object under 'videos/'"), outside
    with pytest.raises(ValueError, match="etag"), pytest.warns(UserWarning, match="No application metrics"):
        # the parser model (pydantic's ValidationError is a ValueError)
        app.handler({"bucket": INPUT, "key": "videos/clip.mp4"}, lambda_context())


def _hour_long(fps: float = 30.0) -> VideoInfo:
    frames = round(3600 * fps)
    return VideoInfo(
        uri="hour.mp4", codec="h264", width=1920, height=1080, coded_width=1920, coded_height=1080, fps=fps,
        frame_count=frames, duration_s=3600.0, rotation=0, pix_fmt="yuv420p", has_audio=True,
        audio_codec="aac", time_base=Fraction(1, 15360), frame_pts=(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("config", "key", "inline"),
    [
        (PipelineConfig(), "videos/an-hour-of-squats.mp4", True),  # 66 chunks of a minute's work
        # 1,200 chunks, under the threshold but over the size budget inline:
        (
            PipelineConfig(chunk_seconds=4.0, warmup_seconds=1.0, manifest_threshold=100_000),
            "videos/hour.mp4",
            False,
        ),
        # 180 chunks (under the threshold) of a 1 KiB key (the most S3 allows): over the budget inline
        (PipelineConfig(chunk_seconds=25.0), "videos/" + "very-long-name/" * 67 + "hour.mp4", False),
        (PipelineConfig(chunk_seconds=8.0, warmup_seconds=2.0), "videos/hour.mp4", False),  # 600 > 200 chunks
    ],
)
def test_split_output_of_an_hour_long_video_stays_under_256_kib(
    config: PipelineConfig, key: str, inline: bool
) -> None:
    plan = build_split_output(config, pin=PinnedObject(INPUT, key, '"abc"'), info=_hour_long())
    size = payload_bytes(plan.output)
    assert size <= SPLIT_OUTPUT_BUDGET < STATE_PAYLOAD_LIMIT == 262_144
    assert (plan.output["manifest"] is None) is inline
    items = plan.output["chunks"] if inline else plan.manifest_items
    assert items is not None
    assert len(items) == plan.output["job"]["chunk_count"]
    chunks = [Chunk.from_dict(item["request"]["chunk"]) for item in items]
    assert chunks[0].start == 0
    assert chunks[-1].stop == 108_000
    assert all(a.stop == b.start for a, b in itertools.pairwise(chunks))
    assert max(c.stop - c.warmup_start for c in chunks) <= round(config.chunk_seconds * 30)
    if not inline:
        assert plan.output["chunks"] == []
        assert plan.manifest_key == plan.output["manifest"]["key"]


# --- aggregate -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    """The first 120 frames of vtest.avi as an H.264 MP4 with an AAC track."""
    frames = [f.rgb for f in read_frames(sample("vtest.avi"), 0, CLIP_FRAMES)]
    return encode_frames(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, fps=10, audio=True)


@pytest.fixture(scope="module")
def clip_chunk_results(short_clip: Path, model_path: Path) -> dict[int, dict[str, Any]]:
    """What the endpoint writes for each chunk of the short clip (run once for the module)."""
    chunks = plan_video_chunks(CLIP_FRAMES, 10.0, PipelineConfig(chunk_seconds=5, warmup_seconds=1), pixels=0)
    options = InferenceOptions(max_poses=4, model_path=str(model_path), detector="blazepose")
    return {c.index: infer_chunk(short_clip, c, options).to_dict() for c in chunks}


def split_and_infer(
    s3: Any, lambda_module: Loader, clip: Path, results: dict[int, dict[str, Any]], skip: set[int]
) -> dict[str, Any]:
    """Upload the clip, run video_split and 'the endpoint' (the chunk results made once): the
    aggregate event, with ``skip`` chunks' results not written and their Map items as the
    state machine writes a failed chunk (tests/events/aggregate.json shows one)."""
    etag = upload(s3, clip, "videos/clip.mp4")
    split = lambda_module("video_split", **CLIP_ENV).handler(
        event("video_split.json", key="videos/clip.mp4", etag=etag), lambda_context()
    )
    fixture = event("aggregate.json")
    failed_item = next(item for item in fixture["chunk_results"] if item.get("failed"))
    items = []
    for item in split["chunks"]:
        request = item["request"]
        index = request["chunk"]["index"]
        assert results[index]["chunk"] == request["chunk"], "the split planned other chunks"
        if index in skip:
            items.append({**failed_item, "chunk": index})
            continue
        bucket, key = parse_s3_uri(request["output"])
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(results[index]).encode())
        items.append({
            "output": request["output"], "chunk": index, "frames": len(results[index]["frames"]),
            "person_frames": sum(len(f["persons"]) for f in results[index]["frames"]),
            "timings": results[index]["timings"],
        })  # fmt: skip
    return {**fixture, "job": split["job"], "chunk_results": items}


def render_and_join(
    s3: Any,
    lambda_module: Loader,
    aggregated: dict[str, Any],
    env: dict[str, str],
    skip: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """What the state machine does after the aggregate: each item of the render Map on
    ``render_segment`` (but ``skip``'s, as if their Lambdas kept failing), then ``join_video``;
    its answer."""
    render = lambda_module("render_segment", **env)
    manifest = aggregated["render"]
    items = json.loads(s3.get_object(Bucket=manifest["bucket"], Key=manifest["key"])["Body"].read())
    for item in items:
        if item["chunk"]["index"] not in skip:
            answer = render.handler(item, lambda_context("render_segment"))
            assert answer["frames"] == item["chunk"]["stop"] - item["chunk"]["start"]
    join = lambda_module("join_video", **env)
    payload = {"job": aggregated["job"], "render": manifest, "aggregated": aggregated["aggregated"]}
    out: dict[str, Any] = join.handler(payload, lambda_context("join_video"))
    return out


def output_json(s3: Any, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())
    return data


def output_keys(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=OUTPUT).get("Contents", [])}


def test_aggregate_writes_keypoints_annotated_video_and_summary(
    s3: Any,
    lambda_module: Loader,
    short_clip: Path,
    clip_chunk_results: dict[int, dict[str, Any]],
    tmp_path: Path,
    repair_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip=set())
    before = leftovers("posepipe-aggregate-")
    app = lambda_module("aggregate", **CLIP_ENV)
    aggregated = app.handler(copy.deepcopy(aggregate_event), lambda_context())
    job = aggregate_event["job"]["id"]
    assert aggregated == {
        "job": aggregate_event["job"],
        "render": {"bucket": OUTPUT, "key": f"work/{job}/segments.json"},
        "aggregated": f"work/{job}/aggregated.json",
    }
    assert "videos/clip.mp4/summary.json" not in output_keys(s3)  # the join writes it, last
    out = render_and_join(s3, lambda_module, aggregated, CLIP_ENV)

    base = f"s3://{OUTPUT}/videos/clip.mp4"
    assert out == {
        "job": aggregate_event["job"],
        "outputs": {"keypoints": f"{base}/keypoints.json", "annotated": f"{base}/annotated.mp4",
                    "summary": f"{base}/summary.json"},
    }  # fmt: skip
    keypoints = output_json(s3, "videos/clip.mp4/keypoints.json")
    validate_result(keypoints)
    assert keypoints["source"]["uri"] == f"s3://{INPUT}/videos/clip.mp4"
    assert [f["index"] for f in keypoints["frames"]] == list(range(CLIP_FRAMES))
    assert keypoints["model"]["name"] == "pose_landmarker_full"
    ids = [p["id"] for f in keypoints["frames"] for p in f["persons"]]
    assert ids
    assert min(ids) >= 0
    assert sum(1 for f in keypoints["frames"] if f["persons"]) > CLIP_FRAMES // 2

    (tmp_path / "annotated.mp4").write_bytes(
        s3.get_object(Bucket=OUTPUT, Key="videos/clip.mp4/annotated.mp4")["Body"].read()
    )
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio, "the source's audio was dropped"
        assert sum(1 for _ in container.decode(video=0)) == CLIP_FRAMES

    summary = output_json(s3, "videos/clip.mp4/summary.json")
    assert summary["job"] == aggregate_event["job"]["id"]
    assert summary["failed_chunks"] == []
    assert summary["frames"] == CLIP_FRAMES == len(summary["persons_per_frame"])
    assert summary["persons_per_frame"] == [len(f["persons"]) for f in keypoints["frames"]]
    assert [c["index"] for c in summary["chunks"]] == [0, 1, 2]
    # On this clip the detector fires rarely: chunk 2's 1 s warm-up misses the person chunk 1
    # ends with, and the boundary repair, run by the endpoint, brings them back.
    assert summary["boundary_repairs"] == 1
    assert "repair_frames" in summary["chunks"][2]["timings"]
    repair = output_json(s3, f"work/{job}/repairs/00002.json")  # written by the endpoint
    assert repair["chunk"]["index"] == 2
    assert repair["chunk"]["warmup_start"] < clip_chunk_results[2]["chunk"]["warmup_start"]
    assert repair["model"]["engine"] == "mediapipe"  # the endpoint's engine for that detector
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    served = [
        r for r in logged if r.get("service") == "posepipe-endpoint" and r.get("message") == "boundary repair"
    ]
    assert len(served) == 1
    assert served[0]["chunk"]["index"] == 2
    chunk2 = clip_chunk_results[2]["chunk"]
    assert not any(f["persons"] for f in clip_chunk_results[2]["frames"][:3])
    assert keypoints["frames"][chunk2["start"]]["persons"]
    assert summary["stages_cpu_s"]["inference"] > 0
    assert summary["stages_cpu_s"]["encode"] > 0
    assert summary["frames_decoded_for_render"] == CLIP_FRAMES  # by the segments, from the source in S3
    assert (summary["render_segments"], summary["render_failed"]) == (3, [])
    assert summary["source"]["uri"] == f"s3://{INPUT}/videos/clip.mp4"
    assert not any(key.startswith("errors/") for key in output_keys(s3))
    assert leftovers("posepipe-aggregate-") == before
    # The motion analysis next to keypoints.json, as `posepipe video --analyze` writes it.
    keys = output_keys(s3)
    persons = sorted({person_id for person_id in ids})
    expected = {"angles.csv", "keypoints.csv", "analysis.json", "persons_per_frame.png"} | {
        f"person_{i}/{name}"
        for i in persons
        for name in ("angles.mot", "angles.png", "markers.c3d", "markers.trc")
    }
    assert {f"videos/clip.mp4/{name}" for name in expected} <= keys
    analysis = output_json(s3, "videos/clip.mp4/analysis.json")
    assert [p["id"] for p in analysis["persons"]] == persons
    assert summary["motion"]["persons"] == analysis["persons"]
    assert summary["motion"]["sample_rate_hz"] > 0
    status, answer = job_status(lambda_module, "clip.mp4")
    assert status == 200
    assert set(answer["results"]) == {"keypoints", "annotated", "summary", "analysis"}
    assert "/videos/clip.mp4/analysis.json?" in answer["results"]["analysis"]
    head = s3.head_object(Bucket=OUTPUT, Key="videos/clip.mp4/angles.csv")
    assert head["ContentType"] == "text/csv"


def job_status(lambda_module: Loader, job: str) -> tuple[int, dict[str, Any]]:
    """``GET /jobs/{job}`` through the video_jobs function, on the same buckets."""
    app = lambda_module("video_jobs", POSEPIPE_STATE_MACHINE_ARN=STATE_MACHINE_ARN)
    request = event("video_jobs_get_job.json", path=f"/jobs/{job}", pathParameters={"id": job})
    with warnings.catch_warnings():  # a status request measures nothing, which powertools warns of
        warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
        response = app.handler(request, lambda_context("video_jobs"))
    return response["statusCode"], json.loads(response["body"])


def test_a_chunk_that_failed_is_marked_not_processed_and_the_job_succeeds_with_a_warning(
    s3: Any, lambda_module: Loader, short_clip: Path, clip_chunk_results: dict[int, dict[str, Any]]
) -> None:
    """The aggregate tolerates one failed chunk of three; the job API then reports the results."""
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip={1})
    app = lambda_module("aggregate", POSEPIPE_MAX_FAILED_CHUNK_RATIO="0.5", **CLIP_ENV)
    render_and_join(s3, lambda_module, app.handler(aggregate_event, lambda_context()), CLIP_ENV)

    failed = clip_chunk_results[1]["chunk"]
    start, stop = failed["start"], failed["stop"]
    keypoints = output_json(s3, "videos/clip.mp4/keypoints.json")
    validate_result(keypoints)
    frames = keypoints["frames"]
    assert [f["index"] for f in frames] == list(range(CLIP_FRAMES))
    assert [f["t"] for f in frames] == [i / 10 for i in range(CLIP_FRAMES)]
    # The failed chunk's frames say so; every other frame was processed (and says nothing).
    assert [f.get("processed", True) for f in frames] == [not start <= i < stop for i in range(CLIP_FRAMES)]
    assert all(f["processed"] is False and f["persons"] == [] for f in frames[start:stop])
    summary = output_json(s3, "videos/clip.mp4/summary.json")
    [entry] = summary["failed_chunks"]
    assert (entry["index"], entry["start"], entry["stop"]) == (1, start, stop)
    assert entry["reason"].startswith("SageMakerRuntime.ModelErrorException: Received server error (500)")
    assert summary["frames"] == CLIP_FRAMES
    assert summary["frames_not_processed"] == stop - start
    assert summary["persons_per_frame"][start:stop] == [None] * (stop - start)
    processed = [n for n in summary["persons_per_frame"] if n is not None]
    assert summary["person_frames"] == sum(processed)
    assert summary["mean_persons_per_frame"] == round(sum(processed) / len(processed), 4)
    assert summary["chunks"][1]["timings"] == {}
    record = output_json(s3, "errors/videos/clip.mp4.json")
    assert record["input"] == f"s3://{INPUT}/videos/clip.mp4"
    assert (record["stage"], record["code"]) == ("aggregate", "chunks_failed")
    assert record["reason"].startswith("1 of 3 chunks failed: chunk 1: SageMakerRuntime.ModelErrorException")
    assert record["reason"].endswith("their frames are marked not processed")

    status, answer = job_status(lambda_module, "clip.mp4")
    assert (status, answer["status"]) == (200, "succeeded"), answer
    assert (answer["frames"], answer["person_frames"]) == (CLIP_FRAMES, summary["person_frames"])
    [warning] = answer["warnings"]
    assert (warning["code"], warning["chunk"], warning["frames"]) == ("chunk_failed", 1, [start, stop])
    assert "SageMakerRuntime.ModelErrorException" in warning["message"]


def test_a_failed_motion_analysis_leaves_the_results_whole_and_the_job_warns(
    s3: Any,
    lambda_module: Loader,
    short_clip: Path,
    clip_chunk_results: dict[int, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    repair_endpoint: str,
) -> None:
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip=set())
    app = lambda_module("aggregate", **CLIP_ENV)

    def fails(*_: Any) -> Any:
        raise MemoryError("out of memory reading the keypoints")

    monkeypatch.setattr(app, "analyze_collected", fails)
    aggregated = app.handler(copy.deepcopy(aggregate_event), lambda_context())
    render_and_join(s3, lambda_module, aggregated, CLIP_ENV)
    keys = output_keys(s3)
    assert {f"videos/clip.mp4/{n}" for n in ("keypoints.json", "annotated.mp4", "summary.json")} <= keys
    assert not any(key.endswith((".csv", ".trc", ".c3d", "analysis.json")) for key in keys)
    summary = output_json(s3, "videos/clip.mp4/summary.json")
    assert summary["motion"] == {"error": "MemoryError: out of memory reading the keypoints"}
    status, answer = job_status(lambda_module, "clip.mp4")
    assert (status, answer["status"]) == (200, "succeeded"), answer
    assert set(answer["results"]) == {"keypoints", "annotated", "summary"}
    [warning] = answer["warnings"]
    assert warning == {
        "code": "analysis_failed",
        "message": "the motion analysis failed (MemoryError: out of memory reading the keypoints); the "
        "keypoints, the annotated video and the summary are whole",
    }


def test_a_segment_that_could_not_be_rendered_leaves_the_job_partial_and_its_keypoints_whole(
    s3: Any,
    lambda_module: Loader,
    short_clip: Path,
    clip_chunk_results: dict[int, dict[str, Any]],
    repair_endpoint: str,
) -> None:
    """A render Lambda that kept failing (chunk 1's): no annotated video, never a half one; the
    keypoints, the analysis and the summary are whole, the record and the job API say what is missing."""
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip=set())
    aggregated = lambda_module("aggregate", **CLIP_ENV).handler(aggregate_event, lambda_context())
    out = render_and_join(s3, lambda_module, aggregated, CLIP_ENV, skip=frozenset({1}))
    assert out["outputs"]["annotated"] is None
    keys = output_keys(s3)
    assert "videos/clip.mp4/annotated.mp4" not in keys
    assert {f"videos/clip.mp4/{n}" for n in ("keypoints.json", "summary.json", "analysis.json")} <= keys
    assert len(output_json(s3, "videos/clip.mp4/keypoints.json")["frames"]) == CLIP_FRAMES
    summary = output_json(s3, "videos/clip.mp4/summary.json")
    assert (summary["render_segments"], summary["render_failed"], summary["annotated"]) == (3, [1], None)
    assert summary["failed_chunks"] == []
    record = output_json(s3, "errors/videos/clip.mp4.json")
    assert (record["stage"], record["code"]) == ("render", "render_failed")
    assert record["reason"] == (
        "1 of 3 segments of the annotated video could not be rendered (chunks 1), so it was not made; "
        "keypoints.json and the motion analysis are whole"
    )
    status, answer = job_status(lambda_module, "clip.mp4")
    assert (status, answer["status"]) == (200, "succeeded"), answer
    assert set(answer["results"]) == {"keypoints", "summary", "analysis"}
    [warning] = answer["warnings"]
    assert (warning["code"], warning["segments"]) == ("render_failed", [1])


def test_a_job_with_too_many_failed_chunks_has_failed(
    s3: Any, lambda_module: Loader, short_clip: Path, clip_chunk_results: dict[int, dict[str, Any]]
) -> None:
    """The aggregate refuses and writes nothing; the state machine records why; the job failed."""
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip={0, 1})
    app = lambda_module("aggregate", **CLIP_ENV)
    refused = app.handler(aggregate_event, lambda_context())["rejected"]
    assert (refused["key"], refused["code"]) == ("videos/clip.mp4", "chunks_failed")
    assert "2 of 3 chunks failed" in refused["reason"]
    assert not any(key.startswith("videos/") for key in output_keys(s3))  # nothing written
    # The state machine's AggregateRejected and WriteErrorRecord: the record as the aggregate gave it.
    config = PipelineConfig.from_env()
    write_error_record(s3, config, refused["key"], stage="aggregate", reason=refused["reason"],
                       code=refused["code"])  # fmt: skip
    status, answer = job_status(lambda_module, "clip.mp4")
    assert (status, answer["status"]) == (200, "failed"), answer
    assert answer["error"]["code"] == "chunks_failed"
    assert "2 of 3 chunks failed" in answer["error"]["reason"]
    assert "warnings" not in answer


def test_aggregate_refuses_a_plan_other_than_the_split_s(
    s3: Any, lambda_module: Loader, short_clip: Path, clip_chunk_results: dict[int, dict[str, Any]]
) -> None:
    aggregate_event = split_and_infer(s3, lambda_module, short_clip, clip_chunk_results, skip=set())
    app = lambda_module("aggregate", POSEPIPE_CHUNK_SECONDS="60")
    with pytest.raises(RuntimeError, match="the chunk plan gives 1 chunks where video_split planned 3"):
        app.handler(aggregate_event, lambda_context())
    assert not any(key.startswith("videos/") for key in output_keys(s3))


def test_split_refuses_an_object_replaced_since_its_job_started_in_a_bucket_without_versions(
    s3: Any, lambda_module: Loader, sample: Callable[[str], Path], short_clip: Path
) -> None:
    etag = upload(s3, sample("vtest.avi"), "videos/vtest.avi")
    upload(s3, short_clip, "videos/vtest.avi")  # uploaded again before the split ran
    refused = lambda_module("video_split").handler(event("video_split.json", etag=etag), lambda_context())
    assert refused["rejected"]["code"] == "superseded", refused
    assert "uploaded again since this job started" in refused["rejected"]["reason"]


def test_split_reads_the_version_that_started_the_job_in_a_versioned_bucket(
    s3: Any, lambda_module: Loader, sample: Callable[[str], Path], short_clip: Path
) -> None:
    s3.put_bucket_versioning(Bucket=INPUT, VersioningConfiguration={"Status": "Enabled"})
    s3.upload_file(str(sample("vtest.avi")), INPUT, "videos/vtest.avi")
    head = s3.head_object(Bucket=INPUT, Key="videos/vtest.avi")
    upload(s3, short_clip, "videos/vtest.avi")  # a newer version, while the first one's job runs
    request = event("video_split.json", etag=head["ETag"])
    request["version_id"] = head["VersionId"]
    out = lambda_module("video_split").handler(request, lambda_context())
    assert out["job"]["frame_count"] == 795  # vtest.avi's, not the short clip's
    assert out["job"]["version_id"] == head["VersionId"]
    assert all(item["request"]["video_version_id"] == head["VersionId"] for item in out["chunks"])
