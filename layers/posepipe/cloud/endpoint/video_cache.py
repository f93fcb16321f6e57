"""Local copies of the videos in S3 that recent invocations read, probed once, kept in a small LRU.

The chunks of one video are spread over the endpoint's instances and often reach the same
container one after another, so the last few videos (by S3 URI and ETag: one version of one
object) stay on local disk with their :class:`~posepipe.media.probe.VideoInfo`. A copy evicted while a
request still reads it is deleted when that request is done.

The object is fetched with ``GetObject`` conditional on the ETag that ``HeadObject`` gave, so
the bytes on disk are always the version the cache entry names.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posepipe.cloud.pinning import PinnedObject, is_changed
from posepipe.cloud.storage import is_not_found, s3_uri
from posepipe.media.probe import VideoInfo, probe

_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_COPY_BUFFER = 1 << 20


class VideoNotFoundError(Exception):
    """The S3 object (or its bucket) does not exist."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"{uri}: no such object in S3")
        self.uri = uri


class VideoChangedError(Exception):
    """The version of the video a request pins is no longer in S3 under its key."""

    def __init__(self, uri: str, version: dict[str, str]) -> None:
        pinned = ", ".join(f"{name} {value}" for name, value in version.items())
        super().__init__(f"{uri}: the version its job was started for ({pinned}) is no longer there")


def raise_read_failure(error: BaseException, uri: str, version: dict[str, str]) -> None:
    """A read of ``uri`` (of the pinned ``version``: ``VersionId`` or ``IfMatch``) that S3 refused,
    as :class:`VideoNotFoundError` or :class:`VideoChangedError`; any other error is left to the caller."""
    if is_not_found(error) and "VersionId" not in version:
        raise VideoNotFoundError(uri) from error
    if is_changed(error) or is_not_found(error):  # that version is gone (a 404 for a version id)
        raise VideoChangedError(uri, version) from error


@dataclass
class _Entry:
    path: Path
    info: VideoInfo
    users: int = 0
    evicted: bool = False


@dataclass(frozen=True)
class LocalVideo:
    """A video ready to read: its local path and probe, and how it was obtained."""

    path: Path
    info: VideoInfo
    etag: str
    cache_hit: bool
    download_s: float
    probe_s: float


class VideoCache:
    """At most ``capacity`` probed local copies of S3 videos, least recently used evicted first.

    Thread-safe: lookups take a short lock; downloads are serialised by a second lock (a cache
    hit never waits for another request's download).
    """

    def __init__(self, directory: Path, capacity: int = 2) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.directory = directory
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._download_lock = threading.Lock()
        self._names = itertools.count()

    @contextlib.contextmanager
    def open(
        self, client: Any, bucket: str, key: str, pin: PinnedObject | None = None
    ) -> Iterator[LocalVideo]:
        """The local copy of ``s3://bucket/key`` (of the version ``pin`` names, when given: no
        HEAD needed for a copy already here), kept from deletion while the ``with`` lasts.

        Raises :class:`VideoNotFoundError`, :class:`VideoChangedError` (the pinned version is gone),
        :class:`posepipe.errors.InputError` (not a usable video) or botocore's ``ClientError``
        (any other S3 failure).
        """
        uri = s3_uri(bucket, key)
        etag = pin.quoted_etag if pin is not None else self._etag(client, bucket, key)
        ident = (uri, etag)
        entry = self._checkout(ident)
        cache_hit = entry is not None
        download_s = probe_s = 0.0
        if entry is None:
            with self._download_lock:
                entry = self._checkout(ident)  # another request may have fetched it meanwhile
                cache_hit = entry is not None
                if entry is None:
                    started = time.perf_counter()
                    path = self._download(client, bucket, key, pin.get_args() if pin else {"IfMatch": etag})
                    download_s = time.perf_counter() - started
                    try:
                        info = probe(path)
                    except BaseException:
                        path.unlink(missing_ok=True)
                        raise
                    probe_s = time.perf_counter() - started - download_s
                    entry = self._insert(ident, _Entry(path=path, info=info, users=1))
        try:
            yield LocalVideo(
                path=entry.path,
                info=entry.info,
                etag=etag,
                cache_hit=cache_hit,
                download_s=round(download_s, 4),
                probe_s=round(probe_s, 4),
            )
        finally:
            self._release(entry)

    def cached(self) -> list[tuple[str, str]]:
        """The (URI, ETag) of the cached videos, least recently used first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Delete every copy no request is reading (the others go when their requests end)."""
        with self._lock:
            for entry in self._entries.values():
                self._evict(entry)
            self._entries.clear()

    def _etag(self, client: Any, bucket: str, key: str) -> str:
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if is_not_found(exc):
                raise VideoNotFoundError(s3_uri(bucket, key)) from exc
            raise
        return str(head["ETag"])

    def _download(self, client: Any, bucket: str, key: str, version: dict[str, str]) -> Path:
        suffix = Path(key).suffix
        name = f"video-{next(self._names):06d}{suffix if _SAFE_SUFFIX.match(suffix) else ''}"
        path = self.directory / name
        partial = path.with_name(f".{name}.partial")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            body = client.get_object(Bucket=bucket, Key=key, **version)["Body"]
            with partial.open("wb") as handle:
                shutil.copyfileobj(body, handle, _COPY_BUFFER)
            partial.replace(path)
        except Exception as exc:
            partial.unlink(missing_ok=True)
            raise_read_failure(exc, s3_uri(bucket, key), version)
            raise
        return path

    def _checkout(self, ident: tuple[str, str]) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(ident)
            if entry is not None:
                self._entries.move_to_end(ident)
                entry.users += 1
            return entry

    def _insert(self, ident: tuple[str, str], entry: _Entry) -> _Entry:
        with self._lock:
            self._entries[ident] = entry
            while len(self._entries) > self.capacity:
                _, oldest = self._entries.popitem(last=False)
                self._evict(oldest)
            return entry

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
            if entry.evicted and entry.users == 0:
                entry.path.unlink(missing_ok=True)

    @staticmethod
    def _evict(entry: _Entry) -> None:
        entry.evicted = True
        if entry.users == 0:
            entry.path.unlink(missing_ok=True)
