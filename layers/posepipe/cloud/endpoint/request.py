"""Parsing and validating an invocation body (docs/CLOUD.md, "Endpoint invocation").

The body is the one the ``video_split`` Lambda builds::

    {"video": "s3://in/videos/clip.mp4",
     "chunk": {"index": 0, "start": 0, "stop": 423, "warmup_start": 0},
     "output": "s3://out/work/<job>/chunks/00000.json",
     "options": {"max_poses": 4, "min_detection_confidence": 0.5, ...}}

Validation is strict: unknown keys are refused rather than ignored, so a misspelt option
(``"max_pose"``) fails loudly instead of silently running with the default. ``options`` may not
name a model (``model_path``): the endpoint serves the model it was deployed with.

A boundary repair (the ``aggregate`` function's) adds ``"agree_with": "s3://out/work/<job>/repairs/
00003-agree.json"``: a JSON object whose ``frames`` are the chunk's earlier result; the repair
stops once it agrees with them (``posepipe.video.stages.infer_chunk``).

A request that pins the video (``video_etag``, ``video_version_id``) and names its probe
(``"video_info": "s3://out/work/<job>/video.json"``, video_split's) is read by ranged GETs of the
chunk's range: nothing is downloaded whole, and nothing is probed again.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from posepipe.cloud.storage import parse_s3_uri
from posepipe.engines.base import DETECTORS, InferenceOptions
from posepipe.errors import InputError
from posepipe.video.stages import Chunk

JSON_MIMETYPE = "application/json"

REQUIRED_FIELDS = ("video", "chunk", "output")
OPTIONAL_FIELDS = ("options", "agree_with", "video_etag", "video_version_id", "video_info")
CHUNK_FIELDS = ("index", "start", "stop", "warmup_start")
CONFIDENCE_OPTIONS = ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence")
INTEGER_OPTIONS = ("max_poses", "decode_threads")
DETECTOR_OPTIONS = ("detector", "detect_every")  # the person detector (a name) and how often it runs
MAX_DETECT_EVERY = 100
MAX_POSES_LIMIT = 20
MAX_DECODE_THREADS = 64


class RequestError(Exception):
    """A request the endpoint refuses: HTTP ``status`` with ``{"error": code, "message": ...}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class S3Location:
    uri: str
    bucket: str
    key: str


@dataclass(frozen=True)
class InvocationRequest:
    """A validated invocation: where the video is, which frames, where the result goes, how."""

    video: S3Location
    chunk: Chunk
    output: S3Location
    options: InferenceOptions
    detector: str | None = None  # the detector the request names, if it names one
    agree_with: S3Location | None = None  # a boundary repair: the frames it may stop agreeing with
    video_etag: str | None = None  # the version of the video to read (posepipe.cloud.pinning)
    video_version_id: str | None = None
    video_info: S3Location | None = None  # the probe, video_split's: read the chunk by ranged GETs


def parse_invocation(body: bytes, mimetype: str) -> InvocationRequest:
    """Parse an invocation body, or raise :class:`RequestError` (status 400) naming the problem."""
    if mimetype != JSON_MIMETYPE:
        raise RequestError(
            "unsupported_content_type", f"expected Content-Type {JSON_MIMETYPE}, got {mimetype or 'none'!r}"
        )
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise RequestError("invalid_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError("invalid_json", f"the body must be a JSON object, not {_json_type(data)}")
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise RequestError("missing_field", f"missing field(s): {', '.join(missing)}")
    _refuse_unknown(data, REQUIRED_FIELDS + OPTIONAL_FIELDS, "the body", "invalid_field")
    video = _s3_location(data["video"], "video")
    output = _s3_location(data["output"], "output")
    if output.key.endswith("/"):
        raise RequestError("invalid_uri", f"output: {output.uri} names a folder, not an object")
    if (output.bucket, output.key) == (video.bucket, video.key):
        raise RequestError("invalid_uri", "output must not overwrite the input video")
    return InvocationRequest(
        video=video,
        chunk=_chunk(data["chunk"]),
        output=output,
        options=_options(data.get("options", {})),
        detector=_requested_detector(data.get("options", {})),
        agree_with=_s3_location(data["agree_with"], "agree_with") if "agree_with" in data else None,
        video_etag=_optional_text(data, "video_etag"),
        video_version_id=_optional_text(data, "video_version_id"),
        video_info=_s3_location(data["video_info"], "video_info") if "video_info" in data else None,
    )


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RequestError("invalid_field", f"{name} must be a non-empty string, not {_json_type(value)}")
    return value


def _s3_location(value: Any, name: str) -> S3Location:
    if not isinstance(value, str):
        raise RequestError("invalid_field", f"{name} must be an s3:// URI string, not {_json_type(value)}")
    try:
        bucket, key = parse_s3_uri(value)
    except InputError as exc:
        raise RequestError("invalid_uri", f"{name}: {exc}") from exc
    return S3Location(uri=value, bucket=bucket, key=key)


def _chunk(value: Any) -> Chunk:
    if not isinstance(value, dict):
        raise RequestError("invalid_chunk", f"chunk must be an object, not {_json_type(value)}")
    missing = [name for name in CHUNK_FIELDS if name not in value]
    if missing:
        raise RequestError("invalid_chunk", f"chunk is missing {', '.join(missing)}")
    _refuse_unknown(value, CHUNK_FIELDS, "chunk", "invalid_chunk")
    for name in CHUNK_FIELDS:
        if not _is_integer(value[name]) or value[name] < 0:
            raise RequestError(
                "invalid_chunk", f"chunk.{name} must be a non-negative integer, not {value[name]!r}"
            )
    try:
        return Chunk.from_dict(value)
    except ValueError:
        raise RequestError(
            "invalid_chunk",
            "chunk must satisfy 0 <= warmup_start <= start < stop, "
            f"got warmup_start={value['warmup_start']}, start={value['start']}, stop={value['stop']}",
        ) from None


def _options(value: Any) -> InferenceOptions:
    if not isinstance(value, dict):
        raise RequestError("invalid_options", f"options must be an object, not {_json_type(value)}")
    if "model_path" in value:
        raise RequestError(
            "invalid_options", "options.model_path is not accepted: the endpoint serves its own model"
        )
    _refuse_unknown(
        value, INTEGER_OPTIONS + CONFIDENCE_OPTIONS + DETECTOR_OPTIONS, "options", "invalid_options"
    )
    if "detector" in value and value["detector"] not in DETECTORS:
        raise RequestError(
            "invalid_options",
            f"options.detector must be one of {', '.join(DETECTORS)}, not {value['detector']!r}",
        )
    for name in CONFIDENCE_OPTIONS:
        if name in value:
            number = value[name]
            if not _is_number(number) or not 0.0 <= number <= 1.0:
                raise RequestError(
                    "invalid_options", f"options.{name} must be a number in [0, 1], not {number!r}"
                )
    _integer_option(value, "max_poses", 1, MAX_POSES_LIMIT)
    _integer_option(value, "decode_threads", 0, MAX_DECODE_THREADS)
    _integer_option(value, "detect_every", 1, MAX_DETECT_EVERY)
    return InferenceOptions.from_dict(value)


def _requested_detector(value: dict[str, Any]) -> str | None:
    detector = value.get("detector")
    return detector if isinstance(detector, str) else None


def _integer_option(value: dict[str, Any], name: str, low: int, high: int) -> None:
    """``options[name]``, where given, must be an integer in [low, high]."""
    if name in value and not (_is_integer(value[name]) and low <= value[name] <= high):
        raise RequestError(
            "invalid_options", f"options.{name} must be an integer in [{low}, {high}], not {value[name]!r}"
        )


def _refuse_unknown(value: dict[str, Any], allowed: tuple[str, ...], where: str, code: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise RequestError(
            code, f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
