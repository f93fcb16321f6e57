"""The Flask app: SageMaker's real-time inference contract around ``posepipe.video.stages.infer_chunk``.

``GET /ping``: 200 once the model is loaded and verified (it loads in a background thread at
start-up, so ``/ping`` answers at once: 503 until then, and for good if loading failed), naming
the engine (``mediapipe``, or ``torch`` with its device and dtype; see
:mod:`posepipe.cloud.endpoint.engine` for how it is chosen).

``POST /invocations`` (docs/CLOUD.md, "Endpoint invocation"): reads the chunk's range of the
video by ranged GETs when the request names its probe (``video_info``, as video_split's requests
do), else a whole copy (the last few videos stay on local disk, see
:mod:`posepipe.cloud.endpoint.video_cache`), runs the
engine over the chunk, writes the ``ChunkResult`` JSON to ``output`` and answers 200 with
``{"output", "chunk", "frames", "person_frames", "timings"}``. Errors are JSON
``{"error": code, "message": ...}``:

- 400: the request is malformed (``unsupported_content_type``, ``invalid_json``,
  ``missing_field``, ``invalid_field``, ``invalid_uri``, ``invalid_chunk``, ``invalid_options``),
  or the chunk reaches past the video's last frame (``chunk_out_of_range``);
- 422: the video cannot be used: ``not_found`` (no such object or bucket) or ``bad_input``
  (posepipe cannot read it; the message says why);
- 409 ``video_changed``: the request pins the video (``video_etag``, ``video_version_id``: the
  version its job was started for) and S3 no longer has that version under the key;
- 400 ``detector_mismatch``: the request names a person detector other than the endpoint's
  (``$POSEPIPE_DETECTOR``): the endpoint never runs another one than it was deployed with;
- 413: a body over 6 MiB (SageMaker's own limit); 503 ``not_ready``: the model failed to load,
  or is still loading after ``load_wait_s`` (an invocation that comes early waits for it);
- 503 ``over_capacity`` (``Retry-After: 1``): the process already runs ``max_concurrent``
  invocations (``$POSEPIPE_MAX_CONCURRENT``); refused at once rather than queued past the
  invocation's time limit. SageMaker answers the caller ``ModelError``, which the state machine
  retries with backoff;
- A caller whose ``CustomAttributes`` (header ``X-Amzn-SageMaker-Custom-Attributes``) say
  ``posepipe-refusals=in-body``, as the state machine's do, gets each 4xx above (a refusal for
  good) as ``200 {"refused": {"status", "code", "reason"}, "chunk": <index>}`` instead: SageMaker
  would hand any non-200 on as ``ModelError``, which Step Functions cannot tell from an error
  worth retrying. 503 and 500 stay as they are (retried);
- 500 ``internal``: anything else (S3 access denied, a failed write, an engine crash), with the
  traceback in the log.

Time: SageMaker gives an invocation 60 s; ``video_split`` plans chunks so that one takes at most
``$POSEPIPE_INVOCATION_SECONDS`` (20) at the endpoint's cost per frame
(:func:`posepipe.cloud.video_job.chunk_frames`). The server does not cut requests short.

Metrics: each invocation writes a CloudWatch embedded-metric-format record to stdout
(namespace ``posepipe``, dimensions ``Device`` and ``Detector``: ``Frames``, ``PersonFrames``,
``InferenceSeconds``), beside its structured ``invocation`` log line
(:mod:`posepipe.cloud.endpoint.metrics`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from posepipe.cloud.endpoint.engine import ChunkEngine, EngineFactory, default_engine_factory
from posepipe.cloud.endpoint.log import logger
from posepipe.cloud.endpoint.metrics import record_invocation
from posepipe.cloud.endpoint.request import InvocationRequest, RequestError, S3Location, parse_invocation
from posepipe.cloud.endpoint.video_cache import (
    VideoCache,
    VideoChangedError,
    VideoNotFoundError,
    raise_read_failure,
)
from posepipe.cloud.pinning import PinnedObject
from posepipe.cloud.s3_reader import S3RangeReader
from posepipe.cloud.storage import get_json, is_not_found, put_json, s3_client, s3_uri
from posepipe.errors import InputError
from posepipe.media.probe import VideoInfo
from posepipe.result import Frame
from posepipe.video.stages import Chunk

MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's limit
DEFAULT_CACHED_VIDEOS = 2
DEFAULT_LOAD_WAIT_S = 30.0
MAX_CONCURRENT_ENV = "POSEPIPE_MAX_CONCURRENT"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"  # InvokeEndpoint's CustomAttributes
REFUSALS_ATTRIBUTE = "posepipe-refusals"
_EXTENSION = "posepipe.cloud.endpoint"
# werkzeug's own errors; 404 is not "not_found", which means a missing S3 object (422) here.
_HTTP_ERROR_CODES = {404: "unknown_route", 405: "method_not_allowed", 413: "payload_too_large"}
_CACHED_INFOS = 8  # probes kept (a few MB each for hours of video)


class EndpointState:
    """What one server process holds: the engine (loaded once), the S3 client, the video cache."""

    def __init__(self, engine_factory: EngineFactory, cache: VideoCache, max_concurrent: int = 0) -> None:
        self.cache = cache
        self.max_concurrent = max_concurrent
        self._running = 0
        self._running_lock = threading.Lock()
        self._engine_factory = engine_factory
        self._engine: ChunkEngine | None = None
        self.description: dict[str, Any] = {}
        self.failure: str | None = None
        self._loaded = threading.Event()
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._infos: OrderedDict[str, VideoInfo] = OrderedDict()
        self._infos_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def load(self) -> None:
        """Make and load the engine; a failure is logged and kept (``/ping`` reports it)."""
        started = time.perf_counter()
        try:
            engine = self._engine_factory()
            engine.load()
            self.description = engine.describe()
            self._engine = engine
            logger.info(
                "model loaded", extra={**self.description, "load_s": round(time.perf_counter() - started, 3)}
            )
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            logger.exception("model failed to load")
        finally:
            self._loaded.set()

    def start_loading(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="posepipe-endpoint-load", daemon=True)
        thread.start()
        return thread

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        """Wait for loading to end; True when the engine is ready."""
        self._loaded.wait(timeout)
        return self.ready

    def ready_engine(self, wait_s: float) -> ChunkEngine:
        """The engine, waiting up to ``wait_s`` for it to load; else 503 ``not_ready``."""
        if self._engine is None:
            self._loaded.wait(wait_s)
        if self._engine is None:
            raise RequestError("not_ready", self.failure or "the model is still loading", status=503)
        return self._engine

    def admit(self) -> None:
        """Count one more invocation in, or 503 ``over_capacity`` when ``max_concurrent`` run."""
        with self._running_lock:
            if self.max_concurrent and self._running >= self.max_concurrent:
                raise RequestError(
                    "over_capacity",
                    f"this endpoint process already runs {self._running} invocations, its capacity "
                    f"({MAX_CONCURRENT_ENV}={self.max_concurrent}); retry shortly",
                    status=503,
                )
            self._running += 1

    def release(self) -> None:
        with self._running_lock:
            self._running -= 1

    def close(self) -> None:
        """Stop the engine's background work (the torch engine's frame batcher), if it has any."""
        close = getattr(self._engine, "close", None)
        if callable(close):
            close()

    def video_info(self, location: S3Location) -> VideoInfo:
        """A video's probe (video_split's JSON), the last few kept: a job's chunks share one."""
        with self._infos_lock:
            info = self._infos.get(location.uri)
            if info is not None:
                self._infos.move_to_end(location.uri)
                return info
        try:
            info = VideoInfo.from_dict(get_json(self.s3, location.bucket, location.key))
        except Exception as exc:
            if is_not_found(exc):
                raise RequestError(
                    "not_found", f"video_info: {location.uri}: no such object", status=422
                ) from exc
            raise
        with self._infos_lock:
            self._infos[location.uri] = info
            while len(self._infos) > _CACHED_INFOS:
                self._infos.popitem(last=False)
        return info

    @property
    def s3(self) -> Any:
        """One boto3 S3 client per process (clients are thread-safe), made on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = s3_client()
            return self._client


def create_app(
    engine_factory: EngineFactory | None = None,
    *,
    cache_dir: Path | None = None,
    cached_videos: int = DEFAULT_CACHED_VIDEOS,
    load_in_background: bool = True,
    load_wait_s: float = DEFAULT_LOAD_WAIT_S,
    max_concurrent: int | None = None,
) -> Flask:
    """The endpoint's WSGI app.

    ``engine_factory`` makes the engine (default:
    :func:`~posepipe.cloud.endpoint.engine.default_engine_factory`: torch on CUDA, else MediaPipe, or
    as ``$POSEPIPE_ENGINE`` says; the model of
    :func:`~posepipe.cloud.endpoint.engine.resolve_endpoint_model`). The model loads in a thread
    (``load_in_background``) or before this returns; an invocation that arrives while it loads
    waits up to ``load_wait_s`` (SageMaker sends none before ``/ping`` passes, a local stack may).
    The last ``cached_videos`` videos are kept in ``cache_dir`` (default: a temporary folder,
    deleted with the app). ``max_concurrent`` invocations run at once, the others are refused
    (503 ``over_capacity``); default ``$POSEPIPE_MAX_CONCURRENT``, 0 or unset: no limit.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    directory = cache_dir or Path(tempfile.mkdtemp(prefix="posepipe-endpoint-"))
    if max_concurrent is None:
        max_concurrent = _max_concurrent_from_environment()
    state = EndpointState(
        engine_factory or default_engine_factory, VideoCache(directory, cached_videos), max_concurrent
    )
    app.extensions[_EXTENSION] = state
    if cache_dir is None:
        weakref.finalize(state, shutil.rmtree, directory, ignore_errors=True)
    if load_in_background:
        state.start_loading()
    else:
        state.load()

    @app.get("/ping")
    def ping() -> tuple[Response, int]:
        if state.ready:
            return jsonify(status="ready", **state.description), 200
        if state.failure is not None:
            return jsonify(status="failed", message=state.failure), 503
        return jsonify(status="loading"), 503

    @app.post("/invocations")
    def invocations() -> tuple[Response, int]:
        started = time.perf_counter()
        parsed: InvocationRequest | None = None
        admitted = False
        try:
            parsed = parse_invocation(request.get_data(cache=False), request.mimetype)
            engine = state.ready_engine(load_wait_s)
            state.admit()
            admitted = True
            answer = _invoke(state, engine, parsed)
        except RequestError as exc:
            response = _refusal(exc.status, exc.code, exc.message, parsed)
            if exc.code == "over_capacity":
                response[0].headers["Retry-After"] = "1"
            return response
        except VideoNotFoundError as exc:
            return _refusal(422, "not_found", str(exc), parsed)
        except VideoChangedError as exc:
            return _refusal(409, "video_changed", str(exc), parsed)
        except InputError as exc:
            # The message names the S3 object, not the local copy posepipe read.
            message = f"{parsed.video.uri}: {exc.reason}" if parsed else str(exc)
            return _refusal(422, "bad_input", message, parsed)
        except HTTPException:
            raise  # werkzeug's own (413: body over 6 MiB), answered by http_error
        except Exception as exc:
            logger.exception("invocation failed", extra=_request_fields(parsed))
            return _error(500, "internal", f"{type(exc).__name__}: {exc}", parsed, log=False)
        finally:
            if admitted:
                state.release()
        answer["timings"]["request_s"] = round(time.perf_counter() - started, 4)
        record_invocation(state.description, answer)
        logger.info(
            "invocation",
            extra={
                **_request_fields(parsed),
                **{k: answer[k] for k in ("frames", "person_frames", "timings")},
            },
        )
        return jsonify(answer), 200

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = _HTTP_ERROR_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        return jsonify(error=code, message=exc.description or exc.name), status

    return app


def endpoint_state(app: Flask) -> EndpointState:
    """The :class:`EndpointState` of an app made by :func:`create_app`."""
    state = app.extensions[_EXTENSION]
    assert isinstance(state, EndpointState)
    return state


def _max_concurrent_from_environment() -> int:
    value = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if value and not value.isdigit():
        raise ValueError(f"{MAX_CONCURRENT_ENV}: {value!r} is not a whole number of invocations")
    return int(value) if value else 0


def _invoke(state: EndpointState, engine: ChunkEngine, parsed: InvocationRequest) -> dict[str, Any]:
    """Fetch, infer, write: the 200 answer."""
    if parsed.detector is not None and parsed.detector != engine.detector:
        raise RequestError(
            "detector_mismatch",
            f"this endpoint runs the person detector {engine.detector}; the request asks for "
            f"{parsed.detector} (options.detector: leave it out, or name the endpoint's)",
        )
    chunk = parsed.chunk
    pin = None
    if parsed.video_etag is not None:
        pin = PinnedObject(parsed.video.bucket, parsed.video.key, parsed.video_etag, parsed.video_version_id)
    if pin is not None and parsed.video_info is not None:  # the chunk's range only, by ranged GETs
        info = state.video_info(parsed.video_info)
        _check_range(chunk, info.frame_count, parsed.video.uri)
        agree_with = _agreement(state, parsed)
        with contextlib.closing(_ranged_source(state, pin)) as source:
            result = engine.infer(source, chunk, parsed.options, info, agree_with)
        result.timings.update(source_bytes_read=float(source.bytes_read), video_cached=0.0)
    else:
        with state.cache.open(state.s3, parsed.video.bucket, parsed.video.key, pin) as video:
            _check_range(chunk, video.info.frame_count, parsed.video.uri)
            agree_with = _agreement(state, parsed)
            result = engine.infer(video.path, chunk, parsed.options, video.info, agree_with)
        result.timings.update(
            download_s=video.download_s, probe_s=video.probe_s, video_cached=1.0 if video.cache_hit else 0.0
        )
    written = time.perf_counter()
    put_json(state.s3, parsed.output.bucket, parsed.output.key, result.to_dict())
    timings = {**result.timings, "write_s": round(time.perf_counter() - written, 4)}
    answer: dict[str, Any] = {
        "output": parsed.output.uri,
        "chunk": chunk.index,
        "frames": len(result.frames),
        "person_frames": result.person_frames,
        "timings": timings,
    }
    if agree_with is not None:
        answer["repair"] = True
    return answer


def _check_range(chunk: Chunk, frame_count: int, uri: str) -> None:
    if chunk.stop > frame_count:
        raise RequestError(
            "chunk_out_of_range",
            f"chunk {chunk.index} ends at frame {chunk.stop} but {uri} has {frame_count} frames",
        )


def _ranged_source(state: EndpointState, pin: PinnedObject) -> S3RangeReader:
    """The pinned version as a ranged reader; S3's answers as the video cache gives them."""
    try:
        return S3RangeReader.of(state.s3, pin, streaming=True)
    except Exception as exc:
        raise_read_failure(exc, s3_uri(pin.bucket, pin.key), pin.get_args())
        raise


def _agreement(state: EndpointState, parsed: InvocationRequest) -> list[Frame] | None:
    """A boundary repair's earlier frames (``agree_with``), logged as the repair it is."""
    if parsed.agree_with is None:
        return None
    location = parsed.agree_with
    try:
        frames = [Frame.from_dict(f) for f in get_json(state.s3, location.bucket, location.key)["frames"]]
    except ClientError as exc:
        if is_not_found(exc):
            raise RequestError("not_found", f"agree_with: no object at {location.uri}", status=422) from exc
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestError("invalid_field", f"agree_with: {location.uri} holds no frames: {exc!r}") from exc
    logger.info(
        "boundary repair",
        extra={**_request_fields(parsed), "agree_with": location.uri, "agree_frames": len(frames)},
    )
    return frames


def _request_fields(parsed: InvocationRequest | None) -> dict[str, Any]:
    if parsed is None:
        return {}
    return {"video": parsed.video.uri, "chunk": parsed.chunk.to_dict(), "output": parsed.output.uri}


def _refusal(status: int, code: str, message: str, parsed: InvocationRequest | None) -> tuple[Response, int]:
    """A request refused: its 4xx or 503, or, for a 4xx (a refusal for good, that no retry would
    change) when the caller asked for ``posepipe-refusals=in-body`` in SageMaker's custom
    attributes, ``200 {"refused": {"status", "code", "reason"}, "chunk": <index>}``: SageMaker
    passes any other status on as ``ModelError``, which the state machine cannot tell from a
    failure worth retrying."""
    if (
        400 <= status < 500
        and status != 429
        and _refusals_in_body(request.headers.get(CUSTOM_ATTRIBUTES, ""))
    ):
        _error(status, code, message, parsed)  # logged as any refusal
        refused = {"status": status, "code": code, "reason": message}
        return jsonify(refused=refused, chunk=parsed.chunk.index if parsed else None), 200
    return _error(status, code, message, parsed)


def _refusals_in_body(attributes: str) -> bool:
    """Whether SageMaker's custom attributes (``a=b; c=d``, or ``a=b,c=d``) ask for refusals in the body."""
    pairs = (item.strip().partition("=") for item in attributes.replace(";", ",").split(","))
    return any(name.strip() == REFUSALS_ATTRIBUTE and value.strip() == "in-body" for name, _, value in pairs)


def _error(
    status: int, code: str, message: str, parsed: InvocationRequest | None, *, log: bool = True
) -> tuple[Response, int]:
    if log:
        logger.warning(
            "invocation refused",
            extra={"status": status, "error": code, "reason": message, **_request_fields(parsed)},
        )
    return jsonify(error=code, message=message), status
