"""``S3RangeReader``: an S3 object (moto) as a seekable file, read by ranged GETs; the header
probe that ``video_split`` refuses videos with, reading a few hundred kB of a 58 MB video."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from posepipe.cloud.config import PipelineConfig
from posepipe.cloud.s3_reader import S3RangeReader
from posepipe.cloud.video_job import check_video_limits
from posepipe.errors import InputError
from posepipe.media.probe import probe, probe_header

from tests.support.clips import make_long_clip
from tests.support.localaws import mocked_s3

BUCKET = "posepipe-reader-test"
FOUR_HOURS = 4 * 3600


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mocked_s3(monkeypatch, BUCKET) as client:
        yield client


@pytest.fixture(scope="module")
def four_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_long_clip(tmp_path_factory.mktemp("long") / "four_hours.mp4", seconds=FOUR_HOURS)


def test_reads_seeks_and_counts_what_it_fetched(s3: Any) -> None:
    data = bytes(range(256)) * 4000  # 1,024,000 bytes: four blocks of 256 KiB, the last short
    s3.put_object(Bucket=BUCKET, Key="blob", Body=data)
    reader = S3RangeReader(s3, BUCKET, "blob", block_bytes=256 * 1024, cached_blocks=2)
    assert (reader.size, reader.seekable(), reader.readable()) == (len(data), True, True)
    assert reader.read(10) == data[:10]
    assert reader.seek(-5, io.SEEK_END) == len(data) - 5
    assert reader.read() == data[-5:]
    assert reader.read(10) == b""  # at the end
    reader.seek(262_000)
    assert reader.read(300) == data[262_000:262_300]  # across a block boundary
    reader.seek(4, io.SEEK_CUR)
    assert reader.tell() == 262_304
    assert reader.read(1) == data[262_304:262_305]
    # Blocks 0 and 3 fetched; 0 again from the cache, 1 fetched (evicting 3: two are kept), 1 cached.
    assert reader.requests == 3
    assert reader.bytes_read == 2 * 256 * 1024 + (len(data) - 3 * 256 * 1024)
    reader.seek(len(data) - 1)
    assert reader.read(1) == data[-1:]
    assert reader.requests == 4  # block 3 again: it was evicted
    with pytest.raises(ValueError, match="negative seek position"):
        reader.seek(-1)


def test_a_changed_object_is_not_read_as_the_one_it_opened(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="blob", Body=b"first version")
    reader = S3RangeReader(s3, BUCKET, "blob")
    s3.put_object(Bucket=BUCKET, Key="blob", Body=b"second version")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        reader.read()


def test_a_four_hour_video_is_refused_from_its_header_having_read_under_a_megabyte(
    s3: Any, four_hours: Path
) -> None:
    s3.upload_file(str(four_hours), BUCKET, "videos/four_hours.mp4")
    reader = S3RangeReader(s3, BUCKET, "videos/four_hours.mp4")
    header = probe_header(reader, "s3://bucket/videos/four_hours.mp4")
    assert header is not None
    assert (header.codec, header.width, header.height, header.fps) == ("h264", 160, 120, 1.0)
    assert header.duration_s == pytest.approx(FOUR_HOURS, abs=1)
    size = four_hours.stat().st_size
    assert size > 50_000_000
    assert reader.bytes_read < 1_000_000  # the moov box at the end, and the file's first block
    with pytest.raises(InputError) as refused:
        check_video_limits("videos/four_hours.mp4", header, PipelineConfig())
    assert refused.value.code == "too_long"
    assert "14400.0 s long, over the limit of 10800 s" in refused.value.reason
    assert probe(four_hours).duration_s == pytest.approx(header.duration_s)  # the header is right


def test_the_header_of_vtest_and_of_a_non_video(s3: Any, sample: Callable[[str], Path]) -> None:
    s3.upload_file(str(sample("vtest.avi")), BUCKET, "vtest.avi")
    header = probe_header(S3RangeReader(s3, BUCKET, "vtest.avi"), "vtest.avi")
    assert header is not None
    assert (header.width, header.height) == (768, 576)
    assert header.duration_s == pytest.approx(79.5)
    s3.put_object(Bucket=BUCKET, Key="notes.mp4", Body=b"not a video at all\n" * 100)
    assert probe_header(S3RangeReader(s3, BUCKET, "notes.mp4"), "notes.mp4") is None
