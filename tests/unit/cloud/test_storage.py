"""How posepipe tells a missing S3 object from every other S3 failure: one helper, used everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from posepipe.cloud.storage import is_missing_object, is_not_found, s3_error_code

from tests.support.paths import REPO


def client_error(code: str, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


@pytest.mark.parametrize(
    ("code", "operation"),
    [
        ("NoSuchKey", "GetObject"),
        ("404", "HeadObject"),
        ("NotFound", "HeadObject"),
        ("NoSuchBucket", "GetObject"),
    ],
)
def test_no_such_object_or_bucket_is_not_found(code: str, operation: str) -> None:
    assert is_not_found(client_error(code, operation))


@pytest.mark.parametrize("code", ["AccessDenied", "403", "SlowDown", "InternalError", "ExpiredToken", ""])
def test_other_s3_errors_are_not_missing_objects(code: str) -> None:
    """Without s3:ListBucket S3 answers 403 for a missing key: a permission to grant, not absence."""
    assert not is_not_found(client_error(code))


def test_errors_that_are_not_s3_answers_are_not_missing_objects() -> None:
    assert not is_not_found(FileNotFoundError("local"))
    assert not is_not_found(KeyError("NoSuchKey"))
    assert s3_error_code(RuntimeError("x")) == ""
    assert s3_error_code(client_error("SlowDown")) == "SlowDown"


def test_no_other_module_decides_by_s3_error_codes() -> None:
    """The image and split functions, the aggregate, the model source and the endpoint's video
    cache each listed their own codes; now only posepipe.cloud.storage knows them."""
    storage = REPO / "layers" / "posepipe" / "cloud" / "storage.py"
    codes = re.compile(r"""["'](NoSuchKey|NoSuchBucket|NotFound|404)["']""")
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for folder in ("layers", "functions")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != storage
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if codes.search(line)
    ]
    assert offenders == []
    assert codes.search(Path(storage).read_text(encoding="utf-8"))


def test_a_missing_bucket_is_told_apart() -> None:
    from posepipe.cloud.storage import is_missing_bucket

    assert is_missing_bucket(client_error("NoSuchBucket"))
    assert not is_missing_bucket(client_error("NoSuchKey"))
    assert not is_missing_object(client_error("NoSuchBucket"))
    for code in ("NoSuchKey", "404", "NotFound"):
        assert is_missing_object(client_error(code))
    assert not is_missing_object(client_error("AccessDenied"))
