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
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypedDict

from posepipe.cloud.pinning import PinnedObject

BLOCK_BYTES = 256 * 1024
CACHED_BLOCKS = 16
# Reading a range of frames (a render segment, a chunk) goes through the data in order: larger
# blocks, fewer requests (a 1080p phone video is 2-6 MB a second).
STREAM_BLOCK_BYTES = 8 * 1024 * 1024
STREAM_CACHED_BLOCKS = 4
# ... and fetched ahead, several at once: one GET at a time leaves a connection's latency between
# blocks (a whole-file probe of a 50 GB video in video_split reads it all).
STREAM_READ_AHEAD = 6


class BlockSizes(TypedDict):
    block_bytes: int
    cached_blocks: int
    read_ahead: int


def streaming_sizes() -> BlockSizes:
    """The block arguments of a reader that reads frames in order (``S3RangeReader(..., **these)``)."""
    return {
        "block_bytes": STREAM_BLOCK_BYTES,
        "cached_blocks": STREAM_CACHED_BLOCKS,
        "read_ahead": STREAM_READ_AHEAD,
    }


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
        read_ahead: int = 0,
    ) -> None:
        super().__init__()
        if block_bytes <= 0 or cached_blocks <= 0 or read_ahead < 0:
            raise ValueError("block_bytes and cached_blocks must be positive, read_ahead not negative")
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
        self._pin_args = PinnedObject(bucket, key, etag, version_id).get_args()
        self.block_bytes = block_bytes
        self.cached_blocks = cached_blocks
        self.bytes_read = 0  # bytes fetched from S3
        self.requests = 0  # ranged GETs made
        self._position = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self.read_ahead = read_ahead
        self._pool = (
            ThreadPoolExecutor(read_ahead, thread_name_prefix="s3-read-ahead") if read_ahead else None
        )
        self._ahead: dict[int, Future[bytes]] = {}
        self._last_block = -2  # the last block read: fetching ahead starts once reads go in order
        self._count_lock = threading.Lock()

    @classmethod
    def of(cls, client: Any, pin: PinnedObject, *, streaming: bool = False) -> S3RangeReader:
        """The pinned version of an object; ``streaming``: blocks sized for reading frames in order."""
        sizes = (
            streaming_sizes()
            if streaming
            else BlockSizes(block_bytes=BLOCK_BYTES, cached_blocks=CACHED_BLOCKS, read_ahead=0)
        )
        version = pin.get_args().get("VersionId")
        head = client.head_object(Bucket=pin.bucket, Key=pin.key, **pin.get_args())
        return cls(
            client, pin.bucket, pin.key, size=int(head["ContentLength"]), etag=str(head["ETag"]),
            version_id=version, **sizes,
        )  # fmt: skip

    @property
    def name(self) -> str:
        """The object's ``s3://`` URI (what PyAV and messages call the file)."""
        return f"s3://{self.bucket}/{self.key}"

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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._ahead.clear()
        super().close()

    def _block(self, index: int) -> bytes:
        cached = self._blocks.get(index)
        if cached is not None:
            self._blocks.move_to_end(index)
            return cached
        pending = self._ahead.pop(index, None)
        data = pending.result() if pending is not None else self._fetch(index)
        if self._pool is not None and index == self._last_block + 1:
            self._fetch_ahead(index)  # in order: a demuxer's header reads, jumping about, fetch nothing ahead
        self._last_block = index
        self._blocks[index] = data
        while len(self._blocks) > self.cached_blocks:
            self._blocks.popitem(last=False)
        return data

    def _fetch_ahead(self, index: int) -> None:
        """Start fetching the blocks after ``index``; forget those a seek has left behind."""
        assert self._pool is not None
        wanted = range(index + 1, min(index + 1 + self.read_ahead, -(-self.size // self.block_bytes)))
        for stale in [i for i in self._ahead if i not in wanted]:
            self._ahead.pop(stale).cancel()
        for ahead in wanted:
            if ahead not in self._ahead and ahead not in self._blocks:
                self._ahead[ahead] = self._pool.submit(self._fetch, ahead)

    def _fetch(self, index: int) -> bytes:
        first = index * self.block_bytes
        last = min(self.size, first + self.block_bytes) - 1
        answer = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={first}-{last}", **self._pin_args
        )
        data: bytes = answer["Body"].read()
        with self._count_lock:
            self.bytes_read += len(data)
            self.requests += 1
        return data
