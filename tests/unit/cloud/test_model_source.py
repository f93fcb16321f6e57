"""``POSEPIPE_MODEL_URI``: a model fetched from S3 (moto) as a ``.task`` bundle or a SageMaker
``model.tar.gz``, unpacked safely, verified, or refused with the URI and the reason."""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from posepipe.assets import pose_model as models
from posepipe.cloud import model_source
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.model_source import MODEL_URI_ENV, fetch_model, function_model
from posepipe.errors import ModelError

from tests.support.localaws import mocked_s3

BUCKET = "posepipe-models"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mocked_s3(monkeypatch, BUCKET) as client:
        yield client


def tar_gz(members: list[tuple[str, bytes | None]], gzip: bool = True) -> bytes:
    """A tar archive of ``(name, data)`` members; ``None`` data makes a symlink to ``../../etc/passwd``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


@pytest.fixture(scope="module")
def sagemaker_archive(model_bytes: bytes) -> bytes:
    """A model.tar.gz as SageMaker takes it: the bundle at the top, beside other files."""
    return tar_gz(
        [
            ("README.txt", b"pose landmarker, full\n"),
            ("code/inference.py", b"# not used by posepipe\n"),
            ("pose_landmarker_full.task", model_bytes),
        ]
    )


def put(s3: Any, key: str, data: bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return f"s3://{BUCKET}/{key}"


def test_a_task_bundle_is_fetched_and_verified(s3: Any, model_bytes: bytes, tmp_path: Path) -> None:
    uri = put(s3, "models/v2/pose_landmarker_full.task", model_bytes)
    path = fetch_model(s3, uri, tmp_path / "model")
    assert path == tmp_path / "model" / "pose_landmarker_full.task"
    assert path.read_bytes() == model_bytes
    assert models.model_info(path).name == "pose_landmarker_full"


@pytest.mark.parametrize("key", ["models/model.tar.gz", "models/model.tgz"])
def test_a_sagemaker_model_archive_is_unpacked_to_its_one_bundle(
    s3: Any, model_bytes: bytes, sagemaker_archive: bytes, tmp_path: Path, key: str
) -> None:
    uri = put(s3, key, sagemaker_archive)
    path = fetch_model(s3, uri, tmp_path)
    assert path == tmp_path / "pose_landmarker_full.task"
    assert path.read_bytes() == model_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose_landmarker_full.task"]  # nothing else


def test_an_uncompressed_tar_and_a_nested_bundle_are_accepted(
    s3: Any, model_bytes: bytes, tmp_path: Path
) -> None:
    uri = put(s3, "model.tar.gz", tar_gz([("model/heavy.task", model_bytes)], gzip=False))
    assert fetch_model(s3, uri, tmp_path) == tmp_path / "heavy.task"


def test_function_model_fetches_into_a_kept_temporary_folder(
    s3: Any, model_bytes: bytes, sagemaker_archive: bytes
) -> None:
    uri = put(s3, "model.tar.gz", sagemaker_archive)
    path = function_model(PipelineConfig(model_uri=uri), s3)
    assert path.parent.name.startswith("posepipe-model-")
    assert path.read_bytes() == model_bytes
    folder = model_source._FOLDERS.pop()  # kept for the process's life; cleaned here
    assert Path(folder.name) == path.parent
    folder.cleanup()


def test_function_model_without_a_uri_is_the_local_model(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    assert function_model(PipelineConfig(), s3=None) == models.built_model_path()
    copy = tmp_path / "custom.task"
    copy.write_bytes(model_path.read_bytes())
    monkeypatch.setenv(models.MODEL_ENV, str(copy))
    assert function_model(PipelineConfig(), s3=None) == copy


def test_function_model_errors_name_the_variable_and_leave_nothing(s3: Any) -> None:
    def folders() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("posepipe-model-*"))

    before = folders()
    uri = f"s3://{BUCKET}/models/missing.task"
    with pytest.raises(ModelError) as caught:
        function_model(PipelineConfig(model_uri=uri), s3)
    assert str(caught.value) == f"{MODEL_URI_ENV}: {uri}: no such object (or no bucket {BUCKET})"
    assert folders() == before


def test_config_reads_the_model_uri() -> None:
    assert PipelineConfig.from_env({}).model_uri == ""
    env = {"POSEPIPE_MODEL_URI": " s3://b/models/model.tar.gz "}
    assert PipelineConfig.from_env(env).model_uri == "s3://b/models/model.tar.gz"


BadObject = Callable[[bytes], bytes]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("models/pose.task", "not an s3://bucket/key URI"),
        ("https://example.com/pose.task", "not an s3://bucket/key URI"),
        (f"s3://{BUCKET}", "not an s3://bucket/key URI"),
        (f"s3://{BUCKET}/models/missing.task", f"no such object (or no bucket {BUCKET})"),
        ("s3://no-such-bucket-here/pose.task", "no such bucket no-such-bucket-here"),
        (
            f"s3://{BUCKET}/models/pose.zip",
            "not a model: expected the key of a .task bundle or of a .tar.gz holding one",
        ),
    ],
)
def test_uris_that_name_no_model_are_refused(s3: Any, tmp_path: Path, uri: str, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        fetch_model(s3, uri, tmp_path)
    assert str(caught.value) == f"{uri}: {reason}"


@pytest.mark.parametrize(
    ("key", "make", "reason"),
    [
        ("m.tar.gz", lambda task: tar_gz([("README.txt", b"no model here")]), "holds 0 .task bundles (none)"),
        (
            "m.tar.gz",
            lambda task: tar_gz([("lite.task", task), ("sub/full.task", task)]),
            "holds 2 .task bundles (lite.task, sub/full.task); exactly one is needed",
        ),
        (
            "m.tar.gz",
            lambda task: tar_gz([("../evil.task", task)]),
            "member '../evil.task' has an unsafe path",
        ),
        (
            "m.tar.gz",
            lambda task: tar_gz([("README.txt", b"x"), ("a/../../evil.task", task)]),
            "member 'a/../../evil.task' has an unsafe path",
        ),
        (
            "m.tar.gz",
            lambda task: tar_gz([("/opt/evil.task", task)]),
            "member '/opt/evil.task' has an unsafe",
        ),
        ("m.tar.gz", lambda task: tar_gz([("pose.task", None)]), "pose.task is a link or special file"),
        ("m.tar.gz", lambda task: task, "not a readable tar archive"),
        ("m.tar.gz", lambda task: b"\x1f\x8b\x08\x00 truncated gzip", "not a readable tar archive"),
        (
            "pose.task",
            lambda task: b"just some text, not a zip",
            "not a MediaPipe .task bundle (expected a zip",
        ),
        (
            "pose.task",
            lambda task: _zip({"pose_detector.tflite": b"nope"}),
            "MediaPipe could not load the model",
        ),
        (
            "m.tar.gz",
            lambda task: tar_gz([("pose.task", _zip({"readme": b"not a model"}))]),
            "MediaPipe could not load the model",
        ),
    ],
)
def test_objects_that_are_no_usable_model_are_refused(
    s3: Any, model_bytes: bytes, tmp_path: Path, key: str, make: BadObject, reason: str
) -> None:
    uri = put(s3, f"models/{key}", make(model_bytes))
    with pytest.raises(ModelError) as caught:
        fetch_model(s3, uri, tmp_path)
    assert str(caught.value).startswith(f"{uri}: ")
    assert reason in str(caught.value)
    assert not list(tmp_path.iterdir())  # no download, archive or partial bundle left


def test_models_over_the_size_limit_are_refused(s3: Any, model_bytes: bytes, tmp_path: Path) -> None:
    uri = put(s3, "models/pose.task", model_bytes)
    with pytest.raises(ModelError, match=rf"^{uri}: the object is {len(model_bytes)} bytes, over the limit"):
        fetch_model(s3, uri, tmp_path, max_bytes=len(model_bytes) - 1)
    # an archive whose members unpack to more than the limit (a small download, a large unpacking)
    bomb = tar_gz([("zeros.bin", bytes(2_000_000)), ("pose.task", model_bytes[:1000])])
    uri = put(s3, "models/bomb.tar.gz", bomb)
    with pytest.raises(ModelError, match=rf"^{uri}: unpacks to over 1000000 bytes"):
        fetch_model(s3, uri, tmp_path, max_bytes=1_000_000)
    assert not list(tmp_path.iterdir())


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
