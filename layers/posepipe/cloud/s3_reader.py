"""A seekable, read-only file over one S3 object, read by ranged GETs.

PyAV (FFmpeg's demuxers) reads a container through any seekable binary file: opened on an
:class:`S3RangeReader`, it fetches only the blocks it reads (an MP4's ``moov`` box, wherever it
lies, an AVI's or a Matroska's header), never the whole object. ``video_split`` probes a video's
header this way, so that a video over a limit is refused after reading a few blocks of it.

Blocks are :data:`BLOCK_BYTES` long and aligned; the last :data:`CACHED_BLOCKS` are kept, which is
what a demuxer seeking back and forth within a header needs. ``bytes_read`` counts what came
from S3. The object is pinned to its ETag: a ranged GET of a changed object fails
(``PreconditionFailed``) instead of mixing two versions.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

BLOCK_BYTES = 256 * 1024
CACHED_BLOCKS = 16


class S3RangeReader(io.RawIOBase):
    """``s3://bucket/key`` as a seekable binary file (see the module docstring).

    ``size`` and ``etag`` come from one ``HeadObject`` unless given; with ``version_id`` every
    read is of that version (else ``IfMatch`` on the ETag). Raises botocore's
    ``ClientError`` as S3 answers it (a missing object: 404 on the HEAD).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        size: int | None = None,
        etag: str | None = None,
        version_id: str | None = None,
        block_bytes: int = BLOCK_BYTES,
        cached_blocks: int = CACHED_BLOCKS,
    ) -> None:
        super().__init__()
        if block_bytes <= 0 or cached_blocks <= 0:
            raise ValueError("block_bytes and cached_blocks must be positive")
        if size is None or etag is None:
            head = client.head_object(
                Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {})
            )
            size = int(head["ContentLength"]) if size is None else size
            etag = str(head["ETag"]) if etag is None else etag
        self.client = client
        self.bucket = bucket
        self.key = key
        self.size = size
        self.etag = etag
        self.version_id = version_id
        self.block_bytes = block_bytes
        self.cached_blocks = cached_blocks
        self.bytes_read = 0  # bytes fetched from S3
        self.requests = 0  # ranged GETs made
        self._position = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self._position))
        done = 0
        while done < wanted:
            index, start = divmod(self._position, self.block_bytes)
            block = self._block(index)
            count = min(wanted - done, len(block) - start)
            if count <= 0:  # the object is shorter than its HEAD said
                break
            view[done : done + count] = block[start : start + count]
            done += count
            self._position += count
        return done

    def _block(self, index: int) -> bytes:
        cached = self._blocks.get(index)
        if cached is not None:
            self._blocks.move_to_end(index)
            return cached
        first = index * self.block_bytes
        last = min(self.size, first + self.block_bytes) - 1
        pin = {"VersionId": self.version_id} if self.version_id else {"IfMatch": self.etag}
        answer = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={first}-{last}", **pin
        )
        data: bytes = answer["Body"].read()
        self.bytes_read += len(data)
        self.requests += 1
        self._blocks[index] = data
        while len(self._blocks) > self.cached_blocks:
            self._blocks.popitem(last=False)
        return data
