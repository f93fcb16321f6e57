"""What :class:`posepipe.engines.torch.batcher.FrameBatcher` reports: the batches its frames went
into, per stream (:class:`StreamStats`) and in all (:class:`BatchStats`), for the endpoint's
``/ping`` and logs and for the batching tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamStats:
    """The batches one stream's frames went into: ``mean_size`` is per frame of the stream."""

    frames: int = 0
    size_sum: int = 0
    max_size: int = 0
    wait_s: float = 0.0  # from handing a frame in to its batch starting, summed over the frames
    timed_out: int = 0  # frames whose batch started because ``delay_s`` ran out

    @property
    def mean_size(self) -> float:
        return self.size_sum / self.frames if self.frames else 0.0

    def add(self, size: int, wait_s: float, timed_out: bool) -> None:
        self.frames += 1
        self.size_sum += size
        self.max_size = max(self.max_size, size)
        self.wait_s += wait_s
        self.timed_out += timed_out

    def copy(self) -> StreamStats:
        return StreamStats(self.frames, self.size_sum, self.max_size, self.wait_s, self.timed_out)


@dataclass
class BatchStats:
    """Batches run and their sizes (frames per batch); ``wait_s`` summed over their frames;
    ``timed_out_batches``: those that started because ``delay_s`` ran out (rather than because
    every open stream, or ``max_batch`` frames, had a frame waiting)."""

    sizes: Counter[int] = field(default_factory=Counter)
    failed_batches: int = 0
    wait_s: float = 0.0
    timed_out_batches: int = 0

    @property
    def batches(self) -> int:
        return sum(self.sizes.values())

    @property
    def frames(self) -> int:
        return sum(size * count for size, count in self.sizes.items())

    @property
    def mean_size(self) -> float:
        return self.frames / self.batches if self.batches else 0.0

    @property
    def max_size(self) -> int:
        return max(self.sizes, default=0)

    def add(self, size: int, wait_s: float, timed_out: bool) -> None:
        self.sizes[size] += 1
        self.wait_s += wait_s
        self.timed_out_batches += timed_out

    def copy(self) -> BatchStats:
        return BatchStats(Counter(self.sizes), self.failed_batches, self.wait_s, self.timed_out_batches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "frames": self.frames,
            "mean_size": round(self.mean_size, 3),
            "max_size": self.max_size,
            "sizes": {str(size): count for size, count in sorted(self.sizes.items())},
            "failed_batches": self.failed_batches,
            "wait_s": round(self.wait_s, 4),
            "timed_out_batches": self.timed_out_batches,
        }
