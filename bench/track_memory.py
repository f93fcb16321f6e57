"""Memory the motion analysis holds for a long video: ``TrackCollector`` fed as the aggregate
feeds it (one frame at a time, five persons a frame, BlazePose's 33 landmarks with world
landmarks), then ``tracks()``; prints the peak RSS it added per person and frame, and what that
makes of a 3-hour video at 30 fps against the aggregate's configured memory.

    .venv/bin/python bench/track_memory.py [--frames 54000] [--persons 5]
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers"))

from posepipe.analysis.tracks import TrackCollector

AGGREGATE_MB = 2048  # infra: the aggregate's memory (docs/PERFORMANCE.md, "Recommended settings")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=54_000, help="frames fed (default: 30 min at 30 fps)")
    parser.add_argument("--persons", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    landmarks = rng.random((33, 5), dtype=np.float32)
    world = rng.random((33, 3), dtype=np.float32)
    base = peak_mib()
    collector = TrackCollector()
    for i in range(args.frames):
        collector.add(i, i / 30, True, ((p, landmarks.copy(), world.copy()) for p in range(args.persons)))
    held = peak_mib()
    tracks = collector.tracks()
    peak = peak_mib()
    n = args.frames * args.persons
    per_collected, per_peak = (held - base) * 2**20 / n, (peak - base) * 2**20 / n
    print(f"{len(tracks)} tracks, {n:,} person-frames")
    print(f"collected: +{held - base:.0f} MiB ({per_collected:.0f} B a person and frame)")
    print(f"peak with tracks(): +{peak - base:.0f} MiB ({per_peak:.0f} B a person and frame)")
    three_hours = 3 * 3600 * 30 * args.persons
    print(
        f"3 h at 30 fps, {args.persons} persons: {three_hours * per_peak / 2**20:,.0f} MiB at peak "
        f"against the aggregate's {AGGREGATE_MB} MB"
    )


if __name__ == "__main__":
    main()
