"""posepipe.ui.client: the web app's HTTP client, against a real ``posepipe serve`` and, for the
authentication headers, against a small local server that records what it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from posepipe.cli.upload import STATE_DIR_ENV, upload_file
from posepipe.result import validate_result
from posepipe.ui.client import UPLOAD_BLOCK_BYTES, ApiClient, ApiProblem, server_timing
from posepipe.ui.settings import ApiAuth, UiSettings

from tests.support.cli import run_cli
from tests.support.clips import pad_mp4
from tests.support.uistack import PEOPLE_CLIP_FRAMES, S3_URL, StackProcess, write_people_clip

DEAD_URL = "http://127.0.0.1:3999"  # nothing listens there


@pytest.fixture(scope="module")
def client(local_stack: StackProcess) -> ApiClient:
    return ApiClient(UiSettings(api_url=local_stack.api_url))


@pytest.fixture(scope="module")
def people_clip(tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path]) -> Path:
    return write_people_clip(tmp_path_factory.mktemp("clip"), sample("vtest.avi"))


# --- against the local stack -----------------------------------------------------------------


def test_post_image_finds_the_one_person_and_times_the_server(
    client: ApiClient, sample: Callable[[str], Path]
) -> None:
    answer = client.post_image(sample("messi5.jpg").read_bytes(), "image/jpeg", name="messi5.jpg")
    validate_result(answer.result)
    assert len(answer.persons) == 1
    assert answer.result["source"]["width"] == 548
    assert answer.inference_s is not None
    assert 0.001 < answer.inference_s < answer.total_s
    assert answer.network_s == pytest.approx(answer.total_s - answer.inference_s)
    assert answer.annotated_url is None


def test_post_image_passes_max_poses(client: ApiClient, sample: Callable[[str], Path]) -> None:
    data = sample("basketball1.png").read_bytes()
    assert len(client.post_image(data, "image/png").persons) == 2
    one = client.post_image(data, "image/png", max_poses=1)
    assert len(one.persons) == 1
    assert one.result["model"]["max_poses"] == 1


def test_post_image_passes_the_model_and_the_detector(
    client: ApiClient, sample: Callable[[str], Path]
) -> None:
    data = sample("basketball2.png").read_bytes()
    assert len(client.post_image(data, "image/png").persons) == 2  # the stack finds everyone
    answer = client.post_image(data, "image/png", model="movenet-lightning", detector="centernet")
    assert (answer.result["model"]["name"], len(answer.result["landmark_names"])) == ("movenet-lightning", 17)
    assert len(answer.persons) == 2
    single = client.post_image(data, "image/png", detector="blazepose")
    assert len(single.persons) == 1  # BlazePose's own detector finds the nearer player only


def test_annotated_image_is_downloadable(client: ApiClient, sample: Callable[[str], Path]) -> None:
    answer = client.post_image(sample("messi5.jpg").read_bytes(), "image/jpeg", annotate=True)
    assert answer.annotated_url is not None
    assert "annotated_url" not in answer.result
    validate_result(answer.result)
    picture = client.download(answer.annotated_url)
    assert picture[:3] == b"\xff\xd8\xff"


def test_a_text_file_is_refused_in_one_readable_sentence(client: ApiClient) -> None:
    with pytest.raises(ApiProblem) as refused:
        client.post_image(b"Messi scored twice.\n", "text/plain", name="messi.txt")
    assert str(refused.value).startswith(
        "The API refused messi.txt (415 unsupported_media_type): Content-Type text/plain is not one of: "
    )
    assert (refused.value.status, refused.value.code) == (415, "unsupported_media_type")
    with pytest.raises(ApiProblem) as refused:
        client.post_image(b"Messi scored twice.\n", "image/jpeg", name="messi.jpg")
    assert str(refused.value).startswith("The API refused messi.jpg (422 bad_image): ")
    assert "\n" not in str(refused.value)


def test_a_file_that_is_not_a_video_gets_no_upload_slot(client: ApiClient) -> None:
    with pytest.raises(ApiProblem) as refused:
        client.new_video("notes.txt")
    assert str(refused.value).startswith("The API refused notes.txt (400 bad_input): ")
    assert "not a video file name" in str(refused.value)


def test_ping_answers_when_the_stack_is_up(client: ApiClient) -> None:
    assert client.ping() > 0  # the stack says there is no such job: posepipe answered


def test_ping_takes_posepipes_not_found_and_refuses_other_answers(recorder: RecordingServer) -> None:
    recorder.answer[:] = [(404, {"error": "not_found", "message": "posepipe-ui-ping: no such job"})]
    assert ApiClient(recorder.url).ping() > 0
    recorder.answer[:] = [(200, {"hello": "world"})]
    with pytest.raises(ApiProblem, match="is not posepipe's API"):
        ApiClient(recorder.url).ping()
    recorder.answer[:] = [(404, {"message": "Not Found"})]
    with pytest.raises(ApiProblem, match=r"^The API refused a status request \(404\)"):
        ApiClient(recorder.url).ping()


@pytest.mark.parametrize("call", ["ping", "post_image", "job_status"])
def test_a_dead_url_says_to_start_posepipe_serve(call: str) -> None:
    dead = ApiClient(DEAD_URL)
    calls: dict[str, Callable[[], object]] = {
        "ping": dead.ping,
        "post_image": lambda: dead.post_image(b"\xff\xd8\xff", "image/jpeg"),
        "job_status": lambda: dead.job_status("abc-walk.mp4"),
    }
    with pytest.raises(ApiProblem) as caught:
        calls[call]()
    assert str(caught.value) == f"Nothing answers at {DEAD_URL}: start the local stack with `posepipe serve`"
    assert caught.value.status is None


def test_a_video_job_from_upload_to_results(client: ApiClient, people_clip: Path) -> None:
    slot = client.new_video(people_clip.name)
    assert slot.job.endswith("-walk.mp4")
    assert slot.upload_url.startswith(S3_URL)
    assert client.job_status(slot.job).status == "awaiting_upload"

    data = people_clip.read_bytes()
    assert len(data) > UPLOAD_BLOCK_BYTES  # so the upload goes in several blocks
    reported: list[tuple[int, int]] = []
    client.upload(slot.upload_url, data, lambda sent, total: reported.append((sent, total)), name="walk.mp4")
    assert len(reported) >= 2
    assert all(total == len(data) for _, total in reported)
    sent = [count for count, _ in reported]
    assert sent == sorted(sent)
    assert sent[0] < len(data)
    assert sent[-1] == len(data)

    deadline = time.monotonic() + 120
    status = client.job_status(slot.job)
    while not status.finished and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.job_status(slot.job)
    assert status.succeeded, status
    assert status.frames == PEOPLE_CLIP_FRAMES
    keypoints = json.loads(client.download(status.results["keypoints"]))
    validate_result(keypoints)
    assert len(keypoints["frames"]) == PEOPLE_CLIP_FRAMES
    assert status.person_frames
    assert sum(len(frame["persons"]) for frame in keypoints["frames"]) == status.person_frames
    video = client.download(status.results["annotated"])
    assert video[4:8] == b"ftyp"


def test_a_video_over_100_mb_goes_up_in_parts_and_posepipe_upload_resumes_an_interrupted_upload(
    client: ApiClient, people_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 MB (the people clip and a ``free`` box): 3 parts. The first try stops in part 2 (the
    connection dropped by an interrupt, as Ctrl-C would); ``posepipe upload`` then finds the
    upload, sends parts 2 and 3 only, completes it, and the job runs on the whole file."""
    big = pad_mp4(people_clip, tmp_path / "long-walk.mp4", 150_000_000)
    states = tmp_path / "states"
    seen: list[int] = []

    def interrupt_in_part_two(sent: int, total: int) -> None:
        seen.append(sent)
        if sent > 80 * 1024 * 1024:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upload_file(client, big, states, progress=interrupt_in_part_two)
    [state_file] = states.iterdir()
    job = json.loads(state_file.read_text())["job"]
    assert client.job_status(job).status == "awaiting_upload"
    held = client.upload_state(job)
    assert (held.part_count, held.done) == (3, (1,))

    monkeypatch.setenv(STATE_DIR_ENV, str(states))
    run = run_cli("upload", big, "--api", client.base_url, "--wait", timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"resuming the upload of long-walk.mp4 (job {job}): 1 of 3 parts already uploaded" in run.stderr
    assert f"uploaded long-walk.mp4: job {job}" in run.stdout
    assert f"job {job} succeeded: {PEOPLE_CLIP_FRAMES} frames" in run.stdout
    assert not any(states.iterdir())  # the state is gone with the upload
    status = client.job_status(job)
    keypoints = json.loads(client.download(status.results["keypoints"]))
    assert len(keypoints["frames"]) == PEOPLE_CLIP_FRAMES
    import boto3

    s3 = boto3.client("s3", endpoint_url=S3_URL, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    stored = s3.head_object(Bucket="posepipe-input", Key=f"videos/{job}")
    assert stored["ContentLength"] == big.stat().st_size
    assert stored["ETag"].strip('"').endswith("-3")  # S3's ETag of a 3-part upload


def test_posepipe_upload_says_in_one_line_what_is_wrong(client: ApiClient, tmp_path: Path) -> None:
    missing = run_cli("upload", tmp_path / "nothing.mp4", "--api", client.base_url)
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"posepipe: error: {tmp_path / 'nothing.mp4'}: no such file",
    )
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    refused = run_cli("upload", text, "--api", client.base_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("posepipe: error: The API refused notes.txt (400 bad_input): ")
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_bad_job_id_is_refused(client: ApiClient) -> None:
    with pytest.raises(ApiProblem) as refused:
        client.job_status(".hidden")
    assert str(refused.value).startswith("The API refused job .hidden (400 bad_input): ")


# --- authentication, seen by a server that records requests ----------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    url: str
    requests: list[Recorded]
    answer: list[tuple[int, dict[str, Any]]]  # what the next requests get (the last one repeats)


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    record: list[Recorded] = []
    answers: list[tuple[int, dict[str, Any]]] = [(200, {"job": "abc-walk.mp4", "status": "awaiting_upload"})]

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            record.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            status, data = answers[0] if len(answers) == 1 else answers.pop(0)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Server-Timing", "inference;dur=12.5")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    yield RecordingServer(f"http://127.0.0.1:{server.server_address[1]}/v1", record, answers)
    server.shutdown()
    server.server_close()


IMAGE_ANSWER = {
    "schema": "posepipe.pose/2",
    "frames": [{"index": 0, "t": 0.0, "persons": []}],
}


def test_api_key_auth_sends_the_key_header(recorder: RecordingServer) -> None:
    client = ApiClient(recorder.url, ApiAuth(kind="apikey", api_key="k3y-value"))
    assert client.job_status("abc-walk.mp4").status == "awaiting_upload"
    (request,) = recorder.requests
    assert (request.method, request.path) == ("GET", "/v1/jobs/abc-walk.mp4")
    assert request.headers["x-api-key"] == "k3y-value"
    assert "Authorization" not in request.headers


def test_api_key_auth_without_a_key_is_a_readable_problem(recorder: RecordingServer) -> None:
    with pytest.raises(ApiProblem, match=r"^API-key authentication needs a key"):
        ApiClient(recorder.url, ApiAuth(kind="apikey")).ping()
    assert recorder.requests == []


def test_iam_auth_signs_with_sigv4_for_execute_api(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    recorder.answer[:] = [(200, IMAGE_ANSWER)]
    client = ApiClient(recorder.url, ApiAuth(kind="iam", region="eu-west-1"))
    photo = b"\xff\xd8\xff not really a JPEG, the recorder does not care"
    answer = client.post_image(photo, "image/jpeg", max_poses=2)
    assert answer.inference_s == pytest.approx(0.0125)

    (request,) = recorder.requests
    assert (request.method, request.path, request.body) == ("POST", "/v1/images?max_poses=2", photo)
    authorization = request.headers["Authorization"]
    algorithm, _, fields = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    parts = dict(part.strip().split("=", 1) for part in fields.split(","))
    date = request.headers["X-Amz-Date"]
    assert parts["Credential"] == f"AKIDEXAMPLE/{date[:8]}/eu-west-1/execute-api/aws4_request"
    signed = parts["SignedHeaders"].split(";")
    assert {"content-type", "host", "x-amz-date"} <= set(signed)

    # The signature is the one botocore computes for what the server received.
    received = AWSRequest(
        method=request.method,
        url=f"http://{request.headers['Host']}{request.path}",
        data=request.body,
        headers={name: value for name, value in request.headers.items() if name.lower() in signed},
    )
    received.context["timestamp"] = date
    signer = SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "execute-api", "eu-west-1"
    )
    canonical = signer.canonical_request(received)
    assert parts["Signature"] == signer.signature(signer.string_to_sign(received, canonical), received)
    tampered = AWSRequest(
        method="POST", url=received.url, data=b"another body", headers=dict(received.headers)
    )
    tampered.context["timestamp"] = date
    assert parts["Signature"] != signer.signature(
        signer.string_to_sign(tampered, signer.canonical_request(tampered)), tampered
    )


def test_iam_auth_problems_are_readable(recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    with pytest.raises(ApiProblem, match=r"^The AWS credentials could not be read: .*nope"):
        ApiClient(recorder.url, ApiAuth(kind="iam", profile="nope", region="us-east-1")).ping()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ApiProblem, match=r"^IAM signing needs a region"):
        ApiClient(recorder.url, ApiAuth(kind="iam")).ping()
    assert recorder.requests == []


def test_an_api_gateway_refusal_names_the_authentication(recorder: RecordingServer) -> None:
    recorder.answer[:] = [(403, {"message": "Missing Authentication Token"})]
    with pytest.raises(ApiProblem) as refused:
        ApiClient(recorder.url).ping()
    assert str(refused.value) == (
        "The API refused a status request (403): Missing Authentication Token "
        "(authentication: no authentication; check it in the sidebar)"
    )


def test_presigned_transfers_that_s3_refuses_are_readable(recorder: RecordingServer) -> None:
    recorder.answer[:] = [(403, {"message": "Request has expired"})]
    client = ApiClient(recorder.url)
    with pytest.raises(ApiProblem, match=r"^The upload of walk\.mp4 failed \(403\): ") as upload:
        client.upload(f"{recorder.url}/in/videos/walk.mp4", b"video bytes", name="walk.mp4")
    with pytest.raises(ApiProblem, match=r"^The download of keypoints failed \(403\): ") as download:
        client.download(f"{recorder.url}/out/keypoints.json", name="keypoints")
    assert upload.value.status == download.value.status == 403
    assert [(r.method, r.body) for r in recorder.requests] == [("PUT", b"video bytes"), ("GET", b"")]


def test_an_answer_that_is_not_posepipe_is_a_problem(recorder: RecordingServer) -> None:
    recorder.answer[:] = [(200, {"hello": "world"})]
    with pytest.raises(ApiProblem, match=r"^The API's answer for messi\.jpg is not a posepipe image result$"):
        ApiClient(recorder.url).post_image(b"\xff\xd8\xff", "image/jpeg", name="messi.jpg")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("inference;dur=41.7", 41.7),
        ('db;dur=3, inference;desc="pose";dur=12', 12.0),
        ("db;dur=3", None),
        ("", None),
        ("inference;dur=soon", None),
    ],
)
def test_server_timing_is_parsed(header: str, expected: float | None) -> None:
    assert server_timing(header, "inference") == expected


def test_settings_come_from_the_environment_posepipe_ui_sets() -> None:
    settings = UiSettings.from_env(
        {
            "POSEPIPE_UI_API_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/v1/",
            "POSEPIPE_UI_AUTH": "iam",
            "POSEPIPE_UI_PROFILE": "dev",
            "POSEPIPE_UI_REGION": "",
        }
    )
    assert settings.api_url == "https://abc.execute-api.eu-west-1.amazonaws.com/v1"
    assert settings.auth == ApiAuth(kind="iam", profile="dev")
    assert settings.auth.describe() == "IAM (SigV4, profile dev)"
    assert UiSettings.from_env({}) == UiSettings()
    with pytest.raises(ValueError, match="POSEPIPE_UI_AUTH must be one of none, iam, apikey"):
        UiSettings.from_env({"POSEPIPE_UI_AUTH": "oauth"})
    with pytest.raises(ValueError, match="max_poses must be from 1 to 10"):
        UiSettings(max_poses=11)
