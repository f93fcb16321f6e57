"""How a large video is cut into parts: at least 64 MiB, at most 10,000 of them, covering it exactly."""

from __future__ import annotations

import itertools

import pytest
from posepipe.cloud.multipart import MAX_PARTS, MIN_PART_BYTES, plan_parts

MIB = 1024 * 1024


@pytest.mark.parametrize("size", [100_000_001, 150_000_000, 50 * 10**9, 5 * 1024**4])
def test_parts_cover_the_file_exactly_within_s3_s_limits(size: int) -> None:
    plan = plan_parts(size)
    assert plan.count <= MAX_PARTS
    assert plan.part_bytes >= MIN_PART_BYTES
    assert plan.part_bytes % MIB == 0
    offsets = [plan.part(n) for n in range(1, plan.count + 1)]
    assert offsets[0][0] == 0
    assert all(a + b == c for (a, b), (c, _) in itertools.pairwise(offsets))
    assert sum(size for _, size in offsets) == size
    assert all(0 < s <= plan.part_bytes for _, s in offsets)


def test_50_gb_goes_in_746_parts_of_64_mib() -> None:
    plan = plan_parts(50 * 10**9)
    assert (plan.part_bytes, plan.count) == (64 * MIB, 746)
    assert plan_parts(5 * 1024**4).part_bytes == 525 * MIB  # S3's largest object: parts grow


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_parts(0)
    with pytest.raises(ValueError, match="5 MiB"):
        plan_parts(10**9, min_part_bytes=MIB)
