"""The endpoint tests' S3: moto's server, one per test module (others may use moto in-process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.endpoint import INPUT_BUCKET, OUTPUT_BUCKET, S3Stack, free_port


@pytest.fixture(scope="module")
def s3(
    tmp_path_factory: pytest.TempPathFactory, sample: Callable[[str], Path], model_path: Path
) -> Iterator[S3Stack]:
    """S3 for this module only (others may use moto in-process): vtest.avi and a non-video."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            for name in (
                "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "POSEPIPE_MODEL", "POSEPIPE_ENGINE"
            ):  # fmt: skip
                env.delenv(name, raising=False)
            # An empty SageMaker model folder: the endpoint falls back to the built model.
            env.setenv("SM_MODEL_DIR", str(tmp_path_factory.mktemp("sm-model")))
            client = boto3.client("s3")
            for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
                client.create_bucket(Bucket=bucket)
            client.upload_file(str(sample("vtest.avi")), INPUT_BUCKET, "videos/vtest.avi")
            client.put_object(
                Bucket=INPUT_BUCKET, Key="videos/notes.mp4", Body=b"meeting notes, not a video\n" * 40
            )
            yield S3Stack(endpoint_url=f"http://127.0.0.1:{port}", client=client)
    finally:
        server.stop()
