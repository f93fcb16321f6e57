"""The S3 the endpoint tests share: moto's S3 server holding vtest.avi and a file that is not a video.

The fixture that starts it is ``s3`` in ``tests/unit/cloud/endpoint/conftest.py``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

INPUT_BUCKET = "endpoint-test-input"
OUTPUT_BUCKET = "endpoint-test-output"
VIDEO_URI = f"s3://{INPUT_BUCKET}/videos/vtest.avi"
GARBAGE_URI = f"s3://{INPUT_BUCKET}/videos/notes.mp4"


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port: int = probe_socket.getsockname()[1]
        return port


@dataclass
class S3Stack:
    """moto's S3 server, the environment pointing boto3 at it, and a client."""

    endpoint_url: str
    client: Any

    def exists(self, uri: str) -> bool:
        bucket, key = uri[5:].split("/", 1)
        listing = self.client.list_objects_v2(Bucket=bucket, Prefix=key)
        return any(item["Key"] == key for item in listing.get("Contents", []))
