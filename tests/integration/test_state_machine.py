"""The one ASL definition: valid for asl-validator, and run by moto's real ASL engine.

These tests drive the state machine's control flow (retries, catches, error records) with small
stand-in functions and a container that fails on demand; the happy path with the real handlers
and the real endpoint runs at the end of this file on a short real clip, and through
``posepipe serve`` on vtest.avi in ``tests/e2e/test_serve.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from posepipe.cloud.http_servers import BackgroundServer, serve_in_background
from posepipe.cloud.state_machine import PLACEHOLDERS, definition_template, render_definition
from werkzeug.wrappers import Request, Response

from tests.support.localaws import LocalAws, history, local_aws, run_execution
from tests.support.paths import REPO

# The real functions and endpoint behind moto's Step Functions: a local stack in this process.
pytestmark = pytest.mark.stack

INPUT, OUTPUT = "posepipe-input", "posepipe-output"
PIPELINE_FUNCTIONS = ("video_split", "aggregate", "render_segment", "join_video")


def test_one_definition_with_every_placeholder_and_valid_asl(tmp_path: Path) -> None:
    template = definition_template()
    for name in PLACEHOLDERS:
        assert "${" + name + "}" in template
    rendered = render_definition(
        {name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}" for name in PLACEHOLDERS}
    )
    assert re.search(r"\$\{\w+\}", rendered) is None
    (tmp_path / "definition.json").write_text(rendered)
    validator = REPO / "node_modules" / ".bin" / "asl-validator"
    assert validator.exists(), "run `npm ci` (make test does)"
    run = subprocess.run(
        [str(validator), "--json-path", str(tmp_path / "definition.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "is valid" in run.stdout
    assert shutil.which("node") is not None


def test_render_refuses_unknown_or_missing_placeholders() -> None:
    with pytest.raises(ValueError, match="missing"):
        render_definition({"EndpointName": "x"})


class FlakyContainer:
    """An endpoint container that answers 500 for its first ``failures`` invocations (503
    ``over_capacity``, as the real endpoint's admission does, when ``busy``); a video
    whose key ends in ``.refused.mp4`` it refuses as the real endpoint does (a 422, or, when the
    caller asks for ``posepipe-refusals=in-body``, a 200 saying ``refused``)."""

    def __init__(self, failures: int, busy: bool = False) -> None:
        self.failures = failures
        self.busy = busy
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.calls += 1
            failing = self.calls <= self.failures
        body = json.loads(request.get_data())
        if body["video"].endswith(".refused.mp4"):
            refused = {
                "status": 422,
                "code": "bad_input",
                "reason": f"{body['video']}: truncated or corrupt video",
            }
            if request.headers.get("X-Amzn-SageMaker-Custom-Attributes") == "posepipe-refusals=in-body":
                answer = {"refused": refused, "chunk": body["chunk"]["index"]}
                response = Response(json.dumps(answer), content_type="application/json")
            else:
                response = Response(
                    json.dumps({"error": "bad_input", "message": refused["reason"]}), status=422
                )
        elif failing and self.busy:
            message = "this endpoint process already runs 2 invocations, its capacity; retry shortly"
            response = Response(json.dumps({"error": "over_capacity", "message": message}), status=503)
        elif failing:
            response = Response(json.dumps({"error": "internal", "message": "boom"}), status=500)
        else:
            answer = {
                "output": body["output"],
                "chunk": body["chunk"]["index"],
                "frames": 3,
                "person_frames": 1,
            }
            response = Response(json.dumps(answer), content_type="application/json")
        return response(environ, start_response)


def split_stub(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """video_split's answers: a plan of one chunk, a refusal (``.txt.mp4``), a crash (``.crash.mp4``)."""
    if event["key"].endswith(".txt.mp4"):
        return {
            "rejected": {"key": event["key"], "code": "bad_input", "reason": "not a video file: it is text"}
        }
    if event["key"].endswith(".crash.mp4"):
        raise ZeroDivisionError("division by zero in the planner")
    request = {
        "video": f"s3://{event['bucket']}/{event['key']}",
        "chunk": {"index": 0, "start": 0, "stop": 3, "warmup_start": 0},
        "output": f"s3://{OUTPUT}/work/job/chunks/00000.json",
        "options": {"max_poses": 1},
    }
    return {"job": {"id": "job", "key": event["key"]}, "chunks": [{"request": request}], "manifest": None}


def aggregate_stub(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The aggregate's answers: a refusal when every chunk failed, else the render Map's items
    (one segment, two for a video whose key ends in ``.two.mp4``) and what it made for the join
    (here: the Map's chunk results, which the join stub gives back)."""
    import boto3

    failed = [r for r in event["chunk_results"] if r.get("failed") or r.get("refused")]
    if len(failed) == len(event["chunk_results"]):
        reason = f"{len(failed)} of {len(failed)} chunks failed: " + json.dumps(failed)[:300]
        return {"rejected": {"key": event["job"]["key"], "code": "chunks_failed", "reason": reason}}
    s3 = boto3.client("s3")
    segments = 2 if event["job"]["key"].endswith(".two.mp4") else 1
    chunks = [{"index": i, "start": 3 * i, "stop": 3 * i + 3, "warmup_start": 0} for i in range(segments)]
    items = [{"job": event["job"], "chunk": chunk} for chunk in chunks]
    s3.put_object(Bucket=OUTPUT, Key="work/job/segments.json", Body=json.dumps(items).encode())
    made = json.dumps(event["chunk_results"]).encode()
    s3.put_object(Bucket=OUTPUT, Key="work/job/aggregated.json", Body=made)
    return {
        "job": event["job"],
        "render": {"bucket": OUTPUT, "key": "work/job/segments.json"},
        "aggregated": "work/job/aggregated.json",
    }


RENDERED: list[int] = []


def render_stub(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """render_segment's answers: a segment made, but chunk 1 of a ``.two.mp4`` video fails every time."""
    RENDERED.append(event["chunk"]["index"])
    if event["job"]["key"].endswith(".two.mp4") and event["chunk"]["index"] == 1:
        raise MemoryError("out of memory drawing chunk 1")
    return {"chunk": event["chunk"]["index"]}


def join_stub(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    made = boto3.client("s3").get_object(Bucket=OUTPUT, Key=event["aggregated"])["Body"].read()
    return {"job": event["job"], "chunk_results": json.loads(made), "rendered": sorted(RENDERED)}


@pytest.fixture
def flaky(request: pytest.FixtureRequest) -> Iterator[tuple[FlakyContainer, BackgroundServer]]:
    failures, busy = request.param if isinstance(request.param, tuple) else (request.param, False)
    container = FlakyContainer(failures, busy)
    server = serve_in_background(container, name="container")
    yield container, server
    server.stop()


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, flaky: tuple[FlakyContainer, BackgroundServer]
) -> Iterator[LocalAws]:
    import boto3

    with local_aws(
        monkeypatch,
        {"video_split": split_stub, "aggregate": aggregate_stub, "render_segment": render_stub,
         "join_video": join_stub},
        flaky[1].url,
    ) as stack:  # fmt: skip
        RENDERED.clear()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=INPUT)
        s3.create_bucket(Bucket=OUTPUT)
        yield stack


@pytest.mark.parametrize("flaky", [2], indirect=True)
def test_endpoint_failing_twice_is_retried_then_succeeds(
    aws: LocalAws, flaky: tuple[FlakyContainer, BackgroundServer]
) -> None:
    machine = aws.create_pipeline(INPUT, OUTPUT)
    done = run_execution(machine, "retry", {"bucket": INPUT, "key": "videos/clip.mp4", "etag": "e"})
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["chunk_results"] == [
        {"output": f"s3://{OUTPUT}/work/job/chunks/00000.json", "chunk": 0, "frames": 3, "person_frames": 1}
    ]
    assert output["rendered"] == [0]  # the render Map's one item, then the join
    assert flaky[0].calls == 3
    events = history(done["executionArn"])
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert len(failed) == 2
    assert all(e["taskFailedEventDetails"]["error"] == "SageMakerRuntime.ModelErrorException" for e in failed)
    assert "Received server error (500)" in failed[0]["taskFailedEventDetails"]["cause"]


@pytest.mark.parametrize("flaky", [(9, True)], indirect=True)
def test_a_chunk_the_endpoint_keeps_refusing_for_being_busy_waits_and_gets_another_round(
    aws: LocalAws, flaky: tuple[FlakyContainer, BackgroundServer]
) -> None:
    """Nine 503 over_capacity in a row (a round of eight attempts and one more): not a failed
    chunk but a busy endpoint; the chunk waits 5 to 30 s and its tenth call succeeds."""
    machine = aws.create_pipeline(INPUT, OUTPUT)
    done = run_execution(machine, "busy", {"bucket": INPUT, "key": "videos/clip.mp4", "etag": "e"})
    assert done["status"] == "SUCCEEDED", done
    assert flaky[0].calls == 10
    events = history(done["executionArn"])
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert len(failed) == 9
    assert all("over_capacity" in e["taskFailedEventDetails"]["cause"] for e in failed)
    waits = [e for e in events if e["type"] == "WaitStateEntered"]
    assert [e["stateEnteredEventDetails"]["name"] for e in waits] == ["ChunkWaitForCapacity"]
    assert 5 <= json.loads(waits[0]["stateEnteredEventDetails"]["input"])["busy"]["wait_s"] <= 30
    assert json.loads(done["output"])["chunk_results"][0]["frames"] == 3


@pytest.mark.parametrize("flaky", [0], indirect=True)
def test_a_render_segment_that_fails_is_not_retried_and_the_join_still_runs(aws: LocalAws) -> None:
    """A segment whose Lambda raises (its own error: another try would fail the same) is caught
    in the render Map, once; the job goes on to the join, which reports it partial."""
    machine = aws.create_pipeline(INPUT, OUTPUT)
    done = run_execution(machine, "render", {"bucket": INPUT, "key": "videos/clip.two.mp4", "etag": "e"})
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["rendered"] == [0, 1]  # each item once: no retry of chunk 1
    assert RENDERED.count(1) == 1


@pytest.mark.parametrize("flaky", [1000], indirect=True)
def test_endpoint_that_keeps_failing_is_caught_recorded_and_fails_the_execution(
    aws: LocalAws, flaky: tuple[FlakyContainer, BackgroundServer]
) -> None:
    import boto3

    machine = aws.create_pipeline(INPUT, OUTPUT)
    done = run_execution(machine, "broken", {"bucket": INPUT, "key": "videos/clip.mp4", "etag": "e"})
    assert done["status"] == "FAILED"
    assert flaky[0].calls == 9  # the first try and eight retries: a 500 gets no more rounds
    record = json.loads(
        boto3.client("s3").get_object(Bucket=OUTPUT, Key="errors/videos/clip.mp4.json")["Body"].read()
    )
    assert (record["stage"], record["code"]) == ("aggregate", "chunks_failed")
    assert record["input"] == f"s3://{INPUT}/videos/clip.mp4"
    assert "1 of 1 chunks failed" in record["reason"]
    assert record["time"]


@pytest.mark.parametrize("flaky", [0], indirect=True)
def test_a_chunk_the_endpoint_refuses_for_good_is_not_retried(
    aws: LocalAws, flaky: tuple[FlakyContainer, BackgroundServer]
) -> None:
    """A deterministic 4xx (the video cannot be read) comes back in the body, as the state
    machine's CustomAttributes ask: one call, no retry, and the record says why."""
    import boto3

    machine = aws.create_pipeline(INPUT, OUTPUT)
    key = "videos/clip.refused.mp4"
    done = run_execution(machine, "refused", {"bucket": INPUT, "key": key, "etag": "e"})
    assert done["status"] == "FAILED"
    assert flaky[0].calls == 1
    assert not [e for e in history(done["executionArn"]) if e["type"] == "TaskFailed"]
    record = json.loads(boto3.client("s3").get_object(Bucket=OUTPUT, Key=f"errors/{key}.json")["Body"].read())
    assert (record["stage"], record["code"]) == ("aggregate", "chunks_failed")
    assert "truncated or corrupt video" in record["reason"]


@pytest.mark.parametrize("flaky", [0], indirect=True)
def test_an_unexpected_failure_is_recorded_as_internal_error_without_its_stack_trace(aws: LocalAws) -> None:
    import boto3

    machine = aws.create_pipeline(INPUT, OUTPUT)
    key = "videos/clip.crash.mp4"
    done = run_execution(machine, "crash", {"bucket": INPUT, "key": key, "etag": "e"})
    assert done["status"] == "FAILED"
    record = json.loads(boto3.client("s3").get_object(Bucket=OUTPUT, Key=f"errors/{key}.json")["Body"].read())
    assert (record["stage"], record["code"]) == ("video_split", "internal_error")
    assert record["reason"] == (
        "video_split failed with ZeroDivisionError, an unexpected error; the details are in the logs "
        "of execution crash"
    )
    # The trace is in the execution's history (and, in AWS, the function's log), not in the record.
    [failed] = [e for e in history(done["executionArn"]) if e["type"] == "TaskFailed"]
    assert "stackTrace" in failed["taskFailedEventDetails"]["cause"]


@pytest.mark.parametrize("flaky", [0], indirect=True)
def test_split_failure_is_recorded_with_its_reason(aws: LocalAws) -> None:
    import boto3

    machine = aws.create_pipeline(INPUT, OUTPUT)
    done = run_execution(machine, "bad", {"bucket": INPUT, "key": "videos/notes.txt.mp4", "etag": "e"})
    assert done["status"] == "FAILED"
    record = json.loads(
        boto3.client("s3").get_object(Bucket=OUTPUT, Key="errors/videos/notes.txt.mp4.json")["Body"].read()
    )
    assert (record["stage"], record["code"]) == ("video_split", "bad_input")
    assert record["reason"] == "not a video file: it is text"
    s3_keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=OUTPUT).get("Contents", [])]
    assert s3_keys == ["errors/videos/notes.txt.mp4.json"]  # nothing else written


@pytest.mark.parametrize("flaky", [0], indirect=True)
def test_a_job_starts_once_per_object_version(aws: LocalAws) -> None:
    """Executions are named from the key and ETag: a repeated start is the same execution (AWS
    answers a repeated name with the same input idempotently), another input under it is refused."""
    import boto3
    from posepipe.cloud.keys import job_id

    machine = aws.create_pipeline(INPUT, OUTPUT)
    sfn = boto3.client("stepfunctions")
    name = job_id("videos/clip.mp4", '"e1"')
    assert name == job_id("videos/clip.mp4", "e1")  # quoted or not, as S3 and EventBridge send it
    assert name != job_id("videos/clip.mp4", "e2")
    payload = json.dumps({"bucket": INPUT, "key": "videos/clip.mp4", "etag": "e1"})
    first = sfn.start_execution(stateMachineArn=machine, name=name, input=payload)["executionArn"]
    again = sfn.start_execution(stateMachineArn=machine, name=name, input=payload)["executionArn"]
    assert again == first
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps({"other": 1}))


@pytest.mark.parametrize(
    "manifest_threshold", ["100", "1"], ids=["inline-map", "distributed-map-from-manifest"]
)
def test_real_functions_and_endpoint_on_a_real_clip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample: Callable[[str], Path], manifest_threshold: str
) -> None:
    """The deployed code path, in-process: the real split, endpoint and aggregate, several chunks."""
    import boto3
    import numpy as np
    from PIL import Image
    from posepipe.local_stack.stack import load_function
    from posepipe.result import validate_result

    from tests.support.clips import encode_frames

    photo = np.asarray(Image.open(sample("messi5.jpg")).convert("RGB"))
    clip = encode_frames(
        tmp_path / "drift.mp4", [np.ascontiguousarray(np.roll(photo, 2 * i, axis=1)) for i in range(30)]
    )
    for name, value in {
        "POSEPIPE_CHUNK_SECONDS": "1.5",
        "POSEPIPE_WARMUP_SECONDS": "0.5",
        "POSEPIPE_MANIFEST_THRESHOLD": manifest_threshold,
        "POSEPIPE_INPUT_BUCKET": INPUT,
        "POSEPIPE_OUTPUT_BUCKET": OUTPUT,
    }.items():
        monkeypatch.setenv(name, value)
    from posepipe.cloud.endpoint.serve import start_background_server

    with local_aws(monkeypatch) as stack:
        container = start_background_server()
        try:
            stack.runtime_app.endpoints["posepipe-pose"] = container.url
            stack.lambda_app.handlers.update(
                {name: load_function(name).handler for name in PIPELINE_FUNCTIONS}
            )
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=INPUT)
            s3.create_bucket(Bucket=OUTPUT)
            s3.upload_file(str(clip), INPUT, "videos/drift.mp4")
            etag = s3.head_object(Bucket=INPUT, Key="videos/drift.mp4")["ETag"]
            machine = stack.create_pipeline(INPUT, OUTPUT)
            done = run_execution(machine, "drift", {"bucket": INPUT, "key": "videos/drift.mp4", "etag": etag})
            errors = s3.list_objects_v2(Bucket=OUTPUT, Prefix="errors/").get("Contents", [])
            records = [s3.get_object(Bucket=OUTPUT, Key=e["Key"])["Body"].read() for e in errors]
            assert done["status"] == "SUCCEEDED", records
            keypoints = json.loads(
                s3.get_object(Bucket=OUTPUT, Key="videos/drift.mp4/keypoints.json")["Body"].read()
            )
            summary = json.loads(
                s3.get_object(Bucket=OUTPUT, Key="videos/drift.mp4/summary.json")["Body"].read()
            )
            work = [o["Key"] for o in s3.list_objects_v2(Bucket=OUTPUT, Prefix="work/")["Contents"]]
        finally:
            container.stop()
    validate_result(keypoints)
    assert [len(f["persons"]) for f in keypoints["frames"]] == [1] * 30
    assert len(summary["chunks"]) >= 2
    assert summary["failed_chunks"] == []
    assert summary["render_failed"] == []
    assert summary["render_segments"] == len(summary["chunks"])
    assert summary["annotated"] == f"s3://{OUTPUT}/videos/drift.mp4/annotated.mp4"
    assert sum(1 for key in work if "/segments/" in key) == len(summary["chunks"])  # drawn one a chunk
    assert any(key.endswith("chunks.json") for key in work) == (manifest_threshold == "1")
