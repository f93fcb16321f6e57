"""Where a video is read from: a file on disk, or any seekable binary file (an object in S3 read
by ranged GETs, :class:`posepipe.cloud.s3_reader.S3RangeReader`), which FFmpeg's demuxers read
through PyAV as they would a file, fetching only what they read."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import av
from av.container import InputContainer

MediaSource = str | Path | BinaryIO | io.RawIOBase
"""A path, or a seekable binary file that stays open (PyAV never closes it)."""


def open_input(source: MediaSource) -> InputContainer:
    """``source`` opened for reading; a file object is read from its start (each opening of one
    file object starts again, as a reopened path would)."""
    if isinstance(source, (str, Path)):
        return av.open(str(source), "r", metadata_errors="replace")
    source.seek(0)
    return av.open(source, "r", metadata_errors="replace")


def source_name(source: MediaSource) -> str:
    """What messages call ``source``: its path, or the file object's ``name`` (an S3 URI)."""
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", None) or type(source).__name__)
