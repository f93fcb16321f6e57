"""A thin HTTP client of posepipe's API (``POST /images``, ``POST /videos`` with its multipart
uploads, ``GET /jobs/{id}``).

Requests are sent as they are (the local stack), SigV4-signed for ``execute-api`` (a deployed
API with IAM authorization) or with an ``x-api-key`` header (a deployed API with API keys); the
presigned S3 URLs the API hands out (uploads, results) are fetched unsigned. Every failure is
an :class:`ApiProblem` whose ``str()`` is one sentence a person can act on.
"""

from __future__ import annotations

import io
import json
import mimetypes
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import requests

from posepipe.ui.settings import ApiAuth, UiSettings

CONNECT_TIMEOUT_S = 5.0
UPLOAD_BLOCK_BYTES = 256 * 1024
INFERENCE_TIMING = "inference"  # the Server-Timing metric of POST /images
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

ProgressCallback = Callable[[int, int], None]


class ApiProblem(Exception):  # noqa: N818  (a problem to show, not only an error)
    """A request that did not give what was asked; ``str()`` is one readable sentence.

    ``status`` and ``code`` are the HTTP status and the API's error code when there was an answer.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ImageAnswer:
    """The ``posepipe.pose/2`` result of one image and how long it took.

    ``total_s``: the whole request, as the client saw it; ``inference_s``: the server's own time
    for the image (its ``Server-Timing``), ``None`` when the API does not say; ``network_s``: the
    rest (transfer, API front, function invocation), or the whole when the server does not say.
    ``annotated_url``: the presigned URL of the server's annotated image (``annotate=True``).
    """

    result: dict[str, Any]
    total_s: float
    network_s: float
    inference_s: float | None
    annotated_url: str | None = None

    @property
    def persons(self) -> list[dict[str, Any]]:
        persons: list[dict[str, Any]] = self.result["frames"][0]["persons"]
        return persons


@dataclass(frozen=True)
class UploadPart:
    """One part of a multipart upload: its number (from 1), its bytes of the file, its URL."""

    number: int
    offset: int
    size: int
    url: str


@dataclass(frozen=True)
class MultipartUpload:
    """A multipart upload (``POST /videos`` for a video over 100 MB, or ``GET /videos/{job}/upload``):
    ``parts`` still to PUT, ``done`` the numbers S3 already holds."""

    upload_id: str
    size_bytes: int
    part_bytes: int
    part_count: int
    parts: tuple[UploadPart, ...]
    done: tuple[int, ...] = ()

    @property
    def bytes_done(self) -> int:
        """The bytes of the parts S3 already holds."""
        return sum(min(self.part_bytes, self.size_bytes - (n - 1) * self.part_bytes) for n in self.done)


@dataclass(frozen=True)
class VideoUpload:
    """An upload slot from ``POST /videos``: the job id and where to PUT the video (``upload_url``),
    or, for a video over 100 MB, its ``multipart`` upload."""

    job: str
    key: str
    upload_url: str
    expires_in: int | None
    multipart: MultipartUpload | None = None


@dataclass(frozen=True)
class JobStatus:
    """``GET /jobs/{id}``: ``status`` is ``awaiting_upload``, ``queued``, ``running``,
    ``succeeded`` (with ``results``: presigned URLs of ``keypoints``, ``annotated``, ``summary``,
    and ``warnings`` when some chunks failed: their frames are marked not processed) or ``failed``
    (with ``error``, the error record); ``timed_out`` and ``aborted`` also end a job."""

    job: str
    status: str
    results: Mapping[str, str] = field(default_factory=dict)
    error: Mapping[str, Any] | None = None
    frames: int | None = None
    person_frames: int | None = None
    warnings: tuple[Mapping[str, Any], ...] = ()

    @property
    def finished(self) -> bool:
        return self.status not in ("awaiting_upload", "queued", "running")

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def failure(self) -> str:
        """One sentence on why the job failed (its error record's stage and reason)."""
        error = self.error or {}
        stage = error.get("stage") or "the pipeline"
        reason = error.get("reason") or error.get("code") or self.status
        return f"The video job {self.job} {self.status.replace('_', ' ')} in {stage}: {reason}"


class ApiClient:
    """posepipe's API at one base URL, with one way of authenticating.

    ``ApiClient(settings)`` takes the URL and the authentication of :class:`UiSettings`;
    ``ApiClient("http://127.0.0.1:3000")`` or ``ApiClient(url, auth)`` name them directly.
    """

    def __init__(
        self,
        target: UiSettings | str,
        auth: ApiAuth | None = None,
        *,
        timeout_s: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        if isinstance(target, UiSettings):
            base_url, auth = target.api_url, auth or target.auth
        else:
            base_url = target
        self.base_url = base_url.rstrip("/")
        self.auth = auth or ApiAuth()
        self.timeout_s = timeout_s
        self._http = session or requests.Session()
        self._signer: Any = None  # botocore's SigV4Auth, made on the first signed request

    # --- the API -----------------------------------------------------------------------------

    def post_image(
        self,
        data: bytes,
        content_type: str,
        max_poses: int | None = None,
        annotate: bool = False,
        *,
        name: str = "the image",
        model: str = "",
        detector: str = "",
    ) -> ImageAnswer:
        """``POST /images``: the persons in one image (``name`` is how errors call it); ``model``
        and ``detector`` are sent when given (empty: the API's own)."""
        query: dict[str, str] = {}
        if max_poses is not None:
            query["max_poses"] = str(max_poses)
        if model:
            query["model"] = model
        if detector:
            query["detector"] = detector
        if annotate:
            query["annotate"] = "1"
        started = time.perf_counter()
        answer = self._call("POST", "/images", name, body=data, content_type=content_type, query=query)
        total_s = time.perf_counter() - started
        result = _json_object(answer, name)
        frames = result.get("frames")
        if not isinstance(frames, list) or len(frames) != 1 or "persons" not in frames[0]:
            raise ApiProblem(f"The API's answer for {name} is not a posepipe image result", status=200)
        annotated_url = result.pop("annotated_url", None)
        inference_ms = server_timing(answer.headers.get("Server-Timing", ""), INFERENCE_TIMING)
        inference_s = None if inference_ms is None else inference_ms / 1000.0
        network_s = total_s if inference_s is None else max(0.0, total_s - inference_s)
        return ImageAnswer(result, total_s, network_s, inference_s, annotated_url)

    def new_video(self, filename: str, size_bytes: int | None = None) -> VideoUpload:
        """``POST /videos``: a job id and a presigned PUT URL for ``filename``, or (``size_bytes``
        over 100 MB) a multipart upload."""
        request: dict[str, Any] = {"filename": filename}
        if size_bytes is not None:
            request["size_bytes"] = size_bytes
        body = json.dumps(request).encode()
        answer = self._call("POST", "/videos", filename, body=body, content_type="application/json")
        slot = _json_object(answer, filename)
        try:
            upload = slot["upload"]
            multipart = _multipart(upload) if upload.get("method") == "multipart" else None
            return VideoUpload(
                job=str(slot["job"]),
                key=str(slot.get("key", "")),
                upload_url="" if multipart else str(upload["url"]),
                expires_in=upload.get("expires_in"),
                multipart=multipart,
            )
        except (KeyError, TypeError, ValueError):
            raise ApiProblem(f"The API's answer for {filename} is not an upload slot", status=200) from None

    def upload_state(self, job: str) -> MultipartUpload:
        """``GET /videos/{job}/upload``: what S3 holds of a multipart upload, fresh URLs for the rest."""
        answer = self._call("GET", f"/videos/{quote(job, safe='')}/upload", f"the upload of job {job}")
        state = _json_object(answer, f"the upload of job {job}")
        try:
            return _multipart(state["upload"])
        except (KeyError, TypeError, ValueError):
            raise ApiProblem(
                f"The API's answer for the upload of job {job} is not an upload", status=200
            ) from None

    def complete_upload(self, job: str) -> dict[str, Any]:
        """``POST /videos/{job}/complete``: the parts put together into the video (the job starts)."""
        answer = self._call("POST", f"/videos/{quote(job, safe='')}/complete", f"the upload of job {job}")
        return _json_object(answer, f"the upload of job {job}")

    def send_video(
        self,
        slot: VideoUpload,
        source: bytes | Path,
        progress: ProgressCallback | None = None,
        *,
        name: str = "the video",
    ) -> None:
        """Upload ``source`` (bytes, or a file read a block at a time) to ``slot``: one PUT, or each
        part still to send and then the completion; ``progress(sent, total)`` counts the parts
        S3 held already as sent."""
        if slot.multipart is None:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            self.upload(slot.upload_url, data, progress, name=name)
            return
        self.send_parts(slot.job, slot.multipart, source, progress, name=name)

    def send_parts(
        self,
        job: str,
        upload: MultipartUpload,
        source: bytes | Path,
        progress: ProgressCallback | None = None,
        *,
        name: str = "the video",
    ) -> None:
        """PUT ``upload``'s parts still to send from ``source``, then complete the upload."""
        size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
        if size != upload.size_bytes:
            raise ApiProblem(
                f"{name} is {size} bytes, but its upload was started for {upload.size_bytes} bytes "
                "(a different file?)"
            )
        total, base = upload.size_bytes, upload.bytes_done
        for part in upload.parts:
            body = _RangeBody(source, part.offset, part.size, progress, base, total)
            self._presigned(
                "PUT", part.url, f"part {part.number} of {upload.part_count} of {name}", data=body
            )
            base += part.size
        self.complete_upload(job)
        if progress is not None:
            progress(total, total)

    def upload(
        self,
        url: str,
        data: bytes,
        progress: ProgressCallback | None = None,
        *,
        name: str = "the video",
    ) -> None:
        """PUT ``data`` to a presigned URL in blocks, calling ``progress(sent, total)`` as it goes."""
        body = _ProgressBody(data, progress)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._presigned(
            "PUT", url, f"the upload of {name}", data=body, headers={"Content-Type": content_type}
        )
        if progress is not None:
            progress(len(data), len(data))

    def job_status(self, job: str) -> JobStatus:
        """``GET /jobs/{id}``."""
        answer = self._call("GET", f"/jobs/{quote(job, safe='')}", f"job {job}")
        status = _json_object(answer, f"job {job}")
        if not isinstance(status.get("status"), str):
            raise ApiProblem(f"The API's answer for job {job} has no status", status=answer.status_code)
        return JobStatus(
            job=str(status.get("job", job)),
            status=status["status"],
            results=dict(status.get("results") or {}),
            error=status.get("error"),
            frames=status.get("frames"),
            person_frames=status.get("person_frames"),
            warnings=tuple(w for w in status.get("warnings") or () if isinstance(w, Mapping)),
        )

    def download(self, url: str, *, name: str = "the result") -> bytes:
        """The body of a presigned GET URL (a result the API pointed to)."""
        return self._presigned("GET", url, f"the download of {name}").content

    def _presigned(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """A request to a presigned S3 URL (long transfers allowed); failures as :class:`ApiProblem`."""
        try:
            answer = self._http.request(
                method, url, timeout=(CONNECT_TIMEOUT_S, max(self.timeout_s, 300.0)), **kwargs
            )
        except requests.RequestException as exc:
            raise self._unreachable(url, exc, what) from None
        if not answer.ok:
            raise ApiProblem(
                f"{what[0].upper()}{what[1:]} failed ({answer.status_code}): {_s3_error(answer)}",
                status=answer.status_code,
            )
        return answer

    def ping(self) -> float:
        """Seconds for one cheap authenticated request (the status of a job that does not exist:
        posepipe answers 404 ``not_found``, past the authentication).

        Raises :class:`ApiProblem` when nothing answers, the API refuses the credentials, or what
        answers is not posepipe's API.
        """
        started = time.perf_counter()
        try:
            answer = self._call("GET", "/jobs/posepipe-ui-ping", "a status request")
        except ApiProblem as problem:
            if (problem.status, problem.code) == (404, "not_found"):
                return time.perf_counter() - started
            raise
        if _json_object(answer, "a status request").get("status") is None:
            raise ApiProblem(f"What answers at {self.base_url} is not posepipe's API", status=200)
        return time.perf_counter() - started

    # --- requests ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = self.base_url + path
        if query:
            url += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in sorted(query.items()))
        headers = {"Content-Type": content_type} if content_type else {}
        headers.update(self._auth_headers(method, url, body, headers))
        try:
            answer = self._http.request(
                method, url, data=body or None, headers=headers, timeout=(CONNECT_TIMEOUT_S, self.timeout_s)
            )
        except requests.RequestException as exc:
            raise self._unreachable(url, exc, what) from None
        if answer.status_code >= 400:
            raise _refusal(answer, what, self.auth)
        return answer

    def _auth_headers(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        if self.auth.kind == "apikey":
            if not self.auth.api_key:
                raise ApiProblem("API-key authentication needs a key: enter the API key in the sidebar")
            return {"x-api-key": self.auth.api_key}
        if self.auth.kind == "iam":
            from botocore.awsrequest import AWSRequest

            request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
            self._sigv4().add_auth(request)
            return {k: v for k, v in request.headers.items() if k not in headers}
        return {}

    def _sigv4(self) -> Any:
        """botocore's SigV4 signer for ``execute-api`` with the profile's credentials and region."""
        if self._signer is not None:
            return self._signer
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.exceptions import BotoCoreError

        profile = self.auth.profile
        try:
            session = boto3.Session(profile_name=profile, region_name=self.auth.region)
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise ApiProblem(f"The AWS credentials could not be read: {exc}") from None
        whose = f"the AWS profile {profile}" if profile else "the default AWS credentials"
        if credentials is None:
            raise ApiProblem(
                f"IAM signing found no credentials in {whose}: run `aws configure` or pick a profile"
            )
        region = session.region_name
        if not region:
            raise ApiProblem(f"IAM signing needs a region: {whose} names none; enter the API's region")
        self._signer = SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region)
        return self._signer

    def _unreachable(self, url: str, exc: requests.RequestException, what: str) -> ApiProblem:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
            return ApiProblem(f"{origin} did not answer {what} in time: it may be overloaded; try again")
        if isinstance(exc, requests.ConnectionError | requests.ConnectTimeout):
            if url.startswith(self.base_url) and (parts.hostname or "") in _LOOPBACK_HOSTS:
                return ApiProblem(
                    f"Nothing answers at {self.base_url}: start the local stack with `posepipe serve`"
                )
            return ApiProblem(f"Nothing answers at {origin}: check the URL and the network")
        return ApiProblem(f"The request for {what} to {origin} failed: {exc}")


def _multipart(upload: Mapping[str, Any]) -> MultipartUpload:
    """A multipart upload from the API's ``upload`` object."""
    parts = tuple(
        UploadPart(int(p["part"]), int(p["offset"]), int(p["size"]), str(p["url"])) for p in upload["parts"]
    )
    return MultipartUpload(
        upload_id=str(upload["upload_id"]),
        size_bytes=int(upload["size_bytes"]),
        part_bytes=int(upload["part_bytes"]),
        part_count=int(upload["part_count"]),
        parts=parts,
        done=tuple(int(p["part"]) for p in upload.get("done", ())),
    )


class _RangeBody:
    """``size`` bytes of ``source`` from ``offset``, read in blocks (a file is never read whole),
    reporting ``base`` + what has been read of ``total``."""

    def __init__(
        self, source: bytes | Path, offset: int, size: int, progress: ProgressCallback | None, base: int,
        total: int,
    ) -> None:  # fmt: skip
        self._source, self._offset, self._size = source, offset, size
        self._progress, self._base, self._total = progress, base, total

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:  # requests streams a body with __iter__ and a length
        if isinstance(self._source, bytes):
            view = memoryview(self._source)[self._offset : self._offset + self._size]
            yield from self._blocks(io.BytesIO(view))
            return
        with Path(self._source).open("rb") as handle:
            handle.seek(self._offset)
            yield from self._blocks(handle)

    def _blocks(self, handle: BinaryIO) -> Iterator[bytes]:
        sent = 0
        while sent < self._size:
            block = handle.read(min(UPLOAD_BLOCK_BYTES * 16, self._size - sent))
            if not block:
                raise ApiProblem(
                    f"the video ended at byte {self._offset + sent} of {self._total}: it changed"
                )
            sent += len(block)
            if self._progress is not None:
                self._progress(self._base + sent, self._total)
            yield block


class _ProgressBody:
    """A request body read in blocks, reporting how much has been read (so: sent)."""

    def __init__(self, data: bytes, progress: ProgressCallback | None) -> None:
        self._data = memoryview(data)
        self._sent = 0
        self._progress = progress

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data) - self._sent
        size = min(size, UPLOAD_BLOCK_BYTES)
        block = bytes(self._data[self._sent : self._sent + size])
        self._sent += len(block)
        if self._progress is not None and block:
            self._progress(self._sent, len(self._data))
        return block

    def __iter__(self) -> Any:  # requests treats a body with __iter__ as a stream
        while block := self.read(UPLOAD_BLOCK_BYTES):
            yield block


def server_timing(header: str, metric: str) -> float | None:
    """The ``dur`` (milliseconds) of ``metric`` in a ``Server-Timing`` header, or ``None``."""
    for entry in header.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        if name != metric:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dur":
                try:
                    return float(value.strip().strip('"'))
                except ValueError:
                    return None
    return None


def _json_object(answer: requests.Response, what: str) -> dict[str, Any]:
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiProblem(
            f"The API's answer for {what} ({answer.status_code}) is not a JSON object",
            status=answer.status_code,
        )
    return data


def _refusal(answer: requests.Response, what: str, auth: ApiAuth) -> ApiProblem:
    """The ApiProblem of a 4xx or 5xx answer: posepipe's ``{"error", "message"}`` or API Gateway's."""
    status = answer.status_code
    try:
        data = answer.json()
    except ValueError:
        data = None
    code = data.get("error") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        text = " ".join(answer.text.split())[:200]
        message = text or answer.reason or "no message"
    label = f"{status} {code}" if isinstance(code, str) and code else str(status)
    verb = "failed on" if status >= 500 else "refused"
    sentence = f"The API {verb} {what} ({label}): {message}"
    if status == 403 and not code:  # API Gateway's own refusal: signature, key or permissions
        sentence += f" (authentication: {auth.describe()}; check it in the sidebar)"
    return ApiProblem(sentence, status=status, code=code if isinstance(code, str) else None)


def _s3_error(answer: requests.Response) -> str:
    """S3's XML error as "Code: Message", else the start of the body."""
    import re

    text = answer.text
    code = re.search(r"<Code>(.*?)</Code>", text)
    message = re.search(r"<Message>(.*?)</Message>", text)
    if code or message:
        return ": ".join(m.group(1) for m in (code, message) if m)
    return " ".join(text.split())[:200] or answer.reason or "no message"
