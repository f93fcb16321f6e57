"""S3 I/O shared by the handlers, the endpoint server and the local stack (boto3)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.keys import KeyLayout
from posepipe.errors import InputError


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InputError(uri, "not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise InputError(uri, "not an s3://bucket/key URI")
    return bucket, key


# S3's ways of saying that an object does not exist: GetObject's NoSuchKey, HeadObject's bare
# 404 (a HEAD response has no body, so botocore names the error by its status), NotFound, and
# NoSuchBucket when the bucket itself is gone. AccessDenied is deliberately not among them:
# without s3:ListBucket S3 answers 403 for a missing key too, and that is a permission to grant,
# not a missing object; throttling and server errors are failures to retry or report.
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})


def s3_error_code(error: BaseException) -> str:
    """The error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_not_found(error: BaseException) -> bool:
    """Whether ``error`` is S3 saying that the object (or its bucket) does not exist."""
    return s3_error_code(error) in _NOT_FOUND_CODES


def is_missing_object(error: BaseException) -> bool:
    """Whether ``error`` is S3 saying that the object does not exist in a bucket that does (a HEAD
    on a missing bucket is a bare 404 too, which cannot be told apart)."""
    return is_not_found(error) and not is_missing_bucket(error)


def is_missing_bucket(error: BaseException) -> bool:
    """Whether ``error`` is S3 saying that the bucket itself does not exist (one of :func:`is_not_found`)."""
    return s3_error_code(error) == "NoSuchBucket"


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client that presigns with SigV4 (all regions, SSE-KMS objects);
    ``AWS_ENDPOINT_URL(_S3)`` or ``endpoint_url`` points it at a local stack."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url, config=Config(signature_version="s3v4"))


def put_json(client: Any, bucket: str, key: str, data: Any) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(data, separators=(",", ":")).encode(),
        ContentType="application/json",
    )


def get_json(client: Any, bucket: str, key: str) -> Any:
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def download(
    client: Any, bucket: str, key: str, destination: Path, extra: dict[str, str] | None = None
) -> Path:
    """``s3://bucket/key`` to ``destination``; ``extra``: ``VersionId`` or ``IfMatch`` (a pinned
    read: s3transfer's parallel ranged download takes a version, not a condition, so a
    conditional read is one streamed GET)."""
    if extra and "IfMatch" in extra:
        body = client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        with destination.open("wb") as handle:
            shutil.copyfileobj(body, handle, 8 * 1024 * 1024)
        return destination
    client.download_file(bucket, key, str(destination), ExtraArgs=extra or None)
    return destination


def write_error_record(
    client: Any, config: PipelineConfig, input_key: str, *, stage: str, reason: str, code: str
) -> str:
    """Record a failure as ``errors/<input key>.json`` in the output bucket; returns its key."""
    key = KeyLayout(config).error(input_key)
    record = {
        "input": s3_uri(config.input_bucket, input_key),
        "stage": stage,
        "code": code,
        "reason": reason,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    put_json(client, config.output_bucket, key, record)
    return key


def s3_object_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` is in ``bucket`` (a HEAD; any error but "no such object" is raised)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except Exception as err:
        if is_missing_object(err):
            return False
        raise
    return True
