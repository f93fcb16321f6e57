"""The model of the Lambdas that run MediaPipe: from S3 (``POSEPIPE_MODEL_URI``) or local.

``image_infer`` and ``aggregate`` (its boundary repairs) must serve the model the SageMaker
endpoint serves. The deployment's ``modelUri`` reaches the endpoint as its ``ModelDataUrl``
(unpacked by SageMaker into ``/opt/ml/model``) and the two functions as ``POSEPIPE_MODEL_URI``:
:func:`function_model` fetches it once per container, at cold start, into a temporary folder
under ``/tmp``, and verifies it. Without it, the functions serve ``POSEPIPE_MODEL`` or the model
built into the container image, as the endpoint does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from posepipe.assets.pose_model import (
    ARCHIVE_SUFFIXES,
    MAX_MODEL_BYTES,
    TASK_SUFFIX,
    resolve_model_path,
    unpack_model_archive,
)
from posepipe.assets.verify import verify_model
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.storage import is_missing_bucket, is_not_found, parse_s3_uri, s3_error_code
from posepipe.errors import InputError, ModelError

MODEL_URI_ENV = "POSEPIPE_MODEL_URI"

# The folders of fetched models, kept for the life of the process (removed when it exits).
_FOLDERS: list[tempfile.TemporaryDirectory[str]] = []


def function_model(config: PipelineConfig, s3: Any, logger: Logger | None = None) -> Path:
    """The model a function serves: ``config.model_uri`` fetched into a new temporary folder and
    verified (call once per container, at cold start; ``logger`` says where it came from and how
    long it took), else :func:`posepipe.assets.pose_model.resolve_model_path` (``POSEPIPE_MODEL``,
    else the built model). Raises :class:`ModelError` naming the variable, the URI and the problem."""
    if not config.model_uri:
        return resolve_model_path()
    started = time.perf_counter()
    folder = tempfile.TemporaryDirectory(prefix="posepipe-model-")
    try:
        path = fetch_model(s3, config.model_uri, Path(folder.name))
    except ModelError as exc:
        folder.cleanup()
        raise ModelError(f"{MODEL_URI_ENV}: {exc}") from exc
    except BaseException:
        folder.cleanup()
        raise
    _FOLDERS.append(folder)
    if logger is not None:
        logger.info(
            "model fetched",
            extra={"model_uri": config.model_uri, "model_path": str(path),
                   "fetch_s": round(time.perf_counter() - started, 3)},
        )  # fmt: skip
    return path


def fetch_model(s3: Any, uri: str, folder: Path, *, max_bytes: int = MAX_MODEL_BYTES) -> Path:
    """Download the model at ``uri`` into ``folder``, check it loads, and return its path.

    ``uri`` is ``s3://bucket/key`` of a ``.task`` bundle, or of a ``.tar.gz`` (``.tgz``) holding
    exactly one (a SageMaker ``ModelDataUrl``; :func:`posepipe.assets.pose_model.unpack_model_archive`
    writes only the bundle, and the archive is deleted). Objects over ``max_bytes`` are refused
    before download. Raises :class:`ModelError` naming ``uri`` and the problem: not an
    ``s3://bucket/key`` URI, another suffix, no such object, access denied, too large, a bad
    archive, not a bundle MediaPipe loads.
    """
    try:
        bucket, key = parse_s3_uri(uri)
    except InputError as exc:
        raise ModelError(f"{uri}: not an s3://bucket/key URI") from exc
    name = PurePosixPath(key).name
    lowered = name.lower()
    is_archive = lowered.endswith(ARCHIVE_SUFFIXES)
    if not (is_archive or lowered.endswith(TASK_SUFFIX)):
        raise ModelError(
            f"{uri}: not a model: expected the key of a {TASK_SUFFIX} bundle or of a .tar.gz holding one"
        )
    size = _object_size(s3, uri, bucket, key)
    if size > max_bytes:
        raise ModelError(f"{uri}: the object is {size} bytes, over the limit of {max_bytes} bytes")
    folder.mkdir(parents=True, exist_ok=True)
    if is_archive:
        archive = folder / f"download-{name}"
        try:
            _download(s3, uri, bucket, key, archive)
            path = unpack_model_archive(archive, folder, source=uri, max_bytes=max_bytes)
        finally:
            archive.unlink(missing_ok=True)
    else:
        path = _download(s3, uri, bucket, key, folder / name)
    try:
        verify_model(path, source=uri)
    except ModelError:
        path.unlink(missing_ok=True)
        raise
    return path


def _object_size(s3: Any, uri: str, bucket: str, key: str) -> int:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        raise _client_error(uri, bucket, err) from err
    return int(head["ContentLength"])


def _download(s3: Any, uri: str, bucket: str, key: str, destination: Path) -> Path:
    try:
        s3.download_file(bucket, key, str(destination))
    except ClientError as err:
        destination.unlink(missing_ok=True)
        raise _client_error(uri, bucket, err) from err
    return destination


def _client_error(uri: str, bucket: str, err: ClientError) -> ModelError:
    code = s3_error_code(err)
    if is_missing_bucket(err):
        return ModelError(f"{uri}: no such bucket {bucket}")
    if is_not_found(err):
        return ModelError(f"{uri}: no such object (or no bucket {bucket})")
    if code in ("403", "AccessDenied", "Forbidden"):
        return ModelError(f"{uri}: access denied (the function's role needs s3:GetObject on it)")
    return ModelError(f"{uri}: could not be read from S3: {err}")
