"""Multipart uploads of large videos through presigned URLs (``POST /videos`` with ``size_bytes``).

S3 takes at most 5 GB in one PUT, and a single PUT that breaks must start again from the first
byte. A video over :data:`MULTIPART_THRESHOLD_BYTES` is uploaded in parts instead: ``POST
/videos`` starts an S3 multipart upload and answers a presigned ``PUT`` URL for each part (its
number, offset and size); the client PUTs each part (in any order, several at once if it
likes), then ``POST /videos/{job}/complete``. ``GET /videos/{job}/upload`` says which parts S3
already holds and signs the rest again: how an interrupted upload resumes (``posepipe upload``
does). The server, not the client, assembles the parts list (``ListParts``), so a client never
handles ETags, and it completes only when the parts cover the declared size exactly.

Parts are :data:`MIN_PART_BYTES` (64 MiB) or larger, so that a video of the largest size S3
allows in one object still fits in its 10,000 parts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from posepipe.errors import InputError

MULTIPART_THRESHOLD_BYTES = 100 * 1000 * 1000  # "over 100 MB": multipart
MIN_PART_BYTES = 64 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit
S3_MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last


@dataclass(frozen=True)
class PartPlan:
    """How ``size_bytes`` is cut: ``count`` parts of ``part_bytes`` (the last one shorter)."""

    size_bytes: int
    part_bytes: int

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.size_bytes / self.part_bytes))

    def part(self, number: int) -> tuple[int, int]:
        """Part ``number``'s (1-based) offset and size in bytes."""
        offset = (number - 1) * self.part_bytes
        return offset, min(self.part_bytes, self.size_bytes - offset)


def plan_parts(size_bytes: int, min_part_bytes: int = MIN_PART_BYTES) -> PartPlan:
    """Parts of at least ``min_part_bytes``, grown in whole MiB until they are at most 10,000."""
    if size_bytes < 1:
        raise ValueError(f"size_bytes must be positive, not {size_bytes}")
    if min_part_bytes < S3_MIN_PART_BYTES:
        raise ValueError(f"parts of {min_part_bytes} bytes are under S3's 5 MiB")
    mib = 1024 * 1024
    part = max(min_part_bytes, math.ceil(size_bytes / MAX_PARTS / mib) * mib)
    return PartPlan(size_bytes, part)


def start_upload(
    s3: Any, bucket: str, key: str, plan: PartPlan, expires_in: int, content_type: str
) -> dict[str, Any]:
    """Start the multipart upload of ``key``: the ``upload`` object ``POST /videos`` answers
    (without its ``complete`` and ``resume`` routes, which the caller adds)."""
    started = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
    upload_id = str(started["UploadId"])
    return _answer(s3, bucket, key, upload_id, plan, range(1, plan.count + 1), expires_in)


def uploaded_parts(s3: Any, bucket: str, key: str, upload_id: str) -> dict[int, dict[str, Any]]:
    """Part number -> ``{"part", "size", "etag"}`` of the parts S3 holds (every page of ListParts)."""
    parts: dict[int, dict[str, Any]] = {}
    marker = 0
    while True:
        answer = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)
        for part in answer.get("Parts", []):
            number = int(part["PartNumber"])
            parts[number] = {"part": number, "size": int(part["Size"]), "etag": str(part["ETag"])}
        if not answer.get("IsTruncated"):
            return parts
        marker = int(answer["NextPartNumberMarker"])


def resume_upload(
    s3: Any, bucket: str, key: str, upload_id: str, plan: PartPlan, expires_in: int
) -> dict[str, Any]:
    """What S3 holds of the upload (``done``) and fresh URLs for the parts it lacks (``parts``).
    A part S3 holds at the wrong size is signed again: its next PUT replaces it."""
    held = uploaded_parts(s3, bucket, key, upload_id)
    done = [held[n] for n in sorted(held) if n <= plan.count and held[n]["size"] == plan.part(n)[1]]
    missing = [n for n in range(1, plan.count + 1) if n not in {p["part"] for p in done}]
    answer = _answer(s3, bucket, key, upload_id, plan, missing, expires_in)
    answer["done"] = [{"part": p["part"], "size": p["size"]} for p in done]
    return answer


def complete_upload(s3: Any, bucket: str, key: str, upload_id: str, plan: PartPlan) -> str:
    """Complete the upload from the parts S3 holds, once they are exactly the planned ones;
    returns the object's ETag. Missing or mis-sized parts are an :class:`InputError`
    (``upload_incomplete``) naming them."""
    held = uploaded_parts(s3, bucket, key, upload_id)
    missing = [n for n in range(1, plan.count + 1) if n not in held]
    wrong = [n for n in sorted(held) if n > plan.count or held[n]["size"] != plan.part(n)[1]]
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"parts {_ranges(missing)} of {plan.count} are not uploaded")
        if wrong:
            problems.append(f"parts {_ranges(wrong)} do not have their planned size")
        raise InputError(key, "; ".join(problems), code="upload_incomplete")
    parts = [{"PartNumber": n, "ETag": held[n]["etag"]} for n in range(1, plan.count + 1)]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return str(done.get("ETag", ""))


def _answer(
    s3: Any, bucket: str, key: str, upload_id: str, plan: PartPlan, numbers: Any, expires_in: int
) -> dict[str, Any]:
    """The ``upload`` object: the plan and the signed URLs of parts ``numbers``."""
    return {
        "method": "multipart",
        "upload_id": upload_id,
        "size_bytes": plan.size_bytes,
        "part_bytes": plan.part_bytes,
        "part_count": plan.count,
        "parts": list(_signed_parts(s3, bucket, key, upload_id, plan, numbers, expires_in)),
        "expires_in": expires_in,
    }


def _signed_parts(
    s3: Any, bucket: str, key: str, upload_id: str, plan: PartPlan, numbers: Any, expires_in: int
) -> Iterator[dict[str, Any]]:
    for number in numbers:
        offset, size = plan.part(number)
        url = s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=expires_in,
        )
        yield {"part": number, "offset": offset, "size": size, "url": url}


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3, 7``."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)
